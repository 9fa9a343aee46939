"""python -m data_tools.synth --out DIR --participants N [--seed S] [--seconds 30]
[--targets 3210] [--workers W] [--format {npz,k4abt_json}] [--quiet]: writes a
synthetic cohort (see the package doc)."""

from __future__ import annotations

import argparse
import os

from data_tools.synth.cohort import generate
from data_tools.synth.render import FORMATS
from gait_jax.errors import cli


@cli
def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(prog="python -m data_tools.synth", description=__doc__)
  parser.add_argument("--out", required=True, help="output directory")
  parser.add_argument("--participants", type=int, required=True, help="cohort size N")
  parser.add_argument("--seed", type=int, default=0, help="cohort seed (default 0)")
  parser.add_argument("--seconds", type=float, default=30.0,
                      help="seconds per recording at 30 fps (default 30)")
  parser.add_argument("--targets", type=int, default=3210,
                      help="number of phenotype targets (default 3210)")
  parser.add_argument("--workers", type=int, default=os.cpu_count(),
                      help="worker processes (default: all cores)")
  parser.add_argument("--format", choices=sorted(FORMATS), default="npz",
                      help="recording files: npz (neutral npz, NaN where dropped; default) "
                           "or k4abt_json (Azure Kinect Body Tracking offline_processor "
                           "JSON in mm, no NaN, confidence levels 0-2, ~10%% of "
                           "recordings with a bystander and ~3%% with a tracker id "
                           "switch, listed in DIR/recordings.csv)")
  parser.add_argument("--quiet", action="store_true", help="no progress bar or summary lines")
  args = parser.parse_args(argv)
  if args.seed < 0:
    parser.error("--seed must be >= 0")
  return generate(args.out, args.participants, seed=args.seed, seconds=args.seconds,
                  targets=args.targets, workers=args.workers, verbose=not args.quiet,
                  format=args.format)


if __name__ == "__main__":
  main()
