"""Runs an experiment file.

  python -m gait_jax.main --config experiments/pretrain_gaitmae.py:small \
      --workdir runs/pretrain --config.data.shards=runs/demo/shards [--config.x=y ...]

The config's `job` field picks what runs: "pretrain", "embed" (frozen-encoder
embeddings), "features" (engineered gait features), "probe" (phenotype probing) or
"ablation" (body-region importance). On a multi-host launch (SLURM, a TPU pod, or the
JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID variables) JAX's
distributed runtime is initialised here, in the main process only: Grain's worker
processes never run this module's main. `launch/local.sh` starts such a job on one
machine; `launch/sweep.py --backend slurm` and `launch/tpu.sh` on clusters.
"""

from __future__ import annotations

import importlib
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from gait_jax.errors import EXIT_USAGE, InputError

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment file[:variant]",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "where checkpoints, metrics and W&B go")
flags.mark_flags_as_required(["config", "workdir"])

JOBS = {
    "pretrain": "gait_jax.train.pretrain",
    "embed": "gait_jax.embedding.job",
    "features": "gait_jax.features.job",
    "probe": "gait_jax.probing.job",
    "ablation": "gait_jax.ablation.job",
}


def _multi_process_environment() -> bool:
  env = os.environ
  return ("JAX_COORDINATOR_ADDRESS" in env or int(env.get("SLURM_NTASKS", "1")) > 1
          or "TPU_WORKER_HOSTNAMES" in env or int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1)


def _initialize_distributed() -> None:
  """`jax.distributed.initialize`, with the layout from JAX_COORDINATOR_ADDRESS,
  JAX_NUM_PROCESSES and JAX_PROCESS_ID when given (JAX itself reads only the
  first), else from the cluster (SLURM, a TPU pod, Open MPI)."""
  import jax  # pylint: disable=import-outside-toplevel
  env = os.environ
  if "JAX_COORDINATOR_ADDRESS" in env and "JAX_NUM_PROCESSES" in env:
    try:
      count, index = int(env["JAX_NUM_PROCESSES"]), int(env.get("JAX_PROCESS_ID", ""))
    except ValueError:
      _usage_error(f"JAX_NUM_PROCESSES={env['JAX_NUM_PROCESSES']!r} and JAX_PROCESS_ID="
                   f"{env.get('JAX_PROCESS_ID')!r} must be integers (JAX_PROCESS_ID is "
                   "needed with JAX_NUM_PROCESSES)")
    jax.distributed.initialize(env["JAX_COORDINATOR_ADDRESS"], num_processes=count,
                               process_id=index)
  else:
    jax.distributed.initialize()


def _usage_error(message: str) -> None:
  print(f"gait_jax.main: error: {message}", file=sys.stderr)
  raise SystemExit(EXIT_USAGE)


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with user errors (a bad flag, an unknown variant, a missing
  experiment file) as one line on stderr; a bug in a config file keeps its traceback."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    cause = e.__context__
    if cause is not None and not isinstance(cause, (InputError, OSError, flags.Error)):
      raise
    lines = [line for line in str(e).splitlines() if line.strip()]
    last = lines[-1].strip() if lines else str(e)
    for prefix in ("gait_jax.errors.InputError: ", "FileNotFoundError: ", "IOError: "):
      last = last.removeprefix(prefix)
    _usage_error(last if cause is not None else lines[0])
  except (AttributeError, KeyError) as e:  # --config.<field> that the config lacks
    overrides = [a.split("=")[0] for a in argv if a.startswith("--config.")]
    if not overrides:
      raise
    _usage_error(f"no such config field {str(e).strip(chr(34))} (overrides: "
                 f"{', '.join(overrides)})")
  return []


def main(argv) -> None:
  del argv
  if not flags.FLAGS["verbosity"].present:  # Orbax logs every file at INFO
    logging.set_verbosity(logging.WARNING)
  if _multi_process_environment():
    _initialize_distributed()
  config = _CONFIG.value
  try:
    job = config.job
  except OSError as e:  # the experiment file could not be loaded
    _usage_error(str(e).strip().splitlines()[-1].strip())
  if job not in JOBS:
    _usage_error(f"config.job={job!r}; known jobs: {sorted(JOBS)}")
  try:
    importlib.import_module(JOBS[job]).run(config, _WORKDIR.value)
  except (InputError, FileNotFoundError) as e:
    _usage_error(str(e))


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
