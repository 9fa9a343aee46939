"""The synthetic cohort: a kinematic gait model with planted health structure.

    from data_tools import synth
    summary = synth.generate("runs/cohort", participants=100, seed=0)

or `python -m data_tools.synth --out DIR --participants N`. Writes
DIR/recordings/<participant_id>_<task>.npz (the neutral npz format, azure_kinect
layout, 30 fps), phenotypes.parquet, dictionary.csv, truth.json and
latents.parquet. Modules, one concern each:

  people      covariates and latent factors per participant
  motor       the planted links from traits to motion parameters
  body        segment geometry (Winter's proportions) and forward kinematics
  posture     trunk, head and arms
  walking     treadmill, self-selected walk, walk in place
  stationary  sit-to-stand, Romberg
  sensor      camera pose, tracker noise, confidence, dropouts, timestamps
  render      one participant's recordings → npz
  catalogue   18 body systems and the named targets
  phenotypes  target design, values, dictionary, truth
  cohort      the whole cohort, streamed over worker processes
"""

from data_tools.synth.cohort import VERSION, generate
from data_tools.synth.people import COVARIATES, FACTOR_NAMES, participant_id
from data_tools.synth.phenotypes import CATEGORIES
from data_tools.synth.render import FPS, TASKS

__all__ = ["CATEGORIES", "COVARIATES", "FACTOR_NAMES", "FPS", "TASKS", "VERSION",
           "generate", "participant_id"]
