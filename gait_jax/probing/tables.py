"""Inputs of the probe job, checked; the report of what was left out; the result tables.

Bad input never stops the job when the rest can run: every excluded target or
participant becomes one row of `probe_report.csv` (scope, name, reason). A wholly
unusable input (missing file, no participants in common) raises InputError naming the
file and the reason (one line on stderr, no traceback, from the command line).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd

from gait_jax import schema
from gait_jax.errors import InputError

@dataclasses.dataclass
class Report:
  """Rows of probe_report.csv."""
  rows: list[dict[str, str]] = dataclasses.field(default_factory=list)

  def add(self, scope: str, name: str, reason: str) -> None:
    self.rows.append({"scope": scope, "name": str(name), "reason": reason})

  def frame(self) -> pd.DataFrame:
    return pd.DataFrame(self.rows, columns=["scope", "name", "reason"])


def read_table(path: str, what: str) -> pd.DataFrame:
  """A CSV or Parquet file; InputError naming the file when it cannot be read."""
  if not path:
    raise InputError(f"no {what} file given")
  if not os.path.exists(path):
    raise InputError(f"{what} file {path!r} does not exist")
  try:
    if path.endswith(".parquet") or path.endswith(".pq"):
      return pd.read_parquet(path)
    return pd.read_csv(path)
  except Exception as e:  # pylint: disable=broad-except
    raise InputError(f"{what} file {path!r} could not be read: {e}") from e


@dataclasses.dataclass(frozen=True)
class Views:
  """Feature matrices indexed by participant: one view ("concat") or one per task."""
  frames: dict[str, pd.DataFrame]


# The task label of a feature set that uses every (selected) task together.
FUSED = "fused"


@dataclasses.dataclass(frozen=True)
class FeatureSet:
  """One input scored by the probe: a table's rows of one ablation and tasks.

  id: "<input>", "<input>/<task>", "<input>/<ablation>" or "<input>/<task>/<ablation>"
  (task FUSED and ablation "none" are left out). primary: the input's fused,
  unablated set, the one whose gain over the covariates is also fitted.
  """
  id: str
  input: str
  task: str
  ablation: str
  views: Views

  @property
  def primary(self) -> bool:
    return self.task == FUSED and self.ablation == schema.NO_ABLATION


def _set_id(name: str, task: str, ablation: str) -> str:
  parts = [name] + ([task] if task != FUSED else []) + (
      [ablation] if ablation != schema.NO_ABLATION else [])
  return "/".join(parts)


def _choices(value: str, present: list[str], what: str, path: str, report: Report
             ) -> list[str]:
  """"each" → everything present; "a,b" → those present (the others reported)."""
  if value == "each":
    return present
  wanted = [v.strip() for v in value.split(",") if v.strip()]
  for v in wanted:
    if v not in present:
      report.add("input", v, f"{what} not in {path}")
  return [v for v in wanted if v in present]


def feature_sets(inputs: list[tuple[str, str]], tasks: str, ablation: str, fusion: str,
                 report: Report) -> list[FeatureSet]:
  """The feature sets of a probe run, the first input's fused unablated set first.

  Args:
    inputs: (name, path) of `schema` tables (embed or features job, or any
      participant_id + numeric columns table).
    tasks: "" (every task, fused), "a,b" (those, fused) or "each" (every task alone,
      and all of them fused).
    ablation: "none", "a,b" or "each" (every ablation in the table, "none" first);
      an input without a requested ablation (engineered features) scores "none".
    fusion: how several tasks are fused: "concat" (one wide row per person) or
      "average" (a model per task, out-of-fold predictions averaged per person).
  """
  if fusion not in ("concat", "average"):
    raise InputError(f"fusion={fusion!r}; expected 'concat' or 'average'")
  out: list[FeatureSet] = []
  for i, (name, path) in enumerate(inputs):
    t, features = schema.read_table(path)
    present = sorted(t[schema.TASK].unique())
    selected = present if tasks in ("", "each") else _choices(tasks, present, "task", path,
                                                              report)
    task_sets = [(FUSED, selected)]
    if tasks == "each" and len(present) > 1:
      task_sets += [(task, [task]) for task in present]
    ablations = list(dict.fromkeys([schema.NO_ABLATION] + list(t[schema.ABLATION].unique())))
    ablations = [a for a in ablations if a in set(t[schema.ABLATION])]
    if ablation == "each":
      chosen = ablations
    elif i == 0:
      chosen = _choices(ablation, ablations, "ablation", path, report)
    else:
      chosen = [a for a in ablation.split(",") if a in ablations] or ablations[:1]
    if not chosen or not selected:
      raise InputError(f"embeddings file {path!r} has no rows with ablation {ablation!r} "
                       f"and tasks {tasks or 'any'!r}")
    for abl in chosen:
      part = t[t[schema.ABLATION] == abl]
      for task, use in task_sets:
        views = _views(part[part[schema.TASK].isin(use)], features, path, fusion, report)
        out.append(FeatureSet(_set_id(name, task, abl), name, task, abl, views))
  ids = [s.id for s in out]
  if len(set(ids)) != len(ids):
    raise InputError(f"feature set names repeat: {ids}")
  return out


def _views(t: pd.DataFrame, features: list[str], path: str, fusion: str, report: Report
           ) -> Views:
  """Per-participant feature matrices of one ablation's rows.

  concat: tasks pivoted into one wide row per person ("<task>/<feature>"), NaN where a
  person lacks a task (imputed later, inside training folds). average: one matrix per
  task, over the people who have it. A table without a task column is one view.
  """
  bad = [c for c in features if not pd.api.types.is_numeric_dtype(t[c])]
  for c in bad:
    report.add("input", c, f"non-numeric embedding column in {path}")
  features = [c for c in features if c not in bad]
  if not features or not len(t):
    raise InputError(f"embeddings file {path!r} has no usable feature columns / tasks")
  keys = [schema.PARTICIPANT, schema.TASK]
  dup = t.duplicated(keys, keep="first")
  for pid, task in t.loc[dup, keys].itertuples(index=False):
    report.add("participant", pid, f"duplicate row for task {task!r} in {path}; first kept")
  t = t[~dup]
  frames = {}
  for task, part in t.groupby(schema.TASK, sort=True):
    frames[str(task)] = part.set_index(schema.PARTICIPANT)[features].astype(np.float64)
  if fusion == "average" or len(frames) == 1:
    return Views(frames)
  wide = pd.concat(dict(frames.items()), axis=1)
  wide.columns = [f"{task}/{c}" for task, c in wide.columns]
  return Views({"concat": wide})


@dataclasses.dataclass(frozen=True)
class Phenotypes:
  """values: f64 table indexed by participant (targets and covariates);
  meta: one row per target (target, system, kind, is_covariate)."""
  values: pd.DataFrame
  meta: pd.DataFrame


def phenotypes(table: pd.DataFrame, path: str, dictionary: pd.DataFrame | None,
               id_column: str, report: Report) -> Phenotypes:
  """Checks the phenotype table: IDs, numeric and non-constant targets, kinds."""
  if id_column not in table.columns:
    raise InputError(f"phenotype file {path!r} has no ID column {id_column!r}")
  t = table.copy()
  t[id_column] = t[id_column].astype(str)
  dup = t[id_column].duplicated(keep=False)
  for pid in sorted(set(t.loc[dup, id_column])):
    report.add("participant", pid, "duplicate participant ID in the phenotype table; all its "
               "rows dropped")
  t = t[~dup].set_index(id_column)
  if dictionary is not None:
    meta = dictionary.copy()
    meta["target"] = meta["target"].astype(str)
    if "system" not in meta:
      meta["system"] = "unassigned"
    if "is_covariate" not in meta:
      meta["is_covariate"] = False
    columns, listed = set(t.columns), set(meta["target"])
    for name in meta["target"]:
      if name not in columns:
        report.add("target", name, "in the dictionary but not in the phenotype table")
    meta = meta[meta["target"].isin(columns)]
    for name in t.columns:
      if name not in listed:
        report.add("target", name, "not in the dictionary; not probed")
  else:
    meta = pd.DataFrame({"target": [str(c) for c in t.columns], "system": "unassigned",
                         "is_covariate": False})
    meta["kind"] = None
  values, keep_meta = {}, []
  for row in meta.itertuples(index=False):
    col = t[row.target]
    if not pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
      conv = pd.to_numeric(col, errors="coerce")
      if conv.notna().sum() < col.notna().sum():
        report.add("target", row.target, "non-numeric values")
        continue
      col = conv
    col = col.astype(np.float64)
    if np.isinf(col).any():
      report.add("target", row.target, f"non_finite: {int(np.isinf(col).sum())} infinite "
                 "values")
      continue
    distinct = np.unique(col.dropna())
    if len(distinct) == 0:
      report.add("target", row.target, "all values missing")
      continue
    if len(distinct) == 1:
      report.add("target", row.target, "constant")
      continue
    kind = row.kind if isinstance(row.kind, str) and row.kind else (
        "binary" if len(distinct) == 2 else "continuous")
    if kind == "binary":
      if len(distinct) != 2:
        report.add("target", row.target, f"binary in the dictionary but has {len(distinct)} "
                   "distinct values")
        continue
      col = (col == distinct[1]).astype(np.float64).where(col.notna())
    values[row.target] = col
    keep_meta.append({"target": row.target, "system": str(row.system), "kind": kind,
                      "is_covariate": bool(row.is_covariate)})
  return Phenotypes(pd.DataFrame(values, index=t.index), pd.DataFrame(keep_meta))


def align(ids_features: pd.Index, ids_phenotypes: pd.Index, features_path: str,
          phenotypes_path: str, report: Report) -> list[str]:
  """Participants on both sides (sorted); the others reported."""
  both = sorted(set(ids_features) & set(ids_phenotypes))
  for pid in sorted(set(ids_features) - set(ids_phenotypes)):
    report.add("participant", pid, f"has embeddings but no phenotypes ({phenotypes_path})")
  for pid in sorted(set(ids_phenotypes) - set(ids_features)):
    report.add("participant", pid, f"has phenotypes but no embeddings ({features_path})")
  if not both:
    raise InputError(f"no participant IDs in common between {features_path!r} and "
                     f"{phenotypes_path!r}")
  return both


def systems_table(targets: pd.DataFrame) -> pd.DataFrame:
  """Per feature set × body system × subset: targets tested, significant, and
  gain-significant."""
  tested = targets[targets["status"] == "ok"]
  agg = {"targets": ("target", "size"), "significant": ("significant", "sum"),
         "median_score": ("score", "median")}
  if "gain_significant" in tested:
    agg["gain_significant"] = ("gain_significant", "sum")
  out = tested.groupby(["features", "system", "subset"], sort=False).agg(**agg).reset_index()
  return out
