"""Phenotype probing at the paper's scale: the vectorised engine against scikit-learn.

  .venv/bin/python benchmarks/probe.py [--participants 3414] [--features 1024]
      [--targets 3210] [--folds 5] [--seeds 15] [--quick]

Times `engine.cross_validate` on continuous targets (nested α selection over 13
values included) on random data with a factor structure, then the same work done with
scikit-learn's `Ridge`, fitted per fold and per α (all targets of a fold and α in one
multi-output fit): for one outer fold, every inner fit over the 13 α plus the 13 outer
fits, timed at two target counts and extrapolated (linear in the number of targets)
to all targets and all folds × seeds. Prints one table; nothing is asserted.
`--quick` runs 1 seed and 1,000 targets.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _data(n: int, f: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(seed)
  latent = rng.standard_normal((n, 32)).astype(np.float32)
  x = latent @ rng.standard_normal((32, f)).astype(np.float32) * 0.5
  x += rng.standard_normal((n, f)).astype(np.float32)
  w = rng.standard_normal((32, k)).astype(np.float32) * rng.uniform(0, 0.3, k).astype(np.float32)
  y = latent @ w + rng.standard_normal((n, k)).astype(np.float32)
  return x, y


def _sklearn_outer_fold(x, y, fold, alphas) -> float:
  """Seconds for one outer fold (fold 0) of nested CV with sklearn Ridge per fold and α."""
  from sklearn import linear_model, preprocessing  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  n_folds = fold.max() + 1
  err = np.zeros((len(alphas), y.shape[1]))
  for j in range(1, n_folds):
    train, test = (fold != 0) & (fold != j), fold == j
    sc = preprocessing.StandardScaler().fit(x[train])
    xtr, xte = sc.transform(x[train]), sc.transform(x[test])
    for i, a in enumerate(alphas):
      m = linear_model.Ridge(alpha=a).fit(xtr, y[train])
      err[i] += ((m.predict(xte) - y[test]) ** 2).sum(0)
  pick = err.argmin(0)
  train, test = fold != 0, fold == 0
  sc = preprocessing.StandardScaler().fit(x[train])
  xtr, xte = sc.transform(x[train]), sc.transform(x[test])
  for i, a in enumerate(alphas):
    cols = pick == i
    if cols.any():
      linear_model.Ridge(alpha=a).fit(xtr, y[train][:, cols]).predict(xte)
  return time.perf_counter() - start


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--participants", type=int, default=3414)
  parser.add_argument("--features", type=int, default=1024)
  parser.add_argument("--targets", type=int, default=3210)
  parser.add_argument("--folds", type=int, default=5)
  parser.add_argument("--seeds", type=int, default=15)
  parser.add_argument("--quick", action="store_true", help="1 seed, 1000 targets")
  parser.add_argument("--sklearn-targets", type=int, nargs=2, default=(100, 400))
  args = parser.parse_args()
  if args.quick:
    args.seeds, args.targets = 1, min(args.targets, 1000)

  from gait_jax.probing import engine, folds  # pylint: disable=import-outside-toplevel
  x, y = _data(args.participants, args.features, args.targets)
  settings = engine.Settings(n_folds=args.folds, seeds=tuple(range(args.seeds)))
  alphas = np.asarray(settings.alphas)
  binary = np.zeros(args.targets, bool)
  groups = np.arange(args.participants)

  # Warm-up on one seed compiles every kernel; the timed run then measures the work.
  t0 = time.perf_counter()
  engine.cross_validate(x, y, binary, groups, engine.Settings(n_folds=args.folds, seeds=(99,)))
  warm = time.perf_counter() - t0
  t0 = time.perf_counter()
  pred = engine.cross_validate(x, y, binary, groups, settings)
  ours = time.perf_counter() - t0
  r = np.mean([np.corrcoef(pred.oof.mean(0)[:, j], y[:, j])[0, 1] for j in range(20)])

  fold = folds.grouped_folds(groups, args.folds, (0,))[0]
  k1, k2 = args.sklearn_targets
  t1 = _sklearn_outer_fold(x, y[:, :k1], fold, alphas)
  t2 = _sklearn_outer_fold(x, y[:, :k2], fold, alphas)
  per_target = (t2 - t1) / (k2 - k1)
  per_fold = max(t1 + per_target * (args.targets - k1), t1)
  theirs = per_fold * args.folds * args.seeds

  print(f"\nprobe benchmark: {args.participants} participants × {args.features} features × "
        f"{args.targets} continuous targets, {args.folds} folds × {args.seeds} seeds, "
        f"{len(alphas)} α (nested), {os.cpu_count()} CPU cores")
  print(f"{'run':<44s}{'wall s':>10s}{'speed-up':>10s}")
  print(f"{'gait_jax engine (compile warm-up, 1 seed)':<44s}{warm:>10.1f}{'':>10s}")
  print(f"{'gait_jax engine':<44s}{ours:>10.1f}{theirs / ours:>9.1f}×")
  print(f"{'sklearn Ridge per fold × α (extrapolated)':<44s}{theirs:>10.1f}{1.0:>9.1f}×")
  print(f"{'  measured: 1 outer fold, %d / %d targets' % (k1, k2):<44s}"
        f"{t1:>5.1f} /{t2:>4.1f}")
  print(f"mean out-of-fold r of the first 20 targets: {r:.3f}")


if __name__ == "__main__":
  main()
