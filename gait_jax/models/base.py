"""`GaitModel`: what the trainer, the figures and the embedding job call on a model.

Shapes: B clips, T frames, J joints (the model's joint set, in batch order), D
the encoder width, T' tokens per joint along time (T for GaitMAE, T / patch_frames
for MAMP). A batch is the pipeline's dict: "skeleton" f32[B, T, J, 4] (x, y, z
metres, confidence), "joint_present" f32[B, J], "valid" bool[B].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import jax


@runtime_checkable
class GaitModel(Protocol):
  """A masked-reconstruction model of joint trajectories (GaitMAE, Mamp)."""

  joints: tuple[str, ...]  # canonical joint names, in batch order
  num_frames: int  # T of the training clips
  depth: int  # encoder layers; `layer` of encode/features indexes them

  def loss(self, batch: Mapping[str, jax.Array], rng: jax.Array, *, train: bool = True
           ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Masks with `rng`, reconstructs; (loss f32[], metrics of f32[]) with metrics
    loss, position, velocity and hidden_fraction. Noise and dropout only when
    `train`."""
    ...

  def reconstruct(self, batch: Mapping[str, jax.Array], rng: jax.Array
                  ) -> dict[str, jax.Array]:
    """Evaluation-mode masked reconstruction: "target" and "reconstruction"
    f32[B, T, J, 3], "hidden" bool[B, T, J]."""
    ...

  def features(self, skeleton: jax.Array, *, layer: int = -1,
               hide_regions: Sequence[str] | None = None,
               hidden: jax.Array | None = None) -> jax.Array:
    """Per-token features [B, T', J, D] in the compute dtype, without random
    masking, of a cleaned skeleton f32[B, T, J, 4] (joint-frames that do not
    count already zero; `losses.clean_inputs`).

    `layer` picks the encoder layer (Python indexing); the last one's output is
    after the encoder's final LayerNorm. Regions in `hide_regions` (names from
    `masking.MASK_REGIONS`) are hidden from the encoder in every frame; `hidden`
    bool[B, T, J] hides joint-frames per example on top (one forward pass over
    examples that each hide something else, e.g. a stack of ablations).
    """
    ...

  def encode(self, skeleton: jax.Array, joint_present: jax.Array, *, layer: int = -1,
             hide_regions: Sequence[str] | None = None,
             hidden: jax.Array | None = None) -> jax.Array:
    """`features` of a raw clip (skeleton f32[B, T, J, 4], joint_present f32[B, J]),
    as f32[B, T', J, D]: what the embedding job pools."""
    ...
