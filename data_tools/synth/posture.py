"""Upper-body posture shared by all tasks: trunk lean and sway, head, arms.

Here sleep, lifestyle and mood become visible: through the motor parameters
`trunk_lean_deg` (slumped posture), `torso_sway_deg` (low-frequency torso sway)
and `head_pitch_deg` (gaze down). Angles are degrees in body.limb_rotations'
conventions; values are scalars or f64[T].
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from data_tools.synth import signals


def trunk_and_head(rng: np.random.Generator, m: Mapping[str, float], num_frames: int,
                   fps: float, sway_scale: float = 1.0,
                   extra_lean: np.ndarray | float = 0.0) -> tuple[dict, np.ndarray]:
  """The person's trunk and head angles, with torso sway and head movements.

  Args:
    m: motor parameters of one person.
    sway_scale: multiplies the person's torso sway (quiet standing sways less
      through the trunk than walking).
    extra_lean: task-driven forward trunk flexion, degrees (e.g. rising from a
      chair), scalar or f64[T].

  Returns:
    (pose entries, total forward lean f64[T] in degrees).
  """
  noise = signals.smooth_noise(rng, num_frames, fps, 0.25, channels=5)
  sway = float(m["torso_sway_deg"]) * sway_scale
  lean = float(m["trunk_lean_deg"]) + extra_lean + sway * noise[:, 0]
  bend = sway * noise[:, 1]
  pose = {
      "lean_lower": 0.4 * lean, "lean_upper": 0.6 * lean,
      "bend_lower": 0.5 * bend, "bend_upper": 0.5 * bend,
      "twist_upper": 2.0 * noise[:, 2],
  }
  total_lean = pose["lean_lower"] + pose["lean_upper"]
  # The gaze is set against the horizon, so the head undoes the trunk's lean.
  pose["head_pitch"] = float(m["head_pitch_deg"]) - total_lean + 2.0 * noise[:, 3]
  pose["head_yaw"] = 5.0 * noise[:, 4]
  pose["head_roll"] = -0.6 * bend
  return pose, total_lean


def hanging_arms(m: Mapping[str, float], total_lean: np.ndarray,
                 swing_l: np.ndarray | float = 0.0,
                 swing_r: np.ndarray | float = 0.0) -> dict:
  """Arms hanging by the sides (held vertical against the trunk's lean).

  Args:
    swing_l, swing_r: shoulder flexion about the hanging position, degrees.
  """
  abd = float(m["arm_abduction_deg"]) + 2.0
  pose = {}
  for s, swing in (("l", swing_l), ("r", swing_r)):
    swing = np.asarray(swing)
    pose[f"sh_flex_{s}"] = total_lean + 3.0 + swing
    pose[f"sh_abd_{s}"] = abd
    pose[f"sh_introt_{s}"] = 10.0
    # The elbow bends more as the arm swings forward.
    pose[f"elbow_{s}"] = 14.0 + 0.35 * np.maximum(swing, 0.0)
    pose[f"wrist_{s}"] = 5.0
  return pose


def folded_arms(total_lean: np.ndarray) -> dict:
  """Arms crossed over the chest (sit-to-stand protocol), held with the trunk."""
  del total_lean  # folded arms move with the chest
  pose = {}
  for s in ("l", "r"):
    pose[f"sh_flex_{s}"] = 35.0
    pose[f"sh_abd_{s}"] = 8.0
    pose[f"sh_introt_{s}"] = 75.0
    pose[f"elbow_{s}"] = 115.0
    pose[f"wrist_{s}"] = 0.0
  return pose
