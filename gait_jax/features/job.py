"""The `features` job: a shard set → engineered gait features per person × task.

  python -m gait_jax.main --config experiments/features.py --workdir W \
      --config.data.shards=DIR

Reads the clips `config.data` selects (tasks, participants, split,
max_clips_per_group) through the Grain pipeline (`pipeline.make_clip_dataset`, in
clip-id order). Each clip's features (`extract.clip_features`, family from the task
name) are computed by a Grain map, so `data.worker_count` worker processes share
the work; the main process only collects the rows. The features see the record as
stored — metres in the camera frame, NaN gaps kept — not the model's example: the
data config's joints, crop_frames, center, scale and augmentation do not apply
here (nor batch_size; seed and shuffle have nothing to order). Writes:

  W/features.parquet        one row per participant × task: participant_id (str),
                            task (str), ablation ("none"), n_clips (clips that
                            gave features), then every `extract.FEATURES` column
                            (float64; the task families' features, then body
                            size: segment lengths and widths in metres): the
                            median over those clips, NaN where the feature does
                            not apply to the task or was never computed
  W/features_clips.parquet  the same per clip (clip_id, status, reason, features)
  W/features_report.csv     one row per clip that failed or is partial, with the
                            reason (unreadable record, too short, NaN joints, too
                            few gait events, ...)

A bad clip never stops the job: it is reported and the others are processed.
Only per-clip feature rows (~40 floats each) are kept, never the clips. Counts,
timings and the exclusions counted per status and kind of reason (a table;
nothing per participant) go to the job's W&B run (`tracking`, job_type
"features", in W/wandb).
"""

from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import grain
import ml_collections
import numpy as np
import pandas as pd

from gait_jax import progress, schema, tracking
from gait_jax.errors import InputError
from gait_jax.data import pipeline
from gait_jax.data import records
from gait_jax.features import config as features_config
from gait_jax.features import extract

FEATURES_FILE = "features.parquet"
CLIPS_FILE = "features_clips.parquet"
REPORT_FILE = "features_report.csv"
# The schema table's key and metadata columns (gait_jax.schema) of this job.
KEY_COLUMNS = schema.KEY_COLUMNS + ("n_clips",)
REPORT_COLUMNS = ("clip_id", "participant_id", "task", "family", "status", "reason")


def clip_row(record: bytes, error: str, clip_id: int, participant_id: str, task: str,
             rules: Sequence[str], opts: extract.ClipOptions) -> dict[str, Any]:
  """One clip's output row: identity (from the manifest), family, status, reason
  and every feature; never raises for a bad record or clip.

  Args:
    record: the clip record's bytes (`records`): positions f32[T, 32, 3] metres in
      the camera frame and confidence f32[T, 32], as stored.
    error: why the record could not be read ("" when it could).
  """
  family = extract.family_of(task, rules)
  row = {"clip_id": int(clip_id), "participant_id": str(participant_id), "task": str(task),
         "family": family or ""}
  try:
    if error:
      raise ValueError(f"unreadable record: {error}")
    try:
      clip = records.decode(record)
    except Exception as e:  # pylint: disable=broad-except
      raise ValueError(f"corrupt record: {type(e).__name__}: {e}") from e
    result = extract.clip_features(clip.positions, clip.present, clip.fps, family, opts,
                                   confidence=clip.confidence)
  except Exception as e:  # pylint: disable=broad-except
    # The job must outlive any one clip; the reason goes to the report.
    reason = str(e) if isinstance(e, ValueError) else f"error: {type(e).__name__}: {e}"
    result = extract.ClipResult(dict.fromkeys(extract.FEATURES, np.nan), "failed", reason)
  row.update(status=result.status, reason=result.reason, **result.features)
  return row


class ClipFeatures(grain.transforms.Map):
  """A `pipeline.make_clip_dataset` element → its `clip_row` (runs in Grain's workers)."""

  def __init__(self, rules: Sequence[str], opts: extract.ClipOptions):
    self.rules = tuple(rules)
    self.opts = opts

  def map(self, element: dict[str, Any]) -> dict[str, Any]:
    return clip_row(element["record"], element["error"], element["clip_id"],
                    element["participant_id"], element["task"], self.rules, self.opts)


def extract_clips(config: ml_collections.ConfigDict) -> Iterator[dict[str, Any]]:
  """Per-clip rows (`clip_row`) of the clips `config.data` selects, in clip-id
  order, with a progress bar over clips."""
  rules = tuple(config.features.task_families)
  extract.parse_rules(rules)  # a bad rule fails here, once, not per clip
  clips = pipeline.make_clip_dataset(config.data)
  ds = clips.map(ClipFeatures(rules, features_config.clip_options(config.features)))
  iterator = iter(pipeline.to_iter_dataset(ds, config.data))
  try:
    yield from progress.bar(iterator, total=len(clips), desc="features", unit="clip")
  finally:
    close = getattr(iterator, "close", None)  # stops the worker processes, if any
    if close is not None:
      close()


def aggregate(clips: pd.DataFrame) -> pd.DataFrame:
  """Per participant × task medians over the clips that gave features.

  Args:
    clips: per-clip rows (participant_id, task, status, FEATURES columns), one for
      every clip read, so a participant × task whose clips all failed is reported
      too (n_clips 0, NaN features).

  Returns:
    The features table: KEY_COLUMNS then FEATURES, sorted by participant, task.
  """
  good = clips[clips["status"] != "failed"]
  keys = ["participant_id", "task"]
  med = good.groupby(keys)[list(extract.FEATURES)].median()
  counts = good.groupby(keys).size().rename("n_clips")
  table = clips[keys].drop_duplicates().set_index(keys).join(counts).join(med)
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


def exclusion_counts(clips: pd.DataFrame) -> pd.DataFrame:
  """Per-clip rows → counts of the clips not "ok" per status and kind of reason
  (`tracking.reason_kind`), nothing per participant: status, reason, clips."""
  bad = clips[clips["status"] != "ok"]
  frame = pd.DataFrame({"status": bad["status"].astype(str),
                        "reason": bad["reason"].map(tracking.reason_kind)})
  counts = frame.groupby(["status", "reason"], sort=True).size().rename("clips")
  return counts.reset_index().astype({"clips": int})


def run(config: ml_collections.ConfigDict, workdir: str, log=print) -> pd.DataFrame:
  """Runs the job (module docstring); returns the features table."""
  import jax  # pylint: disable=import-outside-toplevel
  if jax.process_index() != 0:  # numpy on the host: one process does it all
    return pd.DataFrame(columns=list(KEY_COLUMNS) + list(extract.FEATURES))
  if not config.data.shards:
    raise InputError("config.data.shards is not set (--config.data.shards=DIR)")
  with tracking.start(config, workdir, "features") as tracker:
    return _run(config, pathlib.Path(workdir), tracker, log)


def _run(config: ml_collections.ConfigDict, out: pathlib.Path, tracker: tracking.Tracker,
         log) -> pd.DataFrame:
  out.mkdir(parents=True, exist_ok=True)
  log(f"features: reading {config.data.shards} with {config.data.worker_count} "
      "worker processes")
  start = time.perf_counter()
  clips = pd.DataFrame(list(extract_clips(config)),
                       columns=list(REPORT_COLUMNS) + list(extract.FEATURES))
  table = aggregate(clips)
  _write_atomic(out / CLIPS_FILE, lambda p: clips.to_parquet(p, index=False))
  report = clips.loc[clips["status"] != "ok", list(REPORT_COLUMNS)]
  _write_atomic(out / REPORT_FILE, lambda p: report.to_csv(p, index=False))
  _write_atomic(out / FEATURES_FILE, lambda p: schema.write_table(
      table, extract.FEATURES, p, meta=("n_clips",)))
  wall = time.perf_counter() - start
  status = clips["status"].value_counts().to_dict()
  log(f"features: wrote {len(table)} participant x task rows to {out / FEATURES_FILE} "
      f"({status.get('ok', 0)} clips ok, {status.get('partial', 0)} partial, "
      f"{status.get('failed', 0)} failed: {out / REPORT_FILE}); {wall:.1f} s, "
      f"{1e3 * wall / max(len(clips), 1):.1f} ms/clip")
  excluded = exclusion_counts(clips)
  tracker.summary({
      "clips": len(clips), "rows": len(table), "groups": len(table),
      "groups_with_features": int((table["n_clips"] > 0).sum()),
      **{f"clips_{k}": int(status.get(k, 0)) for k in ("ok", "partial", "failed")},
      "seconds": wall,
      "clips_per_s": len(clips) / max(wall, 1e-9),
      **{f"excluded/{s}/{tracking.slug(r)}": int(n)
         for s, r, n in excluded.itertuples(index=False)}})
  tracker.table("excluded", excluded)
  return table
