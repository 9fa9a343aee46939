"""Embedding job: pooling, streaming per-person reduction, ablations, end to end."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from gait_jax import schema, skeleton
from gait_jax.embedding import aggregate, job, pooling
from gait_jax.models import masking
from gait_jax.train import state as state_lib

JOINTS = skeleton.JOINT_SETS["default26"]


def test_region_pooling_matches_a_direct_computation():
  rng = np.random.default_rng(0)
  feats = rng.normal(size=(2, 50, len(JOINTS), 3)).astype(np.float32)
  weights = pooling.region_weights(JOINTS)
  out = np.asarray(pooling.pool(jnp.asarray(feats), weights, ("mean", "p99")))
  names = pooling.feature_names(pooling.DEFAULT_REGIONS, ("mean", "p99"), 3)
  assert out.shape == (2, 4 * 2 * 3) and len(names) == out.shape[1]
  regions = masking.region_ids(JOINTS)
  legs = np.isin(regions, masking.region_index(("left_leg", "right_leg")))
  series = feats[:, :, legs].mean(axis=2)  # [B, T, D], left and right merged
  np.testing.assert_allclose(out[:, names.index("legs.mean.001")], series[:, :, 1].mean(1),
                             rtol=1e-5)
  np.testing.assert_allclose(out[:, names.index("legs.p99.002")],
                             np.percentile(series[:, :, 2], 99, axis=1), rtol=1e-5)
  head = np.isin(regions, masking.region_index(("head",)))
  np.testing.assert_allclose(out[:, names.index("head.mean.000")],
                             feats[:, :, head, 0].mean(axis=(1, 2)), rtol=1e-5)
  with pytest.raises(ValueError, match="no joint"):
    pooling.region_weights(("PELVIS", "NECK"))


def test_group_reducer_streams_medians_and_counts_exclusions():
  reducer = aggregate.GroupReducer({"a": 3, "b": 2, "c": 1}, ("none",))
  out = []
  order = [("a", 1.0), ("b", 5.0), ("a", 2.0), ("b", None), ("a", 10.0), ("c", None)]
  for group, value in order:
    vec = None if value is None else {"none": np.full(2, value, np.float32)}
    out += list(reducer.add(group, vec))
    assert reducer.open_groups() <= 2
  assert [(g, n) for g, n, _ in out] == [("b", 1), ("a", 3)]  # c: no usable clip
  np.testing.assert_array_equal(out[1][2]["none"], [2.0, 2.0])  # median of 1, 2, 10
  assert reducer.incomplete() == {}
  with pytest.raises(KeyError):
    list(reducer.add("z", None))


def test_ablation_regions():
  regions = pooling.DEFAULT_REGIONS
  assert job.ablation_regions("none", regions) == ()
  assert job.ablation_regions("zero:legs", regions) == ("left_leg", "right_leg")
  only = job.ablation_regions("only:torso", regions)
  assert "torso" not in only and set(only) == set(masking.MASK_REGIONS) - {"torso"}
  with pytest.raises(ValueError, match="ablation"):
    job.ablation_regions("zero:tail", regions)


@pytest.fixture(scope="module")
def pretrained(tiny_shards, tmp_path_factory):
  """A smoke GaitMAE pretrained for 2 steps on the tiny cohort."""
  workdir = tmp_path_factory.mktemp("pretrain")
  subprocess.run(
      [sys.executable, "-m", "gait_jax.main",
       "--config", "experiments/pretrain_gaitmae.py:smoke", "--workdir", str(workdir),
       f"--config.data.shards={tiny_shards}", "--config.total_steps=2",
       "--config.checkpoint_every=2", "--config.data.split=all"],
      check=True, capture_output=True, text=True)
  return workdir


def test_embed_job_end_to_end_with_ablations(tiny_shards, pretrained, tmp_path):
  out = tmp_path / "embed"
  proc = subprocess.run(
      [sys.executable, "-m", "gait_jax.main", "--config", "experiments/embed.py:ablations",
       "--workdir", str(out), f"--config.checkpoint_dir={pretrained}",
       f"--config.data.shards={tiny_shards}", "--config.data.batch_size=8"],
      check=True, capture_output=True, text=True)
  assert "clips" in proc.stdout
  table = pd.read_parquet(out / "embeddings.parquet")
  manifest = pd.read_parquet(tiny_shards / "manifest.parquet")
  groups = manifest.groupby(["participant_id", "task"]).size()
  assert len(table) == len(groups) * 9
  assert set(table["ablation"]) == {"none", "zero:legs", "zero:arms", "zero:torso",
                                    "zero:head", "only:legs", "only:arms", "only:torso",
                                    "only:head"}
  assert (table["checkpoint_step"] == 2).all() and table["config_hash"].nunique() == 1
  feats = [c for c in table.columns if c not in schema.KEY_COLUMNS + schema.META_COLUMNS]
  assert len(feats) == 4 * 2 * 16 and feats[0] == "legs.mean.000"
  assert np.isfinite(table[feats].to_numpy()).all()
  none = table[table.ablation == "none"].set_index(["participant_id", "task"])
  counts = none["n_clips"].sort_index()
  np.testing.assert_array_equal(counts.to_numpy(), groups.sort_index().to_numpy())
  # Zeroing the legs changes the leg features; the untouched run is reproducible.
  legs = [c for c in feats if c.startswith("legs.")]
  zero_legs = table[table.ablation == "zero:legs"].set_index(["participant_id", "task"])
  assert not np.allclose(none[legs].to_numpy(), zero_legs.loc[none.index, legs].to_numpy())
  meta = json.loads((out / "embed_config.json").read_text())
  assert meta["checkpoint_step"] == 2 and meta["window_frames"] == 32
  report = pd.read_csv(out / "embed_report.csv")
  assert report.empty


def test_embed_fn_windows_cover_the_clip_and_are_sharded(tiny_shards, pretrained):
  """A clip of 2 windows pools both windows' tokens: changing only the second
  window changes the embedding; the same batch on an 8-device mesh agrees."""
  from gait_jax.train import state as state_lib  # pylint: disable=import-outside-toplevel
  pre = state_lib.load_pretrain_config(pretrained)
  model_def, _, _ = state_lib.abstract_model(pre, JOINTS, 32)
  _, params, _ = state_lib.build_model(pre, JOINTS, 32, jax.random.key(0))
  fn = jax.jit(job.make_embed_fn(model_def, window=32, layer=-1, hidden={"none": ()},
                                 weights=pooling.region_weights(JOINTS), stats=("mean",)))
  rng = np.random.default_rng(0)
  skel = rng.normal(0, 0.2, (8, 64, len(JOINTS), 4)).astype(np.float32)
  skel[..., 3] = 1.0
  batch = {"skeleton": skel, "joint_present": np.ones((8, len(JOINTS)), np.float32)}
  base = np.asarray(fn(params, batch)["none"])
  later = dict(batch, skeleton=skel.copy())
  later["skeleton"][:, 40, :, :3] += 0.5
  assert not np.allclose(np.asarray(fn(params, later)["none"]), base, atol=1e-5)
  mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  sharded = jax.device_put(batch, jax.sharding.NamedSharding(mesh, jax.P("data")))
  np.testing.assert_allclose(np.asarray(fn(params, sharded)["none"]), base, rtol=1e-4,
                             atol=1e-5)
