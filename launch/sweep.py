#!/usr/bin/env python3
"""Expands an experiment's `get_sweep()` into one training command per run.

  python launch/sweep.py experiments/pretrain_gaitmae.py:small --root runs/sweep \
      [--sweep NAME] [--run] [-- --config.data.shards=DIR ...]

Without --run the commands are printed (one per line, for a cluster's job array or
a shell); with --run they run here one after another. Each run gets its own
workdir under --root, named from its overrides, so re-running resumes runs.
Arguments after "--" are appended to every command.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import re
import shlex
import subprocess
import sys


def load_sweep(config_arg: str, name: str | None = None) -> list[dict[str, object]]:
  path = pathlib.Path(config_arg.split(":", 1)[0])
  spec = importlib.util.spec_from_file_location(f"sweep_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_sweep"):
    raise SystemExit(f"{path} has no get_sweep()")
  return list(module.get_sweep() if name is None else module.get_sweep(name))


def _value(v: object) -> str:
  if isinstance(v, (tuple, list)):
    return "(" + "".join(f"{_value(x)}," for x in v) + ")"
  if isinstance(v, str):
    return f"'{v}'"
  return str(v)


def run_name(overrides: dict[str, object]) -> str:
  parts = []
  for key, value in overrides.items():
    short = key.split(".")[-1]
    text = "-".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
    parts.append(f"{short}={text or 'none'}")
  return re.sub(r"[^A-Za-z0-9=._-]+", "_", ",".join(parts))


def commands(config_arg: str, root: str, extra: list[str],
             python: str = "python", sweep: str | None = None) -> list[list[str]]:
  out = []
  for overrides in load_sweep(config_arg, sweep):
    cmd = [python, "-m", "gait_jax.main", "--config", config_arg,
           "--workdir", str(pathlib.Path(root) / run_name(overrides))]
    cmd += [f"--config.{k}={_value(v)}" for k, v in overrides.items()]
    out.append(cmd + list(extra))
  return out


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  extra = argv[argv.index("--") + 1:] if "--" in argv else []
  argv = argv[:argv.index("--")] if "--" in argv else argv
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("config", help="experiments/FILE.py[:variant]")
  p.add_argument("--root", default="runs/sweep")
  p.add_argument("--sweep", help="which of the file's sweeps (get_sweep(NAME))")
  p.add_argument("--run", action="store_true", help="run the commands here, in sequence")
  args = p.parse_args(argv)
  cmds = commands(args.config, args.root, extra,
                  python=sys.executable if args.run else "python", sweep=args.sweep)
  if not args.run:
    for cmd in cmds:
      print(shlex.join(cmd))
    return 0
  for i, cmd in enumerate(cmds):
    print(f"[{i + 1}/{len(cmds)}] {shlex.join(cmd)}", flush=True)
    code = subprocess.call(cmd)
    if code:
      print(f"run {i + 1} failed with status {code}", file=sys.stderr)
      return code
  return 0


if __name__ == "__main__":
  sys.exit(main())
