r"""Pretrain a MAMP-style masked autoencoder: the encoder sees only visible tokens.

  python -m gait_jax.main --config experiments/pretrain_mamp.py:small \
      --workdir runs/mamp_small --config.data.shards=runs/demo/shards

Tokens are temporal patches (4 frames × 1 joint); 90 % are dropped before the
encoder and a light decoder reconstructs them, so the encoder costs about a tenth
of the dual-stream model's per step. Variants: paper, small, smoke (as in
pretrain_gaitmae.py). Sweep: `python launch/sweep.py experiments/pretrain_mamp.py:small`.
"""

import ml_collections

from gait_jax import models
from gait_jax.train import config as train_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant, extras = train_config.parse_arg(arg, "small")
  c = train_config.base_config()
  c.model = models.get_model_config(f"mamp_{variant}")
  c.data.joints = "default26"
  if variant == "paper":
    c.data.crop_frames = 0
    c.data.batch_size = 32
    c.data.worker_count = 2
    c.model.dtype = extras.get("dtype", "auto")
    c.optim.lr = 1e-3
    c.optim.warmup_steps = 2000
    c.total_steps = 100_000
    c.log_every = 50
    c.figure_every = 5000
    c.checkpoint_every = 2000
  elif variant == "small":
    c.data.crop_frames = 96
    c.data.batch_size = 16
    c.optim.lr = 2e-3
    c.optim.warmup_steps = 10
    c.total_steps = 100
    c.figure_every = 50
    c.checkpoint_every = 50
  elif variant == "smoke":
    c.data.crop_frames = 32
    c.data.batch_size = 8
    c.data.read_threads = 1
    c.data.prefetch = 1
    c.optim.warmup_steps = 2
    c.total_steps = 6
    c.log_every = 1
    c.checkpoint_every = 2
  else:
    raise ValueError(f"unknown variant {variant!r}; expected paper, small or smoke")
  c.wandb.tags = ("mamp", variant)
  return c


def get_sweep() -> list[dict[str, object]]:
  """Masking ratio × patch length."""
  return [{"model.mask_ratio": r, "model.patch_frames": p}
          for r in (0.75, 0.9) for p in (2, 4)]
