"""UCalgary "Normal & Abnormal Gait" Kinect v2 CSVs (`*_GeometricPositions_*.csv`).

File: a header row, then one row per frame (nominally 30 frames/s, no timestamps):
18 joints x (X, Y, Z) in metres, Kinect v2 camera space (+y up), in the fixed
order `FILE_JOINTS`, then 8 derived distance columns that are ignored. The header's
spelling is irregular (`ShouldL`, `SholdD`, stray spaces), so columns are mapped
by position, never by name.

The Kinect v2 joints the file lacks (SpineShoulder, hands, hand tips, thumbs) are
NaN with confidence 0; the 18 present joints have confidence 1.

Identity comes from the file name
`subjectN_Seq_K_Gen_{M|F}_GeometricPositions_{N|AR|AL|OA}.csv`: participant
"ucalgary_subN", task "walk", session "K", meta sex and gait_type (N normal,
AR/AL simulated right/left-leg abnormality, OA an experimental condition).
`ReadOptions` identity fields override it.
"""

from __future__ import annotations

import os
import re

import numpy as np

from data_tools.readers import ReadOptions
from data_tools.recording import Excluded, Recording, read_text, uniform_timestamps
from gait_jax import skeleton

FORMAT = "kinect_v2_csv"
EXTENSIONS = (".csv",)

LAYOUT = skeleton.KINECT_V2
DEFAULT_FPS = 30.0
# The file's joint order (Kinect v2 JointType names).
FILE_JOINTS: tuple[str, ...] = (
    "FootLeft", "AnkleLeft", "KneeLeft", "HipLeft",
    "FootRight", "AnkleRight", "KneeRight", "HipRight",
    "SpineBase", "SpineMid", "Neck", "Head", "ShoulderLeft", "ShoulderRight",
    "WristLeft", "WristRight", "ElbowLeft", "ElbowRight",
)  # pyformat: disable
NUM_COORD_COLUMNS = 3 * len(FILE_JOINTS)
FILE_NAME = re.compile(
    r"subject(?P<subject>\d+)_Seq_(?P<seq>\d+)_Gen_(?P<sex>[MF])"
    r"_GeometricPositions_(?P<gait>N|AR|AL|OA)\.csv", re.IGNORECASE)
# Where each file joint sits in the kinect_v2 layout.
_LAYOUT_INDEX = np.array([LAYOUT.joints.index(j) for j in FILE_JOINTS])


def identity_from_name(path: str) -> dict[str, str] | None:
  """participant_id/task/session/sex/gait_type from the file name; None if it does not fit."""
  m = FILE_NAME.fullmatch(os.path.basename(path))
  if m is None:
    return None
  return {"participant_id": f"ucalgary_sub{int(m['subject'])}", "task": "walk",
          "session": str(int(m["seq"])), "sex": m["sex"].upper(),
          "gait_type": m["gait"].upper()}


def _parse_cell(cell: str, row: int, column: int) -> float:
  cell = cell.strip()
  if not cell:
    return np.nan
  try:
    return float(cell)
  except ValueError:
    raise Excluded("unreadable", f"data row {row}, column {column + 1}: {cell!r} is "
                   "not a number") from None


def _read_coordinates(path: str) -> np.ndarray:
  """f64[T, 54]: the joint coordinate columns of every data row, in metres."""
  text = read_text(path)
  lines = text.splitlines()
  header = lines[0].split(",")
  if len(header) < NUM_COORD_COLUMNS:
    raise Excluded("wrong_joint_count", f"header has {len(header)} columns, need at "
                   f"least {NUM_COORD_COLUMNS} (18 joints x XYZ)")
  if any(_is_number(h) for h in header[:NUM_COORD_COLUMNS]):
    raise Excluded("unreadable", "first line is data, not the expected header row")
  rows = []
  for r, line in enumerate(lines[1:], start=1):
    if not line.strip():
      continue
    cells = line.split(",")
    if len(cells) < NUM_COORD_COLUMNS:
      cut = r == len(lines) - 1 and not text.endswith(("\n", "\r"))
      raise Excluded("truncated" if cut else "wrong_joint_count",
                     f"data row {r} has {len(cells)} columns, need at least "
                     f"{NUM_COORD_COLUMNS}")
    rows.append([_parse_cell(c, r, k) for k, c in enumerate(cells[:NUM_COORD_COLUMNS])])
  if not rows:
    raise Excluded("empty", f"{path} has a header but no data rows")
  return np.asarray(rows, np.float64)


def _is_number(text: str) -> bool:
  try:
    float(text)
  except ValueError:
    return False
  return True


def read(path: str, opts: ReadOptions) -> Recording:
  """Reads one UCalgary `*_GeometricPositions_*.csv` file.

  Args:
    path: the CSV file.
    opts: identity overrides and fps (default 30); layout must be kinect_v2.

  Returns:
    A Recording in the kinect_v2 layout: positions f32[T, 25, 3] metres in the
    Kinect v2 camera frame (+y up), NaN for the 7 joints the file lacks;
    confidence f32[T, 25] (1 present, 0 absent); timestamps f64[T] = frame / fps.

  Raises:
    Excluded: empty, unreadable, truncated, wrong_joint_count, bad_metadata.
  """
  if opts.layout not in (None, LAYOUT.name):
    raise Excluded("bad_metadata", f"UCalgary files are kinect_v2, but --layout "
                   f"{opts.layout!r} was given")
  coords = _read_coordinates(path)
  named = identity_from_name(path) or {}
  participant = opts.participant_id or named.get("participant_id")
  if participant is None:
    raise Excluded("bad_metadata", f"file name {os.path.basename(path)!r} does not match "
                   f"{FILE_NAME.pattern!r} and no participant_id was given")
  task = opts.task or named.get("task", "walk")
  session = opts.session or named.get("session", "0")
  meta = {k: named[k] for k in ("sex", "gait_type") if k in named}

  num_frames = coords.shape[0]
  coords[np.isinf(coords)] = np.nan
  positions = np.full((num_frames, LAYOUT.num_joints, 3), np.nan, np.float32)
  positions[:, _LAYOUT_INDEX] = coords.reshape(num_frames, len(FILE_JOINTS), 3)
  present = np.isfinite(positions).all(axis=-1)
  positions[~present] = np.nan
  confidence = present.astype(np.float32)
  in_file = np.zeros(LAYOUT.num_joints, bool)
  in_file[_LAYOUT_INDEX] = True
  fps = DEFAULT_FPS if opts.fps is None else float(opts.fps)
  return Recording(source=str(path), participant_id=participant, task=task,
                   session=session, layout=LAYOUT.name, positions=positions,
                   confidence=confidence, timestamps=uniform_timestamps(num_frames, fps),
                   meta=meta, joint_present=in_file)
