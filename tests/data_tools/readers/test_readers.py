"""Readers: every format on small crafted files, the real UCalgary CSVs, bad files."""

from __future__ import annotations

import json
import pathlib
import sys
import types

import numpy as np
import pytest

from data_tools.readers import ReadOptions, get_reader
from data_tools.readers import csv as csv_reader
from data_tools.readers import k4abt_json, kinect_v2_csv, mkv, npz
from data_tools.recording import Excluded, Recording
from gait_jax import skeleton

OPTS = ReadOptions()
WHO = ReadOptions(participant_id="p1", task="walk", fps=30.0)


def _reason(read, path, opts=OPTS) -> str:
  with pytest.raises(Excluded) as info:
    read(str(path), opts)
  return info.value.reason


def _pose(num_joints: int, pelvis: tuple[float, float, float], scale: float = 1.0
          ) -> np.ndarray:
  """f64[J, 3]: a distinct, deterministic pose around a pelvis position."""
  j = np.arange(num_joints, dtype=np.float64)[:, None]
  return np.asarray(pelvis) + scale * np.concatenate([0.01 * j, -0.02 * j, 0.0 * j], 1)


def _write_npz(path: pathlib.Path, **arrays) -> pathlib.Path:
  np.savez(path, **arrays)
  return path


def _good_npz(tmp_path, name="rec.npz", **overrides) -> pathlib.Path:
  positions = np.stack([_pose(32, (0.0, 0.0, 3.0 - 0.05 * t)) for t in range(6)])
  positions[2, 5] = np.nan
  arrays = dict(positions=positions.astype(np.float32), fps=np.float32(30),
                participant_id="p7", task="treadmill", sex="F", age=np.int32(61))
  arrays.update(overrides)
  return _write_npz(tmp_path / name, **{k: v for k, v in arrays.items() if v is not None})


def test_npz_reads_positions_identity_and_meta(tmp_path):
  rec = npz.read(str(_good_npz(tmp_path)), OPTS)
  assert isinstance(rec, Recording)
  assert (rec.participant_id, rec.task, rec.session, rec.layout) == (
      "p7", "treadmill", "0", "azure_kinect")
  assert rec.positions.shape == (6, 32, 3) and rec.positions.dtype == np.float32
  np.testing.assert_allclose(rec.positions[1, 3], [0.03, -0.06, 2.95], atol=1e-6)
  np.testing.assert_allclose(rec.timestamps, np.arange(6) / 30.0)
  assert np.isnan(rec.positions[2, 5]).all() and rec.confidence[2, 5] == 0
  assert rec.confidence.sum() == 6 * 32 - 1
  assert rec.meta == {"sex": "F", "age": "61"}


def test_npz_timestamps_confidence_layout_and_opts_fallback(tmp_path):
  times = np.array([0.0, 0.03, 0.07, 0.1])
  conf = np.full((4, 25), 0.5, np.float32)
  path = _write_npz(tmp_path / "v2.npz", positions=np.zeros((4, 25, 3), np.float32),
                    timestamps=times, confidence=conf, layout="kinect_v2", session="s2")
  rec = npz.read(str(path), ReadOptions(participant_id="from_opts", task="tug"))
  assert (rec.participant_id, rec.task, rec.session, rec.layout) == (
      "from_opts", "tug", "s2", "kinect_v2")
  np.testing.assert_array_equal(rec.timestamps, times)
  assert rec.confidence.shape == (4, 25) and np.all(rec.confidence == 0.5)
  # --layout fills in for a file without one; the file's own value wins over nothing.
  path = _write_npz(tmp_path / "v1.npz", positions=np.zeros((3, 20, 3)), fps=15,
                    participant_id="a", task="b")
  assert npz.read(str(path), ReadOptions(layout="kinect_v1")).layout == "kinect_v1"


@pytest.mark.parametrize("overrides, reason", [
    (dict(positions=np.zeros((5, 25, 3))), "wrong_joint_count"),
    (dict(positions=np.zeros((5, 32))), "wrong_joint_count"),
    (dict(positions=np.zeros((0, 32, 3))), "empty"),
    (dict(fps=None), "bad_metadata"),
    (dict(fps=0.0), "bad_metadata"),
    (dict(fps=None, timestamps=np.array([0, .1, .1, .2, .3, .4])), "bad_metadata"),
    (dict(fps=None, timestamps=np.arange(5) / 30), "bad_metadata"),
    (dict(confidence=np.ones((6, 31))), "bad_metadata"),
    (dict(confidence=np.full((6, 32), 1.5)), "bad_metadata"),
    (dict(layout="kinect_v3"), "bad_metadata"),
    (dict(participant_id=None), "bad_metadata"),
    (dict(task=None), "bad_metadata"),
    (dict(positions=np.array([["a"] * 3] * 32)[None]), "unreadable"),
])
def test_npz_bad_files(tmp_path, overrides, reason):
  assert _reason(npz.read, _good_npz(tmp_path, **overrides)) == reason


def test_npz_layout_conflict_truncated_empty_and_garbage(tmp_path):
  v2 = _good_npz(tmp_path, "v2.npz", positions=np.zeros((3, 25, 3)), layout="kinect_v2")
  assert _reason(npz.read, v2, ReadOptions(layout="azure_kinect")) == "bad_metadata"
  data = _good_npz(tmp_path).read_bytes()
  (tmp_path / "cut.npz").write_bytes(data[:len(data) // 2])
  assert _reason(npz.read, tmp_path / "cut.npz") == "truncated"
  (tmp_path / "zero.npz").write_bytes(b"")
  assert _reason(npz.read, tmp_path / "zero.npz") == "empty"
  (tmp_path / "junk.npz").write_bytes(b"this is not numpy at all\n" * 10)
  assert _reason(npz.read, tmp_path / "junk.npz") == "unreadable"
  np.save(tmp_path / "single.npy", np.zeros((3, 32, 3)))
  assert _reason(npz.read, tmp_path / "single.npy") == "unreadable"


def _csv_text(layout: skeleton.Layout, rows: np.ndarray, times=None, upper=False) -> str:
  names = [f"{j}_{a}" for j in layout.joints for a in "xyz"]
  names = [n.upper() if upper else n for n in names]
  header = (["timestamp"] if times is not None else []) + names
  lines = [",".join(header)]
  for t, row in enumerate(rows.reshape(len(rows), -1)):
    cells = ["" if np.isnan(v) else repr(float(v)) for v in row]
    lines.append(",".join(([repr(times[t])] if times is not None else []) + cells))
  return "\n".join(lines) + "\n"


def test_csv_sidecar_units_and_opts_precedence(tmp_path):
  layout = skeleton.KINECT_V1
  rows = np.stack([_pose(20, (100.0, 900.0, 3000.0 - 50 * t), scale=1000) for t in range(4)])
  rows[1, 7] = np.nan
  path = tmp_path / "walk.csv"
  path.write_text(_csv_text(layout, rows, upper=True))
  (tmp_path / "walk.csv.json").write_text(json.dumps(
      dict(participant_id="s1", task="walk", session="3", fps=25, layout="kinect_v1",
           units="mm", sex="M")))
  rec = csv_reader.read(str(path), ReadOptions(task="walk_fast"))
  assert (rec.participant_id, rec.task, rec.session, rec.layout) == (
      "s1", "walk_fast", "3", "kinect_v1")
  assert rec.meta == {"sex": "M"}
  assert rec.positions.shape == (4, 20, 3)
  np.testing.assert_allclose(rec.positions[0, 0], [0.1, 0.9, 3.0], atol=1e-6)  # mm → m
  np.testing.assert_allclose(rec.timestamps, np.arange(4) / 25.0)
  assert np.isnan(rec.positions[1, 7]).all() and rec.confidence[1, 7] == 0
  assert rec.confidence.sum() == 4 * 20 - 1
  # Explicit --units and --fps beat the sidecar.
  rec = csv_reader.read(str(path), ReadOptions(units="cm", fps=50))
  np.testing.assert_allclose(rec.positions[0, 0], [1.0, 9.0, 30.0], atol=1e-5)
  np.testing.assert_allclose(rec.timestamps[1], 0.02)


def test_csv_timestamp_and_confidence_columns(tmp_path):
  layout = skeleton.AZURE_KINECT
  rows = np.stack([_pose(32, (0.0, 0.0, 2.0)) for _ in range(3)])
  text = _csv_text(layout, rows, times=[0.5, 0.53, 0.6]).splitlines()
  text[0] += ",Head_Conf"
  text[1:] = [line + c for line, c in zip(text[1:], [",0.25", ",", ",1"])]
  path = tmp_path / "t.csv"
  path.write_text("\n".join(text) + "\n")
  rec = csv_reader.read(str(path), ReadOptions(participant_id="p", task="t"))
  np.testing.assert_array_equal(rec.timestamps, [0.5, 0.53, 0.6])
  head = skeleton.JOINT_INDEX["HEAD"]
  np.testing.assert_array_equal(rec.confidence[:, head], [0.25, 1.0, 1.0])
  assert rec.confidence[:, 0].tolist() == [1.0, 1.0, 1.0]


def _bad_csv(tmp_path, text: str, name="bad.csv") -> pathlib.Path:
  path = tmp_path / name
  path.write_text(text)
  return path


def test_csv_bad_files(tmp_path):
  layout = skeleton.AZURE_KINECT
  good = _csv_text(layout, np.stack([_pose(32, (0.0, 0.0, 2.0))] * 3))
  header, *rows = good.splitlines()
  # Drop the HEAD columns: the detail must name them.
  cols = header.split(",")
  keep = [i for i, c in enumerate(cols) if not c.startswith("HEAD_")]
  cut = "\n".join(",".join(line.split(",")[i] for i in keep) for line in [header] + rows)
  with pytest.raises(Excluded) as info:
    csv_reader.read(str(_bad_csv(tmp_path, cut)), WHO)
  assert info.value.reason == "wrong_joint_count" and "head_x" in info.value.detail
  assert _reason(csv_reader.read, _bad_csv(tmp_path, ""), WHO) == "empty"
  assert _reason(csv_reader.read, _bad_csv(tmp_path, header + "\n"), WHO) == "empty"
  garbage = good.replace(rows[1].split(",")[4], "abc", 1)
  assert _reason(csv_reader.read, _bad_csv(tmp_path, garbage), WHO) == "unreadable"
  assert _reason(csv_reader.read, _bad_csv(tmp_path, good[:-200]), WHO) == "truncated"
  assert _reason(csv_reader.read, _bad_csv(tmp_path, good), OPTS) == "bad_metadata"
  no_fps = ReadOptions(participant_id="p", task="t")
  assert _reason(csv_reader.read, _bad_csv(tmp_path, good), no_fps) == "bad_metadata"
  mm_typo = ReadOptions(participant_id="p", task="t", fps=30, units="inch")
  assert _reason(csv_reader.read, _bad_csv(tmp_path, good), mm_typo) == "bad_metadata"
  back = _csv_text(layout, np.stack([_pose(32, (0.0, 0.0, 2.0))] * 3), times=[0, .2, .1])
  assert _reason(csv_reader.read, _bad_csv(tmp_path, back), WHO) == "bad_metadata"
  (tmp_path / "side.csv.json").write_text("{not json")
  assert _reason(csv_reader.read, _bad_csv(tmp_path, good, "side.csv"), WHO) == "bad_metadata"
  conf = good.splitlines()
  conf = [conf[0] + ",pelvis_conf"] + [r + ",2.0" for r in conf[1:]]
  assert _reason(csv_reader.read, _bad_csv(tmp_path, "\n".join(conf)), WHO) == "bad_metadata"


def _body(body_id: int, pelvis_mm, levels=None) -> dict:
  body = {"body_id": body_id, "joint_positions": _pose(32, pelvis_mm, 1000).tolist(),
          "joint_orientations": [[1.0, 0.0, 0.0, 0.0]] * 32}
  if levels is not None:
    body["joint_confidence_levels"] = levels
  return body


def _k4abt_doc(frames: list[list[dict]], times_usec=None) -> dict:
  times_usec = times_usec or [233344 + 33333 * i for i in range(len(frames))]
  return {"k4abt_sdk_version": "1.1.2", "source_file": "x.mkv", "start_offset_usec": 0,
          "joint_names": list(skeleton.JOINTS), "bone_list": [["SPINE_CHEST", "SPINE_NAVEL"]],
          "frames": [{"frame_id": i, "timestamp_usec": t, "num_bodies": len(b), "bodies": b}
                     for i, (t, b) in enumerate(zip(times_usec, frames))]}


def _write_json(path: pathlib.Path, doc) -> pathlib.Path:
  path.write_text(json.dumps(doc, indent=2))
  return path


def _person_a(t: int) -> tuple[float, float, float]:
  return (0.0, -200.0, 3000.0 - 100.0 * t)


def test_k4abt_follows_one_person_through_an_id_switch(tmp_path):
  levels = [3] * 32
  levels[5], levels[9] = 1, 0
  other = (1500.0, -200.0, 2500.0)
  frames = [[_body(1, _person_a(t), levels)] + ([_body(2, other)] if t < 2 else [])
            for t in range(6)]
  frames.append([])                                                   # 6: nobody
  frames.append([_body(2, other), _body(4, _person_a(7))])            # 7: id 1 → 4
  frames.append([_body(1, (-2000.0, -200.0, 2000.0)), _body(4, _person_a(8))])
  frames.append([_body(4, _person_a(9))])                             # 9: duplicate time
  frames.append([_body(5, (3000.0, -200.0, 1500.0))])                 # 10: a stranger
  times = [1_000_000 + 33_333 * i for i in range(11)]
  times[9] = times[8]
  rec = k4abt_json.read(str(_write_json(tmp_path / "s04_walk.json", _k4abt_doc(frames, times))),
                        ReadOptions(participant_id="s04", task="walk", session="2"))
  assert (rec.participant_id, rec.task, rec.session, rec.layout) == (
      "s04", "walk", "2", "azure_kinect")
  assert rec.positions.shape == (10, 32, 3)
  assert rec.meta["followed_body_ids"] == "1,4"
  assert rec.meta["bodies_seen"] == "4"
  assert rec.meta["frames_multi_body"] == "4"
  assert rec.meta["duplicate_frames_dropped"] == "1"
  kept = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]
  np.testing.assert_allclose(rec.timestamps, [33_333e-6 * i for i in kept], atol=1e-9)
  for row, t in enumerate(kept):
    if t in (6, 10):
      assert np.isnan(rec.positions[row]).all() and not rec.confidence[row].any()
    else:  # person A, mm → m, in every frame, never body 2 or the far body 1
      np.testing.assert_allclose(rec.positions[row], _pose(32, _person_a(t), 1000) / 1000,
                                 atol=1e-6)
  np.testing.assert_allclose(rec.positions[0, 3], [0.03, -0.26, 3.0], atol=1e-6)
  assert rec.confidence[0, 0] == 1.0 and rec.confidence[0, 9] == 0.0
  np.testing.assert_allclose(rec.confidence[0, 5], 1 / 3)
  assert np.all(rec.confidence[7] == 1.0)  # body 4 has no levels


def test_k4abt_early_id_switch_is_followed_backwards(tmp_path):
  # Person A is id 3 for two frames, then id 7 (the id seen most); a bystander is id 1.
  other = (1500.0, -200.0, 2500.0)
  frames = [([_body(1, other)] if 3 <= t < 7 else []) + [_body(3 if t < 2 else 7, _person_a(t))]
            for t in range(8)]
  rec = k4abt_json.read(str(_write_json(tmp_path / "early.json", _k4abt_doc(frames))),
                        ReadOptions(participant_id="p", task="walk"))
  assert rec.meta["followed_body_ids"] == "3,7"
  for t in range(8):
    np.testing.assert_allclose(rec.positions[t], _pose(32, _person_a(t), 1000) / 1000,
                               atol=1e-6)


def test_k4abt_ties_go_to_the_nearest_body_and_identity_from_name(tmp_path):
  frames = [[_body(7, (0.0, 0.0, 3500.0)), _body(3, (600.0, 0.0, 2000.0))]] * 3
  rec = k4abt_json.read(str(_write_json(tmp_path / "trial12.json", _k4abt_doc(frames))), OPTS)
  assert rec.meta["followed_body_ids"] == "3" and rec.meta["frames_multi_body"] == "3"
  np.testing.assert_allclose(rec.positions[:, 0], [[0.6, 0.0, 2.0]] * 3, atol=1e-6)
  assert (rec.participant_id, rec.task, rec.meta["identity_from"]) == (
      "trial12", "unknown", "file_name")


def test_k4abt_reorders_joints_by_name(tmp_path):
  doc = _k4abt_doc([[_body(1, (0.0, 0.0, 2000.0))]])
  order = np.arange(32)[::-1]
  doc["joint_names"] = ["K4ABT_JOINT_" + skeleton.JOINTS[i] for i in order]
  body = doc["frames"][0]["bodies"][0]
  body["joint_positions"] = [body["joint_positions"][i] for i in order]
  rec = k4abt_json.read(str(_write_json(tmp_path / "r.json", doc)), WHO)
  np.testing.assert_allclose(rec.positions[0], _pose(32, (0.0, 0.0, 2000.0), 1000) / 1000,
                             atol=1e-6)


def test_k4abt_bad_files(tmp_path):
  good = json.dumps(_k4abt_doc([[_body(1, _person_a(t))] for t in range(3)]), indent=2)
  cases = {
      "invalid.json": ("{'frames': [1, 2]}", "unreadable"),
      "extra.json": (good + "\n}]", "unreadable"),
      "list.json": ("[1, 2, 3]", "unreadable"),
      "cut.json": (good[:len(good) // 2], "truncated"),
      "cut_literal.json": ('{"frames": [{"timestamp_usec": 1, "bodies": tr', "truncated"),
      "cut_string.json": ('{"frames": [{"timestamp_u', "truncated"),
      "zero_bytes.json": ("", "empty"),
      "no_frames.json": (json.dumps(_k4abt_doc([])), "empty"),
      "nobody.json": (json.dumps(_k4abt_doc([[], [], []])), "no_body"),
  }
  for name, (text, reason) in cases.items():
    assert _reason(k4abt_json.read, _bad_csv(tmp_path, text, name), WHO) == reason, name
  doc = _k4abt_doc([[_body(1, _person_a(0))]])
  doc["frames"][0]["bodies"][0]["joint_positions"] = _pose(25, (0, 0, 2000)).tolist()
  assert _reason(k4abt_json.read, _write_json(tmp_path / "j25.json", doc)) == "wrong_joint_count"
  doc = _k4abt_doc([[_body(1, _person_a(0))]])
  doc["joint_names"] = doc["joint_names"][:25]
  assert _reason(k4abt_json.read, _write_json(tmp_path / "n25.json", doc)) == "wrong_joint_count"
  doc = _k4abt_doc([[_body(1, _person_a(0), levels=[4] * 32)]])
  assert _reason(k4abt_json.read, _write_json(tmp_path / "lv.json", doc)) == "bad_metadata"
  doc = _k4abt_doc([[_body(1, _person_a(0))]])
  del doc["frames"][0]["timestamp_usec"]
  assert _reason(k4abt_json.read, _write_json(tmp_path / "nots.json", doc)) == "bad_metadata"
  doc = _k4abt_doc([[_body(1, _person_a(0))]])
  assert _reason(k4abt_json.read, _write_json(tmp_path / "v2.json", doc),
                 ReadOptions(layout="kinect_v2")) == "bad_metadata"


_ABSENT_V2 = ("SpineShoulder", "HandLeft", "HandRight", "HandTipLeft", "HandTipRight",
              "ThumbLeft", "ThumbRight")


def test_ucalgary_normal_file(ucalgary_dir):
  path = ucalgary_dir / "sub1/Run1/subject1_Seq_1_Gen_F_GeometricPositions_N.csv"
  rec = kinect_v2_csv.read(str(path), OPTS)
  assert (rec.participant_id, rec.task, rec.session, rec.layout) == (
      "ucalgary_sub1", "walk", "1", "kinect_v2")
  assert rec.meta == {"sex": "F", "gait_type": "N"}
  assert rec.positions.shape == (120, 25, 3) and rec.confidence.shape == (120, 25)
  joints = skeleton.KINECT_V2.joints
  absent = [joints.index(j) for j in _ABSENT_V2]
  assert np.isnan(rec.positions[:, absent]).all() and not rec.confidence[:, absent].any()
  present = [i for i in range(25) if i not in absent]
  assert np.isfinite(rec.positions[:, present]).all() and np.all(rec.confidence[:, present] == 1)
  # First data row of the file: Head is columns 34-36, Foot Left columns 1-3.
  np.testing.assert_allclose(rec.positions[0, joints.index("Head")],
                             [-0.132257, 1.31926, 4.3472], atol=1e-6)
  np.testing.assert_allclose(rec.positions[0, joints.index("FootLeft")],
                             [-0.216318, -0.19586, 4.27166], atol=1e-6)
  head_y = rec.positions[:, joints.index("Head"), 1]
  feet_y = rec.positions[:, [joints.index("FootLeft"), joints.index("FootRight")], 1]
  assert np.all(head_y > feet_y.max(axis=1) + 1.0)  # y up, about a body height apart
  pelvis_z = rec.positions[:, joints.index("SpineBase"), 2]
  assert pelvis_z[0] > pelvis_z[-1] + 2  # walks towards the camera
  np.testing.assert_allclose(rec.timestamps[[0, 1, -1]], [0.0, 1 / 30, 119 / 30])


def test_ucalgary_empty_file_and_every_file(ucalgary_dir):
  empty = ucalgary_dir / "sub21/Run4/subject21_Seq_4_Gen_M_GeometricPositions_AR.csv"
  assert _reason(kinect_v2_csv.read, empty) == "empty"
  read = get_reader("kinect_v2_csv")
  outcomes = {"ok": 0, "excluded": 0}
  for path in sorted(ucalgary_dir.rglob("*.csv")):
    try:
      rec = read(str(path), OPTS)
    except Excluded:
      outcomes["excluded"] += 1
    else:
      assert rec.positions.shape[1:] == (25, 3) and rec.participant_id.startswith("ucalgary_sub")
      assert rec.meta["gait_type"] in ("N", "AR", "AL", "OA") and rec.meta["sex"] in "MF"
      outcomes["ok"] += 1
  assert outcomes["excluded"] >= 1 and outcomes["ok"] >= 100, outcomes


def test_kinect_v2_csv_crafted_files(tmp_path):
  header = ",".join(f"c{i}" for i in range(62))
  row = ",".join(str(0.1 * i) for i in range(62))
  name = "subject3_Seq_6_Gen_M_GeometricPositions_AL.csv"
  path = _bad_csv(tmp_path, f"{header}\n{row}\n{row}\n", name)
  rec = kinect_v2_csv.read(str(path), ReadOptions(session="x", fps=15))
  assert (rec.participant_id, rec.session, rec.meta) == (
      "ucalgary_sub3", "x", {"sex": "M", "gait_type": "AL"})
  np.testing.assert_allclose(rec.positions[0, skeleton.KINECT_V2.joints.index("Head")],
                             [3.3, 3.4, 3.5], atol=1e-6)
  np.testing.assert_allclose(rec.timestamps, [0, 1 / 15])
  read = kinect_v2_csv.read
  assert _reason(read, _bad_csv(tmp_path, f"{header}\n{row}\n", "walk.csv")) == "bad_metadata"
  assert read(str(tmp_path / "walk.csv"), ReadOptions(participant_id="q")).task == "walk"
  short = ",".join(f"c{i}" for i in range(40))
  assert _reason(read, _bad_csv(tmp_path, f"{short}\n{row}\n", name)) == "wrong_joint_count"
  assert _reason(read, _bad_csv(tmp_path, f"{header}\n{row}\n{row[:50]}", name)) == "truncated"
  bad = row.replace("0.5", "x.5", 1)
  assert _reason(read, _bad_csv(tmp_path, f"{header}\n{bad}\n", name)) == "unreadable"
  assert _reason(read, _bad_csv(tmp_path, f"{header}\n", name)) == "empty"


def test_mkv_without_pyk4a_says_what_to_install(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "pyk4a", None)
  with pytest.raises(mkv.MissingDependency) as info:
    get_reader("mkv")(str(tmp_path / "x.mkv"), OPTS)
  message = str(info.value)
  for needle in ("pip install 'gait_jax[kinect]'", "Sensor SDK 1.4", "Body Tracking SDK 1.1",
                 "https://learn.microsoft.com/azure/kinect-dk/", "--format k4abt_json"):
    assert needle in message, needle
  with pytest.raises(mkv.MissingDependency, match="Body Tracking SDK"):
    mkv.require_pyk4a()
  monkeypatch.setitem(sys.modules, "pyk4a", types.SimpleNamespace(__version__="1.5.0"))
  with pytest.raises(mkv.MissingDependency, match="no body tracker"):
    mkv.read(str(tmp_path / "x.mkv"), OPTS)


def test_mkv_with_a_body_tracking_pyk4a(tmp_path, monkeypatch):
  """A stand-in pyk4a with the body-tracking branch's interface."""
  class Capture:
    body_skeleton = None

    def __init__(self, t, skeletons):
      self.depth, self.depth_timestamp_usec, self.body_skeleton = np.zeros(1), t, skeletons

  captures = [Capture(1000 + 33333 * t, np.stack([
      np.concatenate([_pose(32, _person_a(t), 1000), np.zeros((32, 4)), np.full((32, 1), 2)], 1),
      np.concatenate([_pose(32, (900.0, 0.0, 2000.0), 1000), np.zeros((32, 5))], 1)]))
              for t in range(4)]

  class Playback:
    def __init__(self, path):
      self.left = list(captures)
      self.open = self.close = lambda: None

    def get_next_capture(self):
      if not self.left:
        raise EOFError
      return self.left.pop(0)

  fake = types.SimpleNamespace(PyK4ACapture=Capture, PyK4APlayback=Playback)
  monkeypatch.setitem(sys.modules, "pyk4a", fake)
  rec = mkv.read(str(tmp_path / "s1.mkv"), WHO)
  assert rec.positions.shape == (4, 32, 3)
  # No tracker ids: the body nearest the camera first, then the nearest pelvis.
  np.testing.assert_allclose(rec.positions[:, 0, 0], [0.9, 0.9, 0.9, 0.9], atol=1e-6)
  np.testing.assert_allclose(rec.timestamps, np.arange(4) * 0.033333, atol=1e-9)


@pytest.mark.parametrize("fmt, name, make", [
    ("npz", "r.npz", lambda tmp: _good_npz(tmp).read_bytes()),
    ("csv", "r.csv", lambda tmp: _csv_text(
        skeleton.AZURE_KINECT, np.stack([_pose(32, (0.0, 0.0, 2.0))] * 4)).encode()),
    ("k4abt_json", "r.json", lambda tmp: json.dumps(
        _k4abt_doc([[_body(1, _person_a(t))] for t in range(3)])).encode()),
    ("kinect_v2_csv", "subject1_Seq_1_Gen_F_GeometricPositions_N.csv",
     lambda tmp: (",".join(["h"] * 62) + "\n" + ",".join(["0.5"] * 62) + "\n").encode() * 2),
])
def test_damaged_files_raise_only_excluded(tmp_path, fmt, name, make):
  read, data = get_reader(fmt), make(tmp_path)
  rng = np.random.default_rng(0)
  variants = [data[:n] for n in (1, 7, len(data) // 3, len(data) - 5)]
  variants += [bytes(rng.integers(0, 256, 300, dtype=np.uint8)), b"\xff\xfe\x00garbage"]
  flipped = bytearray(data)
  flipped[len(data) // 2: len(data) // 2 + 8] = b"\x00\xff{[,\"\n]"
  variants.append(bytes(flipped))
  for i, blob in enumerate(variants):
    path = tmp_path / f"v{i}_{name}"
    path.write_bytes(blob)
    try:
      read(str(path), WHO)
    except Excluded:
      pass
