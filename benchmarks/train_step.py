"""Train-step throughput, achieved FLOP/s and memory for the smoke, small and paper shapes.

  .venv/bin/python benchmarks/train_step.py [--shapes smoke,small,paper,paper_b8]
      [--steps 5] [--dtype float32|bfloat16] [--peak-tflops N]

--steps 0 compiles only: FLOPs and XLA's memory analysis, no timing.

Each shape runs in its own subprocess (so peak RSS is per shape) on a one-device
mesh with random batches: the jitted, donated train step of the trainer, compiled
ahead. FLOPs per step are model FLOPs counted from the architecture
(`gait_jax.models.flops`; remat's recomputation not included). The
reference — dense f32 matmul GFLOP/s on this machine — is measured in the same
run, so "ratio" is the fraction of this machine's matmul speed the step reaches.
On a GPU, MFU is reported against --peak-tflops (default: the device's bf16
dense peak when known). Nothing is asserted; a shape that fails (e.g. out of
memory) is reported as such.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

SHAPES = {
    # name: (model preset, batch, frames, remat)
    "smoke": ("smoke", 8, 32, False),
    "small": ("small", 8, 90, False),
    "small_t300": ("small", 8, 300, False),
    "paper": ("paper", 1, 900, False),
    "paper_remat": ("paper", 1, 900, True),
    "paper_b8": ("paper", 8, 900, True),
}


def matmul_gflops(n: int = 2048, reps: int = 10) -> float:
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  t = time.perf_counter()
  for _ in range(reps):
    out = f(a)
  out.block_until_ready()
  return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def run_one(shape: str, steps: int, dtype: str) -> dict:
  import jax
  import numpy as np
  from gait_jax import models, sharding, skeleton
  from gait_jax.models import flops as flops_lib
  from gait_jax.train import config as train_config
  from gait_jax.train import pretrain

  preset, batch_size, frames, remat = SHAPES[shape]
  config = train_config.base_config()
  config.model = models.get_model_config(preset)
  config.model.remat = remat
  config.model.dtype = dtype
  config.total_steps = 1000
  joints = skeleton.JOINT_SETS["default26"]
  mesh = sharding.make_mesh((("data", 1), ("fsdp", 1), ("tensor", 1)),
                            devices=jax.devices()[:1])
  setup = pretrain.setup_training(config, mesh, joints, frames)
  rng = np.random.default_rng(0)
  batch = {"skeleton": rng.normal(0, 0.3, (batch_size, frames, len(joints), 4)).astype(np.float32),
           "joint_present": np.ones((batch_size, len(joints)), np.float32),
           "valid": np.ones(batch_size, bool),
           "clip_id": np.arange(batch_size, dtype=np.int32)}
  t = time.perf_counter()
  with sharding.use_rules(mesh, setup.rules):
    compiled = setup.step.lower(setup.abstract, batch).compile()
  compile_s = time.perf_counter() - t
  flops = flops_lib.train_flops(config.model, len(joints), frames, batch_size)
  mem = compiled.memory_analysis()
  memory = {"temp_gib": (mem.temp_size_in_bytes / 2**30) if mem else float("nan"),
            "args_gib": (mem.argument_size_in_bytes / 2**30) if mem else float("nan")}
  common = {"shape": shape, "batch": batch_size, "frames": frames, "remat": remat,
            "dtype": dtype, "device": jax.devices()[0].device_kind, "compile_s": compile_s,
            "gflop_per_step": flops / 1e9, **memory}
  if not steps:  # compile only: memory and FLOPs, no timing
    nan = float("nan")
    return {**common, "step_s": nan, "clips_per_s": nan, "tokens_per_s": nan, "gflops": nan,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "loss": nan}
  state = setup.init(0)
  state, metrics = compiled(state, batch)  # warm-up
  jax.block_until_ready(metrics)
  t = time.perf_counter()
  for _ in range(steps):
    state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  dt = (time.perf_counter() - t) / steps
  return {
      **common, "step_s": dt, "clips_per_s": batch_size / dt,
      "tokens_per_s": batch_size * frames * len(joints) / dt, "gflops": flops / dt / 1e9,
      "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
      "loss": float(metrics["loss"]),
  }


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--shapes", default="smoke,small,paper,paper_b8")
  p.add_argument("--steps", type=int, default=3)
  p.add_argument("--dtype", default="float32")
  p.add_argument("--peak-tflops", type=float, default=0.0)
  p.add_argument("--one", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.one:
    print(json.dumps(run_one(args.one, args.steps, args.dtype)))
    return

  import jax
  reference = matmul_gflops()
  peak = args.peak_tflops * 1e12
  if not peak and jax.default_backend() == "gpu":
    from gait_jax.train.pretrain import PEAK_FLOPS
    kind = jax.devices()[0].device_kind
    peak = next((v for k, v in PEAK_FLOPS.items() if k.lower() in kind.lower()), 0.0)
  print(f"device: {jax.devices()[0].device_kind}; dense f32 matmul reference: "
        f"{reference:.1f} GFLOP/s")
  header = (f"{'shape':<12}{'B':>3}{'T':>5}{'remat':>6}{'dtype':>9}{'step s':>9}{'clips/s':>9}"
            f"{'tokens/s':>10}{'GFLOP':>9}{'GFLOP/s':>9}{'ratio':>7}{'MFU':>7}{'temp GiB':>9}"
            f"{'RSS GiB':>8}")
  print(header)
  for shape in args.shapes.split(","):
    proc = subprocess.run([sys.executable, __file__, "--one", shape, "--steps", str(args.steps),
                           "--dtype", args.dtype], capture_output=True, text=True, check=False)
    if proc.returncode:
      tail = (proc.stderr.strip().splitlines() or ["?"])[-1][:100]
      print(f"{shape:<12} failed (status {proc.returncode}): {tail}")
      continue
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    mfu = f"{r['gflops'] * 1e9 / peak:.1%}" if peak else "-"
    print(f"{shape:<12}{r['batch']:>3}{r['frames']:>5}{str(r['remat']):>6}{r['dtype']:>9}"
          f"{r['step_s']:>9.3f}{r['clips_per_s']:>9.2f}{r['tokens_per_s']:>10.0f}"
          f"{r['gflop_per_step']:>9.1f}{r['gflops']:>9.1f}{r['gflops'] / reference:>7.2f}"
          f"{mfu:>7}{r['temp_gib']:>9.2f}{r['peak_rss_gib']:>8.2f}", flush=True)


if __name__ == "__main__":
  main()
