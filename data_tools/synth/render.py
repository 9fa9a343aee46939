"""One participant's five recordings: kinematics → camera → tracker → files
(npz, or Azure Kinect Body Tracking JSON via k4abt.py).

Each (participant, task) draws from its own generator,
`np.random.default_rng([seed, index, STREAM_MOTION, task_number + 1])`, so a recording does not
depend on which other recordings are made, in which process, or in which order.
Archives are written with fixed zip timestamps, so the same seed gives the same
bytes.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from collections.abc import Callable, Mapping

import numpy as np

from data_tools.synth import body as body_lib
from data_tools.synth import k4abt, sensor, stationary, walking
from data_tools.synth.people import STREAM_MOTION, participant_id

FPS = 30.0
LAYOUT = "azure_kinect"
SESSION = "0"
# Recording file formats: --format name → file extension.
FORMATS: dict[str, str] = {"npz": ".npz", "k4abt_json": ".json"}

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


@dataclasses.dataclass(frozen=True)
class Take:
  """One recording as the simulation made it, before it is written.

  Attributes:
    camera: the camera's pose.
    world: f64[T, 32, 3] true positions, metres, world frame (camera at the
      origin, level; see walking.py), for all T frames before any are lost.
    positions: f32[T', 32, 3] tracker output, metres, camera frame, NaN where
      dropped; T' = the frames that arrived.
    confidence: f32[T', 32] in [0, 1], 0 exactly where dropped.
    estimate: f32[T', 32, 3] the tracker's estimate before dropout (= positions
      where kept).
    keep: int64[T'] indices into the T frames of those that arrived.
    timestamps: f64[T'] seconds when the file carries device timestamps, else
      None (nominal FPS).
  """
  camera: sensor.Camera
  world: np.ndarray
  positions: np.ndarray
  confidence: np.ndarray
  estimate: np.ndarray
  keep: np.ndarray
  timestamps: np.ndarray | None


def simulate(seed: int, index: int, task: str, motor: Mapping[str, float],
             body: body_lib.Body, num_frames: int) -> Take:
  """Kinematics → camera → tracker → frame timing for one recording.

  Args:
    seed, index: the cohort seed and the participant's index.
    task: a TASKS key.
    motor: the participant's motor parameters (motor.PARAMS → float).
    body: their skeleton geometry.
    num_frames: T at 30 frames/s before any dropped frames.
  """
  rng = np.random.default_rng([seed, index, STREAM_MOTION, list(TASKS).index(task) + 1])
  camera = sensor.random_camera(rng)
  world = TASKS[task](rng, motor, body, num_frames, FPS, camera.height)
  positions, confidence, estimate = sensor.observe(rng, sensor.to_camera(world, camera), FPS)
  keep, timestamps = sensor.frame_times(rng, num_frames, FPS)
  return Take(camera=camera, world=world, positions=positions[keep],
              confidence=confidence[keep], estimate=estimate[keep], keep=keep,
              timestamps=timestamps)


def npz_arrays(take: Take, index: int, task: str) -> dict[str, np.ndarray]:
  """A Take's npz arrays (see data_tools.readers.npz for the keys).

  Returns:
    positions f32[T', 32, 3] metres (canonical frame, NaN where dropped),
    confidence f32[T', 32], `fps` (f64) or `timestamps` f64[T'] seconds, and the
    strings layout, participant_id, task, session.
  """
  out = {"positions": take.positions, "confidence": take.confidence}
  if take.timestamps is None:
    out["fps"] = np.float64(FPS)
  else:
    out["timestamps"] = take.timestamps
  out.update(layout=np.str_(LAYOUT), participant_id=np.str_(participant_id(index)),
             task=np.str_(task), session=np.str_(SESSION))
  return out


def recording(seed: int, index: int, task: str, motor: Mapping[str, float],
              body: body_lib.Body, num_frames: int) -> dict[str, np.ndarray]:
  """One recording's npz arrays: `npz_arrays(simulate(...))`."""
  return npz_arrays(simulate(seed, index, task, motor, body, num_frames), index, task)


def participant(seed: int, index: int, motor: Mapping[str, float], num_frames: int,
                out_dir: str | None, fmt: str = "npz") -> dict:
  """Renders (and writes, unless out_dir is None) one participant's recordings.

  Args:
    fmt: "npz" (<pid>_<task>.npz) or "k4abt_json" (<pid>_<task>.json, Azure
      Kinect Body Tracking JSON with bystanders and id switches; see k4abt.py).

  Returns:
    counts for the summary: recordings, frames, bytes, dropped joint-frames,
    files with timestamps; for k4abt_json also `rows`, one dict per recording
    for recordings.csv (k4abt.Events fields).
  """
  if fmt not in FORMATS:
    raise ValueError(f"unknown format {fmt!r}; known: {FORMATS}")
  body = body_lib.make_body(motor)
  stats = dict(recordings=0, frames=0, bytes=0, dropped=0, joint_frames=0, timestamped=0)
  rows = []
  for task in TASKS:
    take = simulate(seed, index, task, motor, body, num_frames)
    stem = os.path.join(out_dir or "", f"{participant_id(index)}_{task}")
    if fmt == "npz":
      if out_dir is not None:
        stats["bytes"] += write_npz(stem + ".npz", npz_arrays(take, index, task))
    else:
      text, events = k4abt.render(seed, index, task, list(TASKS).index(task), take, FPS)
      rows.append(dataclasses.asdict(events))
      if out_dir is not None:
        stats["bytes"] += k4abt.write(stem + ".json", text)
    conf = take.confidence
    stats["recordings"] += 1
    stats["frames"] += conf.shape[0]
    stats["dropped"] += int((conf == 0).sum())
    stats["joint_frames"] += conf.size
    stats["timestamped"] += int(take.timestamps is not None)
  if fmt != "npz":
    stats["rows"] = rows
  return stats
