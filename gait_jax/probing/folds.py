"""Grouped cross-validation folds, repeated over seeds.

Rows are normally one per participant, but the fold assignment works on a `groups`
array so that every row of one person lands in the same fold: a person is never in a
training set and in the test set of the same split. Folds come from scikit-learn's
`GroupKFold(shuffle=True)`, one shuffle per seed.

Nested cross-validation uses the same folds: for outer fold k the inner folds are the
other K-1 outer folds (a grouped (K-1)-fold split of the training set). The fit on
"all folds but {a, b}" then serves two inner evaluations (test a for outer fold b and
test b for outer fold a), which halves the inner fits.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from sklearn import model_selection


def grouped_folds(groups: Sequence, n_folds: int, seeds: Sequence[int]) -> np.ndarray:
  """Fold index of every row for every seed.

  Args:
    groups: [N] participant (group) of each row; any hashable values.
    n_folds: K, at least 3 (nested CV needs at least two inner folds).
    seeds: the repeat seeds.
  Returns:
    int32[S, N] fold in [0, K) of each row, for each seed.
  """
  groups = np.asarray(groups)
  n_groups = len(np.unique(groups))
  if n_folds < 3:
    raise ValueError(f"n_folds={n_folds}: nested cross-validation needs at least 3 folds")
  if n_groups < n_folds:
    raise ValueError(f"{n_groups} participants cannot fill {n_folds} folds")
  out = np.empty((len(seeds), len(groups)), np.int32)
  x = np.zeros((len(groups), 1))
  for s, seed in enumerate(seeds):
    splitter = model_selection.GroupKFold(n_folds, shuffle=True, random_state=int(seed))
    for k, (_, test) in enumerate(splitter.split(x, groups=groups)):
      out[s, test] = k
  return out


def fold_pairs(n_folds: int) -> list[tuple[int, int]]:
  """The (a, b), a < b, whose "all but a and b" fits serve the inner evaluations."""
  return list(itertools.combinations(range(n_folds), 2))


def check_grouping(folds: np.ndarray, groups: Sequence) -> None:
  """Raises if any group has rows in two folds of one seed (train/test leakage)."""
  groups = np.asarray(groups)
  for s in range(folds.shape[0]):
    per_group = {}
    for g, f in zip(groups, folds[s]):
      if per_group.setdefault(g, f) != f:
        raise AssertionError(f"seed {s}: participant {g} is in folds {per_group[g]} and {f}")
