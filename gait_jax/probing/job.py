r"""The `probe` job: embeddings + phenotypes → per-target scores, system counts, report.

  python -m gait_jax.main --config experiments/probe.py --workdir W \
      --config.embeddings=E.parquet --config.phenotypes=P.parquet \
      [--config.dictionary=D.csv] [--config.covariates=age,sex,bmi]

The run scores one or more feature sets on the same participants and folds
(`tables.feature_sets`): each input table (`config.embeddings`, named `config.name`,
then `config.inputs` "name=path,..."), each task alone and fused
(`config.tasks=each`), each ablation in the table (`config.ablation=each`). Writes

  W/results/targets.parquet (+ .csv)  one row per feature set × subset ("all", "male",
                                      "female") × target: scores, intervals, tests
  W/results/systems.csv               per feature set × body system × subset
  W/results/comparisons.csv           pairs of feature sets per target (`config.compare`):
                                      Δ score and a participant-level paired test, BH
  W/results/roc.csv                   ROC curves of `config.curves` (e.g. sex) per set
  W/results/calibration.csv           the null scale λ of every test
  W/probe_report.csv                  every target or participant not scored, and why

and prints a summary. The protocol (`protocol.py`) says which models are fitted on
which folds; the scores and tests are in `stats.py`.
"""

from __future__ import annotations

import dataclasses
import os
import warnings

import jax
import ml_collections
import numpy as np
import pandas as pd
from sklearn import metrics

from gait_jax import progress, sharding, tracking
from gait_jax.errors import InputError
from gait_jax.probing import engine, protocol as protocol_lib, stats, tables
from gait_jax.train import state as state_lib

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


def _inputs(config: ml_collections.ConfigDict) -> list[tuple[str, str]]:
  """(name, path) of every input table: config.embeddings first, then config.inputs."""
  if not config.embeddings:
    raise InputError("config.embeddings (an embed or features job's table) is required")
  out = [(str(config.name), str(config.embeddings))]
  for spec in _as_tuple(config.inputs):
    name, _, path = spec.partition("=")
    if not path or not name:
      raise InputError(f"config.inputs entry {spec!r}: expected NAME=PATH")
    out.append((name.strip(), path.strip()))
  return out


def _pairs(config: ml_collections.ConfigDict, sets: list[tables.FeatureSet]
           ) -> list[tuple[str, str]]:
  """The (a, b) feature sets compared per target: "reference" = the first set against
  every other, "" = none, or explicit "a:b" pairs."""
  ids = [s.id for s in sets]
  if config.compare == "reference":
    return [(ids[0], other) for other in ids[1:]]
  pairs = []
  for spec in _as_tuple(config.compare):
    # Set ids may contain ":" (ablations such as "zero:legs"): split where both sides
    # are known ids.
    split = [(spec[:i], spec[i + 1:]) for i, ch in enumerate(spec)
             if ch == ":" and spec[:i] in ids and spec[i + 1:] in ids]
    if not split:
      raise InputError(f"config.compare entry {spec!r}: expected A:B with feature sets from "
                       f"{ids}")
    pairs.append(split[0])
  return pairs


@dataclasses.dataclass
class _Data:
  """What every fit of a run shares."""
  ids: np.ndarray
  y: np.ndarray
  binary: np.ndarray
  names: list[str]
  side: pd.DataFrame
  covariates: list[str]
  proto: protocol_lib.Protocol
  reasons: dict[str, list[str | None]]
  settings: engine.Settings


def _fit(data: _Data, fit: protocol_lib.Fit, views: tables.Views | None
         ) -> tuple[np.ndarray, np.ndarray]:
  """(f32[S, n_rows, K] out-of-fold predictions of one model family, bool[K] whether
  some fit did not converge); NaN for targets the fold guard excluded."""
  mask = data.proto.subsets[fit.rows]
  fit_ids = data.ids[mask]
  ok = np.array([r is None for r in data.reasons[fit.rows]])
  pred = np.full((data.proto.folds[fit.rows].shape[0], len(fit_ids), len(data.names)),
                 np.nan, np.float32)
  unconverged = np.zeros(len(data.names), bool)
  cov = data.covariates if fit.uses_covariates else []
  # A target that is itself a covariate is left out of its own inputs.
  by_excluded: dict[str | None, list[int]] = {}
  for j in np.flatnonzero(ok):
    by_excluded.setdefault(data.names[j] if data.names[j] in cov else None, []).append(j)
  for drop, cols in by_excluded.items():
    use = [c for c in cov if c != drop]
    extra = data.side.loc[fit_ids, use] if use else None
    fit_views = views.frames if fit.uses_embedding else (
        {"covariates": extra} if extra is not None else {})
    if not fit_views:
      continue
    pred[:, :, cols], converged = _cross_validate(
        fit_views, extra if fit.uses_embedding else None, fit_ids, data.y[mask][:, cols],
        data.binary[cols], data.proto.folds[fit.rows], data.settings)
    unconverged[cols] |= ~converged
  return pred, unconverged


def _calibrated(z: np.ndarray, binary: np.ndarray, is_null: np.ndarray, test: str,
                meta: dict[str, object]) -> tuple[np.ndarray, np.ndarray, dict, list[dict]]:
  """(p f64[K], λ per target, λ per kind, calibration rows) of statistics z, each kind
  scaled by the variance of its simulated null targets' z."""
  lam, rows = {}, []
  for kind, mask in (("continuous", ~binary), ("binary", binary)):
    null = mask & is_null
    lam[kind] = stats.null_scale(z[null])
    rows.append({**meta, "test": f"{test}{kind}", "null_scale": lam[kind],
                 "null_targets": int(null.sum())})
  p = np.where(binary, stats.calibrated_p(z, lam["binary"]),
               stats.calibrated_p(z, lam["continuous"]))
  return p, np.where(binary, lam["binary"], lam["continuous"]), lam, rows


def _held_out(ids: np.ndarray, pretrain_workdir: str, report: tables.Report) -> np.ndarray:
  """`ids` less the participants the pretraining run in `pretrain_workdir` trained on
  (each reported)."""
  trained = state_lib.trained_participants(pretrain_workdir)
  for pid in sorted(set(ids) & trained):
    report.add("participant", pid, f"trained on by the encoder ({pretrain_workdir})")
  kept = np.asarray([i for i in ids if i not in trained])
  if not len(kept):
    raise InputError(f"every participant was trained on by {pretrain_workdir!r}; "
                     "nobody is held out")
  print(f"probe: {len(kept)} of {len(ids)} participants held out of {pretrain_workdir}",
        flush=True)
  return kept


def run(config: ml_collections.ConfigDict, workdir: str) -> pd.DataFrame:
  """Runs the probe; returns the targets table (also written to workdir/results)."""
  report = tables.Report()
  sets = tables.feature_sets(_inputs(config), str(config.tasks), str(config.ablation),
                             str(config.fusion), report)
  pairs = _pairs(config, sets)
  raw = tables.read_table(config.phenotypes, "phenotype")
  dictionary = tables.read_table(config.dictionary, "dictionary") if config.dictionary else None
  ph = tables.phenotypes(raw, config.phenotypes, dictionary, config.id_column, report)
  feature_ids = pd.Index(sorted(set().union(*[set(f.index) for s in sets
                                              for f in s.views.frames.values()])))
  ids = np.asarray(tables.align(feature_ids, ph.values.index, str(config.embeddings),
                                config.phenotypes, report))
  if config.held_out_of:
    ids = _held_out(ids, config.held_out_of, report)
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
  systems = list(meta["system"]) + ["null"] * len(binary_null)

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
  data = _Data(ids, y, binary, all_names, side, covariates, proto, reasons, settings)

  # Every feature set gets the embedding-only model; the primary sets (fused, unablated)
  # also the model with covariates; the covariates-only model is fitted once.
  jobs: list[tuple[str | None, protocol_lib.Fit]] = []
  for fit in proto.fits:
    if fit.model == "base":
      jobs.append((None, fit))
    else:
      jobs += [(s.id, fit) for s in sets if fit.model == "embedding" or s.primary]
  by_id = {s.id: s for s in sets}
  predictions, unconverged = {}, {}
  with progress.bar(total=len(jobs), desc="probe", unit="fit") as bar:
    for set_id, fit in jobs:
      bar.set_postfix_str(f"{set_id or 'covariates'}: {fit.model} on {fit.rows}")
      predictions[set_id, fit], bad = _fit(data, fit, by_id[set_id].views if set_id else None)
      unconverged[set_id, fit.rows] = unconverged.get((set_id, fit.rows), False) | bad
      bar.update()

  frames_out, calibration, comparisons, curves = [], [], [], []
  logits = binary & (settings.binary_model == "logistic")
  curve_targets = [t for t in _as_tuple(config.curves) if t in all_names]
  for subset in proto.subsets:
    rows, mine, folds = proto.scoring(subset)
    if rows not in proto.folds:
      continue
    y_sub = y[proto.subsets[subset]]

    def oof(set_id, model, rows=rows, mine=mine):
      return predictions[set_id, protocol_lib.Fit(rows, model)][:, mine]

    scored = {}
    for fs in sets:
      pred = oof(fs.id, "embedding")
      sc = stats.fold_scores(y_sub, pred, folds, binary)
      key = {"features": fs.id, "subset": subset}
      p, lam_k, lam, cal = _calibrated(sc["z"], binary, is_null, "", key)
      calibration += cal
      r_lo, r_hi = stats.r_interval(sc["r"], sc["n_eff"], lam["continuous"])
      n_pos = sc["n_positive"]
      a_lo, a_hi = stats.auc_interval(sc["auc"], n_pos, sc["n"] - n_pos, lam["binary"])
      df = pd.DataFrame({
          "features": fs.id, "input": fs.input, "task": fs.task, "ablation": fs.ablation,
          "target": all_names, "system": systems,
          "kind": np.where(binary, "binary", "continuous"), "subset": subset,
          "n": sc["n"], "n_positive": n_pos, "r": sc["r"], "r_ci_low": r_lo,
          "r_ci_high": r_hi, "r2": sc["r2"], "mae": sc["mae"], "auc": sc["auc"],
          "auc_ci_low": a_lo, "auc_ci_high": a_hi, "z": sc["z"], "null_scale": lam_k,
          "p": p, "score": np.where(binary, sc["auc"], sc["r"]),
          "r_seed_mean": sc["r_seed_mean"], "r_seed_sd": sc["r_seed_sd"],
          "auc_seed_mean": sc["auc_seed_mean"], "auc_seed_sd": sc["auc_seed_sd"]})
      # Unconverged: its own models, and for a primary set the covariates-only model.
      bad = unconverged[fs.id, rows] | (fs.primary & unconverged.get((None, rows), False))
      why = [r or ("logistic fit did not converge" if b else None)
             for r, b in zip(reasons[rows], np.broadcast_to(bad, len(all_names)))]
      unscored = np.array([w is not None for w in why]) | ~np.isfinite(df["score"].to_numpy())
      df["status"] = np.where(unscored, "excluded", "ok")
      keep = ("features", "input", "task", "ablation", "target", "system", "kind", "subset",
              "n", "status")
      df.loc[unscored, [c for c in df.columns if c not in keep]] = np.nan
      if covariates:
        df = _gain(df, fs, *((oof(None, "base"), oof(fs.id, "full")) if fs.primary else
                             (None, None)),
                   y_sub, folds, binary, logits, is_null, unscored, key, calibration)
      scored[fs.id] = (df, pred)
      real = df.iloc[:n_real].copy()
      real["q"], real["significant"] = stats.fdr(real["p"].to_numpy(), config.q)
      if "gain_p" in real:
        real["gain_q"], real["gain_significant"] = stats.fdr(real["gain_p"].to_numpy(),
                                                             config.q)
      for j in np.flatnonzero(unscored[:n_real]):
        report.add("target", names[j], f"not scored in subset {subset} ({fs.id}): "
                   f"{why[j] or 'no finite out-of-fold prediction'}")
      frames_out.append(real)
      for target in curve_targets:
        j = all_names.index(target)
        if binary[j] and not unscored[j]:
          curves.append(_roc(y_sub[:, j], pred[:, :, j], {**key, "task": fs.task,
                                                          "ablation": fs.ablation,
                                                          "target": target}))
    for a, b in pairs:
      comparisons.append(_compare(a, b, scored, y_sub, logits, binary, is_null, n_real,
                                  subset, config.q, calibration))
  if not frames_out:
    raise ValueError("no subset could be scored")
  targets = pd.concat(frames_out, ignore_index=True)

  if jax.process_index() != 0:  # every process has the tables; process 0 writes them
    return targets
  out = os.path.join(workdir, "results")
  os.makedirs(out, exist_ok=True)
  targets.to_parquet(os.path.join(out, "targets.parquet"), index=False)
  targets.to_csv(os.path.join(out, "targets.csv"), index=False)
  tables.systems_table(targets).to_csv(os.path.join(out, "systems.csv"), index=False)
  calibration = pd.DataFrame(calibration)
  calibration.to_csv(os.path.join(out, "calibration.csv"), index=False)
  if comparisons:
    pd.concat(comparisons, ignore_index=True).to_csv(os.path.join(out, "comparisons.csv"),
                                                     index=False)
  if curves:
    pd.concat(curves, ignore_index=True).to_csv(os.path.join(out, "roc.csv"), index=False)
  report.frame().to_csv(os.path.join(workdir, "probe_report.csv"), index=False)
  _summary(targets, calibration, report, len(ids), config.q)
  with tracking.start(config, workdir, "probe") as tracker:
    tested = targets[targets["status"] == "ok"]
    tracker.summary({"participants": len(ids), "targets_tested": tested["target"].nunique(),
                     "report_rows": len(report.rows), "feature_sets": len(sets),
                     **{f"significant/{f}/{s}": int(part["significant"].sum())
                        for (f, s), part in tested.groupby(["features", "subset"])}})
    tracker.table("systems", tables.systems_table(targets))
    tracker.table("calibration", calibration)
    # Per-target tables (thousands of rows) go as files: a wandb.Table that size takes
    # longer to build than the probe.
    tracker.artifact("probe_results", "results", out)
    excluded = report.frame().groupby(["scope", "reason"]).size().rename("count")
    tracker.table("excluded", excluded.reset_index())
  return targets


def _gain(df: pd.DataFrame, fs: tables.FeatureSet, base: np.ndarray, full: np.ndarray,
          y_sub: np.ndarray, folds: np.ndarray, binary: np.ndarray, logits: np.ndarray,
          is_null: np.ndarray, unscored: np.ndarray, key: dict[str, object],
          calibration: list[dict]) -> pd.DataFrame:
  """The gain of a primary feature set over the covariates: scores of the base
  (covariates) and full (both) models and the participant-level test of their
  out-of-fold losses. NaN columns for the other feature sets."""
  if not fs.primary:
    return df.assign(**{c: np.nan for c in (
        "score_base", "score_full", "r_base", "r_full", "auc_base", "auc_full", "gain",
        "gain_z", "gain_p")})
  sb = stats.fold_scores(y_sub, base, folds, binary)
  sf = stats.fold_scores(y_sub, full, folds, binary)
  df["score_base"] = np.where(binary, sb["auc"], sb["r"])
  df["score_full"] = np.where(binary, sf["auc"], sf["r"])
  df["r_base"], df["r_full"] = sb["r"], sf["r"]
  df["auc_base"], df["auc_full"] = sb["auc"], sf["auc"]
  df["gain"] = df["score_full"] - df["score_base"]
  gain_z = stats.mean_z(stats.loss_difference(y_sub, base, full, logits))
  gain_p, _, _, cal = _calibrated(gain_z, binary, is_null, "gain_", key)
  calibration += cal
  ok = ~unscored & np.isfinite(df["gain"].to_numpy())
  df["gain_z"] = np.where(ok, gain_z, np.nan)
  df["gain_p"] = np.where(ok, gain_p, np.nan)
  return df


def _roc(y: np.ndarray, pred: np.ndarray, key: dict[str, object]) -> pd.DataFrame:
  """ROC curve points of one binary target: the out-of-fold predictions averaged over
  seeds, pooled over the subset's participants."""
  with warnings.catch_warnings():  # participants without the feature set stay NaN
    warnings.simplefilter("ignore", RuntimeWarning)
    score = np.nanmean(pred, axis=0)
  ok = np.isfinite(y) & np.isfinite(score)
  fpr, tpr, _ = metrics.roc_curve(y[ok], score[ok])
  auc = metrics.roc_auc_score(y[ok], score[ok])
  return pd.DataFrame({**key, "fpr": fpr, "tpr": tpr, "auc": auc})


def _compare(a: str, b: str, scored: dict, y_sub: np.ndarray, logits: np.ndarray,
             binary: np.ndarray, is_null: np.ndarray, n_real: int, subset: str, q: float,
             calibration: list[dict]) -> pd.DataFrame:
  """Paired comparison of feature sets a and b per target on the same folds: Δ score
  (a − b) and a participant-level test of the out-of-fold losses (> 0: a predicts
  better), calibrated by the null targets' comparisons; BH over the real targets."""
  (da, pa), (db, pb) = scored[a], scored[b]
  z = stats.mean_z(stats.loss_difference(y_sub, pb, pa, logits))
  p, lam_k, _, cal = _calibrated(z, binary, is_null, "compare_",
                                 {"features": f"{a} vs {b}", "subset": subset})
  calibration += cal
  ok = (da["status"] == "ok").to_numpy() & (db["status"] == "ok").to_numpy() & np.isfinite(z)
  out = pd.DataFrame({
      "a": a, "b": b, "subset": subset, "target": da["target"], "system": da["system"],
      "kind": da["kind"], "metric": np.where(binary, "auc", "r"),
      "score_a": da["score"], "score_b": db["score"], "delta": da["score"] - db["score"],
      "z": np.where(ok, z, np.nan), "null_scale": lam_k, "p": np.where(ok, p, np.nan),
      "n": np.minimum(da["n"], db["n"])}).iloc[:n_real]
  out["q"], out["significant"] = stats.fdr(out["p"].to_numpy(), q)
  return out


def _summary(targets: pd.DataFrame, calibration: pd.DataFrame, report: tables.Report, n: int,
             q: float) -> None:
  tested = targets[targets["status"] == "ok"]
  print(f"probe: {n} participants, {tested['target'].nunique()} targets tested, "
        f"{len(report.rows)} report rows, BH q = {q}")
  cols = ["features", "subset", "tested", "significant"] + (
      ["gain_significant"] if "gain_significant" in targets else [])
  print("  ".join(f"{c:>16s}" for c in cols))
  for (features, subset), part in tested.groupby(["features", "subset"], sort=False):
    vals = [features, subset, len(part), int(part["significant"].sum())]
    if "gain_significant" in part:
      gained = part["gain_significant"]
      vals.append(int(gained.sum()) if gained.notna().any() else "-")
    print("  ".join(f"{str(v):>16s}" for v in vals))
  first = calibration[calibration["features"] == targets["features"].iloc[0]]
  lam = ", ".join(f"{r.subset}/{r.test} {r.null_scale:.2f}" for r in first.itertuples()
                  if np.isfinite(r.null_scale))
  every = calibration["null_scale"].dropna()
  print(f"null scale λ (calibration of the tests by simulated null targets), "
        f"{targets['features'].iloc[0]}: {lam}" + (
            f"; all {len(every)} tests {every.min():.2f}–{every.max():.2f} "
            "(results/calibration.csv)" if calibration["features"].nunique() > 1 else ""))
