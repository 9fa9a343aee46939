"""Which inputs the model must reconstruct: body-region span masks and token splits.

Pure, vectorised, jit-friendly functions; all randomness comes from the key passed
in. Two schemes:

  GaitMAE (`make_mask` + `apply_mask`): time is cut into spans of `span_frames`;
  in every span of every example `regions_hidden` of the six masking regions are
  hidden, a `frame_ratio` fraction of whole frames and a `joint_ratio` fraction of
  single joint-frames are hidden on top, and the
  regions of `always_hide` are hidden everywhere (ablations). Hidden inputs are
  zeroed and flagged in a fifth, mask channel.

  MAMP (`split_tokens`): a fixed number of tokens per example is kept visible,
  chosen by sorting random scores, so that every shape is static.

The "hands" region exists only in the all32 joint set; for masking its joints
belong to the arm on their side, so a hidden arm never leaves its hand visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gait_jax import skeleton

# The six masking regions, in the order of the region ids used below.
MASK_REGIONS: tuple[str, ...] = (
    "head", "torso", "left_arm", "right_arm", "left_leg", "right_leg")
NUM_MASK_REGIONS = len(MASK_REGIONS)


def region_ids(joints: Sequence[str]) -> np.ndarray:
  """int32[J]: each joint's masking region (an index into MASK_REGIONS).

  Args:
    joints: canonical joint names (`skeleton.JOINTS`) of the selected joint set.
  """
  of_joint = skeleton.region_of_joint()
  ids = []
  for name in joints:
    if name not in of_joint:
      raise ValueError(f"unknown joint {name!r}; canonical joints are {skeleton.JOINTS}")
    region = of_joint[name]
    if region == "hands":
      region = "left_arm" if name.endswith("_LEFT") else "right_arm"
    ids.append(MASK_REGIONS.index(region))
  return np.asarray(ids, np.int32)


def region_index(names: Sequence[str]) -> tuple[int, ...]:
  """Indices into MASK_REGIONS of region `names`, with a clear error for typos."""
  unknown = [n for n in names if n not in MASK_REGIONS]
  if unknown:
    raise ValueError(f"unknown masking regions {unknown}; expected names from "
                     f"{MASK_REGIONS}")
  return tuple(MASK_REGIONS.index(n) for n in names)


def always_hidden(num_frames: int, joint_regions: np.ndarray | Sequence[int],
                  hide_regions: Sequence[str]) -> jax.Array:
  """bool[T, J]: True for the joints of `hide_regions`, in every frame."""
  joint_regions = np.asarray(joint_regions, np.int32)
  hide = np.isin(joint_regions, region_index(hide_regions))
  return jnp.broadcast_to(jnp.asarray(hide), (num_frames, len(joint_regions)))


def make_mask(rng: jax.Array, batch_size: int, num_frames: int,
              joint_regions: np.ndarray | Sequence[int], cfg: Any) -> jax.Array:
  """Draws which joint-frames are hidden from the model.

  Args:
    rng: PRNG key; the only source of randomness.
    batch_size, num_frames: B and T.
    joint_regions: int[J] masking region of each joint (`region_ids(joints)`).
    cfg: masking config with fields span_frames (S), regions_hidden (k of the 6
      regions hidden per span), frame_ratio (probability that a whole frame is
      hidden), joint_ratio (probability that one joint-frame is
      hidden) and always_hide (region names hidden everywhere).

  Returns:
    hidden: bool[B, T, J].
  """
  joint_regions = np.asarray(joint_regions, np.int32)
  span = int(cfg.span_frames)
  k = int(cfg.regions_hidden)
  if span < 1:
    raise ValueError(f"span_frames must be >= 1, got {span}")
  if not 0 <= k <= NUM_MASK_REGIONS:
    raise ValueError(f"regions_hidden must be in [0, {NUM_MASK_REGIONS}], got {k}")
  region_index(cfg.always_hide)
  num_spans = -(-num_frames // span)
  span_rng, frame_rng = jax.random.split(rng)

  # k regions uniformly without replacement per span: the k smallest of six
  # i.i.d. uniform scores form a uniformly random k-subset.
  scores = jax.random.uniform(span_rng, (batch_size, num_spans, NUM_MASK_REGIONS))
  rank = jnp.argsort(jnp.argsort(scores, axis=-1), axis=-1)
  region_hidden = rank < k  # [B, spans, 6]
  span_of_frame = np.arange(num_frames) // span
  hidden = region_hidden[:, span_of_frame][:, :, joint_regions]  # [B, T, J]

  if cfg.frame_ratio > 0:
    frames = jax.random.bernoulli(frame_rng, cfg.frame_ratio, (batch_size, num_frames))
    hidden = hidden | frames[:, :, None]
  if cfg.joint_ratio > 0:  # its own key: the draws above do not change with it
    joint_rng = jax.random.fold_in(frame_rng, 1)
    hidden = hidden | jax.random.bernoulli(joint_rng, cfg.joint_ratio, hidden.shape)
  if cfg.always_hide:
    hidden = hidden | always_hidden(num_frames, joint_regions, cfg.always_hide)[None]
  return hidden


def apply_mask(skeleton_in: jax.Array, hidden: jax.Array,
               noise_rng: jax.Array | None = None, noise_std: float = 0.0) -> jax.Array:
  """Builds the model input: hidden joint-frames zeroed and flagged.

  Noise goes only on visible, observed joint-frames: an unobserved one (all four
  channels 0) must keep telling the model that nothing was measured there.

  Args:
    skeleton_in: f32[B, T, J, 4] (x, y, z, confidence).
    hidden: bool[B, T, J].
    noise_rng: key for Gaussian noise on the visible xyz; None = no noise.
    noise_std: its standard deviation in metres.

  Returns:
    f32[B, T, J, 5]: (x, y, z, confidence, mask), mask = 1 where hidden.
  """
  x = add_noise(skeleton_in, noise_rng, noise_std)
  x = jnp.where(hidden[..., None], jnp.zeros((), x.dtype), x)
  return jnp.concatenate([x, hidden[..., None].astype(x.dtype)], axis=-1)


def add_noise(skeleton_in: jax.Array, rng: jax.Array | None,
              noise_std: float) -> jax.Array:
  """Gaussian noise (std metres) on the xyz of observed joint-frames.

  An unobserved joint-frame (all four channels 0) stays exactly 0. rng None or
  noise_std 0 returns the input unchanged. skeleton_in: f32[..., 4].
  """
  if rng is None or noise_std <= 0:
    return skeleton_in
  x = skeleton_in
  observed = jnp.any(x != 0, axis=-1, keepdims=True)
  noise = noise_std * jax.random.normal(rng, x.shape[:-1] + (3,), x.dtype)
  noise = jnp.where(observed, noise, jnp.zeros((), x.dtype))
  return jnp.concatenate([x[..., :3] + noise, x[..., 3:]], axis=-1)


def split_tokens(rng: jax.Array, batch_size: int, num_tokens: int,
                 mask_ratio: float) -> tuple[jax.Array, jax.Array, jax.Array]:
  """MAE-style random split of N tokens per example into visible and hidden.

  Exactly `num_visible(num_tokens, mask_ratio)` tokens per example stay visible,
  so that the encoder's input has a static shape.

  Returns:
    keep: int32[B, K] indices of the visible tokens (ascending scores, not sorted
      by position).
    restore: int32[B, N] the permutation that puts [visible..., hidden...] back in
      token order: `shuffled[b, restore[b]]` is in token order.
    hidden: bool[B, N] True for the hidden tokens.
  """
  k = num_visible(num_tokens, mask_ratio)
  scores = jax.random.uniform(rng, (batch_size, num_tokens))
  shuffle = jnp.argsort(scores, axis=-1).astype(jnp.int32)
  restore = jnp.argsort(shuffle, axis=-1).astype(jnp.int32)
  keep = shuffle[:, :k]
  hidden = restore >= k
  return keep, restore, hidden


def num_visible(num_tokens: int, mask_ratio: float) -> int:
  """Tokens kept visible: round((1 - ratio) * N), at least 1 and at most N."""
  if not 0.0 <= mask_ratio < 1.0:
    raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
  return int(min(num_tokens, max(1, round((1.0 - mask_ratio) * num_tokens))))
