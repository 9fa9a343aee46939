"""Clip records and shard sets: bit-exact round trip, atomic commit, corruption."""

import os

import numpy as np
import pytest
from grain.sources import ArrayRecordDataSource

import fakes
from gait_jax.data import records, shards


def _clip(seed: int, frames: int = 20) -> records.Clip:
  rng = np.random.default_rng(seed)
  present = np.ones(32, bool)
  present[[27, 28]] = False
  return records.Clip(
      positions=fakes.motion(frames, seed=seed), confidence=rng.random((frames, 32), np.float32),
      present=present, participant_id=f"P{seed}", task="walk", session="1",
      source=f"/data/P{seed}.npz", start_frame=seed * 7, fps=30.0, meta={"sex": "F"})


def test_record_round_trip_is_bit_exact():
  clip = _clip(3)
  back = records.decode(records.encode(clip))
  for name in ("positions", "confidence", "present"):
    a, b = getattr(clip, name), getattr(back, name)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()
  assert (back.participant_id, back.task, back.session, back.source, back.start_frame,
          back.fps, back.meta) == ("P3", "walk", "1", "/data/P3.npz", 21, 30.0, {"sex": "F"})


def test_record_has_no_pickle_and_rejects_garbage():
  data = records.encode(_clip(1))
  assert data[:4] == b"GJCL" and b"\x80\x04" not in data[:16]
  with pytest.raises(ValueError, match="magic"):
    records.decode(b"XXXX" + data[4:])
  with pytest.raises(ValueError, match="trailing"):
    records.decode_arrays(data + b"\0")
  with pytest.raises(ValueError, match="too short"):
    records.decode(data[:3])


def _write(out, n, per_shard=3):
  writer = shards.ShardSetWriter(out, clips_per_shard=per_shard)
  for i in range(n):
    clip = _clip(i)
    writer.add(records.encode(clip), {"participant_id": clip.participant_id, "task": clip.task,
                                      "session": clip.session, "source": clip.source,
                                      "start_frame": clip.start_frame, "frames": 20,
                                      "fps": 30.0, "meta_sex": "F"})
  return writer


def test_shard_set_round_trip(tmp_path):
  manifest = _write(tmp_path, 7).commit()
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      "clips-00000.array_record", "clips-00001.array_record", "clips-00002.array_record",
      "manifest.parquet"]
  manifest2, paths = shards.open_shard_set(tmp_path)
  assert manifest2.equals(manifest)
  assert list(manifest2["clip_id"]) == list(range(7))
  assert list(manifest2["index"]) == [0, 1, 2, 0, 1, 2, 0]
  source = ArrayRecordDataSource(paths)
  assert len(source) == 7
  for i in range(7):
    back = records.decode(source[i])
    assert back.positions.tobytes() == _clip(i).positions.tobytes()
    assert back.participant_id == manifest2["participant_id"][i]


def test_uncommitted_writer_leaves_previous_set_intact(tmp_path):
  _write(tmp_path, 4).commit()
  crashed = _write(tmp_path, 9)  # "killed" before commit
  del crashed
  manifest, paths = shards.open_shard_set(tmp_path)
  assert len(manifest) == 4 and len(ArrayRecordDataSource(paths)) == 4
  # The next writer sweeps the stale staging directory.
  _write(tmp_path, 2).commit()
  assert not list(tmp_path.glob(".staging-*"))
  assert len(shards.open_shard_set(tmp_path)[0]) == 2


def test_missing_manifest_and_truncated_shard_are_named(tmp_path):
  with pytest.raises(shards.ShardSetError, match="no manifest.parquet"):
    shards.open_shard_set(tmp_path)
  _write(tmp_path, 4).commit()
  shard = tmp_path / "clips-00001.array_record"
  with open(shard, "r+b") as f:
    f.truncate(os.path.getsize(shard) // 2)
  with pytest.raises(shards.ShardSetError, match="clips-00001.array_record.*corrupt"):
    shards.open_shard_set(tmp_path)
  shard.unlink()
  with pytest.raises(shards.ShardSetError, match="clips-00001.array_record.*missing"):
    shards.open_shard_set(tmp_path)
