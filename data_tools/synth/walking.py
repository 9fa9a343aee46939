"""Locomotor tasks: treadmill (3 km/h), self-selected overground walking, walking
in place.

Gait is animated over the gait cycle with cycle-to-cycle variability in
duration and amplitude. A stance foot is planted: the hip passes over it at a
constant rate (one stride per cycle) while the foot rolls heel → flat → ball,
and two-link inverse kinematics gives the hip and knee angles that keep it
there; swing legs follow normative (Winter) hip and knee curves. The pelvis is
not animated directly: each frame the body is lowered until its supporting foot
point touches the floor, which gives the pelvis its vertical oscillation and
the head its bob, and it advances by what that point moves backward (no slip),
so speed = cadence x stride length comes out of the legs.

World frame: camera at the origin, +x the camera's right, +y down, +z away from
the camera, floor at y = camera height.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from data_tools.synth import body as body_lib
from data_tools.synth import posture, signals
from data_tools.synth.motor import TREADMILL_SPEED

_TWO_PI = 2.0 * np.pi
_TOE_OFF = 0.6  # normative phase of toe-off
# Normative thigh flexion over the cycle (after Winter), used for the swing leg
# and scaled per stride to meet the stance leg at toe-off and heel strike.
_HIP_KNOTS = ((0.0, 22.0), (0.1, 17.0), (0.3, 4.0), (0.5, -9.0), (0.55, -10.0),
              (0.6, -7.0), (0.7, 5.0), (0.8, 17.0), (0.88, 22.5), (0.95, 23.0))
_HIP_TABLE = signals.periodic_curve(_HIP_KNOTS, smooth=0.025)
_GRID = np.arange(_HIP_TABLE.size) / _HIP_TABLE.size
# Foot pitch to the floor in stance (deg, toe up positive): heel strike, foot
# flat from ~8 % to heel-off at ~35 %, then the heel rises to toe-off at 60 %.
_FOOT_KNOTS = ((0.0, 14.0), (0.08, 0.0), (0.35, 0.0), (0.48, -10.0), (0.53, -18.0),
               (0.58, -35.0), (0.62, -50.0), (0.8, -20.0), (0.95, 14.0))
_FOOT_TABLE = signals.periodic_curve(_FOOT_KNOTS, smooth=0.015)
# Heel lands this fraction of the stance excursion (0.6 stride) ahead of the
# hip, which puts the hip over the ankle at mid-stance.
_LANDING = 0.45


def _segments(body: body_lib.Body) -> tuple[float, float]:
  """(thigh, shank) lengths, m."""
  return (body.offsets[body_lib.J["KNEE_LEFT"], 1], body.offsets[body_lib.J["ANKLE_LEFT"], 1])


def _planted_ankle(psi: np.ndarray, stride: np.ndarray, body: body_lib.Body
                   ) -> tuple[np.ndarray, np.ndarray]:
  """Where a stance foot's ankle is relative to the hip, for a planted foot.

  Over stance the hip passes over the planted foot at a constant rate, one
  stride per cycle; the foot rolls over the heel, lies flat, then rolls over
  the ball (_FOOT_TABLE). Sagittal plane, on the floor, heel landing at 0.
  Phases past mid-swing count toward the next heel strike.

  Returns:
    ankle ahead of the hip (m, forward positive) and ankle above the floor (m).
  """
  back, front = -body.heel[0, 2], body.ball[0, 2]
  u = np.clip(np.where(psi > 0.8, psi - 1.0, psi) / _TOE_OFF, 0.0, 1.0)
  hip_f = _TOE_OFF * stride * (u - _LANDING)
  phi = np.deg2rad(np.interp(psi, _GRID, _FOOT_TABLE, period=1.0))
  c, s = np.cos(phi), np.sin(phi)
  ah = body.ankle_height
  # Toe up: the foot pivots on the heel; toe down: on the ball.
  ankle_f = np.where(phi >= 0, back * c - ah * s, back + front - front * c - ah * s)
  ankle_u = np.where(phi >= 0, back * s + ah * c, ah * c - front * s)
  return ankle_f - hip_f, ankle_u


def _reach(knee: np.ndarray, body: body_lib.Body) -> np.ndarray:
  """Hip-to-ankle distance (m) at a knee flexion (deg)."""
  thigh, shank = _segments(body)
  return np.sqrt(thigh ** 2 + shank ** 2 + 2.0 * thigh * shank * np.cos(np.deg2rad(knee)))


def _two_link(ahead: np.ndarray, below: np.ndarray, body: body_lib.Body
              ) -> tuple[np.ndarray, np.ndarray]:
  """Thigh flexion and knee flexion (deg) that put the ankle `ahead` and `below`
  the hip (m); a target out of reach straightens the knee (the foot lifts)."""
  thigh, shank = _segments(body)
  dist = np.sqrt(ahead ** 2 + below ** 2)
  cos_k = np.clip((dist ** 2 - thigh ** 2 - shank ** 2) / (2.0 * thigh * shank), -1.0, 1.0)
  k = np.arccos(cos_k)
  hip = np.arctan2(ahead, below) + np.arcsin(np.clip(shank * np.sin(k) / dist, -1.0, 1.0))
  return np.rad2deg(hip), np.rad2deg(k)


def _knee_curve(psi: np.ndarray, knee_stance: float, knee_swing: float,
                scale: np.ndarray) -> np.ndarray:
  """Normative knee flexion (deg): loading-response bump and swing bump."""
  return 3.0 + scale * (knee_stance * signals.skew_bump(psi, 0.14, 0.06, 0.11)
                        + knee_swing * signals.skew_bump(psi, 0.72, 0.12, 0.085))


def _legs(psi: np.ndarray, stride: np.ndarray, knee_stance: float, knee_swing: float,
          scale: np.ndarray, body: body_lib.Body) -> tuple[np.ndarray, ...]:
  """Sagittal angles of both legs (deg) at normative phases psi (0 = heel strike).

  The stance leg carries the pelvis at the height its normative knee flexion
  gives (handing over to the other leg around heel strike); every stance leg
  then reaches its planted foot from there (two-link inverse kinematics),
  which bends the trailing knee in pre-swing. Swing legs follow the normative
  curves, stretched to join the stance solution at toe-off and heel strike.

  Args:
    psi: f64[2, T] normative phase per leg (left, right).
    stride: f64[2, T] each leg's stride length, m.
    knee_stance, knee_swing: loading-response and swing knee flexion peaks.
    scale: f64[2, T] per-cycle amplitude multiplier.

  Returns:
    hip flexion, knee flexion, ankle dorsiflexion, each f64[2, T].
  """
  knee_nominal = _knee_curve(psi, knee_stance, knee_swing, scale)
  ahead, ankle_u = _planted_ankle(psi, stride, body)
  # Each stance leg proposes a hip height; the pelvis hands over smoothly from
  # the trailing to the leading leg around each heel strike.
  own = ankle_u + np.sqrt(np.maximum(_reach(knee_nominal, body) ** 2 - ahead ** 2, 1e-4))
  since = np.where(psi > 0.8, psi - 1.0, psi)
  weight = signals.smoothstep(since, -0.05, 0.05) * (1.0 - signals.smoothstep(since, 0.45, 0.55))
  hip_height = (weight * own).sum(0) / np.maximum(weight.sum(0), 1e-6)
  stance_hip, stance_knee = _two_link(ahead, hip_height - ankle_u, body)
  # Swing thigh: the normative curve through the stance values at both ends.
  ends = np.array([_TOE_OFF, 0.0])
  end_ahead, _ = _planted_ankle(ends, stride[..., None], body)
  end_knee = _knee_curve(ends, knee_stance, knee_swing, scale[..., None])
  end_below = np.sqrt(np.maximum(_reach(end_knee, body) ** 2 - end_ahead ** 2, 1e-4))
  at, _ = _two_link(end_ahead, end_below, body)
  table = np.interp(ends, _GRID, _HIP_TABLE)
  gain = (at[..., 1] - at[..., 0]) / (table[1] - table[0])
  swing_hip = at[..., 1] + gain * (np.interp(psi, _GRID, _HIP_TABLE, period=1.0) - table[1])
  in_stance = signals.smoothstep(psi, 0.9, 0.98) + 1.0 - signals.smoothstep(psi, 0.6, 0.68)
  hip = in_stance * stance_hip + (1.0 - in_stance) * swing_hip
  knee = in_stance * stance_knee + (1.0 - in_stance) * knee_nominal
  flat_ankle = np.interp(psi, _GRID, _FOOT_TABLE, period=1.0) - (hip - knee)
  swing_ankle = 4.0 * signals.bump(psi, 0.8, 0.08) - 12.0 * signals.bump(psi, 0.63, 0.05)
  return hip, knee, in_stance * flat_ankle + (1.0 - in_stance) * swing_ankle


def _asymmetry(m: Mapping[str, float]) -> tuple[float, float, float]:
  """(phase offset of the right leg, left scale, right scale) for antalgic gait."""
  side, mag = float(m["asymmetry_side"]), float(m["asym_magnitude"])
  offset = 0.5 + 0.03 * mag * side
  return offset, 1.0 - 0.08 * mag * (side < 0), 1.0 - 0.08 * mag * (side > 0)


def _gait_legs(m: Mapping[str, float], body: body_lib.Body, cyc_l: np.ndarray,
               cyc_r: np.ndarray, amp_l: np.ndarray, amp_r: np.ndarray,
               stride: float, speed_ratio: float) -> dict[str, np.ndarray]:
  """Leg and pelvis angles plus lateral sway for walking."""
  stance = float(m["stance_fraction"])
  side, mag = float(m["asymmetry_side"]), float(m["asym_magnitude"])
  knee_swing = float(m["knee_swing_deg"]) * speed_ratio ** 0.3
  hurt = np.array([side < 0, side > 0])
  # The painful side shortens its stance: less time loading it.
  psi = np.stack([signals.stance_warp(cyc_l % 1.0, stance - 0.02 * mag * hurt[0]),
                  signals.stance_warp(cyc_r % 1.0, stance - 0.02 * mag * hurt[1])])
  amp = np.stack([amp_l, amp_r])
  hip, knee, ankle = _legs(psi, stride * amp, float(m["knee_stance_deg"]), knee_swing,
                           amp, body)
  pose = {}
  for i, s in enumerate(("l", "r")):
    pose[f"hip_flex_{s}"], pose[f"knee_{s}"], pose[f"ankle_{s}"] = hip[i], knee[i], ankle[i]
    pose[f"stance_{s}"] = psi[i] < 0.62  # a swinging foot never carries the body
  sway = -float(m["pelvis_sway_m"]) * np.sin(_TWO_PI * (cyc_l - 0.05))
  pose["pelvis_list"] = 3.0 * np.sin(_TWO_PI * (cyc_l - 0.05))
  pose["pelvis_yaw"] = 4.0 * (stride / 1.4) * np.cos(_TWO_PI * (cyc_l - 0.02))
  pose["sway"] = sway
  pose["hip_abd_l"], pose["hip_abd_r"] = body_lib.hip_abduction(
      body, float(m["step_width"]), sway, pose["pelvis_list"])
  return pose


def _assemble(rng: np.random.Generator | None, m: Mapping[str, float],
              body: body_lib.Body, legs: dict[str, np.ndarray], num_frames: int,
              fps: float, swing_l=0.0, swing_r=0.0
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Adds trunk, head and arms, runs the kinematics and grounds the body.

  Args:
    rng: for torso sway and head movements; None = a still upper body (for
      looking at the legs alone).

  Returns:
    positions f64[T, 32, 3] in the body frame with the floor at y = 0,
    contacts f64[T, 4, 3] (left heel, left ball, right heel, right ball) in the
    same frame, and support int[T]: which contact carries the body.
  """
  if rng is None:
    pose = {"lean_lower": 0.0, "lean_upper": 0.0}
    lean = np.zeros(num_frames)
  else:
    pose, lean = posture.trunk_and_head(rng, m, num_frames, fps)
  # The trunk keeps upright against the pelvis's list and counter-rotates.
  pose["bend_lower"] = pose.get("bend_lower", 0.0) - 0.7 * legs["pelvis_list"]
  pose["twist_upper"] = pose.get("twist_upper", 0.0) - 1.5 * legs["pelvis_yaw"]
  pose.update(posture.hanging_arms(m, lean, swing_l, swing_r))
  pose.update(legs)
  root = body_lib.compose(body_lib.yaw(legs["pelvis_yaw"]), body_lib.roll(legs["pelvis_list"]))
  pos, contacts = body_lib.forward(body, root, body_lib.limb_rotations(pose), num_frames)
  height = contacts[:, :, 1]
  if "stance_l" in legs:
    can = np.repeat(np.stack([legs["stance_l"], legs["stance_r"]], axis=1), 2, axis=1)
    can |= ~can.any(axis=1, keepdims=True)
    height = np.where(can, height, -np.inf)
  support = np.argmax(height, axis=1)
  floor = np.take_along_axis(contacts[:, :, 1], support[:, None], 1)[:, 0]
  shift = np.stack([legs["sway"] + np.zeros(num_frames), -floor, np.zeros(num_frames)],
                   axis=1)
  return pos + shift[:, None], contacts + shift[:, None], support


def _progression(contacts: np.ndarray, support: np.ndarray) -> np.ndarray:
  """f64[T] forward distance (m) covered when the supporting point never slides."""
  stance = support[1:, None]
  z = contacts[:, :, 2]
  step = np.take_along_axis(z[1:], stance, 1)[:, 0] - np.take_along_axis(z[:-1], stance, 1)[:, 0]
  return np.concatenate([[0.0], np.cumsum(-step)])


def _walk_body(rng: np.random.Generator, m: Mapping[str, float], body: body_lib.Body,
               num_frames: int, fps: float, cadence: float, speed: float
               ) -> tuple[np.ndarray, np.ndarray]:
  """Walking at `cadence` steps/min and `speed` m/s, in the body frame.

  Returns:
    positions f64[T, 32, 3] (floor at y = 0, pelvis over x = 0) and the no-slip
    progression f64[T] in metres.
  """
  stride = speed * 120.0 / cadence
  speed_ratio = speed / 1.3
  offset, scale_l, scale_r = _asymmetry(m)
  cv = float(m["stride_cv"])
  cyc_l = signals.cycle_counts(rng, num_frames, fps, 120.0 / cadence, cv)
  cyc_r = cyc_l + offset
  common = signals.per_cycle(rng, cyc_l, 0.5 * cv + 0.01)
  amp_l = scale_l * common * signals.per_cycle(rng, cyc_l, 0.01)
  amp_r = scale_r * common * signals.per_cycle(rng, cyc_r, 0.01)
  legs = _gait_legs(m, body, cyc_l, cyc_r, amp_l, amp_r, stride, speed_ratio)
  arm = float(m["arm_swing_deg"]) * speed_ratio * common
  side, mag = float(m["asymmetry_side"]), float(m["asym_magnitude"])
  # Each arm swings with the opposite leg; the painful side's arm swings less.
  swing_l = arm * (1.0 - 0.2 * mag * (side < 0)) * np.cos(_TWO_PI * (cyc_r - 0.93))
  swing_r = arm * (1.0 - 0.2 * mag * (side > 0)) * np.cos(_TWO_PI * (cyc_l - 0.93))
  pos, contacts, support = _assemble(rng, m, body, legs, num_frames, fps, swing_l, swing_r)
  return pos, _progression(contacts, support)


def _racetrack(s: np.ndarray, x0: float, radius: float, near: float, far: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Position (x, z) and heading (deg) at arc length s on a there-and-back path.

  Away from the camera along x = x0 - r, a half-circle turn at depth `far`,
  back along x = x0 + r, a half-circle turn at depth `near` (outer edges).
  """
  za, zb = near + radius, far - radius
  straight = zb - za
  arc = np.pi * radius
  s = s % (2.0 * (straight + arc))
  b1 = np.clip((s - straight) / radius, 0.0, np.pi)
  b2 = np.clip((s - 2.0 * straight - arc) / radius, 0.0, np.pi)
  seg = np.searchsorted(np.array([straight, straight + arc, 2 * straight + arc]), s,
                        side="right")
  x = np.choose(seg, [np.full_like(s, x0 - radius), x0 - radius * np.cos(b1),
                      np.full_like(s, x0 + radius), x0 + radius * np.cos(b2)])
  z = np.choose(seg, [za + s, zb + radius * np.sin(b1),
                      zb - (s - straight - arc), za - radius * np.sin(b2)])
  heading = np.choose(seg, [np.zeros_like(s), np.rad2deg(b1),
                            np.full_like(s, 180.0), 180.0 + np.rad2deg(b2)])
  return x, z, heading


def treadmill(rng: np.random.Generator, m: Mapping[str, float], body: body_lib.Body,
              num_frames: int, fps: float, camera_height: float) -> np.ndarray:
  """Walking on a treadmill at 3 km/h, facing the camera at ~2.5 m.

  Returns:
    f64[T, 32, 3] world positions, metres.
  """
  cadence = float(m["treadmill_cadence"])
  pos, prog = _walk_body(rng, m, body, num_frames, fps, cadence, TREADMILL_SPEED)
  t = np.arange(num_frames) / fps
  # The belt takes the stance foot back; the person keeps their place on it.
  rel = prog - TREADMILL_SPEED * t
  rel -= np.polyval(np.polyfit(t, rel, 1), t)
  drift = signals.smooth_noise(rng, num_frames, fps, 0.05, channels=3)
  depth = 2.5 + 0.1 * rng.standard_normal()
  origin = np.stack([0.05 * rng.standard_normal() + 0.03 * drift[:, 0],
                     np.full(num_frames, camera_height), depth - rel + 0.04 * drift[:, 1]],
                    axis=1)
  return body_lib.place(pos, 180.0 + 2.0 * drift[:, 2], origin)


def self_selected_walk(rng: np.random.Generator, m: Mapping[str, float],
                       body: body_lib.Body, num_frames: int, fps: float,
                       camera_height: float) -> np.ndarray:
  """Overground walking at the person's own speed, toward and away from the
  camera between ~1.5 m and ~4.5 m depth, turning at the ends.

  Returns:
    f64[T, 32, 3] world positions, metres.
  """
  pos, prog = _walk_body(rng, m, body, num_frames, fps, float(m["cadence"]),
                         float(m["speed"]))
  radius = 0.3 + 0.1 * rng.random()
  near, far = 1.5 + 0.1 * rng.standard_normal(), 4.5 + 0.1 * rng.standard_normal()
  start = rng.random() * 2.0 * (far - near - 2.0 * radius + np.pi * radius)
  x, z, heading = _racetrack(start + prog, 0.1 * rng.standard_normal(), radius, near, far)
  origin = np.stack([x, np.full(num_frames, camera_height), z], axis=1)
  return body_lib.place(pos, heading, origin)


def walk_in_place(rng: np.random.Generator, m: Mapping[str, float],
                  body: body_lib.Body, num_frames: int, fps: float,
                  camera_height: float) -> np.ndarray:
  """Stepping in place (knee lifts), facing the camera at ~2.5 m.

  Returns:
    f64[T, 32, 3] world positions, metres.
  """
  cadence = float(m["wip_cadence"])
  cv = float(m["stride_cv"])
  offset, scale_l, scale_r = _asymmetry(m)
  cyc_l = signals.cycle_counts(rng, num_frames, fps, 120.0 / cadence, cv)
  cyc_r = cyc_l + offset
  common = signals.per_cycle(rng, cyc_l, 0.5 * cv + 0.02)
  legs = {}
  for s, cyc, scale in (("l", cyc_l, scale_l), ("r", cyc_r, scale_r)):
    lift = float(m["wip_hip_lift_deg"]) * scale * common * signals.bump(cyc % 1.0, 0.25, 0.11)
    legs[f"hip_flex_{s}"] = 2.0 + lift
    legs[f"knee_{s}"] = 3.0 + 1.9 * lift
    legs[f"ankle_{s}"] = -0.35 * lift  # the lifted foot's toes drop
  # Weight shifts onto the stance leg; the pelvis drops on the lifted side.
  legs["sway"] = 0.6 * float(m["pelvis_sway_m"]) * np.sin(_TWO_PI * cyc_l)
  legs["pelvis_list"] = -2.0 * np.sin(_TWO_PI * cyc_l)
  legs["pelvis_yaw"] = np.zeros(num_frames)
  width = 0.12 + 0.5 * (float(m["step_width"]) - 0.10)
  legs["hip_abd_l"], legs["hip_abd_r"] = body_lib.hip_abduction(
      body, width, legs["sway"], legs["pelvis_list"])
  arm = 0.5 * float(m["arm_swing_deg"]) * common
  swing_l = arm * np.cos(_TWO_PI * (cyc_r - 0.25))
  swing_r = arm * np.cos(_TWO_PI * (cyc_l - 0.25))
  pos, _, _ = _assemble(rng, m, body, legs, num_frames, fps, swing_l, swing_r)
  drift = signals.smooth_noise(rng, num_frames, fps, 0.05, channels=3)
  origin = np.stack([0.1 * rng.standard_normal() + 0.03 * drift[:, 0],
                     np.full(num_frames, camera_height),
                     2.5 + 0.1 * rng.standard_normal() + 0.03 * drift[:, 1]], axis=1)
  return body_lib.place(pos, 180.0 + 3.0 * drift[:, 2], origin)


def stroll(rng: np.random.Generator, m: Mapping[str, float], body: body_lib.Body,
           num_frames: int, fps: float, camera_height: float, speed: float,
           start: tuple[float, float], heading_deg: float) -> np.ndarray:
  """A straight walk at `speed` m/s (a passer-by), cadence scaled from the
  person's own by sqrt(speed ratio), as slower walkers shorten both.

  Args:
    speed: m/s.
    start: (x, z) world position of the pelvis at the first frame, m.
    heading_deg: walking direction; 0 = away from the camera, 180 = toward it.

  Returns:
    f64[T, 32, 3] world positions, metres.
  """
  cadence = float(m["cadence"]) * np.sqrt(speed / float(m["speed"]))
  pos, prog = _walk_body(rng, m, body, num_frames, fps, cadence, speed)
  h = np.deg2rad(heading_deg)
  origin = np.stack([start[0] + np.sin(h) * prog, np.full(num_frames, camera_height),
                     start[1] + np.cos(h) * prog], axis=1)
  return body_lib.place(pos, heading_deg, origin)
