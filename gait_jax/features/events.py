"""Gait events from foot trajectories relative to the pelvis.

Walking (Zeni et al. 2008, "Two simple methods for determining gait events during
treadmill and overground walking using kinematic data"): along the walking
direction, a heel strike is where the heel (here ANKLE) is farthest ahead of the
pelvis and a toe-off where the toe (here FOOT) is farthest behind it. Relative
to the pelvis the method needs no floor, no speed and no belt: it works on a
treadmill, overground, towards or away from the camera.

Stepping in place: a step is the peak of a foot's lift (ANKLE height above the
pelvis's, i.e. the leg folding up).

Event times are fractional frame indices (parabolic interpolation of the
extremum), so a 30 frames/s clip still times a step to a few milliseconds.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import signal

from gait_jax.features import kinematics as kin

SIDES = ("left", "right")
J = kin.J


@dataclasses.dataclass(frozen=True)
class EventOptions:
  """Attributes:
    cutoff_hz: low-pass applied to the foot signals before peak picking.
    stride_range_s: plausible stride (one full cycle of one foot) durations, s.
    default_stride_s: stride assumed when the clip is too short to measure one.
    min_prominence: extrema must stand out by this fraction of the signal's
      5-95 % range (rejects tracker jitter and standing still).
  """
  cutoff_hz: float = 6.0
  stride_range_s: tuple[float, float] = (0.6, 3.0)
  default_stride_s: float = 1.1
  min_prominence: float = 0.25


@dataclasses.dataclass(frozen=True)
class GaitEvents:
  """Per side ("left", "right"), sorted fractional frame indices f64[n].

  `strike` holds heel strikes (walking) or peak lifts (in place); `off` holds
  toe-offs (empty in place). `period` is the estimated stride, frames.
  """
  strike: dict[str, np.ndarray]
  off: dict[str, np.ndarray]
  period: float

  def count(self) -> int:
    return int(sum(len(v) for v in self.strike.values()))


def stride_period(x: np.ndarray, fps: float, opts: EventOptions) -> float:
  """The dominant period of a stride-periodic signal x f[T], in frames.

  The first autocorrelation peak within `stride_range_s` that reaches half of
  the highest one (the first, not the highest, so that 2x the period never
  wins); `default_stride_s` when the clip is shorter than 1.5 strides or the
  signal has no clear period.
  """
  lo, hi = (int(round(s * fps)) for s in opts.stride_range_s)
  default = opts.default_stride_s * fps
  x = np.asarray(x, np.float64)
  x = x[np.isfinite(x)] - np.nanmean(x) if np.isfinite(x).any() else x[:0]
  if len(x) < 1.5 * lo or not np.any(x):
    return default
  n = len(x)
  ac = signal.correlate(x, x, mode="full", method="fft")[n - 1:]
  ac = ac / (ac[0] * (n - np.arange(n)) / n)  # unbiased: correct for the shrinking overlap
  hi = min(hi, int(n / 1.5))
  if hi <= lo:
    return default
  peaks, _ = signal.find_peaks(ac[:hi + 1])
  peaks = peaks[peaks >= lo]
  if len(peaks) == 0 or ac[peaks].max() < 0.2:
    return default
  good = peaks[ac[peaks] >= 0.5 * ac[peaks].max()]
  return float(good[0])


def _refine(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
  """Parabolic sub-frame position of extrema x[idx] (f64[n] frame indices)."""
  idx = np.asarray(idx, int)
  inner = (idx > 0) & (idx < len(x) - 1)
  t = idx.astype(np.float64)
  i = idx[inner]
  a, b, c = x[i - 1], x[i], x[i + 1]
  den = a - 2.0 * b + c
  with np.errstate(divide="ignore", invalid="ignore"):
    off = np.where(np.abs(den) > 1e-12, 0.5 * (a - c) / den, 0.0)
  t[inner] += np.clip(off, -0.5, 0.5)
  return t


def peaks(x: np.ndarray, period: float, opts: EventOptions) -> np.ndarray:
  """Sub-frame maxima of x f[T], at most one per 0.6 strides, that stand out by
  `min_prominence` of the signal's range and are not at the clip's first or last
  frame (a cut-off cycle has no true extremum there)."""
  if not np.isfinite(x).all() or len(x) < 3:
    return np.zeros(0)
  spread = np.subtract(*np.percentile(x, [95, 5]))
  if spread <= 0:
    return np.zeros(0)
  idx, _ = signal.find_peaks(x, distance=max(1, int(0.6 * period)),
                             prominence=opts.min_prominence * spread)
  return _refine(x, idx)


def walking(pos: np.ndarray, forward: np.ndarray, fps: float,
            opts: EventOptions = EventOptions()) -> GaitEvents:
  """Heel strikes and toe-offs of both feet (Zeni's method; module docstring).

  Args:
    pos: f64[T, 32, 3] metres, gaps filled.
    forward: f64[T, 3] horizontal walking direction per frame.
    fps: frames per second.
  """
  root = kin.pelvis(pos)
  heel, toe = {}, {}
  for side in SIDES:
    s = side.upper()
    heel[side] = kin.lowpass(np.einsum("td,td->t", pos[:, J[f"ANKLE_{s}"]] - root, forward),
                             fps, opts.cutoff_hz)
    toe[side] = kin.lowpass(np.einsum("td,td->t", pos[:, J[f"FOOT_{s}"]] - root, forward),
                            fps, opts.cutoff_hz)
  # Left minus right swings once per stride with twice a foot's amplitude.
  period = stride_period(heel["left"] - heel["right"], fps, opts)
  return GaitEvents(strike={s: peaks(heel[s], period, opts) for s in SIDES},
                    off={s: peaks(-toe[s], period, opts) for s in SIDES}, period=period)


def in_place(pos: np.ndarray, fps: float, up: np.ndarray = kin.UP,
             opts: EventOptions = EventOptions()) -> GaitEvents:
  """Peak foot lifts of both feet when stepping in place (no toe-offs).

  Args:
    pos: f64[T, 32, 3] metres, gaps filled.
    fps: frames per second.
    up: f64[3] unit vertical.
  """
  root = kin.pelvis(pos)
  lift = {s: kin.lowpass((pos[:, J[f"ANKLE_{s.upper()}"]] - root) @ up, fps,
                         opts.cutoff_hz) for s in SIDES}
  period = stride_period(lift["left"] - lift["right"], fps, opts)
  return GaitEvents(strike={s: peaks(lift[s], period, opts) for s in SIDES},
                    off={s: np.zeros(0) for s in SIDES}, period=period)
