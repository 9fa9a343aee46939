"""The project's neutral interchange format: one `.npz` archive per recording.

Keys:
  positions: f32[T, J, 3] metres in the layout's camera frame; NaN = missing.
  fps: scalar frames/s, or timestamps: f64[T] seconds, strictly increasing
    (timestamps win when both are present; `ReadOptions.fps` is the last resort).
  confidence: optional f32[T, J] in [0, 1]; default 1 where the position is
    finite, 0 where it is NaN.
  layout: optional str, a `gait_jax.skeleton.LAYOUTS` key; default "azure_kinect".
  participant_id, task: str; `ReadOptions` fills them only when the file lacks them.
  session: optional str, default "0".
  joint_present: optional bool[J], the layout joints the file carries (False for a
    joint the source never had, e.g. converted from a smaller skeleton); default all.
  Any other string or scalar key (e.g. `sex`) is kept as a string in `meta`.

The archive is read with `allow_pickle=False`: an interchange file never runs code.
"""

from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

from data_tools.readers import ReadOptions
from data_tools.recording import Excluded, Recording, check_timestamps, uniform_timestamps
from gait_jax import skeleton

FORMAT = "npz"
EXTENSIONS = (".npz",)

_KNOWN_KEYS = frozenset({"positions", "fps", "timestamps", "confidence", "layout",
                         "participant_id", "task", "session", "joint_present"})
_DEFAULT_LAYOUT = "azure_kinect"


def _load_arrays(path: str) -> dict[str, np.ndarray]:
  """Every array of the archive, loaded eagerly so that damage shows up here."""
  try:
    size = os.path.getsize(path)
  except OSError as e:
    raise Excluded("unreadable", f"cannot open {path}: {e}") from None
  if size == 0:
    raise Excluded("empty", f"{path} is a 0-byte file")
  try:
    archive = np.load(path, allow_pickle=False)
  except zipfile.BadZipFile as e:
    # np.load only treats a file as an archive when it starts with the zip magic,
    # so a bad archive here is one whose central directory (at the end) is gone.
    raise Excluded("truncated", f"{path}: zip archive is incomplete ({e})") from None
  except (OSError, ValueError, EOFError) as e:
    raise Excluded("unreadable", f"{path} is not an npz archive: {e}") from None
  if not isinstance(archive, np.lib.npyio.NpzFile):
    raise Excluded("unreadable", f"{path} holds a single .npy array, not an npz archive")
  arrays = {}
  with archive:
    for key in archive.files:
      try:
        arrays[key] = archive[key]
      except (zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise Excluded("truncated", f"{path}: array {key!r} is cut short ({e})") from None
      except (OSError, ValueError) as e:
        # Object arrays (allow_pickle=False) and corrupt headers land here.
        raise Excluded("unreadable", f"{path}: cannot load array {key!r}: {e}") from None
  return arrays


def _as_str(value: np.ndarray, key: str) -> str:
  """A 0-d string, bytes or integer array → str (ids are often numbers)."""
  if value.ndim != 0 or value.dtype.kind not in "USiu":
    raise Excluded("bad_metadata", f"key {key!r} must be a scalar string, got "
                   f"dtype {value.dtype} shape {list(value.shape)}")
  item = value.item()
  if isinstance(item, bytes):
    try:
      item = item.decode("utf-8")
    except UnicodeDecodeError:
      raise Excluded("bad_metadata", f"key {key!r} is not valid UTF-8") from None
  return str(item).strip()


def _scalar_text(value: np.ndarray) -> str | None:
  """A 0-d or single-element string/number as text for `meta`; None otherwise."""
  if value.size != 1 or value.ndim > 1 or value.dtype.kind not in "USbiuf":
    return None
  item = value.reshape(()).item()
  if isinstance(item, bytes):
    item = item.decode("utf-8", errors="replace")
  return str(item)


def _layout(arrays: dict[str, np.ndarray], opts: ReadOptions) -> skeleton.Layout:
  declared = _as_str(arrays["layout"], "layout") if "layout" in arrays else None
  if declared and opts.layout and declared != opts.layout:
    raise Excluded("bad_metadata", f"file declares layout {declared!r} but "
                   f"--layout {opts.layout!r} was given")
  name = declared or opts.layout or _DEFAULT_LAYOUT
  if name not in skeleton.LAYOUTS:
    raise Excluded("bad_metadata", f"unknown layout {name!r}; known: {sorted(skeleton.LAYOUTS)}")
  return skeleton.LAYOUTS[name]


def _identity(arrays: dict[str, np.ndarray], key: str, fallback: str | None) -> str | None:
  """The file's value for `key`, else the command line's; None when neither has one."""
  value = _as_str(arrays[key], key) if key in arrays else ""
  return value or fallback or None


def _positions(arrays: dict[str, np.ndarray], layout: skeleton.Layout) -> np.ndarray:
  if "positions" not in arrays:
    raise Excluded("bad_metadata", "no 'positions' array in the archive")
  raw = arrays["positions"]
  if raw.dtype.kind not in "biuf":
    raise Excluded("unreadable", f"positions must be numeric, got dtype {raw.dtype}")
  if raw.ndim != 3 or raw.shape[1] != layout.num_joints or raw.shape[2] != 3:
    raise Excluded("wrong_joint_count", f"layout {layout.name!r} expects positions "
                   f"[T, {layout.num_joints}, 3], got {list(raw.shape)}")
  if raw.shape[0] == 0:
    raise Excluded("empty", "positions has 0 frames")
  positions = raw.astype(np.float32)
  # A joint with any missing coordinate is a missing joint.
  missing = ~np.isfinite(positions).all(axis=-1)
  positions[missing] = np.nan
  return positions


def _confidence(arrays: dict[str, np.ndarray], positions: np.ndarray) -> np.ndarray:
  finite = np.isfinite(positions).all(axis=-1)
  if "confidence" not in arrays:
    return finite.astype(np.float32)
  raw = arrays["confidence"]
  if raw.dtype.kind not in "biuf" or raw.shape != positions.shape[:2]:
    raise Excluded("bad_metadata", f"confidence must be numeric {list(positions.shape[:2])}"
                   f", got dtype {raw.dtype} shape {list(raw.shape)}")
  conf = raw.astype(np.float32)
  used = conf[finite]
  bad = ~((used >= 0) & (used <= 1))  # NaN counts as out of range
  if bad.any():
    raise Excluded("bad_metadata", f"confidence outside [0, 1] at {int(bad.sum())} "
                   f"joint-frames (e.g. {used[bad][0]})")
  return np.where(finite, conf, 0.0).astype(np.float32)


def _timestamps(arrays: dict[str, np.ndarray], num_frames: int,
                opts: ReadOptions) -> np.ndarray:
  if "timestamps" in arrays:
    raw = arrays["timestamps"]
    if raw.dtype.kind not in "biuf" or raw.shape != (num_frames,):
      raise Excluded("bad_metadata", f"timestamps must be numeric [{num_frames}], got "
                     f"dtype {raw.dtype} shape {list(raw.shape)}")
    return check_timestamps(raw)
  if "fps" in arrays:
    raw = arrays["fps"]
    if raw.dtype.kind not in "biuf" or raw.size != 1:
      raise Excluded("bad_metadata", f"fps must be a number, got dtype {raw.dtype} "
                     f"shape {list(raw.shape)}")
    return uniform_timestamps(num_frames, float(raw.reshape(())))
  if opts.fps is not None:
    return uniform_timestamps(num_frames, float(opts.fps))
  raise Excluded("bad_metadata", "neither 'timestamps' nor 'fps' in the archive and no --fps")


def read(path: str, opts: ReadOptions) -> Recording:
  """Reads one interchange `.npz` recording (see the module docstring for keys).

  Args:
    path: the `.npz` file.
    opts: layout/fps/identity for what the file does not say itself.

  Returns:
    A Recording with positions f32[T, J, 3] metres, confidence f32[T, J] and
    timestamps f64[T] seconds, in the file's layout.

  Raises:
    Excluded: truncated/unreadable archive, empty, wrong_joint_count, bad_metadata.
  """
  arrays = _load_arrays(path)
  layout = _layout(arrays, opts)
  positions = _positions(arrays, layout)
  confidence = _confidence(arrays, positions)
  timestamps = _timestamps(arrays, positions.shape[0], opts)
  participant = _identity(arrays, "participant_id", opts.participant_id)
  task = _identity(arrays, "task", opts.task)
  if participant is None or task is None:
    missing = [k for k, v in (("participant_id", participant), ("task", task)) if v is None]
    raise Excluded("bad_metadata", f"{missing} not in the archive and not given on the "
                   "command line")
  session = _identity(arrays, "session", opts.session) or "0"
  meta = {}
  for key in sorted(set(arrays) - _KNOWN_KEYS):
    text = _scalar_text(arrays[key])
    if text is not None:
      meta[key] = text
  joint_present = None
  if "joint_present" in arrays:
    joint_present = arrays["joint_present"]
    if joint_present.shape != (layout.num_joints,) or joint_present.dtype != bool:
      raise Excluded("bad_metadata", f"joint_present must be bool[{layout.num_joints}], got "
                     f"{joint_present.dtype}{list(joint_present.shape)}")
  return Recording(source=str(path), participant_id=participant, task=task,
                   session=session, layout=layout.name, positions=positions,
                   confidence=confidence, timestamps=timestamps, meta=meta,
                   joint_present=joint_present)
