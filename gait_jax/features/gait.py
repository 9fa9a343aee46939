"""Walking and stepping-in-place features of one clip, from its gait events.

Definitions (all from heel strikes HS and toe-offs TO, `events.walking`):
  step        HS of one foot → the next HS of the other; its side is the foot
              that lands. Step length is the ankles' separation along the
              walking direction once both feet are down (`step_geometry`),
              step width across it. On a treadmill this is the step length in
              the belt's frame, the standard definition.
  stride      HS → next HS of the same foot; stride length = the sum of two
              consecutive step lengths (so it needs no travel either).
  stance      HS → TO of the same foot, as a fraction of its stride.
  double support  HS of one foot → TO of the other, summed over both feet, as
              a fraction of the stride.
  speed       the pelvis's horizontal speed when it travels (overground);
              stride length / stride time when it does not (treadmill).
  variability CV = s.d. / mean over the clip's steps or strides (step width:
              s.d., its mean is near 0 for some people).
  asymmetry   |L - R| / mean(L, R) of the per-side medians.
  ROM         per stride, max - min of the sagittal joint angle; median over
              strides, mean over sides.
  trunk       mean forward lean; sway = s.d. of the low-passed inclination.
Steps, strides and frames during a turn (heading change above `max_turn_deg`
per step) are left out of the statistics.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from gait_jax.features import events as events_lib
from gait_jax.features import kinematics as kin

SIDES = events_lib.SIDES
J = kin.J

WALK_FEATURES: tuple[str, ...] = (
    "cadence_steps_per_min", "step_time_s", "stride_time_s", "speed_m_s",
    "step_length_m", "stride_length_m", "step_width_m",
    "stance_fraction", "swing_fraction", "double_support_fraction",
    "stride_time_cv", "step_time_cv", "step_length_cv", "step_width_sd_m",
    "step_time_asymmetry", "step_length_asymmetry", "stance_asymmetry",
    "hip_rom_deg", "knee_rom_deg", "ankle_rom_deg", "knee_rom_asymmetry",
    "pelvis_sway_ml_m",
)
IN_PLACE_FEATURES: tuple[str, ...] = (
    "cadence_steps_per_min", "step_time_s", "stride_time_s", "stride_time_cv",
    "step_time_cv", "step_time_asymmetry", "foot_lift_m", "foot_lift_asymmetry",
    "hip_rom_deg", "knee_rom_deg", "ankle_rom_deg", "knee_rom_asymmetry",
    "pelvis_sway_ml_m",
)
TRUNK_FEATURES: tuple[str, ...] = ("trunk_lean_deg", "trunk_sway_ap_deg", "trunk_sway_ml_deg")


@dataclasses.dataclass(frozen=True)
class GaitOptions:
  """Attributes:
    events: event detection options.
    travel_speed: m/s; above it (median smoothed pelvis speed) the person walks
      overground and the pelvis gives the speed, below it the strides do.
    max_turn_deg: steps whose walking direction turns more than this are left out.
    min_steps: fewer valid steps than this → the walking features are NaN.
  """
  events: events_lib.EventOptions = events_lib.EventOptions()
  travel_speed: float = 0.3
  max_turn_deg: float = 20.0
  min_steps: int = 2


def _cv(x: np.ndarray) -> float:
  x = x[np.isfinite(x)]
  return float(np.std(x, ddof=1) / np.mean(x)) if len(x) >= 3 and np.mean(x) > 0 else np.nan


def _sd(x: np.ndarray) -> float:
  x = x[np.isfinite(x)]
  return float(np.std(x, ddof=1)) if len(x) >= 3 else np.nan


def _median(x: np.ndarray) -> float:
  x = np.asarray(x, np.float64)
  x = x[np.isfinite(x)]
  return float(np.median(x)) if len(x) else np.nan


def symmetry_index(left: float, right: float) -> float:
  """|L - R| / mean(L, R); NaN when either is missing or both are 0."""
  mean = 0.5 * (left + right)
  return float(abs(left - right) / mean) if np.isfinite(mean) and mean > 0 else np.nan


def _heading(forward: np.ndarray, up: np.ndarray) -> np.ndarray:
  """Unwrapped heading f64[T] in degrees about `up` (for turn detection only)."""
  a = np.cross(up, [1.0, 0.0, 0.0])
  a = a if np.linalg.norm(a) > 0.1 else np.cross(up, [0.0, 0.0, 1.0])
  a /= np.linalg.norm(a)
  b = np.cross(up, a)
  return np.rad2deg(np.unwrap(np.arctan2(forward @ b, forward @ a)))


@dataclasses.dataclass(frozen=True)
class Steps:
  """Consecutive alternating heel strikes: step k ends at `time[k]` (fractional
  frame) with foot `side[k]` (0 left, 1 right) landing, `duration[k]` frames
  after the other foot landed; `ok[k]` False for steps in a turn or of
  implausible duration."""
  time: np.ndarray
  side: np.ndarray
  duration: np.ndarray
  ok: np.ndarray


def pair_steps(ev: events_lib.GaitEvents, heading: np.ndarray, max_turn_deg: float
               ) -> Steps:
  """Steps from the merged heel strikes of both feet (see `Steps`)."""
  times = np.concatenate([ev.strike[s] for s in SIDES])
  sides = np.concatenate([np.full(len(ev.strike[s]), i) for i, s in enumerate(SIDES)])
  order = np.argsort(times)
  times, sides = times[order], sides[order]
  if len(times) < 2:
    empty = np.zeros(0)
    return Steps(empty, empty.astype(int), empty, empty.astype(bool))
  alternate = sides[1:] != sides[:-1]
  dur = np.diff(times)
  half = 0.5 * ev.period
  turn = np.abs(kin.sample(heading, times[1:]) - kin.sample(heading, times[:-1]))
  ok = alternate & (dur > 0.5 * half) & (dur < 1.6 * half) & (turn <= max_turn_deg)
  return Steps(times[1:], sides[1:], dur, ok)


def _strides(ev: events_lib.GaitEvents, heading: np.ndarray, max_turn_deg: float
             ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """side → (start HS f64[n], duration f64[n] frames) of its plausible strides."""
  out = {}
  for s in SIDES:
    hs = ev.strike[s]
    dur = np.diff(hs)
    turn = np.abs(kin.sample(heading, hs[1:]) - kin.sample(heading, hs[:-1])) if len(hs) > 1 \
        else np.zeros(0)
    ok = (dur > 0.6 * ev.period) & (dur < 1.4 * ev.period) & (turn <= 2 * max_turn_deg)
    out[s] = (hs[:-1][ok], dur[ok])
  return out


def _next_after(t: np.ndarray, candidates: np.ndarray, limit: np.ndarray) -> np.ndarray:
  """For each t, the first candidate in (t, limit); NaN when there is none."""
  if len(candidates) == 0 or len(t) == 0:
    return np.full(len(t), np.nan)
  i = np.searchsorted(candidates, t, side="right")
  found = candidates[np.minimum(i, len(candidates) - 1)]
  return np.where((i < len(candidates)) & (found < limit), found, np.nan)


def step_geometry(pos: np.ndarray, forward: np.ndarray, lateral: np.ndarray,
                  strike: np.ndarray, left_leads: np.ndarray, period: float
                  ) -> tuple[np.ndarray, np.ndarray]:
  """Step length and width (m, f64[n]) at heel strikes `strike` (frames).

  Zeni's heel strike (the heel farthest ahead of the pelvis) comes a little
  before contact, while the swinging foot still moves forward, so the length is
  the largest separation of the ankles along `forward` from 0.1 stride before
  to 0.25 stride after the event: from contact to the other foot's toe-off both
  feet are down and their separation is the step (on a belt they move back
  together). The width is the lateral separation at that frame.
  """
  left = pos[:, J["ANKLE_LEFT"]] - pos[:, J["ANKLE_RIGHT"]]
  sign = np.where(left_leads, 1.0, -1.0)[:, None]
  offsets = np.arange(-int(0.1 * period), int(0.25 * period) + 1)
  idx = np.clip(np.round(strike).astype(int)[:, None] + offsets, 0, len(pos) - 1)
  ap = sign * np.einsum("ntd,ntd->nt", left[idx], forward[idx])
  best = np.take_along_axis(idx, np.argmax(ap, axis=1)[:, None], 1)[:, 0]
  length = ap.max(axis=1)
  width = np.abs(np.einsum("nd,nd->n", left[best], lateral[best]))
  return length, width


def stride_rom(angle: np.ndarray, starts: np.ndarray, durations: np.ndarray) -> float:
  """Median over strides of max - min of angle f[T] (deg) within each stride."""
  if len(starts) == 0:
    return np.nan
  lo = np.round(starts).astype(int)
  hi = np.minimum(np.round(starts + durations).astype(int), len(angle) - 1)
  span = np.arange(int((hi - lo).max()) + 1)
  idx = np.minimum(lo[:, None] + span, hi[:, None])  # ragged strides, padded with their end
  seg = angle[idx]
  return _median(seg.max(1) - seg.min(1))


def _rom(pos: np.ndarray, forward: np.ndarray, up: np.ndarray,
         strides: dict[str, tuple[np.ndarray, np.ndarray]], fps: float,
         cutoff_hz: float) -> dict[str, float]:
  out = {}
  per_side = {s: kin.sagittal_angles(pos, forward, s, up) for s in SIDES}
  for joint in ("hip", "knee", "ankle"):
    roms = [stride_rom(kin.lowpass(per_side[s][joint], fps, cutoff_hz), *strides[s])
            for s in SIDES]
    out[f"{joint}_rom_deg"] = float(np.nanmean(roms)) if np.isfinite(roms).any() else np.nan
    if joint == "knee":
      out["knee_rom_asymmetry"] = symmetry_index(*roms)
  return out


def straight(heading: np.ndarray, period: float, max_turn_deg: float) -> np.ndarray:
  """bool[T]: frames whose heading (deg) changes by at most `max_turn_deg` over
  the step (half the stride `period`, frames) centred on them; turns excluded."""
  half = max(1, int(round(period / 4)))
  idx = np.arange(len(heading))
  ahead = heading[np.minimum(idx + half, len(heading) - 1)]
  behind = heading[np.maximum(idx - half, 0)]
  return np.abs(ahead - behind) <= max_turn_deg


def pelvis_sway(pos: np.ndarray, lateral: np.ndarray, period: float,
                keep: np.ndarray | None = None) -> float:
  """Half the 5-95 % range (m) of the pelvis's side-to-side motion about its
  one-stride moving average, along the body's lateral axis, over the frames
  `keep` (bool[T], default all)."""
  root = kin.pelvis(pos)
  size = max(3, int(round(period)))
  if len(root) < 2 * size:
    return np.nan
  d = np.einsum("td,td->t", root - ndimage.uniform_filter1d(root, size, axis=0,
                                                            mode="nearest"), lateral)
  keep = np.ones(len(d), bool) if keep is None else keep.copy()
  keep[:size // 2] = keep[len(d) - size // 2:] = False  # the filter's edges are biased
  if keep.sum() < size:
    return np.nan
  return float(0.5 * np.subtract(*np.percentile(d[keep], [95, 5])))


def trunk(pos: np.ndarray, forward: np.ndarray, lateral: np.ndarray, up: np.ndarray,
          fps: float, keep: np.ndarray | None = None, cutoff_hz: float = 3.0
          ) -> dict[str, float]:
  """Mean forward trunk lean and the s.d. of trunk inclination (deg) over the
  frames `keep` (bool[T], default all), low-passed at `cutoff_hz`: the depth
  sensor's jitter along its ray (the AP axis for a person facing it) is
  otherwise larger than the sway.

  The s.d. is pooled over the contiguous runs of kept frames, each about its
  own mean: on an out-and-back walk every pass sees the tracker's per-joint
  bias from the other side, which would otherwise pass for sway.
  """
  ap, ml = (kin.lowpass(a, fps, cutoff_hz)
            for a in kin.trunk_inclination(pos, forward, lateral, up))
  keep = np.isfinite(ap) if keep is None else keep & np.isfinite(ap)
  if not keep.any():
    return dict.fromkeys(TRUNK_FEATURES, np.nan)
  run = np.cumsum(np.diff(keep.astype(int), prepend=0) == 1)[keep]  # run label per kept frame
  sizes = np.bincount(run)

  def pooled_sd(x: np.ndarray) -> float:
    x = x[keep]
    means = np.bincount(run, weights=x) / np.maximum(sizes, 1)
    return float(np.sqrt(np.mean((x - means[run]) ** 2)))

  return {"trunk_lean_deg": float(np.mean(ap[keep])), "trunk_sway_ap_deg": pooled_sd(ap),
          "trunk_sway_ml_deg": pooled_sd(ml)}


def walking_features(pos: np.ndarray, fps: float, opts: GaitOptions = GaitOptions()
                     ) -> tuple[dict[str, float], list[str]]:
  """WALK_FEATURES + TRUNK_FEATURES of one walking clip (module docstring).

  Args:
    pos: f64[T, 32, 3] metres, canonical frame, gaps filled (NaN only for
      joints the source lacks).
    fps: frames per second.

  Returns:
    features (NaN where they could not be computed) and the reasons why not.
  """
  feats = dict.fromkeys(WALK_FEATURES, np.nan)
  issues: list[str] = []
  up = kin.estimate_up(pos)
  forward, lateral, _ = kin.body_axes(pos, fps, up, opts.travel_speed)
  ev = events_lib.walking(pos, forward, fps, opts.events)
  # Again, averaging over exactly one stride: the pelvis's periodic sway cancels
  # and the walking direction is exact enough for step widths.
  forward, lateral, _ = kin.body_axes(pos, fps, up, opts.travel_speed, ev.period / fps)
  ev = events_lib.walking(pos, forward, fps, opts.events)
  heading = _heading(forward, up)
  keep = straight(heading, ev.period, opts.max_turn_deg)
  feats.update(trunk(pos, forward, lateral, up, fps, keep))
  steps = pair_steps(ev, heading, opts.max_turn_deg)
  feats["pelvis_sway_ml_m"] = pelvis_sway(pos, lateral, ev.period, keep)
  if steps.ok.sum() < opts.min_steps:
    issues.append(f"too few gait events: {ev.count()} heel strikes, "
                  f"{int(steps.ok.sum())} valid steps (need {opts.min_steps})")
    return feats, issues

  t, dur = steps.time[steps.ok], steps.duration[steps.ok] / fps
  lead = np.array(SIDES)[steps.side[steps.ok]]
  length, width = step_geometry(pos, forward, lateral, t, lead == "left", ev.period)
  strides = _strides(ev, heading, opts.max_turn_deg)
  stride_dur = np.concatenate([strides[s][1] for s in SIDES]) / fps

  feats["step_time_s"] = _median(dur)
  feats["cadence_steps_per_min"] = 60.0 / float(np.mean(dur))
  feats["step_time_cv"] = _cv(dur)
  feats["step_length_m"] = _median(length)
  feats["step_length_cv"] = _cv(length)
  feats["step_width_m"] = _median(width)
  feats["step_width_sd_m"] = _sd(width)
  feats["step_time_asymmetry"] = symmetry_index(*(_median(dur[lead == s]) for s in SIDES))
  feats["step_length_asymmetry"] = symmetry_index(*(_median(length[lead == s]) for s in SIDES))
  # Consecutive steps (sharing a heel strike) make a stride's length.
  consecutive = np.isclose(t[1:] - dur[1:] * fps, t[:-1])
  stride_length = (length[1:] + length[:-1])[consecutive]
  feats["stride_length_m"] = _median(stride_length) if consecutive.any() \
      else 2.0 * feats["step_length_m"]
  if len(stride_dur):
    feats["stride_time_s"] = _median(stride_dur)
    feats["stride_time_cv"] = _cv(stride_dur)
  else:
    feats["stride_time_s"] = 2.0 * feats["step_time_s"]
    issues.append("no complete stride of one foot: stride time from two steps")

  # Stance and double support from toe-offs.
  stance = {}
  for s in SIDES:
    start, d = strides[s]
    to = _next_after(start, ev.off[s], start + d)
    stance[s] = (to - start) / d
  all_stance = np.concatenate([stance[s] for s in SIDES])
  if np.isfinite(all_stance).any():
    feats["stance_fraction"] = _median(all_stance)
    feats["swing_fraction"] = 1.0 - feats["stance_fraction"]
    feats["stance_asymmetry"] = symmetry_index(*(_median(stance[s]) for s in SIDES))
  else:
    issues.append("no toe-off within a stride: stance and swing not computed")
  ds = []
  other = {"left": "right", "right": "left"}
  for s in SIDES:
    hs = ev.strike[s]
    nxt = np.append(ev.strike[other[s]], np.inf)
    limit = nxt[np.searchsorted(ev.strike[other[s]], hs, side="right")]
    ds.append(_median(_next_after(hs, ev.off[other[s]], limit) - hs))
  if np.isfinite(ds).all() and np.isfinite(feats["stride_time_s"]):
    feats["double_support_fraction"] = float(sum(ds) / fps / feats["stride_time_s"])

  # Speed: the pelvis's when it travels, else the strides' (treadmill). Over
  # whole strides the sway cancels; the median ignores strides in a turn.
  starts = np.concatenate([strides[s][0] for s in SIDES])
  root = kin.pelvis(pos)
  moved = kin.horizontal(kin.sample(root, starts + stride_dur * fps) - kin.sample(root, starts),
                         up)
  travel = _median(np.linalg.norm(moved, axis=-1) / stride_dur)
  if np.isfinite(travel) and travel > opts.travel_speed:
    feats["speed_m_s"] = travel
  else:
    feats["speed_m_s"] = feats["stride_length_m"] / feats["stride_time_s"]
  feats.update(_rom(pos, forward, up, strides, fps, opts.events.cutoff_hz))
  if not any(len(strides[s][0]) for s in SIDES):
    issues.append("no complete stride: ranges of motion not computed")
  return feats, issues


def in_place_features(pos: np.ndarray, fps: float, opts: GaitOptions = GaitOptions()
                      ) -> tuple[dict[str, float], list[str]]:
  """IN_PLACE_FEATURES + TRUNK_FEATURES of one stepping-in-place clip.

  Steps are alternating peak foot lifts; foot lift is the ankle's peak height
  above its lowest (standing) level relative to the pelvis, m.
  """
  feats = dict.fromkeys(IN_PLACE_FEATURES, np.nan)
  issues: list[str] = []
  up = kin.estimate_up(pos)
  forward, lateral, _ = kin.body_axes(pos, fps, up, opts.travel_speed)
  feats.update(trunk(pos, forward, lateral, up, fps))
  ev = events_lib.in_place(pos, fps, up, opts.events)
  feats["pelvis_sway_ml_m"] = pelvis_sway(pos, lateral, ev.period)
  steps = pair_steps(ev, np.zeros(len(pos)), opts.max_turn_deg)
  if steps.ok.sum() < opts.min_steps:
    issues.append(f"too few steps in place: {ev.count()} foot lifts, "
                  f"{int(steps.ok.sum())} valid steps (need {opts.min_steps})")
    return feats, issues
  dur = steps.duration[steps.ok] / fps
  lead = np.array(SIDES)[steps.side[steps.ok]]
  feats["step_time_s"] = _median(dur)
  feats["cadence_steps_per_min"] = 60.0 / float(np.mean(dur))
  feats["step_time_cv"] = _cv(dur)
  feats["step_time_asymmetry"] = symmetry_index(*(_median(dur[lead == s]) for s in SIDES))
  strides = _strides(ev, np.zeros(len(pos)), opts.max_turn_deg)
  stride_dur = np.concatenate([strides[s][1] for s in SIDES]) / fps
  feats["stride_time_s"] = _median(stride_dur) if len(stride_dur) else 2 * feats["step_time_s"]
  feats["stride_time_cv"] = _cv(stride_dur)
  root = kin.pelvis(pos)
  lifts = []
  for s in SIDES:
    h = kin.lowpass((pos[:, J[f"ANKLE_{s.upper()}"]] - root) @ up, fps, opts.events.cutoff_hz)
    peaks = ev.strike[s]
    lifts.append(_median(kin.sample(h, peaks) - np.percentile(h, 5)) if len(peaks) else np.nan)
  feats["foot_lift_m"] = float(np.nanmean(lifts)) if np.isfinite(lifts).any() else np.nan
  feats["foot_lift_asymmetry"] = symmetry_index(*lifts)
  feats.update(_rom(pos, forward, up, strides, fps, opts.events.cutoff_hz))
  return feats, issues
