r"""Pretrain a MAMP-style masked autoencoder: the encoder sees only visible tokens.

  python -m gait_jax.main --config experiments/pretrain_mamp.py:small \
      --workdir runs/mamp_small --config.data.shards=runs/demo/shards

Tokens are temporal patches (4 frames × 1 joint); 90 % are dropped before the
encoder and a light decoder reconstructs them, so the encoder costs about a tenth
of the dual-stream model's per step. Variants: paper, small, smoke (as in
pretrain_gaitmae.py). Sweep: `python launch/sweep.py experiments/pretrain_mamp.py:small`.
"""

import ml_collections

from gait_jax import configs
from gait_jax.train import config as train_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant, _ = configs.parse_variant(arg, ("paper", "small", "smoke"), "small")
  c = train_config.get_config(variant, model=f"mamp_{variant}")
  if variant == "paper":
    c.data.batch_size = 32
  elif variant == "small":
    c.data.crop_frames = 96  # a multiple of the 4-frame patches
    c.data.batch_size = 16
  c.wandb.tags = ("mamp", variant)
  return c

def get_sweep() -> list[dict[str, object]]:
  """Masking ratio × patch length."""
  return [{"model.mask_ratio": r, "model.patch_frames": p}
          for r in (0.75, 0.9) for p in (2, 4)]
