r"""Probe embeddings (or engineered features) against phenotypes with linear models.

  python -m gait_jax.main --config experiments/probe.py --workdir runs/probe \
      --config.embeddings=runs/embed/embeddings.parquet \
      --config.phenotypes=runs/demo/cohort/phenotypes.parquet \
      --config.dictionary=runs/demo/cohort/dictionary.csv

Variants (the argument after ":"; every field in gait_jax/probing/config.py):
  paper  5 grouped folds × 15 seeds, 13 α logspaced 10⁻¹…10⁵ chosen per target by
         nested CV, BH at q = 0.10 (default variant).
  smoke  3 folds × 2 seeds, 5 α: for tests.
Covariates (`--config.covariates=age,sex,bmi`, empty to skip) give the independent
gain of the embedding over them. `--config.fusion=average` probes each task separately
and averages the out-of-fold predictions per person. `--config.sex_models=separate`
fits men and women separately. `--config.binary_model=ridge` fits binary targets with
a closed-form ridge classifier instead of the published L2 logistic. The target axis
is sharded over `mesh.axes`.
"""

import ml_collections

from gait_jax import configs
from gait_jax.probing import config as probe_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant, _ = configs.parse_variant(arg, probe_config.VARIANTS, "paper")
  return probe_config.get_config(variant)
