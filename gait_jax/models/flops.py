"""Model FLOPs per example, counted from the architecture (for MFU and benchmarks).

XLA's cost analysis counts a loop body once, and the models scan over their
layers and map attention over (sequence, head) pairs, so the trainer counts
matmul FLOPs here instead. The count is the usual "model FLOPs": multiply-adds of the
dense layers and attention (2 per multiply-add), forward only; a training step
costs 3× (backward = 2× forward), and rematerialisation's recomputation is not
counted (hardware FLOPs would be higher), as in MFU conventions.
"""

from __future__ import annotations

import ml_collections

from gait_jax.models import masking


def _block(tokens: int, keys: int, width: int, mlp_ratio: float) -> float:
  """One pre-norm transformer block over `tokens` tokens, each attending to `keys`."""
  hidden = int(round(width * mlp_ratio))
  dense = 2 * tokens * width * (4 * width + 2 * hidden)  # qkv + out + 2 MLP matmuls
  attention = 4 * tokens * keys * width  # q·k and weights·v over all heads
  return float(dense + attention)


def forward_flops(cfg: ml_collections.ConfigDict, num_joints: int, num_frames: int
                  ) -> float:
  """Forward-pass FLOPs for one example of num_frames × num_joints."""
  d, r = int(cfg.width), float(cfg.mlp_ratio)
  if cfg.name == "gaitmae":
    sinks = int(cfg.num_sinks)
    out = num_frames * num_joints
    n = (num_frames + sinks) * num_joints  # the sink frames go through every layer
    layer = (2 * _block(n, num_joints, d, r) + 2 * _block(n, num_frames + sinks, d, r)
             + 2 * n * 2 * d * 2)  # the fusion weights
    channels = 4 + bool(cfg.mask_channel) + bool(cfg.bone_channel)
    p_dim = int(cfg.pre_logits)
    head = 2 * out * (d * p_dim + p_dim * 3) if p_dim else 2 * out * d * 3
    return float(2 * out * channels * d + int(cfg.depth) * layer + head)
  if cfg.name == "mamp":
    p = int(cfg.patch_frames)
    n = num_frames // p * num_joints
    k = masking.num_visible(n, float(cfg.mask_ratio))
    dd = int(cfg.decoder_width)
    return float(2 * n * p * 4 * d + int(cfg.depth) * _block(k, k, d, r) + 2 * k * d * dd
                 + int(cfg.decoder_depth) * _block(n, n, dd, r) + 2 * n * dd * 3 * p)
  raise ValueError(f"unknown model {cfg.name!r}")


def train_flops(cfg: ml_collections.ConfigDict, num_joints: int, num_frames: int,
                batch_size: int) -> float:
  """Model FLOPs of one training step (forward + backward) over a batch."""
  return 3.0 * batch_size * forward_flops(cfg, num_joints, num_frames)
