"""Input pipeline: filters and splits, transforms, epochs, state, global arrays."""

import numpy as np
import pandas as pd
import pytest

import jax
from jax.sharding import AxisType, Mesh, PartitionSpec

from gait_jax import skeleton
from gait_jax.data import config as config_lib
from gait_jax.data import pipeline, records, shards
from gait_jax.data import transforms as tr

T = 60
PARTICIPANTS = [f"P{i}" for i in range(6)]
TASKS = ["walk", "tug"]
NUM_CLIPS = len(PARTICIPANTS) * len(TASKS) * 2
BONES = [(j, p) for j, p in enumerate(skeleton.PARENTS) if p >= 0]


def _clip(i: int, participant: str, task: str) -> records.Clip:
  """A clip whose joints hang off a per-clip random pose, walking along +x."""
  rng = np.random.default_rng(i)
  # Odd participants have the Kinect v2 joint set: clavicles, face joints missing.
  layout = skeleton.KINECT_V2 if int(participant[1:]) % 2 else skeleton.AZURE_KINECT
  present = layout.canonical_present()
  pose = rng.normal(0, 0.3, (32, 3)).astype(np.float32)
  walk = np.stack([np.linspace(0, 1.5, T), np.zeros(T), np.full(T, 2.5 + i)], -1)
  wobble = rng.normal(0, 0.01, (T, 32, 3))
  positions = (pose[None] + walk[:, None] + wobble).astype(np.float32)
  positions[:, ~present] = 0
  confidence = np.where(present, rng.uniform(0.5, 1, (T, 32)), 0).astype(np.float32)
  return records.Clip(positions=positions, confidence=confidence, present=present,
                      participant_id=participant, task=task, session="1",
                      source=f"{participant}_{task}.npz", start_frame=0, fps=30.0)


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
  out = tmp_path_factory.mktemp("shards")
  writer = shards.ShardSetWriter(out, clips_per_shard=5)
  i = 0
  for p in PARTICIPANTS:
    for task in TASKS:
      for _ in range(2):
        clip = _clip(i, p, task)
        writer.add(records.encode(clip), {
            "participant_id": p, "task": task, "session": "1", "source": clip.source,
            "start_frame": 0, "frames": T, "fps": 30.0})
        i += 1
  writer.commit()
  return out


def _cfg(shard_dir, **overrides):
  cfg = config_lib.get_data_config()
  cfg.shards = str(shard_dir)
  cfg.split = "all"
  cfg.batch_size = 4
  cfg.read_threads = 2
  cfg.prefetch = 2
  for k, v in overrides.items():
    setattr(cfg, k, v)
  return cfg


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


# --- Filters and splits -------------------------------------------------------


def test_filters_tasks_and_participants(shard_dir, tmp_path):
  manifest, _ = shards.open_shard_set(shard_dir)
  ids = pipeline.select_clips(manifest, _cfg(shard_dir, tasks=("tug",)))
  assert ids.dtype == np.int64 and len(ids) == 12
  assert set(manifest.task[ids]) == {"tug"}

  ids = pipeline.select_clips(manifest, _cfg(shard_dir, participants=("P1", "P4")))
  assert ids.tolist() == [4, 5, 6, 7, 16, 17, 18, 19]

  listing = tmp_path / "people.txt"
  listing.write_text("# ids\nP2\n\nP5\n")
  ids = pipeline.select_clips(manifest, _cfg(shard_dir, participants=str(listing),
                                             tasks=("walk",)))
  assert ids.tolist() == [8, 9, 20, 21]

  # The first clip of each participant × task (P1 has walk 4, 5 and tug 6, 7).
  ids = pipeline.select_clips(manifest, _cfg(shard_dir, participants=("P1", "P4"),
                                             max_clips_per_group=1))
  assert ids.tolist() == [4, 6, 16, 18]

  with pytest.raises(ValueError, match="'tasks' filter"):
    pipeline.select_clips(manifest, _cfg(shard_dir, tasks=("run",)))
  with pytest.raises(ValueError, match="'participants' filter"):
    pipeline.select_clips(manifest, _cfg(shard_dir, participants=("P9",)))
  with pytest.raises(ValueError, match="not a file"):
    pipeline.select_clips(manifest, _cfg(shard_dir, participants="P1"))


def _manifest(pids, clips_each=3):
  rows = [{"clip_id": 0, "participant_id": p, "task": "walk"}
          for p in pids for _ in range(clips_each)]
  df = pd.DataFrame(rows)
  df["clip_id"] = np.arange(len(df))
  return df


def test_splits_are_by_participant_stable_and_proportional():
  pids = [f"S{i:04d}" for i in range(3000)]
  cfg = config_lib.get_data_config()
  manifest = _manifest(pids)

  by_split = {}
  for split in ("train", "val", "test"):
    cfg.split = split
    ids = pipeline.select_clips(manifest, cfg)
    by_split[split] = set(manifest.participant_id[ids])
    # A participant's clips go together.
    assert len(ids) == 3 * len(by_split[split])
  assert not (by_split["train"] & by_split["val"] or by_split["train"] & by_split["test"]
              or by_split["val"] & by_split["test"])
  assert set.union(*by_split.values()) == set(pids)
  fractions = [len(by_split[s]) / len(pids) for s in ("train", "val", "test")]
  np.testing.assert_allclose(fractions, [0.8, 0.1, 0.1], atol=0.025)

  # Adding participants moves nobody; another seed moves many.
  more = _manifest(pids + [f"N{i}" for i in range(500)])
  cfg.split = "val"
  val_more = set(more.participant_id[pipeline.select_clips(more, cfg)])
  assert val_more & set(pids) == by_split["val"]
  cfg.split_seed = 1
  val_seed1 = set(manifest.participant_id[pipeline.select_clips(manifest, cfg)])
  assert len(val_seed1 ^ by_split["val"]) > 100
  assert pipeline.split_of("S0001", (0.8, 0.1, 0.1), 0) == pipeline.split_of("S0001")
  with pytest.raises(ValueError, match="sum"):
    pipeline.split_of("S0001", (0.8, 0.1, 0.2))


# --- Transforms ---------------------------------------------------------------


def _decoded(i=1, participant="P1"):
  return tr.decode_example(records.encode(_clip(i, participant, "walk")), clip_id=i)


def test_pack_shapes_dtypes_and_joint_selection():
  opts = tr.TransformOptions(joints=tuple(skeleton.joint_indices("default26")),
                             crop_frames=40)
  out = tr.transform_example(_decoded(), opts)
  assert out["skeleton"].shape == (40, 26, 4) and out["skeleton"].dtype == np.float32
  assert out["joint_present"].shape == (26,) and out["joint_present"].dtype == np.float32
  assert out["clip_id"].dtype == np.int32 and out["clip_id"].shape == () and out["clip_id"] == 1
  assert out["valid"].dtype == np.bool_ and bool(out["valid"])
  # Kinect v2 lacks clavicles and face joints except HEAD: 26 - 2 - 5 present.
  assert out["joint_present"].sum() == 19
  names = skeleton.JOINT_SETS["default26"]
  assert out["joint_present"][names.index("CLAVICLE_LEFT")] == 0
  # Centre crop of frames 10..49 in "clip" mode; confidence passes through.
  ex = _decoded()
  sel = skeleton.joint_indices("default26")
  np.testing.assert_allclose(out["skeleton"][..., 3], ex["confidence"][10:50][:, sel])


def test_centring_modes_without_pelvis_in_joint_set():
  ex = _decoded(participant="P0")
  pelvis = ex["positions"][:, 0].copy()
  joints = tuple(skeleton.joint_indices(["NECK", "KNEE_LEFT"]))
  frame = tr.transform_example(ex, tr.TransformOptions(joints=joints, center="frame"))
  np.testing.assert_allclose(frame["skeleton"][:, 0, :3],
                             ex["positions"][:, 3] - pelvis, atol=1e-6)
  # With the pelvis selected: exactly 0 in every frame, or mean 0 over the clip.
  out = tr.transform_example(ex, tr.TransformOptions(joints=(0, 3), center="frame"))
  assert np.abs(out["skeleton"][:, 0, :3]).max() == 0
  out = tr.transform_example(ex, tr.TransformOptions(joints=(0, 3), center="clip"))
  np.testing.assert_allclose(out["skeleton"][:, 0, :3].mean(0), 0, atol=1e-6)
  # "clip" keeps the walk: the pelvis travels 1.5 m along x.
  assert 1.4 < out["skeleton"][-1, 0, 0] - out["skeleton"][0, 0, 0] < 1.6
  none = tr.transform_example(ex, tr.TransformOptions(joints=(0,), center="none"))
  np.testing.assert_allclose(none["skeleton"][:, 0, :3], pelvis)


def test_unobserved_joint_frames_stay_zero_through_transforms():
  clip = _clip(0, "P0", "walk")
  hand = skeleton.JOINT_INDEX["HAND_LEFT"]
  clip.positions[10:20, hand] = np.nan  # an unfillable gap outside QC's required set
  ex = tr.decode_example(records.encode(clip), clip_id=0)
  assert not ex["observed"][10:20, hand].any() and ex["observed"][:10, hand].all()
  opts = tr.TransformOptions(joints=tuple(skeleton.joint_indices("all32")), center="frame",
                             rotate_deg=90.0, scale_jitter=0.1)
  out = tr.transform_example(ex, opts, rng=np.random.default_rng(0))
  assert (out["skeleton"][10:20, hand] == 0).all()
  assert np.isfinite(out["skeleton"]).all()
  assert (np.abs(out["skeleton"][:10, hand, :3]) > 0).any()
  assert out["joint_present"][hand] == 1


def _bone_lengths(xyz, present):
  return np.array([np.linalg.norm(xyz[:, j] - xyz[:, p], axis=-1)
                   for j, p in BONES if present[j] and present[p]])


def test_rotation_keeps_vertical_and_bones_and_is_reproducible():
  ex = _decoded(participant="P1")
  all32 = tuple(range(32))
  opts = tr.TransformOptions(joints=all32, center="none", rotate_deg=180, scale_jitter=0.1)
  plain = tr.transform_example(ex, tr.TransformOptions(joints=all32, center="none"))
  a = tr.transform_example(ex, opts, np.random.default_rng(7))
  b = tr.transform_example(ex, opts, np.random.default_rng(7))
  c = tr.transform_example(ex, opts, np.random.default_rng(8))
  assert a["skeleton"].tobytes() == b["skeleton"].tobytes()
  assert not np.allclose(a["skeleton"], c["skeleton"], atol=1e-3)

  rot = tr.transform_example(ex, tr.TransformOptions(joints=all32, center="none",
                                                     rotate_deg=180),
                             np.random.default_rng(3))
  present = ex["present"]
  np.testing.assert_allclose(rot["skeleton"][..., 1], plain["skeleton"][..., 1], atol=1e-6)
  np.testing.assert_allclose(_bone_lengths(rot["skeleton"], present),
                             _bone_lengths(plain["skeleton"], present), atol=1e-5)
  assert np.abs(rot["skeleton"][..., [0, 2]] - plain["skeleton"][..., [0, 2]]).max() > 0.05
  # About the vertical through the mean pelvis: the mean pelvis stays put.
  np.testing.assert_allclose(rot["skeleton"][:, 0, :3].mean(0),
                             plain["skeleton"][:, 0, :3].mean(0), atol=1e-5)
  # Missing joints stay exactly 0, coordinates and confidence.
  for out in (a, c, rot):
    assert not out["skeleton"][:, ~present].any()
    assert out["skeleton"][:, present, :3].all()


def test_scale_normalisation_and_jitter():
  ex = _decoded(participant="P0")
  pos = ex["positions"]
  dist = lambda a, b: np.linalg.norm(pos[:, a] - pos[:, b], axis=-1)  # noqa: E731
  j = skeleton.JOINT_INDEX
  legs = [dist(j[f"HIP_{s}"], j[f"KNEE_{s}"]) + dist(j[f"KNEE_{s}"], j[f"ANKLE_{s}"])
          for s in ("LEFT", "RIGHT")]
  size = np.median(dist(0, j["SPINE_CHEST"]) + (legs[0] + legs[1]) / 2)
  assert tr.body_size(pos, ex["present"]) == pytest.approx(size, rel=1e-6)

  all32 = tuple(range(32))
  plain = tr.transform_example(ex, tr.TransformOptions(joints=all32))
  scaled = tr.transform_example(ex, tr.TransformOptions(joints=all32, scale="height"))
  np.testing.assert_allclose(scaled["skeleton"][..., :3], plain["skeleton"][..., :3] / size,
                             rtol=1e-5, atol=1e-6)
  jit = tr.transform_example(ex, tr.TransformOptions(joints=all32, scale_jitter=0.1),
                             np.random.default_rng(0))
  ratio = np.linalg.norm(jit["skeleton"][:, 5, :3]) / np.linalg.norm(plain["skeleton"][:, 5, :3])
  assert 0.9 <= ratio <= 1.1 and abs(ratio - 1) > 1e-4
  with pytest.raises(ValueError, match="crop_frames=61"):
    tr.transform_example(ex, tr.TransformOptions(joints=all32, crop_frames=61))


# --- Epochs, evaluation, state -----------------------------------------------


def test_training_epochs_each_clip_once_in_new_orders(shard_dir):
  cfg = _cfg(shard_dir, num_epochs=2, crop_frames=30, rotate_deg=180.0)
  batches = list(pipeline.make_dataset(cfg, train=True, process_index=0, process_count=1))
  assert len(batches) == 2 * NUM_CLIPS // 4
  b = batches[0]
  assert b["skeleton"].shape == (4, 30, 26, 4) and b["valid"].all()
  ids = np.concatenate([b["clip_id"] for b in batches])
  first, second = ids[:NUM_CLIPS], ids[NUM_CLIPS:]
  assert sorted(first) == sorted(second) == list(range(NUM_CLIPS))
  assert first.tolist() != second.tolist()
  assert first.tolist() != list(range(NUM_CLIPS))
  # Each epoch augments a clip afresh.
  sk = np.concatenate([b["skeleton"] for b in batches])
  i0, i1 = int(np.flatnonzero(first == 3)[0]), NUM_CLIPS + int(np.flatnonzero(second == 3)[0])
  assert not np.allclose(sk[i0], sk[i1])

  # Two processes: each reads its half of every global batch of the one-process run,
  # so together they read every clip once per epoch and give the same global batches.
  one = _rows_by_process(_cfg(shard_dir, num_epochs=2, crop_frames=30, rotate_deg=180.0), 1)
  two = _rows_by_process(_cfg(shard_dir, num_epochs=2, crop_frames=30, rotate_deg=180.0), 2)
  assert [len(b) for b in two] == [len(batches)] * 2
  for b, (x, y) in enumerate(zip(*two)):
    assert not set(x["clip_id"]) & set(y["clip_id"])
    for key in ("clip_id", "skeleton"):
      np.testing.assert_array_equal(np.concatenate([x[key], y[key]]), one[0][b][key])


def _rows_by_process(cfg, count: int) -> list[list[dict[str, np.ndarray]]]:
  return [list(pipeline.make_dataset(cfg, train=True, process_index=p, process_count=count))
          for p in range(count)]


def _group_of(shard_dir) -> dict[int, tuple[str, str]]:
  manifest, _ = shards.open_shard_set(str(shard_dir))
  return {int(c): (p, t) for c, p, t in
          zip(manifest["clip_id"], manifest["participant_id"], manifest["task"])}


def test_window_sampler_draws_each_group_equally_and_anew_each_epoch(shard_dir):
  group_of = _group_of(shard_dir)
  groups = sorted(set(group_of.values()))
  cfg = _cfg(shard_dir, sampler="windows", windows_per_group=3, num_epochs=4,
             crop_frames=30, batch_size=2)
  per_epoch = pipeline.epoch_examples(cfg)
  assert per_epoch == 3 * len(groups)
  batches = list(pipeline.make_dataset(cfg, train=True, process_index=0, process_count=1))
  ids = np.concatenate([b["clip_id"] for b in batches])
  assert len(ids) == 4 * per_epoch
  epochs = ids.reshape(4, per_epoch)
  for epoch in epochs:
    counts = pd.Series([group_of[int(c)] for c in epoch]).value_counts()
    assert set(counts.index) == set(groups) and (counts == 3).all()
  # Draws change from epoch to epoch, and every clip of a group gets drawn.
  assert not (np.sort(epochs[0]) == np.sort(epochs[1])).all()
  assert set(ids.tolist()) == set(group_of)

  # Two processes: their rows of each global batch are the one-process run's.
  cfg1 = _cfg(shard_dir, sampler="windows", windows_per_group=2, num_epochs=1, batch_size=2)
  one, two = _rows_by_process(cfg1, 1), _rows_by_process(cfg1, 2)
  drawn = [np.concatenate([b["clip_id"] for b in bs]) for bs in two]
  assert len(drawn[0]) + len(drawn[1]) == pipeline.epoch_examples(cfg1)
  np.testing.assert_array_equal(np.stack(drawn, 1).reshape(-1),
                                np.concatenate([b["clip_id"] for b in one[0]]))
  with pytest.raises(ValueError, match="sampler"):
    pipeline.make_dataset(_cfg(shard_dir, sampler="people"), train=True, process_index=0,
                          process_count=1)


def test_eval_visits_every_clip_once_with_padding(shard_dir):
  cfg = _cfg(shard_dir, batch_size=5, crop_frames=20, rotate_deg=180.0)
  batches = list(pipeline.make_dataset(cfg, train=False, process_index=0, process_count=1))
  assert len(batches) == 5 and all(b["skeleton"].shape == (5, 20, 26, 4) for b in batches)
  valid = np.concatenate([b["valid"] for b in batches])
  ids = np.concatenate([b["clip_id"] for b in batches])
  assert valid.tolist() == [True] * NUM_CLIPS + [False]
  assert ids[valid].tolist() == list(range(NUM_CLIPS)) and ids[-1] == -1
  again = list(pipeline.make_dataset(cfg, train=False, process_index=0, process_count=1))
  assert all(x["skeleton"].tobytes() == y["skeleton"].tobytes()
             for x, y in zip(batches, again))

  # Two processes, global batch 10: 12 clips each, padded to 3 batches of 5 each.
  seen = []
  for p in range(2):
    bs = list(pipeline.make_dataset(_cfg(shard_dir, batch_size=10, split="all"),
                                    train=False, process_index=p, process_count=2))
    assert len(bs) == 3
    seen += [i for b in bs for i, v in zip(b["clip_id"], b["valid"]) if v]
  assert sorted(seen) == list(range(NUM_CLIPS))


@pytest.mark.parametrize("workers, sampler", [(0, "clips"), (2, "clips"), (2, "windows")])
def test_restored_iterator_repeats_the_batches(shard_dir, workers, sampler):
  cfg = _cfg(shard_dir, crop_frames=30, rotate_deg=90.0, scale_jitter=0.1,
             worker_count=workers, worker_buffer_size=1, sampler=sampler)
  ds = pipeline.make_dataset(cfg, train=True, process_index=0, process_count=1)
  it = iter(ds)
  _take(it, 4)
  state = it.get_state()
  expected = _take(it, 5)  # crosses the epoch boundary at batch 6
  fresh = iter(pipeline.make_dataset(cfg, train=True, process_index=0, process_count=1))
  fresh.set_state(state)
  got = _take(fresh, 5)
  for e, g in zip(expected, got):
    assert e.keys() == g.keys()
    for k in e:
      assert e[k].tobytes() == g[k].tobytes(), k
  if workers:
    it.close()
    fresh.close()


# --- Global arrays ------------------------------------------------------------


def _mesh(shape, names):
  return jax.make_mesh(shape, names, axis_types=(AxisType.Auto,) * len(shape))


@pytest.mark.parametrize("mesh_shape,names,data_axes", [
    ((1,), ("data",), "data"),
    ((8,), ("data",), ("data",)),
    ((4, 2), ("data", "fsdp"), ("data", "fsdp")),
])
def test_global_batches_are_sharded_over_data_axes(shard_dir, mesh_shape, names, data_axes):
  if mesh_shape == (1,):
    mesh = Mesh(np.array(jax.devices()[:1]), names)
  else:
    mesh = _mesh(mesh_shape, names)
  cfg = _cfg(shard_dir, batch_size=8, crop_frames=20)
  host = next(iter(pipeline.make_dataset(cfg, train=False)))
  batches = pipeline.GlobalBatches(pipeline.make_dataset(cfg, train=False), mesh, data_axes)
  batch = next(batches)
  shards_along = int(np.prod(mesh_shape))
  axes = (data_axes,) if isinstance(data_axes, str) else data_axes
  for k, v in batch.items():
    assert isinstance(v, jax.Array) and v.shape == host[k].shape and v.dtype == host[k].dtype
    assert v.sharding.spec == PartitionSpec(axes if len(axes) > 1 else axes[0])
    assert v.sharding.mesh.shape == mesh.shape
    assert len(v.addressable_shards) == shards_along
    assert {s.data.shape[0] for s in v.addressable_shards} == {8 // shards_along}
    np.testing.assert_array_equal(np.asarray(v), host[k])
  # Each device holds its own slice of the batch.
  shard0 = min(batch["clip_id"].addressable_shards, key=lambda s: s.index[0].start or 0)
  np.testing.assert_array_equal(np.asarray(shard0.data), host["clip_id"][:8 // shards_along])
  # The state restores the stream: a fresh GlobalBatches continues where this one is.
  state = batches.get_state()
  second = next(batches)
  fresh = pipeline.GlobalBatches(pipeline.make_dataset(cfg, train=False), mesh, data_axes)
  fresh.set_state(state)
  again = next(fresh)
  assert np.asarray(again["clip_id"]).tolist() == np.asarray(second["clip_id"]).tolist()
  assert np.asarray(second["clip_id"]).tolist() == list(range(8, 16))


def test_global_batches_reject_indivisible_batch_and_bad_axes(shard_dir):
  mesh = _mesh((8,), ("data",))
  batches = pipeline.GlobalBatches(
      pipeline.make_dataset(_cfg(shard_dir, batch_size=4), train=False), mesh, "data")
  with pytest.raises(ValueError, match="not divisible by the 8 devices"):
    next(batches)
  with pytest.raises(ValueError, match="axes of the mesh"):
    pipeline.GlobalBatches(pipeline.make_dataset(_cfg(shard_dir), train=False), mesh, "batch")
  with pytest.raises(ValueError, match="multiple of the process count"):
    pipeline.make_dataset(_cfg(shard_dir, batch_size=3), train=True, process_count=2)
