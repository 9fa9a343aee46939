"""Per-clip kinematics on the canonical skeleton: gap filling, filtering, the
body's horizontal axes, sagittal joint angles and trunk inclination.

Every function works on whole arrays over frames (no loop over T). Positions are
the canonical frame's (`gait_jax.skeleton`): metres, +y down, so the vertical
`UP` is -y. The camera may be pitched or rolled by a few degrees; `estimate_up`
corrects that from the floor's slope when the person travels, and angles
measured between segments, ranges and sway do not depend on it.

Body axes are horizontal unit vectors per frame:
  forward  the walking direction when the pelvis travels (a tracker may mirror a
           person walking away, so the velocity is trusted over the hips), else
           the direction the hips and shoulders face;
  lateral  the person's left, = UP x forward.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

from gait_jax import skeleton

J = skeleton.JOINT_INDEX
UP = np.array([0.0, -1.0, 0.0])


def as_nan_missing(positions: np.ndarray, present: np.ndarray) -> np.ndarray:
  """f64[T, 32, 3] metres with joints the source lacks set to NaN (records store 0)."""
  out = np.array(positions, np.float64)
  out[:, ~np.asarray(present, bool)] = np.nan
  return out


def fill_gaps(x: np.ndarray) -> np.ndarray:
  """Linearly interpolates NaN along axis 0, holding the ends; an all-NaN channel
  stays NaN. x: f[T, ...] → f64[T, ...]."""
  x = np.asarray(x, np.float64)
  flat = x.reshape(x.shape[0], -1)
  bad = np.isnan(flat)
  if not bad.any():
    return x.copy()
  out = flat.copy()
  t = np.arange(flat.shape[0])
  # Only the channels with a gap but some data; a loop over channels (<= 96), not frames.
  for c in np.flatnonzero(bad.any(0) & ~bad.all(0)):
    ok = ~bad[:, c]
    out[bad[:, c], c] = np.interp(t[bad[:, c]], t[ok], flat[ok, c])
  return out.reshape(x.shape)


def lowpass(x: np.ndarray, fps: float, cutoff_hz: float, order: int = 4) -> np.ndarray:
  """Zero-phase Butterworth low-pass along axis 0 (NaN channels stay NaN).

  Short clips get a shorter edge padding instead of an error; a clip of fewer
  than 4 frames is returned unfiltered.
  """
  x = np.asarray(x, np.float64)
  if cutoff_hz <= 0 or cutoff_hz >= 0.5 * fps or x.shape[0] < 4:
    return x.copy()
  sos = signal.butter(order, cutoff_hz, fs=fps, output="sos")
  padlen = min(3 * (2 * len(sos) + 1), x.shape[0] - 1)
  return signal.sosfiltfilt(sos, x, axis=0, padlen=padlen)


def sample(x: np.ndarray, t: np.ndarray) -> np.ndarray:
  """x f[T, ...] linearly interpolated at fractional frame indices t f[N] → f[N, ...]."""
  t = np.clip(np.asarray(t, np.float64), 0, x.shape[0] - 1)
  lo = np.floor(t).astype(int)
  hi = np.minimum(lo + 1, x.shape[0] - 1)
  w = (t - lo).reshape((-1,) + (1,) * (x.ndim - 1))
  return (1.0 - w) * x[lo] + w * x[hi]


def horizontal(v: np.ndarray, up: np.ndarray = UP) -> np.ndarray:
  """Removes the vertical component of vectors f[..., 3]."""
  return v - (v @ up)[..., None] * up


def _unit(v: np.ndarray) -> np.ndarray:
  n = np.linalg.norm(v, axis=-1, keepdims=True)
  return v / np.where(n > 1e-9, n, np.nan)


def _first_present(pos: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
  """f[T, 3]: the first of `names` with any finite frame (a layout may lack some)."""
  for name in names:
    p = pos[:, J[name]]
    if np.isfinite(p).any():
      return p
  return np.full((pos.shape[0], 3), np.nan)


def trunk_top(pos: np.ndarray) -> np.ndarray:
  """f[T, 3] the top of the trunk: SPINE_CHEST, else NECK (Kinect v1 lacks NECK,
  the UCalgary files lack SpineShoulder)."""
  return _first_present(pos, ("SPINE_CHEST", "NECK"))


def pelvis(pos: np.ndarray) -> np.ndarray:
  """f[T, 3] the pelvis, else the hip midpoint."""
  p = pos[:, J["PELVIS"]]
  if np.isfinite(p).any():
    return p
  return 0.5 * (pos[:, J["HIP_LEFT"]] + pos[:, J["HIP_RIGHT"]])


def facing(pos: np.ndarray, fps: float, smooth_s: float = 1.0, up: np.ndarray = UP
           ) -> np.ndarray:
  """f64[T, 3] horizontal unit vector the trunk faces (from the hips and shoulders)."""
  left = np.zeros((pos.shape[0], 3))
  for a, b in (("HIP_LEFT", "HIP_RIGHT"), ("SHOULDER_LEFT", "SHOULDER_RIGHT")):
    d = pos[:, J[a]] - pos[:, J[b]]
    left += np.where(np.isfinite(d), d, 0.0)
  left = _unit(horizontal(left, up))
  size = max(1, int(round(smooth_s * fps)))
  left = _unit(ndimage.uniform_filter1d(np.nan_to_num(left), size, axis=0, mode="nearest"))
  return _unit(np.cross(left, up))


def body_axes(pos: np.ndarray, fps: float, up: np.ndarray = UP, travel_speed: float = 0.3,
              smooth_s: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The body's horizontal axes per frame (see the module docstring).

  Args:
    pos: f64[T, 32, 3] metres, gaps filled.
    fps: frames per second.
    up: f64[3] unit vertical (`estimate_up`).
    travel_speed: m/s of smoothed pelvis speed above which the walking direction
      (the velocity) defines forward.
    smooth_s: averaging window, seconds (about a stride, so sway cancels).

  Returns:
    forward f64[T, 3], lateral (left) f64[T, 3], and the smoothed horizontal
    pelvis velocity f64[T, 3] in m/s.
  """
  size = max(1, int(round(smooth_s * fps)))
  root = ndimage.uniform_filter1d(pelvis(pos), size, axis=0, mode="nearest")
  vel = (horizontal(np.gradient(root, axis=0) * fps, up) if len(pos) > 1
         else np.zeros((1, 3)))
  face = facing(pos, fps, smooth_s, up)
  moving = np.linalg.norm(vel, axis=-1, keepdims=True) > travel_speed
  fwd = np.where(moving, _unit(vel), face)
  fwd = _unit(ndimage.uniform_filter1d(np.nan_to_num(fwd), size, axis=0, mode="nearest"))
  return fwd, np.cross(up, fwd), vel


def segment_pitch(v: np.ndarray, forward: np.ndarray, up: np.ndarray = UP) -> np.ndarray:
  """Sagittal angle (deg) of segment vectors f[T, 3] from hanging straight down,
  positive when the distal end is forward."""
  return np.rad2deg(np.arctan2(np.einsum("td,td->t", v, forward), -(v @ up)))


def sagittal_angles(pos: np.ndarray, forward: np.ndarray, side: str,
                    up: np.ndarray = UP) -> dict[str, np.ndarray]:
  """Sagittal hip flexion, knee flexion and ankle dorsiflexion of one leg, deg, f64[T].

  Each is the difference of segment pitches projected on the sagittal plane
  (forward, up): hip = thigh vs trunk, knee = thigh vs shank, ankle = foot vs
  the shank's normal. Offsets depend on where the tracker puts the joints;
  ranges of motion do not.
  """
  s = side.upper()
  hip, knee, ankle, foot = (pos[:, J[f"{n}_{s}"]] for n in ("HIP", "KNEE", "ANKLE", "FOOT"))
  trunk = segment_pitch(pelvis(pos) - trunk_top(pos), forward, up)  # top → pelvis hangs
  thigh = segment_pitch(knee - hip, forward, up)
  shank = segment_pitch(ankle - knee, forward, up)
  foot_pitch = segment_pitch(foot - ankle, forward, up)
  return {"hip": thigh - trunk, "knee": thigh - shank, "ankle": foot_pitch - shank - 90.0}


def trunk_inclination(pos: np.ndarray, forward: np.ndarray, lateral: np.ndarray,
                      up: np.ndarray = UP) -> tuple[np.ndarray, np.ndarray]:
  """Trunk (pelvis → chest) inclination from vertical, deg f64[T]: forward lean
  (antero-posterior) and lean to the left (medio-lateral)."""
  t = trunk_top(pos) - pelvis(pos)
  height = t @ up
  return (np.rad2deg(np.arctan2(np.einsum("td,td->t", t, forward), height)),
          np.rad2deg(np.arctan2(np.einsum("td,td->t", t, lateral), height)))


def estimate_up(pos: np.ndarray, min_travel_m: float = 1.0, max_tilt_deg: float = 20.0
                ) -> np.ndarray:
  """f64[3] unit vertical: the canonical UP, corrected for the camera's pitch and
  roll when the pelvis travels far enough to show the floor's slope.

  Walking on a level floor keeps the pelvis at one height, so in a tilted
  camera's frame its track lies on a plane y = a + b z + c x (least squares;
  the roll term c only when the track also spans `min_travel_m` across). In
  place (treadmill, standing) the tilt cannot be seen this way and UP is kept:
  a constant tilt then biases mean angles slightly but not ranges or sway.
  """
  root = pelvis(pos)
  root = root[np.isfinite(root).all(-1)]
  if len(root) < 10:
    return UP.copy()
  x, y, z = root.T
  spans = np.ptp(x), np.ptp(z)
  if max(spans) < min_travel_m:
    return UP.copy()
  cols = [np.ones_like(z)] + [c for c, span in ((z, spans[1]), (x, spans[0]))
                               if span >= min_travel_m]
  coef, *_ = np.linalg.lstsq(np.stack(cols, 1), y, rcond=None)
  b = coef[1] if spans[1] >= min_travel_m else 0.0
  c = coef[-1] if spans[0] >= min_travel_m else 0.0
  up = np.array([c, -1.0, b]) / np.sqrt(1.0 + b * b + c * c)
  if np.degrees(np.arccos(-up[1])) > max_tilt_deg:
    return UP.copy()
  return up
