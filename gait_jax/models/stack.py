"""A stack of identical layers: parameters stacked at init, applied with `lax.scan`.

  blocks = stack.create(lambda rngs: layers.TransformerBlock(..., rngs=rngs), depth, rngs)
  h = stack.apply(blocks, h, rng, remat=cfg.remat, names=("batch", "tokens", "embed"))
  h1 = stack.apply(blocks, h, count=2)   # the output of layer 1 (the first two layers)

Every parameter of the stack has a leading axis of size depth with logical name
"layers" (weight decay and sharding rules see it by name). The forward pass scans
over the layers: one layer's graph to compile whatever the depth, and with remat
(`jax.checkpoint` around the scan body) only the stream between layers and the
values the layers name `layers.REMAT_KEEP` (attention outputs) are kept for the
backward pass (an unrolled loop of checkpointed layers does not lower peak memory
on XLA:CPU; a scan does).

A layer is an nnx.Module called as `layer(h, rng)` with a dropout key or None
(and `mask=` when `apply` is given one); layer i gets `fold_in(rng, i)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import jax
import jax.numpy as jnp
from flax import nnx

from gait_jax import sharding
from gait_jax.models import layers

LAYERS = "layers"  # the logical name of the stacked axis
M = TypeVar("M", bound=nnx.Module)


def create(make_layer: Callable[[nnx.Rngs], M], depth: int, rngs: nnx.Rngs) -> M:
  """`depth` layers from `make_layer(rngs)`, each initialised from its own key, as
  one module whose parameters are stacked on a leading "layers" axis."""
  if depth < 1:
    raise ValueError(f"a stack needs at least one layer, got depth {depth}")

  @nnx.vmap(in_axes=0, out_axes=0, transform_metadata={nnx.PARTITION_NAME: LAYERS})
  def make(key: jax.Array) -> M:
    return make_layer(nnx.Rngs(params=key))

  return make(jax.random.split(rngs.params(), depth))


def apply(stacked: nnx.Module, h: jax.Array, rng: jax.Array | None = None, *,
          count: int | None = None, remat: bool = False,
          names: Sequence[str | None] | None = None,
          mask: jax.Array | None = None) -> jax.Array:
  """Applies the first `count` layers (default: all) of `stacked` in turn.

  Args:
    stacked: a stack from `create`.
    h: the stream [..., D] into the first layer.
    rng: dropout key or None; layer i draws from fold_in(rng, i).
    count: how many layers, 1..depth (layer `count - 1`'s output is returned).
    remat: recompute each layer in the backward pass instead of keeping its
      activations (except those named `layers.REMAT_KEEP`).
    names: logical axis names of the stream; each layer's output is
      sharding-constrained to them.
    mask: passed to every layer as `layer(h, rng, mask=mask)` (e.g. the
      bool[B', L] elements a `layers.TransformerBlock` may attend to); None =
      layers are called without it.

  Returns:
    The stream after layer count - 1, same shape and dtype as `h`.
  """
  graphdef, params = nnx.split(stacked)
  total = jax.tree.leaves(params)[0].shape[0]
  count = total if count is None else count
  if not 1 <= count <= total:
    raise ValueError(f"count {count} out of range for a stack of {total} layers")
  if count < total:
    params = jax.tree.map(lambda a: a[:count], params)

  def body(h: jax.Array, layer_and_index) -> tuple[jax.Array, None]:
    layer_params, i = layer_and_index
    layer_rng = None if rng is None else jax.random.fold_in(rng, i)
    layer = nnx.merge(graphdef, layer_params)
    out = layer(h, layer_rng) if mask is None else layer(h, layer_rng, mask=mask)
    return (out if names is None else sharding.constrain(out, names)), None

  if remat:
    # Keep what the layers name `layers.REMAT_KEEP` (each attention's output, one
    # array the size of the stream): recomputing a layer then skips its attention
    # forward, the costliest part of it (the attention's backward still recomputes
    # the weights from q and k, one step at a time).
    body = jax.checkpoint(body, prevent_cse=False,
                          policy=jax.checkpoint_policies.save_only_these_names(
                              layers.REMAT_KEEP))
  h, _ = jax.lax.scan(body, h, (params, jnp.arange(count)))
  return h


def layer_index(layer: int, total: int) -> int:
  """A Python index (negative from the end) into `total` layers, checked."""
  if not -total <= layer < total:
    raise ValueError(f"layer {layer} out of range for depth {total}")
  return layer % total
