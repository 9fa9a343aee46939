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

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from gait_jax import sharding

Names = tuple[str | None, ...]

# Values `stack.apply(remat=True)` keeps instead of recomputing: each attention's
# output, [B', H, L, K] (its forward pass is most of a layer's recomputation).
REMAT_KEEP = "remat_keep"

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


def layer_norm(width: int, *, dtype: jnp.dtype, rngs: nnx.Rngs) -> LayerNorm:
  """Pre-norm LayerNorm (statistics in float32)."""
  return LayerNorm(width, epsilon=1e-6, dtype=dtype, rngs=rngs)


class LayerNorm(nnx.Module):
  """LayerNorm over the last axis with a hand-written backward (`norm`).

  Same parameters as `nnx.LayerNorm` (`scale`, `bias`, f32[D], logical name
  "embed"), so checkpoints carry over; the statistics are computed in float32.
  """

  def __init__(self, width: int, *, epsilon: float = 1e-6, dtype: jnp.dtype = jnp.float32,
               rngs: nnx.Rngs):
    self.epsilon = epsilon
    self.dtype = dtype
    self.scale = make_param(rngs, ONES, (width,), ("embed",))
    self.bias = make_param(rngs, ZEROS, (width,), ("embed",))

  def __call__(self, x: jax.Array) -> jax.Array:
    """x: [..., D] → [..., D] in the layer's dtype."""
    return norm(x.astype(self.dtype), self.scale[...], self.bias[...], self.epsilon)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def norm(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float) -> jax.Array:
  """(x - mean) / sqrt(var + epsilon) · scale + bias over the last axis of x
  [..., D] (scale, bias f32[D]); statistics in float32, result in x's dtype.

  The backward pass is written out (dx = r·(g - mean(g) - x̂·mean(g·x̂)) with
  g = dy·scale, x̂ the normalised input and r = 1/sqrt(var + epsilon)): it keeps
  only x and the two per-token statistics, and runs as row reductions over the
  minor axis, where autodiff's version made XLA transpose the [tokens, D] arrays.
  """
  return _norm_fwd(x, scale, bias, epsilon)[0]


def _norm_fwd(x, scale, bias, epsilon):
  xf = x.astype(jnp.float32)
  mean = xf.mean(-1, keepdims=True)
  centred = xf - mean
  rstd = jax.lax.rsqrt(jnp.mean(centred * centred, -1, keepdims=True) + epsilon)
  out = (centred * rstd * scale.astype(jnp.float32) + bias.astype(jnp.float32)).astype(x.dtype)
  return out, (x, scale, mean, rstd)


def _norm_bwd(epsilon, residuals, d_out):
  del epsilon
  x, scale, mean, rstd = residuals
  normed = (x.astype(jnp.float32) - mean) * rstd
  d_out = d_out.astype(jnp.float32)
  g = d_out * scale.astype(jnp.float32)
  dx = rstd * (g - g.mean(-1, keepdims=True)
               - normed * jnp.mean(g * normed, -1, keepdims=True))
  axes = tuple(range(x.ndim - 1))
  return (dx.astype(x.dtype), (d_out * normed).sum(axes).astype(scale.dtype),
          d_out.sum(axes).astype(scale.dtype))


norm.defvjp(_norm_fwd, _norm_bwd)


def dropout(x: jax.Array, rate: float, rng: jax.Array | None) -> jax.Array:
  """Inverted dropout; identity when `rng` is None or rate is 0.

  Each element is kept with probability round((1 - rate)·2¹⁶)/2¹⁶ (within 2⁻¹⁷ of
  1 - rate): one 32-bit draw gives the 16-bit uniforms of two elements, which
  halves the threefry work (on CPU, threefry runs as a loop over whole arrays and
  costs more than the layer's elementwise work around it).
  """
  if rng is None or rate <= 0:
    return x
  if x.shape[-1] % 2:
    keep = jax.random.bernoulli(rng, 1.0 - rate, x.shape)
  else:
    bits = jax.random.bits(rng, (*x.shape[:-1], x.shape[-1] // 2), jnp.uint32)
    uniform16 = jnp.concatenate([bits & jnp.uint32(0xFFFF), bits >> 16], axis=-1)
    keep = uniform16 < jnp.uint32(round((1.0 - rate) * 2**16))
  return jnp.where(keep, x / (1.0 - rate), jnp.zeros((), x.dtype))


class Attention(nnx.Module):
  """Multi-head self-attention over [B', L, D] (or along any leading axis of
  [..., D]), optional RoPE."""

  def __init__(self, width: int, num_heads: int, *,
               use_rotary: bool = False, dtype: jnp.dtype = jnp.float32,
               attention_impl: str | None = None, attention_block: int = 0,
               rngs: nnx.Rngs):
    if width % num_heads:
      raise ValueError(f"width {width} is not divisible by num_heads {num_heads}")
    head_dim = width // num_heads
    self.num_heads = num_heads
    self.head_dim = head_dim
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

  def __call__(self, x: jax.Array, positions: jax.Array | None = None,
               mask: jax.Array | None = None, *, seq_axis: int = -2) -> jax.Array:
    """x: [..., D] → [..., D], attending along `seq_axis` (length L) with every
    other leading axis a batch axis (B' sequences in all): [B', L, D] by
    default, or e.g. the [B, T, J, D] stream with seq_axis 1 (over frames) or
    2 (over joints), so that no caller transposes the stream. positions f32[L]
    (used with rotary); mask bool[B', L] (the batch axes flattened in order):
    which elements may be attended to (None = all)."""
    dtype = self.dtype
    x = x.astype(dtype)
    seq_axis %= x.ndim
    if seq_axis == x.ndim - 1:
      raise ValueError("seq_axis must be a leading axis, not the feature axis")
    batch_axes = [i for i in range(x.ndim - 1) if i != seq_axis]
    batch_shape = tuple(x.shape[i] for i in batch_axes)
    length = x.shape[seq_axis]
    # One matmul over the tokens in their own order ([..., 3, H, K], a plain
    # [tokens, D] × [D, 3HK] GEMM), then one elementwise pass (bias, q's
    # 1/sqrt(K), rotary on q and k) and one transpose to the [3, B', H, L, K]
    # layout attention works in: rows of K stay contiguous (a cheap copy), and
    # the stream is never transposed around the LayerNorm and MLP.
    qkv = jnp.einsum("...d,dthk->...thk", x, self.qkv_kernel[...].astype(dtype))
    if not self.use_rotary:
      positions = None
    elif positions is None:
      positions = jnp.arange(length, dtype=jnp.float32)
    position_shape = [1] * (x.ndim - 1)
    position_shape[seq_axis] = length
    qkv = _prepare_qkv(qkv, self.qkv_bias[...].astype(dtype), self.head_dim ** -0.5,
                       positions, tuple(position_shape))
    n = x.ndim - 1  # qkv axes: leading..., n = "3", n + 1 = H, n + 2 = K
    qkv = qkv.transpose(n, *batch_axes, n + 1, seq_axis, n + 2)
    q, k, v = _unstack(qkv.reshape(3, math.prod(batch_shape), self.num_heads, length,
                                   self.head_dim))
    out = attention(q, k, v, implementation=self.attention_impl,
                    block=self.attention_block, key_mask=mask, scale=1.0)
    out = checkpoint_name(out, REMAT_KEEP)
    # [B', H, L, K] → the input's token order [..., H, K], then the projection.
    out = out.reshape(*batch_shape, self.num_heads, length, self.head_dim)
    order = list(range(len(batch_shape)))
    order.insert(seq_axis, len(batch_shape) + 1)
    out = out.transpose(*order, len(batch_shape), len(batch_shape) + 2)
    out = jnp.einsum("...hk,hkd->...d", out, self.out_kernel[...].astype(dtype))
    return out + self.out_bias[...].astype(dtype)


def _prepare_qkv(qkv: jax.Array, bias: jax.Array, q_scale: float,
                 positions: jax.Array | None, position_shape: tuple[int, ...]
                 ) -> jax.Array:
  """qkv [..., 3, H, K] (the projection without bias) → + bias, q scaled by
  q_scale, and with positions (f32[L], laid out over the leading axes as
  position_shape: L on the sequence axis, 1 elsewhere) q and k rotated by RoPE
  (rotate-half form, base 10,000: [x₁cos - x₂sin, x₂cos + x₁sin] per half).

  One elementwise expression (x·C + swap_halves(x)·S with per-slot, per-position
  C and S) so that XLA fuses it, and its gradient, with the transpose around it.
  """
  qkv = qkv + bias
  k = qkv.shape[-1]
  slot = jnp.asarray([q_scale, 1.0, 1.0], jnp.float32)[:, None, None]  # [3, 1, 1]
  if positions is None:
    return (qkv.astype(jnp.float32) * slot).astype(qkv.dtype)
  if k % 2:
    raise ValueError(f"rotary needs an even per-head width, got {k}")
  inv_freq = 1.0 / (10_000.0 ** (jnp.arange(0, k, 2, dtype=jnp.float32) / k))
  angles = positions.astype(jnp.float32)[:, None] * inv_freq[None]  # [L, K/2]
  cos = jnp.concatenate([jnp.cos(angles)] * 2, -1)  # [L, K]
  sin = jnp.concatenate([-jnp.sin(angles), jnp.sin(angles)], -1)
  rotated = jnp.asarray([1.0, 1.0, 0.0], jnp.float32)[:, None, None]  # v is not rotated
  c = cos[:, None, None] * rotated + (1.0 - rotated)  # [L, 3, 1, K]
  s = sin[:, None, None] * rotated
  c = (c * slot).reshape(*position_shape, 3, 1, k)
  s = (s * slot).reshape(*position_shape, 3, 1, k)
  x = qkv.astype(jnp.float32)
  x1, x2 = jnp.split(x, 2, axis=-1)
  return (x * c + jnp.concatenate([x2, x1], -1) * s).astype(qkv.dtype)


@jax.custom_vjp
def _unstack(x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """x[0], x[1], x[2] of x [3, ...]; the gradient is one stack (autodiff's is
  three zero-padded copies added up)."""
  return x[0], x[1], x[2]


_unstack.defvjp(lambda x: (_unstack(x), None), lambda _, g: (jnp.stack(g),))


def attention(q: jax.Array, k: jax.Array, v: jax.Array, *,
              implementation: str | None = None, block: int = 0,
              key_mask: jax.Array | None = None, scale: float | None = None
              ) -> jax.Array:
  """Softmax attention over [B', H, L, K] queries and [B', H, S, K] keys/values;
  logits are q·k·scale (default scale 1/sqrt(K)).

  `implementation` None picks cuDNN's fused kernel where it applies
  (`default_implementation`: a recent NVIDIA GPU, bf16, no mask), else XLA's.
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
  elif implementation is None:
    implementation = default_implementation(q.dtype, dim, key_mask is not None)
  if not block or implementation == "cudnn" or b * heads * length * keys <= block:
    mask = None if key_mask is None else key_mask[:, None, None, :]
    out = jax.nn.dot_product_attention(*(x.swapaxes(1, 2) for x in (q, k, v)),
                                       mask=mask, scale=scale,
                                       implementation=implementation)
    return out.swapaxes(1, 2)
  scale = dim ** -0.5 if scale is None else scale
  args = (q if scale == 1.0 else q * scale, k, v)
  names = (("batch", "heads", None, None),) * 3
  if key_mask is not None:
    args, names = args + (key_mask,), names + (("batch", None),)
  # Under a mesh each device maps over its own sequences: the partitioner cannot
  # split the lax.map's chunks of the batch (it would gather the whole batch).
  blocked = functools.partial(_blocked_attention, block=block)
  return sharding.per_device(blocked, names, ("batch", "heads", None, None))(*args)


def default_implementation(dtype: jnp.dtype, head_dim: int, masked: bool,
                           device: jax.Device | None = None) -> str | None:
  """The attention an unset `implementation` takes: cuDNN's fused kernel on an
  NVIDIA GPU of compute capability 8.0 or newer, for bf16/f16 without a key mask
  and a head dim that is a multiple of 8 (up to 128); else None (XLA's, chunked by
  `block`). On an H200, paper shape, batch 8: 0.24 s per step against 1.9 s for
  the chunked path and 0.47 s for XLA's in one pass (README, GPU)."""
  device = device or jax.devices()[0]
  if device.platform != "gpu" or masked or head_dim % 8 or head_dim > 128:
    return None
  if jnp.dtype(dtype) not in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16)):
    return None
  try:
    major = int(str(getattr(device, "compute_capability", "0")).split(".")[0])
  except ValueError:
    return None
  return "cudnn" if major >= 8 else None


def _blocked_attention(q: jax.Array, k: jax.Array, v: jax.Array,
                       key_mask: jax.Array | None = None, *, block: int) -> jax.Array:
  """`attention`'s chunked path on pre-scaled q: the (sequence, head) pairs through
  `lax.map`, as many per step as keep one step's logits within `block`."""
  b, heads, length, dim = q.shape
  keys = k.shape[2]
  steps = -(-(b * heads) // max(1, block // (length * keys)))
  pairs = -(-(b * heads) // steps)  # as even as possible: little or no padding

  def by_pair(x: jax.Array) -> jax.Array:  # [B', H, L, K] → [steps, pairs, L, K]
    x = x.reshape(b * heads, *x.shape[2:])
    if steps * pairs > b * heads:
      x = jnp.pad(x, ((0, steps * pairs - b * heads), (0, 0), (0, 0)))
    return x.reshape(steps, pairs, *x.shape[1:])

  step = jax.checkpoint(_softmax_attention)
  inputs = (by_pair(q), by_pair(k), by_pair(v))
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
  """Pre-LayerNorm attention + MLP with residuals, over sequences [B', L, D] (or
  along any leading axis of [..., D])."""

  def __init__(self, width: int, num_heads: int, mlp_ratio: float, *,
               use_rotary: bool = False, dropout_rate: float = 0.0,
               dtype: jnp.dtype = jnp.float32, attention_impl: str | None = None,
               attention_block: int = 0, rngs: nnx.Rngs):
    self.dropout_rate = dropout_rate
    self.norm1 = layer_norm(width, dtype=dtype, rngs=rngs)
    self.attn = Attention(width, num_heads, use_rotary=use_rotary,
                          dtype=dtype, attention_impl=attention_impl,
                          attention_block=attention_block, rngs=rngs)
    self.norm2 = layer_norm(width, dtype=dtype, rngs=rngs)
    self.mlp = Mlp(width, int(round(width * mlp_ratio)), dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, rng: jax.Array | None = None,
               positions: jax.Array | None = None, mask: jax.Array | None = None,
               *, seq_axis: int = -2) -> jax.Array:
    """x: [B', L, D] → [B', L, D] (or any [..., D] attending along `seq_axis`;
    `Attention`); rng: dropout key or None; mask: bool[B', L] elements attention
    may read (None = all)."""
    rngs = (None, None) if rng is None else tuple(jax.random.split(rng))
    x = x + dropout(self.attn(self.norm1(x), positions, mask, seq_axis=seq_axis),
                    self.dropout_rate, rngs[0])
    x = x + dropout(self.mlp(self.norm2(x)), self.dropout_rate, rngs[1])
    return x


def constrain(x: jax.Array, names: Sequence[str | None]) -> jax.Array:
  """Shorthand for `sharding.constrain` (a no-op outside the trainer's rules)."""
  return sharding.constrain(x, names)
