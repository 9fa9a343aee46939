"""Who the synthetic participants are: covariates and latent health factors.

Each participant i draws one vector of standard normals from its own generator,
`np.random.default_rng([seed, i, STREAM_PERSON])`, and everything about the person (age,
sex, body size, latent factors and the idiosyncrasies of their movement) is a
fixed function of that vector. A participant is therefore the same person
whatever the cohort size or the number of worker processes.

Latent factors are z-scores against a fixed reference population (50,000 people
drawn once from a constant seed), so a factor value means the same in every
cohort, and phenotype noise levels and binary prevalences can be set
analytically rather than from the sample at hand.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import special

from data_tools.synth import body

# Standard normals per participant: 13 for who they are, the rest for how they
# move (motor.py). Appending dimensions would not change existing ones.
NOISE_DIM = 40
_MOTOR_NOISE = slice(13, NOISE_DIM)
# The first motor normal is the leg's proportion: leg_ratio = 1 + LEG_RATIO_SD * z
# scales Winter's thigh and shank (body.py), so the skeleton is drawn with the
# leg_length covariate's leg.
LEG_RATIO_SD = 0.015

# Covariate columns of phenotypes.parquet, in order, with their units.
COVARIATES: dict[str, str] = {
    "age": "years",
    "sex": "1 = male, 0 = female",
    "height": "cm",
    "weight": "kg",
    "bmi": "kg/m^2",
    "visceral_fat": "kg, DXA visceral adipose tissue mass",
    "leg_length": "cm, hip joint to ankle joint (thigh + shank), the skeleton's own",
}

# Latent factors: higher = more of the named quality. `regions` are the
# gait_jax.skeleton.REGIONS through which motor.py makes the factor visible.
FACTORS: dict[str, dict] = {
    "fitness": dict(
        description="cardiorespiratory and muscular fitness; falls with age, rises "
        "with an active lifestyle",
        regions=["left_leg", "right_leg", "left_arm", "right_arm"],
        motion="faster self-selected speed, longer strides, more knee flexion and "
        "arm swing, quicker sit-to-stand, less Romberg sway"),
    "frailty": dict(
        description="frailty / loss of physiological reserve; rises with age and "
        "BMI, falls with fitness",
        regions=["left_leg", "right_leg"],
        motion="slower and shorter strides, more stride-time variability, longer "
        "double support, less knee flexion, slower sit-to-stand with more trunk "
        "flexion, more Romberg sway"),
    "metabolic_health": dict(
        description="metabolic health (insulin sensitivity, liver fat, lipids); "
        "falls with BMI and visceral fat, rises with lifestyle",
        regions=["left_leg", "right_leg"],
        motion="worse health: wider steps, less knee flexion, longer stance, more "
        "lateral pelvis sway"),
    "sleep_quality": dict(
        description="sleep quality and quantity; partly shared with mood and "
        "lifestyle",
        regions=["torso"],
        motion="poor sleep: more forward trunk lean and more low-frequency torso "
        "sway while walking and standing"),
    "lifestyle": dict(
        description="healthy lifestyle and physical activity (diet, exercise, not "
        "smoking)",
        regions=["torso"],
        motion="poor lifestyle: more forward trunk lean (slumped posture) and more "
        "torso sway"),
    "mood": dict(
        description="mood / mental well-being; partly shared with sleep and "
        "lifestyle",
        regions=["head", "torso"],
        motion="low mood: head pitched down, slight trunk slump"),
    "asymmetry": dict(
        description="left-right asymmetry from joint pain (knee/hip/back); rises "
        "with age and BMI; the affected side is `asymmetry_side`",
        regions=["left_leg", "right_leg"],
        motion="antalgic gait: shorter stance, smaller hip/knee excursion and arm "
        "swing on the affected side, unequal step times"),
}
FACTOR_NAMES: tuple[str, ...] = tuple(FACTORS)

# Covariates that phenotype targets may depend on (weight is height x BMI, leg
# length height x the leg's proportion).
COVARIATE_SOURCES: tuple[str, ...] = ("age", "sex", "height", "bmi", "visceral_fat")
# Columns of the source matrix phenotypes are linear in: factors then covariates.
SOURCES: tuple[str, ...] = FACTOR_NAMES + COVARIATE_SOURCES

# Random streams: participant i's person, motion (+ task number) and phenotype
# noise are [seed, i, STREAM_*]; the target design is [seed, STREAM_DESIGN].
# Tags are non-zero because numpy's SeedSequence ignores trailing zeros.
STREAM_PERSON, STREAM_MOTION, STREAM_PHENOTYPES, STREAM_DESIGN = 1, 2, 3, 4
# The Azure Kinect JSON's extras (k4abt.py: bystanders, id switches, guesses):
# [seed, i, STREAM_K4ABT, task_number + 1], apart from the motion, so the npz
# output and the JSON's participant are the same whichever format is written.
STREAM_K4ABT = 5

_REFERENCE_SEED = 20_240_601
_REFERENCE_SIZE = 50_000


def participant_noise(seed: int, index: int) -> np.ndarray:
  """f64[NOISE_DIM] standard normals that define participant `index`."""
  return np.random.default_rng([seed, index, STREAM_PERSON]).standard_normal(NOISE_DIM)


def participant_id(index: int) -> str:
  """'P00001' for index 0."""
  return f"P{index + 1:05d}"


def _raw(e: np.ndarray) -> dict[str, np.ndarray]:
  """Covariates and unstandardised latents from noise f64[N, NOISE_DIM].

  The structural equations: lifestyle is exogenous; fitness follows lifestyle
  and age; BMI follows lifestyle and fitness; metabolic health follows BMI;
  visceral fat follows BMI, sex, age and metabolic health's own part; frailty
  follows age, BMI and fitness; sleep, mood and asymmetry each keep a large
  independent part (every factor has one, so covariate adjustment leaves signal).
  """
  age = 39.5 + 31.0 * special.ndtr(0.85 * e[:, 0])
  male = (special.ndtr(e[:, 1]) < 0.47).astype(np.float64)
  a = (age - 55.0) / 9.0
  height = np.where(male > 0, 176.0, 162.5) + np.where(male > 0, 6.8, 6.0) * e[:, 2]
  height -= 0.08 * (age - 55.0)  # older cohorts are shorter (secular trend + loss)
  leg_ratio = 1.0 + LEG_RATIO_SD * e[:, _MOTOR_NOISE.start]
  lifestyle = e[:, 3]
  fitness = 0.35 * lifestyle - 0.30 * a + 0.88 * e[:, 4]
  log_bmi = (np.log(26.2) + 0.02 * male + 0.03 * a - 0.045 * lifestyle
             - 0.035 * fitness + 0.15 * e[:, 5])
  bmi = np.clip(np.exp(log_bmi), 16.0, 55.0)
  b = (np.log(bmi) - np.log(26.2)) / 0.16
  metabolic = -0.45 * b - 0.15 * a + 0.2 * lifestyle + 0.1 * fitness + 0.8 * e[:, 6]
  log_vat = (np.log(0.62) + 0.62 * male + 2.6 * (np.log(bmi) - np.log(26.2))
             + 0.18 * a - 0.18 * e[:, 6] + 0.25 * e[:, 7])
  frailty = (0.45 * a + 0.2 * b - 0.25 * fitness - 0.1 * lifestyle
             + 0.1 * (1.0 - male) + 0.78 * e[:, 8])
  sleep = 0.2 * lifestyle - 0.15 * b - 0.05 * a + 0.95 * e[:, 9]
  mood = 0.3 * e[:, 9] + 0.2 * lifestyle - 0.1 * (1.0 - male) + 0.9 * e[:, 10]
  asymmetry = 0.25 * a + 0.2 * b + 0.15 * e[:, 8] + 0.9 * e[:, 11]
  return {
      "age": age, "sex": male, "height": height,
      "weight": bmi * np.square(height / 100.0), "bmi": bmi,
      "visceral_fat": np.exp(log_vat),
      "leg_length": body.leg_length(height, leg_ratio), "leg_ratio": leg_ratio,
      "fitness": fitness, "frailty": frailty, "metabolic_health": metabolic,
      "sleep_quality": sleep, "lifestyle": lifestyle, "mood": mood,
      "asymmetry": asymmetry,
  }


@functools.cache
def reference() -> dict[str, tuple[float, float]]:
  """(mean, s.d.) of every covariate and raw latent in the reference population.

  Covariates are z-scored on the scale of their phenotypes.parquet column, so
  that a target linear in a covariate's z-score is linear in the column, and
  covariate adjustment by linear regression removes it exactly.
  """
  e = np.random.default_rng(_REFERENCE_SEED).standard_normal((_REFERENCE_SIZE, NOISE_DIM))
  raw = _raw(e)
  return {k: (float(v.mean()), float(v.std())) for k, v in raw.items()}


@functools.cache
def source_correlation() -> np.ndarray:
  """f64[S, S] correlation of the SOURCES z-scores in the reference population."""
  e = np.random.default_rng(_REFERENCE_SEED).standard_normal((_REFERENCE_SIZE, NOISE_DIM))
  return np.corrcoef(source_matrix(_from_noise(e)), rowvar=False)


def _from_noise(e: np.ndarray) -> dict[str, np.ndarray]:
  """People (covariates, z-scored factors, z-scored covariates) from noise."""
  raw = _raw(e)
  ref = reference()
  people = {k: raw[k] for k in COVARIATES}
  for name in FACTOR_NAMES:
    mean, sd = ref[name]
    people[name] = (raw[name] - mean) / sd
  for name in COVARIATE_SOURCES:
    mean, sd = ref[name]
    people[f"{name}_z"] = (raw[name] - mean) / sd
  # +1: the right side is the painful one; -1: the left.
  people["asymmetry_side"] = np.where(e[:, 12] > 0, 1.0, -1.0)
  people["leg_ratio"] = raw["leg_ratio"]
  people["motor_noise"] = e[:, _MOTOR_NOISE]
  return people


def from_noise(e: np.ndarray) -> dict[str, np.ndarray]:
  """People from standard normals f64[N, NOISE_DIM], as `sample` returns them;
  for people outside the cohort (k4abt.py's bystanders)."""
  return _from_noise(e)


def sample(seed: int, num_participants: int) -> dict[str, np.ndarray]:
  """The cohort's people, participant i from its own generator.

  Returns:
    dict of f64[N] arrays: the COVARIATES (units in COVARIATES), each factor of
    FACTOR_NAMES as a reference z-score, `<covariate>_z` for COVARIATE_SOURCES,
    `asymmetry_side` (+1 right, -1 left), `leg_ratio` (the leg's proportion,
    leg_length / Winter's), and `motor_noise` f64[N, NOISE_DIM - 13] for motor.py.
  """
  e = np.stack([participant_noise(seed, i) for i in range(num_participants)]) \
      if num_participants else np.zeros((0, NOISE_DIM))
  return _from_noise(e)


def source_matrix(people: dict[str, np.ndarray]) -> np.ndarray:
  """f64[N, S] the SOURCES columns (factor z-scores, then covariate z-scores)."""
  cols = [people[f] for f in FACTOR_NAMES] + [people[f"{c}_z"] for c in COVARIATE_SOURCES]
  return np.stack(cols, axis=1)
