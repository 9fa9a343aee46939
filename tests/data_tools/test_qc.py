"""Quality control: canonical mapping, gaps, resampling, filtering, exclusions, clips."""

import dataclasses

import numpy as np
import pytest

import fakes
from data_tools import qc
from data_tools.recording import Excluded, Recording, uniform_timestamps
from gait_jax import skeleton

J = skeleton.JOINT_INDEX
OPTS = qc.QCOptions(clip_frames=30)


def test_clean_recording_is_cut_into_clips():
  out = qc.prepare_recording(fakes.recording(100), OPTS)
  assert [c.start_frame for c in out.clips] == [0, 30, 60]
  assert out.frames_in == 100 and out.frames_out == 90
  clip = out.clips[1]
  assert clip.positions.shape == (30, 32, 3) and clip.positions.dtype == np.float32
  assert clip.present.all() and np.isfinite(clip.positions).all()
  assert (clip.participant_id, clip.task, clip.fps) == ("P1", "walk", 30.0)


def test_overlapping_windows():
  out = qc.prepare_recording(fakes.recording(100), dataclasses.replace(OPTS, clip_stride=10))
  assert [c.start_frame for c in out.clips] == [0, 10, 20, 30, 40, 50, 60, 70]


def test_median_filter_removes_a_single_frame_spike_only():
  rec = fakes.recording(60)
  clean = qc.prepare_recording(rec, OPTS).clips[0].positions
  rec.positions[10, J["HEAD"]] += 0.3
  out = qc.prepare_recording(rec, OPTS).clips[0].positions
  assert np.abs(out[10, J["HEAD"]] - clean[10, J["HEAD"]]).max() < 0.01
  raw = qc.prepare_recording(rec, dataclasses.replace(OPTS, median_frames=1))
  assert np.abs(raw.clips[0].positions[10, J["HEAD"]] - clean[10, J["HEAD"]]).max() > 0.25


def test_kinect_v2_layout_maps_to_canonical_frame_and_marks_missing():
  canon = fakes.motion(40)
  layout = skeleton.KINECT_V2
  # Kinect v2 camera space: x to the sensor's left, y up.
  src = np.stack([canon[:, J[c]] * [-1, -1, 1] for c in layout.canonical], 1)
  rec = Recording("f.csv", "P1", "walk", "0", "kinect_v2", src.astype(np.float32),
                  np.ones(src.shape[:2], np.float32), uniform_timestamps(40, 30))
  clip = qc.prepare_recording(rec, OPTS).clips[0]
  missing = ["CLAVICLE_LEFT", "CLAVICLE_RIGHT", "NOSE", "EYE_LEFT", "EAR_LEFT",
             "EYE_RIGHT", "EAR_RIGHT"]
  assert sorted(skeleton.JOINTS[j] for j in np.flatnonzero(~clip.present)) == sorted(missing)
  idx = [J[m] for m in missing]
  assert (clip.positions[:, idx] == 0).all() and (clip.confidence[:, idx] == 0).all()
  keep = np.flatnonzero(clip.present)
  np.testing.assert_allclose(clip.positions[:, keep], qc.median3(canon)[:30, keep],
                             atol=1e-6)


def test_short_gap_is_interpolated_with_zero_confidence():
  rec = fakes.recording(60)
  truth = rec.positions.copy()
  rec.positions[20:25, J["KNEE_LEFT"]] = np.nan
  rec.confidence[20:25, J["KNEE_LEFT"]] = 0
  clip = qc.prepare_recording(rec, dataclasses.replace(OPTS, median_frames=1)).clips[0]
  expected = truth[19, J["KNEE_LEFT"]] + (truth[25, J["KNEE_LEFT"]] - truth[19, J["KNEE_LEFT"]]) * (
      np.arange(1, 6) / 6)[:, None]
  np.testing.assert_allclose(clip.positions[20:25, J["KNEE_LEFT"]], expected, atol=1e-6)
  assert (clip.confidence[20:25, J["KNEE_LEFT"]] == 0).all()
  assert (clip.confidence[19, J["KNEE_LEFT"]] == 1)


def test_long_gap_splits_the_recording_and_is_reported():
  rec = fakes.recording(100)
  rec.positions[40:55, J["WRIST_RIGHT"]] = np.inf  # inf counts as missing
  out = qc.prepare_recording(rec, OPTS)
  # runs [0, 40) and [55, 100): one clip each
  assert [c.start_frame for c in out.clips] == [0, 55]
  assert any("unfillable" in n for n in out.notes)


def test_long_gaps_everywhere_exclude_as_non_finite():
  rec = fakes.recording(100)
  rec.joint_present = np.ones(32, bool)
  rec.joint_present[J["CLAVICLE_LEFT"]] = False  # absent joints are not "the worst"
  for s in range(10, 100, 25):
    rec.positions[s:s + 12, J["ANKLE_RIGHT"]] = np.nan
  with pytest.raises(Excluded) as e:
    qc.prepare_recording(rec, OPTS)
  assert e.value.reason == "non_finite" and "most in ANKLE_RIGHT" in e.value.detail


def test_resampling_from_timestamps():
  # 15 fps with timing jitter → 30 fps grid; a smooth ramp stays a ramp.
  rec = fakes.recording(40, fps=15)
  rng = np.random.default_rng(0)
  rec.timestamps = rec.timestamps + rng.uniform(-0.005, 0.005, 40)
  rec.positions[:] = 0
  rec.positions += fakes.pose() + [0, 0, 2.5]
  rec.positions[..., 0] += rec.timestamps[:, None].astype(np.float32) * 0.3
  out = qc.prepare_recording(rec, dataclasses.replace(OPTS, median_frames=1))
  assert out.frames_out == 60 and len(out.clips) == 2
  grid = rec.timestamps[0] + np.arange(60) / 30
  x = np.concatenate([c.positions[:, J["PELVIS"], 0] for c in out.clips])
  np.testing.assert_allclose(x, grid * 0.3, atol=1e-5)
  assert any("resampled" in n for n in out.notes)


def test_dropped_frames_beyond_gap_limit_are_not_invented():
  rec = fakes.recording(100)
  keep = np.r_[0:50, 70:100]  # 20 frames (0.67 s) never recorded
  rec.positions, rec.confidence = rec.positions[keep], rec.confidence[keep]
  rec.timestamps = rec.timestamps[keep]
  out = qc.prepare_recording(rec, OPTS)
  assert [c.start_frame for c in out.clips] == [0, 70]


def test_exclusion_reasons():
  def reason(rec, opts=OPTS):
    with pytest.raises(Excluded) as e:
      qc.prepare_recording(rec, opts)
    return e.value

  empty = fakes.recording(0)
  assert reason(empty).reason == "empty"

  nobody = fakes.recording(60)
  nobody.positions[:] = np.nan
  assert reason(nobody).reason == "no_body"

  never = fakes.recording(60)
  never.positions[:, J["ELBOW_LEFT"]] = np.nan
  e = reason(never)
  assert e.reason == "non_finite" and "ELBOW_LEFT" in e.detail

  mm = fakes.recording(60)
  mm.positions *= 1000
  e = reason(mm)
  assert e.reason == "implausible_bones" and "millimetres" in e.detail

  shaky = fakes.recording(60)
  shaky.positions[::2, J["KNEE_RIGHT"]] += [0.0, 0.4, 0.0]
  assert reason(shaky, dataclasses.replace(OPTS, median_frames=1)).reason == "implausible_bones"

  wrong = fakes.recording(60)
  wrong.layout = "kinect_v2"
  e = reason(wrong)
  assert e.reason == "wrong_joint_count" and "25" in e.detail

  e = reason(fakes.recording(20))
  assert e.reason == "too_short" and "30" in e.detail


def test_joints_the_file_lacks_are_missing_not_excluded():
  rec = fakes.recording(60)
  rec.positions[:, [J["CLAVICLE_LEFT"], J["NOSE"]]] = np.nan
  with pytest.raises(Excluded, match="never tracked: CLAVICLE_LEFT, NOSE"):
    qc.prepare_recording(rec, OPTS)
  rec.joint_present = np.ones(32, bool)
  rec.joint_present[[J["CLAVICLE_LEFT"], J["NOSE"]]] = False
  clip = qc.prepare_recording(rec, OPTS).clips[0]
  assert list(np.flatnonzero(~clip.present)) == [J["CLAVICLE_LEFT"], J["NOSE"]]
  assert (clip.positions[:, J["NOSE"]] == 0).all()


def test_long_gap_outside_required_joints_stays_unobserved():
  rec = fakes.recording(60)
  rec.positions[5:40, J["HANDTIP_LEFT"]] = np.nan  # hands are not in default26
  clip = qc.prepare_recording(rec, OPTS).clips[0]
  tip = clip.positions[:, J["HANDTIP_LEFT"]]
  assert np.isnan(tip[5:30]).all() and np.isfinite(tip[:5]).all()
  assert (clip.confidence[5:30, J["HANDTIP_LEFT"]] == 0).all() and clip.present.all()
  # The same gap in a required joint costs the frames.
  with pytest.raises(Excluded, match="non_finite"):
    qc.prepare_recording(rec, dataclasses.replace(OPTS, required_joints="all32"))
  # A non-required joint never tracked is marked missing rather than excluded.
  rec.positions[:, J["THUMB_RIGHT"]] = np.nan
  out = qc.prepare_recording(rec, OPTS)
  assert not out.clips[0].present[J["THUMB_RIGHT"]]
  assert any("THUMB_RIGHT" in n for n in out.notes)
