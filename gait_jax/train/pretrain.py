"""Masked-reconstruction pretraining: one `run(config, workdir)`, read top to bottom.

  mesh → data → model and optimiser (abstract, then created sharded) → resume →
  compiled step → loop (log, figure, checkpoint, preemption) → final checkpoint
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec

from gait_jax import sharding, skeleton
from gait_jax.data import pipeline
from gait_jax.data import shards as shards_lib
from gait_jax.models import flops as flops_lib
from gait_jax.train import checkpoint as ckpt_lib
from gait_jax.train import evaluators as evaluators_lib
from gait_jax.train import figures, state as state_lib, writer as writer_lib

# bf16 dense peak FLOP/s per device, for MFU when the config gives none.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12,
              "TPU v4": 275e12, "TPU v5p": 459e12, "TPU v5 lite": 197e12}


def peak_flops_per_device(config: ml_collections.ConfigDict) -> float:
  if config.peak_flops_per_device:
    return float(config.peak_flops_per_device)
  kind = jax.devices()[0].device_kind
  return next((v for k, v in PEAK_FLOPS.items() if k.lower() in kind.lower()), 0.0)


def micro_batches(batch: dict[str, jax.Array], count: int) -> dict[str, jax.Array]:
  """[B, ...] → [count, B / count, ...]; micro-batch i holds rows i, i + count, ...,
  so that each device keeps its own rows of a batch split over the data axes."""
  def split(x):
    if x.shape[0] % count:
      raise ValueError(f"batch of {x.shape[0]} does not split into {count} micro-batches")
    return jnp.moveaxis(x.reshape(x.shape[0] // count, count, *x.shape[1:]), 1, 0)
  return jax.tree.map(split, batch)


def make_train_step(model_def: state_lib.ModelDef, optimizer: optax.GradientTransformation,
                    schedule: optax.Schedule, grad_accum: int = 1):
  """(state, batch) → (state, metrics): one optimiser step, RNG folded with the step.

  With grad_accum > 1 the batch runs as that many micro-batches in a `lax.scan`
  (micro-batch i with the step's key folded with i); loss, metrics and gradients
  are their means.
  """

  def grads_of(params, batch, rng):
    def loss_fn(params):
      return model_def.merge(params).loss(batch, rng, train=True)
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return metrics, grads

  def train_step(state: dict[str, Any], batch: dict[str, jax.Array]):
    rng = jax.random.fold_in(jax.random.wrap_key_data(state["rng"]), state["step"])
    if grad_accum == 1:
      metrics, grads = grads_of(state["params"], batch, rng)
    else:
      micros = micro_batches(batch, grad_accum)

      def body(total, micro_and_index):
        micro, i = micro_and_index
        out = grads_of(state["params"], micro, jax.random.fold_in(rng, i))
        return jax.tree.map(jnp.add, total, out), None

      shapes = jax.eval_shape(grads_of, state["params"],
                              jax.tree.map(lambda x: x[0], micros), rng)
      zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
      total, _ = jax.lax.scan(body, zeros, (micros, jnp.arange(grad_accum)))
      metrics, grads = jax.tree.map(lambda x: x / grad_accum, total)
    loss = metrics["loss"]
    grad_norm = optax.tree.norm(grads)
    updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    # A non-finite step leaves the state untouched; the host stops at its next check.
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
    new_state = {"params": keep(params, state["params"]),
                 "opt_state": keep(opt_state, state["opt_state"]),
                 "step": state["step"] + 1, "rng": state["rng"]}
    metrics = {**metrics, "grad_norm": grad_norm, "lr": schedule(state["step"]),
               "nonfinite": (~finite).astype(jnp.float32)}
    return new_state, metrics

  return train_step


@dataclasses.dataclass
class Setup:
  """Everything compiled for a run, built once from the config and the mesh.

  Attributes:
    abstract: ShapeDtypeStructs of the state, carrying their shardings.
    shardings: NamedShardings of the state.
    init: seed → state, created sharded (jit with out_shardings).
    step: the jitted (state, batch) → (state, metrics), state donated.
    reconstruct: jitted (params, batch, rng) → reconstruction dict.
  """
  mesh: Any
  rules: tuple
  model_def: state_lib.ModelDef
  optimizer: optax.GradientTransformation
  abstract: Any
  shardings: Any
  init: Any
  step: Any
  reconstruct: Any


def setup_training(config: ml_collections.ConfigDict, mesh, joints, num_frames: int) -> Setup:
  """Model, optimiser, state shardings and the jitted step for a mesh."""
  rules = tuple(tuple(r) for r in config.sharding_rules)
  schedule = state_lib.make_schedule(config.optim, config.total_steps)
  # Outside `use_rules`: the model is built with logical names, which Flax would
  # resolve through the rules in `nnx.get_partition_spec` inside it.
  model_def, _, param_specs = state_lib.abstract_model(config, joints, num_frames)
  optimizer = state_lib.make_optimizer(config.optim, config.total_steps, param_specs)
  init = state_lib.init_fn(config, joints, num_frames, optimizer)
  abstract = jax.eval_shape(init, config.seed)
  shardings = state_lib.state_shardings(abstract, param_specs, optimizer, mesh, rules)
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          abstract, shardings)
  batch_sharding = pipeline.batch_sharding(mesh, tuple(config.mesh.data_axes))
  replicated = NamedSharding(mesh, PartitionSpec())
  step = jax.jit(make_train_step(model_def, optimizer, schedule, int(config.grad_accum)),
                 in_shardings=(shardings, batch_sharding),
                 out_shardings=(shardings, replicated), donate_argnums=0)
  reconstruct = jax.jit(lambda p, b, r: model_def.merge(p).reconstruct(b, r),
                        in_shardings=(shardings["params"], batch_sharding, replicated),
                        out_shardings=replicated)  # every process can read it
  return Setup(mesh=mesh, rules=rules, model_def=model_def, optimizer=optimizer,
               abstract=abstract, shardings=shardings,
               init=jax.jit(init, out_shardings=shardings), step=step,
               reconstruct=reconstruct)


def _num_frames(config: ml_collections.ConfigDict) -> int:
  if config.data.crop_frames:
    return int(config.data.crop_frames)
  manifest, _ = shards_lib.open_shard_set(config.data.shards)
  return int(manifest["frames"].iloc[0])


def resolve_run_length(config: ml_collections.ConfigDict) -> None:
  """Run length and warm-up given in epochs of the data sampler → steps, in place.

  One epoch is `pipeline.epoch_examples` / batch_size steps (a fraction is kept:
  batches straddle epochs); total_steps = ceil(num_epochs × that).
  """
  if config.num_epochs is None:
    if config.optim.warmup_epochs is not None:
      raise ValueError("optim.warmup_epochs needs num_epochs (the run length in epochs)")
    return
  steps_per_epoch = pipeline.epoch_examples(config.data) / config.data.batch_size
  config.total_steps = max(1, int(np.ceil(config.num_epochs * steps_per_epoch)))
  if config.optim.warmup_epochs is not None:
    config.optim.warmup_steps = int(round(config.optim.warmup_epochs * steps_per_epoch))


def compiled_memory(compiled) -> dict[str, float]:
  """XLA's per-device buffer sizes of a compiled step in MiB: arguments, temporaries,
  outputs and their sum less donated (aliased) buffers; {} when XLA gives none."""
  mem = compiled.memory_analysis()
  if mem is None:
    return {}
  mib = 2**20
  return {"arguments_mib": mem.argument_size_in_bytes / mib,
          "temporaries_mib": mem.temp_size_in_bytes / mib,
          "outputs_mib": mem.output_size_in_bytes / mib,
          "peak_mib": (mem.argument_size_in_bytes + mem.temp_size_in_bytes
                       + mem.output_size_in_bytes - mem.alias_size_in_bytes) / mib}


def dry_run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """`total_steps=0`: the step compiled for the config's mesh, from abstract state and
  batch — no data is read, nothing is initialised or trained. Prints, and writes to
  WORKDIR/dry_run.json (process 0), what each device holds: the train state by its
  shardings, and XLA's buffer sizes for the compiled step (arguments, temporaries,
  outputs). E.g. the published model on a fake 64-device mesh, on CPU:
    XLA_FLAGS=--xla_force_host_platform_device_count=64 python -m gait_jax.main \
      --config experiments/pretrain_gaitmae.py:paper --workdir runs/dry64 \
      --config.total_steps=0 --config.data.batch_size=64 \
      "--config.mesh.axes=(('data', 8), ('fsdp', 8), ('tensor', 1))"
  """
  config = ml_collections.ConfigDict(config.to_dict())  # unlocked copy
  if not config.data.crop_frames and not config.data.shards:
    raise ValueError("a dry run (total_steps=0) needs data.crop_frames (or data.shards to "
                     "read the clip length from)")
  config.num_epochs, config.optim.warmup_epochs = None, None
  config.total_steps = max(int(config.optim.warmup_steps) + 1, 2)  # the schedule's shape only
  mesh = sharding.make_mesh(config.mesh.axes, config.mesh.axis_type)
  joints = skeleton.joint_names(config.data.joints)
  frames = _num_frames(config)
  setup = setup_training(config, mesh, joints, frames)
  batch = pipeline.batch_spec(int(config.data.batch_size), frames, len(joints),
                              pipeline.batch_sharding(mesh, tuple(config.mesh.data_axes)))
  t0 = time.perf_counter()
  with sharding.use_rules(mesh, setup.rules):
    compiled = setup.step.lower(setup.abstract, batch).compile()
  compile_s = time.perf_counter() - t0

  def mib_per_device(tree) -> float:  # each leaf's shard, by its sharding
    return sum(int(np.prod(a.sharding.shard_shape(a.shape))) * a.dtype.itemsize
               for a in jax.tree.leaves(tree)) / 2**20
  report: dict[str, Any] = {
      "devices": jax.device_count(), "processes": jax.process_count(),
      "platform": jax.devices()[0].platform, "mesh": dict(mesh.shape),
      "batch_size": int(config.data.batch_size), "frames": frames, "joints": len(joints),
      "dtype": str(config.model.dtype), "remat": bool(config.model.get("remat", False)),
      "params_m": state_lib.count_params(setup.abstract["params"]) / 1e6,
      "model_gflop_per_step": flops_lib.train_flops(config.model, len(joints), frames,
                                                    int(config.data.batch_size)) / 1e9,
      "params_mib_per_device": mib_per_device(setup.abstract["params"]),
      "state_mib_per_device": mib_per_device(setup.abstract),
      "compile_s": compile_s}
  report.update(compiled_memory(compiled))
  if jax.process_index() == 0:
    print("dry run (total_steps=0): the step compiled, nothing trained", flush=True)
    for key, value in report.items():
      print(f"  {key:<24} {value:.2f}" if isinstance(value, float) else f"  {key:<24} {value}",
            flush=True)
    path = pathlib.Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    (path / "dry_run.json").write_text(json.dumps(report, indent=2))
  return report


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Trains until `config.total_steps`; returns the last logged metrics. total_steps=0
  compiles the step and stops (`dry_run`)."""
  workdir_path = pathlib.Path(workdir)
  if config.model.get("dtype") == "auto":
    config.model.dtype = "bfloat16" if jax.default_backend() in ("gpu", "tpu") else "float32"
  if config.total_steps == 0:
    return dry_run(config, workdir)
  resolve_run_length(config)
  if jax.process_index() == 0:
    workdir_path.mkdir(parents=True, exist_ok=True)
    (workdir_path / "config.json").write_text(config.to_json_best_effort(indent=2))
  writer = writer_lib.MetricWriter(workdir, config, config.total_steps)
  # Preemption (SIGTERM) at any point from here on: checkpoint after the next step.
  stop = {"signal": False}
  previous_handler = signal.signal(signal.SIGTERM, lambda *_: stop.update(signal=True))

  # --- Mesh -------------------------------------------------------------------
  mesh = sharding.make_mesh(config.mesh.axes, config.mesh.axis_type)
  rules = tuple(tuple(r) for r in config.sharding_rules)
  data_axes = tuple(config.mesh.data_axes)
  writer.note(f"mesh {dict(mesh.shape)} over {jax.device_count()} {jax.devices()[0].platform} "
              f"device(s), {jax.process_count()} process(es)")

  # --- Data -------------------------------------------------------------------
  batches = pipeline.GlobalBatches(pipeline.make_dataset(config.data, train=True), mesh,
                                   data_axes)
  joints = skeleton.joint_names(config.data.joints)
  num_frames = _num_frames(config)

  # --- Model and optimiser: abstract first, then created sharded ---------------
  setup = setup_training(config, mesh, joints, num_frames)
  abstract = setup.abstract
  writer.note(f"model {config.model.name}: "
              f"{state_lib.count_params(abstract['params']) / 1e6:.3f} M parameters, "
              f"{len(joints)} joints × {num_frames} frames")
  evals = evaluators_lib.build(config, mesh, setup.rules, setup.model_def, joints,
                               num_frames)
  if evals:
    writer.note("evaluators: " + ", ".join(f"{e.name} every {e.every}" for e in evals))

  # --- Resume: checkpoint in workdir → init_from → scratch ----------------------
  checkpointer = ckpt_lib.Checkpointer(workdir_path / "checkpoints",
                                       every=config.checkpoint_every,
                                       keep=config.keep_checkpoints,
                                       use_async=config.async_checkpoint)
  latest = checkpointer.latest_step()
  if latest is not None:
    state = checkpointer.restore(latest, abstract, batches.iterator)
    writer.note(f"resumed from {checkpointer.directory} at step {latest}")
  else:
    state = setup.init(config.seed)
    if config.init_from:
      params, from_step = ckpt_lib.restore_params(config.init_from, abstract["params"])
      state = {**state, "params": params}
      writer.note(f"initialised params from {config.init_from} (step {from_step})")

  # --- Compiled step -------------------------------------------------------------
  batch = next(batches)
  with sharding.use_rules(mesh, rules):
    compiled = setup.step.lower(abstract, batch).compile()
  # Model FLOPs from the architecture: XLA's cost analysis counts scanned layers
  # and mapped attention once.
  flops_per_step = flops_lib.train_flops(config.model, len(joints), num_frames,
                                         config.data.batch_size)
  mem = compiled_memory(compiled)
  if mem:
    writer.note(f"compiled step: {flops_per_step / 1e9:.2f} model GFLOP, per-device memory: "
                f"arguments {mem['arguments_mib']:.1f} MiB, temporaries "
                f"{mem['temporaries_mib']:.1f} MiB, outputs {mem['outputs_mib']:.1f} MiB")
  peak = peak_flops_per_device(config) * jax.device_count()

  # --- Loop -----------------------------------------------------------------------
  step = int(jax.device_get(state["step"]))
  clips = config.data.batch_size
  tokens = clips * num_frames * len(joints)
  last: dict[str, float] = {}
  t_log, steps_since, window = time.perf_counter(), 0, None
  try:
    while step < config.total_steps:
      state, metrics = compiled(state, batch)
      step += 1
      steps_since += 1
      # Metrics are averaged over the logging window on device (no per-step sync).
      window = metrics if window is None else jax.tree.map(jnp.add, window, metrics)
      if step % config.log_every == 0 or step == config.total_steps:
        metrics = jax.tree.map(lambda x: x / steps_since, jax.device_get(window))
        window = None
        if metrics["nonfinite"]:
          raise FloatingPointError(
              f"non-finite loss or gradient norm at or before step {step} "
              f"(loss {metrics['loss']}, grad norm {metrics['grad_norm']}); the state was "
              "not updated by that step")
        dt = (time.perf_counter() - t_log) / steps_since
        last = {k: float(v) for k, v in metrics.items() if k != "nonfinite"}
        last.update(step_time_s=dt, clips_per_s=clips / dt, tokens_per_s=tokens / dt,
                    flops_per_s=flops_per_step / dt)
        if peak:
          last["mfu"] = flops_per_step / dt / peak
        writer.write(step, last)
        t_log, steps_since = time.perf_counter(), 0
      due = [e for e in evals if step % e.every == 0 or step == config.total_steps]
      if due:  # every process runs them (replicated outputs); one record per step
        t_eval = time.perf_counter()
        writer.write(step, {k: v for e in due for k, v in e.run(state["params"], step).items()})
        t_log += time.perf_counter() - t_eval  # not part of the steps' time
      if config.figure_every and step % config.figure_every == 0:
        _figure(setup, state, batch, joints, workdir_path, step, writer)
      checkpointer.save(step, state, batches.iterator,
                        force=step == config.total_steps)
      if stop["signal"]:
        checkpointer.save(step, state, batches.iterator, force=True)
        checkpointer.wait()
        writer.note(f"SIGTERM: checkpoint saved at step {step}; exiting")
        raise SystemExit(128 + signal.SIGTERM)
      if step < config.total_steps:
        batch = next(batches)
  finally:
    for evaluator in evals:
      evaluator.close()
    signal.signal(signal.SIGTERM, previous_handler)
    checkpointer.close()
    batches.close()
    writer.close()
  if jax.process_index() == 0:
    (workdir_path / "final_metrics.json").write_text(json.dumps({"step": step, **last}))
    history = [r for r in map(json.loads,
                              (workdir_path / "metrics.jsonl").read_text().splitlines())
               if "loss" in r]
    if len(history) > 1:
      print(f"loss: {history[0]['loss']:.4f} at step {history[0]['step']} → "
            f"{history[-1]['loss']:.4f} at step {history[-1]['step']}", flush=True)
  return last


def _figure(setup: "Setup", state, batch, joints, workdir, step, writer) -> None:
  """Reconstructs the batch's first example and logs the figure."""
  with sharding.use_rules(setup.mesh, setup.rules):
    out = setup.reconstruct(state["params"], batch, jax.random.key(step))
  out = jax.device_get(out)
  path = figures.reconstruction_figure(
      np.asarray(out["target"][0]), np.asarray(out["reconstruction"][0]),
      np.asarray(out["hidden"][0]), joints, workdir / "figures" / f"step_{step:07d}.png",
      title=f"step {step}")
  writer.image(step, "reconstruction", path)
