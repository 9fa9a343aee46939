"""User errors: what a person gave is wrong (a missing file, an unknown variant, a
missing column, a directory that is not a shard set).

Such errors are raised as `InputError` (a ValueError) with a message that names the
file or setting and the reason. Command-line entry points wrap their main in
`cli(...)`: an InputError (or a FileNotFoundError) then prints one line on stderr and
exits with status 2, without a traceback; any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

EXIT_USAGE = 2


class InputError(ValueError):
  """Bad input from the user; the message names what and why."""


def cli(main: Callable[..., Any]) -> Callable[..., Any]:
  """Decorates a command-line main: user errors → one line on stderr, exit 2."""
  @functools.wraps(main)
  def wrapped(*args, **kwargs):
    try:
      return main(*args, **kwargs)
    except (InputError, FileNotFoundError) as e:
      prog = getattr(sys.modules.get("__main__"), "__spec__", None)
      name = prog.name.removesuffix(".__main__") if prog is not None else "gait_jax"
      print(f"{name}: error: {e}", file=sys.stderr)
      raise SystemExit(EXIT_USAGE) from None
  return wrapped
