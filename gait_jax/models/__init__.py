"""Gait models: presets and one constructor for every architecture.

  cfg = models.get_model_config("paper")       # or "small", "smoke", "mamp_paper", ...
  model = models.build(cfg, joints, num_frames, rngs=nnx.Rngs(params=0))
  loss, metrics = model.loss(batch, rng, train=True)
  out = model.reconstruct(batch, rng)           # target, reconstruction, hidden
  feats = model.encode(skeleton, joint_present, layer=-1)

Both architectures implement `GaitModel` (models/base.py). The model's state
holds parameters only (nnx.Param, float32, with logical axis names); all
randomness of `loss` and `reconstruct` comes from their `rng`.
"""

from __future__ import annotations

from collections.abc import Sequence

import ml_collections
from flax import nnx

from gait_jax.models.base import GaitModel
from gait_jax.models.configs import PRESETS, get_model_config
from gait_jax.models.gaitmae import GaitMAE
from gait_jax.models.mamp import Mamp

__all__ = ["PRESETS", "GaitMAE", "GaitModel", "Mamp", "build", "get_model_config"]

ARCHITECTURES = {"gaitmae": GaitMAE, "mamp": Mamp}


def build(cfg: ml_collections.ConfigDict, joints: Sequence[str], num_frames: int, *,
          rngs: nnx.Rngs) -> GaitModel:
  """The model `cfg.name` names, for joint set `joints` and clips of num_frames.

  Args:
    cfg: a config from `get_model_config` (possibly overridden).
    joints: canonical joint names of the selected joint set, in batch order.
    num_frames: T of the training clips (size of learned temporal embeddings; the
      maximum T the model accepts where those are used).
    rngs: initialisation keys (the "params" stream, or a default key).
  """
  if cfg.name not in ARCHITECTURES:
    raise ValueError(f"unknown model {cfg.name!r}; expected one of {sorted(ARCHITECTURES)}")
  if cfg.dtype not in ("float32", "bfloat16"):
    raise ValueError(f"dtype={cfg.dtype!r}; expected float32 or bfloat16")
  return ARCHITECTURES[cfg.name](cfg, joints, num_frames, rngs=rngs)
