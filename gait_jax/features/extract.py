"""One clip → its engineered features: the task's feature family, input checks,
body size, gap filling, and the family's extractor.

Families (which features a task gets; every other column is NaN for it):
  walk          `gait.WALK_FEATURES` + trunk (treadmill or overground)
  in_place      `gait.IN_PLACE_FEATURES` + trunk (stepping in place)
  sit_to_stand  `balance.STS_FEATURES`
  romberg       `balance.ROMBERG_FEATURES` + trunk (quiet standing)
and every family body size, `anthropometry.BODY_FEATURES` (segment lengths and
widths, measured before gaps are filled; off with the `body_size` option).
A task's family comes from ordered "glob=family" rules matched against the task
name (first match wins), so a new protocol needs a config line, not code.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Sequence

import numpy as np

from gait_jax import skeleton
from gait_jax.features import anthropometry, balance, gait
from gait_jax.features import kinematics as kin

_OWN: dict[str, tuple[str, ...]] = {
    "walk": gait.WALK_FEATURES + gait.TRUNK_FEATURES,
    "in_place": gait.IN_PLACE_FEATURES + gait.TRUNK_FEATURES,
    "sit_to_stand": balance.STS_FEATURES,
    "romberg": balance.ROMBERG_FEATURES + gait.TRUNK_FEATURES,
}
FAMILIES: dict[str, tuple[str, ...]] = {
    family: own + anthropometry.BODY_FEATURES for family, own in _OWN.items()}
# Every feature column, in table order: the families' own (first appearance), then
# body size.
FEATURES: tuple[str, ...] = tuple(
    dict.fromkeys(f for fs in _OWN.values() for f in fs)) + anthropometry.BODY_FEATURES

# The synthetic protocol's and common task names; in-place before walk, since
# "walk_in_place" matches both.
DEFAULT_TASK_FAMILIES: tuple[str, ...] = (
    "*in_place*=in_place", "*sit*stand*=sit_to_stand", "*sts*=sit_to_stand",
    "*romberg*=romberg", "*quiet*stand*=romberg", "*treadmill*=walk", "*walk*=walk",
    "*gait*=walk",
)

_LEGS = tuple(f"{j}_{s}" for s in ("LEFT", "RIGHT") for j in ("HIP", "KNEE", "ANKLE", "FOOT"))
# Joints a family cannot do without (PELVIS may be replaced by the hips' midpoint).
REQUIRED: dict[str, tuple[str, ...]] = {
    "walk": _LEGS, "in_place": _LEGS,
    "sit_to_stand": ("HIP_LEFT", "HIP_RIGHT", "ANKLE_LEFT", "ANKLE_RIGHT"),
    "romberg": ("HIP_LEFT", "HIP_RIGHT", "ANKLE_LEFT", "ANKLE_RIGHT"),
}


def parse_rules(rules: Sequence[str]) -> list[tuple[str, str]]:
  """"glob=family" strings → (glob, family) pairs; unknown families are an error."""
  out = []
  for rule in rules:
    pattern, sep, family = str(rule).rpartition("=")
    if not sep or not pattern or family not in FAMILIES:
      raise ValueError(f"task family rule {rule!r}: expected 'glob=family' with family in "
                       f"{sorted(FAMILIES)}")
    out.append((pattern, family))
  return out


def family_of(task: str, rules: Sequence[str] = DEFAULT_TASK_FAMILIES) -> str | None:
  """The feature family of a task name (case-insensitive globs); None if no rule fits."""
  for pattern, family in parse_rules(rules):
    if fnmatch.fnmatch(task.lower(), pattern.lower()):
      return family
  return None


@dataclasses.dataclass(frozen=True)
class ClipOptions:
  """Attributes:
    gait, balance, anthropometry: the extractors' options.
    min_seconds: shorter clips are not processed.
    max_nan_fraction: a required joint unobserved in more of the frames than this
      fails the clip; shorter gaps are interpolated.
  """
  gait: gait.GaitOptions = gait.GaitOptions()
  balance: balance.BalanceOptions = balance.BalanceOptions()
  anthropometry: anthropometry.BodySizeOptions = anthropometry.BodySizeOptions()
  min_seconds: float = 1.5
  max_nan_fraction: float = 0.2


@dataclasses.dataclass(frozen=True)
class ClipResult:
  """features: every name in FEATURES → float (NaN where not computed);
  status: "ok", "partial" (some of the family's features NaN) or "failed" (all);
  reason: why, "" when ok."""
  features: dict[str, float]
  status: str
  reason: str


def expected(family: str | None, opts: ClipOptions = ClipOptions()) -> tuple[str, ...]:
  """The features a clip of `family` gets under `opts` (none for an unknown family)."""
  wanted = FAMILIES.get(family, ())
  if not opts.anthropometry.body_size:
    wanted = tuple(f for f in wanted if f not in anthropometry.BODY_FEATURES)
  return wanted


def _result(family: str | None, feats: dict[str, float], issues: list[str],
            opts: ClipOptions = ClipOptions()) -> ClipResult:
  row = dict.fromkeys(FEATURES, np.nan)
  row.update({k: float(v) for k, v in feats.items()})
  wanted = expected(family, opts)
  computed = sum(np.isfinite(row[f]) for f in wanted)
  if computed == 0:
    return ClipResult(row, "failed", "; ".join(issues) or "no feature could be computed")
  missing = [f for f in wanted if not np.isfinite(row[f])]
  if not missing:
    return ClipResult(row, "ok", "")
  return ClipResult(row, "partial", "; ".join(issues + [f"NaN: {', '.join(missing)}"]))


def clip_features(positions: np.ndarray, present: np.ndarray, fps: float,
                  family: str | None, opts: ClipOptions = ClipOptions(),
                  confidence: np.ndarray | None = None) -> ClipResult:
  """Engineered features of one clip.

  Args:
    positions: f32[T, 32, 3] metres, canonical skeleton and frame (a clip
      record's: 0 for joints not present, NaN where unobserved).
    present: bool[32], the joints the source layout provides.
    fps: frames per second.
    family: a FAMILIES key (`family_of(task)`), or None.
    opts: thresholds and extractor options.
    confidence: f32[T, 32] in [0, 1] (a clip record's: 0 where missing or
      interpolated), or None; only body size uses it, to measure observed
      frames only.

  Returns:
    A ClipResult; bad input gives status "failed" with the reason, never raises
    for it.
  """
  if family not in FAMILIES:
    return _result(None, {}, [f"no feature family for this task (family {family!r})"])
  positions = np.asarray(positions)
  if positions.ndim != 3 or positions.shape[1:] != (skeleton.NUM_JOINTS, 3):
    return _result(family, {}, [f"positions of shape {list(positions.shape)}, "
                                f"expected [T, {skeleton.NUM_JOINTS}, 3]"])
  if not np.isfinite(fps) or fps <= 0:
    return _result(family, {}, [f"bad fps {fps}"])
  seconds = positions.shape[0] / fps
  if seconds < opts.min_seconds:
    return _result(family, {}, [f"too short: {seconds:.2f} s < {opts.min_seconds} s"])
  pos = kin.as_nan_missing(positions, present)
  need = [kin.J[n] for n in REQUIRED[family]]
  absent = [n for n, j in zip(REQUIRED[family], need) if not present[j]]
  if absent:
    return _result(family, {}, [f"missing joints: {', '.join(absent)}"])
  nan_frac = np.isnan(pos[:, need]).any(-1).mean(0)
  if (nan_frac > opts.max_nan_fraction).any():
    worst = np.argsort(-nan_frac)[:3]
    return _result(family, {}, ["NaN joints: " + ", ".join(
        f"{REQUIRED[family][i]} {nan_frac[i]:.0%} of frames" for i in worst
        if nan_frac[i] > opts.max_nan_fraction)])
  body: dict[str, float] = {}
  body_issues: list[str] = []
  if opts.anthropometry.body_size:
    body, body_issues = anthropometry.body_size_features(pos, confidence, opts.anthropometry)
  pos = kin.fill_gaps(pos)
  if family == "walk":
    feats, issues = gait.walking_features(pos, fps, opts.gait)
  elif family == "in_place":
    feats, issues = gait.in_place_features(pos, fps, opts.gait)
  elif family == "sit_to_stand":
    feats, issues = balance.sit_to_stand_features(pos, fps, opts.balance)
  else:
    feats, issues = balance.romberg_features(pos, fps, opts.balance)
    up = kin.estimate_up(pos)
    forward, lateral, _ = kin.body_axes(pos, fps, up)
    feats.update(gait.trunk(pos, forward, lateral, up, fps))
  return _result(family, {**feats, **body}, issues + body_issues, opts)
