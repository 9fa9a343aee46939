"""Small hand-built skeletons for tests (the synthetic cohort is tested on its own)."""

from __future__ import annotations

import numpy as np

from data_tools.recording import Recording, uniform_timestamps
from gait_jax import skeleton

# A standing adult facing the camera, pelvis-relative, canonical frame (y down,
# the person's left on the camera's +x side, toes towards the camera: -z).
_POSE = {
    "PELVIS": (0, 0, 0), "SPINE_NAVEL": (0, -0.2, 0), "SPINE_CHEST": (0, -0.4, 0),
    "NECK": (0, -0.6, 0), "HEAD": (0, -0.8, 0), "NOSE": (0, -0.78, -0.1),
    "CLAVICLE_LEFT": (0.05, -0.58, 0), "SHOULDER_LEFT": (0.18, -0.55, 0),
    "ELBOW_LEFT": (0.2, -0.27, 0), "WRIST_LEFT": (0.21, -0.02, 0),
    "HAND_LEFT": (0.21, 0.06, 0), "HANDTIP_LEFT": (0.21, 0.14, 0),
    "THUMB_LEFT": (0.19, 0.05, -0.03), "HIP_LEFT": (0.09, 0.02, 0),
    "KNEE_LEFT": (0.1, 0.45, 0), "ANKLE_LEFT": (0.1, 0.87, 0),
    "FOOT_LEFT": (0.1, 0.92, -0.12), "EYE_LEFT": (0.03, -0.82, -0.08),
    "EAR_LEFT": (0.07, -0.8, 0),
}  # pyformat: disable
for _name, (_x, _y, _z) in list(_POSE.items()):
  if _name.endswith("_LEFT"):
    _POSE[_name.replace("_LEFT", "_RIGHT")] = (-_x, _y, _z)


def pose() -> np.ndarray:
  """f32[32, 3] metres, pelvis-relative standing pose in the canonical frame."""
  return np.array([_POSE[j] for j in skeleton.JOINTS], np.float32)


def motion(num_frames: int, fps: float = 30.0, seed: int = 0,
           depth: float = 2.5) -> np.ndarray:
  """f32[T, 32, 3]: the pose swaying and stepping in place, 2 m from the camera."""
  rng = np.random.default_rng(seed)
  t = np.arange(num_frames) / fps
  pos = np.broadcast_to(pose(), (num_frames, skeleton.NUM_JOINTS, 3)).copy()
  pos[..., 2] += depth
  phase = 2 * np.pi * 0.9 * t
  for side, sign in (("LEFT", 1.0), ("RIGHT", -1.0)):
    for j in ("KNEE", "ANKLE", "FOOT"):
      pos[:, skeleton.JOINT_INDEX[f"{j}_{side}"], 2] += 0.05 * sign * np.sin(phase)
  pos[..., 0] += 0.01 * np.sin(phase / 2)[:, None]
  pos += rng.normal(0, 0.002, pos.shape)
  return pos.astype(np.float32)


def recording(num_frames: int = 120, fps: float = 30.0, seed: int = 0,
              participant: str = "P1", task: str = "walk", **kw) -> Recording:
  """A clean Azure Kinect layout recording."""
  pos = motion(num_frames, fps, seed)
  return Recording(source=f"{participant}_{task}.npz", participant_id=participant,
                   task=task, session="0", layout="azure_kinect", positions=pos,
                   confidence=np.ones(pos.shape[:2], np.float32),
                   timestamps=uniform_timestamps(num_frames, fps), **kw)


def write_npz(path, rec: Recording, **overrides) -> None:
  """Writes a recording in the project's neutral npz format."""
  fields = dict(positions=rec.positions, confidence=rec.confidence,
                fps=np.float64(30.0), layout=np.str_(rec.layout),
                participant_id=np.str_(rec.participant_id), task=np.str_(rec.task),
                session=np.str_(rec.session))
  fields.update(overrides)
  np.savez(path, **{k: v for k, v in fields.items() if v is not None})
