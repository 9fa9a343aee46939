"""Body size in frozen embeddings against the segment lengths, on held-out people.

  .venv/bin/python benchmarks/body_size.py --encoder default=runs/demo/pretrain_small \
      [--encoder bone=runs/pretrain_bone ...] [--participants 300] [--work runs/body_size]

Each step is the project's own command, and a step whose output is there is reused:

  1. a synthetic cohort of --participants people (`data_tools.synth`, seed 0, 30 s per
     task; its first people are the demo cohort's, the same seed), prepared into
     300-frame clips (`data_tools.prepare`);
  2. the engineered features (`experiments/features.py`) of the same --clips clips
     per participant × task as the embeddings, and from them the segment lengths
     alone (`anthropometry.BODY_FEATURES`: thigh, shank, leg, trunk, upper arm,
     forearm, shoulder and hip width, medians over frames, each task);
  3. every encoder's frozen embedding (`experiments/embed.py`), pooled each of
     --poolings ways: `regions`, the published pooling (regions, mean and 99th
     percentile over time), and `joints`, per joint (`per_joint`, mean over time);
  4. one probe (`experiments/probe.py:paper`, --seeds seeds, no covariates) of every
     feature set on the same folds, of the people none of the encoders trained on
     (`--config.held_out_of`; the encoders must have trained on the same people),
     for --targets, the segment lengths the reference of the paired tests.

Prints r per feature set and target (as the probe reports it: out-of-fold predictions
over the seeds), and each set's paired tests against the segment lengths, both ways
round: Δr, the set's r less theirs, and two BH-adjusted one-sided q of the paired
test on per-person out-of-fold losses: q− that the set predicts worse, q+ that it
predicts better. The probe's own tables are in WORK/probe_clips<N>/results.

`--require SET` (repeatable; SET as the table names it, e.g. `bone_joints`) makes it a
check, the issue's bar: exit 1, naming each miss, unless every such set is at least as
informative as the segment lengths about every target, i.e. not significantly worse
(q− ≥ --alpha). The slow test `tests/benchmarks/test_body_size.py` runs it so.

Why a larger cohort than the demo's: with 60 people, the probe's penalty for width
decides the comparison (40 columns of segment lengths against 3,840 or 8,320 of an
embedding; README, "Body size"). The encoders are still the demo's budget: pass the
demo's pretraining run (or one trained like it).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

import pandas as pd

from gait_jax import schema
from gait_jax.features import anthropometry
from gait_jax.train import state as state_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
POOLINGS = {"regions": "default", "joints": "per_joint"}


def _run(args: list[str], log: pathlib.Path) -> None:
  """Runs one project command (output in `log`); exits naming the log on failure."""
  print("  $", " ".join(args[2:5]), "...", flush=True)
  with open(log, "w") as f:
    done = subprocess.run(args, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                          env={**os.environ, "WANDB_MODE": "disabled"})
  if done.returncode:
    sys.exit(f"body_size: {' '.join(args[2:5])} failed (rc {done.returncode}); see {log}")


def _main_job(config: str, workdir: pathlib.Path, *overrides: str) -> list[str]:
  return [sys.executable, "-m", "gait_jax.main", "--config", config,
          "--workdir", str(workdir), *overrides]


def _segments(features: pathlib.Path, out: pathlib.Path) -> None:
  """The segment-length columns of a features table, as a table of their own."""
  frame, columns = schema.read_table(features)
  body = [c for c in anthropometry.BODY_FEATURES if c in columns]
  if not body:
    sys.exit(f"body_size: {features} has none of {anthropometry.BODY_FEATURES}")
  meta = [c for c in schema.META_COLUMNS if c in frame.columns]
  schema.write_table(frame, body, out, meta=meta)


def _embedded(out: pathlib.Path, encoder: pathlib.Path) -> bool:
  """Whether `out` holds an embed run of `encoder` (reused); exits naming both when
  it holds another encoder's."""
  if not (out / "embeddings.parquet").exists():
    return False
  made_by = json.loads((out / "embed_config.json").read_text())["checkpoint_dir"]
  if pathlib.Path(made_by).resolve() != encoder:
    sys.exit(f"body_size: {out} embeds {made_by}, not {encoder}: rename the encoder "
             "or remove that directory")
  return True


def _encoders(specs: list[str]) -> dict[str, pathlib.Path]:
  encoders = {}
  for spec in specs:
    name, sep, path = spec.partition("=")
    if not sep or not name.isidentifier():
      sys.exit(f"body_size: --encoder {spec!r}: expected NAME=PRETRAIN_WORKDIR")
    encoders[name] = pathlib.Path(path).resolve()
  trained = {name: state_lib.trained_participants(str(path))
             for name, path in encoders.items()}
  first = next(iter(trained.values()))
  for name, ids in trained.items():
    if ids != first:
      sys.exit(f"body_size: encoder {name!r} trained on other people than "
               f"{next(iter(trained))!r}; the probe holds out one set")
  return encoders


def _paired(results: pathlib.Path) -> pd.DataFrame:
  """A probe's paired tests of subset "all", indexed by (a, b, target)."""
  paired = pd.read_csv(results / "comparisons.csv")
  return paired[paired["subset"] == "all"].set_index(["a", "b", "target"])


def table(results: pathlib.Path, targets: list[str],
          reference: str = "segment_lengths") -> pd.DataFrame:
  """r per feature set × target, and each set's paired tests against the reference
  both ways round, from a probe's results directory."""
  scores = pd.read_csv(results / "targets.csv")
  scores = scores[(scores["subset"] == "all") & scores["target"].isin(targets)]
  order = list(dict.fromkeys(scores["features"]))
  out = scores.pivot(index="features", columns="target", values="r").loc[order, targets]
  out = out.round(4)  # r near 1: the third place does not tell sets apart
  paired = _paired(results)
  for t in targets:
    cells = []
    for name in out.index:
      if name == reference:
        cells.append("")
        continue
      worse, better = paired.loc[(reference, name, t)], paired.loc[(name, reference, t)]
      cells.append(f"{better['delta']:+.3f} ({worse['q']:.2g}, {better['q']:.2g})")
    out[f"{t} Δr (q−, q+)"] = cells
  n = scores.groupby("features")["n"].max()
  out.insert(0, "n", n.loc[order].astype(int))
  return out


def shortfalls(results: pathlib.Path, sets: list[str], targets: list[str],
               alpha: float = 0.05, reference: str = "segment_lengths") -> list[str]:
  """Where a feature set predicts a target significantly worse than the reference
  (the one-sided paired test, BH-adjusted: q− < alpha), one line each; empty when
  every set is at least as informative about every target."""
  paired = _paired(results)
  missing = [(s, t) for s in sets for t in targets if (reference, s, t) not in paired.index]
  if missing:
    raise KeyError(f"{results / 'comparisons.csv'} lacks the paired test of {missing}")
  out = []
  for s in sets:
    for t in targets:
      row = paired.loc[(reference, s, t)]
      if row["q"] < alpha:
        out.append(f"{s} predicts {t} worse than the {reference}: r {row['score_b']:.5f} "
                   f"against {row['score_a']:.5f}, q {row['q']:.2g} < {alpha}")
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--encoder", action="append", required=True,
                      help="NAME=PRETRAIN_WORKDIR (repeatable)")
  parser.add_argument("--participants", type=int, default=300)
  parser.add_argument("--work", default="runs/body_size")
  parser.add_argument("--clips", type=int, default=1,
                      help="clips per participant × task, for every set (0: all)")
  parser.add_argument("--poolings", default="regions,joints",
                      help=f"of {', '.join(POOLINGS)}")
  parser.add_argument("--seeds", type=int, default=5)
  parser.add_argument("--targets", default="height,leg_length,bmi,visceral_fat,age")
  parser.add_argument("--require", action="append", default=[], metavar="SET",
                      help="exit 1 unless SET (e.g. bone_joints) is not significantly "
                           "worse than the segment lengths on any target (repeatable)")
  parser.add_argument("--alpha", type=float, default=0.05)
  parser.add_argument("--smoke", action="store_true",
                      help="tiny sizes (4 s per task, 60-frame clips, smoke jobs): tests")
  args = parser.parse_args()
  encoders = _encoders(args.encoder)
  targets = args.targets.split(",")
  if not set(args.poolings.split(",")) <= set(POOLINGS):
    sys.exit(f"body_size: --poolings {args.poolings!r}: expected some of {list(POOLINGS)}")
  sets = ["engineered"] + [f"{name}_{pooling}" for name in encoders
                           for pooling in args.poolings.split(",")]
  if not set(args.require) <= set(sets):
    sys.exit(f"body_size: --require {sorted(set(args.require) - set(sets))}: not among "
             f"the feature sets {sets}")
  work = pathlib.Path(args.work).resolve()
  logs = work / "logs"
  logs.mkdir(parents=True, exist_ok=True)
  seconds, clip, stride = (4, 60, 30) if args.smoke else (30, 300, 150)
  variant = ":smoke" if args.smoke else ""

  cohort, shards = work / "cohort", work / "shards"
  print(f"body_size: {args.participants} participants → {work}", flush=True)
  if not (cohort / "phenotypes.parquet").exists():
    _run([sys.executable, "-m", "data_tools.synth", "--out", str(cohort),
          "--participants", str(args.participants), "--seed", "0",
          "--seconds", str(seconds), "--targets", "100"], logs / "synth.log")
  people = len(pd.read_parquet(cohort / "phenotypes.parquet"))
  if people != args.participants:
    sys.exit(f"body_size: {cohort} holds {people} participants, not --participants "
             f"{args.participants}; choose another --work")
  if not (shards / "manifest.parquet").exists():
    _run([sys.executable, "-m", "data_tools.prepare", "--input", str(cohort / "recordings"),
          "--format", "npz", "--out", str(shards), "--clip-frames", str(clip),
          "--clip-stride", str(stride)], logs / "prepare.log")
  # Every set reads the same clips of each participant × task.
  clips = f"clips{args.clips}" if args.clips else "clipsall"
  features = work / f"features_{clips}" / "features.parquet"
  if not features.exists():
    _run(_main_job(f"experiments/features.py{variant or ':default'}", features.parent,
                   f"--config.data.shards={shards}",
                   f"--config.data.max_clips_per_group={args.clips}"), logs / "features.log")
  segments = work / f"segments_{clips}.parquet"
  _segments(features, segments)

  inputs = [f"engineered={features}"]
  for name, path in encoders.items():
    for pooling in args.poolings.split(","):
      embed_variant = POOLINGS[pooling]
      out = work / f"embed_{name}_{pooling}_{clips}"
      if not _embedded(out, path):
        overrides = [f"--config.checkpoint_dir={path}", f"--config.data.shards={shards}",
                     f"--config.data.max_clips_per_group={args.clips}"]
        if args.smoke and pooling == "joints":
          overrides += ["--config.pool.by=joint", "--config.pool.stats=('mean',)"]
        _run(_main_job(f"experiments/embed.py:{'smoke' if args.smoke else embed_variant}",
                       out, *overrides), logs / f"embed_{name}_{pooling}.log")
      inputs.append(f"{name}_{pooling}={out / 'embeddings.parquet'}")

  dictionary = pd.read_csv(cohort / "dictionary.csv")
  missing = sorted(set(targets) - set(dictionary["target"]))
  if missing:
    sys.exit(f"body_size: targets {missing} are not in {cohort / 'dictionary.csv'}")
  dictionary[dictionary["target"].isin(targets)].to_csv(work / "dictionary.csv", index=False)
  probe = work / f"probe_{clips}"
  names = [spec.partition("=")[0] for spec in inputs]
  pairs = ",".join(f"{a}:{b}" for n in names
                   for a, b in (("segment_lengths", n), (n, "segment_lengths")))
  _run(_main_job(f"experiments/probe.py{variant or ':paper'}", probe,
                 f"--config.embeddings={segments}", "--config.name=segment_lengths",
                 f"--config.inputs={','.join(inputs)}", f"--config.compare={pairs}",
                 f"--config.phenotypes={cohort / 'phenotypes.parquet'}",
                 f"--config.dictionary={work / 'dictionary.csv'}", "--config.covariates=",
                 f"--config.held_out_of={next(iter(encoders.values()))}",
                 f"--config.n_seeds={args.seeds}", "--config.curves="),
       logs / "probe.log")
  with pd.option_context("display.width", 200, "display.max_columns", 20):
    print(table(probe / "results", targets).to_string())
  misses = shortfalls(probe / "results", args.require, targets, args.alpha)
  for line in misses:
    print("body_size: bar not met:", line)
  if args.require and not misses:
    print(f"body_size: bar met: {', '.join(args.require)} at least as informative as the "
          f"segment lengths about {', '.join(targets)} (q− ≥ {args.alpha})")
  if misses:
    sys.exit(1)


if __name__ == "__main__":
  main()
