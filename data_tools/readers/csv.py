"""Generic CSV: one row per frame, `<joint>_x/_y/_z` columns for every layout joint.

Columns (names matched case-insensitively, any order, extra columns ignored):
  <joint>_x, <joint>_y, <joint>_z for every joint of the layout, in the file's units;
    an empty cell is a missing coordinate (the joint becomes NaN).
  <joint>_conf: optional confidence in [0, 1]; default 1 where the joint is present.
  timestamp: optional seconds, strictly increasing; else frames are 1/fps apart.

Identity and units come from, in order of precedence: the command line
(`ReadOptions`), a sidecar JSON `<file>.json` next to the file (e.g.
`walk.csv.json` with keys participant_id, task, session, fps, layout, units; any
other scalar key goes into `meta`), then defaults (layout "azure_kinect", units
"m", session "0").
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd

from data_tools.readers import ReadOptions
from data_tools.recording import Excluded, Recording, check_timestamps, uniform_timestamps
from gait_jax import skeleton

FORMAT = "csv"
EXTENSIONS = (".csv",)

UNIT_SCALE: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001}
_SIDECAR_KEYS = frozenset({"participant_id", "task", "session", "fps", "layout", "units"})


def sidecar_path(path: str) -> str:
  """Where the identity sidecar of a CSV lives: the file name plus `.json`."""
  return f"{path}.json"


def _read_sidecar(path: str) -> dict:
  side = sidecar_path(path)
  if not os.path.exists(side):
    return {}
  try:
    with open(side, encoding="utf-8") as f:
      data = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise Excluded("bad_metadata", f"sidecar {side} is not valid JSON: {e}") from None
  if not isinstance(data, dict):
    raise Excluded("bad_metadata", f"sidecar {side} must hold a JSON object")
  return data


def _pick(explicit, sidecar: dict, key: str, default=None):
  """Command line over sidecar over default; empty values count as absent."""
  if explicit not in (None, ""):
    return explicit
  value = sidecar.get(key)
  return default if value in (None, "") else value


def _check_last_line(path: str, num_header_fields: int) -> None:
  """A final line without a newline and with too few fields: the file was cut."""
  with open(path, "rb") as f:
    f.seek(0, os.SEEK_END)
    f.seek(max(0, f.tell() - 65536))
    tail = f.read()
  if tail.endswith(b"\n") or b"\n" not in tail:
    return
  last = tail.rsplit(b"\n", 1)[1]
  if last.strip() and last.count(b",") + 1 < num_header_fields:
    raise Excluded("truncated", f"last line has {last.count(b',') + 1} of "
                   f"{num_header_fields} fields and no line end")


def _load_table(path: str) -> pd.DataFrame:
  try:
    if os.path.getsize(path) == 0:
      raise Excluded("empty", f"{path} is a 0-byte file")
    table = pd.read_csv(path, dtype=str, skipinitialspace=True, encoding="utf-8")
  except Excluded:
    raise
  except pd.errors.EmptyDataError:
    raise Excluded("empty", f"{path} has no header and no rows") from None
  except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as e:
    raise Excluded("unreadable", f"cannot parse {path} as CSV: {e}") from None
  table.columns = [str(c).strip().lower() for c in table.columns]
  _check_last_line(path, len(table.columns))
  if len(table) == 0:
    raise Excluded("empty", f"{path} has a header but no rows")
  return table


def _numeric(table: pd.DataFrame, columns: list[str]) -> np.ndarray:
  """f64[T, len(columns)]; empty cells → NaN, anything else non-numeric → unreadable."""
  raw = table[columns]
  values = raw.apply(pd.to_numeric, errors="coerce")
  bad = values.isna().to_numpy() & raw.notna().to_numpy()
  if bad.any():
    row, col = (int(i) for i in np.argwhere(bad)[0])
    raise Excluded("unreadable", f"non-numeric value {raw.iat[row, col]!r} in column "
                   f"{columns[col]!r}, data row {row + 1}")
  out = values.to_numpy(np.float64, copy=True)  # pandas may hand out a read-only view
  out[np.isinf(out)] = np.nan
  return out


def read(path: str, opts: ReadOptions) -> Recording:
  """Reads one CSV recording (see the module docstring for columns and sidecar).

  Args:
    path: the `.csv` file.
    opts: explicit layout/fps/units/identity; they win over the sidecar.

  Returns:
    A Recording with positions f32[T, J, 3] metres in the layout's camera frame,
    confidence f32[T, J] and timestamps f64[T] seconds.

  Raises:
    Excluded: unreadable, truncated, empty, wrong_joint_count, bad_metadata.
  """
  table = _load_table(path)
  sidecar = _read_sidecar(path)
  layout_name = _pick(opts.layout, sidecar, "layout", "azure_kinect")
  if not isinstance(layout_name, str) or layout_name not in skeleton.LAYOUTS:
    raise Excluded("bad_metadata", f"unknown layout {layout_name!r}; known: "
                   f"{sorted(skeleton.LAYOUTS)}")
  layout = skeleton.LAYOUTS[layout_name]
  units = _pick(opts.units, sidecar, "units", "m")
  if not isinstance(units, str) or units not in UNIT_SCALE:
    raise Excluded("bad_metadata", f"unknown units {units!r}; known: {sorted(UNIT_SCALE)}")
  participant = _pick(opts.participant_id, sidecar, "participant_id")
  task = _pick(opts.task, sidecar, "task")
  if participant is None or task is None:
    missing = [k for k, v in (("participant_id", participant), ("task", task)) if v is None]
    raise Excluded("bad_metadata", f"{missing} given neither on the command line nor in "
                   f"{sidecar_path(path)}")
  session = _pick(opts.session, sidecar, "session", "0")

  names = [j.lower() for j in layout.joints]
  xyz_columns = [f"{j}_{axis}" for j in names for axis in "xyz"]
  missing = [c for c in xyz_columns if c not in table.columns]
  if missing:
    shown = ", ".join(missing[:12]) + (f" and {len(missing) - 12} more" if len(missing) > 12
                                       else "")
    raise Excluded("wrong_joint_count", f"layout {layout.name!r} needs "
                   f"{layout.num_joints} joints x 3 columns; missing {shown}")
  num_frames = len(table)
  positions = _numeric(table, xyz_columns).reshape(num_frames, layout.num_joints, 3)
  positions *= UNIT_SCALE[units]
  positions = positions.astype(np.float32)
  present = np.isfinite(positions).all(axis=-1)
  positions[~present] = np.nan

  confidence = np.ones((num_frames, layout.num_joints), np.float32)
  conf_columns = [f"{j}_conf" for j in names]
  for j, column in enumerate(conf_columns):
    if column in table.columns:
      values = _numeric(table, [column])[:, 0]
      given = np.isfinite(values)
      bad = given & present[:, j] & ~((values >= 0) & (values <= 1))
      if bad.any():
        raise Excluded("bad_metadata", f"column {column!r} outside [0, 1]: "
                       f"{values[bad][0]} at data row {int(np.argmax(bad)) + 1}")
      confidence[given, j] = values[given]
  confidence[~present] = 0.0

  if "timestamp" in table.columns:
    timestamps = check_timestamps(_numeric(table, ["timestamp"])[:, 0], "data row")
  else:
    fps = _pick(opts.fps, sidecar, "fps")
    if fps is None:
      raise Excluded("bad_metadata", "no timestamp column and no fps (command line or "
                     "sidecar)")
    try:
      fps = float(fps)
    except (TypeError, ValueError):
      raise Excluded("bad_metadata", f"fps must be a number, got {fps!r}") from None
    timestamps = uniform_timestamps(num_frames, fps)

  meta = {k: str(v) for k, v in sidecar.items()
          if k not in _SIDECAR_KEYS and isinstance(v, (str, int, float, bool))}
  return Recording(source=str(path), participant_id=str(participant), task=str(task),
                   session=str(session), layout=layout.name, positions=positions,
                   confidence=confidence, timestamps=timestamps.astype(np.float64),
                   meta=meta)
