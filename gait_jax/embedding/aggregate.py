"""Streaming per-group reduction: clip vectors in, one row per group out.

Clips arrive in batches in any order; the manifest says how many clips each group
(participant × task) has, so a group is reduced and emitted as soon as its last
clip arrives. Memory holds only groups still open: with the pipeline's clip-id
order (a recording's clips are contiguous) that is one or two groups, whatever
the size of the cohort.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterator

import numpy as np

REDUCTIONS = ("median", "mean")


@dataclasses.dataclass
class GroupReducer:
  """Collects f32[F] vectors per (group, key) and reduces each group when complete.

  Args:
    expected: clips per group (e.g. from the manifest).
    keys: the vectors each clip contributes (e.g. one per ablation).
    reduction: "median" or "mean" over a group's clips, per entry.
  """
  expected: dict[Hashable, int]
  keys: tuple[str, ...]
  reduction: str = "median"

  def __post_init__(self) -> None:
    if self.reduction not in REDUCTIONS:
      raise ValueError(f"reduction={self.reduction!r}; expected one of {REDUCTIONS}")
    self._open: dict[Hashable, dict[str, list[np.ndarray]]] = {}
    self._seen: dict[Hashable, int] = {}
    self._dropped: dict[Hashable, int] = {}

  def add(self, group: Hashable, vectors: dict[str, np.ndarray] | None
          ) -> Iterator[tuple[Hashable, int, dict[str, np.ndarray]]]:
    """Adds one clip (None: the clip was excluded but counts towards completion).

    Yields (group, clips used, {key: reduced f32[F]}) when the group is complete
    and at least one of its clips was usable.
    """
    if group not in self.expected:
      raise KeyError(f"clip of unexpected group {group!r}")
    self._seen[group] = self._seen.get(group, 0) + 1
    if vectors is None:
      self._dropped[group] = self._dropped.get(group, 0) + 1
    else:
      bucket = self._open.setdefault(group, {k: [] for k in self.keys})
      for k in self.keys:
        bucket[k].append(np.asarray(vectors[k], np.float32))
    if self._seen[group] == self.expected[group]:
      bucket = self._open.pop(group, None)
      if bucket is not None:
        reduce = np.median if self.reduction == "median" else np.mean
        yield group, len(bucket[self.keys[0]]), {
            k: reduce(np.stack(v), axis=0).astype(np.float32) for k, v in bucket.items()}

  def incomplete(self) -> dict[Hashable, tuple[int, int]]:
    """{group: (clips seen, clips expected)} for groups not yet complete."""
    return {g: (self._seen.get(g, 0), n) for g, n in self.expected.items()
            if self._seen.get(g, 0) < n}

  def open_groups(self) -> int:
    return len(self._open)
