"""Readers: one file in a source format → one `Recording` in its source layout.

Each reader module exposes `read(path: str, opts: ReadOptions) -> Recording` and
raises `data_tools.recording.Excluded` (with a reason code) for a file it cannot
use. `FORMATS` maps the `--format` names of `python -m data_tools.prepare` to them.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

from data_tools.recording import Recording


@dataclasses.dataclass(frozen=True)
class ReadOptions:
  """What the command line may say about files that do not say it themselves.

  Attributes:
    layout: source layout name (a `gait_jax.skeleton.LAYOUTS` key); None = the
      format's own default or what the file declares.
    fps: frame rate for files without timestamps or fps.
    participant_id, task, session: identity for files that do not carry it.
    units: "m", "cm" or "mm" for formats whose units are not fixed (csv); None =
      what the file says, else metres.
    id_pattern: a regular expression matched against each file's name without
      its extension, whose named groups `participant`, `task` and `session` (any
      of them) override the reader's identity, e.g. "(?P<participant>P[0-9]+)_(?P<task>.+)".
  """
  layout: str | None = None
  fps: float | None = None
  participant_id: str | None = None
  task: str | None = None
  session: str | None = None
  units: str | None = None
  id_pattern: str | None = None


Reader = Callable[[str, ReadOptions], Recording]

# --format name → module under data_tools.readers with a `read` function.
FORMATS: dict[str, str] = {
    "npz": "npz",
    "csv": "csv",
    "k4abt_json": "k4abt_json",
    "kinect_v2_csv": "kinect_v2_csv",
    "mkv": "mkv",
}


def get_reader(fmt: str) -> Reader:
  """The `read` function for a format name; a clear error for unknown names."""
  if fmt not in FORMATS:
    raise ValueError(f"unknown format {fmt!r}; known formats: {sorted(FORMATS)}")
  module = importlib.import_module(f"data_tools.readers.{FORMATS[fmt]}")
  return module.read
