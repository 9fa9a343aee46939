"""The embed job's config (`gait_jax.embedding.job`): every setting and its default.

Variants:
  default    the published pooling: last layer, legs/arms/torso/head, mean and
             99th percentile over time, median over a person's clips; no ablation
  ablations  also every "zero one region" and "only one region" ablation (9 rows
             per participant × task), for the body-system × region heatmap
  per_joint  pooled per joint instead of per region, mean over time only: keeps the
             body's absolute size (height, leg length) that region means cancel
  smoke      small batches, for tests
"""

from __future__ import annotations

import ml_collections

from gait_jax import configs, tracking
from gait_jax.data import config as data_config
from gait_jax.embedding import pooling

VARIANTS = ("default", "ablations", "per_joint", "smoke")


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
  """The embed config of a variant; see the comment on each field."""
  configs.check_variant(variant, VARIANTS, "embed")
  c = ml_collections.ConfigDict()
  c.job = "embed"
  # A pretraining run's workdir (its config.json and checkpoints/). Required.
  c.checkpoint_dir = ""
  c.data = data_config.get_data_config()
  c.data.split = "all"  # embed everyone; probes cross-validate by participant
  c.data.batch_size = 16
  c.data.crop_frames = 0  # whole clips; windows are cut below
  # Frames per encoder window: -1 = the pretraining crop length (0 there: the
  # whole clip); 0 = the whole clip. A clip is cut into consecutive windows and
  # their token features pooled together.
  c.window_frames = -1
  # At most this many windows per clip, the central ones (0 = every window): the
  # encoder's cost per clip, e.g. 1 for a quick look.
  c.max_windows = 0
  # Which layer's token features (-1 = the last, after its LayerNorm).
  c.layer = -1
  # Compute dtype: "auto" (bf16 on GPU/TPU, else f32), "float32", "bfloat16", or
  # "pretrain" (the pretraining run's).
  c.dtype = "auto"
  c.pool = ml_collections.ConfigDict()
  c.pool.regions = pooling.DEFAULT_REGIONS
  c.pool.stats = ("mean", "p99")
  # What the statistics summarise: "region" (the mean over each region's joints,
  # published) or "joint" (every joint alone: J · len(stats) · width features).
  c.pool.by = "region"
  if variant == "per_joint":
    # Demo cohort, demo encoder, 1 clip per participant × task, 5-seed probe: height
    # r 0.898 → 0.973, leg length 0.924 → 0.964, BMI 0.659 → 0.813, age 0.698 →
    # 0.577 (segment lengths alone: 0.980, 0.995, 0.869). The mean over time alone:
    # adding the p99 per joint dilutes body size in the probe's standardised ridge
    # (height 0.951, leg length 0.953).
    c.pool.by = "joint"
    c.pool.stats = ("mean",)
  # A participant × task's clips → one vector: "median" (published) or "mean".
  c.person_reduce = "median"
  c.ablations = ("none",)
  if variant == "ablations":
    names = [n for n, _ in pooling.DEFAULT_REGIONS]
    c.ablations = ("none",) + tuple(f"zero:{n}" for n in names) + tuple(
        f"only:{n}" for n in names)
  # Ablations stacked into one encoder pass (a pass is batch_size × this × windows
  # rows). -1: all of them on GPU/TPU, one on CPU, where one pass over the whole
  # stack was no faster and took 4× the memory (README, Benchmarks).
  c.ablations_per_pass = -1
  c.mesh = configs.mesh_config((("data", -1),), data_axes=("data",))
  # W&B: counts, timings and the exclusion counts of the run (`tracking`).
  c.wandb = tracking.wandb_config()
  if variant == "smoke":
    c.data.batch_size = 8
    c.data.read_threads = 1
    c.data.prefetch = 1
  return c
