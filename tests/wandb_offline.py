"""Reads an offline W&B run back from its files, for tests of what a job logged."""

from __future__ import annotations

import json
import pathlib
import struct
import time


def read_offline_run(workdir: pathlib.Path) -> list:
  """The records (wandb_internal_pb2.Record) of workdir's only offline run.

  An offline run keeps everything in `wandb/offline-run-*/run-<id>.wandb`: a
  LevelDB-style log (":W&B" + magic + version, then 32 KiB blocks of records
  with a 7-byte header: crc32, length, type FULL/FIRST/MIDDLE/LAST), each record a
  serialized protobuf. `run.finish()` can return before W&B's service process has
  flushed the file, so this waits (up to 30 s) for the run's "exit" record.
  """
  runs = list((workdir / "wandb").glob("offline-run-*"))
  assert len(runs) == 1, runs
  files = list(runs[0].glob("run-*.wandb"))
  assert len(files) == 1, files
  deadline = time.monotonic() + 30
  while True:
    records = parse_records(files[0].read_bytes())
    if any(r.WhichOneof("record_type") == "exit" for r in records):
      return records
    assert time.monotonic() < deadline, f"{files[0]} has no exit record"
    time.sleep(0.1)


def parse_records(data: bytes) -> list:
  from wandb.proto import wandb_internal_pb2  # pylint: disable=import-outside-toplevel
  assert data[:4] == b":W&B"
  block, pos, chunk, records = 32768, 7, b"", []
  while pos + 7 <= len(data):
    left = block - pos % block
    if left < 7:  # a block's tail too short for a header is padding
      pos += left
      continue
    _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
    if kind == 0:  # zero padding at the end of a block
      pos += left
      continue
    if pos + 7 + length > len(data):  # a record still being written
      break
    chunk += data[pos + 7:pos + 7 + length]
    pos += 7 + length
    if kind in (1, 4):  # FULL or LAST
      record = wandb_internal_pb2.Record()
      record.ParseFromString(chunk)
      records.append(record)
      chunk = b""
  return records


def of_type(records: list, kind: str) -> list:
  return [getattr(r, kind) for r in records if r.WhichOneof("record_type") == kind]


def items(items) -> dict[str, str]:
  """History/summary/config items → {key: JSON value}; a key is either `key` or
  the dotted `nested_key`."""
  return {i.key or ".".join(i.nested_key): i.value_json for i in items}


def run_info(records: list):
  """The run's RunRecord (group, job_type, display_name, config, ...)."""
  return of_type(records, "run")[0]


def summary(records: list) -> dict[str, object]:
  """The run's final summary: {key: decoded JSON value}."""
  out = {}
  for update in of_type(records, "summary"):
    out.update({k: json.loads(v) for k, v in items(update.update).items()})
  return out


def logged_tables(workdir: pathlib.Path, key: str) -> list[dict]:
  """The wandb.Table files logged under `key` ({"columns": [...], "data": [...]})."""
  return [json.loads(p.read_text()) for p in sorted(
      (workdir / "wandb").glob(f"offline-run-*/files/media/table/{key}_*.table.json"))]


def files_mention(workdir: pathlib.Path, texts) -> list[str]:
  """Which of `texts` occur in any file of workdir's W&B runs (logs included)."""
  found = set()
  for path in (workdir / "wandb").glob("offline-run-*/**/*"):
    if path.is_file():
      data = path.read_bytes()
      found |= {t for t in texts if t.encode() in data}
  return sorted(found)
