"""Where a run directory keeps each stage's outputs, and reading the probe results.

A run directory is what `launch/demo.sh` writes; every part is optional:

  RUN/cohort/phenotypes.parquet, dictionary.csv, truth.json
  RUN/shards/qc_report.csv, manifest.parquet, clips-*.array_record
  RUN/pretrain*/config.json, metrics.jsonl, checkpoints/      (one or more runs)
  RUN/embed/embeddings.parquet, embed_report.csv
  RUN/features/features.parquet, features_report.csv
  RUN/probe/results/targets.parquet, comparisons.csv, roc.csv; RUN/probe/probe_report.csv
  RUN/probe_<name>/...                                       (one feature set each)
  RUN/probe_tasks/results/targets.parquet, roc.csv           (each task alone + fused)
  RUN/ablation/region_importance.csv, target_importance.parquet
  RUN/headline.csv

The probe results are read from RUN/probe and from every RUN/probe_<name> but
probe_tasks. A feature set's id is "<input>[/<task>][/<ablation>]" (task "fused" and
ablation "none" left out); `input` names the table it came from. A results table
without these columns (older runs) is one feature set, named after its directory
(`feature_set_of`), task "fused", ablation "none"; so are the sets of separate probe
directories that share an input name (each run's default, "embedding").
"""

from __future__ import annotations

import dataclasses
import pathlib

import pandas as pd

TASKS_PROBE = "probe_tasks"
FUSED = "fused"
NO_ABLATION = "none"
# Default feature-set ids of older probe directories (no `features` column).
DIR_FEATURE_SETS = {"probe": "embedding", "probe_embed": "embedding",
                    "probe_embedding": "embedding", "probe_features": "engineered",
                    "probe_engineered": "engineered"}
# The columns an older results table (or roc.csv) lacks, and what they mean there.
SET_COLUMNS = {"features": None, "input": None, "task": FUSED, "ablation": NO_ABLATION}


def feature_set_of(probe_dir: pathlib.Path) -> str:
  """The feature-set id of a probe directory whose tables do not name one."""
  name = probe_dir.name
  return DIR_FEATURE_SETS.get(name, name.removeprefix("probe_"))


@dataclasses.dataclass(frozen=True)
class RunDir:
  """A run directory and the truth file to judge it by (None: none known).

  Attributes:
    root: the run directory.
    truth: `--truth`, else RUN/cohort/truth.json when it exists, else None.
  """
  root: pathlib.Path
  truth: pathlib.Path | None = None

  @classmethod
  def open(cls, root: str | pathlib.Path, truth: str | pathlib.Path | None = None
           ) -> RunDir:
    root = pathlib.Path(root)
    if truth is None and (root / "cohort" / "truth.json").is_file():
      truth = root / "cohort" / "truth.json"
    return cls(root, pathlib.Path(truth) if truth is not None else None)

  def file(self, *parts: str) -> pathlib.Path | None:
    """RUN/parts if that file exists, else None."""
    path = self.root.joinpath(*parts)
    return path if path.is_file() else None

  def relative(self, path: pathlib.Path) -> str:
    """`path` relative to the run directory's parent when inside it (for captions)."""
    try:
      return str(path.relative_to(self.root.parent))
    except ValueError:
      return str(path)

  def pretrain_dirs(self) -> list[pathlib.Path]:
    """Pretraining workdirs: RUN/pretrain* holding config.json or metrics.jsonl."""
    return sorted(p for p in self.root.glob("pretrain*") if p.is_dir() and (
        (p / "config.json").is_file() or (p / "metrics.jsonl").is_file()))

  def probe_dirs(self) -> list[pathlib.Path]:
    """Probe workdirs of whole feature sets: RUN/probe and RUN/probe_* (not
    probe_tasks) that hold results/targets.parquet."""
    dirs = [self.root / "probe"] + sorted(self.root.glob("probe_*"))
    return [p for p in dirs if p.name != TASKS_PROBE
            and (p / "results" / "targets.parquet").is_file()]


def input_of(feature_set: str, task: str, ablation: str) -> str:
  """The input (table) name of a feature-set id "<input>[/<task>][/<ablation>]"."""
  if ablation != NO_ABLATION:
    feature_set = feature_set.removesuffix(f"/{ablation}")
  if task != FUSED:
    feature_set = feature_set.removesuffix(f"/{task}")
  return feature_set


def with_set_columns(frame: pd.DataFrame, probe_dir: pathlib.Path) -> pd.DataFrame:
  """`frame` with features, task, ablation and input filled in where it lacks them:
  features from the directory's name, input from the feature-set id."""
  frame = frame.copy()
  for column in ("features", "task", "ablation"):
    if column not in frame.columns:
      default = SET_COLUMNS[column]
      frame[column] = feature_set_of(probe_dir) if default is None else default
  if "input" not in frame.columns:
    frame["input"] = [input_of(str(f), str(t), str(a)) for f, t, a in
                      zip(frame["features"], frame["task"], frame["ablation"])]
  return frame


def read_probe(dirs: list[pathlib.Path], name: str
               ) -> tuple[pd.DataFrame | None, list[pathlib.Path]]:
  """(the concatenated `results/<name>` of the probe dirs that have it, the files
  read); (None, []) when none has it. Parquet or CSV by the name's suffix."""
  frames, files = [], []
  for d in dirs:
    path = d / "results" / name
    if not path.is_file():
      continue
    frame = pd.read_parquet(path) if name.endswith(".parquet") else pd.read_csv(path)
    frames.append((d, with_set_columns(frame, d)))
    files.append(path)
  if not frames:
    return None, []
  seen: dict[str, int] = {}
  for _, frame in frames:
    for f in pd.unique(frame["input"]):
      seen[f] = seen.get(f, 0) + 1
  out = []
  for d, frame in frames:
    # Separate probe runs that named their input alike (each the default
    # "embedding"): each is named after its directory instead.
    for old in [f for f in pd.unique(frame["input"]) if seen[f] > 1]:
      rows = frame["input"] == old
      new = feature_set_of(d)
      frame.loc[rows, "features"] = [new + str(f).removeprefix(old)
                                     for f in frame.loc[rows, "features"]]
      frame.loc[rows, "input"] = new
    out.append(frame)
  return pd.concat(out, ignore_index=True), files
