"""Quality control: a raw `Recording` → fixed-length canonical `Clip`s, or `Excluded`.

Order of operations (each step says why it sits where it does):
  1. onto the canonical skeleton and frame (`Layout.to_canonical`);
  2. trim leading/trailing frames without a body;
  3. fill short gaps of a joint by linear interpolation in time (before resampling,
     so that a dropped frame is not smeared into its neighbours); filled samples get
     confidence 0 because they were not observed;
  4. resample onto a uniform grid at the target fps; a grid point whose source
     neighbours are further apart than the gap limit stays missing;
  5. 3-frame median filter against single-frame tracker spikes;
  6. reject implausible bone lengths (wrong units, a broken track);
  7. cut fixed-length windows from the runs of frames where every required joint
     (default: the model's 26-joint set) is finite. Too few frames, or only
     long-gapped ones, exclude the recording. A long gap in a joint outside the
     required set (hands, face) stays NaN in the clip, marking it unobserved, so
     that unreliable joints the model does not use cannot cost whole recordings.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from data_tools.recording import Excluded, Recording
from gait_jax import skeleton
from gait_jax.data.records import Clip
from gait_jax.errors import InputError


@dataclasses.dataclass(frozen=True)
class QCOptions:
  """Attributes:
    fps: target frame rate.
    clip_frames: frames per clip.
    clip_stride: frames between clip starts (< clip_frames overlaps); None = clip_frames.
    max_gap_frames: longest run of missing frames (at the target fps) that is filled.
    median_frames: median filter length in frames (odd; 1 disables it).
    max_unstable_fraction: largest fraction of frames in which a bone may deviate by
      more than half its median length before the track counts as broken.
    required_joints: a joint-set name or joint names that must be finite in every
      frame of a clip.
  """
  fps: float = 30.0
  clip_frames: int = 900
  clip_stride: int | None = None
  max_gap_frames: int = 10
  median_frames: int = 3
  max_unstable_fraction: float = 0.25
  required_joints: str | tuple[str, ...] = skeleton.DEFAULT_JOINT_SET

  def __post_init__(self):
    if self.clip_frames < 1 or (self.clip_stride is not None and self.clip_stride < 1):
      raise InputError("clip_frames and clip_stride must be positive")
    if self.median_frames not in (1, 3):
      raise InputError("median_frames must be 1 or 3")
    if self.fps <= 0 or self.max_gap_frames < 0:
      raise InputError("fps must be positive and max_gap_frames non-negative")
    try:
      skeleton.joint_indices(self.required_joints)
    except ValueError as e:
      raise InputError(f"required_joints {self.required_joints!r}: {e}") from None


@dataclasses.dataclass
class Prepared:
  """A recording that passed QC: its clips and what QC did to it."""
  clips: list[Clip]
  frames_in: int
  frames_out: int
  notes: list[str]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
  """[start, stop) of the runs of True in bool[T]."""
  padded = np.concatenate([[False], mask, [False]])
  edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
  return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def fill_gaps(times: np.ndarray, positions: np.ndarray, confidence: np.ndarray,
              max_gap_s: float) -> int:
  """Fills, in place, runs of NaN no longer than `max_gap_s` between two samples.

  Args:
    times: f64[T] seconds.
    positions: f32[T, J, 3]; NaN = missing. Modified in place.
    confidence: f32[T, J]; set to 0 where filled. Modified in place.
    max_gap_s: the longest fillable gap, from last sample before to first after.

  Returns:
    The number of (joint, run) gaps filled.
  """
  filled = 0
  missing = np.isnan(positions).any(-1)
  for j in np.flatnonzero(missing.any(0)):
    for start, stop in _runs(missing[:, j]):
      if start == 0 or stop == len(times):
        continue  # an edge run has no sample on one side to interpolate from
      t0, t1 = times[start - 1], times[stop]
      if t1 - t0 > max_gap_s:
        continue
      w = ((times[start:stop] - t0) / (t1 - t0))[:, None]
      positions[start:stop, j] = (1 - w) * positions[start - 1, j] + w * positions[stop, j]
      confidence[start:stop, j] = 0.0
      filled += 1
  return filled


def resample(times: np.ndarray, positions: np.ndarray, confidence: np.ndarray,
             fps: float, max_gap_s: float) -> tuple[np.ndarray, np.ndarray]:
  """Linear resampling onto the uniform grid t0, t0 + 1/fps, ... ≈ t_end.

  Grid points between two source samples further apart than `max_gap_s` (dropped
  frames) come out NaN. NaN in a neighbouring source sample propagates.
  Returns positions f32[T', J, 3] and confidence f32[T', J].
  """
  # Rounding, not flooring, the frame count: timestamp jitter must not cost the last
  # frame; a final grid point up to half a frame past the end holds the last sample.
  grid = times[0] + np.arange(int(np.round((times[-1] - times[0]) * fps)) + 1) / fps
  left = np.clip(np.searchsorted(times, grid, side="right") - 1, 0, len(times) - 2)
  right = left + 1
  span = times[right] - times[left]
  w = np.clip((grid - times[left]) / span, 0.0, 1.0).astype(np.float32)
  pos = (1 - w)[:, None, None] * positions[left] + w[:, None, None] * positions[right]
  conf = (1 - w)[:, None] * confidence[left] + w[:, None] * confidence[right]
  # A grid point on a source sample takes it as is: no NaN from the other side.
  on_left = np.isclose(grid, times[left], rtol=0, atol=1e-9)
  on_right = np.isclose(grid, times[right], rtol=0, atol=1e-9) & ~on_left
  for side, exact in ((left, on_left), (right, on_right)):
    pos[exact], conf[exact] = positions[side[exact]], confidence[side[exact]]
  pos[(span > max_gap_s) & ~(on_left | on_right)] = np.nan
  return pos.astype(np.float32), conf.astype(np.float32)


def median3(positions: np.ndarray) -> np.ndarray:
  """3-frame running median along time (edges replicated); NaN stays NaN.

  fmin/fmax skip a NaN neighbour, so a sample next to a gap is not lost.
  """
  prev = np.concatenate([positions[:1], positions[:-1]])
  nxt = np.concatenate([positions[1:], positions[-1:]])
  med = np.fmax(np.fmin(prev, positions), np.fmin(np.fmax(prev, positions), nxt))
  med[np.isnan(positions)] = np.nan
  return med


def check_bones(positions: np.ndarray, present: np.ndarray, valid: np.ndarray,
                max_unstable_fraction: float) -> None:
  """Raises Excluded('implausible_bones') for inhuman or unstable bone lengths.

  Args:
    positions: f32[T, 32, 3] metres, canonical.
    present: bool[32].
    valid: bool[T] frames where every present joint is finite.
  """
  if not valid.any():
    return
  lengths, names = [], []
  for (a, b), (lo, hi) in skeleton.BONE_LENGTH_RANGES.items():
    ia, ib = skeleton.JOINT_INDEX[a], skeleton.JOINT_INDEX[b]
    if not (present[ia] and present[ib]):
      continue
    length = np.linalg.norm(positions[valid, ia] - positions[valid, ib], axis=-1)
    median = float(np.median(length))
    if not lo <= median <= hi:
      hint = " (are the coordinates in millimetres?)" if median > 100 * hi else ""
      raise Excluded("implausible_bones",
                     f"median {a}-{b} length {median:.3f} m outside [{lo}, {hi}] m{hint}")
    lengths.append(np.abs(length / median - 1) > 0.5)
    names.append(f"{a}-{b}")
  if lengths:
    unstable = np.stack(lengths, 1).any(1).mean()
    if unstable > max_unstable_fraction:
      raise Excluded("implausible_bones",
                     f"{unstable:.0%} of frames have a bone off its median length by >50% "
                     f"(limit {max_unstable_fraction:.0%}); bones checked: {', '.join(names)}")


def prepare_recording(rec: Recording, opts: QCOptions) -> Prepared:
  """Runs QC on one recording; raises Excluded with a reason when it is unusable."""
  frames_in = rec.num_frames
  if frames_in == 0:
    raise Excluded("empty", "the recording has no frames")
  layout = skeleton.get_layout(rec.layout)
  if rec.positions.ndim != 3 or rec.positions.shape[1:] != (layout.num_joints, 3):
    raise Excluded("wrong_joint_count", f"layout {layout.name!r} has {layout.num_joints} "
                   f"joints, positions have shape {list(rec.positions.shape)}")
  raw = np.where(np.isfinite(rec.positions), rec.positions, np.nan)
  positions, confidence, present = layout.to_canonical(raw, rec.confidence,
                                                    rec.joint_present)
  notes = []

  body = np.isfinite(positions[:, present]).all(-1).any(-1)
  if not body.any():
    raise Excluded("no_body", "no tracked joint in any frame")
  first, last = np.flatnonzero(body)[[0, -1]]
  times = rec.timestamps[first:last + 1]
  positions, confidence = positions[first:last + 1], confidence[first:last + 1]
  required = np.zeros(skeleton.NUM_JOINTS, bool)
  required[skeleton.joint_indices(opts.required_joints)] = True
  never = np.isnan(positions).all((0, 2)) & present
  if (never & required).any():
    names = [skeleton.JOINTS[j] for j in np.flatnonzero(never & required)]
    raise Excluded("non_finite", f"joints never tracked: {', '.join(names)}")
  if never.any():
    present = present & ~never
    notes.append("never tracked, marked missing: "
                 + ", ".join(skeleton.JOINTS[j] for j in np.flatnonzero(never)))

  max_gap_s = (opts.max_gap_frames + 1) / opts.fps + 1e-6
  filled = fill_gaps(times, positions, confidence, max_gap_s)
  if filled:
    notes.append(f"filled {filled} short gaps")
  dt = np.diff(times)
  if len(times) > 1 and not np.allclose(dt, 1.0 / opts.fps, rtol=1e-3, atol=0):
    positions, confidence = resample(times, positions, confidence, opts.fps, max_gap_s)
    notes.append(f"resampled {len(times)} frames at {1 / np.median(dt):.2f} fps "
                 f"to {len(positions)} at {opts.fps:g}")
  if opts.median_frames == 3:
    positions = median3(positions)

  valid = np.isfinite(positions[:, present & required]).all((-1, -2))
  check_bones(positions, present & required, valid, opts.max_unstable_fraction)

  stride = opts.clip_stride or opts.clip_frames
  clips, covered = [], np.zeros(len(positions), bool)
  runs = _runs(valid)
  for start, stop in runs:
    for s in range(start, stop - opts.clip_frames + 1, stride):
      sl = slice(s, s + opts.clip_frames)
      clip_pos = np.where(present[:, None], positions[sl], 0.0).astype(np.float32)
      observed = present & np.isfinite(clip_pos).all(-1)
      clip_conf = np.where(observed, np.clip(confidence[sl], 0, 1), 0.0).astype(np.float32)
      clips.append(Clip(
          positions=clip_pos, confidence=clip_conf, present=present.copy(),
          participant_id=rec.participant_id, task=rec.task, session=rec.session,
          source=rec.source, start_frame=int(s), fps=float(opts.fps), meta=dict(rec.meta)))
      covered[sl] = True
  if not clips:
    longest = max((b - a for a, b in runs), default=0)
    if len(positions) < opts.clip_frames:
      raise Excluded("too_short", f"{len(positions)} frames at {opts.fps:g} fps, "
                     f"a clip needs {opts.clip_frames}")
    gaps = np.where(present & required, np.isnan(positions[:, :, 0]).sum(0), -1)
    worst = skeleton.JOINTS[int(np.argmax(gaps))]
    raise Excluded("non_finite", f"longest run of complete frames is {longest}, a clip "
                   f"needs {opts.clip_frames}; gaps beyond {opts.max_gap_frames} frames "
                   f"(most in {worst})")
  if not valid.all():
    notes.append(f"{int((~valid).sum())} frames in unfillable gaps skipped")
  unobserved = covered[:, None] & present & np.isnan(positions).any(-1)
  if unobserved.any():
    notes.append(f"{int(unobserved.sum())} joint-frames outside the required joints "
                 "left unobserved")
  return Prepared(clips=clips, frames_in=frames_in, frames_out=int(covered.sum()),
                  notes=notes)
