"""The probe job's config (`gait_jax.probing.job`): every setting and its default.

Variants:
  paper  5 grouped folds × 15 seeds, 13 α logspaced 10⁻¹…10⁵ chosen per target by
         nested CV, BH at q = 0.10, 100 simulated null targets of each kind
  smoke  3 folds × 2 seeds, 5 α, 40 null targets: for tests
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from gait_jax import configs, tracking

VARIANTS = ("paper", "smoke")


def get_config(variant: str = "paper") -> ml_collections.ConfigDict:
  """The probe config of a variant; see the comment on each field."""
  configs.check_variant(variant, VARIANTS, "probe")
  c = ml_collections.ConfigDict()
  c.job = "probe"
  # Seeds the folds (seed, seed + 1, ...) and the simulated null targets.
  c.seed = 0
  # Inputs. embeddings: a `gait_jax.schema` table (embed or features job, or any
  # participant_id + numeric columns table). phenotypes: one row per participant.
  # dictionary: target, system, kind (continuous/binary), is_covariate.
  c.embeddings = config_dict.placeholder(str)
  # The name of config.embeddings' feature sets, and more tables scored beside it on
  # the same participants and folds ("engineered=features.parquet,...").
  c.name = "embedding"
  c.inputs = ""
  c.phenotypes = config_dict.placeholder(str)
  c.dictionary = config_dict.placeholder(str)
  c.id_column = "participant_id"
  c.sex_column = "sex"  # 1 = male, 0 = female
  # A pretraining run's workdir: probe only participants that run did not train on
  # (its config.json's shard set and data filters; the others are reported).
  c.held_out_of = config_dict.placeholder(str)
  # Covariates for the gain over them (comma-separated; empty: no gain models).
  c.covariates = "age,sex,bmi,visceral_fat,height"
  # Tasks: "" (every task in the file, fused), "a,b" (those, fused) or "each" (each
  # task alone and all of them fused: the per-task comparison).
  c.tasks = ""
  # Ablation rows of the embeddings: "none", "zero:legs,..." or "each" (every ablation
  # in the file, each its own feature set; inputs without one score "none").
  c.ablation = "none"
  # Several tasks: "concat" (one wide row per person) or "average" (a model per task,
  # out-of-fold predictions averaged per person).
  c.fusion = "concat"
  # Paired per-target comparisons of feature sets: "reference" (the first set against
  # every other), "" (none) or "a:b,c:d".
  c.compare = "reference"
  # Binary targets whose ROC curves are written (results/roc.csv).
  c.curves = "sex"
  c.sex_models = "pooled"  # or "separate" (one model per sex)
  # Binary targets: "logistic" (L2, balanced class weights: published) or "ridge"
  # (a closed-form ridge classifier; scored by AUC like the logistic).
  c.binary_model = "logistic"
  # Inner logistic fits stop a target's α path after this many consecutive weaker α
  # whose held-out losses all rose (0: fit the whole path).
  c.logistic_patience = 2
  c.n_folds = 5
  c.n_seeds = 15
  # The penalty grid: n_alphas values logspaced 10^alpha_min_log10 … 10^alpha_max_log10
  # (on standardised features), one chosen per target and outer fold by nested CV.
  c.n_alphas = 13
  c.alpha_min_log10 = -1.0
  c.alpha_max_log10 = 5.0
  # Benjamini–Hochberg level.
  c.q = 0.10
  # Simulated null targets of each kind probed beside the real ones to calibrate the
  # tests (probing/stats.py); 0 = naive p-values.
  c.null_targets = 100
  # A target is fitted when it has at least min_samples values and, if binary,
  # min_positives of each class and min_fold_positives of each class in every
  # training fold (the folds actually fitted).
  c.min_samples = 20
  c.min_positives = 10
  c.min_fold_positives = 3
  # Mesh over all devices, the target axis sharded over "targets".
  c.mesh = configs.mesh_config((("targets", -1),), target_axis="targets")
  # W&B: per-target and per-system tables, counts (`tracking`).
  c.wandb = tracking.wandb_config()
  if variant == "smoke":
    c.n_folds = 3
    c.n_seeds = 2
    c.n_alphas = 5
    c.null_targets = 40
    c.min_samples = 10
    c.min_positives = 4
    c.min_fold_positives = 2
  return c
