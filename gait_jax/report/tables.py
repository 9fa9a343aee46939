"""The report's tidy tables, built from a run directory: one function per figure.

Every builder takes a `rundir.RunDir` and returns a `Table`: the tidy frame the
figure of the same name in `figures.FIGURES` draws (written as
OUT/tables/<name>.csv), the files it was read from, and, when its inputs are
missing, no frame and the reason. A builder never writes anything.

Probe results are filtered to what a figure compares: feature set "embedding"
(else the first one present), all tasks together ("fused"), no ablation, the
targets that were scored (status "ok").
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from gait_jax import schema
from gait_jax.probing import stats
from gait_jax.report import figures
from gait_jax.report import rundir as rundir_lib
from gait_jax.report.rundir import RunDir

HEADLINE_TARGETS = {"age": "r", "bmi": "r", "visceral_fat": "r", "sex": "auc"}
CLINICAL_SYSTEMS = ("medical_conditions", "medications")
CLINICAL_TOP = 20
MAIN_FEATURES = "embedding"
SECOND_FEATURES = "engineered"
PCA_COLOURS = ("age", "sex", "bmi")


@dataclasses.dataclass(frozen=True)
class Table:
  """A builder's result.

  Attributes:
    frame: the tidy table, or None when it cannot be built.
    sources: the files it was read from.
    reason: why there is no frame ("" when there is one).
    note: a remark for the caption (a fallback taken), or "".
    per_participant: one row per participant: kept out of W&B and of the artifact.
  """
  frame: pd.DataFrame | None
  sources: tuple[pathlib.Path, ...] = ()
  reason: str = ""
  note: str = ""
  per_participant: bool = False


def missing(reason: str, *sources: pathlib.Path) -> Table:
  return Table(None, tuple(sources), reason)


def _probe_targets(run: RunDir) -> tuple[pd.DataFrame | None, list[pathlib.Path]]:
  return rundir_lib.read_probe(run.probe_dirs(), "targets.parquet")


def _choose_set(frame: pd.DataFrame, wanted: str = MAIN_FEATURES) -> tuple[str, str]:
  """(the feature set to show, a note when it is not `wanted`)."""
  sets = list(pd.unique(frame["features"]))
  if wanted in sets:
    return wanted, ""
  return sets[0], f"no feature set {wanted!r}; showing {sets[0]!r}"


def _main_rows(frame: pd.DataFrame) -> pd.DataFrame:
  """Rows of all tasks together (else the only task) and no ablation."""
  if (frame["ablation"] == rundir_lib.NO_ABLATION).any():
    frame = frame[frame["ablation"] == rundir_lib.NO_ABLATION]
  tasks = pd.unique(frame["task"])
  if rundir_lib.FUSED in tasks:
    frame = frame[frame["task"] == rundir_lib.FUSED]
  elif len(tasks) > 1:
    frame = frame.iloc[:0]
  return frame


def _scored(frame: pd.DataFrame) -> pd.DataFrame:
  return frame[frame["status"] == "ok"] if "status" in frame else frame


# --- 1. Pretraining -------------------------------------------------------------------


def pretrain_loss(run: RunDir) -> Table:
  """Training and held-out (`val/loss...`) losses of every RUN/pretrain* run."""
  files = [d / "metrics.jsonl" for d in run.pretrain_dirs() if (d / "metrics.jsonl").is_file()]
  if not files:
    return missing("no RUN/pretrain*/metrics.jsonl")
  rows = []
  for path in files:
    for line in path.read_text().splitlines():
      try:
        record = json.loads(line)
      except json.JSONDecodeError:  # a line cut by a kill: skip it
        continue
      for key, value in record.items():
        if key == "loss" or key.startswith("val/loss"):
          rows.append({"run": path.parent.name, "series": key,
                       "split": "val" if key.startswith("val/") else "train",
                       "step": int(record["step"]), "value": float(value)})
  if not rows:
    return missing("metrics.jsonl has no loss values", *files)
  return Table(pd.DataFrame(rows), tuple(files))


def reconstruction(run: RunDir) -> Table:
  """Masked input, prediction and truth of one clip, from the checkpoint the
  embeddings came from (RUN/embed/embed_config.json), else that of the first
  RUN/pretrain* run with one, and a clip of RUN/shards (`report.reconstruction`)."""
  ckpt = [d for d in run.pretrain_dirs() if (d / "checkpoints").is_dir()
          and (d / "config.json").is_file()]
  if not ckpt:
    return missing("no RUN/pretrain*/ with config.json and checkpoints/")
  embed_config = run.file("embed", "embed_config.json")
  if embed_config is not None:
    used = pathlib.Path(str(json.loads(embed_config.read_text()).get("checkpoint_dir") or ""))
    ckpt.sort(key=lambda d: d.name != used.name)  # stable: the embedding's run first
  shards = run.root / "shards"
  if not (shards / "manifest.parquet").is_file():
    return missing("no RUN/shards/manifest.parquet to take a clip from")
  from gait_jax.report import reconstruction as recon  # pylint: disable=import-outside-toplevel
  try:
    frame, clip = recon.reconstruction_table(ckpt[0], shards)
  except Exception as e:  # pylint: disable=broad-except
    # A checkpoint that cannot be restored leaves the rest of the report standing.
    return missing(f"could not reconstruct from {ckpt[0].name}: {type(e).__name__}: {e}",
                   ckpt[0] / "checkpoints")
  return Table(frame, (ckpt[0] / "checkpoints", shards / "manifest.parquet"),
               note=f"clip {clip}")


# --- 2. Probing -----------------------------------------------------------------------


def _task_probe(run: RunDir, name: str) -> tuple[pd.DataFrame | None, list[pathlib.Path],
                                                 str]:
  """`name` from RUN/probe_tasks, else from the feature-set probes (which may hold
  all tasks together only); (frame, files, note)."""
  frame, files = rundir_lib.read_probe([run.root / rundir_lib.TASKS_PROBE], name)
  if frame is not None:
    return frame, files, ""
  frame, files = rundir_lib.read_probe(run.probe_dirs(), name)
  if frame is None:
    return None, [], ""
  if frame["task"].nunique() > 1:
    return frame, files, f"no {rundir_lib.TASKS_PROBE}/: the tasks of the main probe"
  return frame, files, (f"no {rundir_lib.TASKS_PROBE}/ (each task probed alone): "
                        "all tasks together only")


def task_scores(run: RunDir) -> Table:
  """Age, BMI and visceral fat r and sex AUC, with intervals, per task (subset all)."""
  frame, files, note = _task_probe(run, "targets.parquet")
  if frame is None:
    return missing(f"no {rundir_lib.TASKS_PROBE}/ or RUN/probe*/results/targets.parquet")
  frame = frame[(frame["subset"] == "all") & (frame["ablation"] == rundir_lib.NO_ABLATION)
                & frame["target"].isin(list(HEADLINE_TARGETS))]
  rows = []
  for r in frame.itertuples(index=False):
    metric = HEADLINE_TARGETS[r.target]
    rows.append({"features": r.input, "task": r.task, "target": r.target,
                 "metric": metric, "score": getattr(r, metric),
                 "ci_low": getattr(r, f"{metric}_ci_low"),
                 "ci_high": getattr(r, f"{metric}_ci_high"), "n": r.n})
  if not rows:
    return missing("no age, bmi, visceral_fat or sex rows in subset all", *files)
  out = pd.DataFrame(rows)
  out["_t"] = out["target"].map(list(HEADLINE_TARGETS).index)
  out["_k"] = (out["task"] != rundir_lib.FUSED).astype(int)
  out = out.sort_values(["_t", "_k", "task", "features"]).drop(columns=["_t", "_k"])
  return Table(out.reset_index(drop=True), tuple(files), note=note)


def sex_roc(run: RunDir) -> Table:
  """ROC points of sex per task and feature set (subset all, no ablation)."""
  frame, files, note = _task_probe(run, "roc.csv")
  if frame is None:
    return missing(f"no {rundir_lib.TASKS_PROBE}/ or RUN/probe*/results/roc.csv")
  if "subset" in frame:
    frame = frame[frame["subset"] == "all"]
  frame = frame[(frame["target"] == "sex") & (frame["ablation"] == rundir_lib.NO_ABLATION)]
  if frame.empty:
    return missing("roc.csv has no curve of target sex in subset all", *files)
  out = frame[["input", "task", "fpr", "tpr", "auc"]].rename(columns={"input": "features"})
  out["_k"] = (out["task"] != rundir_lib.FUSED).astype(int)
  out = out.sort_values(["features", "_k", "task"], kind="stable").drop(columns="_k")
  return Table(out.reset_index(drop=True), tuple(files), note=note)


def _per_system(run: RunDir, flag: str) -> tuple[pd.DataFrame | None, tuple, str, str]:
  """Scored main rows of the main feature set, men and women (else every subset),
  grouped per subset × system: (frame, files, note, reason)."""
  frame, files = _probe_targets(run)
  if frame is None:
    return None, (), "", "no RUN/probe*/results/targets.parquet"
  if flag not in frame:
    return None, tuple(files), "", f"targets.parquet has no {flag!r} column" + (
        " (the probe ran without covariates)" if flag.startswith("gain") else "")
  main = _main_rows(frame)
  if main.empty:
    return None, tuple(files), "", "no rows of all tasks together without ablation"
  name, note = _choose_set(main)
  # Men and women (published), and everyone (the most power).
  part = _scored(main[main["features"] == name])
  if part.empty:
    return None, tuple(files), note, "no scored targets"
  part = part.assign(features=name, _flag=part[flag].fillna(False).astype(bool))
  return part, tuple(files), note, ""


def significant_by_system(run: RunDir) -> Table:
  """Tested and significant targets per system: men, women and everyone."""
  part, files, note, reason = _per_system(run, "significant")
  if part is None:
    return missing(reason, *files)
  out = (part.groupby(["features", "subset", "system"], sort=False)
         .agg(tested=("target", "size"), significant=("_flag", "sum")).reset_index())
  out["share"] = out["significant"] / out["tested"]
  return Table(_by_share(out), files, note=note)


def gain_by_system(run: RunDir) -> Table:
  """Targets with a significant independent gain over the covariates, and the mean
  gain, per system: men, women and everyone."""
  part, files, note, reason = _per_system(run, "gain_significant")
  if part is None:
    return missing(reason, *files)
  out = (part.groupby(["features", "subset", "system"], sort=False)
         .agg(tested=("target", "size"), gain_significant=("_flag", "sum"),
              mean_gain=("gain", "mean")).reset_index())
  out["share"] = out["gain_significant"] / out["tested"]
  return Table(_by_share(out), files, note=note)


def _by_share(out: pd.DataFrame) -> pd.DataFrame:
  """Systems ordered by their mean share over subsets, highest first."""
  order = out.groupby("system")["share"].mean().sort_values(ascending=False, kind="stable")
  out = out.assign(_o=out["system"].map({s: i for i, s in enumerate(order.index)}))
  return out.sort_values(["_o", "subset"]).drop(columns="_o").reset_index(drop=True)


def clinical_dumbbell(run: RunDir) -> Table:
  """AUC of gait, covariates and both for the top diagnoses and medications."""
  frame, files = _probe_targets(run)
  if frame is None:
    return missing("no RUN/probe*/results/targets.parquet")
  if "auc_full" not in frame:
    return missing("targets.parquet has no auc_base/auc_full (no covariates)", *files)
  main = _main_rows(frame)
  if main.empty:
    return missing("no rows of all tasks together without ablation", *files)
  name, note = _choose_set(main)
  part = _scored(main[main["features"] == name])
  part = part[(part["subset"] == "all") & (part["kind"] == "binary")
              & part["system"].isin(CLINICAL_SYSTEMS) & part["auc_full"].notna()]
  if part.empty:
    return missing(f"no scored binary targets of {', '.join(CLINICAL_SYSTEMS)}", *files)
  part = part.sort_values("auc_full", ascending=False).head(CLINICAL_TOP)
  models = {"auc": "gait", "auc_base": "covariates", "auc_full": "gait + covariates"}
  long = part[["target", "system", *models]].rename(columns=models).melt(
      id_vars=["target", "system"], var_name="model", value_name="auc")
  order = {t: i for i, t in enumerate(part["target"])}
  long = long.assign(_o=long["target"].map(order)).sort_values(["_o", "model"])
  return Table(long.drop(columns="_o").reset_index(drop=True), tuple(files),
               note=f"feature set {name}; top {len(part)} by the AUC of both" + (
                   f"; {note}" if note else ""))


def embedding_vs_engineered(run: RunDir) -> Table:
  """Per-target scores of two feature sets: comparisons.csv (paired tests), else the
  two sets' targets tables side by side (no test)."""
  comparisons, files = rundir_lib.read_probe(run.probe_dirs(), "comparisons.csv")
  columns = ["a", "b", "subset", "target", "system", "kind", "metric", "score_a",
             "score_b", "delta", "q", "significant"]
  if comparisons is not None:
    part = comparisons[comparisons["subset"] == "all"]
    pairs = list(dict.fromkeys(zip(part["a"], part["b"])))
    pair = (MAIN_FEATURES, SECOND_FEATURES) if (MAIN_FEATURES, SECOND_FEATURES) in pairs else (
        pairs[0] if pairs else None)
    if pair is None:
      return missing("comparisons.csv has no rows in subset all", *files)
    part = part[(part["a"] == pair[0]) & (part["b"] == pair[1])]
    out = part[columns].assign(paired_test=True)
    return Table(out.reset_index(drop=True), tuple(files))
  targets, files = _probe_targets(run)
  main = _scored(_main_rows(targets)) if targets is not None else None
  if main is None or main["features"].nunique() < 2:
    return missing("no comparisons.csv and fewer than two feature sets probed", *files)
  sets = list(pd.unique(main["features"]))
  a = MAIN_FEATURES if MAIN_FEATURES in sets else sets[0]
  b = SECOND_FEATURES if SECOND_FEATURES in sets and a != SECOND_FEATURES else next(
      s for s in sets if s != a)
  main = main[main["subset"] == "all"]
  keys = ["target", "system", "kind"]
  left = main[main["features"] == a][keys + ["score"]].rename(columns={"score": "score_a"})
  right = main[main["features"] == b][["target", "score"]].rename(columns={"score": "score_b"})
  out = left.merge(right, on="target")
  if out.empty:
    return missing(f"no target scored by both {a!r} and {b!r}", *files)
  out = out.assign(a=a, b=b, subset="all",
                   metric=np.where(out["kind"] == "binary", "auc", "r"),
                   delta=out["score_a"] - out["score_b"], q=np.nan, significant=False,
                   paired_test=False)
  return Table(out[columns + ["paired_test"]].reset_index(drop=True), tuple(files),
               note="no comparisons.csv: scores side by side, without a paired test")


# --- 3. Embeddings, ablations ---------------------------------------------------------


def embedding_pca(run: RunDir) -> Table:
  """First two principal components of the person embeddings (ablation none, each
  person's tasks concatenated; a task a person lacks takes the task's mean), with age,
  sex and BMI from the phenotypes."""
  path = run.file("embed", "embeddings.parquet")
  if path is None:
    return missing("no RUN/embed/embeddings.parquet")
  from sklearn.decomposition import PCA  # pylint: disable=import-outside-toplevel
  frame, features = schema.read_table(path)
  frame = frame[frame[schema.ABLATION] == schema.NO_ABLATION]
  wide = frame.pivot_table(index=schema.PARTICIPANT, columns=schema.TASK, values=features,
                           aggfunc="mean")
  x = wide.to_numpy(np.float64)
  x = np.where(np.isfinite(x), x, np.nanmean(x, axis=0))
  keep = np.isfinite(x).all(0) & (np.nanstd(x, axis=0) > 0)
  x = x[:, keep]
  if x.shape[0] < 3 or x.shape[1] < 2:
    return missing(f"{x.shape[0]} participants × {x.shape[1]} usable features: too few for "
                   "a PCA", path)
  x = (x - x.mean(0)) / x.std(0)
  pca = PCA(n_components=2, random_state=0)
  pcs = pca.fit_transform(x)
  out = pd.DataFrame({"pc1": pcs[:, 0], "pc2": pcs[:, 1],
                      "pc1_share": pca.explained_variance_ratio_[0],
                      "pc2_share": pca.explained_variance_ratio_[1]},
                     index=wide.index.astype(str))
  sources = [path]
  pheno = run.file("cohort", "phenotypes.parquet")
  colours = pd.DataFrame(index=out.index, columns=list(PCA_COLOURS), dtype=float)
  if pheno is not None:
    ph = pd.read_parquet(pheno)
    ph = ph.drop_duplicates(schema.PARTICIPANT).set_index(ph[schema.PARTICIPANT].astype(str))
    for c in PCA_COLOURS:
      if c in ph:
        colours[c] = pd.to_numeric(ph[c], errors="coerce").reindex(out.index)
    sources.append(pheno)
  # No participant ids: the figure does not need them, and the CSV travels.
  out = pd.concat([out, colours], axis=1).reset_index(drop=True)
  return Table(out, tuple(sources), per_participant=True,
               note="" if pheno is not None else "no phenotypes: not coloured")


def region_importance(run: RunDir) -> Table:
  """Importance of each body region per system, ablation kind and subset (men and
  women, as published, and everyone)."""
  path = run.file("ablation", "region_importance.csv")
  if path is None:
    return missing("no RUN/ablation/region_importance.csv")
  frame = pd.read_csv(path)
  if frame.empty:
    return missing("region_importance.csv is empty", path)
  return Table(frame.reset_index(drop=True), (path,))


def full_vs_ablated(run: RunDir) -> Table:
  """Per target, the whole-body score against each region removed at inference
  (ablation zero; else the first kind the run has), everyone, with the paired tests:
  RUN/ablation/target_importance.parquet."""
  path = run.file("ablation", "target_importance.parquet")
  if path is None:
    return missing("no RUN/ablation/target_importance.parquet")
  frame = pd.read_parquet(path)
  frame = frame[frame["subset"] == "all"]
  if frame.empty:
    return missing("target_importance.parquet has no rows in subset all", path)
  kinds = list(pd.unique(frame["ablation"]))
  kind = "zero" if "zero" in kinds else kinds[0]
  frame = frame[frame["ablation"] == kind]
  out = frame.assign(metric=np.where(frame["kind"] == "binary", "auc", "r"))
  # For "only" the stored Δ is signed so that higher = more signal in the region.
  columns = ["region", "ablation", "target", "system", "metric", "score_full",
             "score_ablated", "delta", "q", "significant"]
  return Table(out[columns].reset_index(drop=True), (path,),
               note=f"ablation {kind}, everyone")


# --- 4. Data quality, truth -----------------------------------------------------------


_NA_WORDS = {"nan", "na", "n/a", "null", "none", "inf", "-nan", "#n/a"}


def _reason_key(reason: object) -> str:
  """The kind of a reason, without its particulars, so that rows of one kind count
  together: its first "; "-separated issue up to the first ":" or " (", numbers → "#"
  (as `tracking.reason_kind`); the probe's "not scored in subset S (set): why"
  becomes "why"."""
  if reason is None or (isinstance(reason, float) and np.isnan(reason)):
    return "unspecified"
  text = str(reason).split(";")[0].strip()
  subset = re.match(r"not scored in subset (\S+)(?: \(([^)]*)\))?:\s*(.*)", text)
  if subset:
    return _reason_key(subset.group(3))
  kind = re.split(r":| \(", text, maxsplit=1)[0]
  kind = re.sub(r"\d+(\.\d+)?", "#", kind).strip() or "unspecified"
  # "NaN: columns" and the like: a bare NaN would read back from the CSV as missing.
  return f"{kind} values" if kind.lower() in _NA_WORDS else kind


def _counts(stage: str, unit: str, status: str, reasons: pd.Series) -> list[dict]:
  keys = reasons.map(_reason_key)
  return [{"stage": stage, "unit": unit, "status": status, "reason": r, "count": int(n)}
          for r, n in keys.value_counts(sort=True).items()]


def data_quality(run: RunDir) -> Table:
  """Counts per stage × reason: recordings kept or excluded by QC, clips and groups
  left out of the embeddings and features, targets and participants not probed."""
  rows: list[dict] = []
  sources: list[pathlib.Path] = []
  qc = run.file("shards", "qc_report.csv")
  if qc is not None:
    frame = pd.read_csv(qc)
    ok = frame["status"] == "ok"
    rows.append({"stage": "prepare (QC)", "unit": "recordings", "status": "kept",
                 "reason": "passed QC", "count": int(ok.sum())})
    rows += _counts("prepare (QC)", "recordings", "excluded", frame.loc[~ok, "reason"])
    sources.append(qc)
  for stage, table, report in (("embed", "embeddings.parquet", "embed_report.csv"),
                               ("features", "features.parquet", "features_report.csv")):
    path = run.file(stage, table)
    if path is not None:
      import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
      keys = pq.read_table(path, columns=[schema.PARTICIPANT, schema.TASK]).to_pandas()
      rows.append({"stage": stage, "unit": "participant × task", "status": "kept",
                   "reason": "in the table", "count": len(keys.drop_duplicates())})
      sources.append(path)
    path = run.file(stage, report)
    if path is not None:
      frame = pd.read_csv(path)
      if "status" in frame:
        frame = frame[frame["status"] != "ok"]
      if "clip_id" in frame:
        unit = np.where(frame["clip_id"] >= 0, "clips", "participant × task")
      else:
        unit = np.full(len(frame), "rows")
      for u in pd.unique(unit):
        rows += _counts(stage, str(u), "excluded", frame.loc[unit == u, "reason"])
      sources.append(path)
  # The main probe runs (the per-task run probes the same targets).
  for d in run.probe_dirs():
    stage = d.name
    targets = d / "results" / "targets.parquet"
    if targets.is_file():
      t = pd.read_parquet(targets, columns=["target", "subset", "status"])
      t = t[t["subset"] == "all"]
      rows.append({"stage": stage, "unit": "targets", "status": "kept",
                   "reason": "scored (subset all)",
                   "count": int(t.loc[t["status"] == "ok", "target"].nunique())})
      sources.append(targets)
    report = d / "probe_report.csv"
    if report.is_file():
      frame = pd.read_csv(report)
      # A target or participant counts once per reason, over subsets and feature sets.
      frame = frame.assign(key=frame["reason"].map(_reason_key)).drop_duplicates(
          ["scope", "name", "key"])
      for scope in pd.unique(frame["scope"]):
        rows += _counts(stage, str(scope), "excluded",
                        frame.loc[frame["scope"] == scope, "reason"])
      sources.append(report)
  if not rows:
    return missing("no qc_report.csv, embedding, features or probe reports")
  return Table(pd.DataFrame(rows), tuple(sources))


def power_fdp(run: RunDir) -> Table:
  """Power and false discovery proportion of every feature set on subset all
  (`stats.power_fdp`): plain discoveries, and independent gains when present."""
  if run.truth is None or not run.truth.is_file():
    return missing("no truth.json (synthetic cohorts only; or pass --truth)")
  frame, files = _probe_targets(run)
  if frame is None:
    return missing("no RUN/probe*/results/targets.parquet", run.truth)
  truth = json.loads(run.truth.read_text())
  rows = []
  main = _scored(_main_rows(frame))
  for name in pd.unique(main["features"]):
    part = main[(main["features"] == name) & (main["subset"] == "all")]
    for test, column, adjusted in (("probe", "significant", False),
                                   ("gain", "gain_significant", True)):
      if column not in part or part.empty:
        continue
      found = dict(zip(part["target"], part[column].fillna(False).astype(bool)))
      rows.append({"features": name, "test": test,
                   **stats.power_fdp(found, truth, covariate_adjusted=adjusted)})
  if not rows:
    return missing("no scored targets in subset all", run.truth, *files)
  return Table(pd.DataFrame(rows), (run.truth, *files))


# One builder per figure, of the same name (figures.FIGURES).
BUILDERS: dict[str, Callable[[RunDir], Table]] = {
    name: globals()[name] for name in figures.FIGURES}
