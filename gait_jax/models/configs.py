"""Model presets: `get_model_config(preset)` → ConfigDict; `cfg.name` picks the model.

GaitMAE presets ("paper", "small", "smoke") and MAMP presets ("mamp_paper",
"mamp_small", "mamp_smoke"). The trainer overrides fields (dtype, remat, ...)
from its experiment file; every field is documented where it is set below.

  preset      depth width heads mlp  notes
  paper         8    128    8    2   the published GaitMAE (head dim 16)
  small         4     64    4    2   CPU runs over T=300 in minutes
  smoke         2     16    2    2   tests
  mamp_paper    8    256    8    4   decoder 3 × 128, patch 4, ratio 0.9, motion
  mamp_small    4     64    4    2   decoder 2 × 32
  mamp_smoke    1     16    2    2   decoder 1 × 16, patch 2
"""

from __future__ import annotations

import ml_collections

GAITMAE_PRESETS = ("paper", "small", "smoke")
MAMP_PRESETS = ("mamp_paper", "mamp_small", "mamp_smoke")
PRESETS = GAITMAE_PRESETS + MAMP_PRESETS


def _common(c: ml_collections.ConfigDict) -> None:
  # Compute dtype, "float32" or "bfloat16"; parameters, loss and metrics are
  # always float32.
  c.dtype = "float32"
  # Rematerialise every layer of the scanned stacks (jax.checkpoint): less
  # activation memory, ~1/3 more FLOPs.
  c.remat = False
  # Residual dropout after each attention and MLP, drawn from the loss rng
  # (training only).
  c.dropout = 0.0
  # jax.nn.dot_product_attention implementation: "" (cuDNN's fused kernel where it
  # applies: NVIDIA GPU, bf16, no mask; else XLA's), "xla" or "cudnn" (GPU only;
  # needs head dim a multiple of 8).
  c.attention_impl = ""
  # Most attention logits computed at once (0 = all in one pass). Larger
  # attentions run a few (sequence, head) pairs at a time under remat: memory
  # linear in batch size and a cache-sized working set, on backends without a
  # fused kernel (CPU, XLA on GPU). Ignored with attention_impl "cudnn".
  c.attention_block = 1 << 20


def _gaitmae(depth: int, width: int, heads: int, mlp_ratio: float) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "gaitmae"
  c.depth = depth
  c.width = width
  c.num_heads = heads
  c.mlp_ratio = mlp_ratio
  # Frame position: "rotary" (RoPE on the temporal attention's q/k; any T) or
  # "learned" ([num_frames, D] added to the tokens; T <= num_frames of build).
  c.temporal_pos = "rotary"
  # Learned sink frames prepended in time: every layer processes them with the
  # clip's frames (outside the rotary positions); dropped before the final norm.
  # 0 = none. The published model has 2 (898 frames + 2 = 900 time steps).
  c.num_sinks = 0
  # Input projection of each joint-frame's channels: "shared" (one for all
  # joints, published) or "per_joint" (each joint its own).
  c.embedding = "per_joint"
  # A fifth input channel flagging hidden joint-frames (besides zeroing them).
  # Published: no (x, y, z, confidence only).
  c.mask_channel = True
  # One more input channel: the length of each joint's bone to its parent in that
  # frame (metres; 0 where either end is hidden or unobserved, and for the root),
  # computed by the model from its input. Label-free geometry the tokens are
  # otherwise left to work out (a distance is not linear in the pose). Published: no.
  c.bone_channel = False
  # Width of the tanh pre-logits projection before the reconstruction head (the
  # published 32); 0 = the head reads the stream directly.
  c.pre_logits = 0
  _common(c)

  c.masking = ml_collections.ConfigDict()
  # Time is cut into spans of span_frames; in every span of every example
  # regions_hidden of the 6 regions (head, torso, arms, legs) are hidden.
  c.masking.span_frames = 16
  c.masking.regions_hidden = 4
  # Probability that a whole frame (every joint) is hidden, on top.
  c.masking.frame_ratio = 0.04
  # Probability that a single joint-frame is hidden, on top.
  c.masking.joint_ratio = 0.0
  # Std (metres) of Gaussian noise on the visible xyz, training only.
  c.masking.noise_std = 0.05
  # Regions hidden in every frame, also at encode time (ablations), e.g.
  # ("left_arm",). Names from masking.MASK_REGIONS.
  c.masking.always_hide = ()

  c.loss = ml_collections.ConfigDict()
  # λ of the velocity term (MPJPE of frame differences).
  c.loss.velocity_weight = 0.1
  # Count only hidden joint-frames (False: reconstruct everything, as published).
  c.loss.hidden_only = False
  # λ of the body-size term: each joint's token features averaged over the clip's
  # frames (what `embed` pools per joint) predict, through a linear head, the mean
  # length of the bone from that joint to its parent in the clip (metres, from the
  # unmasked input; L1). Label-free: it asks the pooled tokens to keep the
  # skeleton's absolute scale. 0 = off (published).
  c.loss.bone_weight = 0.0
  return c


def _mamp(depth: int, width: int, heads: int, mlp_ratio: float, decoder_depth: int,
          decoder_width: int, decoder_heads: int, patch_frames: int,
          motion_targets: bool) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "mamp"
  c.depth = depth
  c.width = width
  c.num_heads = heads
  c.mlp_ratio = mlp_ratio
  # Frames per token (one joint × patch_frames frames); T must be a multiple.
  c.patch_frames = patch_frames
  # Fraction of tokens hidden; the encoder sees round((1 - ratio) * N) tokens.
  c.mask_ratio = 0.9
  c.decoder_depth = decoder_depth
  c.decoder_width = decoder_width
  c.decoder_heads = decoder_heads
  # Reconstruct frame-to-frame motion x[t] - x[t-1] (MAMP) instead of positions.
  c.motion_targets = motion_targets
  # Std (metres) of Gaussian noise on the input xyz, training only.
  c.noise_std = 0.0
  _common(c)

  c.loss = ml_collections.ConfigDict()
  # λ of the velocity term; the loss counts hidden tokens only (MAE style).
  c.loss.velocity_weight = 0.1
  return c


def get_model_config(preset: str = "paper") -> ml_collections.ConfigDict:
  """The ConfigDict of a preset (see the module docstring for the table)."""
  if preset == "paper":
    return _gaitmae(depth=8, width=128, heads=8, mlp_ratio=2)
  if preset == "small":
    return _gaitmae(depth=4, width=64, heads=4, mlp_ratio=2)
  if preset == "smoke":
    return _gaitmae(depth=2, width=16, heads=2, mlp_ratio=2)
  if preset == "mamp_paper":
    return _mamp(depth=8, width=256, heads=8, mlp_ratio=4, decoder_depth=3,
                 decoder_width=128, decoder_heads=4, patch_frames=4,
                 motion_targets=True)
  if preset == "mamp_small":
    return _mamp(depth=4, width=64, heads=4, mlp_ratio=2, decoder_depth=2,
                 decoder_width=32, decoder_heads=2, patch_frames=4,
                 motion_targets=True)
  if preset == "mamp_smoke":
    return _mamp(depth=1, width=16, heads=2, mlp_ratio=2, decoder_depth=1,
                 decoder_width=16, decoder_heads=2, patch_frames=2,
                 motion_targets=False)
  raise ValueError(f"unknown model preset {preset!r}; expected one of {PRESETS}")
