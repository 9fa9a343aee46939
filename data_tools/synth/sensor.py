"""What the depth camera and its body tracker make of the true motion.

Camera: ~1 m above the floor, pitched down a few degrees, slightly rolled.
Tracker: Gaussian jitter growing with depth (and larger along the depth axis),
a per-joint bias for the recording, low confidence and extra error where a
joint is hidden behind the trunk, out of the field of view or far away, random
brief low-confidence spells, and dropped joints (NaN, confidence 0) in runs that
take the joint's descendants with them (a lost wrist loses the hand too). For
output formats that never hold NaN (Azure Kinect JSON), `guess` turns a dropped
joint into the tracker's prediction.
Hands, hand tips and thumbs are noisier and less confident throughout.
A few recordings carry jittered timestamps with dropped frames instead of a
nominal frame rate.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from data_tools.synth import body as body_lib
from data_tools.synth import signals
from gait_jax import skeleton

J = skeleton.JOINT_INDEX
_NJ = skeleton.NUM_JOINTS


def _per_joint(default: float, **groups: float) -> np.ndarray:
  """f64[32] with `default`, overridden for joints whose name contains a key."""
  out = np.full(_NJ, default)
  for key, value in groups.items():
    out[[i for i, name in enumerate(skeleton.JOINTS) if key.upper() in name]] = value
  return out


# Jitter s.d. at 2 m depth (m), per joint.
_JITTER = _per_joint(0.005, spine=0.004, pelvis=0.004, neck=0.004, clavicle=0.004,
                     elbow=0.006, wrist=0.007, knee=0.006, ankle=0.007, foot=0.009,
                     hand=0.012, handtip=0.016, thumb=0.016)
_BIAS = _per_joint(0.008, hand=0.02, handtip=0.025, thumb=0.025, foot=0.012)
_CONFIDENCE = _per_joint(0.92, hand=0.55, handtip=0.45, thumb=0.45, foot=0.8,
                         wrist=0.85, ear=0.8, eye=0.85, nose=0.85)
# How often each joint's own dropout starts (relative), hands and feet most.
_DROP_WEIGHT = _per_joint(1.0, hand=3.0, handtip=3.0, thumb=3.0, foot=2.0, ankle=1.5,
                          wrist=2.0)
_DEPTH_AXIS = np.array([1.0, 1.0, 1.6])  # ToF error is largest along the ray
_TAN_HALF_FOV = np.array([np.tan(np.deg2rad(37.5)), np.tan(np.deg2rad(32.5))])


def _descendants() -> np.ndarray:
  """bool[32, 32]: [j, k] is True when k is j or below j in the skeleton."""
  d = np.eye(_NJ, dtype=bool)
  for k in range(_NJ):
    p = skeleton.PARENTS[k]
    while p >= 0:
      d[p, k] = True
      p = skeleton.PARENTS[p]
  return d


_DESCENDANTS = _descendants()


@dataclasses.dataclass(frozen=True)
class Camera:
  """Camera pose: height above the floor (m), downward pitch and roll (deg)."""
  height: float
  tilt_deg: float
  roll_deg: float


def random_camera(rng: np.random.Generator) -> Camera:
  return Camera(height=float(rng.uniform(0.9, 1.1)), tilt_deg=float(rng.uniform(0.0, 6.0)),
                roll_deg=float(rng.normal(0.0, 0.7)))


def to_camera(world: np.ndarray, camera: Camera) -> np.ndarray:
  """World (level, camera at the origin) → the tilted camera's frame.

  Args:
    world: f64[T, J, 3] metres.

  Returns:
    f64[T, J, 3] metres, canonical camera frame (+y down, +z along the optical
    axis).
  """
  # Rows are the camera's axes in the world: pitched down, then rolled.
  to_cam = body_lib.compose(body_lib.roll(-camera.roll_deg), body_lib.flex(camera.tilt_deg))
  return world @ to_cam.T


def _runs(num_frames: int, starts: np.ndarray, lengths: np.ndarray,
          joints: np.ndarray) -> np.ndarray:
  """bool[T, 32]: True inside each run (start, length) of each joint and its
  descendants."""
  diff = np.zeros((num_frames + 1, _NJ), np.int32)
  ends = np.minimum(starts + lengths, num_frames)
  np.add.at(diff, starts, _DESCENDANTS[joints].astype(np.int32))
  np.add.at(diff, ends, -_DESCENDANTS[joints].astype(np.int32))
  return np.cumsum(diff[:-1], axis=0) > 0


def _random_runs(rng: np.random.Generator, num_frames: int, rate: float,
                 lengths: np.ndarray) -> np.ndarray:
  """bool[T, 32] runs at Poisson(rate) random joints, lengths from `lengths`."""
  n = min(int(rng.poisson(rate)), len(lengths))
  joints = rng.choice(_NJ, size=n, p=_DROP_WEIGHT / _DROP_WEIGHT.sum())
  starts = rng.integers(0, num_frames, size=n)
  return _runs(num_frames, starts, lengths[:n], joints)


def _occluded(pos: np.ndarray) -> np.ndarray:
  """bool[T, 32]: joints hidden behind the trunk from the camera's viewpoint."""
  chest = pos[:, J["SPINE_CHEST"]]
  neck_y, pelvis_y = pos[:, J["NECK"], 1], pos[:, J["PELVIS"], 1]
  depth = pos[..., 2]
  # Where the ray to the joint passes at the chest's depth.
  ray_x = pos[..., 0] * (chest[:, None, 2] / np.maximum(depth, 0.3))
  return ((depth > chest[:, None, 2] + 0.06) & (np.abs(ray_x - chest[:, None, 0]) < 0.16)
          & (pos[..., 1] > neck_y[:, None] - 0.05) & (pos[..., 1] < pelvis_y[:, None] + 0.12))


def observe(rng: np.random.Generator, pos: np.ndarray, fps: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Tracker output for true camera-frame positions.

  Args:
    pos: f64[T, 32, 3] true joint positions, camera frame, metres.

  Returns:
    positions f32[T, 32, 3] metres (NaN where dropped), confidence f32[T, 32]
    in [0, 1] (exactly 0 where dropped, > 0 elsewhere), and the estimate
    f32[T, 32, 3] metres before dropout: equal to positions where kept, the
    tracker's noisy estimate where dropped (see `guess`). The estimate draws no
    randomness, so positions and confidence do not depend on whether it is used.
  """
  t = pos.shape[0]
  depth = np.clip(pos[..., 2], 0.5, 6.0)
  scale = 1.0 + 0.4 * (depth - 2.0)  # error grows with distance
  conf = _CONFIDENCE + 0.03 * rng.standard_normal((t, _NJ))
  noise_gain = np.ones((t, _NJ))
  # Hidden behind the trunk: the tracker guesses (low confidence, more error).
  hidden = _occluded(pos)
  far = (pos[..., 2] > 4.0) & (_JITTER >= 0.007)  # small distal joints fade first
  outside = (np.abs(pos[..., :2] / np.maximum(pos[..., 2:], 0.3)) > _TAN_HALF_FOV).any(-1)
  spells = _random_runs(rng, t, 2.0, rng.geometric(1.0 / 15.0, size=64))
  for mask, c, gain in ((far, 0.6, 2.0), (spells, 0.3, 3.0), (hidden, 0.35, 3.0),
                        (outside, 0.25, 2.5)):
    conf = np.where(mask, np.minimum(conf, c + 0.05 * rng.random()), conf)
    noise_gain = np.where(mask, np.maximum(noise_gain, gain), noise_gain)
  sd = (_JITTER * scale * noise_gain)[..., None] * _DEPTH_AXIS
  out = pos + sd * rng.standard_normal((t, _NJ, 3)) + _BIAS[:, None] * rng.standard_normal((_NJ, 3))
  # Guessed joints also wander: slow error where confidence is low.
  wander = signals.smooth_noise(rng, t, fps, 1.0, channels=_NJ * 3).reshape(t, _NJ, 3)
  out += 0.015 * (noise_gain > 1.0)[..., None] * wander
  # Dropouts: mostly a few frames, sometimes up to a third of a second, rarely
  # longer than QC's default gap limit (10 frames), which costs the recording's
  # frames when it hits a joint the model needs (~2 % of recordings).
  kind = rng.random(64)
  lengths = np.where(kind < 0.85, rng.integers(1, 6, 64),
                     np.where(kind < 0.995, rng.integers(6, 11, 64), rng.integers(11, 61, 64)))
  dropped = _random_runs(rng, t, 3.0, lengths)
  if rng.random() < 0.1:  # the whole body lost for a moment
    for start, length in zip(rng.integers(0, t, 2), rng.integers(1, 9, 2)):
      dropped[start:start + length] = True
  estimate = out.astype(np.float32)
  out[dropped] = np.nan
  conf = np.where(dropped, 0.0, np.clip(conf, 0.02, 1.0))
  return out.astype(np.float32), conf.astype(np.float32), estimate


def guess(rng: np.random.Generator, estimate: np.ndarray, dropped: np.ndarray, fps: float
          ) -> np.ndarray:
  """What a tracker that never reports NaN (Azure Kinect Body Tracking) puts where
  it has lost a joint: a prediction from its body model, with confidence NONE.

  The prediction is the pre-dropout estimate plus the error of a guess: three
  times the joint's jitter (depth-scaled, largest along the ray) and a slow
  ~3 cm wander, so a lost joint drifts instead of freezing.

  Args:
    rng: a generator of its own, so that the npz output is unaffected.
    estimate: f32[T, 32, 3] metres, `observe`'s estimate.
    dropped: bool[T, 32] joints the tracker lost.
    fps: frame rate, Hz (sets the wander's time scale).

  Returns:
    f32[T, 32, 3] metres: `estimate` where kept, the guess where dropped.
  """
  t = estimate.shape[0]
  depth = np.clip(estimate[..., 2].astype(np.float64), 0.5, 6.0)
  sd = (3.0 * _JITTER * (1.0 + 0.4 * (depth - 2.0)))[..., None] * _DEPTH_AXIS
  wander = signals.smooth_noise(rng, t, fps, 1.0, channels=_NJ * 3).reshape(t, _NJ, 3)
  err = sd * rng.standard_normal((t, _NJ, 3)) + 0.03 * wander
  return np.where(dropped[..., None], estimate + err, estimate).astype(np.float32)


def frame_times(rng: np.random.Generator, num_frames: int, fps: float
                ) -> tuple[np.ndarray, np.ndarray | None]:
  """Which frames arrive, and their timestamps if the file carries them.

  ~5 % of recordings carry device timestamps: jittered by ~2 ms and missing a
  few frames. The rest keep every frame and declare a nominal `fps`.

  Returns:
    kept frame indices int64[T'] and timestamps f64[T'] seconds (or None).
  """
  if rng.random() >= 0.05:
    return np.arange(num_frames), None
  times = (np.arange(num_frames) / fps + rng.uniform(0.0, 2.0)
           + np.clip(rng.normal(0.0, 0.002, num_frames), -0.008, 0.008))
  lost = rng.choice(np.arange(1, num_frames - 1), size=rng.integers(1, 7), replace=False)
  keep = np.setdiff1d(np.arange(num_frames), lost)
  return keep, times[keep]
