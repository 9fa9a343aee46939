"""The ablation job's config (`gait_jax.ablation.job`): every setting and its default.

Variants:
  paper  every region zeroed and kept alone at inference, probed with the paper's
         protocol (5 folds × 15 seeds; embedding-only models: importance needs no
         covariates)
  smoke  small batches, 3 folds × 2 seeds: for tests
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from gait_jax import configs, tracking
from gait_jax.embedding import config as embed_config
from gait_jax.probing import config as probe_config

VARIANTS = ("paper", "smoke")


def get_config(variant: str = "paper") -> ml_collections.ConfigDict:
  """The ablation config of a variant; see the comment on each field."""
  configs.check_variant(variant, VARIANTS, "ablation")
  c = ml_collections.ConfigDict()
  c.job = "ablation"
  # The pretraining run whose encoder is ablated, and the shards it embeds.
  c.checkpoint_dir = ""
  c.data = embed_config.get_config("smoke" if variant == "smoke" else "default").data
  # Or an embeddings table that already has the ablation rows (the embed job's
  # "ablations" variant): nothing is embedded then.
  c.embeddings = ""
  # Training-time ablation: encoders pretrained with one region always hidden,
  # embedded and probed beside the inference-time ablations: "legs=DIR,torso=DIR", or
  # the root of `launch/sweep.py experiments/pretrain_gaitmae.py --sweep regions`.
  c.trained = ""
  c.phenotypes = config_dict.placeholder(str)
  c.dictionary = config_dict.placeholder(str)
  # A synthetic cohort's truth.json: the planted region of each body system is
  # compared with the recovered one (region_recovery.csv), and the job fails when
  # fewer than min_recovered of recovery_systems are recovered in the subset "all"
  # (0: report only). The default systems are those whose region the synthetic
  # cohort plants most clearly: legs for frailty, renal function, lipids, glycaemic
  # status, liver and immune/inflammation; the torso for sleep and mental health.
  c.truth = ""
  c.recovery_systems = ("frailty", "renal_function", "lipids", "glycemic_status", "liver",
                        "immune_inflammation", "sleep", "mental_health")
  c.min_recovered = 0
  # The published summary: mean importance of each system's top_targets targets.
  c.top_targets = 10
  # How the encoder is run (gait_jax/embedding/config.py, variant "ablations");
  # checkpoint_dir and data above take the place of its own.
  c.embed = embed_config.get_config("ablations")
  c.embed.data = c.data
  if variant == "smoke":
    c.embed.mesh = embed_config.get_config("smoke").mesh
  # How the feature sets are probed (gait_jax/probing/config.py): every ablation in
  # the table, each compared with no ablation on the same folds; phenotypes and
  # dictionary above take the place of its own.
  c.probe = probe_config.get_config(variant)
  c.probe.ablation = "each"
  c.probe.compare = "reference"
  c.probe.covariates = ""
  c.probe.curves = ""
  c.wandb = tracking.wandb_config()
  return c
