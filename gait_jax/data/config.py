"""Defaults of the input pipeline (`gait_jax.data.pipeline.make_dataset`).

The same ConfigDict drives training (`train=True`) and evaluation / embedding
(`train=False`); fields marked "training only" are ignored in evaluation. The mesh
axes that the batch is sharded over are not part of it: they belong to the mesh,
and the trainer passes them to `pipeline.GlobalBatches`.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

SPLITS = ("train", "val", "test", "all")
CENTER_MODES = ("clip", "frame", "none")
SCALE_MODES = ("none", "height")
SAMPLERS = ("clips", "windows")


def get_data_config() -> ml_collections.ConfigDict:
  """Returns the data config with its defaults; see the comment on each field."""
  c = ml_collections.ConfigDict()

  # --- What to read -----------------------------------------------------------
  # Shard set directory (written by `data_tools.prepare`). Required.
  c.shards = config_dict.placeholder(str)
  # Task names to keep, e.g. ("walk",); () keeps every task.
  c.tasks = ()
  # Participant ids to keep: a tuple of ids, or a str naming a text file with one
  # id per line (blank lines and lines starting with "#" are skipped). () keeps
  # everyone. A str is always read as a path; give a single id as a 1-tuple.
  # Typed `object` so that the same field accepts a tuple or a path.
  c.participants = config_dict.FieldReference((), field_type=object)
  # Which participant split to read: "train", "val", "test" or "all". Splits are
  # by participant, never by clip, so no person is in two splits. A participant's
  # split is a function of sha256(split_seed, participant_id) alone: adding or
  # removing other participants never moves anyone.
  c.split = "train"
  # Expected fractions of participants in (train, val, test); must sum to 1.
  c.split_fractions = (0.8, 0.1, 0.1)
  c.split_seed = 0
  # At most this many clips per participant × task (the first in clip-id order,
  # i.e. from the start of the recording); 0 keeps all. Caps a long recording's
  # weight, or the cost of embedding a demo cohort.
  c.max_clips_per_group = 0

  # --- What an example looks like ---------------------------------------------
  # Joint set: a name from `skeleton.JOINT_SETS` ("default26" drops the six
  # unreliable hand joints; "all32") or a tuple of canonical joint names.
  c.joints = config_dict.FieldReference("default26", field_type=object)
  # Frames per example. 0 keeps the clip's full length (clips of one shard set
  # share a length). Training takes a uniformly random window, evaluation the
  # centred one. A clip shorter than crop_frames is an error.
  c.crop_frames = 0
  # Translation removed from the coordinates, using the pelvis (or, for a layout
  # without one, the mean of the present joints):
  #   "clip":  subtract the clip's mean pelvis position; the walk's progression
  #            within the clip is kept (the model sees the body travel);
  #   "frame": subtract the pelvis in every frame (the pelvis stays at 0);
  #   "none":  keep camera coordinates.
  c.center = "clip"
  # Body-size normalisation, about the clip's mean pelvis:
  #   "none":   keep metres;
  #   "height": divide by the clip's body size = median over frames of
  #             |PELVIS - SPINE_CHEST| + mean over sides of
  #             (|HIP - KNEE| + |KNEE - ANKLE|), about 0.9 m for an adult.
  #             These joints exist in every layout (Azure Kinect, Kinect v2, v1;
  #             v1 lacks NECK and HEAD is noisy, hence not pelvis-to-head); a clip
  #             lacking one is left unscaled. Computed on the whole clip before
  #             cropping, so every window of a clip gets the same factor.
  c.scale = "none"
  # Training only: maximum |angle| in degrees of a uniformly random rotation about
  # the vertical (y) axis through the clip's mean pelvis; 0 = off. Off by default:
  # in a fixed clinical set-up the walking direction relative to the camera is part
  # of the task; experiments that pool sensors or set-ups can ask for invariance.
  c.rotate_deg = 0.0
  # Training only: coordinates are multiplied by a factor drawn uniformly from
  # [1 - scale_jitter, 1 + scale_jitter] about the clip's mean pelvis; 0 = off.
  c.scale_jitter = 0.0

  # --- Order, batching, throughput --------------------------------------------
  # GLOBAL batch size, across all processes; each process reads
  # batch_size // process_count clips per batch. Must be divisible by the number
  # of processes and by the number of devices along the batch's mesh axes.
  c.batch_size = 32
  # Seeds the shuffle and every augmentation (together with the element index),
  # so a run and a run restored from a checkpoint see the same batches.
  c.seed = 0
  # Training only: what an epoch is (`pipeline` docstring): "clips" visits every
  # clip once; "windows" draws windows_per_group random clips of every
  # participant × task (tasks weigh the same; published: 2).
  c.sampler = "clips"
  c.windows_per_group = 2
  # Training only: reshuffle every epoch (a different order in each).
  c.shuffle = True
  # Training only: epochs to read; None repeats forever. Evaluation reads one.
  c.num_epochs = config_dict.placeholder(int)
  # Worker processes that decode and augment (0 = in the main process).
  c.worker_count = 0
  # Batches each worker process keeps ready.
  c.worker_buffer_size = 2
  # Threads (per process) that read and transform batches.
  c.read_threads = 4
  # Batches prefetched on the host (per process); 0 turns prefetching off.
  c.prefetch = 8
  return c
