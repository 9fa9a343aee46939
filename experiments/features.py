r"""Engineered gait features per participant × task: the baseline for the embeddings.

  python -m gait_jax.main --config experiments/features.py \
      --workdir runs/features --config.data.shards=runs/demo/shards

Writes W/features.parquet (one row per participant × task: participant_id, task,
ablation="none", n_clips, then float feature columns, NaN where a feature does
not apply to the task), W/features_clips.parquet (per clip) and
W/features_report.csv (clips that failed or are partial, with the reason). The
probe job reads features.parquet like an embeddings table, so "embeddings vs
engineered features" is the same probe command on either file.

Variants (the argument after ":"):
  default  every clip of every participant (split "all"), 2 worker processes.
  smoke    at most 2 clips per participant × task, in-process: for tests.
Task → feature family rules: --config.features.task_families="('*walk*=walk',)".
"""

import ml_collections

from gait_jax.data import config as data_config
from gait_jax.features import config as features_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = arg or "default"
  if variant not in ("default", "smoke"):
    raise ValueError(f"unknown variant {variant!r}; expected 'default' or 'smoke'")
  c = ml_collections.ConfigDict()
  c.job = "features"
  c.data = data_config.get_data_config()
  c.data.split = "all"  # features for everyone; the probe makes the splits
  c.features = features_config.get_features_config()
  if variant == "default":
    c.features.workers = 2
  else:
    c.features.workers = 0
    c.features.chunk_clips = 8
    c.features.max_clips_per_group = 2
  return c
