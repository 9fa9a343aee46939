"""Summarises a shard set and what the input pipeline makes of it.

  python -m data_tools.summary --shards SHARDS [--cohort COHORT] [--batch-size 8]

Prints the QC outcome per reason, clips per task and split, the cohort's phenotype
dictionary (when `--cohort` is a `data_tools.synth` directory), and a few training
batches drawn through the Grain pipeline onto a mesh over the local devices, with
the loader's throughput. A directory that is not a shard set (or a `--cohort` that
is not a synth output) is a usage error: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from collections.abc import Sequence

import jax
import numpy as np
import pandas as pd

from gait_jax.data import config as data_config
from gait_jax.data import pipeline, shards
from gait_jax.errors import InputError, cli


def _table(df: pd.DataFrame) -> str:
  return "\n".join("  " + line for line in df.to_string().splitlines())


def shard_summary(shards_dir: str, split_seed: int = 0) -> str:
  manifest, paths = shards.open_shard_set(shards_dir)
  report = pd.read_csv(pathlib.Path(shards_dir) / shards.QC_REPORT, keep_default_na=False)
  size = sum(pathlib.Path(p).stat().st_size for p in paths)
  ok = report["status"] == "ok"
  lines = [f"shard set {shards_dir}: {len(paths)} shards, {size / 2**20:.1f} MiB, "
           f"{len(manifest)} clips of {manifest['frames'].iloc[0]} frames at "
           f"{manifest['fps'].iloc[0]:g} fps",
           f"QC: {len(report)} files, {int(ok.sum())} prepared, {int((~ok).sum())} excluded"]
  if (~ok).any():
    bad = report.loc[~ok].assign(
        example=lambda d: d["file"].map(lambda f: pathlib.Path(f).name) + ": " + d["detail"])
    reasons = bad.groupby("reason").agg(files=("file", "size"), example=("example", "first"))
    reasons["example"] = reasons["example"].str.slice(0, 90)
    lines.append(_table(reasons))
  splits = manifest["participant_id"].map(
      lambda p: pipeline.split_of(p, (0.8, 0.1, 0.1), split_seed))
  by_task = (manifest.assign(split=splits)
             .groupby(["task", "split"]).size().unstack(fill_value=0))
  by_task["participants"] = manifest.groupby("task")["participant_id"].nunique()
  lines += ["clips per task and participant split (80/10/10 by participant):",
            _table(by_task)]
  return "\n".join(lines)


def cohort_summary(cohort_dir: str) -> str:
  cohort = pathlib.Path(cohort_dir)
  if not (cohort / "dictionary.csv").is_file():
    raise InputError(f"--cohort {cohort_dir}: no dictionary.csv, not a data_tools.synth "
                     "output directory")
  dictionary = pd.read_csv(cohort / "dictionary.csv")
  phenotypes = pd.read_parquet(cohort / "phenotypes.parquet")
  targets = dictionary[~dictionary["is_covariate"].astype(bool)]
  missing = phenotypes[targets["target"]].isna().mean()
  lines = [f"cohort {cohort_dir}: {len(phenotypes)} participants, {len(targets)} targets "
           f"in {targets['system'].nunique()} body systems "
           f"({(targets['kind'] == 'continuous').sum()} continuous, "
           f"{(targets['kind'] == 'binary').sum()} binary), "
           f"missing values {missing.mean():.1%} on average"]
  truth_path = cohort / "truth.json"
  if truth_path.is_file():
    truth = json.loads(truth_path.read_text())
    categories = pd.Series([t["category"] for t in truth["targets"].values()])
    lines.append("planted structure: " + ", ".join(
        f"{n} {c}" for c, n in categories.value_counts().items()))
  return "\n".join(lines)


def pipeline_summary(shards_dir: str, batch_size: int, crop_frames: int,
                     seconds: float) -> str:
  devices = jax.devices()
  mesh = jax.make_mesh((len(devices),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))
  cfg = data_config.get_data_config()
  cfg.shards = shards_dir
  cfg.split = "all"
  cfg.batch_size = batch_size * len(devices)
  cfg.crop_frames = crop_frames
  batches = pipeline.GlobalBatches(pipeline.make_dataset(cfg, train=True), mesh)
  first = next(batches)
  sk = np.asarray(first["skeleton"])
  present = np.asarray(first["joint_present"]).astype(bool)
  xyz, conf = sk[..., :3], sk[..., 3]
  lines = [f"input pipeline (training, {len(devices)} {devices[0].platform} device(s), "
           f"mesh axis 'data'):",
           f"  skeleton {first['skeleton'].dtype}{list(first['skeleton'].shape)} "
           f"(batch, frames, joints, xyz+confidence), sharding "
           f"{first['skeleton'].sharding.spec}",
           f"  joints present {present.sum(1).min()}–{present.sum(1).max()} of "
           f"{present.shape[1]}; mean confidence of present joints "
           f"{conf.mean(axis=(0, 1))[present[0]].mean():.2f}",
           f"  coordinates after centring on the clip's mean pelvis: x [{xyz[..., 0].min():.2f}, "
           f"{xyz[..., 0].max():.2f}] m, y [{xyz[..., 1].min():.2f}, {xyz[..., 1].max():.2f}] m, "
           f"z [{xyz[..., 2].min():.2f}, {xyz[..., 2].max():.2f}] m"]
  n, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    jax.block_until_ready(next(batches))
    n += cfg.batch_size
  rate = n / (time.perf_counter() - start)
  lines.append(f"  loader throughput: {rate:.0f} clips/s "
               f"({rate * sk.shape[1] * sk.shape[2]:.3g} joint-frames/s), in-process")
  batches.close()
  return "\n".join(lines)


@cli
def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m data_tools.summary", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--shards", required=True)
  p.add_argument("--cohort", help="a data_tools.synth output directory")
  p.add_argument("--batch-size", type=int, default=8, help="per device")
  p.add_argument("--crop-frames", type=int, default=0)
  p.add_argument("--seconds", type=float, default=3.0, help="loader timing")
  args = p.parse_args(argv)
  if args.batch_size < 1 or args.seconds <= 0:
    raise InputError("--batch-size and --seconds must be positive")
  try:
    print(shard_summary(args.shards))
  except shards.ShardSetError as e:
    raise InputError(str(e)) from None
  if args.cohort:
    print(cohort_summary(args.cohort))
  print(pipeline_summary(args.shards, args.batch_size, args.crop_frames, args.seconds))
  return 0


if __name__ == "__main__":
  sys.exit(main())
