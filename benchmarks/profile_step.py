"""Where a train step's device time goes: a profiler trace of a few steps, summed per kernel.

  python benchmarks/profile_step.py [--shapes paper_b8_noremat] [--dtype bfloat16] \
      [--attention-impl ""] [--steps 3] [--top 25] [--trace-dir DIR]

Compiles each shape as `benchmarks/train_step.py` does (the trainer's step on a
one-device mesh, random batch), warms it up, then runs `--steps` steps under
`jax.profiler.trace` and reads the trace it writes (`*.trace.json.gz`, Chrome trace
format). Prints, per shape: wall time per step, the device's busy time per step
(kernels of the accelerator's streams, summed; on CPU the XLA ops of the host
threads), and the `--top` kernels by total time with their count per step, share of
device time and mean duration; then the same time grouped by kernel family (matmul,
attention, fusion, copy/transpose, reduction, other). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import pathlib
import re
import tempfile
import time

import train_step  # this directory's train-step benchmark

FAMILIES = (  # (family, regex on the lower-cased kernel name), first match wins
    ("attention (cuDNN)", r"cudnn|fmha|flash|sdpa"),
    ("matmul", r"gemm|cutlass|matmul|dot|wgmma|sm90_xmma|nvjet|cublas"),
    ("transpose / copy", r"transpose|copy|memcpy|memset"),
    ("reduction", r"reduce|reduction"),
    ("fusion (elementwise)", r"fusion|loop_|input_|wrapped"),
)


def family(name: str) -> str:
  low = name.lower()
  return next((f for f, pattern in FAMILIES if re.search(pattern, low)), "other")


def device_events(trace: dict) -> tuple[list[dict], str]:
  """The complete ("X") events of the accelerator's streams (else of the host's XLA
  threads) and a label of which."""
  names = {e["pid"]: e.get("args", {}).get("name", "")
           for e in trace.get("traceEvents", []) if e.get("ph") == "M"
           and e.get("name") == "process_name"}
  gpu = {pid for pid, n in names.items() if "/device:GPU" in n or "/device:TPU" in n}
  events = [e for e in trace["traceEvents"] if e.get("ph") == "X" and "dur" in e]
  if gpu:
    # Stream rows only: skip the per-device summary rows ("XLA Modules", "XLA Ops"
    # and "Steps" repeat the kernels' time at a coarser grain).
    threads = {(e["pid"], e["tid"]): e.get("args", {}).get("name", "")
               for e in trace["traceEvents"] if e.get("ph") == "M"
               and e.get("name") == "thread_name"}
    keep = [e for e in events if e["pid"] in gpu
            and "stream" in threads.get((e["pid"], e["tid"]), "").lower()]
    if keep:
      return keep, "device streams"
    rows = sorted({threads.get((e["pid"], e["tid"]), "?") for e in events if e["pid"] in gpu})
    print(f"no stream rows among the device's rows {rows}; summing them all")
    return [e for e in events if e["pid"] in gpu], "all device rows"
  host = [e for e in events if e.get("args", {}).get("hlo_op") or
          e.get("args", {}).get("hlo_module")]
  return host, "host XLA ops"


def summarise(trace_file: pathlib.Path, steps: int, wall_s: float, top: int,
              label: str) -> None:
  with gzip.open(trace_file, "rb") as f:
    trace = json.load(f)
  events, source = device_events(trace)
  by_name: dict[str, list[float]] = collections.defaultdict(list)
  ops: dict[str, str] = {}
  for e in events:
    by_name[e["name"]].append(float(e["dur"]))  # microseconds
    ops.setdefault(e["name"], str(e.get("args", {}).get("hlo_op", "")))
  busy = max(sum(sum(v) for v in by_name.values()) / 1e6, 1e-9)
  print(f"\n{label}: {wall_s / steps * 1e3:.1f} ms/step wall, {busy / steps * 1e3:.1f} ms/step "
        f"busy ({source}; {busy / wall_s:.0%} of wall), {len(events) / steps:.0f} kernels/step")
  print(f"{'kernel':<72}{'n/step':>7}{'ms/step':>9}{'share':>7}{'mean µs':>9}  hlo op")
  ranked = sorted(by_name.items(), key=lambda kv: -sum(kv[1]))
  for name, durs in ranked[:top]:
    total = sum(durs) / 1e6
    short = name if len(name) <= 70 else name[:67] + "..."
    print(f"{short:<72}{len(durs) / steps:>7.0f}{total / steps * 1e3:>9.2f}"
          f"{total / busy:>7.1%}{sum(durs) / len(durs):>9.1f}  {ops[name][:40]}")
  fams: dict[str, float] = collections.defaultdict(float)
  counts: dict[str, int] = collections.defaultdict(int)
  for name, durs in by_name.items():
    fams[family(name)] += sum(durs) / 1e6
    counts[family(name)] += len(durs)
  print(f"{'family':<30}{'n/step':>7}{'ms/step':>9}{'share':>7}")
  for fam, total in sorted(fams.items(), key=lambda kv: -kv[1]):
    print(f"{fam:<30}{counts[fam] / steps:>7.0f}{total / steps * 1e3:>9.2f}{total / busy:>7.1%}")


def main() -> None:
  import jax
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--shapes", default="paper_b8_noremat")
  p.add_argument("--dtype", default="bfloat16")
  p.add_argument("--attention-impl", default="",
                 help='"" (the default: cuDNN where it applies), "IMPL" or "IMPL/BLOCK" '
                      "(see train_step.py)")
  p.add_argument("--steps", type=int, default=3)
  p.add_argument("--top", type=int, default=25)
  p.add_argument("--trace-dir", help="keep the traces here (default: a temporary folder)")
  args = p.parse_args()
  root = pathlib.Path(args.trace_dir or tempfile.mkdtemp(prefix="gait_jax_profile_"))
  for shape in args.shapes.split(","):
    compiled = train_step.Compiled(shape, args.dtype, args.attention_impl)
    compiled.run(2)  # warm up
    trace_dir = root / shape
    with jax.profiler.trace(str(trace_dir)):
      start = time.perf_counter()
      for _ in range(args.steps):
        compiled.state, metrics = compiled.step(compiled.state, compiled.batch)
      jax.block_until_ready(metrics)
      wall = time.perf_counter() - start
    trace_file = max(trace_dir.rglob("*.trace.json.gz"), key=lambda f: f.stat().st_mtime)
    summarise(trace_file, args.steps, wall, args.top,
              f"{compiled.info['shape']} ({compiled.info['device']}, {args.dtype}, "
              f"attention {compiled.info['attention']})")
    print(f"trace: {trace_file}", flush=True)


if __name__ == "__main__":
  main()
