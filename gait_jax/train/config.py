"""The pretraining job's config (`gait_jax.train.pretrain`): every setting and its
default — mesh, sharding rules, optimiser, run length, logging — for each variant.
Experiment files pick the variant and the model and say what differs."""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from gait_jax import configs, models, tracking
from gait_jax.data import config as data_config


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

  c.optim = ml_collections.ConfigDict()
  c.optim.lr = 1e-3
  c.optim.warmup_steps = 100
  c.optim.end_lr_ratio = 0.01
  c.optim.weight_decay = 0.05
  c.optim.clip_norm = 1.0
  c.optim.b1 = 0.9
  c.optim.b2 = 0.95

  c.total_steps = 1000
  c.log_every = 10
  c.figure_every = 0  # 0 = no reconstruction figures
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


VARIANTS = ("paper", "small", "smoke")


def get_config(variant: str, model: str) -> ml_collections.ConfigDict:
  """`base_config()` with the run length, data shape and logging of a variant, and the
  model preset `model` (`models.get_model_config`):

    paper  the prepared 900-frame clips, 100k steps, bf16 compute on GPU/TPU ("auto")
    small  3 s crops, 100 steps: minutes on a 2-core CPU
    smoke  32-frame crops, 6 steps, a checkpoint every 2: for tests
  Experiment files then say what differs (batch size, lr, ...).
  """
  configs.check_variant(variant, VARIANTS, "pretrain")
  c = base_config()
  c.model = models.get_model_config(model)
  # "auto": bf16 on GPU/TPU, f32 on CPU (resolved by the trainer once the distributed
  # runtime is up); --config.model.dtype=float32 or bfloat16 to choose.
  c.model.dtype = "auto" if variant == "paper" else "float32"
  c.data.joints = "default26"
  c.data.batch_size = 8
  if variant == "paper":
    c.data.crop_frames = 0
    c.data.worker_count = 2
    c.optim.warmup_steps = 2000
    c.total_steps = 100_000
    c.log_every = 50
    c.figure_every = 5000
    c.checkpoint_every = 2000
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
  c.wandb.tags = (variant,)
  return c
