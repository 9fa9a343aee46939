"""Body size of one clip: the skeleton's segment lengths and widths, in metres.

Each feature is the median over frames of the distance between two joints,
taken over the frames where both are observed: finite (a record holds NaN where
a joint was not seen, and `kinematics.as_nan_missing` makes joints the source
lacks NaN), not exactly at the camera's origin (how some trackers write a lost
joint), and, when confidences are given, more confident than
`segment_min_confidence` (QC gives samples it interpolated confidence 0). The
median ignores a few corrupted frames. Sided segments are the mean of the left
and right medians, or the one side seen when the other is not. A segment seen
in fewer than `segment_min_frames` frames is NaN, and the reason is reported.

  thigh_length_m      HIP - KNEE
  shank_length_m      KNEE - ANKLE
  leg_length_m        thigh + shank: hip joint to ankle joint
  trunk_length_m      PELVIS - SPINE_CHEST (every supported layout has both; a
                      file without SPINE_CHEST, like the UCalgary CSVs, gets NaN
                      rather than a PELVIS - NECK length, which is much longer)
  upper_arm_length_m  SHOULDER - ELBOW
  forearm_length_m    ELBOW - WRIST
  shoulder_width_m    SHOULDER_LEFT - SHOULDER_RIGHT
  hip_width_m         HIP_LEFT - HIP_RIGHT

A distance between two joints does not depend on the pose, the camera or the
task, so every task family gets these features. They are the tracker's joint
centres, not bony landmarks: comparable within a sensor, not with a tape measure.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gait_jax.features import kinematics as kin

J = kin.J

# Feature → the joint pairs it is measured between (left side first).
SEGMENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "thigh_length_m": (("HIP_LEFT", "KNEE_LEFT"), ("HIP_RIGHT", "KNEE_RIGHT")),
    "shank_length_m": (("KNEE_LEFT", "ANKLE_LEFT"), ("KNEE_RIGHT", "ANKLE_RIGHT")),
    "trunk_length_m": (("PELVIS", "SPINE_CHEST"),),
    "upper_arm_length_m": (("SHOULDER_LEFT", "ELBOW_LEFT"), ("SHOULDER_RIGHT", "ELBOW_RIGHT")),
    "forearm_length_m": (("ELBOW_LEFT", "WRIST_LEFT"), ("ELBOW_RIGHT", "WRIST_RIGHT")),
    "shoulder_width_m": (("SHOULDER_LEFT", "SHOULDER_RIGHT"),),
    "hip_width_m": (("HIP_LEFT", "HIP_RIGHT"),),
}
BODY_FEATURES: tuple[str, ...] = (
    "thigh_length_m", "shank_length_m", "leg_length_m", "trunk_length_m",
    "upper_arm_length_m", "forearm_length_m", "shoulder_width_m", "hip_width_m",
)
assert set(BODY_FEATURES) == set(SEGMENTS) | {"leg_length_m"}

_PAIRS = [pair for pairs in SEGMENTS.values() for pair in pairs]
_A = np.array([J[a] for a, _ in _PAIRS])
_B = np.array([J[b] for _, b in _PAIRS])


@dataclasses.dataclass(frozen=True)
class BodySizeOptions:
  """Attributes:
    body_size: compute BODY_FEATURES for every task family; False leaves them
      NaN (and not expected, so they never make a clip "partial").
    segment_min_frames: a segment whose two joints are observed together in
      fewer frames than this is NaN.
    segment_min_confidence: a joint-frame of this confidence or less does not
      count as observed (0: only QC's interpolated samples are left out).
  """
  body_size: bool = True
  segment_min_frames: int = 10
  segment_min_confidence: float = 0.0


def observed(positions: np.ndarray, confidence: np.ndarray | None = None,
             min_confidence: float = 0.0) -> np.ndarray:
  """bool[T, 32]: joint-frames measured by the tracker (module docstring).

  Args:
    positions: f[T, 32, 3] metres, NaN where missing or unobserved.
    confidence: f[T, 32] in [0, 1], or None (every finite joint-frame counts).
    min_confidence: confidences at or below this do not count.
  """
  pos = np.asarray(positions)
  seen = np.isfinite(pos).all(-1) & (pos != 0).any(-1)
  if confidence is not None:
    seen &= np.asarray(confidence) > min_confidence
  return seen


def segment_medians(positions: np.ndarray, seen: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Per joint pair of SEGMENTS (in order), the median length over the frames
  where both joints are seen (m, f64[P], NaN when none) and that frame count
  (int[P]).

  Args:
    positions: f[T, 32, 3] metres.
    seen: bool[T, 32] (`observed`).
  """
  pos = np.asarray(positions, np.float64)
  both = seen[:, _A] & seen[:, _B]
  dist = np.linalg.norm(pos[:, _A] - pos[:, _B], axis=-1)
  dist = np.where(both, dist, np.nan)
  counts = both.sum(0)
  medians = np.full(len(_PAIRS), np.nan)
  some = counts > 0
  medians[some] = np.nanmedian(dist[:, some], axis=0)
  return medians, counts


def body_size_features(positions: np.ndarray, confidence: np.ndarray | None = None,
                       opts: BodySizeOptions = BodySizeOptions()
                       ) -> tuple[dict[str, float], list[str]]:
  """BODY_FEATURES of one clip (module docstring).

  Args:
    positions: f[T, 32, 3] metres, NaN for joints the source lacks and where
      unobserved; before gap filling (interpolated frames are not measurements).
    confidence: f[T, 32] in [0, 1], or None.
    opts: thresholds.

  Returns:
    features (NaN where a segment could not be measured) and the reasons why not.
  """
  seen = observed(positions, confidence, opts.segment_min_confidence)
  medians, counts = segment_medians(positions, seen)
  usable = counts >= opts.segment_min_frames
  feats: dict[str, float] = {}
  unmeasured = []
  k = 0
  for name, pairs in SEGMENTS.items():
    sides = slice(k, k + len(pairs))
    k += len(pairs)
    good = medians[sides][usable[sides]]
    feats[name] = float(np.mean(good)) if len(good) else np.nan
    if not len(good):
      seen_in = ", ".join(f"{a}-{b} in {n} frames" for (a, b), n in zip(pairs, counts[sides]))
      unmeasured.append(f"{name} ({seen_in})")
  feats["leg_length_m"] = feats["thigh_length_m"] + feats["shank_length_m"]
  issues = []
  if unmeasured:
    issues.append(f"body size not measured: {', '.join(unmeasured)}, need "
                  f"{opts.segment_min_frames}")
  return {f: feats[f] for f in BODY_FEATURES}, issues
