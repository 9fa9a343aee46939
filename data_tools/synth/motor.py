"""How each person moves: the planted links from traits to motion parameters.

This module is where the study's signal is planted. Every motion parameter is a
fixed function of the person's covariates, latent factors and a personal
idiosyncrasy (their own motor noise, the same in all five tasks), e.g.:

  older / frailer      → slower, shorter strides, more variability, less arm
                         swing, slower sit-to-stand, more Romberg sway;
  higher BMI / VAT     → wider steps, more lateral sway, less knee flexion,
                         wider hips, arms held away from the trunk, belly forward;
  poor sleep/lifestyle → more forward trunk lean, more torso sway;
  low mood             → head pitched down;
  asymmetry            → antalgic left/right differences.

Functions are vectorised over participants: dict of f64[N] in, dict of f64[N] out.
"""

from __future__ import annotations

import numpy as np

# name → unit and meaning, in the order of latents.parquet's `motor_*` columns.
PARAMS: dict[str, str] = {
    "height_m": "m, standing height",
    "leg_ratio": "leg length / Winter's proportion",
    "arm_ratio": "arm length / Winter's proportion",
    "shoulder_half": "m, mid-line to shoulder joint",
    "hip_half": "m, pelvis joint to hip joint, laterally",
    "belly_forward": "m, SPINE_NAVEL forward of the spine line (visceral fat)",
    "arm_abduction_deg": "deg, arms held away from the trunk",
    "speed": "m/s, self-selected overground walking speed",
    "cadence": "steps/min at self-selected speed",
    "treadmill_cadence": "steps/min at 3 km/h",
    "stride_cv": "stride-time coefficient of variation",
    "stance_fraction": "stance / stride duration (0.6 normative)",
    "step_width": "m, lateral distance between the ankles in stance",
    "knee_swing_deg": "deg, peak swing knee flexion",
    "knee_stance_deg": "deg, loading-response knee flexion",
    "arm_swing_deg": "deg, shoulder flexion amplitude at 1.3 m/s",
    "pelvis_sway_m": "m, lateral pelvis excursion amplitude",
    "trunk_lean_deg": "deg, forward trunk lean",
    "torso_sway_deg": "deg, s.d. of low-frequency torso sway",
    "head_pitch_deg": "deg, head pitched down from horizontal gaze",
    "asym_magnitude": "0..~2, antalgic asymmetry strength",
    "asymmetry_side": "+1 right side affected, -1 left",
    "wip_cadence": "steps/min walking in place",
    "wip_hip_lift_deg": "deg, peak hip flexion walking in place",
    "sts_cycle_s": "s, one sit-to-stand-to-sit cycle",
    "sts_trunk_flex_deg": "deg, peak trunk flexion rising from the chair",
    "romberg_sway_deg": "deg, s.d. of antero-posterior body sway, eyes closed",
    "romberg_ml_ratio": "medio-lateral / antero-posterior sway",
}

TREADMILL_SPEED = 3.0 / 3.6  # m/s, the protocol's fixed belt speed


def _softplus(x: np.ndarray) -> np.ndarray:
  return np.logaddexp(0.0, x)


def params(people: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Motion parameters (PARAMS) for each person.

  Args:
    people: people.sample output (f64[N] arrays; motor_noise f64[N, K]).

  Returns:
    dict name → f64[N], units as in PARAMS.
  """
  a, b, v = people["age_z"], people["bmi_z"], people["visceral_fat_z"]
  male = people["sex"]
  fit, fra = people["fitness"], people["frailty"]
  met, slp = people["metabolic_health"], people["sleep_quality"]
  lif, mood, asym = people["lifestyle"], people["mood"], people["asymmetry"]
  n = people["motor_noise"].T
  h = people["height"] / 100.0
  p = {}
  p["height_m"] = h
  p["leg_ratio"] = people["leg_ratio"]  # the leg_length covariate's (n[0])
  p["arm_ratio"] = 1.0 + 0.015 * n[1]
  p["shoulder_half"] = 0.1 * h * (1.0 + 0.04 * male) * (1.0 + 0.03 * n[2])
  # Fat around the hips and belly moves where a depth tracker puts the joints.
  p["hip_half"] = 0.05 * h * (1.0 + 0.06 * b + 0.02 * v) * (1.0 + 0.03 * n[3])
  p["belly_forward"] = np.clip(0.012 * v + 0.006 * b, -0.015, 0.05)
  p["arm_abduction_deg"] = np.clip(5.0 + 2.5 * b + 1.5 * v + 1.5 * n[4], 0.0, 25.0)
  p["speed"] = np.clip(1.30 + 0.03 * male - 0.07 * a - 0.08 * fra + 0.06 * fit
                       - 0.03 * b + 0.025 * lif + 0.02 * mood + 0.07 * n[5], 0.6, 1.9)
  # Cadence grows with speed and falls with height (longer legs, longer steps).
  style = np.exp(0.03 * n[6]) * np.sqrt(1.70 / h)
  p["cadence"] = 113.0 * np.sqrt(p["speed"] / 1.3) * style
  p["treadmill_cadence"] = 113.0 * (TREADMILL_SPEED / 1.3) ** 0.45 * style
  p["stride_cv"] = np.clip(0.02 * np.exp(0.25 * a + 0.3 * fra - 0.1 * fit + 0.2 * n[7]),
                           0.008, 0.08)
  p["stance_fraction"] = np.clip(0.60 + 0.01 * a + 0.012 * fra + 0.008 * b
                                 - 0.008 * met + 0.006 * n[8], 0.56, 0.68)
  p["step_width"] = np.clip(0.10 + 0.022 * b + 0.01 * v - 0.008 * met + 0.008 * fra
                            + 0.012 * n[9], 0.03, 0.25)
  p["knee_swing_deg"] = np.clip(58.0 - 3.0 * b - 1.5 * v + 1.5 * met - 2.0 * fra
                                + 2.0 * fit + 2.5 * n[10], 35.0, 72.0)
  p["knee_stance_deg"] = np.clip(15.0 - 2.0 * b - 1.0 * fra + 1.0 * fit + 0.8 * met
                                 + 2.0 * n[11], 3.0, 28.0)
  p["arm_swing_deg"] = np.clip(
      16.0 * np.exp(0.2 * fit - 0.25 * fra - 0.1 * a + 0.08 * mood + 0.25 * n[12]),
      3.0, 45.0)
  p["pelvis_sway_m"] = np.clip(0.022 + 0.005 * b + 0.003 * v - 0.002 * met
                               + 0.002 * fra + 0.003 * n[13], 0.008, 0.06)
  p["trunk_lean_deg"] = np.clip(5.0 + 1.5 * fra + 1.0 * a - 1.6 * slp - 1.6 * lif
                                - 0.8 * mood + 1.5 * n[14], -4.0, 25.0)
  p["torso_sway_deg"] = 0.8 * np.exp(-0.3 * slp - 0.3 * lif + 0.1 * fra + 0.2 * n[15])
  p["head_pitch_deg"] = np.clip(6.0 - 2.5 * mood - 1.5 * slp + 0.5 * a + 2.0 * n[16],
                                -10.0, 30.0)
  p["asym_magnitude"] = 0.5 * _softplus(asym - 0.5)
  p["asymmetry_side"] = people["asymmetry_side"]
  p["wip_cadence"] = 105.0 * np.exp(0.06 * fit - 0.05 * fra - 0.03 * a + 0.06 * n[17])
  p["wip_hip_lift_deg"] = np.clip(35.0 + 5.0 * fit - 5.0 * fra - 2.0 * b - 2.0 * a
                                  + 4.0 * n[18], 12.0, 70.0)
  p["sts_cycle_s"] = np.clip(2.6 * np.exp(0.10 * a + 0.12 * fra - 0.10 * fit + 0.05 * b
                                          + 0.12 * n[19]), 1.5, 6.0)
  p["sts_trunk_flex_deg"] = np.clip(38.0 + 5.0 * fra + 3.0 * a - 4.0 * fit + 4.0 * b
                                    + 5.0 * n[20], 15.0, 70.0)
  p["romberg_sway_deg"] = 0.45 * np.exp(0.25 * a + 0.3 * fra + 0.12 * b - 0.1 * fit
                                        + 0.08 * v + 0.25 * n[21])
  p["romberg_ml_ratio"] = 0.6 * np.exp(0.1 * b + 0.2 * n[22])
  assert list(p) == list(PARAMS)
  return p
