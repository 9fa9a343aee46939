"""A raw recording as a reader returns it, and the reasons a file can be excluded.

Readers turn one file into one `Recording` in its source layout (metres, source
camera frame, source joint order); `data_tools.qc` then brings it onto the
canonical skeleton. Anything wrong with a file is raised as `Excluded` with one of
the `REASONS` codes, so that the QC report can say, per file, why it was dropped.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Exclusion reason codes, as they appear in qc_report.csv's `reason` column.
REASONS = {
    "unreadable": "the file cannot be opened or parsed",
    "truncated": "the file ends mid-record",
    "empty": "the recording has no frames",
    "no_body": "no body was tracked in any frame",
    "wrong_joint_count": "the joint count does not match the layout",
    "non_finite": "NaN/inf coordinates beyond the gap limit",
    "implausible_bones": "bone lengths outside the human range (wrong units or a bad track)",
    "too_short": "shorter than one clip",
    "bad_metadata": "fps, timestamps or identifiers missing or invalid",
}


class Excluded(Exception):
  """A file that cannot be prepared; `reason` is a key of REASONS."""

  def __init__(self, reason: str, detail: str):
    assert reason in REASONS, reason
    super().__init__(f"{reason}: {detail}")
    self.reason = reason
    self.detail = detail


@dataclasses.dataclass
class Recording:
  """One person doing one task, as read from one file.

  Attributes:
    source: the file it came from.
    participant_id: who; never empty.
    task: what they did (e.g. "treadmill", "walk", "walk_in_place",
      "sit_to_stand", "romberg_eyes_closed", or a dataset's own label).
    session: which session of that participant and task ("0" if unknown).
    layout: a `gait_jax.skeleton.LAYOUTS` key naming the joint order and frame.
    positions: f32[T, J, 3] metres in the layout's camera frame; NaN = missing.
    confidence: f32[T, J] in [0, 1]; 0 where missing.
    timestamps: f64[T] seconds, strictly increasing.
    meta: extra string facts recorded with every clip (sex, gait type, which body
      was followed, ...).
    joint_present: bool[J], the layout joints this file carries at all (a file may
      hold fewer joints than its sensor tracks); None = every layout joint.
  """
  source: str
  participant_id: str
  task: str
  session: str
  layout: str
  positions: np.ndarray
  confidence: np.ndarray
  timestamps: np.ndarray
  meta: dict[str, str] = dataclasses.field(default_factory=dict)
  joint_present: np.ndarray | None = None

  @property
  def num_frames(self) -> int:
    return int(self.positions.shape[0])


def uniform_timestamps(num_frames: int, fps: float) -> np.ndarray:
  """f64[T] seconds for frames sampled at a constant rate."""
  if not np.isfinite(fps) or fps <= 0:
    raise Excluded("bad_metadata", f"fps must be positive, got {fps}")
  return np.arange(num_frames, dtype=np.float64) / float(fps)


def read_text(path: str) -> str:
  """A text file's content; Excluded for unreadable, blank or non-UTF-8 files."""
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise Excluded("unreadable", f"cannot open {path}: {e}") from None
  if not data.strip():
    raise Excluded("empty", f"{path} is a 0-byte or blank file")
  try:
    return data.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    raise Excluded("unreadable", f"{path} is not UTF-8 text: {e}") from None


def check_timestamps(times: np.ndarray, unit: str = "frame") -> np.ndarray:
  """Returns f64 timestamps if finite and strictly increasing, else Excluded.

  `unit` names a position in the error ("frame", "data row").
  """
  times = np.asarray(times, np.float64)
  if not np.isfinite(times).all():
    raise Excluded("bad_metadata", "timestamps contain empty, NaN or inf values")
  steps = np.diff(times)
  if (steps <= 0).any():
    i = int(np.argmax(steps <= 0))
    raise Excluded("bad_metadata", f"timestamps not strictly increasing: {unit} {i + 1} "
                   f"at {times[i + 1]} s follows {times[i]} s")
  return times
