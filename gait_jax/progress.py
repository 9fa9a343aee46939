"""Progress bars for long jobs: tqdm on stderr, silent when stderr is not a terminal.

  for item in progress.bar(items, desc="prepare", unit="file"): ...
  with progress.bar(total=n, desc="embed", unit="clip") as pbar: pbar.update(k)

`GAIT_JAX_PROGRESS=1` forces bars on (e.g. under a log collector that keeps carriage
returns), `GAIT_JAX_PROGRESS=0` forces them off.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import tqdm


def _disable() -> bool | None:
  forced = os.environ.get("GAIT_JAX_PROGRESS", "")
  if forced in ("0", "1"):
    return forced == "0"
  return None  # tqdm: off when stderr is not a TTY


def bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
        unit: str = "it", **kwargs: Any) -> tqdm.tqdm:
  """A tqdm bar on stderr (see the module docstring for when it shows)."""
  return tqdm.tqdm(iterable, total=total, desc=desc, unit=unit, disable=_disable(),
                   dynamic_ncols=True, mininterval=0.5, **kwargs)
