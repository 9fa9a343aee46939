"""One masked reconstruction from a pretraining checkpoint, as a tidy table.

Restores the latest checkpoint of a pretraining workdir onto one device
(`state.load_encoder`), takes one clip of a shard set through the run's own
evaluation transforms (centre crop to the training length, no augmentation) and
calls the model's `reconstruct` (evaluation mode, a fixed masking seed). Imported
only when the report draws this figure: it needs JAX and the model code.
"""

from __future__ import annotations

import dataclasses
import pathlib

import jax
import numpy as np
import pandas as pd

from gait_jax import sharding
from gait_jax.data import pipeline, transforms
from gait_jax.data import shards as shards_lib
from gait_jax.train import state as state_lib

# Tasks whose clips make the clearest example, in order of preference.
PREFERRED_TASKS = ("self_selected_walk", "treadmill", "walk")


def pick_clip(manifest: pd.DataFrame) -> int:
  """The clip to show: the first clip of the first preferred task present, else clip 0."""
  for task in PREFERRED_TASKS:
    rows = manifest[manifest["task"].astype(str).str.contains(task)]
    if not rows.empty:
      return int(rows["clip_id"].iloc[0])
  return int(manifest["clip_id"].iloc[0])


def load_batch(shards_dir: pathlib.Path, clip_id: int, data_config, num_frames: int
               ) -> dict[str, np.ndarray]:
  """One clip as a model batch of 1 (skeleton f32[1, T, J, 4], joint_present f32[1, J],
  valid bool[1]), through the run's evaluation transforms, cropped to `num_frames`."""
  _, paths = shards_lib.open_shard_set(shards_dir)
  record = pipeline.ClipSource(paths, np.array([clip_id]))[0]["record"]
  opts = dataclasses.replace(transforms.TransformOptions.from_config(data_config),
                             crop_frames=num_frames)
  example = transforms.transform_example(transforms.decode_example(record, clip_id), opts)
  return {k: np.asarray(example[k])[None] for k in ("skeleton", "joint_present", "valid")}


def reconstruction_table(pretrain_dir: pathlib.Path, shards_dir: pathlib.Path,
                         seed: int = 0) -> tuple[pd.DataFrame, int]:
  """(tidy table, clip id) of one reconstruction.

  Returns:
    columns frame, joint, x, y, z (metres, canonical frame), source ("input": the
    truth with hidden joint-frames NaN; "prediction"; "truth"), hidden (bool).
  """
  config = state_lib.load_pretrain_config(str(pretrain_dir))
  axes = tuple((str(a), 1) for a, _ in config.mesh.axes)
  mesh = sharding.make_mesh(axes, config.mesh.axis_type, devices=jax.devices()[:1])
  encoder = state_lib.load_encoder(str(pretrain_dir), mesh, "float32")
  manifest, _ = shards_lib.open_shard_set(shards_dir)
  clip_id = pick_clip(manifest)
  num_frames = state_lib.train_frames(encoder.config)
  batch = load_batch(pathlib.Path(shards_dir), clip_id, encoder.config.data, num_frames)
  rules = tuple(tuple(r) for r in encoder.config.sharding_rules)
  with sharding.use_rules(mesh, rules):
    out = jax.jit(lambda p, b, r: encoder.model_def.merge(p).reconstruct(b, r))(
        encoder.params, batch, jax.random.key(seed))
  out = jax.device_get(out)
  truth = np.asarray(out["target"][0], np.float64)
  prediction = np.asarray(out["reconstruction"][0], np.float64)
  hidden = np.asarray(out["hidden"][0], bool)
  shown = np.where(hidden[..., None], np.nan, truth)
  t, j = hidden.shape
  frames = []
  for source, xyz in (("input", shown), ("prediction", prediction), ("truth", truth)):
    frames.append(pd.DataFrame({
        "frame": np.repeat(np.arange(t), j), "joint": np.tile(encoder.joints, t),
        "x": xyz[..., 0].ravel(), "y": xyz[..., 1].ravel(), "z": xyz[..., 2].ravel(),
        "source": source, "hidden": hidden.ravel()}))
  return pd.concat(frames, ignore_index=True), clip_id
