"""Defaults of the engineered-features job (`gait_jax.features.job`), and how
they become the extractor's options."""

from __future__ import annotations

import ml_collections

from gait_jax.features import balance, events, extract, gait


def get_features_config() -> ml_collections.ConfigDict:
  """The `config.features` block with its defaults; see the comment on each field."""
  c = ml_collections.ConfigDict()
  # Ordered "glob=family" rules matched against task names (first match wins);
  # families: walk, in_place, sit_to_stand, romberg. A task no rule matches gets
  # no features (its clips are reported).
  c.task_families = extract.DEFAULT_TASK_FAMILIES
  # Worker processes extracting features (0 = in the main process).
  c.workers = 0
  # Clips each read (and each worker task) handles.
  c.chunk_clips = 32
  # At most this many clips per participant x task, the first in manifest order;
  # 0 = all.
  c.max_clips_per_group = 0
  # Clips shorter than this (seconds) are reported, not processed.
  c.min_seconds = 1.5
  # A required joint unobserved in more of a clip's frames than this fails it.
  c.max_nan_fraction = 0.2
  # Low-pass cut-off (Hz) of the foot trajectories used for gait events and angles.
  c.cutoff_hz = 6.0
  # Plausible stride durations (s) for the stride-period estimate.
  c.stride_range_s = (0.6, 3.0)
  # Above this pelvis speed (m/s) the person walks overground; below it (a
  # treadmill) speed is stride length x stride frequency.
  c.travel_speed = 0.3
  # Steps turning more than this (deg) are left out of gait statistics.
  c.max_turn_deg = 20.0
  # Fewer valid steps than this leave the clip's walking features NaN.
  c.min_steps = 2
  # Low-pass (Hz) of the Romberg centre-of-mass trace.
  c.sway_cutoff_hz = 4.0
  return c


def clip_options(c: ml_collections.ConfigDict) -> extract.ClipOptions:
  """The extractor's options from a `get_features_config()` block."""
  ev = events.EventOptions(cutoff_hz=float(c.cutoff_hz),
                           stride_range_s=tuple(float(s) for s in c.stride_range_s))
  return extract.ClipOptions(
      gait=gait.GaitOptions(events=ev, travel_speed=float(c.travel_speed),
                            max_turn_deg=float(c.max_turn_deg), min_steps=int(c.min_steps)),
      balance=balance.BalanceOptions(sway_cutoff_hz=float(c.sway_cutoff_hz)),
      min_seconds=float(c.min_seconds), max_nan_fraction=float(c.max_nan_fraction))
