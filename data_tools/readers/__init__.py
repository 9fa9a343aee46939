"""Readers: one file in a source format → one `Recording` in its source layout.

A reader is a module of this package that declares

  FORMAT = "npz"                 # its `--format` name in `python -m data_tools.prepare`
  EXTENSIONS = (".npz",)         # the file names it reads when given a directory
  def read(path: str, opts: ReadOptions) -> Recording: ...
  def check_available() -> None: ...   # optional: raises MissingDependency

`read` raises `data_tools.recording.Excluded` (with a reason code) for a file it
cannot use; `check_available` raises `MissingDependency`, naming what to install,
when the format needs software that is not there (mkv: pyk4a and Microsoft's SDKs).

The registry (`formats()`) is discovered, not listed: every module found on this
package's `__path__` that declares `FORMAT` is a reader, so adding a format is
adding one module, and nothing else (prepare, its `--format` choices, tests) keeps
a second list. Modules without `FORMAT` are helpers and are skipped. A reader
kept elsewhere joins by appending its directory to this package's `__path__`
before the first call (the tests register a fake format that way). Discovery
imports the modules once, on first use; reader modules therefore import optional
dependencies inside functions, never at module level.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
import types
from collections.abc import Callable

from data_tools.recording import Recording
from gait_jax.errors import InputError


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


class MissingDependency(InputError):
  """A format needs software that is not installed; the message says what to install."""


@dataclasses.dataclass(frozen=True)
class Format:
  """One reader module as the registry sees it.

  Attributes:
    name: the `--format` name (the module's FORMAT).
    extensions: file name endings it reads, e.g. (".csv",).
    module: the reader module.
  """
  name: str
  extensions: tuple[str, ...]
  module: types.ModuleType

  @property
  def read(self) -> Reader:
    return self.module.read

  def check_available(self) -> None:
    """Raises MissingDependency when the format's optional software is missing."""
    check = getattr(self.module, "check_available", None)
    if check is not None:
      check()


@functools.cache
def formats() -> dict[str, Format]:
  """Every reader of the package by format name, in sorted order (see the module doc)."""
  found: dict[str, Format] = {}
  for info in pkgutil.iter_modules(__path__):
    module = importlib.import_module(f"{__name__}.{info.name}")
    name = getattr(module, "FORMAT", None)
    if name is None:
      continue
    extensions = tuple(getattr(module, "EXTENSIONS", ()))
    if not extensions or not callable(getattr(module, "read", None)):
      raise TypeError(f"reader {module.__name__} declares FORMAT {name!r} but not "
                      "EXTENSIONS and a read function")
    if name in found:
      raise TypeError(f"format {name!r} is declared by both "
                      f"{found[name].module.__name__} and {module.__name__}")
    found[name] = Format(name, extensions, module)
  return dict(sorted(found.items()))


def get_format(fmt: str) -> Format:
  """The registered format of that name; InputError naming the known ones otherwise."""
  known = formats()
  if fmt not in known:
    raise InputError(f"unknown format {fmt!r}; known formats: {', '.join(known)}")
  return known[fmt]


def get_reader(fmt: str) -> Reader:
  """The `read` function for a format name; a clear error for unknown names."""
  return get_format(fmt).read
