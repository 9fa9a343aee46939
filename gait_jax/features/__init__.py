"""Engineered gait features: the baseline the learned embeddings are compared to.

  kinematics     gap filling, filtering, body axes, sagittal angles, trunk inclination
  events         heel strikes and toe-offs (walking), foot lifts (stepping in place)
  gait           walking and stepping-in-place features from the events
  balance        Romberg sway, sit-to-stand repetitions and timing
  anthropometry  body size: segment lengths and widths (every task)
  extract        one clip → its task family's features and body size (never raises
                 for bad input)
  config         the job's config block and the extractor's options
  job            shards → features.parquet per participant × task (the `features` job)
"""

from gait_jax.features.extract import FAMILIES, FEATURES, clip_features, family_of

__all__ = ["FAMILIES", "FEATURES", "clip_features", "family_of"]
