"""The embed job's ablations: one forward over the stacked batch against one per ablation.

  .venv/bin/python benchmarks/embed_ablations.py [--preset small] [--clips 16] \
      [--frames 300] [--window 90] [--reps 3] [--dtype float32] [--attention-impl ""]

A random-init encoder (`models.get_model_config(preset)`, with the compute dtype and
model.attention_impl given) embeds a batch of
`clips` synthetic clips of `frames` frames (cut into windows of `window`) under
the 9 ablations of experiments/embed.py:ablations, two ways: `make_embed_fn` with one
ablation per pass (config.ablations_per_pass=1, the CPU default), and with all
ablations through the encoder as one forward over [B·A·n, window, J, C] rows (the
GPU/TPU default). Prints compile time, steady-state time per batch (best of `reps`
interleaved calls), clips/s, XLA's temporary memory of the compiled function, the
largest difference between the two outputs, and the speed-up against one ablation
per pass measured in the same run; nothing is asserted.
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gait_jax import skeleton
from gait_jax.embedding import config as embed_config
from gait_jax.embedding import job, pooling
from gait_jax.models import get_model_config
from gait_jax.train import state as state_lib


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--preset", default="small")
  p.add_argument("--clips", type=int, default=16)
  p.add_argument("--frames", type=int, default=300)
  p.add_argument("--window", type=int, default=90)
  p.add_argument("--reps", type=int, default=3)
  p.add_argument("--dtype", default="float32")
  p.add_argument("--attention-impl", default="", help='model.attention_impl ("", xla, cudnn)')
  args = p.parse_args()

  joints = skeleton.JOINT_SETS["default26"]
  cfg = ml_collections.ConfigDict({"model": get_model_config(args.preset)})
  cfg.model.dtype = args.dtype
  cfg.model.attention_impl = args.attention_impl
  model_def, params, _ = state_lib.build_model(cfg, joints, args.window, jax.random.key(0))
  econf = embed_config.get_config("ablations")
  regions = tuple((str(n), tuple(r)) for n, r in econf.pool.regions)
  hidden = {a: job.ablation_regions(a, regions) for a in econf.ablations}
  kw = dict(window=args.window, layer=-1, hidden=hidden, stats=tuple(econf.pool.stats),
            weights=pooling.region_weights(joints, regions))
  rng = np.random.default_rng(0)
  skel = rng.normal(0, 0.2, (args.clips, args.frames, len(joints), 4)).astype(np.float32)
  skel[..., 3] = 1.0
  batch = {"skeleton": jnp.asarray(skel),
           "joint_present": jnp.ones((args.clips, len(joints)), jnp.float32)}
  n = args.frames // args.window
  print(f"embed, {len(hidden)} ablations, preset {args.preset}, {args.clips} clips × "
        f"{n} windows of {args.window} frames, {args.dtype}, attention_impl "
        f"{args.attention_impl!r}, {jax.devices()[0].device_kind}")
  print(f"{'':>24}{'compile s':>10}{'ms/batch':>10}{'clips/s':>9}{'temp MiB':>10}"
        f"{'max |diff|':>12}{'speed-up':>10}")
  runs = {}
  for name, make in (("1 ablation per pass", functools.partial(job.make_embed_fn,
                                                               per_pass=1)),
                     ("all in 1 stacked pass", job.make_embed_fn)):
    start = time.perf_counter()
    compiled = jax.jit(make(model_def, **kw)).lower(params, batch).compile()
    compile_s = time.perf_counter() - start
    memory = compiled.memory_analysis()
    temp = getattr(memory, "temp_size_in_bytes", float("nan")) / 2**20
    runs[name] = (compiled, compile_s, temp, jax.block_until_ready(compiled(params, batch)))
  # Interleaved repetitions, best of each: a shared machine's load moves both alike.
  best = dict.fromkeys(runs, float("inf"))
  for _ in range(args.reps):
    for name, (compiled, *_) in runs.items():
      start = time.perf_counter()
      jax.block_until_ready(compiled(params, batch))
      best[name] = min(best[name], (time.perf_counter() - start) * 1e3)
  ref_ms, ref_out = best["1 ablation per pass"], runs["1 ablation per pass"][3]
  for name, (_, compile_s, temp, out) in runs.items():
    ms = best[name]
    diff = max(float(jnp.abs(out[k] - ref_out[k]).max()) for k in out)
    print(f"{name:>24}{compile_s:>10.1f}{ms:>10.0f}{args.clips / ms * 1e3:>9.1f}"
          f"{temp:>10.0f}{diff:>12.1e}{ref_ms / ms:>9.2f}×", flush=True)


if __name__ == "__main__":
  main()
