"""Time-series building blocks for the kinematic model: cycles, bumps, noise.

Everything here is vectorised over frames; a recording is a handful of numpy
calls per signal, never a loop over its T frames.
"""

from __future__ import annotations

import numpy as np


def wrap(phase: np.ndarray) -> np.ndarray:
  """Phase difference wrapped to [-0.5, 0.5) cycles."""
  return phase - np.floor(phase + 0.5)


def bump(phase: np.ndarray, centre: float, width: float) -> np.ndarray:
  """Periodic Gaussian bump in a cycle: 1 at `centre`, s.d. `width` (cycles).

  Widths up to ~0.15 cycles leave a negligible step where the tails meet.
  """
  return np.exp(-0.5 * np.square(wrap(phase - centre) / width))


def skew_bump(phase: np.ndarray, centre: float, rise: float, fall: float) -> np.ndarray:
  """Periodic bump with s.d. `rise` before its centre and `fall` after it."""
  d = wrap(phase - centre)
  return np.exp(-0.5 * np.square(d / np.where(d < 0, rise, fall)))


def periodic_curve(knots: tuple[tuple[float, float], ...], smooth: float = 0.03,
                   size: int = 512) -> np.ndarray:
  """A smooth periodic curve through (phase, value) knots, tabulated on `size`
  phases in [0, 1): linear between knots, then circularly Gaussian-smoothed with
  s.d. `smooth` cycles. Look up with np.interp(phase, grid, table, period=1)."""
  grid = np.arange(size) / size
  x, y = np.array(knots).T
  table = np.interp(grid, x, y, period=1.0)
  freqs = np.fft.rfftfreq(size, 1.0 / size)
  kernel = np.exp(-0.5 * np.square(2.0 * np.pi * freqs * smooth))
  return np.fft.irfft(np.fft.rfft(table) * kernel, n=size)


def smoothstep(x: np.ndarray, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
  """C1 ramp from 0 (x <= lo) to 1 (x >= hi)."""
  u = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
  return u * u * (3.0 - 2.0 * u)


def smooth_noise(rng: np.random.Generator, num_frames: int, fps: float,
                 cutoff_hz: float, channels: int = 1) -> np.ndarray:
  """Low-pass Gaussian noise with unit sample s.d. per channel.

  White noise filtered in the frequency domain by a Gaussian of s.d. `cutoff_hz`
  (so the spectrum, not a per-frame recursion, sets the smoothness). The signal is
  circular: its end joins its start, which nothing downstream can tell.

  Returns:
    f64[T, channels], each column mean ~0 and s.d. exactly 1.
  """
  white = rng.standard_normal((num_frames, channels))
  freqs = np.fft.rfftfreq(num_frames, 1.0 / fps)
  gain = np.exp(-0.5 * np.square(freqs / cutoff_hz))
  gain[0] = 0.0  # no DC: a recording's offset is set explicitly, not by noise
  out = np.fft.irfft(np.fft.rfft(white, axis=0) * gain[:, None], n=num_frames, axis=0)
  sd = out.std(axis=0)
  return out / np.where(sd > 0, sd, 1.0)


def cycle_counts(rng: np.random.Generator, num_frames: int, fps: float,
                 period_s: float, cv: float) -> np.ndarray:
  """Continuous cycle count per frame for a rhythm with variable cycle durations.

  Each cycle's duration is drawn independently around `period_s` with coefficient
  of variation `cv` (stride-time variability); the recording starts at a random
  point of its first cycle. floor(count) is the cycle index, count % 1 the phase.

  Returns:
    f64[T] cycles, strictly increasing, starting in [0, 1).
  """
  duration = num_frames / fps
  # Durations are clipped to >= half a period, so this many cycles always cover.
  n = int(np.ceil(duration / (0.5 * period_s))) + 3
  lengths = period_s * np.clip(1.0 + cv * rng.standard_normal(n), 0.5, 1.5)
  starts = np.concatenate([[0.0], np.cumsum(lengths)]) - rng.random() * lengths[0]
  t = np.arange(num_frames) / fps
  k = np.searchsorted(starts, t, side="right") - 1
  return k + (t - starts[k]) / lengths[k]


def per_cycle(rng: np.random.Generator, counts: np.ndarray, cv: float) -> np.ndarray:
  """A smooth per-frame multiplier that varies from cycle to cycle (mean 1).

  One value per cycle, interpolated linearly between cycle mid-points, so an
  amplitude can change between strides without a jump inside one.

  Args:
    counts: f64[T] continuous cycle counts (cycle_counts output, maybe shifted).
    cv: cycle-to-cycle coefficient of variation.

  Returns:
    f64[T] multipliers.
  """
  first = int(np.floor(counts.min())) - 1
  n = int(np.ceil(counts.max())) - first + 2
  values = np.clip(1.0 + cv * rng.standard_normal(n), 0.6, 1.4)
  return np.interp(counts, first + 0.5 + np.arange(n), values)


def stance_warp(phase: np.ndarray, stance: np.ndarray | float,
                normative: float = 0.6) -> np.ndarray:
  """Maps a phase with stance fraction `stance` onto the normative curves' phase.

  The normative angle curves put toe-off at 60 % of the cycle; a person with a
  longer stance (more double support) reaches it later. Piecewise linear in phase.
  """
  phase = phase % 1.0
  before = phase * (normative / stance)
  after = normative + (phase - stance) * ((1.0 - normative) / (1.0 - stance))
  return np.where(phase < stance, before, after)
