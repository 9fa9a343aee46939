r"""Frozen embeddings of a pretrained encoder for every clip of a shard set.

  python -m gait_jax.main --config experiments/embed.py --workdir runs/embed \
      --config.checkpoint_dir=runs/pretrain_small --config.data.shards=runs/demo/shards

  python -m gait_jax.main --config experiments/embed.py:per_joint --workdir runs/embed_joints \
      --config.checkpoint_dir=runs/pretrain_small --config.data.shards=runs/demo/shards

Writes runs/embed/embeddings.parquet: one row per participant × task × ablation
(see gait_jax/embedding/job.py). Variants (every field in gait_jax/embedding/config.py):
  default    the published pooling: last layer, legs/arms/torso/head, mean and
             99th percentile over time, median over a person's clips; no ablation
  ablations  also every "zero one region" and "only one region" ablation (9 rows
             per participant × task), for the body-system × region heatmap
  per_joint  pooled per joint instead of per region, mean over time only: keeps the
             body's absolute size (height, leg length) that region means cancel
             (any variant takes --config.pool.by=joint)
  smoke      small batches, for tests
"""

import ml_collections

from gait_jax import configs
from gait_jax.embedding import config as embed_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant, _ = configs.parse_variant(arg, embed_config.VARIANTS, "default")
  return embed_config.get_config(variant)
