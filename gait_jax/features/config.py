"""The engineered-features job's config (`gait_jax.features.job`): every setting and
its default, and how they become the extractor's options.

Variants:
  default  every clip of every participant (split "all"), 2 Grain worker processes
  smoke    at most 2 clips per participant × task, in-process: for tests
"""

from __future__ import annotations

import ml_collections

from gait_jax.data import config as data_config
from gait_jax.features import balance, events, extract, gait

VARIANTS = ("default", "smoke")


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
  """The features job config of a variant."""
  if variant not in VARIANTS:
    raise ValueError(f"unknown features variant {variant!r}; expected one of {VARIANTS}")
  c = ml_collections.ConfigDict()
  c.job = "features"
  c.data = data_config.get_data_config()
  c.data.split = "all"  # features for everyone; the probe makes the splits
  c.features = get_features_config()
  if variant == "default":
    c.data.worker_count = 2
  else:
    c.data.worker_count = 0
    c.data.max_clips_per_group = 2
  return c


def get_features_config() -> ml_collections.ConfigDict:
  """The `config.features` block with its defaults; see the comment on each field.

  Which clips are read, and by how many worker processes, is `config.data`'s
  (tasks, participants, split, max_clips_per_group, worker_count).
  """
  c = ml_collections.ConfigDict()
  # Ordered "glob=family" rules matched against task names (first match wins);
  # families: walk, in_place, sit_to_stand, romberg. A task no rule matches gets
  # no features (its clips are reported).
  c.task_families = extract.DEFAULT_TASK_FAMILIES
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
