"""GaitMAE: a dual-stream spatiotemporal transformer over joints × frames tokens.

The published model's design (DSTformer-style, after MotionBERT): every joint in
every frame is a token; each layer runs a spatial→temporal branch (attention over
the J joints of a frame, then over the T frames of a joint) and a
temporal→spatial branch, and fuses them per token with learned weights
α = softmax(W [ST; TS]), out = α₀·ST + α₁·TS. A LayerNorm, an optional
tanh pre-logits projection and a linear head reconstruct every token's xyz from
inputs whose hidden joint-frames are zeroed (and, with cfg.mask_channel, flagged;
see `masking`). Optional sink frames (cfg.num_sinks): learned frames prepended in
time that every layer processes with the rest, outside the rotary positions, and
that are dropped before the final LayerNorm. Two optional body-size aids (off in
every variant; README, "Body size"): cfg.bone_channel adds each joint's distance to
its parent in the frame as an input channel, and cfg.loss.bone_weight adds a term
in which each joint's time-mean last-layer token predicts its bone's length.
Together (λ = 10) they make the per-joint embedding match the segment lengths on
height and leg length, but the body-region ablation then finds fewer of the regions
the synthetic cohort plants (0 and 2 of 8 against 7 and 3 for two pretraining seeds;
zeroing the arms costs most systems the most: the cohort ties arm posture to BMI, and
with the covariates regressed out of the targets the arms' lead is gone; README).

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

from gait_jax import skeleton as skeleton_lib
from gait_jax.models import layers
from gait_jax.models import losses
from gait_jax.models import masking
from gait_jax.models import stack

STREAM = ("batch", "frames", "joints", "embed")
EMBEDDINGS = ("shared", "per_joint")


@dataclasses.dataclass(frozen=True)
class MaskingSpec:
  """The masking fields of the config, frozen (hashable static module data)."""
  span_frames: int
  regions_hidden: int
  frame_ratio: float
  joint_ratio: float
  noise_std: float
  always_hide: tuple[str, ...]

  @classmethod
  def from_config(cls, c: ml_collections.ConfigDict) -> MaskingSpec:
    return cls(int(c.span_frames), int(c.regions_hidden), float(c.frame_ratio),
               float(c.joint_ratio), float(c.noise_std), tuple(c.always_hide))


def _fold(rng: jax.Array | None, i: int) -> jax.Array | None:
  return None if rng is None else jax.random.fold_in(rng, i)


class DualStreamLayer(nnx.Module):
  """One GaitMAE layer: ST and TS branches of attention + MLP blocks, fused."""

  def __init__(self, width: int, num_heads: int, mlp_ratio: float, *, num_sinks: int,
               rotary: bool, dropout_rate: float, dtype: jnp.dtype,
               attention_impl: str | None, attention_block: int, rngs: nnx.Rngs):
    def block(temporal: bool) -> layers.TransformerBlock:
      return layers.TransformerBlock(
          width, num_heads, mlp_ratio, use_rotary=rotary and temporal,
          dropout_rate=dropout_rate, dtype=dtype, attention_impl=attention_impl,
          attention_block=attention_block, rngs=rngs)
    self.dtype = dtype
    self.num_sinks = num_sinks
    self.st_spatial = block(temporal=False)
    self.st_temporal = block(temporal=True)
    self.ts_temporal = block(temporal=True)
    self.ts_spatial = block(temporal=False)
    # Zero kernel and equal biases: both branches start with weight 1/2.
    self.fuse = layers.dense(2 * width, 2, ("embed", None), dtype=dtype, rngs=rngs,
                             kernel_init=layers.ZEROS,
                             bias_init=nnx.initializers.constant(0.5))

  def __call__(self, x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
    """x: [B, T, J, D] → [B, T, J, D]; rng: dropout key or None.

    Every block works on the stream in place: attention runs along the joints
    (axis 2) or the frames (axis 1) of [B, T, J, D] (`layers.Attention`), so the
    stream is never transposed; only q, k, v and the attention output are.
    """
    t = x.shape[1]
    # Sink frames sit at position 0 (no rotation), the clip's frames at 0..T-1.
    positions = jnp.concatenate([jnp.zeros(self.num_sinks, jnp.float32),
                                 jnp.arange(t - self.num_sinks, dtype=jnp.float32)])
    st = self.st_spatial(x, _fold(rng, 0), seq_axis=2)
    st = self.st_temporal(st, _fold(rng, 1), positions, seq_axis=1)
    ts = self.ts_temporal(x, _fold(rng, 2), positions, seq_axis=1)
    ts = self.ts_spatial(ts, _fold(rng, 3), seq_axis=2)
    # α = softmax(fuse([st; ts])) over two logits is α₀ = sigmoid(l₀ - l₁): one
    # matrix-vector pass over st and ts instead of a concatenated [.., 2D] copy.
    d = st.shape[-1]
    kernel = self.fuse.kernel[...].astype(jnp.float32)
    bias = self.fuse.bias[...].astype(jnp.float32)
    w = (kernel[:, 0] - kernel[:, 1]).astype(st.dtype)
    diff = (jnp.einsum("...d,d->...", st, w[:d], preferred_element_type=jnp.float32)
            + jnp.einsum("...d,d->...", ts, w[d:], preferred_element_type=jnp.float32)
            + (bias[0] - bias[1]))
    alpha = jax.nn.sigmoid(diff)[..., None].astype(st.dtype)
    return ts + alpha * (st - ts)


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
    # Each joint's parent in `joints` (its nearest ancestor there; -1: none).
    self.parents = tuple(int(p) for p in skeleton_lib.parents_within(self.joints))
    self.num_frames = int(num_frames)
    self.dtype = dtype
    self.remat = bool(cfg.remat)
    self.temporal_pos = str(cfg.temporal_pos)
    self.mask_spec = MaskingSpec.from_config(cfg.masking)
    masking.region_index(self.mask_spec.always_hide)  # fail early on a typo
    self.velocity_weight = float(cfg.loss.velocity_weight)
    self.hidden_only = bool(cfg.loss.hidden_only)
    self.bone_weight = float(cfg.loss.bone_weight)
    if cfg.embedding not in EMBEDDINGS:
      raise ValueError(f"embedding={cfg.embedding!r}; expected one of {EMBEDDINGS}")
    self.embedding = str(cfg.embedding)
    # x, y, z, confidence[, mask][, bone length]
    self.mask_channel = bool(cfg.mask_channel)
    self.bone_channel = bool(cfg.bone_channel)
    self.in_channels = 4 + self.mask_channel + self.bone_channel
    self.num_sinks = int(cfg.num_sinks)
    num_joints = len(self.joints)

    # The input projection: one for every joint (published), or one per joint (a
    # joint's channels mean different things for different joints, e.g. how
    # reliable its confidence is).
    if self.embedding == "shared":
      self.embed_kernel = layers.make_param(
          rngs, layers.KERNEL_INIT, (self.in_channels, width), (None, "embed"))
    else:
      self.embed_kernel = layers.make_param(
          rngs, layers.KERNEL_INIT, (num_joints, self.in_channels, width),
          ("joints", None, "embed"))
    self.joint_embed = layers.make_param(
        rngs, layers.KERNEL_INIT, (num_joints, width), ("joints", "embed"))
    if self.temporal_pos == "learned":
      self.temporal_embed = layers.make_param(
          rngs, layers.KERNEL_INIT, (self.num_frames, width), ("frames", "embed"))
    if self.num_sinks:
      self.sinks = layers.make_param(rngs, layers.KERNEL_INIT, (self.num_sinks, width),
                                     (None, "embed"))
    self.depth = int(cfg.depth)
    self.layers = stack.create(
        lambda layer_rngs: DualStreamLayer(
            width, int(cfg.num_heads), float(cfg.mlp_ratio), num_sinks=int(cfg.num_sinks),
            rotary=self.temporal_pos == "rotary", dropout_rate=float(cfg.dropout),
            dtype=dtype, attention_impl=cfg.attention_impl or None,
            attention_block=int(cfg.attention_block), rngs=layer_rngs),
        self.depth, rngs)
    self.norm = layers.layer_norm(width, dtype=dtype, rngs=rngs)
    # Reconstruction head: a tanh pre-logits projection to cfg.pre_logits (published:
    # 32), then linear to xyz; pre_logits 0 = linear from the stream.
    self.pre_logits = (layers.dense(width, int(cfg.pre_logits), ("embed", None), dtype=dtype,
                                    rngs=rngs) if cfg.pre_logits else None)
    self.head = layers.dense(int(cfg.pre_logits) or width, 3,
                             (None if cfg.pre_logits else "embed", None), dtype=dtype,
                             rngs=rngs)
    # The body-size head (cfg.loss.bone_weight): a joint's time-mean token → the
    # length of its bone to the parent joint (the nearest ancestor in the joint set).
    self.bone_head = (layers.dense(width, 1, ("embed", None), dtype=jnp.float32, rngs=rngs)
                      if self.bone_weight else None)

  # --- Forward ----------------------------------------------------------------

  def _embed(self, x: jax.Array) -> jax.Array:
    """x: f32[B, T, J, 5] → [B, S + T, J, D] in the compute dtype (S sink frames
    first)."""
    b, t, j = x.shape[:3]
    dtype = self.dtype
    channels = [x[..., :4 + self.mask_channel]]
    if self.bone_channel:
      channels.append(self._bone_lengths(x)[..., None])
    x = jnp.concatenate(channels, axis=-1).astype(dtype)
    kernel = self.embed_kernel[...].astype(dtype)
    if self.embedding == "shared":
      h = jnp.einsum("btjc,cd->btjd", x, kernel)
    else:
      h = jnp.einsum("btjc,jcd->btjd", x, kernel)
    h = h + self.joint_embed[...].astype(dtype)  # also the projection's bias
    if self.temporal_pos == "learned":
      if t > self.num_frames:
        raise ValueError(f"{t} frames but the learned temporal embedding has "
                         f"{self.num_frames}; build the model with num_frames >= {t}")
      h = h + self.temporal_embed[...][:t, None].astype(dtype)
    if self.num_sinks:
      sinks = self.sinks[...].astype(dtype)[None, :, None]
      h = jnp.concatenate([jnp.broadcast_to(sinks, (b, self.num_sinks, j, h.shape[-1])), h],
                          axis=1)
    return layers.constrain(h, STREAM)

  def _bone_lengths(self, x: jax.Array) -> jax.Array:
    """x: f32[B, T, J, 5] model input → f32[B, T, J]: each joint's distance to its
    parent in the frame where both are seen (not hidden, not all-zero), else 0."""
    seen = (jnp.any(x[..., :4] != 0, axis=-1) & (x[..., 4] == 0)).astype(jnp.float32)
    lengths, both = losses.frame_bone_lengths(x[..., :3], seen, jnp.array(self.parents))
    return lengths * both

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
                    names=STREAM)[:, self.num_sinks:]
    return self.norm(h) if count == self.depth else h

  def __call__(self, x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
    """x: f32[B, T, J, 5] model input → f32[B, T, J, 3] reconstructed xyz."""
    return self.decode_tokens(self._stream(x, rng=rng))

  def bone_length_head(self, features: jax.Array) -> jax.Array:
    """Last-layer token features [B, T, J, D] → f32[B, J] predicted bone lengths
    (metres) from each joint's mean over the frames (cfg.loss.bone_weight > 0)."""
    pooled = jnp.mean(features.astype(jnp.float32), axis=1)
    return self.bone_head(pooled)[..., 0]

  def decode_tokens(self, features: jax.Array) -> jax.Array:
    """The reconstruction head on last-layer token features ([..., D], from
    `features` or `encode` with layer -1) → f32[..., 3] xyz."""
    h = features.astype(self.dtype)
    if self.pre_logits is not None:
      h = jnp.tanh(self.pre_logits(h))
    return self.head(h).astype(jnp.float32)

  # --- The API the trainer and the probes use ----------------------------------

  def _masked_forward(self, batch: Mapping[str, jax.Array], rng: jax.Array, train: bool):
    skel, counted = losses.clean_inputs(batch)
    b, t = skel.shape[:2]
    mask_rng, noise_rng, drop_rng = jax.random.split(rng, 3)
    hidden = masking.make_mask(mask_rng, b, t, self.joint_regions, self.mask_spec)
    x = masking.apply_mask(skel, hidden, noise_rng if train else None,
                           self.mask_spec.noise_std)
    tokens = self._stream(x, rng=drop_rng if train else None)
    return skel, counted, hidden, tokens, self.decode_tokens(tokens)

  def loss(self, batch: Mapping[str, jax.Array], rng: jax.Array, *, train: bool = True
           ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Masks with `rng`, reconstructs, returns (loss f32[], metrics of f32[]).

    Masking always applies (so that evaluation measures the same task); noise
    and dropout only when `train`. Metrics: loss, position (MPJPE, metres),
    velocity, hidden_fraction; with cfg.loss.bone_weight also bone (the body-size
    head's mean absolute error, metres; loss includes bone_weight × bone).
    """
    skel, counted, hidden, tokens, pred = self._masked_forward(batch, rng, train)
    weights = counted * hidden if self.hidden_only else counted
    loss, metrics = losses.reconstruction_loss(pred, skel[..., :3], weights,
                                               self.velocity_weight)
    if self.bone_head is not None:
      target, known = losses.bone_lengths(skel[..., :3], counted, jnp.array(self.parents))
      bone = losses.weighted_mean(jnp.abs(self.bone_length_head(tokens) - target), known)
      loss = loss + self.bone_weight * bone
      metrics.update(loss=loss, bone=bone)
    metrics["hidden_fraction"] = losses.hidden_fraction(hidden, counted)
    return loss, metrics

  def reconstruct(self, batch: Mapping[str, jax.Array], rng: jax.Array
                  ) -> dict[str, jax.Array]:
    """Evaluation-mode reconstruction for figures: target and reconstruction
    f32[B, T, J, 3], hidden bool[B, T, J]."""
    skel, _, hidden, _, pred = self._masked_forward(batch, rng, train=False)
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
