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
import json
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gait_jax import models, sharding, skeleton
from gait_jax.data import pipeline
from gait_jax.data import shards as shards_lib
from gait_jax.errors import InputError
from gait_jax.train import checkpoint

State = dict[str, Any]


WARMUPS = ("linear", "constant")
DECAYS = ("matrices", "all")


def make_schedule(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """`warmup_steps` of warm-up, then cosine decay to `lr * end_lr_ratio` at
  `total_steps`. Warm-up "linear" rises from 0 to `lr`; "constant" holds `lr`
  (published: constant for 0.3 epoch, then cosine over the rest of 32 epochs)."""
  if cfg.warmup not in WARMUPS:
    raise ValueError(f"optim.warmup={cfg.warmup!r}; expected one of {WARMUPS}")
  warmup = min(int(cfg.warmup_steps), max(total_steps - 1, 0))
  if cfg.warmup == "linear":
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=cfg.lr, warmup_steps=warmup,
        decay_steps=max(total_steps, warmup + 1), end_value=cfg.lr * cfg.end_lr_ratio)
  return optax.join_schedules(
      [optax.constant_schedule(cfg.lr),
       optax.cosine_decay_schedule(cfg.lr, max(total_steps - warmup, 1),
                                   alpha=cfg.end_lr_ratio)], [warmup])


def decay_mask(param_specs: Any) -> Any:
  """Weight decay on matrices (kernels, embedding tables), not on biases or scales.

  Decided from the logical names, not the rank: a stacked-layers axis ("layers",
  GaitMAE's scanned layers) does not make a bias a matrix.
  """
  return jax.tree.map(lambda spec: sum(n != "layers" for n in spec) >= 2, param_specs,
                      is_leaf=lambda x: isinstance(x, PartitionSpec))


def make_optimizer(cfg: ml_collections.ConfigDict, total_steps: int, param_specs: Any
                   ) -> optax.GradientTransformation:
  """AdamW on `make_schedule`, global-norm clipping when `clip_norm` > 0, weight
  decay on what `cfg.decay` names: "matrices" (`decay_mask` of the logical
  `param_specs`) or "all" parameters (published, as torch's AdamW over
  model.parameters())."""
  if cfg.decay not in DECAYS:
    raise ValueError(f"optim.decay={cfg.decay!r}; expected one of {DECAYS}")
  mask = decay_mask(param_specs) if cfg.decay == "matrices" else None
  return optax.chain(
      optax.clip_by_global_norm(cfg.clip_norm) if cfg.clip_norm else optax.identity(),
      optax.adamw(make_schedule(cfg, total_steps), b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
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
  specs = nnx.to_pure_dict(sharding.logical_specs(params))
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


@dataclasses.dataclass(frozen=True)
class Encoder:
  """A trained model restored onto a mesh, for inference (embedding, evaluators).

  config:    the pretraining run's config (config.json), with model.dtype as asked.
  model_def: the module graph; `model_def.merge(params)` inside a jitted function.
  params:    the parameters, laid out by the run's sharding rules on `mesh`.
  shardings: NamedShardings of `params` (for jit's in_shardings).
  joints:    the canonical joint names of the run's joint set, in batch order.
  step:      the checkpoint's step.
  """
  config: ml_collections.ConfigDict
  model_def: ModelDef
  params: Any
  shardings: Any
  joints: tuple[str, ...]
  step: int


def train_frames(config: ml_collections.ConfigDict) -> int:
  """T of a pretraining run's examples: its crop length, else its shards' clip length."""
  if config.data.crop_frames:
    return int(config.data.crop_frames)
  try:
    manifest, _ = shards_lib.open_shard_set(config.data.shards)
  except (shards_lib.ShardSetError, OSError, TypeError) as e:
    raise InputError(f"the run trained on whole clips of {config.data.shards!r}, which "
                     f"cannot be opened to learn their length: {e}") from e
  return int(manifest["frames"].iloc[0])


def load_pretrain_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a pretraining run wrote to its workdir (config.json).

  Model fields added since the run was written take their defaults (each new
  field's default is the behaviour before it existed), so older runs load.
  """
  path = pathlib.Path(workdir) / "config.json"
  if not path.is_file():
    raise InputError(f"{path}: not found; expected a pretraining run's workdir (it holds "
                     "config.json and checkpoints/)")
  config = ml_collections.ConfigDict(json.loads(path.read_text()))
  name = config.model.get("name", "gaitmae")
  model = models.get_model_config("smoke" if name == "gaitmae" else f"{name}_smoke")
  model.update(config.model.to_dict())
  config.model = model
  return config


def trained_participants(workdir: str) -> set[str]:
  """The participant ids the pretraining run in `workdir` read: its shard set's clips
  under its data filters (split, tasks, participants), from its config.json."""
  config = load_pretrain_config(workdir)
  try:
    manifest, _ = shards_lib.open_shard_set(config.data.shards)
  except (shards_lib.ShardSetError, OSError, TypeError) as e:
    raise InputError(f"{workdir}: its shard set {config.data.shards!r} cannot be opened "
                     f"to learn whom it trained on: {e}") from e
  clips = pipeline.select_clips(manifest, config.data)
  rows = manifest.set_index("clip_id").loc[clips]
  return set(rows["participant_id"].astype(str))


def load_encoder(workdir: str, mesh: Mesh, dtype: str = "pretrain") -> Encoder:
  """Restores the latest checkpoint of the pretraining run in `workdir` onto `mesh`.

  Args:
    workdir: a pretraining run's workdir (config.json and checkpoints/).
    mesh: the mesh to lay the parameters out on, by the run's own sharding rules.
    dtype: compute dtype: "pretrain" (the run's), "auto" (bf16 on GPU/TPU, else f32),
      "float32" or "bfloat16". Parameters stay float32.
  """
  config = load_pretrain_config(workdir)
  if dtype != "pretrain":
    if dtype == "auto":
      dtype = "bfloat16" if jax.default_backend() in ("gpu", "tpu") else "float32"
    config.model.dtype = dtype
  joints = tuple(skeleton.joint_names(config.data.joints))
  num_frames = train_frames(config)
  rules = tuple(tuple(r) for r in config.sharding_rules)
  model_def, abstract, specs = abstract_model(config, joints, num_frames)
  shardings = param_shardings(specs, mesh, rules)
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          abstract, shardings)
  params, step = checkpoint.restore_params(workdir, abstract)
  return Encoder(config, model_def, params, shardings, joints, int(step))
