"""Evaluators while pretraining: held-out loss exact over clips, probe metrics, config."""

import copy
import logging

import jax
import ml_collections
import numpy as np
import pytest

from gait_jax import sharding, skeleton
from gait_jax.data import pipeline
from gait_jax.data import shards as shards_lib
from gait_jax.train import config as train_config
from gait_jax.train import evaluators
from gait_jax.train import state as state_lib

NUM_FRAMES = 32


@pytest.fixture(scope="module")
def run(tiny_shards):
  """A smoke config over the tiny cohort, its joints and a model's params."""
  config = train_config.get_config("smoke", model="smoke")
  config.data.shards = str(tiny_shards)
  config.data.crop_frames = NUM_FRAMES
  joints = tuple(skeleton.joint_names(config.data.joints))
  model_def, params, specs = state_lib.build_model(config, joints, NUM_FRAMES,
                                                   jax.random.key(0))
  return config, joints, model_def, params, specs


def _build(run, mesh_axes=(("data", -1), ("fsdp", 1), ("tensor", 1)), **evals):
  """Evaluators of `evals` on a mesh, and the params laid out there by the rules."""
  config, joints, model_def, params, specs = run
  config = copy.deepcopy(config)
  config.mesh.axes = mesh_axes
  config.evals = ml_collections.ConfigDict(evals)
  mesh = sharding.make_mesh(config.mesh.axes)
  rules = tuple(tuple(r) for r in config.sharding_rules)
  params = jax.device_put(params, state_lib.param_shardings(specs, mesh, rules))
  return evaluators.build(config, mesh, rules, model_def, joints, NUM_FRAMES), params


@pytest.fixture(scope="module")
def by_hand(run):
  """(task, metrics) of each clip of split "test", in clip-id order: one clip at a
  time, masked with fold_in(key(0), clip id), no mesh, no padding."""
  config, _, model_def, params, _ = run
  data = copy.deepcopy(config.data)
  data.split, data.batch_size = "test", 1
  loss = jax.jit(lambda p, b, r: model_def.merge(p).loss(b, r, train=False)[1])
  manifest = shards_lib.open_shard_set(data.shards)[0]
  rows = []
  for batch in pipeline.make_dataset(data, train=False, process_index=0, process_count=1):
    clip = int(batch["clip_id"][0])
    metrics = loss(params, batch, jax.random.fold_in(jax.random.key(0), clip))
    rows.append((manifest["task"][clip], {k: float(metrics[k]) for k in
                                          evaluators.LOSS_METRICS}))
  return rows


def test_val_loss_is_the_mean_over_the_split_clips_whatever_the_padding(run, by_hand):
  rows = by_hand
  assert len(rows) % 8 and len(rows) > 16  # the eval batches below are padded
  want = {f"val/{k}": np.mean([m[k] for _, m in rows]) for k in evaluators.LOSS_METRICS}
  tasks = sorted({t for t, _ in rows})
  for task in tasks:
    want[f"val/loss/{task}"] = np.mean([m["loss"] for t, m in rows if t == task])
  assert len(tasks) == 5

  (ev,), params = _build(run, val=evaluators.loss_eval(every=2, split="test"))
  assert (ev.name, ev.every) == ("val", 2)
  got = ev.run(params, 2)
  assert sorted(got) == sorted(want)
  assert all(isinstance(v, float) for v in got.values())
  for key, value in want.items():
    np.testing.assert_allclose(got[key], value, rtol=2e-5, err_msg=key)
  # Fixed masks: the same params give the same value at any step.
  assert ev.run(params, 4) == got

  # Three times the padding, and the model and batch laid out over data × fsdp.
  (big,), params = _build(run, (("data", 4), ("fsdp", 2), ("tensor", 1)),
                          val=evaluators.loss_eval(every=1, split="test", batch_size=24))
  other = big.run(params, 0)
  for key, value in want.items():
    np.testing.assert_allclose(other[key], value, rtol=2e-5, err_msg=key)
  ev.close()
  big.close()


def test_val_loss_max_batches_reads_a_prefix(run, by_hand):
  (ev,), params = _build(run, val=evaluators.loss_eval(every=1, split="test", max_batches=1))
  rows = by_hand[:8]
  np.testing.assert_allclose(ev.run(params, 0)["val/loss"],
                             np.mean([m["loss"] for _, m in rows]), rtol=2e-5)


def _phenotypes(tiny_shards) -> str:
  return str(tiny_shards.parent / "cohort" / "phenotypes.parquet")


def test_probe_metrics_are_named_by_kind_and_finite(run, tiny_shards):
  (ev,), params = _build(run, probe=evaluators.probe_eval(
      every=6, split="all", phenotypes=_phenotypes(tiny_shards), n_folds=3, n_seeds=1,
      min_samples=6, min_fold_positives=1))
  got = ev.run(params, 6)
  assert sorted(got) == ["probe/age_r", "probe/bmi_r", "probe/sex_auc"]
  assert all(np.isfinite(v) and -1 <= v <= 1 for v in got.values()), got
  assert ev.notes == []
  ids, x = ev.embed(params)
  assert len(ids) == 8 and x.shape == (8, 4 * 2 * run[0].model.width)


def test_probe_of_too_few_participants_is_nan_with_a_reason(run, tiny_shards, caplog):
  (ev,), params = _build(run, probe=evaluators.probe_eval(
      every=1, split="test", phenotypes=_phenotypes(tiny_shards), n_folds=3))
  with caplog.at_level(logging.WARNING):
    got = ev.run(params, 0)
  assert sorted(got) == ["probe/age_r", "probe/bmi_r", "probe/sex_auc"]
  assert all(np.isnan(v) for v in got.values())
  assert len(ev.notes) == 3
  assert all("2 participants cannot fill 3 folds" in n and "split 'test'" in n
             for n in ev.notes)
  assert "probe/sex_auc is NaN" in caplog.text


def test_probe_scores_find_planted_targets():
  rng = np.random.default_rng(0)
  n = 60
  latent = rng.normal(size=(n, 2))
  x = np.concatenate([latent, rng.normal(size=(n, 6))], 1) @ rng.normal(size=(8, 20))
  y = np.stack([latent[:, 0] + 0.3 * rng.normal(size=n),  # continuous, planted
                (latent[:, 1] > 0).astype(float),          # binary, planted
                rng.normal(size=n)], 1)                    # null
  y[3, 0] = np.nan
  guard = ml_collections.ConfigDict({"min_samples": 15, "min_positives": 3,
                                     "min_fold_positives": 2})
  score, reasons = evaluators.probe_scores(
      x, y, np.array([False, True, False]), n_folds=5, seeds=(0, 1),
      alphas=evaluators.PROBE_OPTIONS["alphas"], guard=guard)
  assert reasons == [None, None, None]
  assert score[0] > 0.8 and score[1] > 0.9 and abs(score[2]) < 0.4, score
  few, why = evaluators.probe_scores(x[:10], y[:10], np.array([False, True, False]),
                                     n_folds=5, seeds=(0,), alphas=(1.0,), guard=guard)
  assert np.isnan(few).all() and all("too few samples" in w for w in why)


def test_config_errors_name_the_entry(run, tiny_shards):
  with pytest.raises(ValueError, match=r"evals.val: unknown type 'lose'"):
    _build(run, val=ml_collections.ConfigDict({"type": "lose", "every": 1}))
  with pytest.raises(ValueError, match=r"evals.val: unknown option\(s\) \['max_batch'\]"):
    _build(run, val=ml_collections.ConfigDict({"type": "loss", "every": 1, "max_batch": 2}))
  with pytest.raises(ValueError, match="unknown option"):
    evaluators.probe_eval(every=1, target=("age",))
  with pytest.raises(ValueError, match=r"evals.probe: .*lacks the column\(s\) \['shoe'\]"):
    _build(run, probe=evaluators.probe_eval(every=1, split="all", targets=("age", "shoe"),
                                            phenotypes=_phenotypes(tiny_shards)))
  with pytest.raises(ValueError, match=r"evals.val: .*'split' filter"):  # nobody in "val"
    _build(run, val=evaluators.loss_eval(every=1))


def test_evals_config_variants_and_what_build_skips(run, caplog):
  for variant in evaluators.EVERY:
    c = evaluators.evals_config(variant)
    assert (c.val.type, c.probe.type) == ("loss", "probe")
    assert (c.val.every, c.probe.every) == evaluators.EVERY[variant]
    assert set(c.probe) == {"type", "every", *evaluators.PROBE_OPTIONS}
  smoke = evaluators.evals_config("smoke")
  assert smoke.val.split == "all" and smoke.probe.phenotypes == ""
  smoke.val.every = 0  # off
  with caplog.at_level(logging.WARNING):
    built, _ = _build(run, **smoke)
  assert built == [] and "evals.probe: no phenotype table" in caplog.text
  with pytest.raises(ValueError, match="unknown variant"):
    evaluators.evals_config("huge")
