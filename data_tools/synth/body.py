"""The synthetic body: segment geometry from height, and forward kinematics.

Body frame: metres, +x the person's right, +y down, +z the person's forward
(right-handed, like the camera frame: a person walking straight away from the
camera has body frame = camera frame up to a translation).

Segment lengths follow Winter's anthropometric proportions of standing height H
(thigh 0.245 H, shank 0.246 H, upper arm 0.186 H, forearm 0.146 H, ankle height
0.039 H, ...), placed where Azure Kinect Body Tracking puts its 32 joints.

Kinematics use a *bone rotation* convention: the rotation stored at joint j turns
the bone from j's parent to j (and everything below it) relative to the parent
bone, so `rot["KNEE_LEFT"]` is the hip's flexion/abduction (it orients the
thigh) and `rot["ANKLE_LEFT"]` the knee's flexion. Angles are in degrees:

  flex(a) = rotation about +x; for a bone hanging down, a > 0 swings it forward;
            for a bone pointing up, a > 0 tips it backward.
  roll(a) = rotation about +z (forward); a > 0 moves a hanging bone to the left.
  yaw(a)  = rotation about +y (down).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from gait_jax import skeleton

J = skeleton.JOINT_INDEX
_PARENTS = skeleton.PARENTS

# Winter's thigh (hip to knee joint) and shank (knee to ankle joint) as shares of
# standing height; a person's own leg scales both by its `leg_ratio`.
THIGH, SHANK = 0.245, 0.246


def leg_length(height, leg_ratio):
  """Hip-joint-to-ankle-joint length (thigh + shank) in the units of `height`:
  the `Body.leg` that `make_body` builds (scalars or f64[N])."""
  return (THIGH + SHANK) * height * leg_ratio


def _rot(axis: int, degrees) -> np.ndarray:
  """Rotation(s) by `degrees` about body axis 0/1/2: f64[3, 3] or f64[T, 3, 3]."""
  a = np.deg2rad(np.asarray(degrees, np.float64))
  c, s = np.cos(a), np.sin(a)
  out = np.zeros(a.shape + (3, 3))
  i, k = [(1, 2), (2, 0), (0, 1)][axis]
  out[..., axis, axis] = 1.0
  out[..., i, i] = c
  out[..., k, k] = c
  out[..., i, k] = -s
  out[..., k, i] = s
  return out


def flex(degrees) -> np.ndarray:
  """Rotation about +x (sagittal plane)."""
  return _rot(0, degrees)


def yaw(degrees) -> np.ndarray:
  """Rotation about +y (transverse plane; heading)."""
  return _rot(1, degrees)


def roll(degrees) -> np.ndarray:
  """Rotation about +z (frontal plane)."""
  return _rot(2, degrees)


def compose(*rotations: np.ndarray) -> np.ndarray:
  """Product of rotations left to right; each f64[3, 3] or f64[T, 3, 3]."""
  out = rotations[0]
  for r in rotations[1:]:
    out = out @ r
  return out


@dataclasses.dataclass(frozen=True)
class Body:
  """One person's skeleton geometry.

  Attributes:
    offsets: f64[32, 3] metres; bone vector from each joint's parent to the
      joint, in the bone's own frame at rest (standing, arms by the sides).
    heel, ball: f64[2, 3] metres per side (left, right); the floor-contact points
      of the foot, relative to the ankle, in the FOOT bone's frame.
    height: standing height, m.
    leg: hip-to-ankle length, m.
    hip_half: pelvis-to-hip lateral distance, m.
    ankle_height: ankle above the floor standing, m.
    pelvis_height: pelvis joint above the floor standing, m.
  """
  offsets: np.ndarray
  heel: np.ndarray
  ball: np.ndarray
  height: float
  leg: float
  hip_half: float
  ankle_height: float
  pelvis_height: float


def make_body(m: Mapping[str, float]) -> Body:
  """A Body from one person's motor parameters (motor.PARAMS)."""
  h = float(m["height_m"])
  leg, arm = float(m["leg_ratio"]), float(m["arm_ratio"])
  hip, sh = float(m["hip_half"]), float(m["shoulder_half"])
  thigh, shank, ankle_h = THIGH * h * leg, SHANK * h * leg, 0.039 * h
  o = np.zeros((skeleton.NUM_JOINTS, 3))

  def put(name: str, x: float, y: float, z: float, mirror: bool = True):
    if name.endswith("_LEFT") and mirror:
      o[J[name]] = (-x, y, z)
      o[J[name.replace("_LEFT", "_RIGHT")]] = (x, y, z)
    else:
      o[J[name]] = (x, y, z)

  # Pelvis joint sits 0.035 H above the hip joints (Winter: hip 0.530 H).
  put("SPINE_NAVEL", 0.0, -0.075 * h, -0.005 * h + float(m["belly_forward"]))
  put("SPINE_CHEST", 0.0, -0.095 * h, -0.01 * h - float(m["belly_forward"]) * 0.5)
  put("NECK", 0.0, -0.10 * h, 0.005 * h)
  put("HEAD", 0.0, -0.075 * h, 0.012 * h)
  put("NOSE", 0.0, 0.004 * h, 0.058 * h)
  put("EYE_LEFT", 0.019 * h, -0.012 * h, 0.046 * h)
  put("EAR_LEFT", 0.043 * h, 0.0, -0.004 * h)
  put("CLAVICLE_LEFT", 0.025 * h, -0.08 * h, 0.0)
  put("SHOULDER_LEFT", sh - 0.025 * h, 0.0, -0.004 * h)
  put("ELBOW_LEFT", 0.0, 0.186 * h * arm, 0.0)
  put("WRIST_LEFT", 0.0, 0.146 * h * arm, 0.0)
  put("HAND_LEFT", 0.0, 0.045 * h, 0.004 * h)
  put("HANDTIP_LEFT", 0.0, 0.055 * h, 0.004 * h)
  # Palms face the thighs, so the thumb points forward and a little inward.
  put("THUMB_LEFT", -0.012 * h, 0.03 * h, 0.026 * h)
  put("HIP_LEFT", hip, 0.035 * h, -0.004 * h)
  put("KNEE_LEFT", 0.0, thigh, 0.0)
  put("ANKLE_LEFT", 0.0, shank, -0.004 * h)
  # FOOT is the forefoot joint; feet toe out by ~7 degrees.
  put("FOOT_LEFT", 0.012 * h, 0.025 * h, 0.085 * h)
  heel = np.array([[0.0, ankle_h, -0.03 * h], [0.0, ankle_h, -0.03 * h]])
  ball = np.array([[-0.012 * h, ankle_h, 0.09 * h], [0.012 * h, ankle_h, 0.09 * h]])
  return Body(offsets=o, heel=heel, ball=ball, height=h, leg=thigh + shank,
              hip_half=hip, ankle_height=ankle_h,
              pelvis_height=0.035 * h + thigh + shank + 0.004 * h + ankle_h)


def forward(body: Body, root_rot: np.ndarray, rot: Mapping[str, np.ndarray],
            num_frames: int) -> tuple[np.ndarray, np.ndarray]:
  """Forward kinematics with the pelvis at the origin.

  Args:
    body: the geometry.
    root_rot: f64[T, 3, 3] or f64[3, 3], the pelvis's orientation.
    rot: joint name → f64[T, 3, 3] or f64[3, 3] bone rotation (absent = none).
    num_frames: T.

  Returns:
    positions f64[T, 32, 3] metres in the body frame (pelvis at the origin), and
    contacts f64[T, 4, 3]: heel and ball of the left foot, then of the right.
  """
  g = [None] * skeleton.NUM_JOINTS
  pos = np.zeros((num_frames, skeleton.NUM_JOINTS, 3))
  g[0] = np.broadcast_to(root_rot, (num_frames, 3, 3))
  names = skeleton.JOINTS
  for j in range(1, skeleton.NUM_JOINTS):
    parent = g[_PARENTS[j]]
    r = rot.get(names[j])
    g[j] = parent if r is None else parent @ r
    pos[:, j] = pos[:, _PARENTS[j]] + g[j] @ body.offsets[j]
  contacts = np.empty((num_frames, 4, 3))
  for side, (ankle, foot) in enumerate((("ANKLE_LEFT", "FOOT_LEFT"),
                                        ("ANKLE_RIGHT", "FOOT_RIGHT"))):
    gf = g[J[foot]]
    contacts[:, 2 * side] = pos[:, J[ankle]] + gf @ body.heel[side]
    contacts[:, 2 * side + 1] = pos[:, J[ankle]] + gf @ body.ball[side]
  return pos, contacts


def limb_rotations(pose: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Bone rotations for the standard joint angles (degrees; see module docstring).

  Pose keys (any may be absent = 0): per side s in ("l", "r"):
    hip_flex_s, hip_abd_s (abduction, outward positive), knee_s (flexion),
    ankle_s (dorsiflexion), sh_flex_s, sh_abd_s, sh_introt_s (internal
    rotation), elbow_s, wrist_s;
  and lean_lower, lean_upper (forward), bend_lower, bend_upper (lateral, to the
  person's right positive), twist_upper (shoulders' yaw), neck_flex,
  head_pitch (down positive), head_yaw, head_roll.
  Values are scalars or f64[T].
  """
  get = lambda k: pose.get(k, 0.0)  # noqa: E731
  r = {}
  for s, name, sign in (("l", "LEFT", 1.0), ("r", "RIGHT", -1.0)):
    r[f"KNEE_{name}"] = compose(flex(get(f"hip_flex_{s}")), roll(sign * get(f"hip_abd_{s}")))
    r[f"ANKLE_{name}"] = flex(-np.asarray(get(f"knee_{s}")))
    r[f"FOOT_{name}"] = flex(get(f"ankle_{s}"))
    r[f"ELBOW_{name}"] = compose(flex(get(f"sh_flex_{s}")), roll(sign * get(f"sh_abd_{s}")),
                                 yaw(sign * get(f"sh_introt_{s}")))
    r[f"WRIST_{name}"] = flex(get(f"elbow_{s}"))
    r[f"HAND_{name}"] = flex(get(f"wrist_{s}"))
  # A bone pointing up tips forward under a negative flex and to the right under
  # a positive roll, hence the signs.
  r["SPINE_NAVEL"] = compose(roll(get("bend_lower")), flex(-np.asarray(get("lean_lower"))))
  r["SPINE_CHEST"] = compose(yaw(get("twist_upper")), roll(get("bend_upper")),
                             flex(-np.asarray(get("lean_upper"))))
  r["NECK"] = flex(-np.asarray(get("neck_flex")))
  r["HEAD"] = compose(yaw(get("head_yaw")), roll(get("head_roll")),
                      flex(-np.asarray(get("head_pitch"))))
  return r


def hip_abduction(body: Body, width: float, sway: np.ndarray, pelvis_list: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
  """Hip abduction (deg, left and right, outward positive) that keeps the feet
  at x = -+width/2 while the pelvis sways laterally by `sway` (m, f64[T]) and
  lists by `pelvis_list` (deg, f64[T])."""
  left = np.arcsin(np.clip((0.5 * width + sway - body.hip_half) / body.leg, -0.5, 0.5))
  right = np.arcsin(np.clip((0.5 * width - sway - body.hip_half) / body.leg, -0.5, 0.5))
  # The legs hang from the listed pelvis; undo its roll so only the feet move.
  return np.rad2deg(left) - pelvis_list, np.rad2deg(right) + pelvis_list


def place(positions: np.ndarray, heading_deg, origin: np.ndarray) -> np.ndarray:
  """Body frame → world frame: turn by the heading, then translate.

  Args:
    positions: f64[T, K, 3] body frame.
    heading_deg: scalar or f64[T]; 0 = facing +z (away from the camera), 180 =
      facing the camera.
    origin: f64[T, 3] or f64[3], where the body frame's origin goes.

  Returns:
    f64[T, K, 3] in the world frame (camera at the origin, y down, floor at
    y = camera height).
  """
  r = yaw(heading_deg)
  out = positions @ np.swapaxes(r, -1, -2)
  return out + np.asarray(origin)[..., None, :]
