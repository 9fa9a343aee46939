"""Engineered gait features: hand-built trajectories with known answers, bad clips,
the job end to end, planted synthetic truth, and real Kinect v2 walking."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import grain
import ml_collections
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import conftest
import wandb_offline

from gait_jax import schema, skeleton
from gait_jax.data import config as data_config
from gait_jax.data import records
from gait_jax.data import shards as shards_lib
from gait_jax.features import anthropometry, balance, extract, job
from gait_jax.features import kinematics as kin
from gait_jax.features import config as features_config

J = skeleton.JOINT_INDEX
FPS = 30.0
REPO = conftest.REPO


def _standing(t: int) -> np.ndarray:
  """f64[T, 32, 3]: a person facing the camera (forward = -z) 2.5 m away,
  pelvis 0.9 m above the floor (y down), every joint at a plausible place."""
  pos = np.zeros((t, skeleton.NUM_JOINTS, 3))
  pos[:] = [0.0, 0.0, 2.5]
  for name, (x, y, z) in {
      "SPINE_NAVEL": (0, -0.2, 0), "SPINE_CHEST": (0, -0.4, 0), "NECK": (0, -0.55, 0),
      "HEAD": (0, -0.7, 0), "SHOULDER_LEFT": (0.18, -0.5, 0),
      "SHOULDER_RIGHT": (-0.18, -0.5, 0), "HIP_LEFT": (0.1, 0, 0), "HIP_RIGHT": (-0.1, 0, 0),
      "KNEE_LEFT": (0.08, 0.45, 0), "KNEE_RIGHT": (-0.08, 0.45, 0),
      "ANKLE_LEFT": (0.06, 0.82, 0), "ANKLE_RIGHT": (-0.06, 0.82, 0),
      "FOOT_LEFT": (0.06, 0.9, -0.15), "FOOT_RIGHT": (-0.06, 0.9, -0.15)}.items():
    pos[:, J[name]] += (x, y, z)
  return pos


def _walker(seconds: float, stride_hz: float, amplitude: float, speed: float) -> np.ndarray:
  """Feet swinging sinusoidally ahead of and behind the pelvis in antiphase
  (stride frequency `stride_hz`, ±`amplitude` m), the body travelling towards
  the camera at `speed` m/s (0 = a treadmill). Heel strikes are the peaks, so
  step length = 2 * amplitude, cadence = 120 * stride_hz, stance = 0.5."""
  t = np.arange(int(seconds * FPS)) / FPS
  pos = _standing(len(t))
  swing = amplitude * np.sin(2 * np.pi * stride_hz * t)
  for side, sign in (("LEFT", 1.0), ("RIGHT", -1.0)):
    for joint, share in (("ANKLE", 1.0), ("FOOT", 1.0), ("KNEE", 0.5)):
      pos[:, J[f"{joint}_{side}"], 2] -= sign * share * swing  # forward is -z
  pos[:, :, 2] -= speed * t[:, None]
  return pos


def _features(pos: np.ndarray, family: str) -> extract.ClipResult:
  return extract.clip_features(pos.astype(np.float32), np.ones(skeleton.NUM_JOINTS, bool),
                               FPS, family)


@pytest.mark.parametrize("speed", [0.0, 1.2])
def test_walking_sinusoid_known_answers(speed):
  res = _features(_walker(12.0, stride_hz=0.9, amplitude=0.3, speed=speed), "walk")
  f = res.features
  assert res.status in ("ok", "partial"), res.reason
  assert f["cadence_steps_per_min"] == pytest.approx(108.0, rel=0.01)
  assert f["stride_time_s"] == pytest.approx(1 / 0.9, rel=0.01)
  assert f["step_length_m"] == pytest.approx(0.6, abs=0.01)
  assert f["stride_length_m"] == pytest.approx(1.2, abs=0.02)
  assert f["step_width_m"] == pytest.approx(0.12, abs=0.005)
  assert f["stance_fraction"] == pytest.approx(0.5, abs=0.02)
  assert f["stride_time_cv"] < 0.01 and f["step_time_asymmetry"] < 0.01
  # Treadmill-aware: stride length x stride frequency when the pelvis stays put,
  # the pelvis's own speed when it travels.
  assert f["speed_m_s"] == pytest.approx(1.08 if speed == 0 else speed, rel=0.02)
  for name in extract.FEATURES:  # other families' columns stay NaN
    if name not in extract.FAMILIES["walk"]:
      assert np.isnan(f[name]), name


def test_walking_asymmetry():
  # The left foot swings 5 cm further forward: left steps 0.65 m, right 0.55 m.
  pos = _walker(12.0, 0.9, 0.3, 0.0)
  pos[:, [J["ANKLE_LEFT"], J["FOOT_LEFT"]], 2] -= 0.05
  f = _features(pos, "walk").features
  assert f["step_length_asymmetry"] == pytest.approx(0.1 / 0.6, abs=0.02)
  assert f["step_time_asymmetry"] < 0.02
  # The right foot lags by 0.55 instead of 0.5 cycles: steps of 0.55 and 0.45 strides.
  t = np.arange(int(12 * FPS)) / FPS
  pos = _walker(12.0, 0.9, 0.3, 0.0)
  late = 0.3 * np.sin(2 * np.pi * (0.9 * t - 0.55))
  for joint, share in (("ANKLE", 1.0), ("FOOT", 1.0), ("KNEE", 0.5)):
    pos[:, J[f"{joint}_RIGHT"], 2] = _standing(1)[0, J[f"{joint}_RIGHT"], 2] - share * late
  f = _features(pos, "walk").features
  assert f["step_time_asymmetry"] == pytest.approx(0.1 / 0.5, abs=0.03)


def test_romberg_sway_of_known_ellipse():
  seconds, hz, a, b = 20.0, 0.25, 0.02, 0.01
  t = np.arange(int(seconds * FPS)) / FPS
  ap, ml = a * np.cos(2 * np.pi * hz * t), b * np.sin(2 * np.pi * hz * t)
  m = balance.sway_measures(ap, ml, FPS)
  assert m["sway_area_m2"] == pytest.approx(np.pi * 5.991 * a * b / 2, rel=0.01)
  assert m["sway_rms_ap_m"] == pytest.approx(a / np.sqrt(2), rel=0.01)
  circle = balance.sway_measures(a * np.cos(2 * np.pi * hz * t), a * np.sin(2 * np.pi * hz * t),
                                 FPS)
  assert circle["sway_path_m_s"] == pytest.approx(2 * np.pi * a * hz, rel=0.01)
  # The whole skeleton swaying: trunk forward (-z) by ap and to its left (+x) by ml.
  pos = _standing(len(t))
  upper = [J[n] for n in skeleton.JOINTS if not n.startswith(("ANKLE", "FOOT"))]
  pos[:, upper, 2] -= ap[:, None]
  pos[:, upper, 0] += ml[:, None]
  f = _features(pos, "romberg").features
  assert f["sway_area_m2"] == pytest.approx(np.pi * 5.991 * a * b / 2, rel=0.05)
  assert f["sway_rms_ap_m"] == pytest.approx(a / np.sqrt(2), rel=0.05)
  assert f["sway_rms_ml_m"] == pytest.approx(b / np.sqrt(2), rel=0.05)
  assert np.isnan(f["cadence_steps_per_min"])


def test_sit_to_stand_repetitions_and_cycle():
  t = np.arange(int(12.5 * FPS)) / FPS
  pos = _standing(len(t))
  # Seated (pelvis 0.4 m lower) at t = 0, 3, 6, ...; standing half a cycle later.
  drop = 0.4 * 0.5 * (1 + np.cos(2 * np.pi * t / 3.0))
  upper = [J[n] for n in skeleton.JOINTS if not n.startswith(("ANKLE", "FOOT"))]
  pos[:, upper, 1] += drop[:, None]
  f = _features(pos, "sit_to_stand").features
  assert f["sts_repetitions"] == 4
  assert f["sts_cycle_s"] == pytest.approx(3.0, rel=0.02)
  assert f["sts_per_min"] == pytest.approx(60 * 4 / 12.5, rel=0.01)


def test_task_families():
  assert extract.family_of("walk_in_place") == "in_place"
  assert extract.family_of("treadmill") == "walk"
  assert extract.family_of("self_selected_walk") == "walk"
  assert extract.family_of("Walk") == "walk"
  assert extract.family_of("romberg_eyes_closed") == "romberg"
  assert extract.family_of("sit_to_stand") == "sit_to_stand"
  assert extract.family_of("reading") is None
  assert extract.family_of("reading", ("read*=romberg",)) == "romberg"
  with pytest.raises(ValueError, match="glob=family"):
    extract.family_of("walk", ("walk=running",))


def test_bad_clips_fail_with_a_reason():
  good = _walker(4.0, 0.9, 0.3, 0.0).astype(np.float32)
  present = np.ones(skeleton.NUM_JOINTS, bool)
  short = extract.clip_features(good[:20], present, FPS, "walk")
  assert short.status == "failed" and "too short" in short.reason
  nan = good.copy()
  nan[:, J["FOOT_LEFT"]] = np.nan
  res = extract.clip_features(nan, present, FPS, "walk")
  assert res.status == "failed" and "NaN joints" in res.reason and "FOOT_LEFT" in res.reason
  lacking = present.copy()
  lacking[J["KNEE_RIGHT"]] = False
  res = extract.clip_features(good, lacking, FPS, "walk")
  assert res.status == "failed" and "missing joints: KNEE_RIGHT" in res.reason
  still = extract.clip_features(_standing(120).astype(np.float32), present, FPS, "walk")
  assert "too few gait events" in still.reason
  assert np.isnan(still.features["cadence_steps_per_min"])
  assert extract.clip_features(good, present, FPS, None).status == "failed"
  # A short gap is filled, not fatal.
  gap = good.copy()
  gap[50:55, J["ANKLE_LEFT"]] = np.nan
  assert extract.clip_features(gap, present, FPS, "walk").status != "failed"


# A standing body with known segments (m): the left thigh and upper arm are longer
# than the right ones, so a side average is told apart from either side.
_BODY = {
    "PELVIS": (0.0, 0.0, 0.0), "SPINE_NAVEL": (0.0, -0.15, 0.0),
    "SPINE_CHEST": (0.0, -0.30, 0.0), "NECK": (0.0, -0.50, 0.0), "HEAD": (0.0, -0.65, 0.0),
    "SHOULDER_LEFT": (0.19, -0.45, 0.0), "SHOULDER_RIGHT": (-0.19, -0.45, 0.0),
    "ELBOW_LEFT": (0.19, -0.13, 0.0), "ELBOW_RIGHT": (-0.19, -0.15, 0.0),
    "WRIST_LEFT": (0.19, 0.12, 0.0), "WRIST_RIGHT": (-0.19, 0.10, 0.0),
    "HIP_LEFT": (0.09, 0.05, 0.0), "HIP_RIGHT": (-0.09, 0.05, 0.0),
    "KNEE_LEFT": (0.09, 0.49, 0.0), "KNEE_RIGHT": (-0.09, 0.47, 0.0),
    "ANKLE_LEFT": (0.09, 0.90, 0.0), "ANKLE_RIGHT": (-0.09, 0.88, 0.0),
    "FOOT_LEFT": (0.09, 0.95, -0.12), "FOOT_RIGHT": (-0.09, 0.93, -0.12),
}
_BODY_SIZE = {  # the answers, m
    "thigh_length_m": 0.43, "shank_length_m": 0.41, "leg_length_m": 0.84,
    "trunk_length_m": 0.30, "upper_arm_length_m": 0.31, "forearm_length_m": 0.25,
    "shoulder_width_m": 0.38, "hip_width_m": 0.18,
}


def _moving_body(t: int, tumble: bool = True, seed: int = 0) -> np.ndarray:
  """f32[T, 32, 3]: _BODY moved about 2-4 m from the camera and, if `tumble`,
  turned by a random rotation each frame (a distance between joints depends on
  neither); joints not in _BODY sit at the pelvis."""
  rng = np.random.default_rng(seed)
  body = np.zeros((skeleton.NUM_JOINTS, 3))
  for name, xyz in _BODY.items():
    body[J[name]] = xyz
  rot = (stats.special_ortho_group.rvs(3, size=t, random_state=rng) if tumble
         else np.broadcast_to(np.eye(3), (t, 3, 3)))
  shift = rng.uniform([-0.5, -0.2, 2.0], [0.5, 0.2, 4.0], (t, 1, 3))
  return (body @ np.swapaxes(rot, 1, 2) + shift).astype(np.float32)


def test_body_size_of_known_skeleton():
  pos = _moving_body(90)
  present = np.ones(skeleton.NUM_JOINTS, bool)
  feats, issues = anthropometry.body_size_features(pos)
  assert not issues and list(feats) == list(anthropometry.BODY_FEATURES)
  for name, length in _BODY_SIZE.items():
    assert feats[name] == pytest.approx(length, abs=1e-5), name
  # Corrupted frames move no median: a knee 30 cm off in a few frames; a
  # shoulder at the camera's origin (a tracker's "lost"), a wrist NaN and an
  # elbow interpolated (confidence 0) in most frames, which are not measurements.
  bad = pos.copy()
  bad[[3, 40, 77], J["KNEE_LEFT"]] += np.float32([0.0, 0.3, 0.0])
  bad[5:60, J["SHOULDER_RIGHT"]] = 0.0
  bad[10:70, J["WRIST_LEFT"]] = np.nan
  confidence = np.ones(bad.shape[:2], np.float32)
  shoulder, elbow = pos[20:80, J["SHOULDER_RIGHT"]], pos[20:80, J["ELBOW_RIGHT"]]
  bad[20:80, J["ELBOW_RIGHT"]] = shoulder + 1.5 * (elbow - shoulder)  # 15 cm longer
  confidence[20:80, J["ELBOW_RIGHT"]] = 0.0
  res = extract.clip_features(bad, present, FPS, "romberg", confidence=confidence)
  for name, length in _BODY_SIZE.items():
    assert res.features[name] == pytest.approx(length, abs=1e-5), name
  assert "body size" not in res.reason
  # Without the confidences the interpolated elbow counts, and is the majority.
  res = extract.clip_features(bad, present, FPS, "romberg")
  assert res.features["upper_arm_length_m"] > _BODY_SIZE["upper_arm_length_m"] + 0.05


def test_body_size_nan_where_a_joint_is_absent():
  pos = _moving_body(90, tumble=False)
  present = np.ones(skeleton.NUM_JOINTS, bool)
  # Records store a joint the source lacks as 0 (the UCalgary files lack SPINE_CHEST).
  present[J["SPINE_CHEST"]] = False
  pos[:, J["SPINE_CHEST"]] = 0.0
  # One elbow seen in 8 frames only (< segment_min_frames), the other never; the
  # right knee never: thigh and shank from the left leg alone.
  unseen = pos.copy()
  unseen[8:, J["ELBOW_LEFT"]] = np.nan
  unseen[:, [J["ELBOW_RIGHT"], J["KNEE_RIGHT"]]] = np.nan
  feats, issues = anthropometry.body_size_features(kin.as_nan_missing(unseen, present))
  for name in ("trunk_length_m", "upper_arm_length_m", "forearm_length_m"):
    assert np.isnan(feats[name]), name
  assert feats["thigh_length_m"] == pytest.approx(0.44, abs=1e-5)
  assert feats["shank_length_m"] == pytest.approx(0.41, abs=1e-5)
  assert feats["leg_length_m"] == pytest.approx(0.85, abs=1e-5)
  assert feats["shoulder_width_m"] == pytest.approx(0.38, abs=1e-5)
  [issue] = issues
  assert issue.startswith("body size not measured: trunk_length_m (PELVIS-SPINE_CHEST in "
                          "0 frames), upper_arm_length_m (SHOULDER_LEFT-ELBOW_LEFT in 8 "
                          "frames, SHOULDER_RIGHT-ELBOW_RIGHT in 0 frames)")
  # Through the extractor: the clip is partial, with the reason, not failed.
  unseen[:, J["KNEE_RIGHT"]] = pos[:, J["KNEE_RIGHT"]]
  res = extract.clip_features(unseen, present, FPS, "romberg")
  assert res.status == "partial"
  assert "body size not measured: trunk_length_m" in res.reason
  assert res.reason.endswith("; NaN: trunk_length_m, upper_arm_length_m, forearm_length_m")
  assert np.isfinite(res.features["sway_area_m2"])
  assert res.features["thigh_length_m"] == pytest.approx(0.43, abs=1e-5)
  # Turned off, body size is neither computed nor expected.
  opts = extract.ClipOptions(anthropometry=anthropometry.BodySizeOptions(body_size=False))
  res = extract.clip_features(unseen, present, FPS, "romberg", opts)
  assert all(np.isnan(res.features[f]) for f in anthropometry.BODY_FEATURES)
  assert "body size" not in res.reason and "trunk_length_m" not in res.reason
  assert not set(anthropometry.BODY_FEATURES) & set(extract.expected("romberg", opts))
  config = features_config.get_features_config()
  config.body_size = False
  assert features_config.clip_options(config) == opts


def test_every_family_gets_body_size():
  assert extract.FEATURES[-len(anthropometry.BODY_FEATURES):] == anthropometry.BODY_FEATURES
  for family, feats in extract.FAMILIES.items():
    assert set(anthropometry.BODY_FEATURES) <= set(feats), family
    res = extract.clip_features(_moving_body(60, seed=1), np.ones(skeleton.NUM_JOINTS, bool),
                                FPS, family)
    for name, length in _BODY_SIZE.items():
      assert res.features[name] == pytest.approx(length, abs=1e-5), (family, name)


def _with_bad_clips(src: pathlib.Path, dst: pathlib.Path, participants: int = 2) -> int:
  """A copy of `src`'s clips of the first participants plus a corrupt record, a
  5-frame clip and an all-NaN clip (all P00001 treadmill); returns the clip count."""
  from array_record.python.array_record_data_source import ArrayRecordDataSource
  manifest, paths = shards_lib.open_shard_set(src)
  keep = manifest[manifest["participant_id"].isin(
      sorted(manifest["participant_id"].unique())[:participants])]
  source = ArrayRecordDataSource(paths)
  writer = shards_lib.ShardSetWriter(dst, clips_per_shard=16)
  cols = [c for c in shards_lib.MANIFEST_COLUMNS if c not in ("clip_id", "shard", "index")]
  for _, row in keep.iterrows():
    writer.add(source[int(row["clip_id"])], {c: row[c] for c in cols})
  first = records.decode(source[int(keep["clip_id"].iloc[0])])
  ident = {c: keep.iloc[0][c] for c in cols}
  ident.update(participant_id="P00001", task="treadmill")
  writer.add(b"GJCL\x01\x00garbage", {**ident, "frames": 60})
  short = records.Clip(first.positions[:5].copy(), first.confidence[:5].copy(), first.present,
                       "P00001", "treadmill", "0", "x", 0, 30.0)
  writer.add(records.encode(short), {**ident, "frames": 5})
  blank = records.Clip(np.full_like(first.positions, np.nan), first.confidence, first.present,
                       "P00001", "treadmill", "0", "x", 0, 30.0)
  writer.add(records.encode(blank), ident)
  writer.commit()
  return len(keep) + 3


def test_job_through_main_reports_bad_clips(tiny_shards, tmp_path):
  shards = tmp_path / "shards"
  total = _with_bad_clips(tiny_shards, shards)
  work = tmp_path / "work"
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
  proc = subprocess.run(
      [sys.executable, "-m", "gait_jax.main", "--config", "experiments/features.py:smoke",
       "--workdir", str(work), f"--config.data.shards={shards}",
       "--config.data.max_clips_per_group=0"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  table = pd.read_parquet(work / job.FEATURES_FILE)
  assert list(table.columns[:4]) == list(job.KEY_COLUMNS)
  assert list(table.columns[4:]) == list(extract.FEATURES)
  assert set(table["ablation"]) == {"none"}
  assert table["n_clips"].dtype == np.int32  # the schema's type, as in embeddings
  assert schema.read_table(str(work / job.FEATURES_FILE))[1] == list(extract.FEATURES)
  assert all(table[f].dtype == np.float64 for f in extract.FEATURES)
  assert len(table) == 2 * 5 and not table.duplicated(["participant_id", "task"]).any()
  walk = table[table["task"] == "treadmill"]
  assert walk["cadence_steps_per_min"].between(60, 140).all()
  assert table.loc[table["task"] == "romberg_eyes_closed", "cadence_steps_per_min"].isna().all()
  assert table.loc[table["task"] == "sit_to_stand", "sway_area_m2"].isna().all()
  # Body size on every task, in metres.
  assert table["leg_length_m"].between(0.6, 1.1).all()
  assert table["hip_width_m"].between(0.1, 0.3).all()
  report = pd.read_csv(work / job.REPORT_FILE)
  failed = report[report["status"] == "failed"]
  reasons = " | ".join(failed["reason"])
  assert "corrupt record" in reasons and "too short" in reasons and "NaN joints" in reasons
  assert len(failed) == 3  # the real clips are all usable
  clips = pd.read_parquet(work / job.CLIPS_FILE)
  assert len(clips) == total
  # n_clips counts the usable clips only.
  p1 = clips[(clips["participant_id"] == "P00001") & (clips["task"] == "treadmill")]
  row = walk[walk["participant_id"] == "P00001"].iloc[0]
  assert row["n_clips"] == (p1["status"] != "failed").sum() == len(p1) - 3
  # The job's offline W&B run: counts, and exclusions per status and kind of
  # reason, never per participant.
  records = wandb_offline.read_offline_run(work)
  run = wandb_offline.run_info(records)
  assert (run.run_group, run.job_type) == (tmp_path.name, "features")
  summary = wandb_offline.summary(records)
  assert summary["clips"] == total and summary["rows"] == len(table) == summary["groups"]
  assert summary["clips_failed"] == 3 and summary["clips_per_s"] > 0
  assert summary["clips_ok"] + summary["clips_partial"] == total - 3
  [excluded] = wandb_offline.logged_tables(work, "excluded")
  assert excluded["columns"] == ["status", "reason", "clips"]
  failed_kinds = {reason: n for status, reason, n in excluded["data"] if status == "failed"}
  assert failed_kinds == {"corrupt record": 1, "too short": 1, "NaN joints": 1}
  assert sum(n for _, _, n in excluded["data"]) == len(report)
  assert summary["excluded/failed/too_short"] == 1
  assert wandb_offline.files_mention(work, set(clips["participant_id"])) == []


def _corrupt_bytes(path: pathlib.Path) -> None:
  """Flips 64 bytes mid-file: the record stored there fails its checksum on read."""
  data = bytearray(path.read_bytes())
  mid = len(data) // 2
  data[mid:mid + 64] = bytes(b ^ 0xFF for b in data[mid:mid + 64])
  path.write_bytes(bytes(data))


def _job_config(shards: pathlib.Path, **data) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict({"job": "features",
                                      "data": data_config.get_data_config(),
                                      "features": features_config.get_features_config()})
  config.data.update(shards=str(shards), split="all", **data)
  return config


def test_job_through_grain_workers_matches_direct_extraction(tiny_shards, tmp_path):
  """The job's per-clip features are extract.clip_features on each record as
  stored (metres, camera frame, NaN gaps kept — no pipeline centring or scaling),
  whether Grain's worker processes or the main process computes them; a record
  the shard cannot give back is a report row, not a crash."""
  shards = tmp_path / "shards"
  _with_bad_clips(tiny_shards, shards)
  manifest, paths = shards_lib.open_shard_set(shards)
  _corrupt_bytes(pathlib.Path(paths[0]))
  opts = features_config.clip_options(features_config.get_features_config())
  source = grain.sources.ArrayRecordDataSource(paths)
  expected = []
  for row in manifest.itertuples():
    family = extract.family_of(row.task)
    try:
      record = source[row.clip_id]
    except Exception:  # pylint: disable=broad-except
      expected.append((row.clip_id, "failed", "unreadable record", {}))
      continue
    try:
      clip = records.decode(record)
    except ValueError:
      expected.append((row.clip_id, "failed", "corrupt record", {}))
      continue
    res = extract.clip_features(clip.positions, clip.present, clip.fps, family, opts,
                                confidence=clip.confidence)
    expected.append((row.clip_id, res.status, res.reason, res.features))
  assert sum(e[2] == "unreadable record" for e in expected) >= 1

  table = job.run(_job_config(shards, worker_count=2, worker_buffer_size=1),
                  str(tmp_path / "workers"), log=lambda *_: None)
  clips = pd.read_parquet(tmp_path / "workers" / job.CLIPS_FILE)
  assert clips["clip_id"].tolist() == manifest["clip_id"].tolist()
  assert (clips[["participant_id", "task"]].to_numpy()
          == manifest[["participant_id", "task"]].astype(str).to_numpy()).all()
  for got, (clip_id, status, reason, features) in zip(clips.itertuples(), expected):
    assert got.clip_id == clip_id and got.status == status, (got.clip_id, got.reason)
    if status == "failed":
      assert got.reason.startswith(reason), got.reason
      assert clips.loc[got.Index, list(extract.FEATURES)].isna().all()
    else:
      assert got.reason == reason
      np.testing.assert_array_equal(clips.loc[got.Index, list(extract.FEATURES)]
                                    .to_numpy(np.float64),
                                    np.array([features[f] for f in extract.FEATURES]))
  report = pd.read_csv(tmp_path / "workers" / job.REPORT_FILE)
  assert set(report["clip_id"]) == set(clips.loc[clips["status"] != "ok", "clip_id"])
  assert report["reason"].str.startswith("unreadable record").sum() >= 1
  pd.testing.assert_frame_equal(table, job.aggregate(clips))

  # In the main process, and data.max_clips_per_group applies: the same rows.
  first = job.run(_job_config(shards, max_clips_per_group=1), str(tmp_path / "first"),
                  log=lambda *_: None)
  capped = pd.read_parquet(tmp_path / "first" / job.CLIPS_FILE)
  firsts = clips.groupby(["participant_id", "task"]).head(1).reset_index(drop=True)
  pd.testing.assert_frame_equal(capped, firsts)
  assert (first["n_clips"] <= 1).all() and len(first) == len(table)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> pathlib.Path:
  """16 synthetic people × 5 tasks × 12 s, prepared into 10 s clips."""
  return conftest.build_cohort(tmp_path_factory.mktemp("features_cohort"),
                               participants=16, seconds=12.0, clip_frames=300,
                               clip_stride=300)


def test_features_recover_planted_truth(cohort, tmp_path):
  config = _load_experiment("smoke")
  config.data.shards = str(cohort / "shards")
  table = job.run(config, str(tmp_path), log=lambda *_: None)
  latents = pd.read_parquet(cohort / "cohort" / "latents.parquet").set_index("participant_id")
  table = table.set_index(["participant_id", "task"])
  checks = {  # (task, feature, latent motor parameter): minimum Pearson r
      ("self_selected_walk", "speed_m_s", "motor_speed"): 0.9,
      ("self_selected_walk", "cadence_steps_per_min", "motor_cadence"): 0.9,
      ("self_selected_walk", "knee_rom_deg", "motor_knee_swing_deg"): 0.8,
      ("treadmill", "cadence_steps_per_min", "motor_treadmill_cadence"): 0.9,
      ("treadmill", "step_width_m", "motor_step_width"): 0.8,
      ("treadmill", "pelvis_sway_ml_m", "motor_pelvis_sway_m"): 0.8,
      ("walk_in_place", "cadence_steps_per_min", "motor_wip_cadence"): 0.9,
      ("sit_to_stand", "sts_cycle_s", "motor_sts_cycle_s"): 0.9,
      ("romberg_eyes_closed", "sway_ap_deg", "motor_romberg_sway_deg"): 0.7,
  }
  for (task, feature, latent), minimum in checks.items():
    x = table.xs(task, level="task")[feature]
    assert x.notna().mean() > 0.8, (task, feature)
    r = stats.pearsonr(x.dropna(), latents.loc[x.dropna().index, latent])[0]
    assert r > minimum, (task, feature, latent, r)
  # The treadmill runs at 3 km/h whoever walks on it.
  speed = table.xs("treadmill", level="task")["speed_m_s"]
  assert speed.between(0.6, 1.0).all() and speed.std() < 0.1
  # Body size: a person's median over tasks against their clinic measurements.
  phenotypes = pd.read_parquet(cohort / "cohort" / "phenotypes.parquet")
  body = table.groupby("participant_id")[list(anthropometry.BODY_FEATURES)].median()
  body = body.join(phenotypes.set_index("participant_id")[["height", "leg_length"]])
  assert body.notna().all().all()
  assert stats.pearsonr(body["leg_length_m"], body["leg_length"])[0] > 0.9
  # The skeleton's leg (hip to ankle joint) is the leg_length phenotype, in metres.
  np.testing.assert_allclose(body["leg_length_m"], body["leg_length"] / 100, atol=0.02)
  stature = body["leg_length_m"] + body["trunk_length_m"]
  assert stats.pearsonr(stature, body["height"])[0] > 0.9
  for name in ("thigh_length_m", "shank_length_m", "upper_arm_length_m", "forearm_length_m"):
    assert stats.pearsonr(body[name], body["height"])[0] > 0.7, name


def _load_experiment(variant: str):
  import importlib.util
  spec = importlib.util.spec_from_file_location("features_experiment",
                                                REPO / "experiments" / "features.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def test_experiment_config_variants():
  default, smoke = _load_experiment(None), _load_experiment("smoke")
  assert default.job == smoke.job == "features"
  assert default.data.split == "all" and smoke.data.max_clips_per_group > 0
  # One knob each: which clips and how many workers are config.data's.
  assert not {"max_clips_per_group", "workers", "chunk_clips"} & set(default.features)
  opts = features_config.clip_options(default.features)
  assert opts.gait.events.cutoff_hz == default.features.cutoff_hz
  with pytest.raises(ValueError):
    _load_experiment("paper")


def test_real_kinect_v2_walking_cadence(ucalgary_dir):
  from data_tools.readers import ReadOptions, get_reader
  read = get_reader("kinect_v2_csv")
  files = sorted(ucalgary_dir.glob("sub*/Run1/*_N.csv"))[:10]
  assert files
  cadence = []
  for path in files:
    rec = read(str(path), ReadOptions())
    pos, _, present = skeleton.KINECT_V2.to_canonical(rec.positions, rec.confidence)
    res = extract.clip_features(pos, present, 30.0, "walk")
    assert res.status != "failed", (path.name, res.reason)
    cadence.append(res.features["cadence_steps_per_min"])
  cadence = np.array(cadence)
  ok = cadence[np.isfinite(cadence)]
  assert len(ok) >= 0.7 * len(files)
  assert ((ok > 80) & (ok < 130)).mean() >= 0.8, ok
