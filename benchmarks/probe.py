"""Phenotype probing at the paper's scale: the vectorised engine against scikit-learn.

  .venv/bin/python benchmarks/probe.py [--participants 3414] [--features 1024]
      [--targets 3210] [--binary 0] [--folds 5] [--seeds 15] [--quick]

Continuous targets (`--binary 0`, the default): times `engine.cross_validate`
(nested α selection over 13 values included) on random data with a factor
structure, then the same work done with scikit-learn's `Ridge`, fitted per fold and
per α (all targets of a fold and α in one multi-output fit): for one outer fold, every
inner fit over the 13 α plus the 13 outer fits, timed at two target counts and
extrapolated (linear in the number of targets) to all targets and all folds × seeds.

`--cli` (with `--binary`) also times the whole probe command in a fresh process
(`python -m gait_jax.main --config experiments/probe.py`, the paper variant without
covariates: nested α, 15 seeds, 100 simulated null targets per kind, three subsets):
continuous targets alone and the mix with the ridge classifier.

The cohort's mix (`--binary 677`: the last 677 of `--targets` are binary, prevalence
log-uniform in 2–30 %) prints one table of the continuous targets alone, the binary
ones alone and the mix, with each binary model:

  ridge classifier   closed-form ridge on the 0/1 labels (the engine's ridge path,
                     binary=False), measured;
  logistic, engine   L2 logistic with balanced class weights through
                     `engine.cross_validate` (training rows only, inner paths ended by
                     held-out loss (patience), outer paths ended at the chosen α);
                     measured on --logistic-seeds seeds and extrapolated to all;
  logistic, path     the same solver over the whole path in every fit (no patience,
                     no `last`): one inner fit measured, extrapolated to all fits;
  old solver         the exact-Newton solver the engine used before (4 Newton steps
                     per α with a (ρ+1)² Hessian per target, all N rows in every fit):
                     --old-targets targets in one fit, extrapolated;
  sklearn            LogisticRegression(class_weight="balanced") per fit, α and
                     target: one target in one fit, extrapolated.

and the AUC of the ridge classifier against the nested logistic on the same folds
(seed 0). Extrapolated rows say so. Nothing is asserted. `--quick` runs 1 seed and
1,000 targets.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from gait_jax.probing import design, engine, folds, logistic


def _data(n: int, f: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(seed)
  latent = rng.standard_normal((n, 32)).astype(np.float32)
  x = latent @ rng.standard_normal((32, f)).astype(np.float32) * 0.5
  x += rng.standard_normal((n, f)).astype(np.float32)
  w = rng.standard_normal((32, k)).astype(np.float32) * rng.uniform(0, 0.3, k).astype(np.float32)
  y = latent @ w + rng.standard_normal((n, k)).astype(np.float32)
  return x, y


def _binarise(y: np.ndarray, seed: int = 1) -> np.ndarray:
  """0/1 columns: each continuous column cut at a prevalence log-uniform in 2–30 %."""
  rng = np.random.default_rng(seed)
  prevalence = np.exp(rng.uniform(np.log(0.02), np.log(0.3), y.shape[1]))
  cut = np.array([np.quantile(y[:, j], 1 - p) for j, p in enumerate(prevalence)])
  return (y > cut).astype(np.float32)


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


# ----------------------------------------------------------------------------------
# Binary targets: the solver alone, against the one it replaced and scikit-learn.


def _class_weights(y: np.ndarray, used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Balanced weights of positives and negatives (f64[K] each) over the rows `used`."""
  n = used.sum(0)
  pos = (used * y).sum(0)
  return n / (2.0 * np.maximum(pos, 1.0)), n / (2.0 * np.maximum(n - pos, 1.0))


def _old_fit_path(z, y, weights, alphas, steps=4):
  """The solver the engine used before logistic.fit_path: exact Newton, one (ρ+1)²
  Hessian per target built by an n×(ρ+1)²×K einsum, `steps` steps per α."""
  n, rho = z.shape
  z1 = jnp.concatenate([jnp.ones((n, 1), z.dtype), z], axis=1)
  pen = jnp.concatenate([jnp.zeros(1, z.dtype), jnp.ones(rho, z.dtype)])

  def newton(theta, alpha):
    p = jax.nn.sigmoid(theta @ z1.T)
    grad = (weights.T * (p - y.T)) @ z1 + alpha * pen * theta
    curv = weights.T * p * (1.0 - p)
    hess = jnp.einsum("ni,knj->kij", z1, curv[:, :, None] * z1[None]) + jnp.diag(
        alpha * pen + 1e-6)
    chol = jnp.linalg.cholesky(hess)
    return theta - jax.scipy.linalg.cho_solve((chol, True), grad[..., None])[..., 0]

  def one_alpha(theta, alpha):
    theta = jax.lax.fori_loop(0, steps, lambda _, t: newton(t, alpha), theta)
    return theta, theta

  return jax.lax.scan(one_alpha, jnp.zeros((y.shape[1], rho + 1), z.dtype), alphas)[1]


def _one_fit_inputs(x, y, train):
  """z of all rows of one fit's basis, labels and class weights (0 outside train)."""
  xt, basis = design.fit_basis(jnp.asarray(x), train)
  used = train[:, None] & ~np.isnan(y)
  w_pos, w_neg = _class_weights(np.nan_to_num(y), used)
  w = np.where(used, np.where(y > 0.5, w_pos, w_neg), 0.0).astype(np.float32)
  return xt @ basis.vectors, np.nan_to_num(y).astype(np.float32), w


def _old_solver_seconds(x, y, train, alphas) -> float:
  """Seconds of the old solver for the targets y in one fit (all N rows, as before)."""
  z, yy, w = _one_fit_inputs(x, y, train)
  fit = jax.jit(_old_fit_path)
  args = (z, yy, w, jnp.asarray(alphas, jnp.float32))
  fit.lower(*args).compile()
  start = time.perf_counter()
  jax.block_until_ready(fit(*args))
  return time.perf_counter() - start


def _path_seconds(x, y, train, alphas) -> tuple[float, float]:
  """Seconds and passes of logistic.fit_path over the whole path in one fit."""
  z, yy, w = _one_fit_inputs(x, y, train)
  rows = np.flatnonzero(train)
  args = (z[rows], yy[rows], w[rows], alphas)
  logistic.warm_up(len(rows), z.shape[1], y.shape[1])
  jax.block_until_ready(logistic.fit_path(*args[:3], alphas[:2]).coef)  # small kernels
  start = time.perf_counter()
  path = logistic.fit_path(*args)
  jax.block_until_ready(path.coef)
  return time.perf_counter() - start, float(path.passes.sum())


def _sklearn_logistic_seconds(x, y, train, alphas) -> float:
  """Seconds of LogisticRegression(balanced) for one target over all α in one fit."""
  from sklearn import linear_model, preprocessing  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  xs = preprocessing.StandardScaler().fit(x[train]).transform(x[train])
  for a in alphas:
    linear_model.LogisticRegression(C=1 / a, class_weight="balanced", max_iter=10_000
                                    ).fit(xs, y[train])
  return time.perf_counter() - start


def _auc(y: np.ndarray, score: np.ndarray) -> np.ndarray:
  from sklearn import metrics  # pylint: disable=import-outside-toplevel
  return np.array([metrics.roc_auc_score(y[:, j], score[:, j]) for j in range(y.shape[1])])


ALPHAS = tuple(float(a) for a in np.logspace(-1, 5, 13))  # the probe config's grid


def _settings(binary_model: str = "logistic", patience: int | None = 2):
  return engine.Settings(alphas=ALPHAS, binary_model=binary_model,
                         logistic_patience=patience, mesh=None, target_axis="targets")


def _cli_seconds(x, y, is_binary, binary_model: str, root: pathlib.Path) -> float:
  """Seconds of the whole probe command (python -m gait_jax.main, experiments/probe.py,
  paper variant: simulated null targets, scores for all/male/female, tables) on these
  features and targets, no covariates; a fresh process, compilation included."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  root.mkdir(parents=True, exist_ok=True)
  ids = [f"P{i:05d}" for i in range(len(x))]
  pd.DataFrame(x, columns=[f"e{j}" for j in range(x.shape[1])]).assign(
      participant_id=ids).to_parquet(root / "emb.parquet")
  names = [f"t{j}" for j in range(y.shape[1])]
  ph = pd.DataFrame(y, columns=names).assign(participant_id=ids,
                                             sex=np.arange(len(x)) % 2)
  ph.to_parquet(root / "ph.parquet")
  pd.DataFrame({"target": names, "system": "s", "is_covariate": False,
                "kind": np.where(is_binary, "binary", "continuous")}).to_csv(
                    root / "dict.csv", index=False)
  cmd = [sys.executable, "-m", "gait_jax.main", "--config", "experiments/probe.py",
         "--workdir", str(root / "work"), f"--config.embeddings={root / 'emb.parquet'}",
         f"--config.phenotypes={root / 'ph.parquet'}", f"--config.dictionary={root / 'dict.csv'}",
         "--config.covariates=", f"--config.binary_model={binary_model}"]
  start = time.perf_counter()
  subprocess.run(cmd, check=True, cwd=pathlib.Path(__file__).resolve().parents[1],
                 stdout=subprocess.DEVNULL)
  return time.perf_counter() - start


def _timed(fn, *args, **kwargs):
  start = time.perf_counter()
  out = fn(*args, **kwargs)
  return out, time.perf_counter() - start


def _binary_table(args, x, y, groups, alphas) -> None:
  """The cohort's mix: continuous alone, binary alone, and both, per binary model."""
  k_bin = args.binary
  k_cont = args.targets - k_bin
  cont, yb = y[:, :k_cont], y[:, k_cont:]
  fold_ids = folds.grouped_folds(groups, args.folds, tuple(range(args.seeds)))
  ridge_cls = _settings("ridge")
  n_fits = args.seeds * (args.folds + args.folds * (args.folds - 1) // 2)
  fold = fold_ids[0]
  inner_train, outer_train = (fold != 0) & (fold != 1), fold != 0
  n_inner_fits = args.seeds * args.folds * (args.folds - 1) // 2
  rows = []                                          # (targets, model, seconds, how)

  # Warm-ups compile every kernel (engine: one seed; logistic: a few targets).
  is_binary = np.arange(args.targets) >= k_cont
  warm = folds.grouped_folds(groups, args.folds, (99,))
  for cols in (slice(0, k_cont), slice(k_cont, None), slice(None)):  # each run's shapes
    engine.cross_validate(x, y[:, cols], is_binary[cols], warm, ridge_cls)
  engine.cross_validate(x, yb[:, :8], np.ones(8, bool), warm, _settings("logistic",
                                                                        args.patience))

  pred_c, t_cont = _timed(engine.cross_validate, x, cont, np.zeros(k_cont, bool), fold_ids,
                          ridge_cls)
  rows.append((f"continuous ({k_cont})", "-", t_cont, "measured"))
  pred_r, t_ridge = _timed(engine.cross_validate, x, yb, np.ones(k_bin, bool), fold_ids,
                           ridge_cls)
  rows.append((f"binary ({k_bin})", "ridge classifier (0/1 labels)", t_ridge, "measured"))

  seeds_l = args.logistic_seeds
  pred_l, t_log = _timed(engine.cross_validate, x, yb, np.ones(k_bin, bool),
                         fold_ids[:seeds_l], _settings("logistic", args.patience))
  oof_l = pred_l.oof
  scale = args.seeds / seeds_l
  rows.append((f"binary ({k_bin})", f"logistic, engine (patience {args.patience})",
               t_log * scale, f"extrapolated: {seeds_l} seed(s) measured, {t_log:.1f} s; "
               f"{int((~pred_l.converged).sum())} not converged"))

  t_path, path_passes = _path_seconds(x, yb, inner_train, alphas)
  t_full = t_path * (n_inner_fits + (n_fits - n_inner_fits) * outer_train.sum()
                     / inner_train.sum())
  rows.append((f"binary ({k_bin})", "logistic, whole path every fit (solver)", t_full,
               f"extrapolated: 1 inner fit measured, {t_path:.1f} s"))

  k_old = min(args.old_targets, k_bin)
  t_old = _old_solver_seconds(x, yb[:, :k_old], inner_train, alphas)
  rows.append((f"binary ({k_bin})", "old solver, 4 Newton steps (solver)",
               t_old * n_fits * k_bin / k_old,
               f"extrapolated: {k_old} targets × 1 fit measured, {t_old:.1f} s"))
  t_sk = _sklearn_logistic_seconds(x, yb[:, 0], inner_train, alphas)
  rows.append((f"binary ({k_bin})", "sklearn LogisticRegression (solver)",
               t_sk * n_fits * k_bin, f"extrapolated: 1 target × 1 fit measured, {t_sk:.1f} s"))

  _, t_mix = _timed(engine.cross_validate, x, y, is_binary, fold_ids, ridge_cls)
  rows.append((f"mix ({k_cont} + {k_bin})", "ridge classifier", t_mix, "measured (one run)"))
  rows.append((f"mix ({k_cont} + {k_bin})", f"logistic, engine (patience {args.patience})",
               t_cont + t_log * scale, "continuous measured + binary extrapolated"))
  if args.cli:
    with tempfile.TemporaryDirectory() as tmp:
      t = _cli_seconds(x, cont, np.zeros(k_cont, bool), "ridge", pathlib.Path(tmp) / "c")
      rows.append((f"continuous ({k_cont})", "whole CLI", t, "measured (python -m gait_jax.main)"))
      t = _cli_seconds(x, y, is_binary, "ridge", pathlib.Path(tmp) / "m")
      rows.append((f"mix ({k_cont} + {k_bin})", "whole CLI, ridge classifier", t,
                   "measured (python -m gait_jax.main)"))

  print(f"\nprobe benchmark: {args.participants} participants × {args.features} features, "
        f"{k_cont} continuous + {k_bin} binary targets, {args.folds} folds × {args.seeds} "
        f"seeds = {n_fits} fits, {len(alphas)} α (nested), {os.cpu_count()} CPU cores")
  print(f"{'targets':<20s}{'binary model':<42s}{'wall s':>10s}  how")
  for name, model, sec, how in rows:
    print(f"{name:<20s}{model:<42s}{sec:>10.1f}  {how}")
  print("(solver): the solver's time alone, per fit × fits; the other rows are whole runs "
        "(bases, eigendecompositions and all)")
  print(f"logistic work: {path_passes:.0f} passes for the whole path in one fit "
        f"(1 pass = n×ρ×{k_bin} multiply-adds)")
  ok = np.isfinite(pred_r.oof[0]).all(0) & np.isfinite(oof_l[0]).all(0)
  if not ok.all():
    print(f"AUC: target(s) without a finite prediction for every row: ridge classifier "
          f"{np.sum(~np.isfinite(pred_r.oof[0]).all(0))}, logistic "
          f"{np.sum(~np.isfinite(oof_l[0]).all(0))}")
  auc_r = _auc(yb[:, ok], pred_r.oof[0][:, ok])
  auc_l = _auc(yb[:, ok], oof_l[0][:, ok])
  d = auc_r - auc_l
  print(f"AUC, seed 0, same folds, {ok.sum()} targets: ridge classifier {auc_r.mean():.4f}, "
        f"logistic {auc_l.mean():.4f}; ridge - logistic mean {d.mean():+.4f}, "
        f"|Δ| median {np.median(np.abs(d)):.4f}, max {np.abs(d).max():.4f}, "
        f"r = {np.corrcoef(auc_r, auc_l)[0, 1]:.4f}")
  r = np.mean([np.corrcoef(pred_c.oof.mean(0)[:, j], cont[:, j])[0, 1] for j in range(20)])
  print(f"mean out-of-fold r of the first 20 continuous targets: {r:.3f}")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--participants", type=int, default=3414)
  parser.add_argument("--features", type=int, default=1024)
  parser.add_argument("--targets", type=int, default=3210)
  parser.add_argument("--binary", type=int, default=0,
                      help="how many of the targets are binary (the cohort: 677)")
  parser.add_argument("--folds", type=int, default=5)
  parser.add_argument("--seeds", type=int, default=15)
  parser.add_argument("--quick", action="store_true", help="1 seed, 1000 targets")
  parser.add_argument("--sklearn-targets", type=int, nargs=2, default=(100, 400))
  parser.add_argument("--logistic-seeds", type=int, default=1,
                      help="seeds the nested logistic is measured on (then extrapolated)")
  parser.add_argument("--patience", type=int, default=2)
  parser.add_argument("--old-targets", type=int, default=4)
  parser.add_argument("--cli", action="store_true",
                      help="with --binary: also time the whole probe command (continuous "
                      "alone, and the mix with the ridge classifier)")
  args = parser.parse_args()
  if args.quick:
    args.seeds, args.targets = 1, min(args.targets, 1000)

  x, y = _data(args.participants, args.features, args.targets)
  settings = _settings("ridge")
  alphas = np.asarray(sorted(settings.alphas, reverse=True))
  groups = np.arange(args.participants)
  if args.binary:
    y[:, args.targets - args.binary:] = _binarise(y[:, args.targets - args.binary:])
    _binary_table(args, x, y, groups, alphas)
    return
  binary = np.zeros(args.targets, bool)

  # Warm-up on one seed compiles every kernel; the timed run then measures the work.
  t0 = time.perf_counter()
  engine.cross_validate(x, y, binary, folds.grouped_folds(groups, args.folds, (99,)), settings)
  warm = time.perf_counter() - t0
  t0 = time.perf_counter()
  pred = engine.cross_validate(x, y, binary,
                               folds.grouped_folds(groups, args.folds, tuple(range(args.seeds))),
                               settings)
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
