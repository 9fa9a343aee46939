"""The pretraining job's config (`gait_jax.train.pretrain`): every setting and its
default — mesh, sharding rules, optimiser, run length, logging — for each variant.
Experiment files pick the variant and the model and say what differs."""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from gait_jax import configs, models, tracking
from gait_jax.data import config as data_config
from gait_jax.train import evaluators


def base_config() -> ml_collections.ConfigDict:
  """Everything a pretraining experiment sets, with defaults; see field comments."""
  c = ml_collections.ConfigDict()
  c.job = "pretrain"
  c.seed = 0
  c.data = data_config.get_data_config()
  c.model = ml_collections.ConfigDict()  # a preset of models.get_model_config

  # Mesh: (name, size) pairs, one size may be -1 (all remaining devices). The
  # batch is split over `data_axes`; parameters and optimiser state over "fsdp"
  # (via the rules below), tensor-parallel weights over "tensor".
  c.mesh = configs.mesh_config((("data", -1), ("fsdp", 1), ("tensor", 1)),
                               data_axes=("data", "fsdp"))
  # Logical axis name → mesh axes; one table for parameters and activations.
  c.sharding_rules = (
      ("batch", ("data", "fsdp")),
      ("embed", "fsdp"),
      ("mlp", "tensor"),
      ("heads", "tensor"),
      ("kv", None),
      ("joints", None),
      ("frames", None),
      ("tokens", None),
      ("layers", None),  # GaitMAE's stacked (scanned) layers
  )

  # AdamW (`state.make_optimizer`): warm-up then cosine decay to lr × end_lr_ratio.
  c.optim = ml_collections.ConfigDict()
  c.optim.lr = 1e-3
  # "linear" (from 0 to lr) or "constant" (lr from the start) for the warm-up steps.
  c.optim.warmup = "linear"
  c.optim.warmup_steps = 100
  # Warm-up in epochs of the sampler instead (needs num_epochs); replaces warmup_steps.
  c.optim.warmup_epochs = config_dict.placeholder(float)
  c.optim.end_lr_ratio = 0.01
  c.optim.weight_decay = 0.05
  # Which parameters decay: "matrices" (not biases or norm scales) or "all".
  c.optim.decay = "matrices"
  c.optim.clip_norm = 1.0  # global-norm clipping; 0 = none
  c.optim.b1 = 0.9
  c.optim.b2 = 0.95
  c.optim.eps = 1e-8

  # Run length in optimiser steps, or in epochs of the data sampler (`data.sampler`;
  # the step count then follows the cohort's size, and config.json records it).
  c.total_steps = 1000
  c.num_epochs = config_dict.placeholder(float)
  # Micro-batches per step: the batch (data.batch_size clips) is split into
  # grad_accum parts run one after another and their gradients averaged, for
  # devices where the whole batch does not fit. The same update up to float
  # rounding (each micro-batch's loss is its own weighted mean).
  c.grad_accum = 1
  c.log_every = 10
  c.figure_every = 0  # 0 = no reconstruction figures
  # Evaluators (`evaluators`): name → {type: "loss" | "probe", every: steps (0 =
  # off), options}; their metrics go to metrics.jsonl, the console and W&B as
  # "<name>/...". The probe runs once evals.probe.phenotypes names a table.
  c.evals = evaluators.evals_config("small")
  c.checkpoint_every = 200
  c.keep_checkpoints = 3
  c.async_checkpoint = True
  # Another run's workdir (or its checkpoints/) whose latest params start this run
  # when this workdir has no checkpoint of its own.
  c.init_from = config_dict.placeholder(str)
  # bf16 dense peak FLOP/s per device for MFU; 0 = look it up from the device kind.
  c.peak_flops_per_device = 0.0

  # W&B: project, entity, group, name, tags, mode (`tracking.wandb_config`).
  c.wandb = tracking.wandb_config()
  return c


VARIANTS = ("paper", "paper_plus", "small", "smoke")


def get_config(variant: str, model: str) -> ml_collections.ConfigDict:
  """`base_config()` with the run length, data shape and logging of a variant, and the
  model preset `model` (`models.get_model_config`):

    paper       the published recipe (`published_recipe`) for GaitMAE; for other
                models the prepared clips, 100k steps; bf16 on GPU/TPU ("auto")
    paper_plus  the published recipe with this project's changes (`plus_recipe`)
    small       3 s crops, 100 steps: minutes on a 2-core CPU
    smoke       32-frame crops, 6 steps, a checkpoint every 2: for tests
  Experiment files then say what differs (batch size, lr, ...).
  """
  configs.check_variant(variant, VARIANTS, "pretrain")
  c = base_config()
  c.model = models.get_model_config(model)
  # "auto": bf16 on GPU/TPU, f32 on CPU (resolved by the trainer once the distributed
  # runtime is up); --config.model.dtype=float32 or bfloat16 to choose.
  c.model.dtype = "auto" if variant.startswith("paper") else "float32"
  c.data.joints = "default26"
  c.data.batch_size = 8
  if variant.startswith("paper"):
    c.model.remat = True
    c.data.crop_frames = 0
    c.data.worker_count = 2
    c.optim.warmup_steps = 2000
    c.total_steps = 100_000
    c.log_every = 50
    c.figure_every = 5000
    c.checkpoint_every = 2000
    if c.model.name == "gaitmae":
      published_recipe(c)
      if variant == "paper_plus":
        plus_recipe(c)
    elif variant == "paper_plus":
      raise ValueError(f"variant paper_plus is GaitMAE's; model {model!r} has paper")
  elif variant == "small":
    c.data.crop_frames = 90
    c.optim.lr = 2e-3
    c.optim.warmup_steps = 10
    c.total_steps = 100
    c.figure_every = 50
    c.checkpoint_every = 50
  else:
    c.data.crop_frames = 32
    c.data.read_threads = 1
    c.data.prefetch = 1
    c.optim.warmup_steps = 2
    c.total_steps = 6
    c.log_every = 1
    c.checkpoint_every = 2
  c.evals = evaluators.evals_config("paper" if variant.startswith("paper") else variant)
  c.wandb.tags = (variant,)
  return c


def published_recipe(c: ml_collections.ConfigDict) -> None:
  """The authors' published GaitMAE training, setting for setting (their
  `LONG_CONFIG`, `model/published/model_args.txt`, `preprocessing_args.json`):

    optimiser  AdamW lr 8e-4, β = (0.9, 0.999), weight decay 0.01 on all parameters,
               no clipping
    schedule   lr constant for 0.3 epoch, then cosine to 1 % at 32 epochs
    sampling   2 random windows per participant × task per epoch (tasks balanced),
               batch 8
    model      dropout 0.1, 2 sink frames (898 frames + 2 = 900 time steps), 32-d
               tanh pre-logits, input x, y, z, confidence (hidden joints zeroed, no
               mask flag) through one shared projection
    masking    4 of 6 regions per 16-frame span, 1 % of frames and 1 % of joint-frames
               on top, noise 0.05 m; velocity loss weight 0.1, every joint-frame
               reconstructed
  """
  c.model.update(dropout=0.1, num_sinks=2, pre_logits=32, embedding="shared",
                 mask_channel=False)
  c.model.masking.update(span_frames=16, regions_hidden=4, frame_ratio=0.01,
                         joint_ratio=0.01, noise_std=0.05)
  c.model.loss.update(velocity_weight=0.1, hidden_only=False)
  c.data.update(crop_frames=898, sampler="windows", windows_per_group=2, batch_size=8)
  c.optim.update(lr=8e-4, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.01, decay="all",
                 clip_norm=0.0, warmup="constant", warmup_epochs=0.3, end_lr_ratio=0.01)
  c.num_epochs = 32.0


# (field, value, why) of each `paper_plus` change to the published recipe; the
# README's table is this list.
PLUS_CHANGES = (
    ("model.mask_channel", True,
     "a fifth input channel flags the joint-frames hidden for reconstruction, so the "
     "model can tell them from joints the camera did not track (both zeroed)"),
    ("model.embedding", "per_joint",
     "each joint its own input projection: a joint's confidence and position ranges "
     "differ from joint to joint"),
    ("optim.warmup", "linear",
     "Adam's second moments are still empty in the first steps; a rise from 0 avoids "
     "the large first updates of a constant start"),
    ("optim.clip_norm", 1.0,
     "global-norm clipping guards bf16 runs against the rare spike that a single "
     "batch of 8 long clips can give"),
    ("optim.b2", 0.95,
     "a shorter second-moment memory reacts to gradient-scale changes within an epoch"),
    ("optim.decay", "matrices",
     "no weight decay on biases and LayerNorm scales, which set offsets and gains "
     "rather than fit features"),
)


def plus_recipe(c: ml_collections.ConfigDict) -> None:
  """The published recipe with PLUS_CHANGES applied (dotted paths of any depth; a
  path the config lacks is an error, never a new field)."""
  for field, value, _ in PLUS_CHANGES:
    *parents, name = field.split(".")
    node = c
    for part in parents:
      node = node[part]
    if name not in node:
      raise KeyError(f"PLUS_CHANGES: the config has no field {field!r}")
    node[name] = value
