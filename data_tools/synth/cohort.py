"""Writes a synthetic cohort: recordings, phenotypes, dictionary, truth, latents.

The cohort's people and phenotypes are small (N x targets numbers) and made in
the main process; the motion is streamed: worker processes render one
participant at a time, write their five files and keep nothing. Workers take
participants in order (imap), and every participant's randomness is its own,
so the files do not depend on the number of workers.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
import time

import numpy as np
import pandas as pd

from data_tools.synth import motor, people, phenotypes, render

VERSION = "1.0"

_ARGS: dict = {}


def _init(seed: int, num_frames: int, out_dir: str):
  _ARGS.update(seed=seed, num_frames=num_frames, out_dir=out_dir)


def _work(job: tuple[int, dict[str, float]]) -> dict[str, float]:
  index, row = job
  return render.participant(_ARGS["seed"], index, row, _ARGS["num_frames"], _ARGS["out_dir"])


def _remove_stale(rec_dir: str, participants: int):
  """Deletes recordings a previous, larger cohort left in `rec_dir` (and
  half-written temporaries), so the directory holds exactly this cohort."""
  pattern = re.compile(r"P(\d{5})_(%s)\.npz(\.tmp\d+)?$" % "|".join(render.TASKS))
  for name in os.listdir(rec_dir):
    match = pattern.match(name)
    if match and (int(match.group(1)) > participants or match.group(3)):
      os.remove(os.path.join(rec_dir, name))


def _latents_table(cohort: dict[str, np.ndarray], params: dict[str, np.ndarray]
                   ) -> pd.DataFrame:
  n = len(cohort["age"])
  cols = {"participant_id": [people.participant_id(i) for i in range(n)]}
  cols.update({f: cohort[f] for f in people.FACTOR_NAMES})
  cols["asymmetry_side"] = cohort["asymmetry_side"]
  cols.update({f"motor_{k}": v for k, v in params.items() if k != "asymmetry_side"})
  return pd.DataFrame(cols)


def _truth(seed: int, n: int, seconds: float, targets, values) -> dict:
  ref = people.reference()
  per_target = phenotypes.truth(targets, values)
  return {
      "generator": "data_tools.synth", "version": VERSION, "seed": seed,
      "participants": n, "seconds": seconds, "fps": render.FPS,
      "tasks": list(render.TASKS), "num_targets": len(targets),
      "covariates": people.COVARIATES,
      "visceral_fat_unit": people.COVARIATES["visceral_fat"],
      "factors": people.FACTORS,
      "sources": {
          s: {"mean": ref[s][0], "sd": ref[s][1],
              "z": (f"({s} - mean) / sd" if s in people.COVARIATES else
                    "latents.parquet column (already a reference z-score)")}
          for s in people.SOURCES},
      "model": "liability = sum(coef * z) + noise_sd * N(0,1); continuous = loc + scale "
               "* liability (identity) or loc * exp(scale * liability) (log), floored "
               "at `lower`; binary = liability > Phi^-1(1 - prevalence)",
      "motor_params": motor.PARAMS,
      "categories": {c: sum(t.category == c for t in targets) for c in phenotypes.CATEGORIES},
      "targets": per_target,
  }


def generate(out_dir: str, participants: int, seed: int = 0, seconds: float = 30.0,
             targets: int = 3210, workers: int | None = None, verbose: bool = True) -> dict:
  """Writes a synthetic cohort under `out_dir` and returns a summary.

  Args:
    out_dir: created if needed; gets recordings/, phenotypes.parquet,
      dictionary.csv, truth.json and latents.parquet.
    participants: N.
    seed: the cohort's seed (same seed → same bytes, whatever `workers`).
    seconds: duration of each recording (30 fps).
    targets: number of phenotype targets (besides the covariates).
    workers: processes rendering motion; None = os.cpu_count(); 1 = in-process.
    verbose: print progress and a final summary line.

  Returns:
    dict: participants, recordings, frames, bytes, timestamped_files,
    dropped_fraction, targets, categories, seconds (wall), seconds_per_recording.
  """
  start = time.perf_counter()
  num_frames = int(round(seconds * render.FPS))
  if participants < 1 or num_frames < 2:
    raise ValueError("need at least one participant and two frames")
  rec_dir = os.path.join(out_dir, "recordings")
  os.makedirs(rec_dir, exist_ok=True)
  _remove_stale(rec_dir, participants)
  cohort = people.sample(seed, participants)
  params = motor.params(cohort)
  design = phenotypes.design(seed, targets)
  values = phenotypes.simulate(design, cohort, seed)
  phenotypes.table(design, cohort, values).to_parquet(
      os.path.join(out_dir, "phenotypes.parquet"), index=False)
  phenotypes.dictionary(design).to_csv(os.path.join(out_dir, "dictionary.csv"), index=False)
  _latents_table(cohort, params).to_parquet(os.path.join(out_dir, "latents.parquet"),
                                            index=False)
  with open(os.path.join(out_dir, "truth.json"), "w") as f:
    json.dump(_truth(seed, participants, seconds, design, values), f, indent=1)
  del values

  jobs = ((i, {k: float(v[i]) for k, v in params.items()}) for i in range(participants))
  workers = max(1, min(workers or os.cpu_count() or 1, participants))
  totals = dict(recordings=0, frames=0, bytes=0, dropped=0, joint_frames=0, timestamped=0)
  report_every = max(1, participants // 20)
  t_motion = time.perf_counter()

  def tally(done: int, stats: dict):
    for k in totals:
      totals[k] += stats[k]
    if verbose and (done % report_every == 0 or done == participants):
      el = time.perf_counter() - t_motion
      print(f"synth: {done}/{participants} participants, {totals['recordings']} recordings,"
            f" {el:.1f} s, eta {el / done * (participants - done):.0f} s", flush=True)

  if workers == 1:
    _init(seed, num_frames, rec_dir)
    for done, job in enumerate(jobs, 1):
      tally(done, _work(job))
  else:
    # fork would copy the parent's memory for nothing; spawn costs ~1 s once.
    ctx = multiprocessing.get_context("forkserver" if sys.platform != "win32" else "spawn")
    with ctx.Pool(workers, initializer=_init, initargs=(seed, num_frames, rec_dir)) as pool:
      for done, stats in enumerate(pool.imap(_work, jobs, chunksize=1), 1):
        tally(done, stats)
  wall = time.perf_counter() - start
  summary = {
      "out_dir": out_dir, "participants": participants, "recordings": totals["recordings"],
      "frames": totals["frames"], "bytes": totals["bytes"],
      "timestamped_files": totals["timestamped"],
      "dropped_fraction": totals["dropped"] / max(totals["joint_frames"], 1),
      "targets": targets,
      "categories": {c: sum(t.category == c for t in design) for c in phenotypes.CATEGORIES},
      "workers": workers, "seconds": wall,
      "seconds_per_recording": (time.perf_counter() - t_motion) / totals["recordings"],
  }
  if verbose:
    print(f"synth: wrote {summary['recordings']} recordings of {participants} participants "
          f"({summary['bytes'] / 2**20:.0f} MiB) and {targets} targets to {out_dir} in "
          f"{wall:.1f} s ({summary['seconds_per_recording'] * 1e3:.1f} ms/recording wall, "
          f"{workers} workers)", flush=True)
  return summary
