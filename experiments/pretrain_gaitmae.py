r"""Pretrain the dual-stream spatiotemporal masked autoencoder (the published design).

  python -m gait_jax.main --config experiments/pretrain_gaitmae.py:small \
      --workdir runs/pretrain_small --config.data.shards=runs/demo/shards

Variants (the argument after ":"):
  paper  depth 8, width 128, 8 heads, MLP ratio 2, full 900-frame clips (30 s),
         26 joints, batch 8, rematerialised blocks, bf16 compute on GPU/TPU.
  small  a CPU-sized model over 3 s crops; about 4 minutes on 2 cores.
  smoke  a tiny model for tests: a handful of steps over 32-frame crops.
Append ",key=value" for variant options, e.g. ":paper,dtype=float32".
Sweeps: `python launch/sweep.py experiments/pretrain_gaitmae.py:small --root runs/sweep`.
"""

import ml_collections

from gait_jax import models
from gait_jax.train import config as train_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant, extras = train_config.parse_arg(arg, "small")
  c = train_config.base_config()
  c.model = models.get_model_config(variant)
  c.data.joints = "default26"
  c.data.center = "clip"
  if variant == "paper":
    c.data.crop_frames = 0  # the prepared 900-frame clips
    c.data.batch_size = 8
    c.data.worker_count = 2
    c.model.remat = True
    # "auto": bf16 compute on GPU/TPU, f32 on CPU (resolved by the trainer, after
    # the distributed runtime is up).
    c.model.dtype = extras.get("dtype", "auto")
    c.optim.lr = 5e-4
    c.optim.warmup_steps = 2000
    c.total_steps = 100_000
    c.log_every = 50
    c.figure_every = 5000
    c.checkpoint_every = 2000
  elif variant == "small":
    c.data.crop_frames = 90
    c.data.batch_size = 8
    c.optim.lr = 2e-3
    c.optim.warmup_steps = 10
    c.total_steps = 100
    c.log_every = 10
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
  c.wandb.tags = ("gaitmae", variant)
  return c


def get_sweep() -> list[dict[str, object]]:
  """Masking difficulty × depth × an always-hidden region (body-region ablation)."""
  return [{"model.masking.regions_hidden": k, "model.depth": depth,
           "model.masking.always_hide": hide}
          for k in (3, 4, 5) for depth in (2, 4)
          for hide in ((), ("left_leg", "right_leg"))]
