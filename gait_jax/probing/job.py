"""The `probe` job: embeddings + phenotypes → per-target scores, system counts, report.

  python -m gait_jax.main --config experiments/probe.py --workdir W \
      --config.embeddings=E.parquet --config.phenotypes=P.parquet \
      [--config.dictionary=D.csv] [--config.covariates=age,sex,bmi]

Writes W/results/targets.parquet (+ .csv; one row per target × subset "all", "male",
"female"), W/results/systems.csv and W/probe_report.csv, and prints a summary.
"""

from __future__ import annotations

import os
import warnings

import ml_collections
import numpy as np
import pandas as pd

from gait_jax import sharding
from gait_jax.probing import engine, folds as folds_lib, stats, tables

SUBSETS = ("all", "male", "female")


def _as_tuple(value) -> tuple[str, ...]:
  if value is None:
    return ()
  if isinstance(value, str):
    return tuple(v.strip() for v in value.split(",") if v.strip())
  return tuple(str(v) for v in value)


def settings_from(config: ml_collections.ConfigDict) -> engine.Settings:
  mesh = None
  axes = tuple((str(a), int(s)) for a, s in config.mesh.axes)
  if axes:
    mesh = sharding.make_mesh(axes, config.mesh.axis_type)
  alphas = tuple(float(a) for a in np.logspace(config.alpha_min_log10, config.alpha_max_log10,
                                               config.n_alphas))
  return engine.Settings(n_folds=config.n_folds,
                         seeds=tuple(config.seed + s for s in range(config.n_seeds)),
                         alphas=alphas, mesh=mesh, target_axis=config.mesh.target_axis)


def _oof(frames: dict[str, pd.DataFrame], ids: list[str], extra: pd.DataFrame | None,
         y: np.ndarray, binary: np.ndarray, settings: engine.Settings) -> np.ndarray:
  """f64[N, K] seed-averaged out-of-fold predictions, averaged over views (tasks)."""
  preds = []
  for frame in frames.values():
    have = [i for i in ids if i in frame.index]
    rows = np.searchsorted(ids, have)
    x = frame.loc[have].to_numpy(np.float64)
    if extra is not None:
      x = np.concatenate([extra.loc[have].to_numpy(np.float64), x], axis=1)
    out = np.full(y.shape, np.nan)
    if len(have) >= settings.n_folds:
      p = engine.cross_validate(x, y[rows], binary, np.asarray(have), settings)
      out[rows] = stats.average_seeds(p.oof)
    preds.append(out)
  with warnings.catch_warnings():  # people without any view stay NaN
    warnings.simplefilter("ignore", RuntimeWarning)
    return np.nanmean(np.stack(preds), axis=0)


def _check_targets(y: np.ndarray, binary: np.ndarray, names: list[str], fold_ids: np.ndarray,
                   config, report: tables.Report) -> np.ndarray:
  """bool[K] targets with enough samples (and positives per training fold)."""
  ok = np.ones(len(names), bool)
  for j, name in enumerate(names):
    obs = np.isfinite(y[:, j])
    if obs.sum() < config.min_samples:
      report.add("target", name, f"too few samples ({obs.sum()} < {config.min_samples})")
      ok[j] = False
      continue
    if binary[j]:
      pos = (y[obs, j] > 0.5).sum()
      neg = obs.sum() - pos
      if min(pos, neg) < config.min_positives:
        report.add("target", name, f"too few positives/negatives ({pos}/{neg} < "
                   f"{config.min_positives})")
        ok[j] = False
        continue
      worst = min(min(((y[:, j] > 0.5) & obs & (f != k)).sum(),
                      ((y[:, j] <= 0.5) & obs & (f != k)).sum())
                  for f in fold_ids for k in range(config.n_folds))
      if worst < config.min_fold_positives:
        report.add("target", name, f"too few positives/negatives in a training fold ({worst} "
                   f"< {config.min_fold_positives})")
        ok[j] = False
  return ok


def _score(y, pred, binary, weights):
  """Dict of per-target arrays for one subset (weights: bootstrap resampling counts)."""
  k = y.shape[1]
  out = {c: np.full(k, np.nan) for c in ("n", "n_positive", "r", "r_ci_low", "r_ci_high", "r2",
                                         "mae", "auc", "auc_ci_low", "auc_ci_high", "p",
                                         "score")}
  boot = np.full((weights.shape[0], k), np.nan)
  c, b = np.flatnonzero(~binary), np.flatnonzero(binary)
  if len(c):
    s = stats.continuous_scores(y[:, c], pred[:, c])
    for key in ("n", "r", "r2", "mae", "p"):
      out[key][c] = s[key]
    out["score"][c] = s["r"]
    boot[:, c] = stats.pearson(y[:, c], pred[:, c], weights)
    out["r_ci_low"][c], out["r_ci_high"][c] = stats.interval(boot[:, c])
  if len(b):
    s = stats.binary_scores(y[:, b], pred[:, b])
    for key in ("n", "n_positive", "auc", "p"):
      out[key][b] = s[key]
    out["score"][b] = s["auc"]
    boot[:, b] = stats.bootstrap_auc(y[:, b], pred[:, b], weights)
    out["auc_ci_low"][b], out["auc_ci_high"][b] = stats.interval(boot[:, b])
  return out, boot


def run(config: ml_collections.ConfigDict, workdir: str) -> pd.DataFrame:
  """Runs the probe; returns the targets table (also written to workdir/results)."""
  report = tables.Report()
  emb = tables.read_table(config.embeddings, "embeddings")
  views = tables.embedding_views(emb, config.embeddings, _as_tuple(config.tasks),
                                 config.ablation, config.fusion, report)
  raw = tables.read_table(config.phenotypes, "phenotype")
  dictionary = tables.read_table(config.dictionary, "dictionary") if config.dictionary else None
  ph = tables.phenotypes(raw, config.phenotypes, dictionary, config.id_column, report)
  feature_ids = pd.Index(sorted(set().union(*[set(f.index) for f in views.frames.values()])))
  ids = tables.align(feature_ids, ph.values.index, config.embeddings, config.phenotypes, report)
  meta = ph.meta.reset_index(drop=True)
  names = list(meta["target"])
  y = ph.values.loc[ids, names].to_numpy(np.float64)
  binary = (meta["kind"] == "binary").to_numpy()
  settings = settings_from(config)
  fold_ids = folds_lib.grouped_folds(np.asarray(ids), settings.n_folds, settings.seeds)
  ok = _check_targets(y, binary, names, fold_ids, config, report)

  # Covariates and sex come from the phenotype table itself (dictionary or not).
  side = raw[~raw[config.id_column].astype(str).duplicated(keep=False)].copy()
  side.index = side[config.id_column].astype(str)
  side = side.apply(pd.to_numeric, errors="coerce").reindex(ids)
  covariates = []
  for c in _as_tuple(config.covariates):
    if c in side.columns and side[c].notna().any():
      covariates.append(c)
    else:
      report.add("input", c, f"covariate not usable from {config.phenotypes}")
  sex = None
  if config.sex_column in side.columns:
    sex = side[config.sex_column].to_numpy(np.float64)
  else:
    report.add("input", config.sex_column, "sex column missing; only the 'all' subset scored")

  fit_idx = np.flatnonzero(ok)
  subsets = {"all": np.ones(len(ids), bool)}
  if sex is not None:
    subsets["male"] = sex == 1
    subsets["female"] = sex == 0

  def predict(rows_mask, extra_cols, with_embedding):
    """f64[N, K] predictions (NaN outside rows_mask or for targets not fitted)."""
    pred = np.full(y.shape, np.nan)
    sub_ids = [i for i, m in zip(ids, rows_mask) if m]
    rows = np.flatnonzero(rows_mask)
    # A target that is itself a covariate is left out of its own inputs.
    by_excluded: dict[str | None, list[int]] = {}
    for j in fit_idx:
      drop = names[j] if names[j] in extra_cols else None
      by_excluded.setdefault(drop, []).append(j)
    for drop, cols in by_excluded.items():
      use = [c for c in extra_cols if c != drop]
      extra = side.loc[sub_ids, use] if use else None
      frames = views.frames if with_embedding else (
          {"covariates": extra} if extra is not None else {})
      if not frames:
        continue
      p = _oof(frames, sub_ids, extra if with_embedding else None, y[np.ix_(rows, cols)],
               binary[cols], settings)
      pred[np.ix_(rows, cols)] = p
    return pred

  def models_for(subset):
    """Rows whose models score `subset`: pooled (all) or sex-specific."""
    return subsets["all"] if config.sex_models == "pooled" or subset == "all" else subsets[subset]

  cache = {}
  def get(kind, subset):
    key = (kind, tuple(models_for(subset)))
    if key not in cache:
      extra = covariates if kind in ("base", "full") else []
      cache[key] = predict(models_for(subset), extra, kind != "base")
    return cache[key]

  frames_out = []
  for subset, mask in subsets.items():
    rows = np.flatnonzero(mask)
    weights = stats.resample_weights(np.asarray(ids)[rows], config.n_bootstrap,
                                     config.seed + len(frames_out))
    pred = get("embedding", subset)[rows]
    sc, _ = _score(y[rows], pred, binary, weights)
    df = pd.DataFrame({"target": names, "system": meta["system"], "kind": meta["kind"],
                       "subset": subset, **sc})
    df["status"] = np.where(ok, "ok", "excluded")
    df.loc[~ok, [c for c in sc if c != "n"]] = np.nan
    df["q"], df["significant"] = stats.fdr(np.where(ok, df["p"], np.nan), config.q)
    if covariates:
      base, full = get("base", subset)[rows], get("full", subset)[rows]
      sb, bb = _score(y[rows], base, binary, weights)
      sf, bf = _score(y[rows], full, binary, weights)
      df["score_base"], df["score_full"] = sb["score"], sf["score"]
      df["r_base"], df["r_full"] = sb["r"], sf["r"]
      df["auc_base"], df["auc_full"] = sb["auc"], sf["auc"]
      df["gain"] = sf["score"] - sb["score"]
      # The test is on per-participant out-of-fold losses, not on Δr: pooled
      # out-of-fold correlations carry a fold-mean artifact that differs between
      # the base and full models and made Δr "significant" for null targets.
      loss_gain = stats.loss_difference(y[rows], base, full, binary)
      gain_p = np.where(ok, stats.bootstrap_mean_p(loss_gain, weights), np.nan)
      gain_p[~np.isfinite(df["gain"].to_numpy())] = np.nan
      df["gain_p"] = gain_p
      df["gain_q"], df["gain_significant"] = stats.fdr(gain_p, config.q)
    frames_out.append(df)
  targets = pd.concat(frames_out, ignore_index=True)
  systems = tables.systems_table(targets)

  out = os.path.join(workdir, "results")
  os.makedirs(out, exist_ok=True)
  targets.to_parquet(os.path.join(out, "targets.parquet"), index=False)
  targets.to_csv(os.path.join(out, "targets.csv"), index=False)
  systems.to_csv(os.path.join(out, "systems.csv"), index=False)
  report.frame().to_csv(os.path.join(workdir, "probe_report.csv"), index=False)
  _summary(targets, report, len(ids), config.q)
  return targets


def _summary(targets: pd.DataFrame, report: tables.Report, n: int, q: float) -> None:
  tested = targets[targets["status"] == "ok"]
  print(f"probe: {n} participants, {tested['target'].nunique()} targets tested, "
        f"{len(report.rows)} report rows, BH q = {q}")
  cols = ["subset", "tested", "significant"] + (
      ["gain_significant"] if "gain_significant" in targets else [])
  print("  ".join(f"{c:>16s}" for c in cols))
  for subset, part in tested.groupby("subset", sort=False):
    vals = [subset, len(part), int(part["significant"].sum())]
    if "gain_significant" in part:
      vals.append(int(part["gain_significant"].sum()))
    print("  ".join(f"{str(v):>16s}" for v in vals))
