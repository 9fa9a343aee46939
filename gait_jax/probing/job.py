"""The `probe` job: embeddings + phenotypes → per-target scores, system counts, report.

  python -m gait_jax.main --config experiments/probe.py --workdir W \
      --config.embeddings=E.parquet --config.phenotypes=P.parquet \
      [--config.dictionary=D.csv] [--config.covariates=age,sex,bmi]

Writes W/results/targets.parquet (+ .csv; one row per target × subset "all", "male",
"female"), W/results/systems.csv, W/results/calibration.csv (the null scale λ of
every test) and W/probe_report.csv (every target or participant not scored, with the
reason), and prints a summary. The protocol (`protocol.py`) says which models are
fitted on which folds; the scores and tests are in `stats.py`.
"""

from __future__ import annotations

import os
import warnings

import ml_collections
import numpy as np
import pandas as pd

from gait_jax import progress, sharding
from gait_jax.probing import engine, protocol as protocol_lib, stats, tables

NULL_PREFIX = "__null_"


def _as_tuple(value) -> tuple[str, ...]:
  if value is None:
    return ()
  if isinstance(value, str):
    return tuple(v.strip() for v in value.split(",") if v.strip())
  return tuple(str(v) for v in value)


def settings_from(config: ml_collections.ConfigDict) -> engine.Settings:
  """The engine's settings from the probe config."""
  mesh = None
  axes = tuple((str(a), int(s)) for a, s in config.mesh.axes)
  if axes:
    mesh = sharding.make_mesh(axes, config.mesh.axis_type)
  alphas = tuple(float(a) for a in np.logspace(config.alpha_min_log10, config.alpha_max_log10,
                                               config.n_alphas))
  return engine.Settings(alphas=alphas, binary_model=str(config.binary_model),
                         logistic_patience=int(config.logistic_patience) or None, mesh=mesh,
                         target_axis=config.mesh.target_axis)


def check_targets(y: np.ndarray, binary: np.ndarray, folds: np.ndarray, config
                  ) -> list[str | None]:
  """Why each target cannot be fitted on these rows and folds (None: it can).

  Args:
    y: f[n, K] targets of the rows; binary: bool[K]; folds: int32[S, n] the folds the
      models will be fitted on.
  """
  obs = np.isfinite(y)
  n_obs = obs.sum(0)
  pos = ((y > 0.5) & obs).sum(0)
  neg = n_obs - pos
  worst = np.full(y.shape[1], np.inf)
  for f in folds:
    for k in np.unique(f):
      train = (f != k)[:, None]
      worst = np.minimum(worst, np.minimum(((y > 0.5) & obs & train).sum(0),
                                           ((y <= 0.5) & obs & train).sum(0)))
  out: list[str | None] = []
  for j in range(y.shape[1]):
    if n_obs[j] < config.min_samples:
      out.append(f"too few samples ({n_obs[j]} < {config.min_samples})")
    elif binary[j] and min(pos[j], neg[j]) < config.min_positives:
      out.append(f"too few positives/negatives ({pos[j]}/{neg[j]} < {config.min_positives})")
    elif binary[j] and worst[j] < config.min_fold_positives:
      out.append(f"too few positives/negatives in a training fold ({int(worst[j])} < "
                 f"{config.min_fold_positives})")
    else:
      out.append(None)
  return out


def _null_targets(n: int, binary: np.ndarray, count: int, seed: int
                  ) -> tuple[np.ndarray, np.ndarray]:
  """(f64[n, M], bool[M]) simulated null targets of the kinds present: Gaussian noise,
  and Bernoulli labels with prevalences in [0.15, 0.5]."""
  rng = np.random.default_rng([seed, 0x6e756c6c])
  cols, kinds = [], []
  if count and (~binary).any():
    cols.append(rng.standard_normal((n, count)))
    kinds.append(np.zeros(count, bool))
  if count and binary.any():
    prevalence = rng.uniform(0.15, 0.5, count)
    cols.append((rng.random((n, count)) < prevalence).astype(np.float64))
    kinds.append(np.ones(count, bool))
  if not cols:
    return np.zeros((n, 0)), np.zeros(0, bool)
  return np.concatenate(cols, 1), np.concatenate(kinds)


def _cross_validate(views: dict[str, pd.DataFrame], extra: pd.DataFrame | None,
                    ids: np.ndarray, y: np.ndarray, binary: np.ndarray, folds: np.ndarray,
                    settings: engine.Settings) -> tuple[np.ndarray, np.ndarray]:
  """(f32[S, n, K] out-of-fold predictions averaged over views (tasks) per seed, bool[K]
  whether every fit converged).

  Each view uses the participants that have it, with their folds.
  """
  preds, converged = [], np.ones(y.shape[1], bool)
  for frame in views.values():
    have = np.flatnonzero(np.isin(ids, frame.index))
    x = frame.loc[ids[have]].to_numpy(np.float64)
    if extra is not None:
      x = np.concatenate([extra.loc[ids[have]].to_numpy(np.float64), x], axis=1)
    out = np.full((folds.shape[0],) + y.shape, np.nan, np.float32)
    f = folds[:, have]
    if all(len(np.unique(s)) == folds.max() + 1 for s in f):  # every fold has rows
      fitted = engine.cross_validate(x, y[have], binary, f, settings)
      out[:, have] = fitted.oof
      converged &= fitted.converged
    preds.append(out)
  with warnings.catch_warnings():  # people without any view stay NaN
    warnings.simplefilter("ignore", RuntimeWarning)
    return np.nanmean(np.stack(preds), axis=0), converged


def run(config: ml_collections.ConfigDict, workdir: str) -> pd.DataFrame:
  """Runs the probe; returns the targets table (also written to workdir/results)."""
  report = tables.Report()
  views = tables.embedding_views(config.embeddings, _as_tuple(config.tasks),
                                 config.ablation, config.fusion, report)
  raw = tables.read_table(config.phenotypes, "phenotype")
  dictionary = tables.read_table(config.dictionary, "dictionary") if config.dictionary else None
  ph = tables.phenotypes(raw, config.phenotypes, dictionary, config.id_column, report)
  feature_ids = pd.Index(sorted(set().union(*[set(f.index) for f in views.frames.values()])))
  ids = np.asarray(tables.align(feature_ids, ph.values.index, config.embeddings,
                                config.phenotypes, report))
  meta = ph.meta.reset_index(drop=True)
  names = list(meta["target"])
  y_real = ph.values.loc[ids, names].to_numpy(np.float64)
  binary_real = (meta["kind"] == "binary").to_numpy()
  n_real = len(names)
  y_null, binary_null = _null_targets(len(ids), binary_real, int(config.null_targets),
                                      int(config.seed))
  y = np.concatenate([y_real, y_null], 1)
  binary = np.concatenate([binary_real, binary_null])
  all_names = names + [f"{NULL_PREFIX}{j}" for j in range(y_null.shape[1])]
  is_null = np.arange(len(all_names)) >= n_real

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

  settings = settings_from(config)
  proto = protocol_lib.build(ids, sex, n_folds=int(config.n_folds),
                             seeds=tuple(int(config.seed) + s for s in range(config.n_seeds)),
                             sex_models=str(config.sex_models), covariates=bool(covariates))
  # The fold guard checks exactly the folds each fit uses.
  reasons = {}
  for rows, folds in proto.folds.items():
    mask = proto.subsets[rows]
    reasons[rows] = check_targets(y[mask], binary, folds, config)
  for subset in proto.subsets:
    if proto.rows_for(subset) not in proto.folds:
      report.add("subset", subset, f"fewer participants than {config.n_folds} folds; not "
                 "scored")

  predictions = {}
  unconverged = {rows: np.zeros(len(all_names), bool) for rows in proto.folds}
  with progress.bar(total=len(proto.fits), desc="probe", unit="fit") as bar:
    for fit in proto.fits:
      bar.set_postfix_str(f"{fit.model} on {fit.rows}")
      mask = proto.subsets[fit.rows]
      fit_ids = ids[mask]
      ok = np.array([r is None for r in reasons[fit.rows]])
      pred = np.full((proto.folds[fit.rows].shape[0], len(fit_ids), len(all_names)), np.nan,
                     np.float32)
      cov = covariates if fit.uses_covariates else []
      # A target that is itself a covariate is left out of its own inputs.
      by_excluded: dict[str | None, list[int]] = {}
      for j in np.flatnonzero(ok):
        by_excluded.setdefault(all_names[j] if all_names[j] in cov else None, []).append(j)
      for drop, cols in by_excluded.items():
        use = [c for c in cov if c != drop]
        extra = side.loc[fit_ids, use] if use else None
        fit_views = views.frames if fit.uses_embedding else (
            {"covariates": extra} if extra is not None else {})
        if not fit_views:
          continue
        pred[:, :, cols], converged = _cross_validate(
            fit_views, extra if fit.uses_embedding else None, fit_ids, y[mask][:, cols],
            binary[cols], proto.folds[fit.rows], settings)
        unconverged[fit.rows][cols] |= ~converged
      predictions[fit] = pred
      bar.update()

  frames_out, calibration = [], []
  for subset in proto.subsets:
    rows, mine, folds = proto.scoring(subset)
    if rows not in proto.folds:
      continue
    y_sub = y[proto.subsets[subset]]

    def scored(model, y_sub=y_sub, rows=rows, mine=mine, folds=folds):
      pred = predictions[protocol_lib.Fit(rows, model)][:, mine]
      sc = stats.fold_scores(y_sub, pred, folds, binary)
      return pred, sc

    pred, sc = scored("embedding")
    lam = {}
    for kind, mask in (("continuous", ~binary), ("binary", binary)):
      null = mask & is_null
      lam[kind] = stats.null_scale(sc["z"][null])
      calibration.append({"subset": subset, "test": kind, "null_scale": lam[kind],
                          "null_targets": int(null.sum())})
    lam_k = np.where(binary, lam["binary"], lam["continuous"])
    p = np.where(binary, stats.calibrated_p(sc["z"], lam["binary"]),
                 stats.calibrated_p(sc["z"], lam["continuous"]))
    r_lo, r_hi = stats.r_interval(sc["r"], sc["n_eff"], lam["continuous"])
    n_pos = sc["n_positive"]
    a_lo, a_hi = stats.auc_interval(sc["auc"], n_pos, sc["n"] - n_pos, lam["binary"])
    df = pd.DataFrame({
        "target": all_names, "system": list(meta["system"]) + ["null"] * len(binary_null),
        "kind": np.where(binary, "binary", "continuous"), "subset": subset,
        "n": sc["n"], "n_positive": n_pos, "r": sc["r"], "r_ci_low": r_lo,
        "r_ci_high": r_hi, "r2": sc["r2"], "mae": sc["mae"], "auc": sc["auc"],
        "auc_ci_low": a_lo, "auc_ci_high": a_hi, "z": sc["z"], "null_scale": lam_k, "p": p,
        "score": np.where(binary, sc["auc"], sc["r"]),
        "r_seed_mean": sc["r_seed_mean"], "r_seed_sd": sc["r_seed_sd"],
        "auc_seed_mean": sc["auc_seed_mean"], "auc_seed_sd": sc["auc_seed_sd"]})
    why = [r or ("logistic fit did not converge" if bad else None)
           for r, bad in zip(reasons[rows], unconverged[rows])]
    unscored = np.array([w is not None for w in why]) | ~np.isfinite(df["score"].to_numpy())
    df["status"] = np.where(unscored, "excluded", "ok")
    df.loc[unscored, [c for c in df.columns if c not in ("target", "system", "kind", "subset",
                                                         "n", "status")]] = np.nan
    if covariates:
      base, sb = scored("base")
      full, sf = scored("full")
      df["score_base"] = np.where(binary, sb["auc"], sb["r"])
      df["score_full"] = np.where(binary, sf["auc"], sf["r"])
      df["r_base"], df["r_full"] = sb["r"], sf["r"]
      df["auc_base"], df["auc_full"] = sb["auc"], sf["auc"]
      df["gain"] = df["score_full"] - df["score_base"]
      logits = binary & (settings.binary_model == "logistic")
      gain_z = stats.mean_z(stats.loss_difference(y_sub, base, full, logits))
      gain_p = np.full(len(all_names), np.nan)
      for kind, mask in (("continuous", ~binary), ("binary", binary)):
        null = mask & is_null
        scale = stats.null_scale(gain_z[null])
        calibration.append({"subset": subset, "test": f"gain_{kind}", "null_scale": scale,
                            "null_targets": int(null.sum())})
        gain_p[mask] = stats.calibrated_p(gain_z[mask], scale)
      ok = ~unscored & np.isfinite(df["gain"].to_numpy())
      df["gain_z"] = np.where(ok, gain_z, np.nan)
      df["gain_p"] = np.where(ok, gain_p, np.nan)
    real = df.iloc[:n_real].copy()
    real["q"], real["significant"] = stats.fdr(real["p"].to_numpy(), config.q)
    if covariates:
      real["gain_q"], real["gain_significant"] = stats.fdr(real["gain_p"].to_numpy(), config.q)
    for j in np.flatnonzero(unscored[:n_real]):
      report.add("target", names[j], f"not scored in subset {subset}: "
                 f"{why[j] or 'no finite out-of-fold prediction'}")
    frames_out.append(real)
  if not frames_out:
    raise ValueError("no subset could be scored")
  targets = pd.concat(frames_out, ignore_index=True)
  systems = tables.systems_table(targets)

  out = os.path.join(workdir, "results")
  os.makedirs(out, exist_ok=True)
  targets.to_parquet(os.path.join(out, "targets.parquet"), index=False)
  targets.to_csv(os.path.join(out, "targets.csv"), index=False)
  systems.to_csv(os.path.join(out, "systems.csv"), index=False)
  pd.DataFrame(calibration).to_csv(os.path.join(out, "calibration.csv"), index=False)
  report.frame().to_csv(os.path.join(workdir, "probe_report.csv"), index=False)
  _summary(targets, pd.DataFrame(calibration), report, len(ids), config.q)
  return targets


def _summary(targets: pd.DataFrame, calibration: pd.DataFrame, report: tables.Report, n: int,
             q: float) -> None:
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
  lam = ", ".join(f"{r.subset}/{r.test} {r.null_scale:.2f}" for r in calibration.itertuples()
                  if np.isfinite(r.null_scale))
  print(f"null scale λ (calibration of the tests by simulated null targets): {lam}")
