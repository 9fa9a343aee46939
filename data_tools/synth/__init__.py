"""The synthetic cohort: a kinematic gait model with planted health structure.

    from data_tools import synth
    summary = synth.generate("runs/cohort", participants=100, seed=0)

or `python -m data_tools.synth --out DIR --participants N`. Writes
DIR/recordings/<participant_id>_<task>.npz (the neutral npz format, azure_kinect
layout, 30 fps), phenotypes.parquet, dictionary.csv, truth.json and
latents.parquet.

With `format="k4abt_json"` (`--format k4abt_json`) the recordings are instead
DIR/recordings/<participant_id>_<task>.json as Azure Kinect Body Tracking's
offline_processor writes them (read by data_tools.readers.k4abt_json): the same
participant numbers as the npz for the seed, in millimetres (0.1 mm), device
timestamps in microseconds, no NaN (dropped joints are predicted, level NONE),
confidence levels NONE/LOW/MEDIUM (c < 0.2 / < 0.5 / >= 0.5), identity joint
orientations, plus what real files have: a bystander in ~10 % of recordings, a
tracker id switch in ~3 %, rare frames without any body, bodies not always
listed participant first. DIR/recordings.csv lists every recording's events
(k4abt.Events) and truth.json gains `recording_format` and `k4abt`. An npz
cohort's files are unchanged by this option's existence. Modules, one concern
each:

  people      covariates and latent factors per participant
  motor       the planted links from traits to motion parameters
  body        segment geometry (Winter's proportions) and forward kinematics
  posture     trunk, head and arms
  walking     treadmill, self-selected walk, walk in place
  stationary  sit-to-stand, Romberg
  sensor      camera pose, tracker noise, confidence, dropouts, timestamps
  render      one participant's recordings → npz (or k4abt JSON)
  k4abt       Azure Kinect Body Tracking JSON: bystanders, id switches, levels
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
