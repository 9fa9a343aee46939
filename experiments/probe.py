r"""Probe embeddings (or engineered features) against phenotypes with linear models.

  python -m gait_jax.main --config experiments/probe.py --workdir runs/probe \
      --config.embeddings=runs/embed/embeddings.parquet \
      --config.phenotypes=runs/demo/cohort/phenotypes.parquet \
      --config.dictionary=runs/demo/cohort/dictionary.csv

Variants (the argument after ":"):
  paper  5 grouped folds × 15 seeds, 13 α logspaced 10⁻¹…10⁵ chosen per target by
         nested CV, 1000 bootstrap resamples, BH at q = 0.10 (default variant).
  smoke  3 folds × 2 seeds, 5 α, 50 resamples: for tests.
Covariates (`--config.covariates=age,sex,bmi`, empty to skip) give the independent
gain of the embedding over them. `--config.fusion=average` probes each task separately
and averages the out-of-fold predictions per person. `--config.sex_models=separate`
fits men and women separately. The target axis is sharded over `mesh.axes`.
"""

import ml_collections
from ml_collections import config_dict


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = (arg or "paper").split(",")[0]
  if variant not in ("paper", "smoke"):
    raise ValueError(f"unknown variant {variant!r}; expected paper or smoke")
  c = ml_collections.ConfigDict()
  c.job = "probe"
  c.seed = 0
  c.embeddings = config_dict.placeholder(str)
  c.phenotypes = config_dict.placeholder(str)
  c.dictionary = config_dict.placeholder(str)  # target, system, kind, is_covariate
  c.id_column = "participant_id"
  c.sex_column = "sex"  # 1 = male, 0 = female
  c.covariates = "age,sex,bmi,visceral_fat,height"
  c.tasks = ""  # comma-separated; empty = every task in the file
  c.ablation = "none"
  c.fusion = "concat"  # or "average"
  c.sex_models = "pooled"  # or "separate"
  c.n_folds = 5
  c.n_seeds = 15
  c.n_alphas = 13
  c.alpha_min_log10 = -1.0
  c.alpha_max_log10 = 5.0
  c.n_bootstrap = 1000
  c.q = 0.10
  c.min_samples = 20
  c.min_positives = 10
  c.min_fold_positives = 3
  # Mesh over all devices, the target axis sharded over "targets".
  c.mesh = ml_collections.ConfigDict()
  c.mesh.axes = (("targets", -1),)
  c.mesh.axis_type = "auto"
  c.mesh.target_axis = "targets"
  if variant == "smoke":
    c.n_folds = 3
    c.n_seeds = 2
    c.n_alphas = 5
    c.n_bootstrap = 50
    c.min_samples = 10
    c.min_positives = 4
    c.min_fold_positives = 2
  return c
