"""Tasks in place: repeated sit-to-stand from a chair, and Romberg quiet standing
with the feet together and the eyes closed.

Both face the camera. In sit-to-stand the feet stay planted: the body is
animated from the pelvis and then moved so that the ankles stay where they are.
In Romberg the standing body sways as an inverted pendulum about the ankles.
World frame as in walking.py (camera at the origin, y down, floor at y =
camera height).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from data_tools.synth import body as body_lib
from data_tools.synth import posture, signals

J = body_lib.J
_FIXED = np.array([J[n] for n in ("ANKLE_LEFT", "FOOT_LEFT", "ANKLE_RIGHT", "FOOT_RIGHT")])
_SWAYING = np.setdiff1d(np.arange(len(J)), _FIXED)


def sit_to_stand(rng: np.random.Generator, m: Mapping[str, float], body: body_lib.Body,
                 num_frames: int, fps: float, camera_height: float) -> np.ndarray:
  """Repeated sit-to-stand-to-sit cycles, arms folded, at the person's own pace.

  A cycle: seated pause; trunk flexes forward and the hips and knees extend
  (seat-off after the trunk's flexion peak); standing pause; the reverse. The
  pace (`sts_cycle_s`) and the peak trunk flexion (`sts_trunk_flex_deg`) come
  from fitness, frailty, age and BMI.

  Returns:
    f64[T, 32, 3] world positions, metres.
  """
  cv = 0.05 + 0.5 * float(m["stride_cv"])
  cyc = signals.cycle_counts(rng, num_frames, fps, float(m["sts_cycle_s"]), cv)
  u = cyc % 1.0
  up = signals.smoothstep(u, 0.18, 0.45) - signals.smoothstep(u, 0.55, 0.85)
  peak = float(m["sts_trunk_flex_deg"]) * signals.per_cycle(rng, cyc, 0.08)
  flexion = peak * (np.exp(-0.5 * np.square((u - 0.22) / 0.07))
                    + 0.8 * np.exp(-0.5 * np.square((u - 0.8) / 0.07)))
  thigh = 88.0 * (1.0 - up)
  # The knees travel forward over the feet mid-movement (negative shank pitch).
  shank = -(6.0 + 14.0 * np.sin(np.pi * up)) * (1.0 - up)
  pose, lean = posture.trunk_and_head(rng, m, num_frames, fps, sway_scale=0.5,
                                      extra_lean=flexion)
  pose.update(posture.folded_arms(lean))
  for s in ("l", "r"):
    pose[f"hip_flex_{s}"] = thigh
    pose[f"knee_{s}"] = thigh - shank
    pose[f"ankle_{s}"] = -shank  # foot flat on the floor
    pose[f"hip_abd_{s}"] = 3.0
  pos, _ = body_lib.forward(body, np.eye(3), body_lib.limb_rotations(pose), num_frames)
  # Feet planted: move the body so that the ankles' mid-point stays put.
  ankles = 0.5 * (pos[:, J["ANKLE_LEFT"]] + pos[:, J["ANKLE_RIGHT"]])
  pos -= ankles[:, None]
  drift = signals.smooth_noise(rng, num_frames, fps, 0.05, channels=1)[:, 0]
  origin = np.array([0.1 * rng.standard_normal(), camera_height - body.ankle_height,
                     2.3 + 0.1 * rng.standard_normal()])
  return body_lib.place(pos, 180.0 + 2.0 * drift, origin)


def romberg(rng: np.random.Generator, m: Mapping[str, float], body: body_lib.Body,
            num_frames: int, fps: float, camera_height: float) -> np.ndarray:
  """Quiet standing, feet together, eyes closed: postural sway about the ankles.

  Antero-posterior sway has s.d. `romberg_sway_deg` (age, frailty, BMI, fitness)
  and medio-lateral sway `romberg_ml_ratio` of that; the trunk and head add
  their own slower sway and small movements.

  Returns:
    f64[T, 32, 3] world positions, metres.
  """
  pose, lean = posture.trunk_and_head(rng, m, num_frames, fps, sway_scale=0.6)
  pose.update(posture.hanging_arms(m, lean))
  zero = np.zeros(num_frames)
  pose["hip_abd_l"], pose["hip_abd_r"] = body_lib.hip_abduction(body, 0.09, zero, zero)
  for s in ("l", "r"):
    pose[f"knee_{s}"] = 2.0
  pos, contacts = body_lib.forward(body, np.eye(3), body_lib.limb_rotations(pose),
                                   num_frames)
  pos[:, :, 1] -= contacts[:, :, 1].max(axis=1)[:, None]
  sway = signals.smooth_noise(rng, num_frames, fps, 0.3, channels=2)
  ap = float(m["romberg_sway_deg"]) * sway[:, 0]
  ml = float(m["romberg_sway_deg"]) * float(m["romberg_ml_ratio"]) * sway[:, 1]
  rot = body_lib.compose(body_lib.roll(ml), body_lib.flex(ap))
  pivot = 0.5 * (pos[:, J["ANKLE_LEFT"]] + pos[:, J["ANKLE_RIGHT"]])[:, None]
  pos[:, _SWAYING] = (pos[:, _SWAYING] - pivot) @ np.swapaxes(rot, 1, 2) + pivot
  drift = signals.smooth_noise(rng, num_frames, fps, 0.05, channels=1)[:, 0]
  origin = np.array([0.1 * rng.standard_normal(), camera_height,
                     2.5 + 0.1 * rng.standard_normal()])
  return body_lib.place(pos, 180.0 + 1.5 * drift, origin)
