"""GaitMAE: a dual-stream spatiotemporal transformer over joints × frames tokens.

The published model's design (DSTformer-style, after MotionBERT): every joint in
every frame is a token; each layer runs a spatial→temporal branch (attention over
the J joints of a frame, then over the T frames of a joint) and a
temporal→spatial branch, and fuses them per token with learned weights
α = softmax(W [ST; TS]), out = α₀·ST + α₁·TS. A LayerNorm + linear head
reconstructs every token's xyz from inputs whose hidden joint-frames are zeroed
and flagged (see `masking`).

Shapes: B examples, T frames, J joints, D = cfg.width; the residual stream stays
[B, T, J, D] and is sharding-constrained as ("batch", "frames", "joints",
"embed") between layers. The layers are one `stack` (parameters stacked on a
leading "layers" axis, applied with `lax.scan`, each layer under remat when
cfg.remat).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from gait_jax.models import layers
from gait_jax.models import losses
from gait_jax.models import masking
from gait_jax.models import stack

STREAM = ("batch", "frames", "joints", "embed")
IN_CHANNELS = 5  # x, y, z, confidence, mask


@dataclasses.dataclass(frozen=True)
class MaskingSpec:
  """The masking fields of the config, frozen (hashable static module data)."""
  span_frames: int
  regions_hidden: int
  frame_ratio: float
  noise_std: float
  always_hide: tuple[str, ...]

  @classmethod
  def from_config(cls, c: ml_collections.ConfigDict) -> MaskingSpec:
    return cls(int(c.span_frames), int(c.regions_hidden), float(c.frame_ratio),
               float(c.noise_std), tuple(c.always_hide))


def _fold(rng: jax.Array | None, i: int) -> jax.Array | None:
  return None if rng is None else jax.random.fold_in(rng, i)


class DualStreamLayer(nnx.Module):
  """One GaitMAE layer: ST and TS branches of attention + MLP blocks, fused."""

  def __init__(self, width: int, num_heads: int, mlp_ratio: float, *, num_sinks: int,
               rotary: bool, dropout_rate: float, dtype: jnp.dtype,
               attention_impl: str | None, attention_block: int, rngs: nnx.Rngs):
    def block(temporal: bool) -> layers.TransformerBlock:
      return layers.TransformerBlock(
          width, num_heads, mlp_ratio, num_sinks=num_sinks,
          use_rotary=rotary and temporal, dropout_rate=dropout_rate, dtype=dtype,
          attention_impl=attention_impl, attention_block=attention_block, rngs=rngs)
    self.dtype = dtype
    self.st_spatial = block(temporal=False)
    self.st_temporal = block(temporal=True)
    self.ts_temporal = block(temporal=True)
    self.ts_spatial = block(temporal=False)
    # Zero kernel and equal biases: both branches start with weight 1/2.
    self.fuse = layers.dense(2 * width, 2, ("embed", None), dtype=dtype, rngs=rngs,
                             kernel_init=layers.ZEROS,
                             bias_init=nnx.initializers.constant(0.5))

  @staticmethod
  def _spatial(block: layers.TransformerBlock, x: jax.Array,
               rng: jax.Array | None) -> jax.Array:
    b, t, j, d = x.shape
    return block(x.reshape(b * t, j, d), rng).reshape(b, t, j, d)

  @staticmethod
  def _temporal(block: layers.TransformerBlock, x: jax.Array,
                rng: jax.Array | None) -> jax.Array:
    b, t, j, d = x.shape
    seq = x.transpose(0, 2, 1, 3).reshape(b * j, t, d)
    out = block(seq, rng, jnp.arange(t, dtype=jnp.float32))
    return out.reshape(b, j, t, d).transpose(0, 2, 1, 3)

  def __call__(self, x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
    """x: [B, T, J, D] → [B, T, J, D]; rng: dropout key or None."""
    st = self._temporal(self.st_temporal, self._spatial(self.st_spatial, x, _fold(rng, 0)),
                        _fold(rng, 1))
    ts = self._spatial(self.ts_spatial, self._temporal(self.ts_temporal, x, _fold(rng, 2)),
                       _fold(rng, 3))
    logits = self.fuse(jnp.concatenate([st, ts], axis=-1))
    alpha = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(st.dtype)
    return alpha[..., :1] * st + alpha[..., 1:] * ts


class GaitMAE(nnx.Module):
  """Masked-reconstruction GaitMAE; see the module docstring and `models.build`."""

  def __init__(self, cfg: ml_collections.ConfigDict, joints: Sequence[str],
               num_frames: int, *, rngs: nnx.Rngs):
    if cfg.temporal_pos not in ("rotary", "learned"):
      raise ValueError(f"temporal_pos={cfg.temporal_pos!r}; expected rotary or learned")
    if cfg.depth < 1:
      raise ValueError(f"depth must be >= 1, got {cfg.depth}")
    dtype = jnp.dtype(cfg.dtype)
    width = int(cfg.width)
    self.joints = tuple(joints)
    self.joint_regions = tuple(int(r) for r in masking.region_ids(self.joints))
    self.num_frames = int(num_frames)
    self.dtype = dtype
    self.remat = bool(cfg.remat)
    self.temporal_pos = str(cfg.temporal_pos)
    self.mask_spec = MaskingSpec.from_config(cfg.masking)
    masking.region_index(self.mask_spec.always_hide)  # fail early on a typo
    self.velocity_weight = float(cfg.loss.velocity_weight)
    self.hidden_only = bool(cfg.loss.hidden_only)
    num_joints = len(self.joints)

    # Separate input weights per joint: a joint's channels mean different things
    # for different joints (e.g. how reliable its confidence is).
    self.embed_kernel = layers.make_param(
        rngs, layers.KERNEL_INIT, (num_joints, IN_CHANNELS, width),
        ("joints", None, "embed"))
    self.joint_embed = layers.make_param(
        rngs, layers.KERNEL_INIT, (num_joints, width), ("joints", "embed"))
    if self.temporal_pos == "learned":
      self.temporal_embed = layers.make_param(
          rngs, layers.KERNEL_INIT, (self.num_frames, width), ("frames", "embed"))
    self.depth = int(cfg.depth)
    self.layers = stack.create(
        lambda layer_rngs: DualStreamLayer(
            width, int(cfg.num_heads), float(cfg.mlp_ratio), num_sinks=int(cfg.num_sinks),
            rotary=self.temporal_pos == "rotary", dropout_rate=float(cfg.dropout),
            dtype=dtype, attention_impl=cfg.attention_impl or None,
            attention_block=int(cfg.attention_block), rngs=layer_rngs),
        self.depth, rngs)
    self.norm = layers.layer_norm(width, dtype=dtype, rngs=rngs)
    self.head = layers.dense(width, 3, ("embed", None), dtype=dtype, rngs=rngs)

  # --- Forward ----------------------------------------------------------------

  def _embed(self, x: jax.Array) -> jax.Array:
    """x: f32[B, T, J, 5] → [B, T, J, D] in the compute dtype."""
    t = x.shape[1]
    dtype = self.dtype
    h = jnp.einsum("btjc,jcd->btjd", x.astype(dtype), self.embed_kernel[...].astype(dtype))
    h = h + self.joint_embed[...].astype(dtype)
    if self.temporal_pos == "learned":
      if t > self.num_frames:
        raise ValueError(f"{t} frames but the learned temporal embedding has "
                         f"{self.num_frames}; build the model with num_frames >= {t}")
      h = h + self.temporal_embed[...][:t, None].astype(dtype)
    return layers.constrain(h, STREAM)

  def _stream(self, x: jax.Array, *, layer: int = -1,
              rng: jax.Array | None = None) -> jax.Array:
    """The residual stream after layer `layer` (Python indexing over cfg.depth).

    The last layer's output goes through the final LayerNorm (what the head
    reads); earlier layers' are returned raw. Args: x f32[B, T, J, 5] model input
    (`masking.apply_mask`); rng dropout key or None. Returns [B, T, J, D] in the
    compute dtype.
    """
    count = stack.layer_index(layer, self.depth) + 1
    h = stack.apply(self.layers, self._embed(x), rng, count=count, remat=self.remat,
                    names=STREAM)
    return self.norm(h) if count == self.depth else h

  def __call__(self, x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
    """x: f32[B, T, J, 5] model input → f32[B, T, J, 3] reconstructed xyz."""
    return self.head(self._stream(x, rng=rng)).astype(jnp.float32)

  # --- The API the trainer and the probes use ----------------------------------

  def _masked_forward(self, batch: Mapping[str, jax.Array], rng: jax.Array, train: bool):
    skel, counted = losses.clean_inputs(batch)
    b, t = skel.shape[:2]
    mask_rng, noise_rng, drop_rng = jax.random.split(rng, 3)
    hidden = masking.make_mask(mask_rng, b, t, self.joint_regions, self.mask_spec)
    x = masking.apply_mask(skel, hidden, noise_rng if train else None,
                           self.mask_spec.noise_std)
    pred = self(x, drop_rng if train else None)
    return skel, counted, hidden, pred

  def loss(self, batch: Mapping[str, jax.Array], rng: jax.Array, *, train: bool = True
           ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Masks with `rng`, reconstructs, returns (loss f32[], metrics of f32[]).

    Masking always applies (so that evaluation measures the same task); noise
    and dropout only when `train`. Metrics: loss, position (MPJPE, metres),
    velocity, hidden_fraction.
    """
    skel, counted, hidden, pred = self._masked_forward(batch, rng, train)
    weights = counted * hidden if self.hidden_only else counted
    loss, metrics = losses.reconstruction_loss(pred, skel[..., :3], weights,
                                               self.velocity_weight)
    metrics["hidden_fraction"] = losses.hidden_fraction(hidden, counted)
    return loss, metrics

  def reconstruct(self, batch: Mapping[str, jax.Array], rng: jax.Array
                  ) -> dict[str, jax.Array]:
    """Evaluation-mode reconstruction for figures: target and reconstruction
    f32[B, T, J, 3], hidden bool[B, T, J]."""
    skel, _, hidden, pred = self._masked_forward(batch, rng, train=False)
    return {"target": skel[..., :3], "reconstruction": pred, "hidden": hidden}

  def features(self, skeleton: jax.Array, *, layer: int = -1,
               hide_regions: Sequence[str] | None = None,
               hidden: jax.Array | None = None) -> jax.Array:
    """Per-token features without random masking (see `base.GaitModel`).

    Args:
      skeleton: f32[B, T, J, 4], cleaned (`losses.clean_inputs`).
      layer: which layer's output (see `_stream`); -1 = the last, normed.
      hide_regions: region names hidden in every frame (zeroed + mask channel);
        None = the config's masking.always_hide, () = nothing.
      hidden: bool[B, T, J] joint-frames hidden per example, on top of those
        regions (so with hide_regions None, always_hide still applies); None =
        none.

    Returns:
      [B, T, J, D] in the compute dtype.
    """
    t = skeleton.shape[1]
    hide = self.mask_spec.always_hide if hide_regions is None else tuple(hide_regions)
    mask = jnp.broadcast_to(
        masking.always_hidden(t, self.joint_regions, hide)[None], skeleton.shape[:3])
    if hidden is not None:
      mask = mask | hidden
    return self._stream(masking.apply_mask(skeleton, mask), layer=layer)

  def encode(self, skeleton: jax.Array, joint_present: jax.Array, *, layer: int = -1,
             hide_regions: Sequence[str] | None = None,
             hidden: jax.Array | None = None) -> jax.Array:
    """`features` of a raw clip: skeleton f32[B, T, J, 4], joint_present f32[B, J],
    hidden bool[B, T, J] or None → f32[B, T, J, D]."""
    skel = losses.clean_skeleton(skeleton, joint_present)
    return self.features(skel, layer=layer, hide_regions=hide_regions,
                         hidden=hidden).astype(jnp.float32)
