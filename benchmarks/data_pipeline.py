"""Data layer at the paper's scale: synth + prepare wall time and peak memory, loader clips/s.

  .venv/bin/python benchmarks/data_pipeline.py [--participants 3414] [--seconds 30]
      [--workdir /tmp/gait_jax_bench] [--workers 2]

Runs `data_tools.synth` and `data_tools.prepare` as the user would (subprocesses),
sampling the resident memory of each process tree (parent + workers) every 0.2 s,
then times the Grain loader in this process with 0 and 2 worker processes. Prints
one table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np


def _tree_rss(pid: int) -> int:
  """Resident bytes of a process and all its descendants (Linux /proc)."""
  total, stack = 0, [pid]
  while stack:
    p = stack.pop()
    try:
      with open(f"/proc/{p}/status") as f:
        for line in f:
          if line.startswith("VmRSS:"):
            total += int(line.split()[1]) * 1024
      for task in os.listdir(f"/proc/{p}/task"):
        with open(f"/proc/{p}/task/{task}/children") as f:
          stack.extend(int(c) for c in f.read().split())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
      continue
  return total


def run_measured(cmd: list[str]) -> tuple[float, int, str]:
  """Runs a command; returns (wall seconds, peak tree RSS bytes, last output lines)."""
  start = time.perf_counter()
  with tempfile.TemporaryFile("w+") as log:
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    peak = 0
    while proc.poll() is None:
      peak = max(peak, _tree_rss(proc.pid))
      time.sleep(0.2)
    log.seek(0)
    out_lines = log.read().splitlines()
  wall = time.perf_counter() - start
  if proc.returncode != 0:
    sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n" + "\n".join(out_lines[-30:]))
  return wall, peak, "\n".join(out_lines[-4:])


def loader_rate(shards_dir: str, workers: int, batch: int, crop: int, seconds: float) -> float:
  """Training-mode clips/s of the host pipeline (decode + transforms + batching)."""
  from gait_jax.data import config as data_config
  from gait_jax.data import pipeline
  cfg = data_config.get_data_config()
  cfg.update(shards=shards_dir, split="all", batch_size=batch, crop_frames=crop,
             worker_count=workers, rotate_deg=180.0, scale_jitter=0.1)
  it = iter(pipeline.make_dataset(cfg, train=True))
  for _ in range(3):  # warm-up: worker start, first reads
    next(it)
  n, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    n += next(it)["skeleton"].shape[0]
  rate = n / (time.perf_counter() - start)
  if hasattr(it, "close"):
    it.close()
  return rate


def _du(path: pathlib.Path) -> int:
  return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--participants", type=int, default=3414)
  p.add_argument("--seconds", type=int, default=30)
  p.add_argument("--workers", type=int, default=2)
  p.add_argument("--workdir", default="/tmp/gait_jax_bench")
  p.add_argument("--loader-seconds", type=float, default=20.0)
  p.add_argument("--keep", action="store_true", help="keep the cohort and shards")
  args = p.parse_args()
  work = pathlib.Path(args.workdir)
  shutil.rmtree(work, ignore_errors=True)
  cohort, shards_dir = work / "cohort", work / "shards"
  py = sys.executable
  recordings = args.participants * 5
  clip_frames = args.seconds * 30

  rows = []
  wall, peak, tail = run_measured(
      [py, "-m", "data_tools.synth", "--out", str(cohort), "--participants",
       str(args.participants), "--seconds", str(args.seconds), "--workers", str(args.workers)])
  print(tail)
  rows.append(("synth", wall, peak, _du(cohort), f"{recordings / wall:.1f} recordings/s"))
  wall, peak, tail = run_measured(
      [py, "-m", "data_tools.prepare", "--input", str(cohort / "recordings"), "--format",
       "npz", "--out", str(shards_dir), "--clip-frames", str(clip_frames),
       "--workers", str(args.workers)])
  print(tail)
  rows.append(("prepare", wall, peak, _du(shards_dir), f"{recordings / wall:.1f} recordings/s"))
  total = rows[0][1] + rows[1][1]

  print(f"\nData layer, {args.participants} participants × 5 tasks × {args.seconds} s "
        f"({recordings} recordings), {args.workers} workers, {os.cpu_count()} cores")
  print(f"{'stage':<10}{'wall s':>9}{'peak RSS GiB':>14}{'output GiB':>12}  rate")
  for name, wall, peak, size, rate in rows:
    print(f"{name:<10}{wall:>9.1f}{peak / 2**30:>14.2f}{size / 2**30:>12.2f}  {rate}")
  print(f"{'total':<10}{total:>9.1f}   target < 900 s: {'met' if total < 900 else 'NOT met'}")

  print("\nLoader (training mode: shuffle, crop, rotation, scale jitter, batch 8)")
  print(f"{'workers':<9}{'crop':>6}{'clips/s':>10}")
  for workers in (0, 2):
    for crop in (clip_frames, 300):
      rate = loader_rate(str(shards_dir), workers, 8, crop, args.loader_seconds)
      print(f"{workers:<9}{crop:>6}{rate:>10.1f}")
  if not args.keep:
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
  np.set_printoptions(precision=3)
  main()
