"""Standing balance (Romberg) and sit-to-stand features of one clip.

Romberg: the body's centre of mass is approximated by the mean of the trunk
joints (PELVIS, SPINE_NAVEL, SPINE_CHEST or NECK, whichever the layout has),
low-passed to remove tracker jitter, and projected on the horizontal plane along
the direction the person faces (antero-posterior, AP) and across it
(medio-lateral, ML), like a force plate's centre-of-pressure trace:
  sway_path_m_s    path length of the horizontal trace per second (mean velocity)
  sway_area_m2     area of the 95 % prediction ellipse of the trace:
                   pi * chi2_2(0.95) * sqrt(det(covariance))
  sway_rms_ap_m / sway_rms_ml_m   root-mean-square displacement about the mean
  sway_ap_deg / sway_ml_deg       the same as angles about the ankles

Sit-to-stand: the pelvis's height above the ankles, low-passed, is split with
hysteresis (below 30 % of its 5-95 % range = seated, above 70 % = standing); a
rise is a seated → standing transition, timed where it crosses 50 %:
  sts_repetitions   rises in the clip (depends on the clip's length)
  sts_per_min       rises per minute of clip
  sts_cycle_s       median time between successive rises
  sts_rise_s        median time from leaving the seated band to reaching the
                    standing band
  sts_trunk_flex_deg  5-95 % range of forward trunk inclination
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import stats

from gait_jax.features import kinematics as kin

J = kin.J

ROMBERG_FEATURES: tuple[str, ...] = (
    "sway_path_m_s", "sway_area_m2", "sway_rms_ap_m", "sway_rms_ml_m",
    "sway_ap_deg", "sway_ml_deg",
)
STS_FEATURES: tuple[str, ...] = (
    "sts_repetitions", "sts_per_min", "sts_cycle_s", "sts_rise_s", "sts_trunk_flex_deg",
)
_CHI2_95 = float(stats.chi2.ppf(0.95, 2))  # 5.991


@dataclasses.dataclass(frozen=True)
class BalanceOptions:
  """Attributes:
    sway_cutoff_hz: low-pass of the centre-of-mass trace (sway is below ~2 Hz;
      path length is dominated by jitter above that).
    sts_cutoff_hz: low-pass of the pelvis height in sit-to-stand.
    sts_min_range_m: a pelvis height range below this is not sit-to-stand.
  """
  sway_cutoff_hz: float = 4.0
  sts_cutoff_hz: float = 2.0
  sts_min_range_m: float = 0.12


def com_proxy(pos: np.ndarray) -> np.ndarray:
  """f64[T, 3] mean of the trunk joints the layout has (module docstring)."""
  trunk = np.stack([kin.pelvis(pos), pos[:, J["SPINE_NAVEL"]], kin.trunk_top(pos)], 1)
  have = np.isfinite(trunk).all(-1).any(0)
  return trunk[:, have].mean(1)


def sway_measures(ap: np.ndarray, ml: np.ndarray, fps: float) -> dict[str, float]:
  """Path velocity (m/s), 95 % ellipse area (m^2) and RMS (m) of a horizontal
  trace ap, ml f[T] metres."""
  xy = np.stack([ap, ml], 1)
  xy = xy - xy.mean(0)
  path = float(np.linalg.norm(np.diff(xy, axis=0), axis=1).sum())
  cov = np.cov(xy.T)
  return {"sway_path_m_s": path * fps / max(len(xy) - 1, 1),
          "sway_area_m2": float(np.pi * _CHI2_95 * np.sqrt(max(np.linalg.det(cov), 0.0))),
          "sway_rms_ap_m": float(np.sqrt(np.mean(xy[:, 0] ** 2))),
          "sway_rms_ml_m": float(np.sqrt(np.mean(xy[:, 1] ** 2)))}


def romberg_features(pos: np.ndarray, fps: float, opts: BalanceOptions = BalanceOptions()
                     ) -> tuple[dict[str, float], list[str]]:
  """ROMBERG_FEATURES of one quiet-standing clip (module docstring).

  Args:
    pos: f64[T, 32, 3] metres, canonical frame, gaps filled.
    fps: frames per second.

  Returns:
    features and the reasons any are NaN.
  """
  feats = dict.fromkeys(ROMBERG_FEATURES, np.nan)
  com = com_proxy(pos)
  if not np.isfinite(com).all():
    return feats, ["no trunk joints for the centre of mass"]
  up = kin.estimate_up(pos)
  # One facing direction for the clip: the person stands still.
  face = np.nanmean(kin.facing(pos, fps, up=up), 0)
  face = kin.horizontal(face, up)
  face /= np.linalg.norm(face)
  left = np.cross(up, face)
  com = kin.lowpass(com, fps, opts.sway_cutoff_hz)
  feats.update(sway_measures(com @ face, com @ left, fps))
  ankles = 0.5 * (pos[:, J["ANKLE_LEFT"]] + pos[:, J["ANKLE_RIGHT"]])
  height = float(np.nanmedian((com - ankles) @ up))
  if np.isfinite(height) and height > 0.2:
    feats["sway_ap_deg"] = float(np.rad2deg(np.arctan2(feats["sway_rms_ap_m"], height)))
    feats["sway_ml_deg"] = float(np.rad2deg(np.arctan2(feats["sway_rms_ml_m"], height)))
  return feats, []


def _crossings(x: np.ndarray, level: float) -> np.ndarray:
  """Fractional frame indices where x f[T] crosses `level` upwards."""
  i = np.flatnonzero((x[:-1] < level) & (x[1:] >= level))
  return i + (level - x[i]) / (x[i + 1] - x[i])


def sit_to_stand_features(pos: np.ndarray, fps: float,
                          opts: BalanceOptions = BalanceOptions()
                          ) -> tuple[dict[str, float], list[str]]:
  """STS_FEATURES of one repeated sit-to-stand clip (module docstring)."""
  feats = dict.fromkeys(STS_FEATURES, np.nan)
  issues: list[str] = []
  up = kin.estimate_up(pos)
  ankles = 0.5 * (pos[:, J["ANKLE_LEFT"]] + pos[:, J["ANKLE_RIGHT"]])
  h = kin.lowpass((kin.pelvis(pos) - ankles) @ up, fps, opts.sts_cutoff_hz)
  forward, lateral, _ = kin.body_axes(pos, fps, up)
  ap, _ = kin.trunk_inclination(pos, forward, lateral, up)
  if np.isfinite(ap).any():
    feats["sts_trunk_flex_deg"] = float(np.subtract(*np.nanpercentile(ap, [95, 5])))
  if not np.isfinite(h).all():
    return feats, ["no pelvis or ankles"]
  low, high = np.percentile(h, [5, 95])
  if high - low < opts.sts_min_range_m:
    return feats, [f"no sit-to-stand movement: pelvis height range {high - low:.3f} m"]
  u = (h - low) / (high - low)
  # Hysteresis state: 0 seated, 1 standing, carried forward through the middle band.
  state = np.where(u < 0.3, 0.0, np.where(u > 0.7, 1.0, np.nan))
  valid = np.isfinite(state)
  if not valid.any():
    return feats, issues
  idx = np.where(valid, np.arange(len(state)), 0)
  np.maximum.accumulate(idx, out=idx)
  state = state[idx]
  # First standing-band frame of each rise that began seated inside the clip.
  rises_at = np.flatnonzero((state[1:] == 1) & (state[:-1] == 0)) + 1
  mids = _crossings(u, 0.5)
  rises = np.array([mids[mids < r].max() for r in rises_at if (mids < r).any()])
  feats["sts_repetitions"] = float(len(rises))
  feats["sts_per_min"] = 60.0 * len(rises) / (len(h) / fps)
  # Rise duration: from the last seated-band frame to the first standing-band frame.
  seated = np.flatnonzero(u < 0.3)
  rise_s = [(r - seated[seated < r].max()) / fps for r in rises_at if (seated < r).any()]
  feats["sts_rise_s"] = float(np.median(rise_s)) if rise_s else np.nan
  if len(rises) >= 2:
    feats["sts_cycle_s"] = float(np.median(np.diff(rises)) / fps)
  else:
    issues.append(f"{len(rises)} rise(s) in the clip: cycle time needs 2")
  return feats, issues
