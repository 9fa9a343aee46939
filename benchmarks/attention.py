"""Attention at the paper's temporal shape: one batched pass against blocked pairs.

  .venv/bin/python benchmarks/attention.py [--frames 900] [--sequences 26] [--reps 3]

Forward + backward of `layers.attention` over [B'=26 joint sequences, H=8, T, K=16]
(one clip of the paper model's temporal attention): `block=0` is one
`jax.nn.dot_product_attention` pass; the other rows run (sequence, head) pairs a
few at a time under remat. Prints one table with the speed-up against the one-pass
row measured in the same run; nothing is asserted.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from gait_jax.models import layers


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--frames", type=int, default=900)
  p.add_argument("--sequences", type=int, default=26)
  p.add_argument("--reps", type=int, default=3)
  args = p.parse_args()
  t, b, h, k = args.frames, args.sequences, 8, 16
  q, key, v, ct = (jax.random.normal(s, (b, h, t, k))
                   for s in jax.random.split(jax.random.key(0), 4))
  print(f"attention fwd+bwd, [B'={b}, H={h}, T={t}, K={k}], {jax.devices()[0].device_kind}")
  print(f"{'block (logits/step)':>20}{'pairs/step':>11}{'ms':>9}{'speed-up':>10}")
  reference = None
  for block in (0, 4 * t * t, t * t):
    grad = jax.jit(jax.grad(
        lambda q, k, v, block=block: jnp.sum(layers.attention(q, k, v, block=block) * ct),
        argnums=(0, 1, 2)))
    jax.block_until_ready(grad(q, key, v))
    start = time.perf_counter()
    for _ in range(args.reps):
      jax.block_until_ready(grad(q, key, v))
    ms = (time.perf_counter() - start) / args.reps * 1e3
    reference = reference or ms
    pairs = "all" if not block else str(max(1, block // (t * t)))
    print(f"{block:>20}{pairs:>11}{ms:>9.0f}{reference / ms:>9.1f}×", flush=True)


if __name__ == "__main__":
  main()
