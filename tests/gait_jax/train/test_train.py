"""The trainer: meshes and FSDP, activation constraints, no recompilation, SIGTERM, W&B;
importing gait_jax changes no global setting. Resume after SIGKILL (over two processes):
tests/launch/test_local.py."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import chex
import jax
import jax.numpy as jnp
import conftest
import wandb_offline
import numpy as np
import pytest
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from gait_jax import models, sharding, skeleton
from gait_jax.data import pipeline
from gait_jax.train import pretrain
from gait_jax.train import state as state_lib

ROOT = conftest.REPO
GAITMAE = str(ROOT / "experiments" / "pretrain_gaitmae.py")
MAMP = str(ROOT / "experiments" / "pretrain_mamp.py")


def _load_config(path: str, arg: str, **overrides):
  import importlib.util  # pylint: disable=import-outside-toplevel
  spec = importlib.util.spec_from_file_location("exp", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(arg)
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


def _fixed_batch(config) -> dict[str, np.ndarray]:
  dataset = pipeline.make_dataset(config.data, train=True, process_index=0, process_count=1)
  return next(iter(dataset))


def _one_step(config, mesh_axes, batch_np):
  """Loss and grad norm of one step on a mesh, the state after it, its shardings."""
  config.mesh.axes = mesh_axes
  mesh = sharding.make_mesh(mesh_axes, devices=jax.devices()[:np.prod([s for _, s in mesh_axes])])
  setup = pretrain.setup_training(config, mesh, skeleton.JOINT_SETS[config.data.joints],
                                  config.data.crop_frames)
  batch = pipeline.to_global(batch_np, pipeline.batch_sharding(mesh, config.mesh.data_axes))
  with sharding.use_rules(mesh, setup.rules):
    state, metrics = setup.step(setup.init(0), batch)
  return float(metrics["loss"]), float(metrics["grad_norm"]), state, setup.shardings


def test_same_loss_on_every_mesh_and_fsdp_shards_parameters(tiny_shards):
  config = _load_config(GAITMAE, "smoke", **{"data.shards": str(tiny_shards)})
  batch = _fixed_batch(config)
  results = {}
  for axes in [(("data", 1), ("fsdp", 1), ("tensor", 1)),
               (("data", 8), ("fsdp", 1), ("tensor", 1)),
               (("data", 2), ("fsdp", 2), ("tensor", 2))]:
    loss, gnorm, state, shardings = _one_step(config, axes, batch)
    results[axes] = (loss, gnorm)
    if dict(axes)["fsdp"] > 1:
      # FSDP: every matrix with an "embed" dimension is split over fsdp, and each
      # device holds only its slice (parameters and Adam moments alike).
      specs = [s.spec for s in jax.tree.leaves(shardings["params"])]
      assert any("fsdp" in str(spec) for spec in specs)
      sharded = [p for p in jax.tree.leaves(state["params"]) if "fsdp" in str(p.sharding.spec)]
      assert sharded
      for p in sharded:
        assert p.addressable_shards[0].data.size < p.size
      mu = jax.tree.leaves(state["opt_state"])
      assert any("fsdp" in str(getattr(m, "sharding", None) and m.sharding.spec) for m in mu)
  assert len(results) == 3
  losses = np.array([v[0] for v in results.values()])
  gnorms = np.array([v[1] for v in results.values()])
  np.testing.assert_allclose(losses, losses[0], rtol=1e-5)
  np.testing.assert_allclose(gnorms, gnorms[0], rtol=1e-4)


def test_zero_steps_compile_for_the_mesh_without_data(tmp_path, capsys):
  config = _load_config(GAITMAE, "smoke", total_steps=0, **{
      "data.crop_frames": 32, "data.shards": "", "data.batch_size": 16,
      "mesh.axes": (("data", 4), ("fsdp", 2), ("tensor", 1))})
  report = pretrain.dry_run(config, str(tmp_path))
  assert json.loads((tmp_path / "dry_run.json").read_text()) == report
  assert report["mesh"] == {"data": 4, "fsdp": 2, "tensor": 1} and report["batch_size"] == 16
  # fsdp 2 halves the width-sharded parameters on each device.
  whole = report["params_m"] * 1e6 * 4 / 2**20
  assert 0.45 * whole < report["params_mib_per_device"] < 0.8 * whole
  assert report["temporaries_mib"] > 0 and report["peak_mib"] >= report["arguments_mib"]
  assert not (tmp_path / "checkpoints").exists()
  assert "dry run (total_steps=0)" in capsys.readouterr().out
  with pytest.raises(ValueError, match="crop_frames"):
    pretrain.dry_run(_load_config(GAITMAE, "smoke", total_steps=0, **{
        "data.crop_frames": 0, "data.shards": ""}), str(tmp_path))


def test_a_run_written_before_the_published_fields_loads_as_it_trained(tmp_path):
  """config.json of an older run lacks the input, sink and head fields: they load with
  the defaults that reproduce the model it trained."""
  config = _load_config(GAITMAE, "small")
  saved = json.loads(config.to_json_best_effort())
  for field in ("embedding", "mask_channel", "pre_logits"):
    del saved["model"][field]
  del saved["model"]["masking"]["joint_ratio"]
  (tmp_path / "config.json").write_text(json.dumps(saved))
  loaded = state_lib.load_pretrain_config(str(tmp_path))
  assert (loaded.model.embedding, loaded.model.mask_channel, loaded.model.pre_logits,
          loaded.model.masking.joint_ratio) == ("per_joint", True, 0, 0.0)
  assert loaded.model.width == 64 and loaded.model.depth == 4  # the run's own values


def test_micro_batches_keep_each_devices_rows():
  batch = {"x": jnp.arange(8 * 3).reshape(8, 3)}
  micro = pretrain.micro_batches(batch, 2)["x"]
  assert micro.shape == (2, 4, 3)
  # Rows 0-3 live on the first half of the devices: they stay there in both parts.
  np.testing.assert_array_equal(micro[0, :, 0], [0, 6, 12, 18])
  np.testing.assert_array_equal(micro[1, :, 0], [3, 9, 15, 21])


def test_gradient_accumulation_gives_the_full_batch_update(tiny_shards):
  """Without randomness in the loss (no masking, noise or dropout) and with equally
  many counted joint-frames in every micro-batch, two micro-batches of 4 give the
  update of one batch of 8, on a mesh of 4 data devices."""
  overrides = {"data.shards": str(tiny_shards), "model.masking.regions_hidden": 0,
               "model.masking.frame_ratio": 0.0, "model.masking.noise_std": 0.0}
  batch = _fixed_batch(_load_config(GAITMAE, "smoke", **overrides))
  batch["skeleton"][..., 3] = np.where(batch["skeleton"][..., 3] > 0, 1.0, 0.5)
  batch["skeleton"][..., :3] += 0.01  # every joint-frame observed and counted
  batch["joint_present"][:] = 1.0
  axes = (("data", 4), ("fsdp", 1), ("tensor", 1))
  whole = _one_step(_load_config(GAITMAE, "smoke", **overrides), axes, batch)
  accum = _one_step(_load_config(GAITMAE, "smoke", grad_accum=2, **overrides), axes, batch)
  np.testing.assert_allclose(accum[0], whole[0], rtol=1e-5)
  np.testing.assert_allclose(accum[1], whole[1], rtol=1e-4)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7),
               accum[2]["params"], whole[2]["params"])


def test_paper_is_the_published_recipe_setting_for_setting():
  """Each row of the published training configuration (GaitPredict LONG_CONFIG,
  model_args.txt, preprocessing_args.json) against `paper`."""
  c = _load_config(GAITMAE, "paper")
  published = {
      "optim.lr": 8e-4, "optim.weight_decay": 0.01, "optim.b1": 0.9, "optim.b2": 0.999,
      "optim.eps": 1e-8, "optim.decay": "all", "optim.clip_norm": 0.0,
      "optim.warmup": "constant", "optim.warmup_epochs": 0.3, "optim.end_lr_ratio": 0.01,
      "num_epochs": 32.0, "data.sampler": "windows", "data.windows_per_group": 2,
      "data.batch_size": 8, "data.crop_frames": 898, "model.num_sinks": 2,
      "model.dropout": 0.1, "model.pre_logits": 32, "model.embedding": "shared",
      "model.mask_channel": False, "model.depth": 8, "model.width": 128,
      "model.num_heads": 8, "model.mlp_ratio": 2, "model.temporal_pos": "rotary",
      "model.masking.span_frames": 16, "model.masking.regions_hidden": 4,
      "model.masking.frame_ratio": 0.01, "model.masking.joint_ratio": 0.01,
      "model.masking.noise_std": 0.05, "model.loss.velocity_weight": 0.1,
      "model.loss.hidden_only": False, "data.joints": "default26",
  }
  assert {k: _get(c, k) for k in published} == published
  assert c.data.crop_frames + c.model.num_sinks == 900
  plus = _load_config(GAITMAE, "paper_plus")
  from gait_jax.train import config as train_config  # pylint: disable=import-outside-toplevel
  for field, value, why in train_config.PLUS_CHANGES:
    assert _get(plus, field) == value != _get(c, field) and len(why) > 20, field
  # Everything else is the same.
  changed = {f for f, _, _ in train_config.PLUS_CHANGES}
  assert all(_get(c, k) == _get(plus, k) for k in published if k not in changed)


def _get(c, path):
  for part in path.split("."):
    c = c[part]
  return c


def test_plus_recipe_sets_nested_fields_and_refuses_unknown_ones(monkeypatch):
  from gait_jax.train import config as train_config  # pylint: disable=import-outside-toplevel
  c = _load_config(GAITMAE, "paper")
  monkeypatch.setattr(train_config, "PLUS_CHANGES",
                      (("model.masking.noise_std", 0.02, "three parts deep"),))
  train_config.plus_recipe(c)
  assert c.model.masking.noise_std == 0.02
  monkeypatch.setattr(train_config, "PLUS_CHANGES",
                      (("model.masking.noise_sd", 0.02, "a misspelt field"),))
  with pytest.raises(KeyError, match="model.masking.noise_sd"):
    train_config.plus_recipe(c)
  assert "noise_sd" not in c.model.masking


def test_published_schedule_is_constant_then_cosine_and_epochs_set_the_steps(tiny_shards):
  config = _load_config(GAITMAE, "paper", **{"data.shards": str(tiny_shards),
                                              "data.crop_frames": 30})
  pretrain.resolve_run_length(config)
  manifest = pipeline.shards_lib.open_shard_set(str(tiny_shards))[0]
  train = manifest[manifest["clip_id"].isin(pipeline.select_clips(manifest, config.data))]
  groups = train.groupby(["participant_id", "task"]).ngroups  # the train split's
  steps_per_epoch = groups * 2 / 8
  assert config.total_steps == int(np.ceil(32 * steps_per_epoch))
  assert config.optim.warmup_steps == round(0.3 * steps_per_epoch)
  schedule = state_lib.make_schedule(config.optim, config.total_steps)
  warm = config.optim.warmup_steps
  np.testing.assert_allclose([float(schedule(0)), float(schedule(warm - 1))], 8e-4)
  np.testing.assert_allclose(float(schedule(config.total_steps)), 8e-6, rtol=1e-4)
  mid = warm + (config.total_steps - warm) // 2
  np.testing.assert_allclose(float(schedule(mid)), 8e-6 + (8e-4 - 8e-6) / 2, rtol=0.05)
  linear = state_lib.make_schedule(_load_config(GAITMAE, "paper_plus").optim, 1000)
  assert float(linear(0)) == 0.0 and float(linear(1000)) > 0


def test_activations_are_constrained_in_the_step_under_the_rules_only():
  config = _load_config(GAITMAE, "smoke")
  config.mesh.axes = (("data", 4), ("fsdp", 2), ("tensor", 1))
  mesh = sharding.make_mesh(config.mesh.axes)
  joints = skeleton.JOINT_SETS[config.data.joints]
  b, t, j = config.data.batch_size, config.data.crop_frames, len(joints)
  setup = pretrain.setup_training(config, mesh, joints, t)
  batch = {"skeleton": jax.ShapeDtypeStruct((b, t, j, 4), jnp.float32),
           "joint_present": jax.ShapeDtypeStruct((b, j), jnp.float32),
           "valid": jax.ShapeDtypeStruct((b,), jnp.bool_),
           "clip_id": jax.ShapeDtypeStruct((b,), jnp.int32)}
  with sharding.use_rules(mesh, setup.rules):
    constrained = setup.step.lower(setup.abstract, batch).as_text()
  plain = setup.step.lower(setup.abstract, batch).as_text()
  # The residual stream [B, T, J, D] ("batch", "frames", "joints", "embed"):
  # batch over data × fsdp, embed not again over fsdp (taken by the batch).
  stream = f'<@mesh, [{{"data", "fsdp"}}, {{}}, {{}}, {{}}]> : tensor<{b}x{t}x{j}x'
  assert stream in constrained
  assert "sdy.sharding_constraint" in constrained
  assert "sdy.sharding_constraint" not in plain
  # The context is JAX's mesh and Flax's rules, both gone after the block.
  assert jax.sharding.get_abstract_mesh().empty
  x = jnp.ones((8, 4))
  assert sharding.constrain(x, ("batch", "embed")) is x
  with sharding.use_rules(mesh, setup.rules):
    y = jax.jit(lambda x: sharding.constrain(2 * x, ("batch", "embed")))(x)
  assert y.sharding.is_equivalent_to(NamedSharding(mesh, P(("data", "fsdp"), None)), 2)


def test_mamp_stacked_layers_carry_the_layers_axis_for_decay_and_sharding():
  config = _load_config(MAMP, "smoke")
  mesh = sharding.make_mesh((("data", 4), ("fsdp", 2), ("tensor", 1)))
  rules = tuple(tuple(r) for r in config.sharding_rules)
  _, _, specs = state_lib.abstract_model(config, skeleton.JOINT_SETS[config.data.joints],
                                         config.data.crop_frames)
  decay = state_lib.decay_mask(specs)
  shardings = state_lib.param_shardings(specs, mesh, rules)
  assert specs["encoder"]["attn"]["out_bias"] == P("layers", "embed")
  # A stacked bias is no matrix; a stacked kernel is.
  assert not decay["encoder"]["attn"]["out_bias"] and not decay["decoder"]["norm1"]["scale"]
  assert decay["encoder"]["mlp"]["fc1"]["kernel"] and decay["decoder"]["attn"]["qkv_kernel"]
  assert shardings["encoder"]["mlp"]["fc1"]["kernel"].spec == P(None, "fsdp", None)
  # Inside the rules Flax resolves logical names itself; `logical_specs` does not.
  model = nnx.eval_shape(lambda: models.build(
      config.model, skeleton.JOINT_SETS[config.data.joints], config.data.crop_frames,
      rngs=nnx.Rngs(params=0)))
  with sharding.use_rules(mesh, rules):
    inside = sharding.logical_specs(nnx.state(model, nnx.Param))
  assert nnx.to_pure_dict(inside) == specs


def test_importing_gait_jax_changes_no_global_setting():
  code = """
import importlib, json, pkgutil
import flax, jax
from flax import nnx
from flax.core import spmd

def snapshot():
  return {"jax": repr(sorted(jax.config.values.items())), "flax": repr(flax.config._values),
          "eager_sharding": nnx.using_eager_sharding(),
          "rules": repr(spmd.get_logical_axis_rules()),
          "mesh": repr(jax.sharding.get_abstract_mesh())}

before = snapshot()
import gait_jax
for module in pkgutil.walk_packages(gait_jax.__path__, "gait_jax."):
  if module.name != "gait_jax.main":  # absl flags: defined, not set
    importlib.import_module(module.name)
after = snapshot()
print(json.dumps({k: [before[k], after[k]] for k in before if before[k] != after[k]}))
"""
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True, env=_env(), cwd=ROOT, timeout=300)
  assert json.loads(out.stdout.strip().splitlines()[-1]) == {}


def test_step_is_traced_once_across_batches(tiny_shards, monkeypatch):
  config = _load_config(GAITMAE, "smoke", **{"data.shards": str(tiny_shards)})
  mesh = sharding.make_mesh(config.mesh.axes)
  # Count traces of the very step function the trainer jits.
  make = pretrain.make_train_step
  monkeypatch.setattr(pretrain, "make_train_step",
                      lambda *a: chex.assert_max_traces(make(*a), n=1))
  setup = pretrain.setup_training(config, mesh, skeleton.JOINT_SETS[config.data.joints],
                                  config.data.crop_frames)
  batches = pipeline.GlobalBatches(pipeline.make_dataset(config.data, train=True), mesh,
                                   config.mesh.data_axes)
  state = setup.init(0)
  with sharding.use_rules(mesh, setup.rules):
    for _ in range(3):
      state, metrics = setup.step(state, next(batches))
  batches.close()
  assert int(state["step"]) == 3 and np.isfinite(float(metrics["loss"]))


def _train_cmd(workdir, shards, steps, every, extra=(), evals=False):
  """The smoke pretraining command; without its evaluators unless `evals`."""
  return [sys.executable, "-m", "gait_jax.main", "--config", f"{GAITMAE}:smoke",
          "--workdir", str(workdir), f"--config.data.shards={shards}",
          f"--config.total_steps={steps}", f"--config.checkpoint_every={every}",
          "--config.log_every=1", *([] if evals else ["--config.evals.val.every=0"]), *extra]


def _losses(workdir) -> dict[int, float]:
  lines = (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()
  return {r["step"]: r["loss"] for r in map(json.loads, lines) if "loss" in r}


def _env(**kw):
  return {**os.environ, "WANDB_MODE": "disabled", **kw}


def test_sigterm_saves_a_checkpoint(tiny_shards, tmp_path):
  workdir = tmp_path / "run"
  proc = subprocess.Popen(_train_cmd(workdir, tiny_shards, 10_000, 10_000), env=_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  deadline = time.time() + 300
  metrics = workdir / "metrics.jsonl"
  while time.time() < deadline and not (metrics.is_file() and metrics.read_text()):
    time.sleep(0.1)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 128 + signal.SIGTERM, out
  steps = [int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()]
  assert steps and max(steps) >= 1
  assert "SIGTERM: checkpoint saved" in out


def test_wandb_offline_run_has_the_logged_keys(tiny_shards, tmp_path):
  """A smoke run with its evaluators: held-out loss every 2 steps and at the end, the
  frozen probe at the end; their metrics in metrics.jsonl, the console and W&B."""
  workdir = tmp_path / "run"
  phenotypes = tiny_shards.parent / "cohort" / "phenotypes.parquet"
  proc = subprocess.run(_train_cmd(workdir, tiny_shards, 3, 3, [
      f"--config.evals.probe.phenotypes={phenotypes}"], evals=True), check=True,
      env=_env(WANDB_MODE="offline"), capture_output=True, text=True, timeout=600)
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  evals = {r["step"]: r for r in records if "loss" not in r}
  assert sorted(evals) == [2, 3]
  assert "val/loss" in evals[2] and "probe/age_r" not in evals[2]
  tasks = {k for k in evals[3] if k.startswith("val/loss/")}
  assert len(tasks) == 5 and all(np.isfinite(evals[3][k]) for k in tasks)
  for key in ("probe/age_r", "probe/bmi_r", "probe/sex_auc"):
    assert key in evals[3] and np.isfinite(evals[3][key]), key
  (line,) = [x for x in proc.stdout.splitlines() if x.startswith("step 3/3 eval | ")]
  assert "val/loss " in line and "probe/sex_auc " in line
  runs = list((workdir / "wandb").glob("offline-run-*"))
  assert len(runs) == 1
  run_id = (workdir / "wandb_run_id").read_text().strip()
  assert runs[0].name.endswith(run_id)
  blob = b"".join(p.read_bytes() for p in runs[0].rglob("*.wandb"))
  for key in (b"loss", b"grad_norm", b"lr", b"clips_per_s", b"tokens_per_s", b"flops_per_s",
              b"step_time_s", b"val/loss", b"probe/sex_auc"):
    assert key in blob, key
  run = wandb_offline.run_info(wandb_offline.read_offline_run(workdir))
  assert (run.run_group, run.job_type, run.display_name) == (tmp_path.name, "pretrain", "run")


def test_mamp_trains_through_the_same_contract(tiny_shards, tmp_path):
  workdir = tmp_path / "mamp"
  cmd = [sys.executable, "-m", "gait_jax.main", "--config",
         str(ROOT / "experiments" / "pretrain_mamp.py") + ":smoke", "--workdir", str(workdir),
         f"--config.data.shards={tiny_shards}", "--config.total_steps=3",
         "--config.checkpoint_every=3", "--config.mesh.axes=(('data', 4), ('fsdp', 2), ('tensor', 1))"]
  subprocess.run(cmd, check=True, env=_env(), capture_output=True, timeout=600)
  losses = _losses(workdir)
  assert sorted(losses) == [1, 2, 3] and all(np.isfinite(v) for v in losses.values())
  assert (workdir / "checkpoints" / "3").is_dir()
