#!/usr/bin/env python3
r"""Runs an experiment's sweep, one training run per point: here, as a SLURM array
job, or as a W&B sweep.

  python launch/sweep.py CONFIG[:variant] --root R [--sweep NAME] [--backend B] \
      [backend options] [--python PATH] [-- EXTRA_ARGS...]

A sweep is declared beside the config (`get_sweep(NAME)` in the experiment file: a
list of override dicts, its points). Point p runs

  python -m gait_jax.main --config CONFIG --workdir R/<name of p> --config.KEY=VALUE ... \
      EXTRA_ARGS

where the name spells out p's overrides ("regions_hidden=3_depth=2"), so running a
sweep again resumes its runs. EXTRA_ARGS (after "--") go to every point.

Backends (--backend):
  print  (default) one shell command per point, one per line.
  local  runs the points here with this interpreter: one after another with their
         output on the terminal, or --parallel K at a time, each writing to
         R/<name>/sweep.log. Every point runs; a summary names the failed ones and
         the exit status is 1 if any failed. --processes N [--devices-per-process D]
         (also for print) starts each point as N processes of one JAX job through
         launch/local.sh.
  slurm  writes R/sweep.sbatch, an array job with one task per point:
           python launch/sweep.py CONFIG --root R --backend slurm --nodes 2 \
               --gpus-per-node 8 --time 24:00:00 --partition gpu -- EXTRA_ARGS
           sbatch R/sweep.sbatch            all points
           sbatch --array=2,5 R/sweep.sbatch  points 2 and 5 again (they resume)
         A task runs its point with srun as --nodes × --tasks-per-node processes
         (default: one per GPU, or one per node without GPUs); gait_jax.main reads
         their layout from SLURM's variables. Logs: R/logs/<job id>_<task id>.out.
         The script cds to --chdir (default: this checkout, with CONFIG and R made
         absolute; with --chdir they are taken relative to it) and runs `python`
         (--python to choose the cluster's environment).
  wandb  writes R/sweep.yaml, a W&B grid sweep over the same points (the sweep must
         be a grid: every combination of each key's values, once):
           wandb sweep R/sweep.yaml           prints the sweep's id
           wandb agent ENTITY/PROJECT/ID      on each machine, from this directory
                                              (or give --chdir)
         W&B passes a run's point as --config.KEY=VALUE arguments; its workdir is
         R/<W&B run id>. Runs log online to the experiment's W&B project.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import time

# The repository root: slurm scripts cd here, and launch/local.sh lives under it.
REPO = pathlib.Path(__file__).resolve().parents[1]
BACKENDS = ("print", "local", "slurm", "wandb")
# Options that only some backends take (argparse dest → backends); None = not given.
BACKEND_OPTIONS = {
    "parallel": ("local",),
    "processes": ("print", "local"),
    "devices_per_process": ("print", "local"),
    "nodes": ("slurm",),
    "gpus_per_node": ("slurm",),
    "tasks_per_node": ("slurm",),
    "cpus_per_task": ("slurm",),
    "time": ("slurm",),
    "partition": ("slurm",),
    "account": ("slurm",),
    "job_name": ("slurm",),
    "chdir": ("slurm", "wandb"),
}


def _load_experiment(config_arg: str):
  path = pathlib.Path(config_arg.split(":", 1)[0])
  if not path.is_file():
    raise SystemExit(f"sweep.py: error: no experiment file {path}")
  spec = importlib.util.spec_from_file_location(f"sweep_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_sweep(config_arg: str, name: str | None = None) -> list[dict[str, object]]:
  """The points (override dicts) of the experiment file's `get_sweep(name)`; the
  file's default sweep when name is None."""
  module = _load_experiment(config_arg)
  if not hasattr(module, "get_sweep"):
    raise SystemExit(f"sweep.py: error: {config_arg.split(':', 1)[0]} has no get_sweep()")
  try:
    points = list(module.get_sweep() if name is None else module.get_sweep(name))
  except ValueError as e:  # get_sweep's way of refusing an unknown name
    raise SystemExit(f"sweep.py: error: {e}") from e
  if not points:
    raise SystemExit(f"sweep.py: error: sweep {name or '(default)'} has no points")
  return points


def _value(v: object) -> str:
  """An override's value as `--config.KEY=` text that ml_collections parses back:
  tuples and lists as Python literals, a plain string as itself."""
  if isinstance(v, (tuple, list)):
    return "(" + "".join(f"{x!r}," if isinstance(x, str) else f"{_value(x)},"
                         for x in v) + ")"
  return str(v)


def run_name(overrides: dict[str, object]) -> str:
  """A point's workdir name: "key=value" for the last part of each key, joined."""
  parts = []
  for key, value in overrides.items():
    short = key.split(".")[-1]
    text = "-".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
    parts.append(f"{short}={text or 'none'}")
  return re.sub(r"[^A-Za-z0-9=._-]+", "_", ",".join(parts))


def override_args(overrides: dict[str, object]) -> list[str]:
  return [f"--config.{k}={_value(v)}" for k, v in overrides.items()]


def commands(config_arg: str, root: str, extra: list[str], python: str = "python",
             sweep: str | None = None) -> list[list[str]]:
  """One `gait_jax.main` argv per point, in the sweep's order."""
  points = load_sweep(config_arg, sweep)
  names = [run_name(p) for p in points]
  for i, name in enumerate(names):
    if name in names[:i]:
      raise SystemExit(f"sweep.py: error: points {names.index(name)} and {i} share the "
                       f"workdir name {name!r}")
  return [[python, "-m", "gait_jax.main", "--config", config_arg,
           "--workdir", os.path.join(root, name)] + override_args(point) + list(extra)
          for point, name in zip(points, names)]


def workdir_of(cmd: list[str]) -> str:
  return cmd[cmd.index("--workdir") + 1]


# --- local ---------------------------------------------------------------------------


def with_local_launcher(cmd: list[str], processes: int, devices: int | None) -> list[str]:
  """cmd as `processes` processes of one JAX job on this machine (launch/local.sh)."""
  launcher = [os.path.relpath(REPO / "launch" / "local.sh"), "--processes", str(processes)]
  if devices is not None:
    launcher += ["--devices-per-process", str(devices)]
  return launcher + ["--"] + cmd


def run_local(cmds: list[list[str]], names: list[str], logs: list[pathlib.Path] | None,
              parallel: int = 1) -> int:
  """Runs every command here, `parallel` at a time, and returns 0 if all succeeded,
  else 1 (after a summary of the failed ones on stderr). Command i's output goes to
  logs[i] when logs are given, else to this terminal. On Ctrl-C the running
  commands are stopped (SIGTERM) and waited for."""
  total, pending = len(cmds), list(range(len(cmds)))
  running: dict[int, subprocess.Popen] = {}
  status: dict[int, int] = {}
  try:
    while pending or running:
      while pending and len(running) < parallel:
        i = pending.pop(0)
        where = f" > {logs[i]}" if logs else ""
        print(f"[{i + 1}/{total}] {names[i]}: {shlex.join(cmds[i])}{where}", flush=True)
        try:
          if logs:
            logs[i].parent.mkdir(parents=True, exist_ok=True)
            with open(logs[i], "wb") as log:
              running[i] = subprocess.Popen(cmds[i], stdout=log, stderr=subprocess.STDOUT)
          else:
            running[i] = subprocess.Popen(cmds[i])
        except OSError as e:  # e.g. a --python that does not exist
          print(f"[{i + 1}/{total}] {names[i]}: cannot start: {e}", file=sys.stderr)
          status[i] = 127
      for i, proc in list(running.items()):
        if proc.poll() is not None:
          status[i] = proc.returncode
          del running[i]
          outcome = "done" if proc.returncode == 0 else f"failed (status {proc.returncode})"
          print(f"[{i + 1}/{total}] {names[i]}: {outcome}", flush=True)
      if running:
        time.sleep(0.1)
  except KeyboardInterrupt:
    for proc in running.values():
      proc.terminate()
    for proc in running.values():
      proc.wait()
    print(f"sweep.py: interrupted; stopped {len(running)} running point(s)", file=sys.stderr)
    return 130
  failed = [i for i in range(total) if status[i] != 0]
  if not failed:
    print(f"sweep.py: all {total} points succeeded")
    return 0
  print(f"sweep.py: {len(failed)} of {total} points failed:", file=sys.stderr)
  for i in failed:
    where = f" (log: {logs[i]})" if logs else ""
    print(f"  [{i + 1}] {names[i]}: status {status[i]}{where}", file=sys.stderr)
  return 1


# --- slurm ---------------------------------------------------------------------------


def slurm_script(cmds: list[list[str]], *, root: str, chdir: str, nodes: int = 1,
                 gpus_per_node: int = 0, tasks_per_node: int | None = None,
                 cpus_per_task: int | None = None, time_limit: str | None = None,
                 partition: str | None = None, account: str | None = None,
                 job_name: str = "sweep", written_by: str = "") -> str:
  """The text of a SLURM array job whose task i runs cmds[i] with srun.

  The script also runs under plain bash (with SLURM_ARRAY_TASK_ID set and an srun on
  PATH). It passes srun only `--opt=value` options, and no process ids: each process
  of the point learns its id and the coordinator from SLURM's variables."""
  if tasks_per_node is None:
    tasks_per_node = gpus_per_node if gpus_per_node > 0 else 1
  last = len(cmds) - 1
  sbatch = [f"--job-name={job_name}", f"--array=0-{last}", f"--nodes={nodes}",
            f"--ntasks-per-node={tasks_per_node}"]
  sbatch += [f"--gpus-per-node={gpus_per_node}"] if gpus_per_node > 0 else []
  sbatch += [f"--cpus-per-task={cpus_per_task}"] if cpus_per_task else []
  sbatch += [f"--time={time_limit}"] if time_limit else []
  sbatch += [f"--partition={partition}"] if partition else []
  sbatch += [f"--account={account}"] if account else []
  sbatch += [f"--chdir={chdir}", f"--output={os.path.join(root, 'logs', '%A_%a.out')}"]
  srun = ["srun", "--kill-on-bad-exit=1"]
  srun += [f"--cpus-per-task={cpus_per_task}"] if cpus_per_task else []
  lines = [
      "#!/bin/bash",
      f"# A SLURM array job written by {written_by or 'launch/sweep.py'}",
      "# Task i runs sweep point i as --nodes x --ntasks-per-node processes of one JAX",
      "# job (gait_jax.main reads the layout from SLURM's variables).",
      "#   sbatch THIS_FILE                  all points",
      "#   sbatch --array=2,5 THIS_FILE      points 2 and 5 (a rerun resumes)",
      "# Points:",
  ]
  lines += [f"#   {i}  {os.path.basename(workdir_of(cmd))}" for i, cmd in enumerate(cmds)]
  lines += [f"#SBATCH {option}" for option in sbatch]
  lines += ["", "set -euo pipefail", f"cd {shlex.quote(chdir)}",
            'case "${SLURM_ARRAY_TASK_ID:?is not set: submit this file with sbatch}" in']
  for i, cmd in enumerate(cmds):
    lines += [f"  {i})", f"    workdir={shlex.quote(workdir_of(cmd))}",
              f"    run=({shlex.join(cmd)})", "    ;;"]
  lines += ["  *)",
            f'    echo "no sweep point $SLURM_ARRAY_TASK_ID (points: 0-{last})" >&2',
            "    exit 2", "    ;;", "esac",
            'mkdir -p "$workdir"',
            'echo "sweep point $SLURM_ARRAY_TASK_ID on ${SLURM_JOB_NUM_NODES:-1} node(s):'
            ' ${run[*]}"',
            f'exec {shlex.join(srun)} "${{run[@]}}"', ""]
  return "\n".join(lines)


# --- wandb ---------------------------------------------------------------------------


def grid(points: list[dict[str, object]]) -> dict[str, list[str]]:
  """Each key's values (as `_value` text, in order of first appearance), when the
  points are exactly their Cartesian product, each combination once; else ValueError
  (a W&B grid sweep cannot express them)."""
  keys = list(points[0])
  values: dict[str, list[str]] = {k: [] for k in keys}
  seen = []
  for i, point in enumerate(points):
    if list(point) != keys:
      raise ValueError(f"point {i} sets {sorted(point)}, point 0 sets {sorted(keys)}")
    combo = tuple(_value(point[k]) for k in keys)
    if combo in seen:
      raise ValueError(f"point {i} repeats point {seen.index(combo)}")
    seen.append(combo)
    for k, v in zip(keys, combo):
      if v not in values[k]:
        values[k].append(v)
  missing = [c for c in itertools.product(*values.values()) if c not in seen]
  if missing:
    example = ", ".join(f"{k}={v}" for k, v in zip(keys, missing[0]))
    raise ValueError(f"{len(missing)} combination(s) of the keys' values are not points, "
                     f"e.g. {example}")
  return values


def wandb_sweep(config_arg: str, root: str, points: list[dict[str, object]],
                extra: list[str], *, python: str = "python", chdir: str | None = None,
                project: str = "", entity: str = "", name: str = "") -> dict[str, object]:
  """A W&B grid sweep definition over the points.

  The command runs `python -m gait_jax.main --config CONFIG ${args} EXTRA_ARGS` with
  --workdir R/$WANDB_RUN_ID (through bash, which reads the run id that the agent puts
  in the environment), online. W&B's ${args} renders the parameter "config.KEY" with
  value V as "--config.KEY=V"; the values are the strings `_value` writes."""
  workdir = shlex.quote(root.rstrip("/") or "/") + '/"${WANDB_RUN_ID:?run this with wandb agent}"'
  script = ("" if chdir is None else f"cd {shlex.quote(chdir)} && ") + \
      f'exec "$@" --workdir={workdir}'
  command = (["bash", "-c", script, "gait_jax.main", python, "-m", "gait_jax.main",
              "--config", config_arg, "--config.wandb.mode=online", "${args}"]
             + list(extra))
  sweep: dict[str, object] = {"name": name} if name else {}
  sweep.update({"project": project} if project else {})
  sweep.update({"entity": entity} if entity else {})
  sweep.update(method="grid", command=command, parameters={
      f"config.{k}": {"values": v} for k, v in grid(points).items()})
  return sweep


def _wandb_target(config_arg: str, extra: list[str]) -> tuple[str, str]:
  """(project, entity) of the experiment's runs: config.wandb's, or the ones given
  in EXTRA_ARGS (a sweep's runs go to the sweep's project, whatever wandb.init asks)."""
  module = _load_experiment(config_arg)
  variant = config_arg.split(":", 1)[1] if ":" in config_arg else None
  config = module.get_config(variant) if variant is not None else module.get_config()
  wandb = config.get("wandb", {})
  project, entity = str(wandb.get("project", "") or ""), str(wandb.get("entity", "") or "")
  for arg in extra:
    project = arg.split("=", 1)[1] if arg.startswith("--config.wandb.project=") else project
    entity = arg.split("=", 1)[1] if arg.startswith("--config.wandb.entity=") else entity
  return project, entity


def to_yaml(value: dict) -> str:
  """The sweep file's text: JSON, which is YAML (a flow mapping) and quotes every
  string exactly."""
  return json.dumps(value, indent=2, ensure_ascii=False)


# --- command line --------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="launch/sweep.py", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("config", help="experiments/FILE.py[:variant]")
  p.add_argument("--root", default="runs/sweep", help="the points' workdirs go under it")
  p.add_argument("--sweep", help="which of the file's sweeps (get_sweep(NAME))")
  p.add_argument("--backend", choices=BACKENDS, default="print")
  p.add_argument("--python", help="the interpreter of the runs (default: python; "
                 "local: this one)")
  local = p.add_argument_group("local (and print)")
  local.add_argument("--parallel", type=int, metavar="K", help="points at a time (local)")
  local.add_argument("--processes", type=int, metavar="N",
                     help="each point as N processes through launch/local.sh")
  local.add_argument("--devices-per-process", type=int, metavar="D",
                     help="CPU devices per process (with --processes)")
  slurm = p.add_argument_group("slurm")
  slurm.add_argument("--nodes", type=int, help="nodes per point (default 1)")
  slurm.add_argument("--gpus-per-node", type=int, help="default 0: CPU only")
  slurm.add_argument("--tasks-per-node", type=int,
                     help="processes per node (default: gpus-per-node, or 1)")
  slurm.add_argument("--cpus-per-task", type=int, help="CPUs per process (data loading)")
  slurm.add_argument("--time", help="time limit per point, e.g. 24:00:00")
  slurm.add_argument("--partition")
  slurm.add_argument("--account")
  slurm.add_argument("--job-name", help="default: the root's name")
  p.add_argument("--chdir", help="slurm, wandb: the directory the runs start in")
  return p


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  extra = argv[argv.index("--") + 1:] if "--" in argv else []
  own = argv[:argv.index("--")] if "--" in argv else argv
  p = _parser()
  args = p.parse_args(own)
  for dest, backends in BACKEND_OPTIONS.items():
    if getattr(args, dest) is not None and args.backend not in backends:
      p.error(f"--{dest.replace('_', '-')} is for --backend {' or '.join(backends)}")
  for dest in ("parallel", "processes", "devices_per_process", "nodes", "gpus_per_node",
               "tasks_per_node", "cpus_per_task"):
    value, least = getattr(args, dest), 0 if dest == "gpus_per_node" else 1
    if value is not None and value < least:
      p.error(f"--{dest.replace('_', '-')} must be at least {least}")
  if args.devices_per_process is not None and args.processes is None:
    p.error("--devices-per-process needs --processes")
  written_by = shlex.join(["launch/sweep.py"] + argv)

  if args.backend == "wandb":
    points = load_sweep(args.config, args.sweep)
    project, entity = _wandb_target(args.config, extra)
    try:
      sweep = wandb_sweep(args.config, args.root, points, extra,
                          python=args.python or "python", chdir=args.chdir,
                          project=project, entity=entity,
                          name=os.path.basename(os.path.abspath(args.root)))
    except ValueError as e:
      raise SystemExit(f"sweep.py: error: sweep {args.sweep or '(default)'} is not a grid "
                       f"(W&B's grid method runs every combination of each key's values): "
                       f"{e}. Use --backend local or slurm.") from e
    path = pathlib.Path(args.root) / "sweep.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    start = f"cd {args.chdir}" if args.chdir else f"from {os.getcwd()}"
    header = [f"# A W&B grid sweep written by {written_by}",
              f"#   wandb sweep {path}       creates it and prints its id",
              f"#   wandb agent ENTITY/PROJECT/ID   runs its points ({start})",
              f"# Each run's workdir is {os.path.join(args.root, '<W&B run id>')}."]
    path.write_text("\n".join(header + [to_yaml(sweep)]) + "\n")
    print(f"wrote {path} ({len(points)} runs): wandb sweep {path}, then wandb agent "
          "with the id it prints")
    return 0

  if args.backend == "slurm":
    root, config = args.root, args.config
    if args.chdir is None:  # the repository; the paths as they were meant here
      root, config = os.path.abspath(root), os.path.abspath(config)
      if extra and os.path.abspath(os.getcwd()) != str(REPO):
        print(f"sweep.py: note: the job runs in {REPO}; relative paths after '--' are "
              "relative to it", file=sys.stderr)
    cmds = commands(config, root, extra, python=args.python or "python", sweep=args.sweep)
    text = slurm_script(
        cmds, root=root, chdir=args.chdir or str(REPO), nodes=args.nodes or 1,
        gpus_per_node=args.gpus_per_node or 0, tasks_per_node=args.tasks_per_node,
        cpus_per_task=args.cpus_per_task, time_limit=args.time, partition=args.partition,
        account=args.account,
        job_name=args.job_name or os.path.basename(os.path.abspath(args.root)),
        written_by=written_by)
    path = pathlib.Path(args.root) / "sweep.sbatch"
    (pathlib.Path(args.root) / "logs").mkdir(parents=True, exist_ok=True)  # sbatch needs it
    path.write_text(text)
    print(f"wrote {path} ({len(cmds)} array tasks): sbatch {path}")
    if args.chdir is not None and os.path.abspath(args.chdir) != os.getcwd():
      logs = os.path.join(args.chdir, args.root, "logs")
      print(f"sweep.py: note: SLURM writes the logs to {logs}, which must exist when the "
            "job starts", file=sys.stderr)
    return 0

  python = args.python or (sys.executable if args.backend == "local" else "python")
  cmds = commands(args.config, args.root, extra, python=python, sweep=args.sweep)
  names = [os.path.basename(workdir_of(cmd)) for cmd in cmds]
  logs = ([pathlib.Path(workdir_of(cmd)) / "sweep.log" for cmd in cmds]
          if (args.parallel or 1) > 1 else None)
  if args.processes is not None:
    cmds = [with_local_launcher(cmd, args.processes, args.devices_per_process)
            for cmd in cmds]
  if args.backend == "print":
    for cmd in cmds:
      print(shlex.join(cmd))
    return 0
  return run_local(cmds, names, logs, parallel=args.parallel or 1)


if __name__ == "__main__":
  sys.exit(main())
