"""The `features` job: a shard set → engineered gait features per person × task.

  python -m gait_jax.main --config experiments/features.py --workdir W \
      --config.data.shards=DIR

Streams the selected clips (`config.data`: tasks, participants, split) from the
shards in chunks, optionally over worker processes, extracts each clip's
features (`extract.clip_features`, family from the task name) and writes:

  W/features.parquet        one row per participant × task: participant_id (str),
                            task (str), ablation ("none"), n_clips (clips that
                            gave features), then every `extract.FEATURES` column
                            (float64): the median over those clips, NaN where the
                            feature does not apply to the task or was never computed
  W/features_clips.parquet  the same per clip (clip_id, status, reason, features)
  W/features_report.csv     one row per clip that failed or is partial, with the
                            reason (unreadable record, too short, NaN joints, too
                            few gait events, ...)

A bad clip never stops the job: it is reported and the others are processed.
Only per-clip feature rows (~40 floats each) are kept, never the clips.
"""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import ml_collections
import numpy as np
import pandas as pd

from gait_jax.data import records
from gait_jax.data import shards as shards_lib
from gait_jax.features import config as features_config
from gait_jax.features import extract

FEATURES_FILE = "features.parquet"
CLIPS_FILE = "features_clips.parquet"
REPORT_FILE = "features_report.csv"
KEY_COLUMNS = ("participant_id", "task", "ablation", "n_clips")
REPORT_COLUMNS = ("clip_id", "participant_id", "task", "family", "status", "reason")

_WORKER: dict[str, Any] = {}


def _open_source(paths: Sequence[str]):
  # array_record's own source: no Grain (and no JAX) import in worker processes.
  # pylint: disable-next=import-outside-toplevel
  from array_record.python import array_record_data_source
  return array_record_data_source.ArrayRecordDataSource(list(paths))


def _init_worker(paths: Sequence[str], rules: Sequence[str], opts: extract.ClipOptions):
  _WORKER.update(source=_open_source(paths), rules=tuple(rules), opts=opts)


def _read(source, ids: Sequence[int]) -> list[bytes | Exception]:
  """Records of `ids`; an unreadable one becomes its exception."""
  try:
    return list(source.__getitems__([int(i) for i in ids]))
  except Exception:  # pylint: disable=broad-except
    out = []
    for i in ids:
      try:
        out.append(source[int(i)])
      except Exception as e:  # pylint: disable=broad-except
        out.append(e)
    return out


def clip_row(record: bytes | Exception, clip_id: int, participant_id: str, task: str,
             rules: Sequence[str], opts: extract.ClipOptions) -> dict[str, Any]:
  """One clip's output row: identity (from the manifest), family, status, reason
  and every feature; never raises for a bad record or clip."""
  family = extract.family_of(task, rules)
  row = {"clip_id": int(clip_id), "participant_id": str(participant_id), "task": str(task),
         "family": family or ""}
  try:
    if isinstance(record, Exception):
      raise ValueError(f"unreadable record: {record}")
    try:
      clip = records.decode(record)
    except Exception as e:  # pylint: disable=broad-except
      raise ValueError(f"corrupt record: {type(e).__name__}: {e}") from e
    result = extract.clip_features(clip.positions, clip.present, clip.fps, family, opts)
  except Exception as e:  # pylint: disable=broad-except
    # The job must outlive any one clip; the reason goes to the report.
    reason = str(e) if isinstance(e, ValueError) else f"error: {type(e).__name__}: {e}"
    result = extract.ClipResult(dict.fromkeys(extract.FEATURES, np.nan), "failed", reason)
  row.update(status=result.status, reason=result.reason, **result.features)
  return row


def _chunk_rows(chunk: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[dict[str, Any]]:
  ids, pids, tasks = chunk
  recs = _read(_WORKER["source"], ids)
  return [clip_row(r, i, p, t, _WORKER["rules"], _WORKER["opts"])
          for r, i, p, t in zip(recs, ids, pids, tasks)]


def select(manifest: pd.DataFrame, config: ml_collections.ConfigDict) -> pd.DataFrame:
  """The manifest rows the job reads: the data filters, then at most
  `features.max_clips_per_group` clips per participant × task."""
  from gait_jax.data import pipeline  # pylint: disable=import-outside-toplevel
  ids = pipeline.select_clips(manifest, config.data)
  rows = manifest.iloc[ids]
  cap = int(config.features.max_clips_per_group)
  if cap > 0:
    rows = rows[rows.groupby(["participant_id", "task"]).cumcount() < cap]
  return rows


def extract_clips(paths: Sequence[str], rows: pd.DataFrame,
                  config: ml_collections.ConfigDict, log=print) -> Iterator[dict[str, Any]]:
  """Per-clip rows (`clip_row`) for the manifest `rows`, in their order, streamed
  chunk by chunk in this process or over `features.workers` processes."""
  fc = config.features
  rules = tuple(fc.task_families)
  extract.parse_rules(rules)  # a bad rule fails here, once, not per clip
  opts = features_config.clip_options(fc)
  size = max(1, int(fc.chunk_clips))
  n = len(rows)
  chunks = ((rows["clip_id"].to_numpy()[s:s + size],
             rows["participant_id"].astype(str).to_numpy()[s:s + size],
             rows["task"].astype(str).to_numpy()[s:s + size]) for s in range(0, n, size))
  start, done, every = time.perf_counter(), 0, max(1, n // 10)
  workers = int(fc.workers)
  if workers <= 0:
    _init_worker(paths, rules, opts)
    results = map(_chunk_rows, chunks)
    pool = None
  else:
    # forkserver: the parent may hold JAX's threads, which fork would copy badly.
    ctx = multiprocessing.get_context("forkserver" if sys.platform != "win32" else "spawn")
    pool = ctx.Pool(workers, initializer=_init_worker, initargs=(list(paths), rules, opts))
    results = pool.imap(_chunk_rows, chunks)
  try:
    for chunk_rows in results:
      for row in chunk_rows:
        yield row
      before, done = done, done + len(chunk_rows)
      if done // every > before // every or done == n:
        log(f"features: {done}/{n} clips, {time.perf_counter() - start:.1f} s")
  finally:
    if pool is not None:
      pool.terminate()
      pool.join()


def aggregate(clips: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
  """Per participant × task medians over the clips that gave features.

  Args:
    clips: per-clip rows (participant_id, task, status, FEATURES columns).
    groups: participant_id, task pairs to report, including those where every
      clip failed (they get n_clips 0 and NaN features).

  Returns:
    The features table: KEY_COLUMNS then FEATURES, sorted by participant, task.
  """
  good = clips[clips["status"] != "failed"]
  keys = ["participant_id", "task"]
  med = good.groupby(keys)[list(extract.FEATURES)].median()
  counts = good.groupby(keys).size().rename("n_clips")
  table = groups[keys].drop_duplicates().set_index(keys).join(counts).join(med)
  table["n_clips"] = table["n_clips"].fillna(0).astype(np.int64)
  table = table.reset_index().sort_values(keys, kind="stable").reset_index(drop=True)
  table.insert(2, "ablation", "none")
  for col in ("participant_id", "task", "ablation"):
    table[col] = table[col].astype(str)
  for f in extract.FEATURES:
    table[f] = table[f].astype(np.float64)
  return table[list(KEY_COLUMNS) + list(extract.FEATURES)]


def _write_atomic(path: pathlib.Path, write) -> None:
  tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
  write(tmp)
  os.replace(tmp, path)


def run(config: ml_collections.ConfigDict, workdir: str, log=print) -> pd.DataFrame:
  """Runs the job (module docstring); returns the features table."""
  import jax  # pylint: disable=import-outside-toplevel
  if jax.process_index() != 0:  # cheap and numpy-only: one process does it all
    return pd.DataFrame(columns=list(KEY_COLUMNS) + list(extract.FEATURES))
  if not config.data.shards:
    raise ValueError("config.data.shards is not set (--config.data.shards=DIR)")
  manifest, paths = shards_lib.open_shard_set(config.data.shards)
  rows = select(manifest, config)
  out = pathlib.Path(workdir)
  out.mkdir(parents=True, exist_ok=True)
  log(f"features: {len(rows)} clips of {rows['participant_id'].nunique()} participants, "
      f"{rows['task'].nunique()} tasks from {config.data.shards}")
  start = time.perf_counter()
  clips = pd.DataFrame(list(extract_clips(paths, rows, config, log)),
                       columns=list(REPORT_COLUMNS) + list(extract.FEATURES))
  table = aggregate(clips, rows)
  _write_atomic(out / CLIPS_FILE, lambda p: clips.to_parquet(p, index=False))
  report = clips.loc[clips["status"] != "ok", list(REPORT_COLUMNS)]
  _write_atomic(out / REPORT_FILE, lambda p: report.to_csv(p, index=False))
  _write_atomic(out / FEATURES_FILE, lambda p: table.to_parquet(p, index=False))
  wall = time.perf_counter() - start
  status = clips["status"].value_counts().to_dict()
  log(f"features: wrote {len(table)} participant x task rows to {out / FEATURES_FILE} "
      f"({status.get('ok', 0)} clips ok, {status.get('partial', 0)} partial, "
      f"{status.get('failed', 0)} failed: {out / REPORT_FILE}); {wall:.1f} s, "
      f"{1e3 * wall / max(len(clips), 1):.1f} ms/clip")
  return table
