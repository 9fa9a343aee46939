"""Attention at the paper's shapes: one batched pass against blocked pairs, A B A B.

  .venv/bin/python benchmarks/attention.py [--frames 900] [--joints 26] [--rounds 5]

Forward + backward of `layers.attention` (float32, H = 8 heads of K = 16) at the
two shapes of one paper clip: temporal, [B' = 26 joint sequences, H, T = 900, K],
and spatial, [B' = 900 frames, H, J = 26, K]. Per shape, `block = 0` is one
`jax.nn.dot_product_attention` pass; the others run (sequence, head) pairs a few at
a time (`block` logits a step). The variants and a dense f32 matmul reference are
timed in turn, `--rounds` times (so that a shared machine's load falls on all
alike, each round starting at the next variant); the table has the median time, the speed-up against the one-pass row and
the model FLOP rate (4·B'·H·L²·K per pass, backward = 2× forward) over the matmul
rate measured in the same round. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from gait_jax.models import layers
from train_step import matmul_gflops  # this directory's train-step benchmark

HEADS, HEAD_DIM = 8, 16


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--frames", type=int, default=900)
  p.add_argument("--joints", type=int, default=26)
  p.add_argument("--rounds", type=int, default=5)
  args = p.parse_args()
  t, j = args.frames, args.joints
  variants = []  # (shape name, sequences, length, block): distinct pairs per step only
  for name, seqs, length in (("temporal", j, t), ("spatial", t, j)):
    pair, total = length * length, seqs * HEADS
    seen = set()
    for block in (0, pair, 4 * pair, 1 << 18, 1 << 20, 1 << 22):
      steps = -(-total // max(1, block // pair)) if block else 1
      if (block and steps == 1) or steps > 1000 or steps in seen:
        continue  # one step holds every pair (the one-pass row), or steps too small
      seen.add(steps)
      variants.append((name, seqs, length, block))
  fns, inputs = [], {}
  for name, seqs, length, block in variants:
    if name not in inputs:
      keys = jax.random.split(jax.random.key(0), 4)
      inputs[name] = tuple(jax.random.normal(k, (seqs, HEADS, length, HEAD_DIM)) for k in keys)
    q, k, v, ct = inputs[name]
    grad = jax.jit(jax.grad(
        lambda q, k, v, ct=ct, block=block: jnp.sum(layers.attention(q, k, v, block=block) * ct),
        argnums=(0, 1, 2)))
    jax.block_until_ready(grad(q, k, v))
    fns.append(grad)
  times = [[] for _ in variants]
  ratios = [[] for _ in variants]
  for r in range(args.rounds):
    reference = matmul_gflops()
    # Each round starts at another variant: the first after the reference is slower.
    for i in [(r + n) % len(variants) for n in range(len(variants))]:
      (name, seqs, length, _), grad = variants[i], fns[i]
      q, k, v, _ = inputs[name]
      start = time.perf_counter()
      jax.block_until_ready(grad(q, k, v))
      dt = time.perf_counter() - start
      times[i].append(dt)
      ratios[i].append(3 * 4 * seqs * HEADS * length**2 * HEAD_DIM / dt / 1e9 / reference)
  print(f"attention fwd+bwd, H={HEADS}, K={HEAD_DIM}, float32, {jax.devices()[0].device_kind}, "
        f"median of {args.rounds} rounds")
  print(f"{'shape':<10}{'[B, H, L, K]':>18}{'block':>10}{'pairs/step':>11}{'ms':>9}"
        f"{'speed-up':>10}{'ratio':>7}")
  one_pass = {}
  for (name, seqs, length, block), ts, rs in zip(variants, times, ratios):
    ms = statistics.median(ts) * 1e3
    one_pass.setdefault(name, ms)
    steps = -(-(seqs * HEADS) // max(1, block // length**2)) if block else 1
    pairs = -(-(seqs * HEADS) // steps)
    print(f"{name:<10}{str([seqs, HEADS, length, HEAD_DIM]):>18}{block:>10}{pairs:>11}"
          f"{ms:>9.1f}{one_pass[name] / ms:>9.1f}×{statistics.median(rs):>7.2f}", flush=True)


if __name__ == "__main__":
  main()
