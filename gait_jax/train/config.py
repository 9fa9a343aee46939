"""Pretraining config defaults shared by the experiment files: mesh, rules, optimiser, logging."""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from gait_jax.data import config as data_config


def base_config() -> ml_collections.ConfigDict:
  """Everything a pretraining experiment sets, with defaults; see field comments."""
  c = ml_collections.ConfigDict()
  c.job = "pretrain"
  c.seed = 0
  c.data = data_config.get_data_config()
  c.model = ml_collections.ConfigDict()  # filled by the experiment file

  # Mesh: (name, size) pairs, one size may be -1 (all remaining devices). The
  # batch is split over `data_axes`; parameters and optimiser state over "fsdp"
  # (via the rules below), tensor-parallel weights over "tensor".
  c.mesh = ml_collections.ConfigDict()
  c.mesh.axes = (("data", -1), ("fsdp", 1), ("tensor", 1))
  c.mesh.data_axes = ("data", "fsdp")
  c.mesh.axis_type = "auto"
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

  c.wandb = ml_collections.ConfigDict()
  c.wandb.mode = "offline"  # WANDB_MODE in the environment wins
  c.wandb.project = "gait_jax"
  c.wandb.entity = ""
  c.wandb.group = ""
  c.wandb.name = ""
  c.wandb.tags = ()
  return c


def parse_arg(arg: str | None, default: str) -> tuple[str, dict[str, str]]:
  """'small' or 'small,key=value' → ('small', {'key': 'value'})."""
  parts = [p for p in (arg or default).split(",") if p]
  variant = parts[0] if parts and "=" not in parts[0] else default
  extras = dict(p.split("=", 1) for p in parts if "=" in p)
  return variant, extras
