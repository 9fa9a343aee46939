"""Train-step throughput, FLOP rate and memory of the published GaitMAE recipe.

  .venv/bin/python benchmarks/train_step.py [--shapes paper,paper_b2,paper_b8]
      [--steps 2] [--rounds 2] [--dtype float32|bfloat16] [--attention-impl ,cudnn]
      [--peak-tflops N] [--against DIR] [--json]

Each shape is `train_config.get_config(variant, preset)` — for the paper shapes the
published recipe (898 frames + 2 sink frames, dropout 0.1, shared input projection,
32-d tanh pre-logits) — with the batch, remat and dtype overridden:

  shape        config           B   remat
  smoke        smoke, smoke     8   no
  small        small, small     8   no
  paper        paper, paper     1   no
  paper_remat  paper, paper     1   yes
  paper_b2     paper, paper     2   yes
  paper_b8     paper, paper     8   yes
  paper_b8_noremat             8   no    (the activations of B = 8 fit a GPU)
  paper_b32    paper, paper    32   yes

All shapes are compiled ahead in one process (the trainer's jitted, donated step on a
one-device mesh, random batches), then timed in `--rounds` rounds, each round a
dense matmul reference (f32 2048³ on CPU; the step's dtype, 8192³, on a GPU) and
then `--steps` steps of every shape in turn (A B A B), each followed by the
reference again, so that the machine's load is shared alike. "ratio" is the
step's model FLOP rate (`gait_jax.models.flops`; backward = 2× forward, remat's
recomputation not counted) over the mean of the references measured just before
and just after its steps, the median over rounds; step time is the median too.
"temp GiB" is XLA's temporary buffer size. On a GPU, MFU is against --peak-tflops
(default: the device's bf16 dense peak when known); "peak GiB" is the device's
peak memory in use (where it reports one: GPU) after the shape's first step, the
process's peak so far: list shapes in order of size. A shape that fails to compile
or run (out of memory) is reported and left out. `--steps 0` compiles only.

`--attention-impl` lists model.attention_impl values, each timed as its own row
("" = the default, `layers.default_implementation`: cuDNN on a recent NVIDIA
GPU in bf16, else XLA's; "xla"; "cudnn"), each optionally with a model.attention_block
after a slash ("xla/0": XLA's attention in one pass); the "attention" column is the path the
compiled step actually takes, read from its HLO: "cudnn" (a fused cuDNN
attention call), "chunked" (`layers.attention`'s loop over (sequence, head)
pairs) or "one pass" (XLA's attention over all pairs at once).

`--against DIR` compares two versions of the code: DIR holds another copy of the
package (e.g. `git worktree add /tmp/old HEAD~3`). Per shape, one worker process
per version (DIR first on PYTHONPATH for the other) compiles and warms up once;
then in each round each worker in turn measures the reference, runs --steps steps
and measures the reference again (A B A B, only one working at a time). Where two
workers would not fit in memory, fresh processes alternate instead. Only the
first --attention-impl is used. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

SHAPES = {
    # name: (config variant, model preset, batch, remat)
    "smoke": ("smoke", "smoke", 8, False),
    "small": ("small", "small", 8, False),
    "paper": ("paper", "paper", 1, False),
    "paper_remat": ("paper", "paper", 1, True),
    "paper_b2": ("paper", "paper", 2, True),
    "paper_b8": ("paper", "paper", 8, True),
    "paper_b8_noremat": ("paper", "paper", 8, False),
    "paper_b32": ("paper", "paper", 32, True),
}
REPO = pathlib.Path(__file__).resolve().parents[1]


def config_for(shape: str, dtype: str, attention_impl: str = ""):
  """The trainer config of a shape (see the module docstring); attention_impl is
  "IMPL" or "IMPL/BLOCK"."""
  from gait_jax.train import config as train_config
  variant, preset, batch_size, remat = SHAPES[shape]
  config = train_config.get_config(variant, preset)
  config.model.remat = remat
  config.model.dtype = dtype
  impl, _, block = attention_impl.partition("/")
  config.model.attention_impl = impl
  if block:
    config.model.attention_block = int(block)
  config.data.batch_size = batch_size
  # The run length only shapes the lr schedule; no data to count epochs over.
  config.num_epochs = None
  config.optim.warmup_epochs = None
  config.optim.warmup_steps = 10
  config.total_steps = 1000
  return config


def matmul_gflops(dtype: str = "float32", n: int = 0, reps: int = 0) -> float:
  """Dense matmul GFLOP/s of one n×n×n product: f32 2048³ on CPU (whatever `dtype`,
  the step's), `dtype` 8192³ otherwise."""
  import jax
  import jax.numpy as jnp
  cpu = jax.default_backend() == "cpu"
  dtype = "float32" if cpu else dtype
  n = n or (2048 if cpu else 8192)
  reps = reps or (8 if cpu else 20)
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.dtype(dtype))
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  t = time.perf_counter()
  for _ in range(reps):
    out = f(a)
  out.block_until_ready()
  return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def attention_path(hlo: str, config, batch_size: int, frames: int, joints: int) -> str:
  """Which attention the compiled step runs: "cudnn" when its optimised HLO calls
  cuDNN's fused attention, else what `layers.attention` does with the config's
  block for the temporal attention ("chunked" or "one pass")."""
  if "__cudnn$fmha" in hlo:
    return "cudnn"
  m = config.model
  time_steps = frames + int(m.get("num_sinks", 0))
  logits = batch_size * joints * int(m.num_heads) * time_steps**2
  block = int(m.attention_block)
  return "chunked" if block and logits > block else "one pass"


class Compiled:
  """One shape's compiled step, its state and batch, and its static numbers."""

  def __init__(self, shape: str, dtype: str, attention_impl: str = ""):
    import jax
    import numpy as np
    from gait_jax import sharding, skeleton
    from gait_jax.models import flops as flops_lib
    from gait_jax.train import pretrain

    config = config_for(shape, dtype, attention_impl)
    batch_size = int(config.data.batch_size)
    frames = int(config.data.crop_frames)
    joints = skeleton.JOINT_SETS[config.data.joints]
    mesh = sharding.make_mesh((("data", 1), ("fsdp", 1), ("tensor", 1)),
                              devices=jax.devices()[:1])
    setup = pretrain.setup_training(config, mesh, joints, frames)
    rng = np.random.default_rng(0)
    self.batch = {
        "skeleton": rng.normal(0, 0.3, (batch_size, frames, len(joints), 4)).astype(np.float32),
        "joint_present": np.ones((batch_size, len(joints)), np.float32),
        "valid": np.ones(batch_size, bool),
        "clip_id": np.arange(batch_size, dtype=np.int32)}
    t = time.perf_counter()
    with sharding.use_rules(mesh, setup.rules):
      self.step = setup.step.lower(setup.abstract, self.batch).compile()
    mem = self.step.memory_analysis()
    self.info = {
        "shape": shape + (f"/{attention_impl}" if attention_impl else ""),
        "attention": attention_path(self.step.as_text() or "", config, batch_size, frames,
                                    len(joints)),
        "batch": batch_size, "frames": frames,
        "remat": bool(config.model.remat), "dtype": dtype,
        "device": jax.devices()[0].device_kind,
        "compile_s": time.perf_counter() - t,
        "gflop_per_step": flops_lib.train_flops(config.model, len(joints), frames,
                                                batch_size) / 1e9,
        "temp_gib": mem.temp_size_in_bytes / 2**30 if mem else float("nan")}
    self.init = setup.init
    self.state = None
    self.times: list[float] = []
    self.ratios: list[float] = []

  def warm_up(self) -> None:
    """Creates the state and runs one (untimed) step; records the device's peak
    memory in use so far (where it reports one)."""
    import jax
    if self.state is None:
      self.state = self.init(0)
      self.state, metrics = self.step(self.state, self.batch)
      self.info["loss"] = float(jax.block_until_ready(metrics)["loss"])
      stats = jax.devices()[0].memory_stats() or {}
      self.info["peak_gib"] = stats.get("peak_bytes_in_use", float("nan")) / 2**30

  def run(self, steps: int) -> float:
    """Seconds per step over `steps` steps (the first call also warms up)."""
    import jax
    self.warm_up()
    t = time.perf_counter()
    for _ in range(steps):
      self.state, metrics = self.step(self.state, self.batch)
    jax.block_until_ready(metrics)
    return (time.perf_counter() - t) / steps


def measure(shapes: list[str], steps: int, rounds: int, dtype: str,
            attention_impls: tuple[str, ...] = ("",)) -> tuple[list[dict], list[float]]:
  """Compiles every shape (× attention implementation), then times them in rounds;
  → (a row per shape, the reference GFLOP/s of each round)."""
  compiled = []
  for shape in shapes:
    for impl in attention_impls:
      try:
        compiled.append(Compiled(shape, dtype, impl))
      except Exception as e:  # pylint: disable=broad-except  (e.g. cuDNN unsupported)
        print(f"{shape} attention_impl={impl!r}: failed to compile: {_first_line(e)}",
              flush=True)
  references: list[float] = []
  if steps:
    for _ in range(rounds):
      reference = matmul_gflops(dtype)
      references.append(reference)
      for c in list(compiled):
        try:
          dt = c.run(steps)
        except Exception as e:  # pylint: disable=broad-except  (e.g. out of memory)
          print(f"{c.info['shape']}: failed to run: {_first_line(e)}", flush=True)
          compiled.remove(c)
          c.state = None
          continue
        # The reference just before and just after this shape's steps: on a shared
        # machine the load changes within a round.
        after = matmul_gflops(dtype)
        c.times.append(dt)
        c.ratios.append(c.info["gflop_per_step"] / dt / ((reference + after) / 2))
        reference = after
        references.append(after)
  rows = []
  nan = float("nan")
  for c in compiled:
    dt = statistics.median(c.times) if c.times else nan
    rows.append({"peak_gib": nan, **c.info, "step_s": dt, "step_s_all": c.times,
                 "clips_per_s": c.info["batch"] / dt,
                 "gflops": c.info["gflop_per_step"] / dt,
                 "ratio": statistics.median(c.ratios) if c.ratios else nan})
  return rows, references


def _first_line(e: Exception) -> str:
  return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def print_table(rows: list[dict], references: list[float], peak: float, label: str = "") -> None:
  refs = ", ".join(f"{r:.0f}" for r in references) or "-"
  print(f"{label}device: {rows[0]['device'] if rows else '?'}; matmul reference GFLOP/s "
        f"(before and after each shape): {refs}")
  print(f"{'shape':<18}{'B':>3}{'T':>5}{'remat':>6}{'dtype':>9}{'attention':>10}{'step s':>9}"
        f"{'clips/s':>9}{'GFLOP':>8}{'GFLOP/s':>9}{'ratio':>7}{'MFU':>7}{'temp GiB':>9}"
        f"{'peak GiB':>9}{'compile s':>10}")
  for r in rows:
    mfu = f"{r['gflops'] * 1e9 / peak:.1%}" if peak else "-"
    print(f"{r['shape']:<18}{r['batch']:>3}{r['frames']:>5}{str(r['remat']):>6}{r['dtype']:>9}"
          f"{r['attention']:>10}{r['step_s']:>9.3f}{r['clips_per_s']:>9.3f}"
          f"{r['gflop_per_step']:>8.0f}{r['gflops']:>9.1f}{r['ratio']:>7.3f}{mfu:>7}"
          f"{r['temp_gib']:>9.2f}{r.get('peak_gib', float('nan')):>9.2f}"
          f"{r['compile_s']:>10.1f}", flush=True)


def peak_flops(peak_tflops: float) -> float:
  import jax
  if peak_tflops:
    return peak_tflops * 1e12
  if jax.default_backend() != "gpu":
    return 0.0
  from gait_jax.train.pretrain import PEAK_FLOPS
  kind = jax.devices()[0].device_kind
  return next((v for k, v in PEAK_FLOPS.items() if k.lower() in kind.lower()), 0.0)


def _mem_available_gib() -> float:
  try:
    with open("/proc/meminfo", encoding="ascii") as f:
      fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) / 2**20
  except (OSError, KeyError, ValueError):
    return float("inf")


def worker(args: argparse.Namespace) -> None:
  """--worker: compile one shape and warm it up, print its info as JSON, then answer
  stdin lines: "ref" → the matmul reference GFLOP/s, "run" → seconds per step over
  --steps steps, anything else → exit."""
  c = Compiled(args.shapes, args.dtype, args.attention_impl)
  c.warm_up()
  print(json.dumps(c.info), flush=True)
  for line in sys.stdin:
    if line.strip() == "ref":
      print(json.dumps(matmul_gflops(args.dtype)), flush=True)
    elif line.strip() == "run":
      print(json.dumps(c.run(args.steps)), flush=True)
    else:
      return


def against(args: argparse.Namespace) -> None:
  """This checkout against args.against, one shape at a time: a worker process per
  checkout (compiled and warmed up once, both alive), and in each round each worker
  in turn measures the reference, runs its steps and measures the reference again.
  Where two workers would not fit in memory, fresh processes alternate instead."""
  trees = {"this": str(REPO), "against": str(pathlib.Path(args.against).resolve())}
  impl = args.attention_impl.split(",")[0]
  print(f"A/B: this = {trees['this']}, against = {trees['against']}; {args.rounds} rounds "
        f"of {args.steps} step(s); ratio = model FLOP rate / mean of the matmul "
        "references just before and after")
  print(f"{'shape':<12}{'tree':>8}{'B':>3}{'step s':>9}{'clips/s':>9}{'GFLOP/s':>9}{'ratio':>7}"
        f"{'temp GiB':>9}  per round (s)")
  for shape in args.shapes.split(","):
    workers, infos = {}, {}
    for label, tree in trees.items():
      env = {**os.environ,
             "PYTHONPATH": os.pathsep.join([tree, os.environ.get("PYTHONPATH", "")])}
      # The first worker is idle (its temporary buffers are freed between steps):
      # the second needs room for its own.
      if infos and 1.3 * max(i["temp_gib"] for i in infos.values()) > _mem_available_gib():
        break  # no room for the second worker
      w = subprocess.Popen(
          [sys.executable, __file__, "--worker", "--shapes", shape, "--steps", str(args.steps),
           "--dtype", args.dtype, "--attention-impl", impl],
          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
      line = w.stdout.readline()
      if not line:
        print(f"{shape:<12}{label:>8}  worker failed (status {w.wait()})")
        continue
      workers[label], infos[label] = w, json.loads(line)
    if len(workers) < len(trees):  # fall back: one fresh process per tree and round
      for w in workers.values():
        w.communicate("quit\n")
      workers = {}
    results = {label: [] for label in trees}
    for _ in range(args.rounds):
      for label, tree in trees.items():
        if workers:
          w = workers[label]
          ask = lambda cmd, w=w: (w.stdin.write(cmd + "\n"), w.stdin.flush(),  # noqa: E731
                                  json.loads(w.stdout.readline()))[-1]
          before, dt, after = ask("ref"), ask("run"), ask("ref")
          info = infos[label]
        else:
          env = {**os.environ,
                 "PYTHONPATH": os.pathsep.join([tree, os.environ.get("PYTHONPATH", "")])}
          proc = subprocess.run(
              [sys.executable, __file__, "--json", "--rounds", "1", "--shapes", shape,
               "--steps", str(args.steps), "--dtype", args.dtype, "--attention-impl", impl],
              capture_output=True, text=True, check=False, env=env)
          if proc.returncode:
            print(f"{shape:<12}{label:>8}  failed (status {proc.returncode})")
            continue
          out = json.loads(proc.stdout.strip().splitlines()[-1])
          info = infos[label] = out["rows"][0]
          dt, (before, after) = info["step_s"], out["references"][:2]
        results[label].append((dt, info["gflop_per_step"] / dt / ((before + after) / 2)))
    for w in workers.values():
      w.communicate("quit\n")
    for label, res in results.items():
      if not res:
        continue
      info = infos[label]
      dt = statistics.median(r[0] for r in res)
      print(f"{shape:<12}{label:>8}{info['batch']:>3}{dt:>9.2f}{info['batch'] / dt:>9.3f}"
            f"{info['gflop_per_step'] / dt:>9.1f}{statistics.median(r[1] for r in res):>7.3f}"
            f"{info['temp_gib']:>9.2f}  {', '.join(f'{r[0]:.1f}' for r in res)}", flush=True)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--shapes", default="paper,paper_b2,paper_b8")
  p.add_argument("--steps", type=int, default=2, help="timed steps per round (0: compile only)")
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--dtype", default="float32")
  p.add_argument("--attention-impl", default="",
                 help="comma-separated model.attention_impl values, one row each")
  p.add_argument("--peak-tflops", type=float, default=0.0)
  p.add_argument("--against", help="another checkout's root to alternate with (see above)")
  p.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
  p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.worker:
    worker(args)
    return
  if args.against:
    against(args)
    return
  rows, references = measure(args.shapes.split(","), args.steps, args.rounds, args.dtype,
                             tuple(args.attention_impl.split(",")))
  if args.json:
    print(json.dumps({"rows": rows, "references": references}))
  else:
    print_table(rows, references, peak_flops(args.peak_tflops))


if __name__ == "__main__":
  main()
