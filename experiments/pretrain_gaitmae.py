r"""Pretrain the dual-stream spatiotemporal masked autoencoder (the published design).

  python -m gait_jax.main --config experiments/pretrain_gaitmae.py:small \
      --workdir runs/pretrain_small --config.data.shards=runs/demo/shards

Variants (the argument after ":"):
  paper       the published recipe, setting for setting: depth 8, width 128, 8 heads,
              MLP ratio 2, 26 joints, 898-frame windows + 2 sink frames, 2 windows
              per participant × task per epoch, batch 8, 32 epochs, AdamW 8e-4
              (`train.config.published_recipe`); rematerialised blocks, bf16 compute
              on GPU/TPU.
  paper_plus  the published recipe with this project's changes
              (`train.config.PLUS_CHANGES`, the README's table).
  small       a CPU-sized model over 3 s crops; about 4 minutes on 2 cores.
  smoke       a tiny model for tests: a handful of steps over 32-frame crops.
Every field is in gait_jax/train/config.py and gait_jax/models/configs.py; override
any on the command line, e.g. --config.model.dtype=float32.
Sweeps: `python launch/sweep.py experiments/pretrain_gaitmae.py:small --root runs/sweep
[--sweep regions]` (see get_sweep).
"""

import ml_collections

from gait_jax import configs
from gait_jax.embedding import pooling
from gait_jax.train import config as train_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant, _ = configs.parse_variant(arg, train_config.VARIANTS, "small")
  c = train_config.get_config(variant, model="paper" if variant == "paper_plus" else variant)
  c.wandb.tags = ("gaitmae", variant)
  return c

def get_sweep(name: str = "masking") -> list[dict[str, object]]:
  """Sweeps (`launch/sweep.py ... --sweep NAME`):
    masking  masking difficulty × depth
    regions  the training-time body-region ablation: one encoder per region that never
             sees it (`model.masking.always_hide`, also hidden at inference), and one
             that sees everything; `experiments/ablation.py --config.trained=...`
             embeds and probes them beside the inference-time ablation.
  """
  if name == "masking":
    return [{"model.masking.regions_hidden": k, "model.depth": depth}
            for k in (3, 4, 5) for depth in (2, 4)]
  if name == "regions":
    return [{"model.masking.always_hide": parts} for _, parts in
            ((None, ()),) + pooling.DEFAULT_REGIONS]
  raise ValueError(f"unknown sweep {name!r}; expected 'masking' or 'regions'")
