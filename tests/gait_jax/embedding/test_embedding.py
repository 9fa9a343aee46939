"""Embedding job: pooling, streaming per-person reduction, ablations, end to end."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pandas as pd
import pytest

import wandb_offline

from gait_jax import models, schema, skeleton
from gait_jax.embedding import aggregate, job, pooling
from gait_jax.embedding import config as embed_config
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


def test_joint_pooling_keeps_every_joint_and_names_it():
  rng = np.random.default_rng(1)
  feats = rng.normal(size=(2, 30, len(JOINTS), 3)).astype(np.float32)
  rows, weights = pooling.pool_weights(JOINTS, by="joint")
  assert rows == tuple(JOINTS) and weights.shape == (len(JOINTS), len(JOINTS))
  out = np.asarray(pooling.pool(jnp.asarray(feats), weights, ("mean", "std")))
  names = pooling.feature_names(rows, ("mean", "std"), 3)
  assert out.shape == (2, len(JOINTS) * 2 * 3) and len(names) == out.shape[1]
  knee = JOINTS[5]
  np.testing.assert_allclose(out[:, names.index(f"{knee}.mean.002")],
                             feats[:, :, 5, 2].mean(1), rtol=1e-5)
  np.testing.assert_allclose(out[:, names.index(f"{knee}.std.001")],
                             feats[:, :, 5, 1].std(1), rtol=1e-4)
  # by="region" is the published pooling, unchanged.
  region_rows, region = pooling.pool_weights(JOINTS)
  assert region_rows == tuple(n for n, _ in pooling.DEFAULT_REGIONS)
  np.testing.assert_array_equal(region, pooling.region_weights(JOINTS))
  assert (pooling.feature_names(region_rows, ("mean",), 2)
          == pooling.feature_names(pooling.DEFAULT_REGIONS, ("mean",), 2))
  with pytest.raises(ValueError, match="pool by"):
    pooling.pool_weights(JOINTS, by="limb")


def test_joint_pooling_keeps_body_scale_that_region_means_cancel():
  """Token features that grow with body size in opposite directions within a region
  (their sum over the region's joints is 0): the region mean is the same for a body
  1.1 times larger, the per-joint vector scales with it, and a linear readout of
  the per-joint vector recovers the scale exactly."""
  rng = np.random.default_rng(2)
  region = pooling.region_weights(JOINTS)  # [R, J], rows average a region's joints
  member = region > 0
  direction = rng.normal(size=(len(JOINTS), 4))
  for row in member:  # zero sum over each region's joints
    direction[row] -= direction[row].mean(0)
  motion = rng.normal(0, 0.1, size=(1, 20, 1, 4))  # the same gait for every size
  scales = np.array([0.9, 0.95, 1.0, 1.05, 1.1])
  feats = jnp.asarray(scales[:, None, None, None] * direction[None, None] + motion,
                      jnp.float32)  # [5, T, J, D]
  by_region = np.asarray(pooling.pool(feats, region, ("mean",)))
  _, joint = pooling.pool_weights(JOINTS, by="joint")
  by_joint = np.asarray(pooling.pool(feats, joint, ("mean",)))
  np.testing.assert_allclose(by_region, by_region[[2]].repeat(5, 0), atol=1e-5)
  assert np.abs(by_joint[4] - by_joint[2]).max() > 0.05
  design = np.c_[by_joint, np.ones(5)]
  fit = design @ np.linalg.lstsq(design, scales, rcond=None)[0]
  np.testing.assert_allclose(fit, scales, atol=1e-4)


def test_per_joint_variant_and_its_config_hash():
  default, per_joint = embed_config.get_config(), embed_config.get_config("per_joint")
  assert default.pool.by == "region" and tuple(default.pool.stats) == ("mean", "p99")
  assert per_joint.pool.by == "joint" and tuple(per_joint.pool.stats) == ("mean",)
  assert tuple(per_joint.pool.regions) == tuple(default.pool.regions)  # for ablations
  pre = ml_collections.ConfigDict({"model": {"width": 8}})
  legacy = ml_collections.ConfigDict(default.to_dict())
  del legacy.pool["by"]
  # The published pooling keeps the hash it had before pool.by existed.
  assert job._config_hash(pre, default, 3) == job._config_hash(pre, legacy, 3)
  by_joint = ml_collections.ConfigDict(default.to_dict())
  by_joint.pool.by = "joint"
  assert job._config_hash(pre, by_joint, 3) != job._config_hash(pre, default, 3)


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


def _per_ablation_loop(model_def, *, window, layer, hidden, weights, stats):
  """The embed function before the stacked batch: one encode per ablation."""
  def embed(params, batch):
    model = model_def.merge(params)
    skel, present = batch["skeleton"], batch["joint_present"]
    b, t, j, c = skel.shape
    n = t // window
    start = (t - n * window) // 2
    windows = skel[:, start:start + n * window].reshape(b * n, window, j, c)
    present_w = jnp.repeat(present, n, axis=0)
    out = {}
    for name, hide in hidden.items():
      feats = model.encode(windows, present_w, layer=layer, hide_regions=hide)
      feats = feats.reshape(b, n * feats.shape[1], *feats.shape[2:])
      out[name] = pooling.pool(feats, weights, stats)
    return out
  return embed


@pytest.mark.parametrize("preset, always_hide", [("smoke", ()), ("smoke", ("left_arm",)),
                                                 ("mamp_smoke", ())])
def test_stacked_ablations_equal_the_per_ablation_loop(preset, always_hide):
  """All ablations in one forward over [B·A·n, window, J, C] (or k per pass) give
  the embeddings of one encode per ablation; the model's always_hide is hidden in
  every row."""
  cfg = ml_collections.ConfigDict({"model": models.get_model_config(preset)})
  if preset == "smoke":
    cfg.model.masking.always_hide = always_hide
  model_def, params, _ = state_lib.build_model(cfg, JOINTS, 16, jax.random.key(3))
  regions = pooling.DEFAULT_REGIONS
  names = ["none"] + [f"{k}:{n}" for k in ("zero", "only") for n, _ in regions]
  hidden = {a: job.ablation_regions(a, regions) for a in names}
  kw = dict(window=16, layer=-1, weights=pooling.region_weights(JOINTS),
            stats=("mean", "p99"))
  stacked = jax.jit(job.make_embed_fn(model_def, hidden=hidden, **kw))
  two_per_pass = jax.jit(job.make_embed_fn(model_def, hidden=hidden, per_pass=2, **kw))
  reference = jax.jit(_per_ablation_loop(
      model_def, hidden={a: tuple(h) + always_hide for a, h in hidden.items()}, **kw))
  rng = np.random.default_rng(0)
  skel = rng.normal(0, 0.2, (4, 40, len(JOINTS), 4)).astype(np.float32)  # 2 windows
  skel[..., 3] = 1.0
  present = np.ones((4, len(JOINTS)), np.float32)
  present[1, 3] = 0.0
  batch = {"skeleton": skel, "joint_present": present}
  got, want = stacked(params, batch), reference(params, batch)
  pairs = two_per_pass(params, batch)
  assert sorted(got) == sorted(names) == sorted(pairs)
  for name in names:
    assert got[name].shape == (4, 4 * 2 * cfg.model.width)
    np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(pairs[name], want[name], rtol=1e-5, atol=1e-5, err_msg=name)
  assert not np.allclose(got["none"], got["zero:legs"], atol=1e-4)


def test_ablations_per_pass_auto_is_one_on_cpu_and_all_elsewhere():
  from gait_jax.embedding import config as embed_config  # pylint: disable=import-outside-toplevel
  from gait_jax.errors import InputError  # pylint: disable=import-outside-toplevel
  config = embed_config.get_config("ablations")
  assert job.ablations_per_pass(config, "cpu") == 1
  assert job.ablations_per_pass(config, "gpu") == job.ablations_per_pass(config, "tpu") == 9
  config.ablations_per_pass = 4
  assert job.ablations_per_pass(config, "cpu") == job.ablations_per_pass(config, "gpu") == 4
  config.ablations_per_pass = 0
  with pytest.raises(InputError, match="ablations_per_pass"):
    job.ablations_per_pass(config, "cpu")


def test_exclusion_counts_are_per_reason_never_per_participant():
  report = pd.DataFrame(
      [("P1", "walk", 3, "non_finite_embedding (none)"),
       ("P1", "walk", 4, "non_finite_embedding (none, zero:legs)"),
       ("P1", "walk", -1, "no_usable_clip"),
       ("P2", "sit", -1, "incomplete: 1 of 3 clips read")],
      columns=["participant_id", "task", "clip_id", "reason"])
  counts = job.exclusion_counts(report)
  assert counts.to_dict("list") == {
      "reason": ["incomplete", "no_usable_clip", "non_finite_embedding"],
      "rows": [1, 1, 2], "clips": [0, 0, 2], "groups": [1, 1, 1]}
  assert list(job.exclusion_counts(report.iloc[:0]).columns) == ["reason", "rows", "clips",
                                                                  "groups"]


def test_embed_job_end_to_end_with_ablations(tiny_shards, pretrained, tmp_path):
  out = tmp_path / "embed"
  proc = subprocess.run(
      [sys.executable, "-m", "gait_jax.main", "--config", "experiments/embed.py:ablations",
       "--workdir", str(out), f"--config.checkpoint_dir={pretrained}",
       f"--config.data.shards={tiny_shards}", "--config.data.batch_size=8",
       "--config.ablations_per_pass=9"],  # all in one pass, sharded over 8 devices
      check=True, capture_output=True, text=True,
      env={**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"})
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
  # The job's offline W&B run: grouped by the workdir's parent, counts in the
  # summary, exclusions as counts per reason, no participant id anywhere.
  records = wandb_offline.read_offline_run(out)
  run = wandb_offline.run_info(records)
  assert (run.run_group, run.job_type, run.display_name) == (tmp_path.name, "embed", "embed")
  summary = wandb_offline.summary(records)
  assert summary["clips"] == len(manifest) and summary["rows"] == len(table)
  assert summary["groups"] == len(groups) and summary["ablations"] == 9
  assert summary["clips_per_s"] > 0 and summary["report_rows"] == 0
  [excluded] = wandb_offline.logged_tables(out, "excluded")
  assert excluded["columns"] == ["reason", "rows", "clips", "groups"]
  assert excluded["data"] == []
  assert wandb_offline.files_mention(out, set(manifest["participant_id"])) == []


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
  # max_windows=1 keeps the central window only: frames outside it change nothing.
  one = jax.jit(job.make_embed_fn(model_def, window=32, layer=-1, hidden={"none": ()},
                                  weights=pooling.region_weights(JOINTS), stats=("mean",),
                                  max_windows=1))
  wide = dict(batch, skeleton=rng.normal(0, 0.2, (8, 96, len(JOINTS), 4)).astype(np.float32))
  wide["skeleton"][..., 3] = 1.0
  central = np.asarray(one(params, wide)["none"])
  edges = dict(wide, skeleton=wide["skeleton"].copy())
  edges["skeleton"][:, :32, :, :3] += 0.5
  edges["skeleton"][:, 64:, :, :3] -= 0.5
  np.testing.assert_allclose(np.asarray(one(params, edges)["none"]), central, atol=1e-6)
  inner = dict(wide, skeleton=wide["skeleton"].copy())
  inner["skeleton"][:, 40, :, :3] += 0.5
  assert not np.allclose(np.asarray(one(params, inner)["none"]), central, atol=1e-5)


def test_per_joint_embed_fn_pools_each_joints_tokens(tiny_shards, pretrained):
  """make_embed_fn with pool_weights(by="joint"): one block of width D per joint, in
  the joint set's order, each the time mean of that joint's encoder features."""
  pre = state_lib.load_pretrain_config(pretrained)
  model_def, params, _ = state_lib.build_model(pre, JOINTS, 32, jax.random.key(0))
  rows, weights = pooling.pool_weights(JOINTS, by="joint")
  fn = jax.jit(job.make_embed_fn(model_def, window=32, layer=-1, hidden={"none": ()},
                                 weights=weights, stats=("mean",)))
  rng = np.random.default_rng(3)
  skel = rng.normal(0, 0.2, (2, 32, len(JOINTS), 4)).astype(np.float32)
  skel[..., 3] = 1.0
  present = np.ones((2, len(JOINTS)), np.float32)
  out = np.asarray(fn(params, {"skeleton": skel, "joint_present": present})["none"])
  width = int(pre.model.width)
  assert out.shape == (2, len(JOINTS) * width)
  tokens = np.asarray(model_def.merge(params).encode(jnp.asarray(skel), jnp.asarray(present)))
  np.testing.assert_allclose(out.reshape(2, len(JOINTS), width), tokens.mean(1), rtol=1e-4,
                             atol=1e-5)
  assert rows == tuple(JOINTS)
