"""Train state, optimiser and the shardings of both, derived from the abstract init.

The state is a plain pytree, so that `jax.jit`, Orbax and Optax all see the same
thing:

  {"params": nested dict of f32 arrays (the model's nnx.Param leaves),
   "opt_state": Optax state over those params,
   "step": i32[], "rng": u32[2] (raw key data: portable through checkpoints)}

The model's graph (`graphdef`) and any non-parameter state stay outside it, fixed
for the run; `merge_model(graphdef, rest, params)` rebuilds the module inside the
jitted step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gait_jax import models, sharding

State = dict[str, Any]


def make_schedule(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """Linear warm-up to `lr`, then cosine decay to `lr * end_lr_ratio`."""
  warmup = min(int(cfg.warmup_steps), max(total_steps - 1, 0))
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=cfg.lr, warmup_steps=warmup,
      decay_steps=max(total_steps, warmup + 1), end_value=cfg.lr * cfg.end_lr_ratio)


def decay_mask(param_specs: Any) -> Any:
  """Weight decay on matrices (kernels, embedding tables), not on biases or scales.

  Decided from the logical names, not the rank: a stacked-layers axis ("layers",
  GaitMAE's scanned layers) does not make a bias a matrix.
  """
  return jax.tree.map(lambda spec: sum(n != "layers" for n in spec) >= 2, param_specs,
                      is_leaf=lambda x: isinstance(x, PartitionSpec))


def make_optimizer(cfg: ml_collections.ConfigDict, total_steps: int, mask: Any
                   ) -> optax.GradientTransformation:
  """AdamW with warm-up + cosine, global-norm clipping and a weight decay `mask`
  (a pytree of bools like the params; see `decay_mask`)."""
  return optax.chain(
      optax.clip_by_global_norm(cfg.clip_norm) if cfg.clip_norm else optax.identity(),
      optax.adamw(make_schedule(cfg, total_steps), b1=cfg.b1, b2=cfg.b2,
                  weight_decay=cfg.weight_decay, mask=mask))


@dataclasses.dataclass(frozen=True)
class ModelDef:
  """What is fixed for a run: the module graph and its non-parameter state."""
  graphdef: Any
  rest: Any

  def merge(self, params: Any) -> nnx.Module:
    return nnx.merge(self.graphdef, nnx.State(params), self.rest)


def build_model(config: ml_collections.ConfigDict, joints: Sequence[str], num_frames: int,
                rng: jax.Array) -> tuple[ModelDef, Any, Any]:
  """Builds the model; returns (ModelDef, params pure dict, logical PartitionSpecs)."""
  model = models.build(config.model, joints, num_frames, rngs=nnx.Rngs(params=rng))
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  specs = nnx.to_pure_dict(nnx.get_partition_spec(params))
  return ModelDef(graphdef, rest), nnx.to_pure_dict(params), specs


def abstract_model(config: ml_collections.ConfigDict, joints: Sequence[str],
                   num_frames: int) -> tuple[ModelDef, Any, Any]:
  """(ModelDef, params as ShapeDtypeStructs, logical PartitionSpecs of the params)
  from an abstract (eval_shape) build: nothing is allocated."""
  box = {}

  def build(rng):
    model_def, params, specs = build_model(config, joints, num_frames, rng)
    box["model_def"], box["specs"] = model_def, specs
    return params

  abstract = jax.eval_shape(build, jax.random.key(0))
  return box["model_def"], abstract, box["specs"]


def init_fn(config: ml_collections.ConfigDict, joints: Sequence[str], num_frames: int,
            optimizer: optax.GradientTransformation) -> Callable[[jax.Array], State]:
  """init(seed) -> State; run it under jit with output shardings."""

  def init(seed: jax.Array) -> State:
    rng = jax.random.key(seed)
    params = build_model(config, joints, num_frames, jax.random.fold_in(rng, 0))[1]
    return {"params": params, "opt_state": optimizer.init(params),
            "step": jnp.zeros((), jnp.int32),
            "rng": jax.random.key_data(jax.random.fold_in(rng, 1))}

  return init


def state_shardings(abstract_state: State, param_specs: Any, optimizer, mesh: Mesh,
                    rules: sharding.Rules) -> State:
  """NamedShardings for every leaf: params by the rules, optimiser moments like
  their params, everything else replicated."""
  replicated = NamedSharding(mesh, PartitionSpec())
  param_sh = param_shardings(param_specs, mesh, rules)
  opt_sh = optax.tree_map_params(
      optimizer, lambda _, sh: sh, abstract_state["opt_state"], param_sh,
      transform_non_params=lambda _: replicated)
  return {"params": param_sh, "opt_state": opt_sh, "step": replicated, "rng": replicated}


def param_shardings(param_specs: Any, mesh: Mesh, rules: sharding.Rules) -> Any:
  """NamedShardings of the params from their logical PartitionSpecs and the rules."""
  return jax.tree.map(
      lambda spec: NamedSharding(mesh, sharding.logical_to_spec(tuple(spec), rules, mesh)),
      param_specs, is_leaf=lambda x: isinstance(x, PartitionSpec))


def count_params(params: Any) -> int:
  return sum(int(p.size) for p in jax.tree.leaves(params))
