"""Transformer building blocks shared by the GaitMAE and MAMP models.

Every parameter is float32 and carries logical axis names (see
`gait_jax.sharding`); computation runs in the `dtype` each layer is given.
Each parameter is created with eager sharding off (per variable, not globally):
logical names are not mesh axes, so a model can be built anywhere (tests,
notebooks, `nnx.eval_shape`, inside `sharding.use_rules`), and the trainer places
the state with `sharding.logical_to_spec` of its logical PartitionSpecs.

Dropout draws from an explicit key argument (None = off) instead of an
`nnx.Rngs` stream, so the model state holds parameters only and the randomness
of a step is a function of the key the trainer passes.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from gait_jax import sharding

Names = tuple[str | None, ...]

# Truncated normal with std 0.02 for weights, zeros for biases (as MotionBERT /
# the GaitMAE authors' DSTformer initialise).
KERNEL_INIT = nnx.initializers.truncated_normal(stddev=0.02)
ZEROS = nnx.initializers.zeros_init()
ONES = nnx.initializers.ones_init()


def partitioned(init: nnx.Initializer, names: Names) -> nnx.Initializer:
  """`init` annotated with logical axis names, without eager sharding."""
  return nnx.with_partitioning(init, names, eager_sharding=False)


def make_param(rngs: nnx.Rngs, init: nnx.Initializer, shape: Sequence[int],
               names: Names) -> nnx.Param:
  """A float32 parameter of `shape` with logical axis `names`."""
  if len(names) != len(shape):
    raise ValueError(f"{len(names)} logical names for a parameter of shape {shape}")
  return nnx.Param(init(rngs.params(), tuple(shape), jnp.float32),
                   out_sharding=tuple(names), eager_sharding=False)


def dense(in_features: int, out_features: int, names: Names, *, dtype: jnp.dtype,
          rngs: nnx.Rngs, kernel_init: nnx.Initializer = KERNEL_INIT,
          bias_init: nnx.Initializer = ZEROS) -> nnx.Linear:
  """nnx.Linear whose kernel has logical `names` and bias `names[1:]`."""
  return nnx.Linear(
      in_features, out_features, dtype=dtype, param_dtype=jnp.float32,
      kernel_init=partitioned(kernel_init, names),
      bias_init=partitioned(bias_init, names[1:]), rngs=rngs)


def layer_norm(width: int, *, dtype: jnp.dtype, rngs: nnx.Rngs) -> nnx.LayerNorm:
  """Pre-norm LayerNorm (flax computes its statistics in at least float32)."""
  return nnx.LayerNorm(
      width, epsilon=1e-6, dtype=dtype, param_dtype=jnp.float32,
      scale_init=partitioned(ONES, ("embed",)),
      bias_init=partitioned(ZEROS, ("embed",)), rngs=rngs)


def dropout(x: jax.Array, rate: float, rng: jax.Array | None) -> jax.Array:
  """Inverted dropout; identity when `rng` is None or rate is 0."""
  if rng is None or rate <= 0:
    return x
  keep = jax.random.bernoulli(rng, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), jnp.zeros((), x.dtype))


def rotary(x: jax.Array, positions: jax.Array, base: float = 10_000.0) -> jax.Array:
  """Rotary position embedding (rotate-half form) over the sequence axis.

  Args:
    x: [B', H, L, K] queries or keys, K even.
    positions: f32[L] position of each element (the frame index).
  """
  k = x.shape[-1]
  if k % 2:
    raise ValueError(f"rotary needs an even per-head width, got {k}")
  inv_freq = 1.0 / (base ** (jnp.arange(0, k, 2, dtype=jnp.float32) / k))
  angles = positions[:, None].astype(jnp.float32) * inv_freq[None]  # [L, K/2]
  sin = jnp.sin(angles)[None, None]
  cos = jnp.cos(angles)[None, None]
  x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x.dtype)


class Attention(nnx.Module):
  """Multi-head self-attention over [B', L, D], optional RoPE and sink tokens.

  Sink tokens are learned vectors prepended to the sequence; their outputs would
  be dropped, so only their keys and values are computed (the result is the
  same). They sit outside the rotary positions.
  """

  def __init__(self, width: int, num_heads: int, *, num_sinks: int = 0,
               use_rotary: bool = False, dtype: jnp.dtype = jnp.float32,
               attention_impl: str | None = None, attention_block: int = 0,
               rngs: nnx.Rngs):
    if width % num_heads:
      raise ValueError(f"width {width} is not divisible by num_heads {num_heads}")
    head_dim = width // num_heads
    self.num_heads = num_heads
    self.head_dim = head_dim
    self.num_sinks = num_sinks
    self.use_rotary = use_rotary
    self.dtype = dtype
    self.attention_impl = attention_impl
    self.attention_block = attention_block
    # qkv as one [D, 3, H, K] kernel: one matmul, heads stay a named axis.
    self.qkv_kernel = make_param(rngs, KERNEL_INIT, (width, 3, num_heads, head_dim),
                                 ("embed", None, "heads", "kv"))
    self.qkv_bias = make_param(rngs, ZEROS, (3, num_heads, head_dim),
                               (None, "heads", "kv"))
    self.out_kernel = make_param(rngs, KERNEL_INIT, (num_heads, head_dim, width),
                                 ("heads", "kv", "embed"))
    self.out_bias = make_param(rngs, ZEROS, (width,), ("embed",))
    if num_sinks:
      self.sinks = make_param(rngs, KERNEL_INIT, (num_sinks, width), (None, "embed"))

  def __call__(self, x: jax.Array, positions: jax.Array | None = None,
               mask: jax.Array | None = None) -> jax.Array:
    """x: [B', L, D] → [B', L, D]; positions f32[L] (used with rotary); mask
    bool[B', L]: which elements may be attended to (None = all; sinks always)."""
    dtype = self.dtype
    kernel = self.qkv_kernel[...].astype(dtype)
    bias = self.qkv_bias[...].astype(dtype)
    x = x.astype(dtype)
    # q, k and v straight into the [B', H, L, K] layout attention works in, one
    # matmul each: slicing a fused qkv output (and padding its gradient) and
    # transposing head-minor tensors cost more on CPU than the matmuls.
    q, k, v = (jnp.einsum("bld,dhk->bhlk", x, kernel[:, i]) + bias[i][:, None]
               for i in range(3))
    if self.use_rotary:
      if positions is None:
        positions = jnp.arange(x.shape[1], dtype=jnp.float32)
      q = rotary(q, positions)
      k = rotary(k, positions)
    if self.num_sinks:
      sink_kv = jnp.einsum("sd,dchk->chsk", self.sinks[...].astype(dtype), kernel[:, 1:])
      sink_kv = sink_kv + bias[1:, :, None]
      sink_kv = jnp.broadcast_to(sink_kv[:, None], (2, x.shape[0]) + sink_kv.shape[1:])
      k = jnp.concatenate([sink_kv[0], k], axis=2)
      v = jnp.concatenate([sink_kv[1], v], axis=2)
      if mask is not None:
        mask = jnp.concatenate([jnp.ones((x.shape[0], self.num_sinks), bool), mask], 1)
    out = attention(q, k, v, implementation=self.attention_impl,
                    block=self.attention_block, key_mask=mask)
    out = jnp.einsum("bhlk,hkd->bld", out, self.out_kernel[...].astype(dtype))
    return out + self.out_bias[...].astype(dtype)


def attention(q: jax.Array, k: jax.Array, v: jax.Array, *,
              implementation: str | None = None, block: int = 0,
              key_mask: jax.Array | None = None) -> jax.Array:
  """Softmax attention over [B', H, L, K] queries and [B', H, S, K] keys/values.

  With `block` = 0, or when all B'·H·L·S logits fit in `block`, or with the
  cuDNN kernel (fused, already linear in memory), this is
  `jax.nn.dot_product_attention`. Otherwise the B'·H (sequence, head) pairs go
  through `lax.map` a few at a time, as many as keep one step's logits within
  `block` elements, each step under `jax.checkpoint`: the backward pass
  recomputes a step's [L, S] logits instead of keeping all B'·H of them, so
  memory grows linearly with the batch and the working set stays in cache. On
  CPU this is several times faster than one batched pass over long sequences
  (T = 900 frames with head dim 16 is memory-bound; benchmarks/attention.py).
  The result is the same up to float rounding.

  `key_mask` bool[B', S] (None = all) says which keys each sequence may attend
  to: a masked key gets no weight, so the result for the other keys is the same
  as attention over them alone (up to float rounding). A query whose keys are
  all masked gets an arbitrary (finite) output. With a mask, the cuDNN kernel
  is not used (XLA's attention instead).
  """
  b, heads, length, dim = q.shape
  keys = k.shape[2]
  if key_mask is not None and implementation == "cudnn":
    implementation = None
  if not block or implementation == "cudnn" or b * heads * length * keys <= block:
    mask = None if key_mask is None else key_mask[:, None, None, :]
    out = jax.nn.dot_product_attention(*(x.swapaxes(1, 2) for x in (q, k, v)),
                                       mask=mask, implementation=implementation)
    return out.swapaxes(1, 2)
  pairs = max(1, block // (length * keys))
  steps = -(-(b * heads) // pairs)

  def by_pair(x: jax.Array) -> jax.Array:  # [B', H, L, K] → [steps, pairs, L, K]
    x = x.reshape(b * heads, *x.shape[2:])
    if steps * pairs > b * heads:
      x = jnp.pad(x, ((0, steps * pairs - b * heads), (0, 0), (0, 0)))
    return x.reshape(steps, pairs, *x.shape[1:])

  step = jax.checkpoint(_softmax_attention)
  inputs = (by_pair(q * dim ** -0.5), by_pair(k), by_pair(v))
  if key_mask is None:
    out = jax.lax.map(lambda qkv: step(*qkv), inputs)
  else:  # [B', S] → per (sequence, head) pair, as [steps, pairs, 1, S]
    mask = jnp.broadcast_to(key_mask[:, None, None, :], (b, heads, 1, keys))
    out = jax.lax.map(lambda qkvm: step(*qkvm), inputs + (by_pair(mask),))
  return out.reshape(steps * pairs, length, dim)[:b * heads].reshape(q.shape)


def _softmax_attention(q: jax.Array, k: jax.Array, v: jax.Array,
                       mask: jax.Array | None = None) -> jax.Array:
  """q (pre-scaled): [N, L, K], k, v: [N, S, K], mask bool[N, 1, S] or None →
  [N, L, K]; float32 logits.

  Normalising after the value product divides [N, L, K] instead of [N, L, S].
  """
  logits = jnp.einsum("nlk,nsk->nls", q, k, preferred_element_type=jnp.float32)
  if mask is not None:
    logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
  weights = jnp.exp(logits - jax.lax.stop_gradient(logits.max(-1, keepdims=True)))
  out = jnp.einsum("nls,nsk->nlk", weights.astype(v.dtype), v,
                   preferred_element_type=jnp.float32)
  return (out / weights.sum(-1, keepdims=True)).astype(q.dtype)


class Mlp(nnx.Module):
  """Two-layer GELU feed-forward: D → hidden → D."""

  def __init__(self, width: int, hidden: int, *, dtype: jnp.dtype, rngs: nnx.Rngs):
    self.fc1 = dense(width, hidden, ("embed", "mlp"), dtype=dtype, rngs=rngs)
    self.fc2 = dense(hidden, width, ("mlp", "embed"), dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.fc2(jax.nn.gelu(self.fc1(x)))


class TransformerBlock(nnx.Module):
  """Pre-LayerNorm attention + MLP with residuals, over sequences [B', L, D]."""

  def __init__(self, width: int, num_heads: int, mlp_ratio: float, *,
               num_sinks: int = 0, use_rotary: bool = False, dropout_rate: float = 0.0,
               dtype: jnp.dtype = jnp.float32, attention_impl: str | None = None,
               attention_block: int = 0, rngs: nnx.Rngs):
    self.dropout_rate = dropout_rate
    self.norm1 = layer_norm(width, dtype=dtype, rngs=rngs)
    self.attn = Attention(width, num_heads, num_sinks=num_sinks, use_rotary=use_rotary,
                          dtype=dtype, attention_impl=attention_impl,
                          attention_block=attention_block, rngs=rngs)
    self.norm2 = layer_norm(width, dtype=dtype, rngs=rngs)
    self.mlp = Mlp(width, int(round(width * mlp_ratio)), dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, rng: jax.Array | None = None,
               positions: jax.Array | None = None, mask: jax.Array | None = None
               ) -> jax.Array:
    """x: [B', L, D] → [B', L, D]; rng: dropout key or None; mask: bool[B', L]
    elements attention may read (None = all; `Attention`)."""
    rngs = (None, None) if rng is None else tuple(jax.random.split(rng))
    x = x + dropout(self.attn(self.norm1(x), positions, mask), self.dropout_rate,
                    rngs[0])
    x = x + dropout(self.mlp(self.norm2(x)), self.dropout_rate, rngs[1])
    return x


def constrain(x: jax.Array, names: Sequence[str | None]) -> jax.Array:
  """Shorthand for `sharding.constrain` (a no-op outside the trainer's rules)."""
  return sharding.constrain(x, names)
