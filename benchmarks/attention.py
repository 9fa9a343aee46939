"""Attention at the paper's shapes: one batched pass, blocked pairs, cuDNN; A B A B.

  .venv/bin/python benchmarks/attention.py [--frames 900] [--joints 26] [--clips 1] \
      [--rounds 5] [--dtype float32] [--implementations xla[,cudnn]] [--blocks ...]

Forward + backward of `layers.attention` (H = 8 heads of K = 16) at the two shapes
of `--clips` paper clips: temporal, [B' = clips × 26 joint sequences, H, T = 900, K],
and spatial, [B' = clips × 900 frames, H, J = 26, K]. Per shape and implementation
("xla": `jax.nn.dot_product_attention`'s XLA path; "cudnn": its fused cuDNN kernel,
GPU and bf16 only), `block = 0` is one pass; the other blocks (default: a range
that suits a CPU's caches) run (sequence, head) pairs a few at a time (`block`
logits a step; XLA only). The variants and a dense matmul reference (f32 2048³ on
CPU; the dtype's 8192³ on a GPU) are timed in turn, `--rounds` times (so that a
shared machine's load falls on all alike, each round starting at the next variant);
the table has the median time, the speed-up against the shape's first row and the
model FLOP rate (4·B'·H·L²·K per pass, backward = 2× forward) over the matmul rate
measured in the same round. Nothing is asserted.
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
  p.add_argument("--clips", type=int, default=1)
  p.add_argument("--rounds", type=int, default=5)
  p.add_argument("--dtype", default="float32")
  p.add_argument("--implementations", default="xla", help="comma-separated: xla, cudnn")
  p.add_argument("--blocks", default="",
                 help="comma-separated blocks for the XLA rows (default: 0 and a CPU range)")
  args = p.parse_args()
  t, j, b = args.frames, args.joints, args.clips
  dtype = jnp.dtype(args.dtype)
  variants = []  # (shape name, sequences, length, implementation, block)
  for name, seqs, length in (("temporal", b * j, t), ("spatial", b * t, j)):
    pair, total = length * length, seqs * HEADS
    for impl in args.implementations.split(","):
      if impl == "cudnn":
        variants.append((name, seqs, length, impl, 0))
        continue
      blocks = ([int(x) for x in args.blocks.split(",")] if args.blocks else
                [0, pair, 4 * pair, 1 << 18, 1 << 20, 1 << 22])
      seen = set()
      for block in blocks:
        steps = -(-total // max(1, block // pair)) if block else 1
        if (block and steps == 1) or steps > 1000 or steps in seen:
          continue  # one step holds every pair (the one-pass row), or steps too small
        seen.add(steps)
        variants.append((name, seqs, length, impl, block))
  fns, inputs, kept = [], {}, []
  for variant in variants:
    name, seqs, length, impl, block = variant
    if name not in inputs:
      keys = jax.random.split(jax.random.key(0), 4)
      inputs[name] = tuple(jax.random.normal(k, (seqs, HEADS, length, HEAD_DIM), dtype)
                           for k in keys)
    q, k, v, ct = inputs[name]
    grad = jax.jit(jax.grad(
        lambda q, k, v, ct=ct, impl=impl, block=block: jnp.sum(
            (layers.attention(q, k, v, implementation=impl, block=block) * ct)
            .astype(jnp.float32)),
        argnums=(0, 1, 2)))
    try:
      jax.block_until_ready(grad(q, k, v))
    except Exception as e:  # pylint: disable=broad-except  (cuDNN unsupported here)
      print(f"{name} {impl} block {block}: failed: {str(e).splitlines()[0][:160]}")
      continue
    kept.append(variant)
    fns.append(grad)
  variants = kept
  times = [[] for _ in variants]
  ratios = [[] for _ in variants]
  for r in range(args.rounds):
    reference = matmul_gflops(args.dtype)
    # Each round starts at another variant: the first after the reference is slower.
    for i in [(r + n) % len(variants) for n in range(len(variants))]:
      (name, seqs, length, _, _), grad = variants[i], fns[i]
      q, k, v, _ = inputs[name]
      start = time.perf_counter()
      jax.block_until_ready(grad(q, k, v))
      dt = time.perf_counter() - start
      times[i].append(dt)
      ratios[i].append(3 * 4 * seqs * HEADS * length**2 * HEAD_DIM / dt / 1e9 / reference)
  print(f"attention fwd+bwd, H={HEADS}, K={HEAD_DIM}, {args.dtype}, "
        f"{jax.devices()[0].device_kind}, median of {args.rounds} rounds")
  print(f"{'shape':<10}{'[B, H, L, K]':>22}{'impl':>7}{'block':>10}{'pairs/step':>11}"
        f"{'ms':>9}{'speed-up':>10}{'ratio':>7}")
  first = {}
  for (name, seqs, length, impl, block), ts, rs in zip(variants, times, ratios):
    ms = statistics.median(ts) * 1e3
    first.setdefault(name, ms)
    steps = -(-(seqs * HEADS) // max(1, block // length**2)) if block else 1
    pairs = -(-(seqs * HEADS) // steps)
    print(f"{name:<10}{str([seqs, HEADS, length, HEAD_DIM]):>22}{impl:>7}{block:>10}"
          f"{pairs:>11}{ms:>9.2f}{first[name] / ms:>9.1f}×{statistics.median(rs):>7.2f}",
          flush=True)


if __name__ == "__main__":
  main()
