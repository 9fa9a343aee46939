"""The canonical skeleton, its body regions, and the layouts that map onto it.

The canonical skeleton is Azure Kinect Body Tracking's 32 joints, named, ordered
and parented as the SDK's `k4abt_joint_id_t` defines them. Every recording is
brought into this skeleton and into one coordinate frame before it is sharded:

  Canonical frame: the Azure Kinect depth camera's, in metres, +x to the camera's
  right, +y down, +z away from the camera (right-handed). The vertical axis is y.

A source joint with no canonical counterpart is dropped; a canonical joint with no
source joint is *missing* (presence False, confidence 0), never invented.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

JOINTS: tuple[str, ...] = (
    "PELVIS", "SPINE_NAVEL", "SPINE_CHEST", "NECK",
    "CLAVICLE_LEFT", "SHOULDER_LEFT", "ELBOW_LEFT", "WRIST_LEFT",
    "HAND_LEFT", "HANDTIP_LEFT", "THUMB_LEFT",
    "CLAVICLE_RIGHT", "SHOULDER_RIGHT", "ELBOW_RIGHT", "WRIST_RIGHT",
    "HAND_RIGHT", "HANDTIP_RIGHT", "THUMB_RIGHT",
    "HIP_LEFT", "KNEE_LEFT", "ANKLE_LEFT", "FOOT_LEFT",
    "HIP_RIGHT", "KNEE_RIGHT", "ANKLE_RIGHT", "FOOT_RIGHT",
    "HEAD", "NOSE", "EYE_LEFT", "EAR_LEFT", "EYE_RIGHT", "EAR_RIGHT",
)  # pyformat: disable
NUM_JOINTS = len(JOINTS)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINTS)}

_PARENT_NAMES: dict[str, str | None] = {
    "PELVIS": None,
    "SPINE_NAVEL": "PELVIS", "SPINE_CHEST": "SPINE_NAVEL", "NECK": "SPINE_CHEST",
    "CLAVICLE_LEFT": "SPINE_CHEST", "SHOULDER_LEFT": "CLAVICLE_LEFT",
    "ELBOW_LEFT": "SHOULDER_LEFT", "WRIST_LEFT": "ELBOW_LEFT",
    "HAND_LEFT": "WRIST_LEFT", "HANDTIP_LEFT": "HAND_LEFT", "THUMB_LEFT": "WRIST_LEFT",
    "CLAVICLE_RIGHT": "SPINE_CHEST", "SHOULDER_RIGHT": "CLAVICLE_RIGHT",
    "ELBOW_RIGHT": "SHOULDER_RIGHT", "WRIST_RIGHT": "ELBOW_RIGHT",
    "HAND_RIGHT": "WRIST_RIGHT", "HANDTIP_RIGHT": "HAND_RIGHT", "THUMB_RIGHT": "WRIST_RIGHT",
    "HIP_LEFT": "PELVIS", "KNEE_LEFT": "HIP_LEFT", "ANKLE_LEFT": "KNEE_LEFT",
    "FOOT_LEFT": "ANKLE_LEFT",
    "HIP_RIGHT": "PELVIS", "KNEE_RIGHT": "HIP_RIGHT", "ANKLE_RIGHT": "KNEE_RIGHT",
    "FOOT_RIGHT": "ANKLE_RIGHT",
    "HEAD": "NECK", "NOSE": "HEAD", "EYE_LEFT": "HEAD", "EAR_LEFT": "HEAD",
    "EYE_RIGHT": "HEAD", "EAR_RIGHT": "HEAD",
}  # pyformat: disable
# PARENTS[j] is the index of joint j's parent, -1 for the root (pelvis).
PARENTS: tuple[int, ...] = tuple(
    -1 if _PARENT_NAMES[j] is None else JOINT_INDEX[_PARENT_NAMES[j]] for j in JOINTS)

# Body regions. The six masking regions of the model come first; `hands` holds the
# joints whose tracking is too unreliable for the default joint set.
REGIONS: dict[str, tuple[str, ...]] = {
    "head": ("HEAD", "NOSE", "EYE_LEFT", "EAR_LEFT", "EYE_RIGHT", "EAR_RIGHT"),
    "torso": ("PELVIS", "SPINE_NAVEL", "SPINE_CHEST", "NECK",
              "CLAVICLE_LEFT", "CLAVICLE_RIGHT"),
    "left_arm": ("SHOULDER_LEFT", "ELBOW_LEFT", "WRIST_LEFT"),
    "right_arm": ("SHOULDER_RIGHT", "ELBOW_RIGHT", "WRIST_RIGHT"),
    "left_leg": ("HIP_LEFT", "KNEE_LEFT", "ANKLE_LEFT", "FOOT_LEFT"),
    "right_leg": ("HIP_RIGHT", "KNEE_RIGHT", "ANKLE_RIGHT", "FOOT_RIGHT"),
    "hands": ("HAND_LEFT", "HANDTIP_LEFT", "THUMB_LEFT",
              "HAND_RIGHT", "HANDTIP_RIGHT", "THUMB_RIGHT"),
}  # pyformat: disable
assert sorted(sum(REGIONS.values(), ())) == sorted(JOINTS)

# Named joint sets a config can select by name; any tuple of joint names works too.
JOINT_SETS: dict[str, tuple[str, ...]] = {
    "all32": JOINTS,
    "default26": tuple(j for j in JOINTS if j not in REGIONS["hands"]),
}
DEFAULT_JOINT_SET = "default26"

# Bones whose median length QC checks, with a plausible adult range in metres
# (wide: children, tall adults and tracker bias all fit; millimetres do not).
BONE_LENGTH_RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("HIP_LEFT", "KNEE_LEFT"): (0.20, 0.70),
    ("HIP_RIGHT", "KNEE_RIGHT"): (0.20, 0.70),
    ("KNEE_LEFT", "ANKLE_LEFT"): (0.20, 0.65),
    ("KNEE_RIGHT", "ANKLE_RIGHT"): (0.20, 0.65),
    ("SHOULDER_LEFT", "ELBOW_LEFT"): (0.12, 0.50),
    ("SHOULDER_RIGHT", "ELBOW_RIGHT"): (0.12, 0.50),
    ("ELBOW_LEFT", "WRIST_LEFT"): (0.10, 0.45),
    ("ELBOW_RIGHT", "WRIST_RIGHT"): (0.10, 0.45),
    ("PELVIS", "NECK"): (0.25, 0.90),
    ("NECK", "HEAD"): (0.03, 0.40),
}


def joint_names(joint_set: str | Sequence[str]) -> tuple[str, ...]:
  """The joint names of a named joint set (JOINT_SETS) or of a list of names."""
  return JOINT_SETS[joint_set] if isinstance(joint_set, str) else tuple(joint_set)


def joint_indices(joint_set: str | Sequence[str]) -> np.ndarray:
  """Canonical indices (int32[J']) of a named joint set or a list of joint names."""
  names = joint_names(joint_set)
  unknown = [n for n in names if n not in JOINT_INDEX]
  if unknown:
    raise ValueError(f"unknown joint names {unknown}; canonical joints are {JOINTS}")
  return np.array([JOINT_INDEX[n] for n in names], np.int32)


def parents_within(joints: Sequence[str]) -> np.ndarray:
  """int32[J]: each joint's parent as an index into `joints`: its nearest ancestor
  that is in the set, -1 when none is (the root)."""
  index = {name: i for i, name in enumerate(joints)}
  out = []
  for name in joints:
    parent = _PARENT_NAMES[name]
    while parent is not None and parent not in index:
      parent = _PARENT_NAMES[parent]
    out.append(-1 if parent is None else index[parent])
  return np.array(out, np.int32)


def region_of_joint() -> dict[str, str]:
  """Joint name → region name."""
  return {j: region for region, joints in REGIONS.items() for j in joints}


# ---------------------------------------------------------------------------
# Layouts: how another sensor's skeleton maps onto the canonical one.
# ---------------------------------------------------------------------------

# Kinect v1/v2 camera space: +x to the sensor's left, +y up, +z forward. A 180°
# rotation about z takes it to the canonical (Azure Kinect) frame.
_KINECT_TO_CANONICAL = np.diag([-1.0, -1.0, 1.0]).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Layout:
  """A source skeleton: its joints in file order and where each one goes.

  Attributes:
    name: layout name used on the command line and in the npz `layout` key.
    joints: source joint names, in the order the source stores them.
    canonical: per source joint, the canonical joint name it becomes, or None when
      the canonical skeleton has no counterpart (the joint is dropped).
    rotation: f32[3, 3] taking source camera coordinates to the canonical frame.
  """
  name: str
  joints: tuple[str, ...]
  canonical: tuple[str | None, ...]
  rotation: np.ndarray

  def __post_init__(self):
    assert len(self.joints) == len(self.canonical), self.name
    targets = [c for c in self.canonical if c is not None]
    assert len(set(targets)) == len(targets), f"{self.name}: duplicate targets"
    assert all(c in JOINT_INDEX for c in targets), self.name

  @property
  def num_joints(self) -> int:
    return len(self.joints)

  def canonical_present(self) -> np.ndarray:
    """bool[32]: which canonical joints this layout provides."""
    present = np.zeros(NUM_JOINTS, bool)
    present[[JOINT_INDEX[c] for c in self.canonical if c is not None]] = True
    return present

  def to_canonical(self, positions: np.ndarray, confidence: np.ndarray,
                   source_present: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maps source arrays onto the canonical skeleton and frame.

    Args:
      positions: f32[T, J_src, 3] metres in the source camera frame; NaN = missing.
      confidence: f32[T, J_src] in [0, 1].
      source_present: bool[J_src], the layout joints the file actually has (a file
        may carry fewer joints than its sensor tracks); None = all of them.

    Returns:
      positions f32[T, 32, 3] metres in the canonical frame (NaN for missing
      joints), confidence f32[T, 32] (0 for missing joints) and present bool[32].
    """
    if positions.ndim != 3 or positions.shape[1:] != (self.num_joints, 3):
      raise ValueError(f"layout {self.name!r} expects positions [T, {self.num_joints}, 3]"
                       f", got {list(positions.shape)}")
    t = positions.shape[0]
    src = [i for i, c in enumerate(self.canonical)
           if c is not None and (source_present is None or source_present[i])]
    dst = [JOINT_INDEX[self.canonical[i]] for i in src]
    out_pos = np.full((t, NUM_JOINTS, 3), np.nan, np.float32)
    out_conf = np.zeros((t, NUM_JOINTS), np.float32)
    out_pos[:, dst] = positions[:, src].astype(np.float32) @ self.rotation.T
    out_conf[:, dst] = confidence[:, src]
    present = np.zeros(NUM_JOINTS, bool)
    present[dst] = True
    return out_pos, out_conf, present


AZURE_KINECT = Layout(
    name="azure_kinect", joints=JOINTS, canonical=JOINTS,
    rotation=np.eye(3, dtype=np.float32))

# Kinect v2 JointType order. SpineMid sits near the navel and SpineShoulder at the
# top of the sternum, the nearest Azure Kinect joints; clavicles, nose, eyes and
# ears have no Kinect v2 counterpart and stay missing.
_KINECT_V2 = (
    ("SpineBase", "PELVIS"), ("SpineMid", "SPINE_NAVEL"), ("Neck", "NECK"),
    ("Head", "HEAD"), ("ShoulderLeft", "SHOULDER_LEFT"), ("ElbowLeft", "ELBOW_LEFT"),
    ("WristLeft", "WRIST_LEFT"), ("HandLeft", "HAND_LEFT"),
    ("ShoulderRight", "SHOULDER_RIGHT"), ("ElbowRight", "ELBOW_RIGHT"),
    ("WristRight", "WRIST_RIGHT"), ("HandRight", "HAND_RIGHT"),
    ("HipLeft", "HIP_LEFT"), ("KneeLeft", "KNEE_LEFT"), ("AnkleLeft", "ANKLE_LEFT"),
    ("FootLeft", "FOOT_LEFT"), ("HipRight", "HIP_RIGHT"), ("KneeRight", "KNEE_RIGHT"),
    ("AnkleRight", "ANKLE_RIGHT"), ("FootRight", "FOOT_RIGHT"),
    ("SpineShoulder", "SPINE_CHEST"), ("HandTipLeft", "HANDTIP_LEFT"),
    ("ThumbLeft", "THUMB_LEFT"), ("HandTipRight", "HANDTIP_RIGHT"),
    ("ThumbRight", "THUMB_RIGHT"),
)  # pyformat: disable
KINECT_V2 = Layout(
    name="kinect_v2", joints=tuple(s for s, _ in _KINECT_V2),
    canonical=tuple(c for _, c in _KINECT_V2), rotation=_KINECT_TO_CANONICAL)

# Kinect v1 NUI_SKELETON_POSITION order. ShoulderCenter is the v1 joint that v2
# renamed SpineShoulder; v1 has no neck, so NECK stays missing.
_KINECT_V1 = (
    ("HipCenter", "PELVIS"), ("Spine", "SPINE_NAVEL"),
    ("ShoulderCenter", "SPINE_CHEST"), ("Head", "HEAD"),
    ("ShoulderLeft", "SHOULDER_LEFT"), ("ElbowLeft", "ELBOW_LEFT"),
    ("WristLeft", "WRIST_LEFT"), ("HandLeft", "HAND_LEFT"),
    ("ShoulderRight", "SHOULDER_RIGHT"), ("ElbowRight", "ELBOW_RIGHT"),
    ("WristRight", "WRIST_RIGHT"), ("HandRight", "HAND_RIGHT"),
    ("HipLeft", "HIP_LEFT"), ("KneeLeft", "KNEE_LEFT"), ("AnkleLeft", "ANKLE_LEFT"),
    ("FootLeft", "FOOT_LEFT"), ("HipRight", "HIP_RIGHT"), ("KneeRight", "KNEE_RIGHT"),
    ("AnkleRight", "ANKLE_RIGHT"), ("FootRight", "FOOT_RIGHT"),
)  # pyformat: disable
KINECT_V1 = Layout(
    name="kinect_v1", joints=tuple(s for s, _ in _KINECT_V1),
    canonical=tuple(c for _, c in _KINECT_V1), rotation=_KINECT_TO_CANONICAL)

LAYOUTS: dict[str, Layout] = {
    layout.name: layout for layout in (AZURE_KINECT, KINECT_V2, KINECT_V1)}


def get_layout(name: str) -> Layout:
  try:
    return LAYOUTS[name]
  except KeyError:
    raise ValueError(f"unknown layout {name!r}; known layouts: {sorted(LAYOUTS)}") from None
