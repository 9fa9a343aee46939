#!/usr/bin/env python3
"""Starts N processes of one command on this machine, wired into one JAX job.

  launch/local.sh --processes N [--devices-per-process D | --gpus-per-process G] \
      [--port P] [--grace S] -- COMMAND...

Process i gets JAX_COORDINATOR_ADDRESS=localhost:PORT (a free port unless --port),
JAX_NUM_PROCESSES=N and JAX_PROCESS_ID=i, which `gait_jax.main` hands to
`jax.distributed.initialize`; with --devices-per-process each process sees D CPU
devices (`--xla_force_host_platform_device_count`, added to XLA_FLAGS); with
--gpus-per-process process i sees GPUs iG … iG + G − 1 (CUDA_VISIBLE_DEVICES), for one
machine with several GPUs. Every output line is printed with its process id, "[i] ...".

The launcher exits with the first non-zero status of any process. When one process
fails, the others (which would wait in a collective for it) get SIGTERM, then
SIGKILL after --grace seconds, with their process groups (Grain's workers go too).
SIGINT or SIGTERM to the launcher are passed on to every process the same way.
Standard library only: it runs before any environment is set up.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

_DEVICE_FLAG = re.compile(r"--xla_force_host_platform_device_count=\S+")


def free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def process_env(base: dict[str, str], *, process_id: int, processes: int, port: int,
                devices: int | None, gpus: int | None = None) -> dict[str, str]:
  """The environment of process `process_id` of `processes`."""
  env = dict(base)
  env.update(JAX_COORDINATOR_ADDRESS=f"localhost:{port}", JAX_NUM_PROCESSES=str(processes),
             JAX_PROCESS_ID=str(process_id), PYTHONUNBUFFERED="1")
  if devices is not None:
    flags = _DEVICE_FLAG.sub("", env.get("XLA_FLAGS", "")).split()
    env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={devices}"])
  if gpus is not None:
    env["CUDA_VISIBLE_DEVICES"] = ",".join(
        str(g) for g in range(process_id * gpus, (process_id + 1) * gpus))
  return env


def _pump(process_id: int, stream, lock: threading.Lock) -> None:
  for line in iter(stream.readline, b""):
    text = line.decode(errors="replace").rstrip("\n")
    with lock:
      sys.stdout.write(f"[{process_id}] {text}\n")
      sys.stdout.flush()
  stream.close()


class Job:
  """The N processes, their output threads, and how they are stopped."""

  def __init__(self, command: list[str], *, processes: int, devices: int | None,
               gpus: int | None, port: int):
    self.procs: list[subprocess.Popen] = []
    self.threads: list[threading.Thread] = []
    lock = threading.Lock()
    for i in range(processes):
      env = process_env(os.environ, process_id=i, processes=processes, port=port,
                        devices=devices, gpus=gpus)
      proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
      self.procs.append(proc)
      print(f"[launcher] process {i} of {processes}: pid {proc.pid}", file=sys.stderr,
            flush=True)
      thread = threading.Thread(target=_pump, args=(i, proc.stdout, lock), daemon=True)
      thread.start()
      self.threads.append(thread)

  def signal_all(self, sig: int) -> None:
    for proc in self.procs:
      if proc.poll() is None:
        try:
          os.killpg(proc.pid, sig)
        except ProcessLookupError:
          pass

  def stop(self, grace: float) -> None:
    """SIGTERM to every running process group, SIGKILL to what is left after `grace`."""
    self.signal_all(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(p.poll() is None for p in self.procs):
      time.sleep(0.05)
    self.signal_all(signal.SIGKILL)
    for proc in self.procs:
      proc.wait()

  def wait(self, grace: float) -> int:
    """Waits for all; on the first failure stops the rest. Returns the exit status
    (a process killed by signal S counts as 128 + S)."""
    status = 0
    while True:
      codes = [p.poll() for p in self.procs]
      failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
      if failed and not status:
        i, code = failed[0]
        status = 128 - code if code < 0 else code
        running = [j for j, c in enumerate(codes) if c is None]
        if running:
          print(f"[launcher] process {i} exited with status {status}; stopping "
                f"process(es) {running}", file=sys.stderr, flush=True)
        self.stop(grace)
      if all(c is not None for c in (p.poll() for p in self.procs)):
        break
      time.sleep(0.05)
    for thread in self.threads:
      thread.join(timeout=5)
    return status


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
  if "--" not in argv:
    raise SystemExit("launch/local.sh: usage: --processes N [--devices-per-process D] "
                     "-- COMMAND...")
  split = argv.index("--")
  p = argparse.ArgumentParser(prog="launch/local.sh", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--processes", type=int, required=True)
  layout = p.add_mutually_exclusive_group()
  layout.add_argument("--devices-per-process", type=int,
                      help="CPU devices per process (default: the platform's own)")
  layout.add_argument("--gpus-per-process", type=int,
                      help="GPUs per process, in order (default: every process sees all)")
  p.add_argument("--port", type=int, help="coordinator port (default: a free one)")
  p.add_argument("--grace", type=float, default=5.0,
                 help="seconds between SIGTERM and SIGKILL when stopping (default 5)")
  args = p.parse_args(argv[:split])
  command = argv[split + 1:]
  if not command:
    p.error("no command after --")
  if args.processes < 1:
    p.error(f"--processes {args.processes}: must be at least 1")
  for name in ("devices_per_process", "gpus_per_process"):
    value = getattr(args, name)
    if value is not None and value < 1:
      p.error(f"--{name.replace('_', '-')} {value}: must be at least 1")
  return args, command


def main(argv: list[str] | None = None) -> int:
  args, command = parse_args(sys.argv[1:] if argv is None else argv)
  job = Job(command, processes=args.processes, devices=args.devices_per_process,
            gpus=args.gpus_per_process, port=args.port or free_port())

  def forward(signum, _frame):
    print(f"[launcher] signal {signum}: stopping all processes", file=sys.stderr, flush=True)
    job.stop(args.grace)

  signal.signal(signal.SIGINT, forward)
  signal.signal(signal.SIGTERM, forward)
  return job.wait(args.grace)


if __name__ == "__main__":
  sys.exit(main())
