"""A shard set: ArrayRecord files of clip records plus `manifest.parquet`.

  SHARDS_DIR/
    clips-00000.array_record ...   clip records (`gait_jax.data.records`)
    manifest.parquet               one row per clip, in global record order
    qc_report.csv                  one row per input file (written by data_tools.prepare)

`manifest.parquet` is the commit point: it is written last, by an atomic rename,
after every shard it lists is complete, and it carries each shard's record count
and byte size. A directory without it is not a shard set; a shard whose size
disagrees with the manifest is reported as corrupt. Clip ids are global record
indices: shards in manifest order, records in shard order.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from array_record.python.array_record_module import ArrayRecordWriter

MANIFEST = "manifest.parquet"
QC_REPORT = "qc_report.csv"
WRITER_OPTIONS = "group_size:1,zstd:1"  # group_size 1: cheap random access for Grain
_META_KEY = b"gait_jax"

MANIFEST_COLUMNS = ("clip_id", "participant_id", "task", "session", "source",
                    "start_frame", "frames", "fps", "shard", "index")


class ShardSetError(RuntimeError):
  """A shard directory that is missing, incomplete or inconsistent."""


class ShardSetWriter:
  """Streams encoded clips into shards in a staging directory, then commits.

  Usage: `add()` every record in a deterministic order, then `commit(extra_files)`.
  Until commit, SHARDS_DIR keeps its previous complete contents (if any); a crash
  leaves at most a `.staging-*` directory that the next run deletes.
  """

  def __init__(self, out_dir: str | os.PathLike, clips_per_shard: int = 256):
    self.out_dir = pathlib.Path(out_dir)
    self.out_dir.mkdir(parents=True, exist_ok=True)
    for stale in self.out_dir.glob(".staging-*"):
      shutil.rmtree(stale, ignore_errors=True)
    self.staging = self.out_dir / f".staging-{uuid.uuid4().hex}"
    self.staging.mkdir()
    self.clips_per_shard = clips_per_shard
    self.rows: list[dict] = []
    self.shards: list[dict] = []
    self._writer: ArrayRecordWriter | None = None

  def add(self, record: bytes, row: dict) -> None:
    """Appends one encoded clip; `row` holds its manifest fields except the location."""
    if self._writer is None or self.shards[-1]["records"] == self.clips_per_shard:
      self._roll()
    self._writer.write(record)
    shard = self.shards[-1]
    self.rows.append({**row, "clip_id": len(self.rows), "shard": shard["name"],
                      "index": shard["records"]})
    shard["records"] += 1

  def _roll(self) -> None:
    if self._writer is not None:
      self._writer.close()
    name = f"clips-{len(self.shards):05d}.array_record"
    self._writer = ArrayRecordWriter(str(self.staging / name), WRITER_OPTIONS)
    self.shards.append({"name": name, "records": 0})

  def commit(self, extra_files: dict[str, bytes] | None = None,
             metadata: dict | None = None) -> pd.DataFrame:
    """Moves the shards into place and writes the manifest last; returns it."""
    if self._writer is not None:
      self._writer.close()
      self._writer = None
    for shard in self.shards:
      shard["bytes"] = (self.staging / shard["name"]).stat().st_size
    manifest = pd.DataFrame(self.rows, columns=list(MANIFEST_COLUMNS)
                            + sorted({k for r in self.rows for k in r} - set(MANIFEST_COLUMNS)))
    table = pa.Table.from_pandas(manifest, preserve_index=False)
    meta = {"shards": self.shards, **(metadata or {})}
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), _META_KEY: json.dumps(meta, sort_keys=True)})
    pq.write_table(table, self.staging / MANIFEST)
    for name, content in (extra_files or {}).items():
      (self.staging / name).write_bytes(content)

    # From here until the final rename SHARDS_DIR has no manifest, so a crash
    # leaves a directory that no reader mistakes for a complete shard set.
    (self.out_dir / MANIFEST).unlink(missing_ok=True)
    for old in self.out_dir.glob("clips-*.array_record"):
      old.unlink()
    for path in self.staging.iterdir():
      if path.name != MANIFEST:
        os.replace(path, self.out_dir / path.name)
    os.replace(self.staging / MANIFEST, self.out_dir / MANIFEST)
    self.staging.rmdir()
    return manifest

  def abort(self) -> None:
    if self._writer is not None:
      self._writer.close()
    shutil.rmtree(self.staging, ignore_errors=True)


def read_metadata(shards_dir: str | os.PathLike) -> dict:
  """The metadata the writer stored with the manifest (shards, options, fingerprint)."""
  path = pathlib.Path(shards_dir) / MANIFEST
  if not path.is_file():
    raise ShardSetError(f"{shards_dir}: no {MANIFEST} — not a prepared shard set, or "
                        "its preparation did not finish; run `python -m data_tools.prepare`")
  raw = pq.read_schema(path).metadata or {}
  if _META_KEY not in raw:
    raise ShardSetError(f"{path}: written by another tool (no gait_jax metadata)")
  return json.loads(raw[_META_KEY])


def open_shard_set(shards_dir: str | os.PathLike) -> tuple[pd.DataFrame, list[str]]:
  """Validates a shard set; returns its manifest and shard paths in record order.

  Raises ShardSetError naming the file when a shard is missing or its size differs
  from what the manifest recorded (a partial copy, a crashed writer).
  """
  shards_dir = pathlib.Path(shards_dir)
  meta = read_metadata(shards_dir)
  manifest = pd.read_parquet(shards_dir / MANIFEST)
  paths = []
  for shard in meta["shards"]:
    path = shards_dir / shard["name"]
    if not path.is_file():
      raise ShardSetError(f"{path}: listed in the manifest but missing")
    if path.stat().st_size != shard["bytes"]:
      raise ShardSetError(f"{path}: {path.stat().st_size} bytes, the manifest says "
                          f"{shard['bytes']} — corrupt or partially copied")
    paths.append(str(path))
  expected = np.arange(len(manifest))
  if not np.array_equal(manifest["clip_id"].to_numpy(), expected):
    raise ShardSetError(f"{shards_dir / MANIFEST}: clip ids are not 0..N-1 in order")
  if sum(s["records"] for s in meta["shards"]) != len(manifest):
    raise ShardSetError(f"{shards_dir / MANIFEST}: record counts disagree with its rows")
  return manifest, paths
