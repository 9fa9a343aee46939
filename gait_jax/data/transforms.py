"""Online transforms: one clip record → one model example, as pure numpy.

Order (each step sees the previous one's output):

  decode → select joints → temporal crop → pelvis-centring → rotation about the
  vertical → scale normalisation → scale jitter → pack

Working example (between steps), T frames, J joints:
  positions  f32[T, J, 3]  metres, canonical frame (+x right, +y down, +z away)
  confidence f32[T, J]     in [0, 1]
  present    bool[J]       joint provided by the source layout
  observed   bool[T, J]    present and observed in that frame (see decode_example)
  root       f32[T, 3]     pelvis trajectory, taken from the full 32-joint skeleton
                           before joint selection, so centring and rotation work
                           for joint sets without the pelvis
  body_size  float         metres (see `body_size`), also from the full skeleton
  clip_id    int           global record index in the shard set
  valid      bool          False for the padding of the last evaluation batch

Packed example (what the model gets):
  skeleton      f32[T', J', 4]  (x, y, z, confidence); 0 where not observed
  joint_present f32[J']         1 / 0
  clip_id       i32[]
  valid         bool[]

Random steps draw from the `np.random.Generator` that Grain derives from the
pipeline seed and the element's index, so an element is augmented identically in
a run and in a run restored from a checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import grain
import numpy as np

from gait_jax import skeleton
from gait_jax.data import config as config_lib
from gait_jax.data import records

Example = dict[str, Any]

_PELVIS = skeleton.JOINT_INDEX["PELVIS"]
_SPINE_CHEST = skeleton.JOINT_INDEX["SPINE_CHEST"]
_LEGS = tuple(tuple(skeleton.JOINT_INDEX[f"{j}_{side}"] for j in ("HIP", "KNEE", "ANKLE"))
              for side in ("LEFT", "RIGHT"))
_VERTICAL = 1  # y


def decode_example(record: bytes, clip_id: int, valid: bool = True) -> Example:
  """Record bytes → working example on all 32 joints (writable copies).

  `observed` bool[T, 32] is False for missing joints and for joint-frames the
  record holds as NaN (unfillable gaps outside QC's required joints); their
  coordinates and confidence are 0 and stay 0 through every transform.
  """
  arrays = records.decode_arrays(record)
  present = arrays["present"].astype(bool)
  positions = np.asarray(arrays["positions"], np.float32)
  observed = present[None, :] & np.isfinite(positions).all(-1)
  positions = np.where(observed[..., None], positions, np.float32(0))
  confidence = np.clip(arrays["confidence"], 0, 1) * observed
  return {"positions": positions, "confidence": confidence.astype(np.float32),
          "present": present, "observed": observed, "clip_id": int(clip_id),
          "valid": bool(valid)}


def root_trajectory(positions: np.ndarray, present: np.ndarray) -> np.ndarray:
  """f32[T, 3]: the pelvis, or the mean of the present joints if there is none."""
  if present[_PELVIS]:
    return positions[:, _PELVIS].copy()
  if not present.any():
    return np.zeros((positions.shape[0], 3), np.float32)
  return positions[:, present].mean(1)


def body_size(positions: np.ndarray, present: np.ndarray) -> float:
  """The clip's body size in metres, or 1.0 when a joint it needs is missing.

  Median over frames of |PELVIS - SPINE_CHEST| + mean over sides of
  (|HIP - KNEE| + |KNEE - ANKLE|): trunk plus leg length, ~0.9 m for an adult.
  Every supported layout provides these joints; the median ignores single-frame
  tracking glitches. Args: positions f32[T, 32, 3] metres; present bool[32].
  """
  needed = [_PELVIS, _SPINE_CHEST, *sum(_LEGS, ())]
  if not present[needed].all():
    return 1.0

  def dist(a: int, b: int) -> np.ndarray:
    return np.linalg.norm(positions[:, a] - positions[:, b], axis=-1)

  legs = [dist(h, k) + dist(k, a) for h, k, a in _LEGS]
  size = float(np.median(dist(_PELVIS, _SPINE_CHEST) + 0.5 * (legs[0] + legs[1])))
  return size if size > 1e-3 else 1.0


def select_joints(ex: Example, indices: np.ndarray) -> Example:
  """Keeps joints `indices` (int[J']); records root and body size first."""
  root = root_trajectory(ex["positions"], ex["present"])
  size = body_size(ex["positions"], ex["present"])
  return {**ex, "positions": ex["positions"][:, indices],
          "confidence": ex["confidence"][:, indices], "present": ex["present"][indices],
          "observed": ex["observed"][:, indices],
          "root": root, "body_size": size}


def crop(ex: Example, frames: int, rng: np.random.Generator | None = None) -> Example:
  """A window of `frames` frames: random start with `rng`, centred without.

  frames = 0 keeps the whole clip.
  """
  t = ex["positions"].shape[0]
  if frames <= 0 or frames == t:
    return ex
  if frames > t:
    raise ValueError(f"clip {ex['clip_id']} has {t} frames, fewer than "
                     f"crop_frames={frames}")
  start = int(rng.integers(0, t - frames + 1)) if rng is not None else (t - frames) // 2
  sl = slice(start, start + frames)
  return {**ex, "positions": ex["positions"][sl], "confidence": ex["confidence"][sl],
          "observed": ex["observed"][sl], "root": ex["root"][sl]}


def center(ex: Example, mode: str) -> Example:
  """Subtracts the clip's mean root ("clip"), the per-frame root ("frame") or nothing."""
  if mode == "none":
    return ex
  if mode == "clip":
    offset = ex["root"].mean(0)
    return {**ex, "positions": ex["positions"] - offset, "root": ex["root"] - offset}
  if mode == "frame":
    return {**ex, "positions": ex["positions"] - ex["root"][:, None],
            "root": np.zeros_like(ex["root"])}
  raise ValueError(f"center={mode!r}; expected one of {config_lib.CENTER_MODES}")


def _vertical_axis_point(ex: Example) -> np.ndarray:
  """f32[3]: the clip's mean root with y zeroed — a point on the vertical axis."""
  point = ex["root"].mean(0)
  point[_VERTICAL] = 0.0
  return point


def rotate_vertical(ex: Example, angle: float) -> Example:
  """Rotates by `angle` radians about the vertical (y) axis through the mean root.

  y is unchanged; x and z turn, so bone lengths are kept.
  """
  c, s = np.cos(angle), np.sin(angle)
  # Rows act on (x, y, z); the y row and column are the identity.
  rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float32)
  point = _vertical_axis_point(ex)
  return {**ex, "positions": (ex["positions"] - point) @ rot.T + point,
          "root": (ex["root"] - point) @ rot.T + point}


def scale_about_root(ex: Example, factor: float) -> Example:
  """Multiplies sizes by `factor` about the mean root, so the body stays in place."""
  point = ex["root"].mean(0)
  return {**ex, "positions": (ex["positions"] - point) * np.float32(factor) + point,
          "root": (ex["root"] - point) * np.float32(factor) + point}


def normalise_scale(ex: Example, mode: str) -> Example:
  """Divides by the body size ("height") or leaves metres ("none")."""
  if mode == "none":
    return ex
  if mode == "height":
    return scale_about_root(ex, 1.0 / ex["body_size"])
  raise ValueError(f"scale={mode!r}; expected one of {config_lib.SCALE_MODES}")


def pack(ex: Example) -> Example:
  """Working example → model example (see module docstring); zeroes missing joints."""
  mask = ex["present"].astype(np.float32)
  observed = ex["observed"].astype(np.float32)
  xyz = ex["positions"] * observed[..., None]
  conf = ex["confidence"] * observed
  return {"skeleton": np.concatenate([xyz, conf[..., None]], -1).astype(np.float32),
          "joint_present": mask, "clip_id": np.int32(ex["clip_id"]),
          "valid": np.bool_(ex["valid"])}


@dataclasses.dataclass(frozen=True)
class TransformOptions:
  """The transform settings of a data config (see `config.get_data_config`)."""
  joints: tuple[int, ...]
  crop_frames: int = 0
  center: str = "clip"
  scale: str = "none"
  rotate_deg: float = 0.0
  scale_jitter: float = 0.0

  def __post_init__(self):
    if self.center not in config_lib.CENTER_MODES:
      raise ValueError(f"center={self.center!r}; expected one of {config_lib.CENTER_MODES}")
    if self.scale not in config_lib.SCALE_MODES:
      raise ValueError(f"scale={self.scale!r}; expected one of {config_lib.SCALE_MODES}")
    if self.crop_frames < 0 or self.rotate_deg < 0 or not 0 <= self.scale_jitter < 1:
      raise ValueError("crop_frames and rotate_deg must be >= 0, scale_jitter in [0, 1)")

  @classmethod
  def from_config(cls, cfg) -> TransformOptions:
    joints: str | Sequence[str] = cfg.joints
    return cls(joints=tuple(int(j) for j in skeleton.joint_indices(joints)),
               crop_frames=int(cfg.crop_frames), center=cfg.center, scale=cfg.scale,
               rotate_deg=float(cfg.rotate_deg), scale_jitter=float(cfg.scale_jitter))


def transform_example(ex: Example, opts: TransformOptions,
                      rng: np.random.Generator | None = None) -> Example:
  """Decoded example → packed example; `rng` given = training (random crop, augment).

  The random draws happen in a fixed order (crop start, angle, jitter factor).
  """
  ex = select_joints(ex, np.asarray(opts.joints))
  ex = crop(ex, opts.crop_frames, rng)
  ex = center(ex, opts.center)
  if rng is not None and opts.rotate_deg > 0:
    limit = np.deg2rad(opts.rotate_deg)
    ex = rotate_vertical(ex, float(rng.uniform(-limit, limit)))
  ex = normalise_scale(ex, opts.scale)
  if rng is not None and opts.scale_jitter > 0:
    ex = scale_about_root(ex, float(rng.uniform(1 - opts.scale_jitter,
                                                1 + opts.scale_jitter)))
  return pack(ex)


class DecodeRecord(grain.transforms.Map):
  """{"record": bytes, "clip_id": int, "valid": bool} → working example."""

  def map(self, element: dict[str, Any]) -> Example:
    return decode_example(element["record"], element["clip_id"], element["valid"])


class TrainTransform(grain.transforms.RandomMap):
  """Decoded example → packed example with random crop and augmentation."""

  def __init__(self, opts: TransformOptions):
    self.opts = opts

  def random_map(self, element: Example, rng: np.random.Generator) -> Example:
    return transform_example(element, self.opts, rng)


class EvalTransform(grain.transforms.Map):
  """Decoded example → packed example, deterministic (centre crop, no augmentation)."""

  def __init__(self, opts: TransformOptions):
    self.opts = opts

  def map(self, element: Example) -> Example:
    return transform_example(element, self.opts, None)
