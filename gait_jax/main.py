"""Runs an experiment file.

  python -m gait_jax.main --config experiments/pretrain_gaitmae.py:small \
      --workdir runs/pretrain --config.data.shards=runs/demo/shards [--config.x=y ...]

The config's `job` field picks what runs: "pretrain", "embed" (frozen-encoder
embeddings), "features" (engineered gait features) or "probe" (phenotype probing). On a multi-host launch (SLURM, a TPU pod, or the
JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID variables) JAX's
distributed runtime is initialised here, in the main process only: Grain's worker
processes never run this module's main.
"""

from __future__ import annotations

import importlib
import os

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment file[:variant]",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "where checkpoints, metrics and W&B go")
flags.mark_flags_as_required(["config", "workdir"])

JOBS = {
    "pretrain": "gait_jax.train.pretrain",
    "embed": "gait_jax.embedding.job",
    "features": "gait_jax.features.job",
    "probe": "gait_jax.probing.job",
}


def _multi_process_environment() -> bool:
  env = os.environ
  return ("JAX_COORDINATOR_ADDRESS" in env or int(env.get("SLURM_NTASKS", "1")) > 1
          or "TPU_WORKER_HOSTNAMES" in env or int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1)


def main(argv) -> None:
  del argv
  if not flags.FLAGS["verbosity"].present:  # Orbax logs every file at INFO
    logging.set_verbosity(logging.WARNING)
  import jax  # pylint: disable=import-outside-toplevel
  if _multi_process_environment():
    jax.distributed.initialize()
  config = _CONFIG.value
  if config.job not in JOBS:
    raise app.UsageError(f"config.job={config.job!r}; known jobs: {sorted(JOBS)}")
  importlib.import_module(JOBS[config.job]).run(config, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
