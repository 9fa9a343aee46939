"""Raw recordings → QC'd canonical clips in ArrayRecord shards.

  python -m data_tools.prepare --input 'cohort/recordings/*.npz' --format npz \
      --out shards/ [--clip-frames 900] [--clip-stride 450] [--fps 30] [--workers 2]

Every input file gets one row in SHARDS_DIR/qc_report.csv (status ok or excluded,
with the reason); every clip one row in SHARDS_DIR/manifest.parquet. Files are
processed in sorted order and the output is a pure function of the inputs and
options, so a re-run rebuilds the same bytes — or, when nothing changed, does
nothing. Formats and the file extensions searched for come from the reader
registry (`data_tools.readers.formats()`); a format's dependency check runs once,
before any file is read. A progress bar (per file) shows on a terminal.

Exit status: 0 when at least one clip was prepared, 1 when none could be (the
message says why), 2 for a usage error (a missing input, an unknown format, a
format whose software is not installed, a bad option): one line on stderr, no
traceback.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import glob
import hashlib
import io
import json
import multiprocessing
import os
import pathlib
import re
import sys
from collections.abc import Iterator, Sequence

import pandas as pd

from data_tools import qc, readers
from data_tools.readers import ReadOptions
from data_tools.recording import Excluded
from gait_jax import progress, skeleton
from gait_jax.data import records, shards
from gait_jax.errors import InputError, cli

PREPARE_VERSION = 1
QC_COLUMNS = ("file", "participant", "task", "session", "status", "reason", "detail",
              "frames_in", "frames_out", "clips", "notes")


def find_inputs(patterns: Sequence[str], fmt: str) -> list[str]:
  """Files named by paths, directories (searched recursively) or globs, sorted."""
  exts = readers.get_format(fmt).extensions
  found = set()
  for pattern in patterns:
    path = pathlib.Path(pattern)
    if path.is_dir():
      matches = [p for p in path.rglob("*") if p.is_file() and p.name.endswith(exts)]
    elif glob.has_magic(pattern):
      matches = [pathlib.Path(p) for p in glob.glob(pattern, recursive=True)]
    elif path.exists():
      matches = [path]
    else:
      raise FileNotFoundError(f"--input {pattern}: no such file or directory")
    # A CSV's sidecar (walk.csv.json) is metadata, not a recording.
    found.update(str(p) for p in matches
                 if p.is_file() and not p.name.endswith(".csv.json"))
  return sorted(found)


def _code_digest() -> str:
  """The source of every module that shapes the output, so a code change rebuilds."""
  h = hashlib.sha256()
  for module in (qc, records, skeleton, sys.modules[__name__]):
    h.update(pathlib.Path(module.__file__).read_bytes())
  for path in sorted(pathlib.Path(qc.__file__).parent.joinpath("readers").glob("*.py")):
    h.update(path.read_bytes())
  return h.hexdigest()


def fingerprint(files: Sequence[str], fmt: str, read_opts: ReadOptions,
                qc_opts: qc.QCOptions, clips_per_shard: int) -> str:
  """Identifies a preparation: inputs (path, size, mtime), options and code."""
  h = hashlib.sha256()
  h.update(json.dumps({"code": _code_digest(),
      "version": PREPARE_VERSION, "record_version": records.VERSION, "format": fmt,
      "read": dataclasses.asdict(read_opts), "qc": dataclasses.asdict(qc_opts),
      "clips_per_shard": clips_per_shard}, sort_keys=True).encode())
  for f in files:
    st = os.stat(f)
    h.update(f"{os.path.abspath(f)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
  return h.hexdigest()


@dataclasses.dataclass
class FileResult:
  qc_row: dict
  clips: list[tuple[bytes, dict]]


def process_file(path: str, fmt: str, read_opts: ReadOptions,
                 qc_opts: qc.QCOptions) -> FileResult:
  """Reads, QCs and encodes one file. Never raises for a bad file."""
  row = {"file": path, "participant": read_opts.participant_id or "",
         "task": read_opts.task or "", "session": read_opts.session or "",
         "status": "excluded", "reason": "", "detail": "", "frames_in": 0,
         "frames_out": 0, "clips": 0, "notes": ""}
  try:
    rec = readers.get_reader(fmt)(path, read_opts)
    if read_opts.id_pattern:
      _identity_from_name(rec, path, read_opts.id_pattern)
    row.update(participant=rec.participant_id, task=rec.task, session=rec.session,
               frames_in=rec.num_frames)
    prepared = qc.prepare_recording(rec, qc_opts)
  except Excluded as e:
    row.update(reason=e.reason, detail=e.detail)
    return FileResult(row, [])
  except MemoryError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    # A reader bug or an unforeseen malformation must not sink the other files;
    # it is reported with its type so that it can be fixed.
    row.update(reason="unreadable", detail=f"unexpected {type(e).__name__}: {e}")
    return FileResult(row, [])
  row.update(status="ok", frames_out=prepared.frames_out, clips=len(prepared.clips),
             notes="; ".join(prepared.notes + [f"{k}={v}" for k, v in sorted(rec.meta.items())
                                               if k.startswith("followed") or k.startswith("bodies")]))
  clips = []
  for clip in prepared.clips:
    manifest_row = {"participant_id": clip.participant_id, "task": clip.task,
                    "session": clip.session, "source": clip.source,
                    "start_frame": clip.start_frame, "frames": clip.num_frames,
                    "fps": clip.fps, **{f"meta_{k}": v for k, v in clip.meta.items()}}
    clips.append((records.encode(clip), manifest_row))
  return FileResult(row, clips)


def _identity_from_name(rec, path: str, pattern: str) -> None:
  stem = pathlib.Path(path).name.split(".")[0]
  match = re.fullmatch(pattern, stem)
  if match is None:
    raise Excluded("bad_metadata", f"file name {stem!r} does not match --id-pattern {pattern!r}")
  groups = match.groupdict()
  rec.participant_id = groups.get("participant") or rec.participant_id
  rec.task = groups.get("task") or rec.task
  rec.session = groups.get("session") or rec.session


def _worker(args) -> FileResult:
  return process_file(*args)


def _results(files, fmt, read_opts, qc_opts, workers) -> Iterator[FileResult]:
  jobs = [(f, fmt, read_opts, qc_opts) for f in files]
  if workers <= 1:
    yield from map(_worker, jobs)
    return
  # spawn, not fork: the parent may hold threads (array_record's writer).
  with multiprocessing.get_context("spawn").Pool(workers) as pool:
    yield from pool.imap(_worker, jobs, chunksize=1)


def prepare(inputs: Sequence[str], fmt: str, out_dir: str, read_opts: ReadOptions,
            qc_opts: qc.QCOptions, *, workers: int = 1, clips_per_shard: int = 256,
            force: bool = False, log=print) -> tuple[pd.DataFrame, pd.DataFrame]:
  """Prepares a shard set; returns (qc_report, manifest). See the module docstring."""
  format_spec = readers.get_format(fmt)
  format_spec.check_available()  # fail once, clearly, rather than once per file
  files = find_inputs(inputs, fmt)
  if not files:
    raise FileNotFoundError(f"no {fmt} files ({', '.join(format_spec.extensions)}) under "
                            f"{', '.join(inputs)}")
  fp = fingerprint(files, fmt, read_opts, qc_opts, clips_per_shard)
  out = pathlib.Path(out_dir)
  if not force and (out / shards.MANIFEST).is_file():
    try:
      if shards.read_metadata(out).get("fingerprint") == fp:
        manifest, _ = shards.open_shard_set(out)
        log(f"{out}: up to date ({len(manifest)} clips from {len(files)} files)")
        return pd.read_csv(out / shards.QC_REPORT, keep_default_na=False), manifest
    except shards.ShardSetError:
      pass  # incomplete or corrupt: rebuild

  writer = shards.ShardSetWriter(out, clips_per_shard)
  qc_rows = []
  try:
    with progress.bar(_results(files, fmt, read_opts, qc_opts, workers), total=len(files),
                      desc="prepare", unit="file") as results:
      for result in results:
        qc_rows.append(result.qc_row)
        for record, row in result.clips:
          writer.add(record, row)
        results.set_postfix(clips=len(writer.rows), refresh=False)
  except BaseException:
    writer.abort()
    raise
  report = pd.DataFrame(qc_rows, columns=list(QC_COLUMNS))
  buf = io.StringIO()
  report.to_csv(buf, index=False)
  counts = collections.Counter(r["reason"] for r in qc_rows if r["status"] != "ok")
  if not writer.rows:
    writer.abort()
    report.to_csv(out / shards.QC_REPORT, index=False)
    raise NothingPrepared(f"no clip could be prepared from {len(files)} files: "
                          + ", ".join(f"{n} {r}" for r, n in counts.most_common())
                          + f" (details in {out / shards.QC_REPORT})")
  manifest = writer.commit(
      extra_files={shards.QC_REPORT: buf.getvalue().encode()},
      metadata={"fingerprint": fp, "format": fmt, "read_options": dataclasses.asdict(read_opts),
                "qc_options": dataclasses.asdict(qc_opts), "files": len(files),
                "excluded": dict(counts)})
  return report, manifest


class NothingPrepared(RuntimeError):
  """No input file produced a clip."""


def summarize(report: pd.DataFrame, manifest: pd.DataFrame) -> str:
  ok = report["status"] == "ok"
  lines = [f"files: {len(report)} ({int(ok.sum())} ok, {int((~ok).sum())} excluded)",
           f"clips: {len(manifest)} from {manifest['participant_id'].nunique()} participants, "
           f"tasks: {dict(sorted(collections.Counter(manifest['task']).items()))}"]
  for reason, n in report.loc[~ok, "reason"].value_counts().items():
    lines.append(f"  excluded {reason}: {n}")
  return "\n".join(lines)


@cli
def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m data_tools.prepare", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--input", action="append", required=True,
                 help="file, directory (recursive) or glob; repeatable")
  p.add_argument("--format", required=True, choices=list(readers.formats()))
  p.add_argument("--layout", choices=sorted(skeleton.LAYOUTS),
                 help="source layout for formats that do not declare it")
  p.add_argument("--out", required=True, help="shard directory")
  qc_default = qc.QCOptions()  # the one source of the QC defaults
  p.add_argument("--clip-frames", type=int, default=qc_default.clip_frames)
  p.add_argument("--clip-stride", type=int, default=None,
                 help="frames between clip starts (default: --clip-frames, no overlap)")
  p.add_argument("--fps", type=float, default=qc_default.fps, help="target frame rate")
  p.add_argument("--source-fps", type=float, default=None,
                 help="frame rate of files that carry neither timestamps nor fps")
  p.add_argument("--max-gap-frames", type=int, default=qc_default.max_gap_frames)
  p.add_argument("--required-joints", default=qc_default.required_joints,
                 help="joint set (default26, all32) or comma-separated joint names that "
                      "must be observed in every clip frame")
  p.add_argument("--participant", help="participant id for files that lack one")
  p.add_argument("--task", help="task for files that lack one")
  p.add_argument("--session", help="session for files that lack one")
  p.add_argument("--units", choices=("m", "cm", "mm"), help="csv units (default: sidecar, else m)")
  p.add_argument("--id-pattern", help="regex on file names with named groups participant, "
                 "task, session, e.g. '(?P<participant>P\\d+)_(?P<task>.+)'")
  p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
  p.add_argument("--clips-per-shard", type=int, default=256)
  p.add_argument("--force", action="store_true", help="rebuild even if up to date")
  args = p.parse_args(argv)

  if args.id_pattern:
    try:
      re.compile(args.id_pattern)
    except re.error as e:
      raise InputError(f"--id-pattern {args.id_pattern!r}: {e}") from None
  if args.source_fps is not None and args.source_fps <= 0:
    raise InputError(f"--source-fps must be positive, got {args.source_fps:g}")
  if args.clips_per_shard < 1:
    raise InputError(f"--clips-per-shard must be positive, got {args.clips_per_shard}")
  read_opts = ReadOptions(layout=args.layout, fps=args.source_fps,
                          participant_id=args.participant, task=args.task,
                          session=args.session, units=args.units, id_pattern=args.id_pattern)
  qc_opts = qc.QCOptions(fps=args.fps, clip_frames=args.clip_frames,
                         clip_stride=args.clip_stride, max_gap_frames=args.max_gap_frames,
                         required_joints=(args.required_joints if "," not in args.required_joints
                                          else tuple(args.required_joints.split(","))))
  try:
    report, manifest = prepare(args.input, args.format, args.out, read_opts, qc_opts,
                               workers=args.workers, clips_per_shard=args.clips_per_shard,
                               force=args.force)
  except NothingPrepared as e:
    print(f"prepare: {e}", file=sys.stderr)
    return 1
  print(summarize(report, manifest))
  print(f"wrote {args.out}/{shards.MANIFEST} and {shards.QC_REPORT}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
