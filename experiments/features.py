r"""Engineered gait features per participant × task: the baseline for the embeddings.

  python -m gait_jax.main --config experiments/features.py \
      --workdir runs/features --config.data.shards=runs/demo/shards

Writes W/features.parquet (one row per participant × task: participant_id, task,
ablation="none", n_clips, then float feature columns, NaN where a feature does
not apply to the task), W/features_clips.parquet (per clip) and
W/features_report.csv (clips that failed or are partial, with the reason). The
probe job reads features.parquet like an embeddings table, so "embeddings vs
engineered features" is the same probe command on either file.

Variants (every field in gait_jax/features/config.py):
  default  every clip of every participant (split "all"), 2 Grain worker processes.
  smoke    at most 2 clips per participant × task, in-process: for tests.
Task → feature family rules: --config.features.task_families="('*walk*=walk',)".
"""

import ml_collections

from gait_jax import configs
from gait_jax.features import config as features_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant, _ = configs.parse_variant(arg, features_config.VARIANTS, "default")
  return features_config.get_config(variant)
