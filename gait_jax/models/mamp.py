"""MAMP-style masked autoencoder over joint × temporal-patch tokens.

After "Masked Motion Predictors" (Mao et al., ICCV 2023): a token is one joint
over `patch_frames` (p) frames, embedded linearly from its p × 4 channels plus a
joint and a patch-position embedding. A `mask_ratio` fraction of the N = (T/p)·J
tokens is hidden; the encoder (full attention) sees ONLY the K visible tokens,
a fixed number per example, so shapes are static. A light decoder gets the
encoded visible tokens plus a learned mask token at every hidden position, in
token order, and reconstructs each token's p × 3 positions or, with
`motion_targets`, its frame-to-frame motion x[t] - x[t-1]. The loss counts hidden
tokens only.

Token order is (patch, joint): token n = patch · J + joint. Activations are
sharding-constrained as ("batch", "tokens", "embed"). The encoder and the decoder
are each one `stack` (parameters stacked on a leading "layers" axis, applied with
`lax.scan`, each block under remat when cfg.remat).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from gait_jax.models import layers
from gait_jax.models import losses
from gait_jax.models import masking
from gait_jax.models import stack

TOKENS = ("batch", "tokens", "embed")
IN_CHANNELS = 4  # x, y, z, confidence


def _gather_tokens(x: jax.Array, idx: jax.Array) -> jax.Array:
  """x: [B, N, D], idx: int[B, K] → [B, K, D]."""
  return jnp.take_along_axis(x, idx[..., None], axis=1)


class Mamp(nnx.Module):
  """MAMP encoder + decoder; see the module docstring and `models.build`."""

  def __init__(self, cfg: ml_collections.ConfigDict, joints: Sequence[str],
               num_frames: int, *, rngs: nnx.Rngs):
    p = int(cfg.patch_frames)
    if p < 1 or num_frames % p:
      raise ValueError(f"num_frames={num_frames} is not a multiple of "
                       f"patch_frames={p}")
    if cfg.depth < 1 or cfg.decoder_depth < 1:
      raise ValueError(f"depth and decoder_depth must be >= 1, got {cfg.depth} and "
                       f"{cfg.decoder_depth}")
    dtype = jnp.dtype(cfg.dtype)
    width, dec_width = int(cfg.width), int(cfg.decoder_width)
    self.joints = tuple(joints)
    self.joint_regions = tuple(int(r) for r in masking.region_ids(self.joints))
    self.num_frames = int(num_frames)
    self.patch_frames = p
    self.mask_ratio = float(cfg.mask_ratio)
    masking.num_visible(1, self.mask_ratio)  # validates the ratio
    self.motion_targets = bool(cfg.motion_targets)
    self.noise_std = float(cfg.noise_std)
    self.velocity_weight = float(cfg.loss.velocity_weight)
    self.remat = bool(cfg.remat)
    self.dtype = dtype
    self.depth = int(cfg.depth)
    num_joints, num_patches = len(self.joints), self.num_frames // p
    impl = cfg.attention_impl or None

    def blocks(depth: int, w: int, heads: int) -> layers.TransformerBlock:
      return stack.create(
          lambda block_rngs: layers.TransformerBlock(
              w, heads, float(cfg.mlp_ratio), dropout_rate=float(cfg.dropout),
              dtype=dtype, attention_impl=impl, attention_block=int(cfg.attention_block),
              rngs=block_rngs),
          depth, rngs)

    def embedding(shape: tuple[int, int], names: tuple[str, str]) -> nnx.Param:
      return layers.make_param(rngs, layers.KERNEL_INIT, shape, names)

    self.patch_embed = layers.dense(p * IN_CHANNELS, width, (None, "embed"),
                                    dtype=dtype, rngs=rngs)
    self.joint_embed = embedding((num_joints, width), ("joints", "embed"))
    self.patch_pos = embedding((num_patches, width), ("frames", "embed"))
    self.encoder = blocks(self.depth, width, int(cfg.num_heads))
    self.encoder_norm = layers.layer_norm(width, dtype=dtype, rngs=rngs)

    self.decoder_embed = layers.dense(width, dec_width, (None, "embed"), dtype=dtype,
                                      rngs=rngs)
    self.mask_token = layers.make_param(rngs, layers.KERNEL_INIT, (dec_width,),
                                        ("embed",))
    self.decoder_joint_embed = embedding((num_joints, dec_width), ("joints", "embed"))
    self.decoder_patch_pos = embedding((num_patches, dec_width), ("frames", "embed"))
    self.decoder = blocks(int(cfg.decoder_depth), dec_width, int(cfg.decoder_heads))
    self.decoder_norm = layers.layer_norm(dec_width, dtype=dtype, rngs=rngs)
    self.head = layers.dense(dec_width, p * 3, ("embed", None), dtype=dtype, rngs=rngs)

  # --- Tokens -------------------------------------------------------------------

  def _num_patches(self, t: int) -> int:
    if t % self.patch_frames:
      raise ValueError(f"{t} frames is not a multiple of patch_frames="
                       f"{self.patch_frames}")
    if t > self.num_frames:
      raise ValueError(f"{t} frames but the model was built for at most "
                       f"{self.num_frames}")
    return t // self.patch_frames

  def tokens(self, skeleton: jax.Array) -> jax.Array:
    """skeleton f32[B, T, J, 4] → embedded tokens [B, N = T/p·J, D]."""
    b, t, j, c = skeleton.shape
    n_p, p, dtype = self._num_patches(t), self.patch_frames, self.dtype
    patches = skeleton.reshape(b, n_p, p, j, c).transpose(0, 1, 3, 2, 4)
    h = self.patch_embed(patches.reshape(b, n_p, j, p * c).astype(dtype))
    h = h + self.joint_embed[...].astype(dtype)
    h = h + self.patch_pos[...][:n_p, None].astype(dtype)
    return layers.constrain(h.reshape(b, n_p * j, -1), TOKENS)

  def _run(self, blocks: layers.TransformerBlock, h: jax.Array, rng: jax.Array | None,
           count: int | None = None, mask: jax.Array | None = None) -> jax.Array:
    """The first `count` (default: all) blocks of a stack over tokens [B, N, D];
    mask bool[B, N]: the tokens attention may read (None = all)."""
    return stack.apply(blocks, h, rng, count=count, remat=self.remat, names=TOKENS,
                       mask=mask)

  def encode_visible(self, skeleton: jax.Array, keep: jax.Array,
                     rng: jax.Array | None = None) -> jax.Array:
    """The encoder over the visible tokens only.

    Args:
      skeleton: f32[B, T, J, 4] (already cleaned: absent joints zeroed).
      keep: int32[B, K] indices of the visible tokens.
      rng: dropout key or None.

    Returns:
      [B, K, D] encoded visible tokens (after the encoder's LayerNorm).
    """
    h = _gather_tokens(self.tokens(skeleton), keep)
    return self.encoder_norm(self._run(self.encoder, h, rng))

  def decode(self, latent: jax.Array, restore: jax.Array, num_joints: int,
             rng: jax.Array | None = None) -> jax.Array:
    """Decoder: visible latents + mask tokens → f32[B, T, J, 3] for every token.

    Args:
      latent: [B, K, D] encoded visible tokens (in shuffled order).
      restore: int32[B, N] from `masking.split_tokens`.
    """
    b, k, _ = latent.shape
    n = restore.shape[1]
    n_p, p, dtype = n // num_joints, self.patch_frames, self.dtype
    h = self.decoder_embed(latent)
    fill = jnp.broadcast_to(self.mask_token[...].astype(dtype), (b, n - k, h.shape[-1]))
    h = _gather_tokens(jnp.concatenate([h, fill], axis=1), restore)
    pos = (self.decoder_patch_pos[...][:n_p, None] + self.decoder_joint_embed[...][None])
    h = h + pos.reshape(n, -1).astype(dtype)
    h = self.decoder_norm(self._run(self.decoder, layers.constrain(h, TOKENS), rng))
    out = self.head(h).astype(jnp.float32).reshape(b, n_p, num_joints, p, 3)
    return out.transpose(0, 1, 3, 2, 4).reshape(b, n_p * p, num_joints, 3)

  # --- The API the trainer and the probes use ----------------------------------

  def _masked_forward(self, batch: Mapping[str, jax.Array], rng: jax.Array, train: bool):
    skel, counted = losses.clean_inputs(batch)
    b, t, j = skel.shape[:3]
    n_p = self._num_patches(t)
    mask_rng, noise_rng, enc_rng, dec_rng = jax.random.split(rng, 4)
    keep, restore, hidden_tokens = masking.split_tokens(mask_rng, b, n_p * j,
                                                        self.mask_ratio)
    x = masking.add_noise(skel, noise_rng if train else None, self.noise_std)
    latent = self.encode_visible(x, keep, enc_rng if train else None)
    pred = self.decode(latent, restore, j, dec_rng if train else None)
    # Token-level hidden flags → every frame of the token's patch.
    hidden = jnp.repeat(hidden_tokens.reshape(b, n_p, 1, j), self.patch_frames, axis=1)
    hidden = hidden.reshape(b, t, j)
    target, weights = skel[..., :3], counted
    if self.motion_targets:
      target, weights = _motion(target, counted)
    return target, pred, hidden, counted, weights

  def loss(self, batch: Mapping[str, jax.Array], rng: jax.Array, *, train: bool = True
           ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Hidden-token reconstruction loss (float32) and metrics.

    Metrics: loss; position = mean per-joint error of the reconstruction target
    over hidden joint-frames (metres; with motion_targets, of the motion in
    metres per frame); velocity = the same on frame differences; hidden_fraction.
    """
    target, pred, hidden, counted, weights = self._masked_forward(batch, rng, train)
    loss, metrics = losses.reconstruction_loss(pred, target, weights * hidden,
                                               self.velocity_weight)
    metrics["hidden_fraction"] = losses.hidden_fraction(hidden, counted)
    return loss, metrics

  def reconstruct(self, batch: Mapping[str, jax.Array], rng: jax.Array
                  ) -> dict[str, jax.Array]:
    """Evaluation-mode reconstruction: target and reconstruction f32[B, T, J, 3]
    (positions, or motions with motion_targets), hidden bool[B, T, J]."""
    target, pred, hidden, _, _ = self._masked_forward(batch, rng, train=False)
    return {"target": target, "reconstruction": pred, "hidden": hidden}

  def features(self, skeleton: jax.Array, *, layer: int = -1,
               hide_regions: Sequence[str] | None = None,
               hidden: jax.Array | None = None) -> jax.Array:
    """Encoder features of all tokens, no random masking (see `base.GaitModel`).

    Args:
      skeleton: f32[B, T, J, 4], cleaned (`losses.clean_inputs`).
      layer: encoder block whose output is returned (Python indexing); -1 = the
        last, after the encoder's LayerNorm.
      hide_regions: region names whose tokens the encoder does not see (their
        features are returned as 0); None or () = none.
      hidden: bool[B, T, J] joint-frames hidden per example, on top of those
        regions; a token (one joint × patch_frames frames) any of whose frames
        is hidden is not seen (its features are 0). The encoder then runs over
        all tokens with the hidden ones masked out of attention (same result
        as leaving them out, up to float rounding). None = none.

    Returns:
      [B, T/p, J, D] in the compute dtype.
    """
    last = stack.layer_index(layer, self.depth)
    b, t, j = skeleton.shape[:3]
    h = self.tokens(skeleton)
    n_p = h.shape[1] // j
    region_hidden = np.zeros(j, bool)
    if hide_regions:
      region_hidden = np.isin(np.asarray(self.joint_regions),
                              masking.region_index(hide_regions))
    if hidden is None:  # the same hidden tokens in every example: leave them out
      seen = np.arange(n_p * j)
      seen = seen[~region_hidden[seen % j]]
      h = self._run(self.encoder, h[:, seen], None, count=last + 1)
      if last == self.depth - 1:
        h = self.encoder_norm(h)
      out = jnp.zeros((b, n_p * j, h.shape[-1]), h.dtype).at[:, seen].set(h)
      return out.reshape(b, n_p, j, -1)
    token_hidden = hidden.reshape(b, n_p, t // n_p, j).any(axis=2) | region_hidden
    token_hidden = token_hidden.reshape(b, n_p * j)
    h = self._run(self.encoder, h, None, count=last + 1, mask=~token_hidden)
    if last == self.depth - 1:
      h = self.encoder_norm(h)
    out = jnp.where(token_hidden[..., None], jnp.zeros((), h.dtype), h)
    return out.reshape(b, n_p, j, -1)

  def encode(self, skeleton: jax.Array, joint_present: jax.Array, *, layer: int = -1,
             hide_regions: Sequence[str] | None = None,
             hidden: jax.Array | None = None) -> jax.Array:
    """`features` of a raw clip: skeleton f32[B, T, J, 4], joint_present f32[B, J],
    hidden bool[B, T, J] or None → f32[B, T/p, J, D]."""
    skel = losses.clean_skeleton(skeleton, joint_present)
    return self.features(skel, layer=layer, hide_regions=hide_regions,
                         hidden=hidden).astype(jnp.float32)


def _motion(positions: jax.Array, counted: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Frame-to-frame motion x[t] - x[t-1] (0 at t = 0) and where it counts.

  Args: positions f32[B, T, J, 3], counted f32[B, T, J]. A motion counts when
  both of its frames do; the first frame's never does.
  """
  motion = positions - jnp.concatenate([positions[:, :1], positions[:, :-1]], axis=1)
  weights = counted * jnp.concatenate([jnp.zeros_like(counted[:, :1]), counted[:, :-1]],
                                      axis=1)
  return motion, weights
