"""Weights & Biases for every job: one W&B run per job, grouped by experiment.

  with tracking.start(config, workdir, job_type="embed") as tracker:
    tracker.log({"clips_per_s": 41.0}, step=3)
    tracker.summary({"clips": 1487, "seconds": 36.2})
    tracker.table("excluded", counts)  # aggregates only: no participant_id column
    tracker.artifact("probe_tables", "tables", workdir / "tables")

The run lives in `WORKDIR/wandb` (dir=workdir). Its mode comes from the
`WANDB_MODE` environment variable if set, else `config.wandb.mode`: "offline" by
default (no network; `wandb sync WORKDIR/wandb/offline-run-*` uploads later),
"online" (without an API key: offline, with one line on stderr), or "disabled".
Only process 0 (`jax.process_index()`) logs; other processes, and the disabled
mode, get a Tracker whose methods do nothing.

A job's run is found by its group and job type: group = `config.wandb.group`, or
the name of the workdir's parent directory (runs/demo/embed and runs/demo/probe
are both in group "demo"; a sweep's runs under `--root R` are in group R's
name); job_type is the stage ("pretrain", "embed", "features", "probe",
"ablation", "report"); name = `config.wandb.name` or the workdir's name. The run
id is kept in `WORKDIR/wandb_run_id`, so a re-run in the same workdir resumes
the same W&B run.

Nothing per participant leaves the machine: `table` refuses a frame with a
`participant_id` column, `artifact` a Parquet or CSV file that has one, and a
list of participant ids in the config (`data.participants`) is logged as its
length only.
"""

from __future__ import annotations

import os
import pathlib
import re
import sys
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import ml_collections
import pandas as pd

MODES = ("online", "offline", "disabled")
JOB_TYPES = ("pretrain", "embed", "features", "probe", "ablation", "report")
RUN_ID_FILE = "wandb_run_id"
# Columns that identify a person; a table or tabular artifact holding one is refused.
PARTICIPANT_COLUMNS = ("participant_id",)
_TABULAR = {".parquet": "parquet", ".csv": ",", ".tsv": "\t"}
# Config fields that may list participant ids; a list is logged as "<N ids>".
PARTICIPANT_FIELDS = ("participants", "participant_ids")


def wandb_config() -> ml_collections.ConfigDict:
  """The `config.wandb` block every job config holds; see the module docstring."""
  c = ml_collections.ConfigDict()
  c.project = "gait_jax"
  c.entity = ""  # "" = the API key's default entity
  c.group = ""  # "" = the name of the workdir's parent directory
  c.name = ""  # "" = the workdir's name
  c.tags = ()
  # "offline" (default: no network), "online" (offline without an API key) or
  # "disabled". WANDB_MODE in the environment wins.
  c.mode = "offline"
  return c


def _settings(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """config.wandb over the defaults (a config without the block gets them all)."""
  settings = wandb_config()
  if "wandb" in config:
    settings.update(config.wandb.to_dict())
  return settings


def _mode(requested: str) -> str:
  mode = {"dryrun": "offline", "run": "online"}.get(requested, requested)
  if mode not in MODES:
    raise ValueError(f"W&B mode {requested!r}; expected one of {MODES} "
                     "(config.wandb.mode or WANDB_MODE)")
  return mode


def _scrubbed(value: Any) -> Any:
  """A config dict with every list of participant ids replaced by its length."""
  if isinstance(value, dict):
    return {k: (f"<{len(v)} ids>" if k in PARTICIPANT_FIELDS
                and isinstance(v, (list, tuple)) else _scrubbed(v))
            for k, v in value.items()}
  return value


def _run_id(workdir: pathlib.Path) -> str:
  id_file = workdir / RUN_ID_FILE
  if id_file.is_file():
    return id_file.read_text().strip()
  # Under a W&B sweep agent the run id is the agent's (wandb.init would ignore ours).
  run_id = os.environ.get("WANDB_RUN_ID") if "WANDB_SWEEP_ID" in os.environ else None
  run_id = run_id or uuid.uuid4().hex[:12]
  id_file.write_text(run_id)
  return run_id


def check_no_participants(columns: Iterable[Any], what: str) -> None:
  """Raises ValueError naming the column when `columns` include a participant
  identifier (PARTICIPANT_COLUMNS); `what` names the table or file."""
  found = [c for c in PARTICIPANT_COLUMNS if c in set(map(str, columns))]
  if found:
    raise ValueError(f"{what} has a {found[0]!r} column: per-participant data does not "
                     "go to W&B; log counts or summaries instead")


def _check_file(path: pathlib.Path) -> None:
  """A Parquet/CSV/TSV file with a participant column is refused (other formats are
  the caller's responsibility)."""
  kind = _TABULAR.get(path.suffix.lower())
  if kind is None:
    return
  if kind == "parquet":
    import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
    columns = pq.read_schema(path).names
  else:
    with open(path, encoding="utf-8", errors="replace") as f:
      columns = [c.strip().strip('"') for c in f.readline().rstrip("\n").split(kind)]
  check_no_participants(columns, f"artifact file {path}")


class Tracker:
  """One job's W&B run, or nothing (`run` None: every method returns at once).

  Use `start` to make one; usable as a context manager (closes on exit, marking
  the run failed when the block raised).
  """

  def __init__(self, run: Any = None):
    self._run = run

  @property
  def enabled(self) -> bool:
    """Whether anything is logged (process 0 and a mode other than "disabled")."""
    return self._run is not None

  @property
  def run_id(self) -> str | None:
    """The W&B run id (also in workdir/wandb_run_id); None when disabled."""
    return None if self._run is None else self._run.id

  def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Logs scalars (or W&B media) at `step` (None: W&B's next step)."""
    if self._run is not None:
      self._run.log(dict(metrics), step=None if step is None else int(step))

  def summary(self, values: Mapping[str, Any]) -> None:
    """Updates the run's summary (final counts, timings, headline numbers)."""
    if self._run is not None:
      self._run.summary.update(dict(values))

  def table(self, key: str, frame: pd.DataFrame) -> None:
    """Logs `frame` (counts, summaries) as a wandb.Table under `key`, at W&B's next
    step (as `log` without a step: after it, a `log` with a lower step is dropped).

    Raises:
      ValueError: the frame (columns or index) has a `participant_id` column;
        checked whether or not anything is logged, so that tests catch it.
    """
    check_no_participants(list(frame.columns) + list(frame.index.names),
                          f"table {key!r}")
    if self._run is not None:
      import wandb  # pylint: disable=import-outside-toplevel
      self._run.log({key: wandb.Table(dataframe=frame.reset_index(drop=True))})

  def image(self, key: str, path: str | os.PathLike, step: int | None = None) -> None:
    """Logs the image file at `path` under `key`."""
    if self._run is not None:
      import wandb  # pylint: disable=import-outside-toplevel
      self._run.log({key: wandb.Image(str(path))},
                    step=None if step is None else int(step))

  def artifact(self, name: str, type: str, path: str | os.PathLike) -> None:  # pylint: disable=redefined-builtin
    """Logs a file or a directory as a W&B artifact `name` of `type`.

    Raises:
      ValueError: a Parquet/CSV/TSV file (of the directory) has a
        `participant_id` column (checked even when nothing is logged).
      FileNotFoundError: `path` does not exist.
    """
    path = pathlib.Path(path)
    if not path.exists():
      raise FileNotFoundError(f"artifact {name!r}: no file or directory {path}")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
      _check_file(f)
    if self._run is None:
      return
    import wandb  # pylint: disable=import-outside-toplevel
    art = wandb.Artifact(name, type=type)
    if path.is_dir():
      art.add_dir(str(path))
    else:
      art.add_file(str(path))
    self._run.log_artifact(art)

  def close(self, exit_code: int | None = None) -> None:
    """Finishes the run (once; later calls do nothing)."""
    if self._run is not None:
      run, self._run = self._run, None
      run.finish(exit_code=exit_code)

  def __enter__(self) -> Tracker:
    return self

  def __exit__(self, exc_type, exc, tb) -> None:
    self.close(exit_code=None if exc_type is None else 1)


def start(config: ml_collections.ConfigDict, workdir: str | os.PathLike,
          job_type: str) -> Tracker:
  """The W&B run of one job in `workdir` (see the module docstring).

  Args:
    config: the job's config; `config.wandb` (`wandb_config()`) if it has one,
      else the defaults. The whole config is the run's config (participant id
      lists as their length).
    workdir: the job's work directory (created if needed); the run's files go
      to workdir/wandb and its id to workdir/wandb_run_id.
    job_type: the stage, one of JOB_TYPES.

  Returns:
    A Tracker; one that does nothing on processes other than 0 and in mode
    "disabled".
  """
  if job_type not in JOB_TYPES:
    raise ValueError(f"job_type {job_type!r}; expected one of {JOB_TYPES}")
  settings = _settings(config)
  mode = _mode(os.environ.get("WANDB_MODE") or str(settings.mode))
  if jax.process_index() != 0 or mode == "disabled":
    return Tracker()
  import wandb  # pylint: disable=import-outside-toplevel
  if mode == "online" and not wandb.login(prompt=False, verify=False):
    print("W&B: no API key, logging offline (`wandb sync` uploads later)", file=sys.stderr)
    mode = "offline"
  path = pathlib.Path(os.path.abspath(workdir))
  path.mkdir(parents=True, exist_ok=True)
  run = wandb.init(
      project=settings.project, entity=settings.entity or None,
      group=settings.group or path.parent.name or None, job_type=job_type,
      name=settings.name or path.name, tags=[str(t) for t in settings.tags],
      config=_scrubbed(config.to_dict()), dir=str(path), id=_run_id(path), resume="allow",
      mode=mode, reinit="create_new")
  return Tracker(run)


def reason_kind(reason: str) -> str:
  """The kind of an exclusion reason, without its specifics (numbers, names):
  the first "; "-separated issue, up to its first ":" or " (", digits → "N".

  >>> reason_kind("too few gait events: 2 heel strikes; NaN: cadence")
  'too few gait events'
  """
  first = str(reason).split(";")[0]
  kind = re.split(r":| \(", first, maxsplit=1)[0]
  return re.sub(r"\d+", "N", kind).strip() or "unknown"


def slug(text: str) -> str:
  """A W&B-key-friendly form of `text`: lower case, runs of other characters → "_"."""
  return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_") or "unknown"
