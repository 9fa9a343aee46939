"""Azure Kinect recordings (`.mkv`) through pyk4a playback and body tracking.

This needs Microsoft's native Azure Kinect Sensor SDK and Body Tracking SDK, which
no package registry carries, and a pyk4a built with body tracking. Released pyk4a
has no body tracker: it lives on the body-tracking branch (etiennedub/pyk4a pull
request 39), which exposes `PyK4ACapture.body_skeleton`. This reader is written
against that interface and is best-effort: it has not been run against a real
recording here. The dependable route is Microsoft's `offline_processor` (MKV →
JSON) and `--format k4abt_json`, which shares this reader's body following.
"""

from __future__ import annotations

import numpy as np

from data_tools.readers import MissingDependency, ReadOptions
from data_tools.readers.k4abt_json import TrackedBody, tracked_recording
from data_tools.recording import Excluded, Recording
from gait_jax import skeleton

FORMAT = "mkv"
EXTENSIONS = (".mkv",)

INSTALL_HELP = (
    "Reading Azure Kinect .mkv recordings needs pyk4a with body tracking: "
    "`pip install 'gait_jax[kinect]'` plus Microsoft's Azure Kinect Sensor SDK 1.4 "
    "and Body Tracking SDK 1.1 (native libraries, see "
    "https://learn.microsoft.com/azure/kinect-dk/ ). Simpler: run Microsoft's "
    "offline_processor (Azure-Kinect-Samples/body-tracking-samples) on each .mkv "
    "to get a JSON file, then prepare those with `--format k4abt_json`.")


def require_pyk4a():
  """The pyk4a module, if it is installed with its native SDKs and a body tracker.

  Raises:
    MissingDependency: with what to install (and the k4abt_json alternative).
  """
  try:
    import pyk4a  # pylint: disable=import-outside-toplevel
  except (ImportError, OSError) as e:
    # OSError: pyk4a is installed but the native k4a/k4abt libraries are not.
    raise MissingDependency(f"{INSTALL_HELP} (import pyk4a failed: {e})") from e
  capture_cls = getattr(pyk4a, "PyK4ACapture", None)
  if capture_cls is None or not hasattr(capture_cls, "body_skeleton"):
    version = getattr(pyk4a, "__version__", "unknown version")
    raise MissingDependency(
        f"the installed pyk4a ({version}) has no body tracker (no "
        f"PyK4ACapture.body_skeleton); released pyk4a does not include one. {INSTALL_HELP}")
  return pyk4a


def check_available() -> None:
  """The registry's dependency check: raises MissingDependency without pyk4a."""
  require_pyk4a()


def _bodies(capture) -> list[TrackedBody]:
  """The tracked bodies of one capture, positions converted from mm to metres."""
  skeletons = capture.body_skeleton
  if skeletons is None:
    return []
  skeletons = np.asarray(skeletons, np.float64)
  if skeletons.size == 0:
    return []
  if skeletons.ndim != 3 or skeletons.shape[1] != skeleton.NUM_JOINTS:
    raise Excluded("wrong_joint_count", f"body tracker returned skeletons of shape "
                   f"{list(skeletons.shape)}, expected [bodies, 32, >=3]")
  # Without tracker ids every body gets id 0 and follow_one_body falls back to the
  # body nearest the previous pelvis.
  ids = getattr(capture, "body_ids", None)
  ids = [0] * len(skeletons) if ids is None else [int(i) for i in ids]
  bodies = []
  for body_id, joints in zip(ids, skeletons):
    positions = (joints[:, :3] / 1000.0).astype(np.float32)
    present = np.isfinite(positions).all(axis=-1)
    positions[~present] = np.nan
    # k4abt_joint_t is position(3), orientation(4), confidence level (0..3).
    if joints.shape[1] >= 8:
      confidence = np.clip(joints[:, 7] / 3.0, 0.0, 1.0).astype(np.float32)
    else:
      confidence = np.ones(skeleton.NUM_JOINTS, np.float32)
    confidence[~present] = 0.0
    bodies.append(TrackedBody(body_id=body_id, positions=positions, confidence=confidence))
  return bodies


def read(path: str, opts: ReadOptions) -> Recording:
  """Plays an Azure Kinect `.mkv` back and body-tracks it.

  Args:
    path: the `.mkv` recording.
    opts: identity (participant_id, task, session); layout must be azure_kinect.

  Returns:
    A Recording in the azure_kinect layout: positions f32[T, 32, 3] metres,
    confidence f32[T, 32] = level / 3, timestamps f64[T] seconds from the depth
    timestamps; one followed body, as in the k4abt_json reader.

  Raises:
    MissingDependency: pyk4a, the native SDKs or the body tracker are missing.
    Excluded: unreadable, empty, no_body, wrong_joint_count, bad_metadata.
  """
  pyk4a = require_pyk4a()
  k4a_error = getattr(pyk4a, "K4AException", RuntimeError)
  playback = pyk4a.PyK4APlayback(path)
  try:
    playback.open()
  except (k4a_error, OSError) as e:
    raise Excluded("unreadable", f"cannot open {path} for playback: {e}") from None
  frames, timestamps_usec = [], []
  try:
    while True:
      try:
        capture = playback.get_next_capture()
      except EOFError:
        break
      except k4a_error as e:
        raise Excluded("truncated", f"{path}: playback failed after "
                       f"{len(frames)} frames: {e}") from None
      # The tracker works on depth; captures without it (colour only) are skipped,
      # as offline_processor does.
      if capture.depth is None:
        continue
      frames.append(_bodies(capture))
      timestamps_usec.append(float(capture.depth_timestamp_usec))
  finally:
    playback.close()
  if not frames:
    raise Excluded("empty", f"{path} has no depth captures")
  return tracked_recording(path, frames, timestamps_usec, opts, {"reader": "pyk4a"})
