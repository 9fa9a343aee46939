"""The README's main job in miniature: synth → prepare → summary, as subprocesses."""

import subprocess
import sys

import pandas as pd


def _run(*args):
  proc = subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True,
                        text=True, check=False)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  return proc.stdout


def test_synth_prepare_summary(tmp_path):
  cohort, shards = tmp_path / "cohort", tmp_path / "shards"
  _run("data_tools.synth", "--out", cohort, "--participants", 6, "--seconds", 10,
       "--targets", 200, "--workers", 1, "--quiet")
  assert len(list((cohort / "recordings").glob("*.npz"))) == 30
  _run("data_tools.prepare", "--input", cohort / "recordings", "--format", "npz",
       "--out", shards, "--clip-frames", 150, "--clip-stride", 75, "--workers", 1)
  report = pd.read_csv(shards / "qc_report.csv")
  manifest = pd.read_parquet(shards / "manifest.parquet")
  assert len(report) == 30 and (report["status"] == "ok").sum() >= 27
  assert set(manifest["task"]) == {"treadmill", "self_selected_walk", "walk_in_place",
                                   "sit_to_stand", "romberg_eyes_closed"}
  out = _run("data_tools.summary", "--shards", shards, "--cohort", cohort,
             "--batch-size", 2, "--seconds", 0.5)
  assert "6 participants, 200 targets in 18 body systems" in out
  # The subprocess inherits the 8 fake devices: 2 clips per device.
  assert "skeleton float32[16, 150, 26, 4]" in out and "8 cpu device(s)" in out
  assert "loader throughput" in out
