"""Reconstruction losses and the weights that decide which joint-frames count.

A joint-frame counts when its example is valid, its joint is present and it was
observed (not all four input channels zero). Everything is computed in float32
and guarded against empty selections, so an all-padding batch gives loss 0, not
NaN.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp


def clean_inputs(batch: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
  """The skeleton with everything that must not count zeroed, and its weights.

  Zeroing with `where` (not a product) keeps NaN or huge values in padding
  examples and absent joints out of the model and the loss entirely.

  Args:
    batch: "skeleton" f32[B, T, J, 4], "joint_present" f32[B, J], "valid" bool[B].

  Returns:
    skeleton: f32[B, T, J, 4], 0 where the joint-frame does not count.
    counted: f32[B, T, J], 1 for valid example × present joint × observed.
  """
  x = jnp.asarray(batch["skeleton"], jnp.float32)
  present = jnp.asarray(batch["joint_present"]) > 0
  valid = jnp.asarray(batch["valid"]).astype(bool)
  keep = valid[:, None, None] & present[:, None, :]
  x = jnp.where(keep[..., None], x, 0.0)
  observed = jnp.any(x != 0, axis=-1)
  counted = keep & observed
  return x, counted.astype(jnp.float32)


def clean_skeleton(skeleton: jax.Array, joint_present: jax.Array) -> jax.Array:
  """`clean_inputs` of a clip without batch padding: skeleton f32[B, T, J, 4],
  joint_present f32[B, J] → f32[B, T, J, 4] with absent joints zeroed."""
  valid = jnp.ones((skeleton.shape[0],), bool)
  return clean_inputs({"skeleton": skeleton, "joint_present": joint_present,
                       "valid": valid})[0]


def _safe_norm(d: jax.Array) -> jax.Array:
  """Euclidean norm over the last axis with a finite gradient at 0."""
  sq = jnp.sum(jnp.square(d), axis=-1)
  nonzero = sq > 0
  return jnp.where(nonzero, jnp.sqrt(jnp.where(nonzero, sq, 1.0)), 0.0)


def weighted_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
  """sum(w·v) / sum(w), 0 when no weight; `where` so that masked NaN stays out."""
  total = jnp.sum(weights)
  num = jnp.sum(jnp.where(weights > 0, values * weights, 0.0))
  return num / jnp.maximum(total, 1e-6)


def mpjpe(pred: jax.Array, target: jax.Array, weights: jax.Array) -> jax.Array:
  """Mean per-joint position error (same units as the inputs).

  Args:
    pred, target: f32[..., 3]; weights: f32[...].
  """
  return weighted_mean(_safe_norm(pred - target), weights)


def velocity_error(pred: jax.Array, target: jax.Array, weights: jax.Array) -> jax.Array:
  """MPJPE of frame-to-frame differences; a difference counts when both frames do.

  Args:
    pred, target: f32[B, T, J, 3]; weights: f32[B, T, J].
  """
  dp = pred[:, 1:] - pred[:, :-1]
  dt = target[:, 1:] - target[:, :-1]
  return mpjpe(dp, dt, weights[:, 1:] * weights[:, :-1])


def reconstruction_loss(pred: jax.Array, target: jax.Array, weights: jax.Array,
                        velocity_weight: float
                        ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Position error + velocity_weight × velocity error.

  Args:
    pred, target: f32[B, T, J, 3] (pred is cast to float32).
    weights: f32[B, T, J], already restricted to what should count (hidden only,
      for example).
    velocity_weight: λ.

  Returns:
    loss f32[] and metrics {"loss", "position", "velocity"} (float32 scalars).
  """
  pred = pred.astype(jnp.float32)
  target = target.astype(jnp.float32)
  weights = weights.astype(jnp.float32)
  position = mpjpe(pred, target, weights)
  velocity = velocity_error(pred, target, weights)
  loss = position + velocity_weight * velocity
  return loss, {"loss": loss, "position": position, "velocity": velocity}


def frame_bone_lengths(skeleton: jax.Array, counted: jax.Array, parents: jax.Array
                       ) -> tuple[jax.Array, jax.Array]:
  """Each joint's bone (joint to parent) length in every frame.

  Args:
    skeleton: f32[B, T, J, 3]; counted: f32[B, T, J] (`clean_inputs`);
    parents: int[J], the parent's index in the same joint axis, -1 for none.

  Returns:
    lengths f32[B, T, J] and both f32[B, T, J]: 1 where the joint has a parent and
    both ends count in that frame (lengths elsewhere are not meaningful).
  """
  has_parent = parents >= 0
  parent = jnp.where(has_parent, parents, 0)
  both = counted * counted[:, :, parent] * has_parent.astype(jnp.float32)
  return _safe_norm(skeleton - skeleton[:, :, parent]), both


def bone_lengths(skeleton: jax.Array, counted: jax.Array, parents: jax.Array
                 ) -> tuple[jax.Array, jax.Array]:
  """`frame_bone_lengths` averaged over the frames where both ends count.

  Returns:
    lengths f32[B, J] (0 where undefined) and weights f32[B, J]: 1 where the bone
    has a parent and at least one frame with both ends counted.
  """
  length, both = frame_bone_lengths(skeleton, counted, parents)
  frames = jnp.sum(both, axis=1)
  total = jnp.sum(jnp.where(both > 0, length * both, 0.0), axis=1)
  return total / jnp.maximum(frames, 1.0), (frames > 0).astype(jnp.float32)


def hidden_fraction(hidden: jax.Array, counted: jax.Array) -> jax.Array:
  """Fraction of counted joint-frames that are hidden. hidden: bool[B, T, J]."""
  return weighted_mean(hidden.astype(jnp.float32), counted)
