"""Writes a synthetic cohort: recordings, phenotypes, dictionary, truth, latents.

The cohort's people and phenotypes are small (N x targets numbers) and made in
the main process; the motion is streamed: worker processes render one
participant at a time, write their five files and keep nothing. Workers take
participants in order (imap), and every participant's randomness is its own,
so the files do not depend on the number of workers.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd

from data_tools.synth import k4abt, motor, people, phenotypes, render
from gait_jax import progress
from gait_jax.errors import InputError

VERSION = "1.0"
# Per-recording events of a k4abt_json cohort (bystanders, id switches).
RECORDINGS_CSV = "recordings.csv"

_ARGS: dict = {}


def _init(seed: int, num_frames: int, out_dir: str, fmt: str = "npz"):
  _ARGS.update(seed=seed, num_frames=num_frames, out_dir=out_dir, fmt=fmt)


def _work(job: tuple[int, dict[str, float]]) -> dict:
  index, row = job
  return render.participant(_ARGS["seed"], index, row, _ARGS["num_frames"], _ARGS["out_dir"],
                            _ARGS["fmt"])


def _rendered(jobs: Iterable[tuple[int, dict[str, float]]], workers: int,
              init_args: tuple) -> Iterator[dict]:
  """Each participant's render stats, in participant order."""
  if workers == 1:
    _init(*init_args)
    yield from map(_work, jobs)
    return
  # fork would copy the parent's memory for nothing; spawn costs ~1 s once.
  ctx = multiprocessing.get_context("forkserver" if sys.platform != "win32" else "spawn")
  with ctx.Pool(workers, initializer=_init, initargs=init_args) as pool:
    yield from pool.imap(_work, jobs, chunksize=1)


def _remove_stale(rec_dir: str, participants: int, fmt: str = "npz"):
  """Deletes recordings a previous, larger cohort or one in the other format
  left in `rec_dir` (and half-written temporaries), so the directory holds
  exactly this cohort."""
  pattern = re.compile(r"P(\d{5})_(%s)(\.npz|\.json)(\.tmp\d+)?$" % "|".join(render.TASKS))
  for name in os.listdir(rec_dir):
    match = pattern.match(name)
    if match and (int(match.group(1)) > participants or match.group(4)
                  or match.group(3) != render.FORMATS[fmt]):
      os.remove(os.path.join(rec_dir, name))


def _latents_table(cohort: dict[str, np.ndarray], params: dict[str, np.ndarray]
                   ) -> pd.DataFrame:
  n = len(cohort["age"])
  cols = {"participant_id": [people.participant_id(i) for i in range(n)]}
  cols.update({f: cohort[f] for f in people.FACTOR_NAMES})
  cols["asymmetry_side"] = cohort["asymmetry_side"]
  cols.update({f"motor_{k}": v for k, v in params.items() if k != "asymmetry_side"})
  return pd.DataFrame(cols)


def _truth(seed: int, n: int, seconds: float, targets, values, fmt: str = "npz") -> dict:
  ref = people.reference()
  per_target = phenotypes.truth(targets, values)
  # npz cohorts keep their earlier truth.json, byte for byte.
  recording_format = {} if fmt == "npz" else {
      "recording_format": fmt,
      "k4abt": {
          "recordings": RECORDINGS_CSV, "sdk_version": k4abt.SDK_VERSION,
          "confidence_levels": {
              "0 NONE": f"dropped, or confidence < {k4abt.LOW_FROM}",
              "1 LOW": f"{k4abt.LOW_FROM} <= confidence < {k4abt.MEDIUM_FROM}",
              "2 MEDIUM": f"confidence >= {k4abt.MEDIUM_FROM}",
              "3 HIGH": "never emitted (as by the real SDK)"},
          "dropped_joints": "predicted position (sensor.guess), level 0; a frame with "
                            "every joint dropped has no participant body",
          "joint_orientations": "identity [w, x, y, z] = [1, 0, 0, 0] for every joint",
          "bystander_probability": k4abt.BYSTANDER_PROBABILITY,
          "id_switch_probability": k4abt.ID_SWITCH_PROBABILITY}}
  return {**recording_format,
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
             targets: int = 3210, workers: int | None = None, verbose: bool = True,
             format: str = "npz") -> dict:  # pylint: disable=redefined-builtin
  """Writes a synthetic cohort under `out_dir` and returns a summary.

  Args:
    out_dir: created if needed; gets recordings/, phenotypes.parquet,
      dictionary.csv, truth.json and latents.parquet (and, for k4abt_json,
      recordings.csv: per recording, its bystander and id switch, see
      k4abt.Events).
    participants: N.
    seed: the cohort's seed (same seed → same bytes, whatever `workers`).
    seconds: duration of each recording (30 fps).
    targets: number of phenotype targets (besides the covariates).
    workers: processes rendering motion; None = os.cpu_count(); 1 = in-process.
    verbose: show a progress bar (per participant, on a terminal) and print a
      final summary line.
    format: "npz" (recordings/<pid>_<task>.npz) or "k4abt_json"
      (recordings/<pid>_<task>.json as Azure Kinect Body Tracking's
      offline_processor writes it; see k4abt.py). The participant's numbers
      are the same in both for a seed.

  Returns:
    dict: format, participants, recordings, frames, bytes, timestamped_files,
    dropped_fraction, targets, categories, seconds (wall), seconds_per_recording;
    for k4abt_json also bystander_files, id_switch_files, frames_without_body.
  """
  fmt = format
  if fmt not in render.FORMATS:
    raise InputError(f"unknown format {fmt!r}; known: {sorted(render.FORMATS)}")
  start = time.perf_counter()
  num_frames = int(round(seconds * render.FPS))
  if participants < 1 or num_frames < 2:
    raise InputError(f"need at least one participant and two frames, got {participants} "
                     f"participants of {num_frames} frames")
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise InputError(f"{out_dir}: exists and is not a directory")
  design = phenotypes.design(seed, targets)  # checks `targets` before any file is touched
  rec_dir = os.path.join(out_dir, "recordings")
  os.makedirs(rec_dir, exist_ok=True)
  _remove_stale(rec_dir, participants, fmt)
  events_csv = os.path.join(out_dir, RECORDINGS_CSV)
  if os.path.exists(events_csv):  # a stale k4abt_json cohort's
    os.remove(events_csv)
  cohort = people.sample(seed, participants)
  params = motor.params(cohort)
  values = phenotypes.simulate(design, cohort, seed)
  phenotypes.table(design, cohort, values).to_parquet(
      os.path.join(out_dir, "phenotypes.parquet"), index=False)
  phenotypes.dictionary(design).to_csv(os.path.join(out_dir, "dictionary.csv"), index=False)
  _latents_table(cohort, params).to_parquet(os.path.join(out_dir, "latents.parquet"),
                                            index=False)
  with open(os.path.join(out_dir, "truth.json"), "w") as f:
    json.dump(_truth(seed, participants, seconds, design, values, fmt), f, indent=1)
  del values

  jobs = ((i, {k: float(v[i]) for k, v in params.items()}) for i in range(participants))
  workers = max(1, min(workers or os.cpu_count() or 1, participants))
  totals = dict(recordings=0, frames=0, bytes=0, dropped=0, joint_frames=0, timestamped=0)
  rows: list[dict] = []
  t_motion = time.perf_counter()
  rendered = _rendered(jobs, workers, (seed, num_frames, rec_dir, fmt))
  if verbose:
    rendered = progress.bar(rendered, total=participants, desc="synth", unit="participant")
  for stats in rendered:
    for k in totals:
      totals[k] += stats[k]
    rows.extend(stats.get("rows", ()))
  if fmt != "npz":
    # Rows arrive in participant order (imap), so the file is deterministic.
    pd.DataFrame(rows, columns=[f.name for f in dataclasses.fields(k4abt.Events)]).to_csv(
        events_csv, index=False)
  wall = time.perf_counter() - start
  summary = {
      "format": fmt, "out_dir": out_dir, "participants": participants,
      "recordings": totals["recordings"],
      "frames": totals["frames"], "bytes": totals["bytes"],
      "timestamped_files": totals["timestamped"],
      "dropped_fraction": totals["dropped"] / max(totals["joint_frames"], 1),
      "targets": targets,
      "categories": {c: sum(t.category == c for t in design) for c in phenotypes.CATEGORIES},
      "workers": workers, "seconds": wall,
      "seconds_per_recording": (time.perf_counter() - t_motion) / totals["recordings"],
  }
  if fmt != "npz":
    summary.update(bystander_files=sum(r["bystander"] for r in rows),
                   id_switch_files=sum(r["id_switch"] for r in rows),
                   frames_without_body=sum(r["frames_without_body"] for r in rows))
  if verbose:
    print(f"synth: wrote {summary['recordings']} recordings of {participants} participants "
          f"({summary['bytes'] / 2**20:.0f} MiB) and {targets} targets to {out_dir} in "
          f"{wall:.1f} s ({summary['seconds_per_recording'] * 1e3:.1f} ms/recording wall, "
          f"{workers} workers)", flush=True)
    if fmt != "npz":
      print(f"synth: {fmt}: {summary['bystander_files']} recordings with a bystander, "
            f"{summary['id_switch_files']} with an id switch, "
            f"{summary['frames_without_body']} frames without a body ({RECORDINGS_CSV})",
            flush=True)
  return summary
