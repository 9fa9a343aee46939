"""The synthetic cohort as Azure Kinect Body Tracking JSON (`--format k4abt_json`):
the reader recovers the npz participant through bystanders and id switches."""

from __future__ import annotations

import hashlib
import json
import pathlib

import numpy as np
import pandas as pd
import pytest

from data_tools import prepare, synth
from data_tools.readers import ReadOptions, k4abt_json
from data_tools.synth import __main__ as synth_main
from data_tools.synth import k4abt
from gait_jax import skeleton
from gait_jax.data import shards

# 5 participants x 5 tasks x 6 s; seed 7 has 3 bystanders, 3 id switches (one
# recording with both), frames without any body and bystanders listed first.
ARGS = dict(participants=5, seed=7, seconds=6.0, targets=40, verbose=False)
# 0.1 mm rounding in the JSON (0.05 mm) plus float32 metres.
TOLERANCE_M = 1e-4


def _digest(root: pathlib.Path) -> dict[str, str]:
  return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(root.rglob("*")) if p.is_file()}


def _no_constants(name: str):
  raise ValueError(f"non-finite number {name} in the JSON")


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory) -> tuple[pathlib.Path, pathlib.Path]:
  """(npz cohort, k4abt_json cohort) of the same seed."""
  npz = tmp_path_factory.mktemp("npz")
  js = tmp_path_factory.mktemp("json")
  synth.generate(str(npz), workers=1, **ARGS)
  summary = synth.generate(str(js), workers=1, format="k4abt_json", **ARGS)
  assert summary["format"] == "k4abt_json" and summary["recordings"] == 25
  return npz, js


@pytest.fixture(scope="module")
def events(cohorts) -> pd.DataFrame:
  return pd.read_csv(cohorts[1] / "recordings.csv", keep_default_na=False)


def _read(js: pathlib.Path, row) -> object:
  return k4abt_json.read(str(js / "recordings" / row.file),
                         ReadOptions(participant_id=row.participant_id, task=row.task))


def test_files_and_events(cohorts, events):
  npz, js = cohorts
  assert sorted(p.name for p in (js / "recordings").iterdir()) == sorted(events.file)
  assert not list((js / "recordings").glob("*.npz"))
  assert len(events) == 25 and events.bystander.sum() == 3 and events.id_switch.sum() == 3
  truth = json.loads((js / "truth.json").read_text())
  assert truth["recording_format"] == "k4abt_json"
  assert truth["k4abt"]["recordings"] == "recordings.csv"
  # npz cohorts keep their files as before: no events table, no format keys.
  assert not (npz / "recordings.csv").exists()
  assert "recording_format" not in json.loads((npz / "truth.json").read_text())


def test_json_matches_npz(cohorts, events):
  npz, js = cohorts
  for row in events.itertuples():
    rec = _read(js, row)
    with np.load(npz / "recordings" / f"{row.participant_id}_{row.task}.npz") as z:
      ref = {k: z[k] for k in z.files}
    assert rec.participant_id == row.participant_id and rec.task == row.task
    assert rec.positions.shape == ref["positions"].shape == (row.frames, 32, 3)
    both = np.isfinite(ref["positions"]) & np.isfinite(rec.positions)
    np.testing.assert_allclose(rec.positions[both], ref["positions"][both], rtol=0,
                               atol=TOLERANCE_M, err_msg=row.file)
    # The reader loses the participant only in frames where the JSON has none.
    seen_npz = np.isfinite(ref["positions"]).any(axis=(1, 2))
    seen_json = np.isfinite(rec.positions).any(axis=(1, 2))
    assert not (seen_json & ~seen_npz).any()
    assert (seen_npz & ~seen_json).sum() <= row.frames_without_participant
    # Dropped joints carry a predicted position at level NONE.
    dropped = ref["confidence"] == 0
    assert (rec.confidence[dropped] == 0).all()
    assert np.isfinite(rec.positions[dropped & seen_json[:, None]]).all()
    assert set(np.unique(np.round(rec.confidence * 3))) <= {0.0, 1.0, 2.0}
    if "timestamps" in ref:
      want = ref["timestamps"] - ref["timestamps"][0]
    else:
      want = np.arange(row.frames) / float(ref["fps"])
    np.testing.assert_allclose(rec.timestamps, want, rtol=0, atol=2e-6)


def test_reader_follows_participant_past_bystander_and_id_switch(cohorts, events):
  npz, js = cohorts
  for row in events[events.bystander | events.id_switch].itertuples():
    rec = _read(js, row)
    ref = np.load(npz / "recordings" / f"{row.participant_id}_{row.task}.npz")["positions"]
    both = np.isfinite(ref) & np.isfinite(rec.positions)
    assert both.mean() > 0.9, row.file
    assert np.abs(rec.positions[both] - ref[both]).max() <= TOLERANCE_M
    followed = rec.meta["followed_body_ids"].split(",")
    assert followed == row.participant_body_ids.split(","), row.file
    if row.bystander:
      assert int(rec.meta["bodies_seen"]) >= 2 and int(rec.meta["frames_multi_body"]) > 0
      assert str(row.bystander_body_id) not in followed
    if row.id_switch:
      assert len(followed) == 2
    else:
      assert len(followed) == 1
  assert (events.frames_bystander_first > 0).any()


def test_json_is_what_the_sdk_writes(cohorts, events):
  _, js = cohorts
  names_first = 0
  for row in events.itertuples():
    text = (js / "recordings" / row.file).read_text()
    doc = json.loads(text, parse_constant=_no_constants)
    assert doc["joint_names"] == list(skeleton.JOINTS)
    assert len(doc["bone_list"]) == 31
    frames = doc["frames"]
    assert [f["frame_id"] for f in frames] == list(range(row.frames))
    usec = [f["timestamp_usec"] for f in frames]
    assert all(isinstance(t, int) for t in usec) and np.all(np.diff(usec) > 0)
    empty = 0
    for f in frames:
      bodies = f["bodies"]
      assert f["num_bodies"] == len(bodies)
      empty += not bodies
      ids = [b["body_id"] for b in bodies]
      assert len(set(ids)) == len(ids)
      names_first += bool(bodies) and bodies[0]["body_id"] == row.bystander_body_id
      for b in bodies:
        pos = np.asarray(b["joint_positions"], np.float64)
        levels = np.asarray(b["joint_confidence_levels"])
        assert pos.shape == (32, 3) and np.isfinite(pos).all()
        assert np.asarray(b["joint_orientations"]).shape == (32, 4)
        assert levels.shape == (32,) and set(levels.tolist()) <= {0, 1, 2}
        assert np.abs(pos).max() < 10_000  # millimetres, not metres
    assert empty == row.frames_without_body
  assert names_first > 0  # bodies are not always listed participant first
  assert (events.frames_without_body > 0).any()


def test_confidence_levels():
  conf = np.array([0.0, 0.1, k4abt.LOW_FROM, 0.45, k4abt.MEDIUM_FROM, 0.92, 1.0])
  np.testing.assert_array_equal(k4abt.levels(conf), [0, 0, 1, 1, 2, 2, 2])


def test_deterministic_across_workers_and_format_switch(cohorts, tmp_path):
  _, js = cohorts
  out = tmp_path / "c"
  synth.generate(str(out), workers=1, **ARGS)  # an npz cohort first, same dir
  summary = synth_main.main(["--out", str(out), "--participants", "5", "--seed", "7",
                             "--seconds", "6", "--targets", "40", "--workers", "2",
                             "--format", "k4abt_json", "--quiet"])
  assert summary["bystander_files"] == 3 and summary["id_switch_files"] == 3
  assert _digest(out) == _digest(js)  # workers 1 vs 2; the npz files are gone
  synth.generate(str(out), workers=1, **ARGS)  # and back
  assert not list((out / "recordings").glob("*.json"))
  assert not (out / "recordings.csv").exists()


def test_prepare_makes_clips_from_json(cohorts, events, tmp_path, capsys):
  _, js = cohorts
  out = tmp_path / "shards"
  rc = prepare.main(["--input", str(js / "recordings"), "--format", "k4abt_json",
                     "--out", str(out), "--clip-frames", "150", "--workers", "1",
                     "--id-pattern", r"(?P<participant>P\d+)_(?P<task>.+)"])
  assert rc == 0, capsys.readouterr()
  report = pd.read_csv(out / shards.QC_REPORT, keep_default_na=False)
  manifest = pd.read_parquet(out / shards.MANIFEST)
  assert len(report) == len(events)
  assert (report.status == "ok").sum() >= 0.9 * len(events)
  assert manifest.source.nunique() >= 0.9 * len(events)
  # Identity from the file names: participant ids and the five tasks.
  assert manifest.participant_id.str.fullmatch(r"P\d{5}").all()
  assert set(manifest.task) == set(synth.TASKS)
  switched = report[report.file.str.endswith(tuple(events.file[events.id_switch]))]
  assert switched.notes.str.contains("followed_body_ids=").all()
