r"""Body-region ablation: which region carries each phenotype's signal.

  python -m gait_jax.main --config experiments/ablation.py --workdir runs/ablation \
      --config.checkpoint_dir=runs/pretrain_small --config.data.shards=runs/demo/shards \
      --config.phenotypes=runs/demo/cohort/phenotypes.parquet \
      --config.dictionary=runs/demo/cohort/dictionary.csv

Embeds every clip once per ablation in one stacked forward pass (each region zeroed,
and each region alone), probes every ablation against every target on the same folds
(subsets all, male, female), and writes region_importance.csv (per subset × body
system × region: the published top-10 summary normalised per system, the raw Δ,
counts and paired tests), target_importance.parquet and figures/region_heatmap.png.
Add encoders pretrained without a region (`--config.trained=legs=DIR,...`, from
`python launch/sweep.py experiments/pretrain_gaitmae.py:small --sweep regions`) for
the training-time ablation; `--config.embeddings=E` reuses an embed run with the
ablation rows; `--config.truth=truth.json` checks the synthetic cohort's planted
regions. Variants (every field in gait_jax/ablation/config.py): paper, smoke.
"""

import ml_collections

from gait_jax import configs
from gait_jax.ablation import config as ablation_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant, _ = configs.parse_variant(arg, ablation_config.VARIANTS, "paper")
  return ablation_config.get_config(variant)
