"""One participant's five recordings: kinematics → camera → tracker → npz files.

Each (participant, task) draws from its own generator,
`np.random.default_rng([seed, index, STREAM_MOTION, task_number + 1])`, so a recording does not
depend on which other recordings are made, in which process, or in which order.
Archives are written with fixed zip timestamps, so the same seed gives the same
bytes.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Mapping

import numpy as np

from data_tools.synth import body as body_lib
from data_tools.synth import sensor, stationary, walking
from data_tools.synth.people import STREAM_MOTION, participant_id

FPS = 30.0
LAYOUT = "azure_kinect"
SESSION = "0"

Task = Callable[[np.random.Generator, Mapping[str, float], body_lib.Body, int, float,
                 float], np.ndarray]
# The protocol's five tasks, in recording order; the order numbers the streams.
TASKS: dict[str, Task] = {
    "treadmill": walking.treadmill,
    "self_selected_walk": walking.self_selected_walk,
    "walk_in_place": walking.walk_in_place,
    "sit_to_stand": stationary.sit_to_stand,
    "romberg_eyes_closed": stationary.romberg,
}

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def write_npz(path: str, arrays: Mapping[str, np.ndarray]) -> int:
  """np.savez-compatible, uncompressed, byte-reproducible archive; returns bytes.

  np.savez stamps each member with the current time; this fixes the stamp.
  Written to a temporary name and renamed, so a reader never sees half a file.
  """
  tmp = f"{path}.tmp{os.getpid()}"
  with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
    for key, value in arrays.items():
      info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
      info.external_attr = 0o644 << 16
      with zf.open(info, "w", force_zip64=True) as f:
        np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)
  os.replace(tmp, path)
  return os.path.getsize(path)


def recording(seed: int, index: int, task: str, motor: Mapping[str, float],
              body: body_lib.Body, num_frames: int) -> dict[str, np.ndarray]:
  """One recording's npz arrays (see data_tools.readers.npz for the keys).

  Args:
    seed, index: the cohort seed and the participant's index.
    task: a TASKS key.
    motor: the participant's motor parameters (motor.PARAMS → float).
    body: their skeleton geometry.
    num_frames: T at 30 frames/s before any dropped frames.

  Returns:
    positions f32[T', 32, 3] metres (canonical frame, NaN where dropped),
    confidence f32[T', 32], `fps` (f64) or `timestamps` f64[T'] seconds, and the
    strings layout, participant_id, task, session.
  """
  rng = np.random.default_rng([seed, index, STREAM_MOTION, list(TASKS).index(task) + 1])
  camera = sensor.random_camera(rng)
  world = TASKS[task](rng, motor, body, num_frames, FPS, camera.height)
  positions, confidence = sensor.observe(rng, sensor.to_camera(world, camera), FPS)
  keep, timestamps = sensor.frame_times(rng, num_frames, FPS)
  out = {"positions": positions[keep], "confidence": confidence[keep]}
  if timestamps is None:
    out["fps"] = np.float64(FPS)
  else:
    out["timestamps"] = timestamps
  out.update(layout=np.str_(LAYOUT), participant_id=np.str_(participant_id(index)),
             task=np.str_(task), session=np.str_(SESSION))
  return out


def participant(seed: int, index: int, motor: Mapping[str, float], num_frames: int,
                out_dir: str | None) -> dict[str, float]:
  """Renders (and writes, unless out_dir is None) one participant's recordings.

  Returns:
    counts for the summary: recordings, frames, bytes, dropped joint-frames,
    files with timestamps.
  """
  body = body_lib.make_body(motor)
  stats = dict(recordings=0, frames=0, bytes=0, dropped=0, joint_frames=0, timestamped=0)
  for task in TASKS:
    arrays = recording(seed, index, task, motor, body, num_frames)
    if out_dir is not None:
      path = os.path.join(out_dir, f"{participant_id(index)}_{task}.npz")
      stats["bytes"] += write_npz(path, arrays)
    conf = arrays["confidence"]
    stats["recordings"] += 1
    stats["frames"] += conf.shape[0]
    stats["dropped"] += int((conf == 0).sum())
    stats["joint_frames"] += conf.size
    stats["timestamped"] += int("timestamps" in arrays)
  return stats
