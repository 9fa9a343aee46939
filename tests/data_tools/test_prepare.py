"""`python -m data_tools.prepare`: a mixed batch of files in, shards and a QC report out."""

import hashlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from grain.sources import ArrayRecordDataSource

import fakes
from data_tools import prepare
from gait_jax import skeleton
from gait_jax.data import records, shards


def _digest(directory: pathlib.Path) -> dict[str, str]:
  return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture
def mixed_inputs(tmp_path):
  """Three good recordings and one file for each exclusion reason a file can show."""
  d = tmp_path / "in"
  d.mkdir()
  for i in range(3):
    fakes.write_npz(d / f"good{i}.npz", fakes.recording(95, seed=i, participant=f"P{i}"))
  (d / "empty_file.npz").write_bytes(b"")
  good = (d / "good0.npz").read_bytes()
  (d / "truncated.npz").write_bytes(good[: len(good) // 2])
  (d / "garbage.npz").write_bytes(b"this is not a zip archive at all" * 10)
  fakes.write_npz(d / "no_frames.npz", fakes.recording(0))
  nan = fakes.recording(60, participant="Pnan")
  nan.positions[:] = np.nan
  fakes.write_npz(d / "no_body.npz", nan)
  gaps = fakes.recording(95, participant="Pgap")
  gaps.positions[::20, 5] = np.nan
  for s in range(5, 95, 22):
    gaps.positions[s:s + 15, 5] = np.nan
  fakes.write_npz(d / "gappy.npz", gaps)
  fakes.write_npz(d / "wrong_joints.npz", fakes.recording(60), positions=np.zeros((60, 25, 3), np.float32),
                  confidence=None)
  mm = fakes.recording(60, participant="Pmm")
  fakes.write_npz(d / "millimetres.npz", mm, positions=mm.positions * 1000)
  fakes.write_npz(d / "short.npz", fakes.recording(20, participant="Pshort"))
  fakes.write_npz(d / "no_fps.npz", fakes.recording(60), fps=None)
  return d


EXPECTED = {"empty_file.npz": "empty", "truncated.npz": "truncated",
            "garbage.npz": "unreadable", "no_frames.npz": "empty", "no_body.npz": "no_body",
            "gappy.npz": "non_finite", "wrong_joints.npz": "wrong_joint_count",
            "millimetres.npz": "implausible_bones", "short.npz": "too_short",
            "no_fps.npz": "bad_metadata"}


def _run(*args, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "data_tools.prepare", *map(str, args)],
                        capture_output=True, text=True, check=False,
                        env={**os.environ, **(env or {})})


def _usage_error(proc: subprocess.CompletedProcess) -> str:
  """The one stderr line of a usage error (exit status 2, no traceback)."""
  assert proc.returncode == 2, proc.stderr
  assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
  return proc.stderr


def test_mixed_batch_shards_good_files_and_reports_every_file(mixed_inputs, tmp_path):
  out = tmp_path / "shards"
  proc = _run("--input", mixed_inputs, "--format", "npz", "--out", out,
              "--clip-frames", "30", "--workers", "2", env={"GAIT_JAX_PROGRESS": "1"})
  assert proc.returncode == 0, proc.stderr
  assert "prepare: 100%" in proc.stderr and "13/13" in proc.stderr  # the per-file bar
  report = pd.read_csv(out / "qc_report.csv", keep_default_na=False)
  assert len(report) == 13
  by_file = {pathlib.Path(f).name: r for f, r in zip(report["file"], report.to_dict("records"))}
  for name, reason in EXPECTED.items():
    assert (by_file[name]["status"], by_file[name]["reason"]) == ("excluded", reason), name
    assert by_file[name]["detail"], name
  for i in range(3):
    row = by_file[f"good{i}.npz"]
    assert (row["status"], row["clips"], row["frames_in"], row["frames_out"]) == ("ok", 3, 95, 90)

  manifest, paths = shards.open_shard_set(out)
  assert len(manifest) == 9
  assert list(manifest["participant_id"]) == ["P0"] * 3 + ["P1"] * 3 + ["P2"] * 3
  assert list(manifest["start_frame"]) == [0, 30, 60] * 3
  clip = records.decode(ArrayRecordDataSource(paths)[4])
  raw = np.load(mixed_inputs / "good1.npz")["positions"]
  # QC only median-filters clean input: the clip stays within millimetres of it.
  assert np.abs(clip.positions - raw[30:60]).max() < 0.01
  assert "excluded" in proc.stdout and "clips: 9" in proc.stdout


def test_rerun_is_idempotent(mixed_inputs, tmp_path):
  out = tmp_path / "shards"
  args = ("--input", mixed_inputs, "--format", "npz", "--out", out, "--clip-frames", "30")
  assert _run(*args, "--workers", "1").returncode == 0
  first = _digest(out)
  again = _run(*args)
  assert again.returncode == 0 and "up to date" in again.stdout
  assert _digest(out) == first
  forced = _run(*args, "--force", "--workers", "2")
  assert forced.returncode == 0 and "up to date" not in forced.stdout
  assert _digest(out) == first  # byte-identical, whatever the worker count


def test_changed_options_rebuild(mixed_inputs, tmp_path):
  out = tmp_path / "shards"
  base = ("--input", mixed_inputs, "--format", "npz", "--out", out)
  assert _run(*base, "--clip-frames", "30").returncode == 0
  assert _run(*base, "--clip-frames", "45").returncode == 0
  manifest, _ = shards.open_shard_set(out)
  assert set(manifest["frames"]) == {45} and len(manifest) == 6
  assert json.loads(json.dumps(shards.read_metadata(out)["qc_options"]))["clip_frames"] == 45


def test_nothing_prepared_exits_non_zero_with_reasons(mixed_inputs, tmp_path):
  out = tmp_path / "shards"
  proc = _run("--input", str(mixed_inputs / "short.npz"), "--input",
              str(mixed_inputs / "no_body.npz"), "--format", "npz", "--out", out)
  assert proc.returncode == 1
  assert "no clip could be prepared from 2 files" in proc.stderr
  assert "too_short" in proc.stderr and "no_body" in proc.stderr
  assert not (out / "manifest.parquet").exists()
  assert len(pd.read_csv(out / "qc_report.csv")) == 2


def test_id_pattern_sets_identity_and_excludes_non_matching_names(mixed_inputs, tmp_path):
  out = tmp_path / "shards"
  proc = _run("--input", mixed_inputs, "--format", "npz", "--out", out, "--clip-frames", "30",
              "--id-pattern", r"(?P<task>good)(?P<participant>\d)")
  assert proc.returncode == 0, proc.stderr
  manifest = pd.read_parquet(out / "manifest.parquet")
  assert sorted(set(manifest["participant_id"])) == ["0", "1", "2"]
  assert set(manifest["task"]) == {"good"}
  report = pd.read_csv(out / "qc_report.csv", keep_default_na=False)
  gappy = report[report["file"].str.endswith("gappy.npz")].iloc[0]
  assert gappy["reason"] == "bad_metadata" and "--id-pattern" in gappy["detail"]
  proc = _run("--input", mixed_inputs, "--format", "npz", "--out", out, "--id-pattern", "(")
  assert "--id-pattern '('" in _usage_error(proc)


def test_usage_errors(tmp_path):
  nowhere = tmp_path / "nowhere"
  err = _usage_error(_run("--input", nowhere, "--format", "npz", "--out", tmp_path / "o"))
  assert f"--input {nowhere}: no such file" in err
  err = _usage_error(_run("--input", tmp_path, "--format", "npz", "--out", tmp_path / "o"))
  assert "no npz files (.npz) under" in err
  err = _usage_error(_run("--input", tmp_path, "--format", "npz", "--out", tmp_path / "o",
                          "--required-joints", "PELVIS,TAIL"))
  assert "unknown joint names ['TAIL']" in err
  assert not (tmp_path / "o").exists()


def test_mkv_without_pyk4a_is_one_line_naming_what_to_install(tmp_path):
  """Microsoft's native SDKs cannot be installed here, so pyk4a is never importable."""
  (tmp_path / "a.mkv").write_bytes(b"\x1a\x45\xdf\xa3")
  err = _usage_error(_run("--input", tmp_path, "--format", "mkv", "--out", tmp_path / "o"))
  assert "pip install 'gait_jax[kinect]'" in err and "--format k4abt_json" in err
  assert "import pyk4a failed" in err
  assert not (tmp_path / "o").exists()  # refused before any file was read


def test_real_kinect_v2_recordings(ucalgary_dir, tmp_path):
  out = tmp_path / "shards"
  report, manifest = prepare.prepare(
      [str(ucalgary_dir)], "kinect_v2_csv", str(out), prepare.ReadOptions(),
      prepare.qc.QCOptions(clip_frames=60), workers=2, log=lambda *_: None)
  n_files = len(list(ucalgary_dir.rglob("*.csv")))
  assert len(report) == n_files
  empty = report[report["file"].str.contains("sub21/Run4")]
  assert list(empty["reason"]) == ["empty"]
  ok = report[report["status"] == "ok"]
  assert len(ok) >= 0.9 * n_files  # real sensor data: nearly every walk is usable
  assert manifest["participant_id"].nunique() == 28
  assert set(manifest["meta_gait_type"]) >= {"N", "AR", "AL"}
  clip = records.decode(ArrayRecordDataSource(shards.open_shard_set(out)[1])[0])
  j = skeleton.JOINT_INDEX
  # Canonical frame is y-down: after the Kinect v2 → canonical rotation the head
  # is above (smaller y than) the feet, and the absent clavicles stay missing.
  assert (clip.positions[:, j["HEAD"], 1] < clip.positions[:, j["FOOT_LEFT"], 1] - 1.0).all()
  assert not clip.present[j["CLAVICLE_LEFT"]] and clip.present[j["KNEE_LEFT"]]
