"""The phenotype catalogue: 18 body systems, named headline targets, and how
generic targets of each system are drawn.

A named target lists the latent factors and covariates it depends on (weights
on their reference z-scores), its signal fraction r2 (share of the standardised
liability's variance that the signal explains), and its units. A target with
factors is `gait` (visible in motion through the factors' body regions), one
with only covariates is `covariate_only`, one with neither is `null`.
"""

from __future__ import annotations

import dataclasses

# The 18 body systems, with their share of the targets (microbiome, nutrition
# and lifestyle questionnaires are the largest panels, as in deep-phenotyping
# cohorts such as the HPP).
SYSTEMS: dict[str, float] = {
    "body_composition": 90, "bone_density": 40, "cardiovascular": 160, "frailty": 30,
    "glycemic_status": 70, "hematopoietic": 50, "immune_inflammation": 60,
    "lifestyle": 420, "liver": 40, "lipids": 160, "mental_health": 60,
    "microbiome": 1000, "nutrition": 600, "renal_function": 30, "sleep": 120,
    "hormonal": 30, "medical_conditions": 200, "medications": 150,
}

# Factors a generic `gait` target of each system draws from, with odds.
SYSTEM_FACTORS: dict[str, dict[str, float]] = {
    "body_composition": {"metabolic_health": 3, "fitness": 2, "lifestyle": 1},
    "bone_density": {"frailty": 3, "fitness": 2},
    "cardiovascular": {"fitness": 3, "metabolic_health": 2, "lifestyle": 1},
    "frailty": {"frailty": 4, "fitness": 2, "asymmetry": 1},
    "glycemic_status": {"metabolic_health": 4, "lifestyle": 1},
    "hematopoietic": {"fitness": 1, "frailty": 1, "metabolic_health": 1},
    "immune_inflammation": {"metabolic_health": 2, "frailty": 2, "lifestyle": 1},
    "lifestyle": {"lifestyle": 4, "sleep_quality": 1, "mood": 1, "fitness": 1},
    "liver": {"metabolic_health": 4, "lifestyle": 1},
    "lipids": {"metabolic_health": 3, "lifestyle": 1},
    "mental_health": {"mood": 4, "sleep_quality": 2},
    "microbiome": {"lifestyle": 2, "metabolic_health": 2},
    "nutrition": {"lifestyle": 3, "metabolic_health": 1},
    "renal_function": {"frailty": 2, "metabolic_health": 2},
    "sleep": {"sleep_quality": 4, "mood": 1},
    "hormonal": {"metabolic_health": 2, "fitness": 1, "mood": 1},
    "medical_conditions": {"frailty": 2, "metabolic_health": 2, "asymmetry": 2,
                           "mood": 1, "sleep_quality": 1},
    "medications": {"metabolic_health": 2, "frailty": 1, "mood": 1, "sleep_quality": 1},
}

# Share of a system's generic targets that are binary.
BINARY_SHARE: dict[str, float] = {
    "medical_conditions": 1.0, "medications": 1.0, "lifestyle": 0.3,
    "mental_health": 0.3, "sleep": 0.15, "microbiome": 0.05,
}
DEFAULT_BINARY_SHARE = 0.1

# Weak-signal panels: generic targets there explain little variance.
WEAK_SYSTEMS = ("microbiome", "nutrition")

_ABBREV = {"fit": "fitness", "fra": "frailty", "met": "metabolic_health",
           "slp": "sleep_quality", "lif": "lifestyle", "mood": "mood",
           "asym": "asymmetry", "age": "age", "sex": "sex", "height": "height",
           "bmi": "bmi", "vat": "visceral_fat"}


@dataclasses.dataclass(frozen=True)
class Named:
  """A headline target. Weights are on reference z-scores (sex: male = +)."""
  name: str
  kind: str  # "continuous" | "binary"
  weights: dict[str, float]
  r2: float
  loc: float = 0.0  # continuous: mean (identity) or median (log)
  scale: float = 1.0  # continuous: s.d. (identity) or s.d. of the natural log (log)
  unit: str = ""
  transform: str = "identity"  # "identity" | "log"
  prevalence: float | None = None  # binary
  lower: float | None = None  # continuous: values floored here (scores, counts)
  sex_only: str | None = None  # "female" | "male": missing for the other sex


def _c(name, weights, r2, loc, scale, unit="", **kw) -> Named:
  return Named(name, "continuous", {_ABBREV[k]: v for k, v in weights.items()}, r2,
               loc, scale, unit, **kw)


def _b(name, prevalence, weights, r2, **kw) -> Named:
  return Named(name, "binary", {_ABBREV[k]: v for k, v in weights.items()}, r2,
               prevalence=prevalence, **kw)


LOG = dict(transform="log")

NAMED: dict[str, list[Named]] = {
    "body_composition": [
        _c("body_fat_percent", dict(met=-0.3, fit=-0.3, sex=-0.7, bmi=0.6, vat=0.2),
            0.8, 30, 7, "%"),
        _c("waist_circumference", dict(bmi=0.7, vat=0.4, sex=0.3, height=0.15), 0.85, 92, 12, "cm"),
        _c("hip_circumference", dict(bmi=0.8, sex=-0.2, height=0.2), 0.8, 102, 9, "cm"),
        _c("total_fat_mass", dict(bmi=0.8, sex=-0.5, height=0.2), 0.85, 25, 8, "kg"),
        _c("lean_mass", dict(fit=0.2, sex=0.8, height=0.5, bmi=0.3), 0.85, 48, 10, "kg"),
        _c("appendicular_lean_mass_index", dict(fit=0.35, fra=-0.35, sex=0.6, bmi=0.3),
            0.7, 7.2, 1.1, "kg/m^2"),
        _c("android_gynoid_ratio", dict(met=-0.4, sex=0.5, vat=0.5), 0.7, 1.0, 0.2),
        _c("trunk_fat_mass", dict(bmi=0.7, vat=0.5), 0.85, 13, 5, "kg"),
        _c("waist_hip_ratio", dict(met=-0.3, sex=0.6, vat=0.4), 0.6, 0.9, 0.08),
    ],
    "bone_density": [
        _c("bmd_total_body", dict(fra=-0.3, fit=0.2, sex=0.5, age=-0.2, bmi=0.3),
            0.45, 1.15, 0.11, "g/cm^2"),
        _c("bmd_femoral_neck", dict(fra=-0.35, sex=0.4, age=-0.3, bmi=0.3),
            0.45, 0.85, 0.12, "g/cm^2"),
        _c("bmd_lumbar_spine", dict(sex=0.3, age=-0.2, bmi=0.3), 0.3, 1.05, 0.15, "g/cm^2"),
        _c("t_score_femoral_neck", dict(fra=-0.35, sex=0.3, age=-0.4, bmi=0.3), 0.45, -0.8, 1.0),
        _b("osteopenia", 0.25, dict(fra=0.4, sex=-0.5, age=0.4, bmi=-0.3), 0.4),
        _b("osteoporosis", 0.06, dict(fra=0.4, sex=-0.5, age=0.5), 0.4),
    ],
    "cardiovascular": [
        _c("systolic_bp", dict(met=-0.3, fit=-0.2, age=0.4, bmi=0.25, sex=0.2),
            0.35, 124, 15, "mmHg"),
        _c("diastolic_bp", dict(met=-0.25, fit=-0.15, age=0.2, bmi=0.3, sex=0.2),
            0.3, 78, 10, "mmHg"),
        _c("resting_heart_rate", dict(fit=-0.5, lif=-0.2, sex=-0.2), 0.35, 68, 10, "bpm"),
        _c("pulse_wave_velocity", dict(met=-0.25, age=0.6), 0.45, 8.5, 1.6, "m/s"),
        _c("carotid_intima_media_thickness", dict(age=0.5, sex=0.2, bmi=0.15),
            0.35, 0.7, 0.12, "mm"),
        _c("heart_rate_variability_rmssd", dict(fit=0.3, slp=0.2, age=-0.5),
            0.35, 30, 0.45, "ms", **LOG),
        _c("ecg_qtc", dict(sex=-0.4, age=0.15), 0.2, 415, 22, "ms"),
        _c("ankle_brachial_index", {}, 0.0, 1.1, 0.1),
        _c("vo2max_estimated", dict(fit=0.7, fra=-0.2, sex=0.4, age=-0.3, bmi=-0.3),
            0.75, 30, 7, "ml/kg/min"),
    ],
    "frailty": [
        _c("grip_strength_dominant", dict(fit=0.3, fra=-0.4, sex=0.8, height=0.2, age=-0.2),
            0.8, 33, 10, "kg"),
        _c("grip_strength_nondominant", dict(fit=0.3, fra=-0.4, sex=0.8, height=0.2, age=-0.2),
            0.75, 31, 9.5, "kg"),
        _c("timed_up_and_go", dict(fra=0.6, fit=-0.3, age=0.2, bmi=0.1),
            0.55, 8.5, 0.18, "s", **LOG),
        _c("frailty_index", dict(fra=0.7, age=0.2), 0.6, 0.12, 0.4, **LOG),
        _b("fall_last_year", 0.12, dict(fra=0.5, asym=0.3), 0.25),
        _b("slow_walking_self_report", 0.1, dict(fra=0.6, fit=-0.3), 0.4),
        _b("sarcopenia_risk", 0.08, dict(fra=0.5, fit=-0.4, age=0.3), 0.5),
    ],
    "glycemic_status": [
        _c("hba1c", dict(met=-0.5, age=0.3, bmi=0.25), 0.4, 5.6, 0.09, "%", **LOG),
        _c("fasting_glucose", dict(met=-0.5, age=0.2, sex=0.2, bmi=0.2),
            0.35, 96, 0.14, "mg/dl", **LOG),
        _c("cgm_mean_glucose", dict(met=-0.45, age=0.2), 0.3, 105, 12, "mg/dl"),
        _c("cgm_glucose_cv", dict(met=-0.3), 0.2, 18, 4, "%"),
        _c("cgm_time_above_140", dict(met=-0.5, bmi=0.2), 0.35, 6, 0.9, "%", **LOG),
        _c("homa_ir", dict(met=-0.5, vat=0.4, bmi=0.2), 0.5, 2.0, 0.6, **LOG),
        _c("fasting_insulin", dict(met=-0.5, vat=0.4), 0.5, 9, 0.55, "uU/ml", **LOG),
        _b("prediabetes", 0.25, dict(met=-0.5, age=0.3, bmi=0.2), 0.4),
    ],
    "hematopoietic": [
        _c("hemoglobin", dict(sex=0.7), 0.5, 14, 1.3, "g/dl"),
        _c("hematocrit", dict(sex=0.65), 0.45, 41, 3.5, "%"),
        _c("red_blood_cell_count", dict(sex=0.6), 0.4, 4.7, 0.45, "10^12/l"),
        _c("platelet_count", dict(sex=-0.3, age=-0.1), 0.12, 250, 55, "10^9/l"),
        _c("white_blood_cell_count", dict(met=-0.25, lif=-0.2, bmi=0.15),
            0.15, 6.5, 0.25, "10^9/l", **LOG),
        _c("red_cell_distribution_width", dict(fra=0.3, age=0.2), 0.15, 13.2, 1.0, "%"),
        _c("mean_corpuscular_volume", {}, 0.0, 89, 4.5, "fl"),
    ],
    "immune_inflammation": [
        _c("crp", dict(met=-0.4, bmi=0.3, vat=0.2), 0.35, 1.5, 1.0, "mg/l", **LOG),
        _c("neutrophil_lymphocyte_ratio", dict(fra=0.3, age=0.2), 0.15, 1.9, 0.35, **LOG),
        _c("ferritin", dict(sex=0.5, age=0.2), 0.3, 110, 60, "ng/ml"),
        _c("esr", dict(sex=-0.3, age=0.3, bmi=0.2), 0.2, 12, 6, "mm/h"),
        _c("lymphocyte_count", {}, 0.0, 2.1, 0.6, "10^9/l"),
        _c("monocyte_count", {}, 0.0, 0.5, 0.15, "10^9/l"),
    ],
    "lifestyle": [
        _c("daily_steps", dict(lif=0.5, fit=0.3, fra=-0.2), 0.4, 8000, 3000, "steps", lower=0.0),
        _c("weekly_exercise_minutes", dict(lif=0.6, fit=0.3), 0.4, 120, 0.7, "min", **LOG),
        _c("sedentary_hours_per_day", dict(lif=-0.5), 0.25, 7, 2.5, "h", lower=0.0),
        _b("smoking_current", 0.12, dict(lif=-0.6), 0.35),
        _c("alcohol_units_per_week", {}, 0.0, 3, 0.9, "units", **LOG),
        _c("screen_time_hours", dict(lif=-0.4, slp=-0.2), 0.2, 3.5, 1.8, "h", lower=0.0),
        _c("walking_minutes_per_day", dict(lif=0.5, fit=0.3), 0.35, 40, 25, "min", lower=0.0),
        _b("vigorous_activity_weekly", 0.35, dict(lif=0.6, fit=0.4), 0.4),
    ],
    "liver": [
        _c("alt", dict(met=-0.4, sex=0.3, bmi=0.2), 0.3, 22, 0.45, "U/l", **LOG),
        _c("ast", dict(met=-0.25, sex=0.2), 0.15, 21, 0.3, "U/l", **LOG),
        _c("ggt", dict(met=-0.35, sex=0.3), 0.25, 22, 0.6, "U/l", **LOG),
        _c("liver_fat_cap", dict(met=-0.4, vat=0.4, bmi=0.2), 0.5, 250, 45, "dB/m"),
        _c("liver_stiffness", dict(met=-0.2, bmi=0.2), 0.12, 5, 0.3, "kPa", **LOG),
        _b("fatty_liver", 0.3, dict(met=-0.5, vat=0.4), 0.5),
        _c("albumin", dict(age=-0.2), 0.05, 4.4, 0.3, "g/dl"),
    ],
    "lipids": [
        _c("triglycerides", dict(met=-0.45, vat=0.3, sex=0.1), 0.35, 110, 0.5, "mg/dl", **LOG),
        _c("hdl_cholesterol", dict(met=0.35, lif=0.2, sex=-0.5, vat=-0.2), 0.45, 55, 14, "mg/dl"),
        _c("ldl_cholesterol", dict(age=0.1, sex=0.1), 0.05, 120, 32, "mg/dl"),
        _c("total_cholesterol", dict(age=0.15, sex=-0.1), 0.05, 195, 36, "mg/dl"),
        _c("apolipoprotein_b", dict(met=-0.2, age=0.1), 0.1, 95, 23, "mg/dl"),
        _c("lipoprotein_a", {}, 0.0, 15, 1.2, "mg/dl", **LOG),
        _c("non_hdl_cholesterol", dict(met=-0.2), 0.08, 140, 35, "mg/dl"),
    ],
    "mental_health": [
        _c("phq9_score", dict(mood=-0.6, slp=-0.2), 0.45, 4, 3.5, lower=0.0),
        _c("gad7_score", dict(mood=-0.5, slp=-0.25), 0.4, 3.5, 3.2, lower=0.0),
        _c("perceived_stress_score", dict(mood=-0.5, slp=-0.2, lif=-0.1), 0.35, 13, 6, lower=0.0),
        _c("life_satisfaction", dict(mood=0.6), 0.35, 7.5, 1.5),
        _b("depression_diagnosis", 0.1, dict(mood=-0.6), 0.4),
        _b("anxiety_diagnosis", 0.08, dict(mood=-0.5, slp=-0.2), 0.3),
        _c("loneliness_score", dict(mood=-0.4), 0.15, 4, 1.5, lower=0.0),
    ],
    "microbiome": [
        _c("shannon_diversity", dict(lif=0.3, met=0.3, age=0.1), 0.15, 3.6, 0.5),
        _c("species_richness", dict(lif=0.25, met=0.25), 0.12, 320, 70),
        _c("firmicutes_bacteroidetes_ratio", dict(met=-0.2, bmi=0.15), 0.08, 1.5, 0.6, **LOG),
        _c("prevotella_abundance", dict(lif=0.15), 0.04, 0.01, 1.5, **LOG),
        _c("akkermansia_abundance", dict(met=0.25), 0.06, 0.002, 1.5, **LOG),
    ],
    "nutrition": [
        _c("daily_energy", dict(sex=0.5, height=0.2, bmi=0.15), 0.3, 2000, 500, "kcal"),
        _c("protein_intake", dict(sex=0.4, bmi=0.1), 0.2, 80, 25, "g/day"),
        _c("fiber_intake", dict(lif=0.45, sex=0.1), 0.25, 24, 8, "g/day", lower=0.0),
        _c("added_sugar_intake", dict(lif=-0.35, met=-0.2), 0.18, 45, 20, "g/day", lower=0.0),
        _c("sodium_intake", dict(sex=0.3), 0.1, 3000, 900, "mg/day"),
        _c("vegetable_servings", dict(lif=0.45), 0.2, 3.2, 1.4, "servings/day", lower=0.0),
        _c("ultra_processed_food_share", dict(lif=-0.45, met=-0.15), 0.25, 30, 10, "%"),
        _c("coffee_cups_per_day", {}, 0.0, 2.2, 1.3, "cups", lower=0.0),
    ],
    "renal_function": [
        _c("creatinine", dict(sex=0.6, age=0.2, height=0.1), 0.45, 0.9, 0.2, "mg/dl"),
        _c("egfr", dict(fra=-0.25, age=-0.5), 0.35, 92, 14, "ml/min/1.73m^2"),
        _c("urea", dict(age=0.3, sex=0.2), 0.15, 32, 8, "mg/dl"),
        _c("urine_albumin_creatinine_ratio", dict(met=-0.3, age=0.1), 0.1, 8, 0.8, "mg/g", **LOG),
        _c("uric_acid", dict(met=-0.3, sex=0.5, bmi=0.2), 0.45, 5.3, 1.3, "mg/dl"),
    ],
    "sleep": [
        _c("sleep_efficiency", dict(slp=0.65, age=-0.15), 0.45, 85, 7, "%"),
        _c("total_sleep_time", dict(slp=0.55, lif=0.1), 0.35, 380, 55, "min"),
        _c("sleep_latency", dict(slp=-0.5), 0.25, 15, 0.6, "min", **LOG),
        _c("wake_after_sleep_onset", dict(slp=-0.5, age=0.25), 0.35, 50, 25, "min", lower=0.0),
        _c("apnea_hypopnea_index", dict(slp=-0.2, bmi=0.4, vat=0.3, sex=0.3, age=0.2),
            0.45, 8, 0.9, "events/h", **LOG),
        _c("oxygen_desaturation_index", dict(bmi=0.45, vat=0.3, sex=0.2, age=0.2),
            0.45, 8, 6, "events/h"),
        _c("mean_spo2_sleep", dict(bmi=-0.4, age=-0.2), 0.25, 94.5, 1.5, "%"),
        _b("moderate_sleep_apnea", 0.2, dict(slp=-0.2, bmi=0.4, vat=0.3, sex=0.3, age=0.2), 0.45),
        _c("rem_sleep_share", dict(slp=0.3, mood=0.15, age=-0.15), 0.15, 21, 5, "%"),
        _c("deep_sleep_share", dict(slp=0.35, age=-0.3, sex=-0.2), 0.25, 15, 6, "%"),
    ],
    "hormonal": [
        _c("tsh", {}, 0.0, 2.0, 0.45, "mIU/l", **LOG),
        _c("free_t4", {}, 0.0, 1.2, 0.17, "ng/dl"),
        _c("testosterone_total", dict(met=0.3, fit=0.2, age=-0.3, vat=-0.3),
            0.35, 480, 150, "ng/dl", sex_only="male"),
        _c("estradiol", dict(age=-0.6), 0.4, 60, 50, "pg/ml", sex_only="female"),
        _b("postmenopausal", 0.55, dict(age=0.9), 0.8, sex_only="female"),
        _c("cortisol_morning", dict(slp=-0.2, mood=-0.2), 0.08, 13, 4.5, "ug/dl"),
        _c("vitamin_d", dict(lif=0.35, bmi=-0.2), 0.18, 25, 9, "ng/ml"),
        _c("shbg", dict(sex=-0.5, bmi=-0.3, age=0.2), 0.45, 50, 22, "nmol/l"),
        _c("igf1", dict(fit=0.2, age=-0.4), 0.25, 140, 40, "ng/ml"),
    ],
    "medical_conditions": [
        _b("hypertension", 0.25, dict(met=-0.35, age=0.5, bmi=0.3), 0.45),
        _b("type2_diabetes", 0.08, dict(met=-0.6, age=0.3, bmi=0.3), 0.55),
        _b("hyperlipidemia", 0.25, dict(met=-0.35, age=0.4), 0.3),
        _b("knee_osteoarthritis", 0.12, dict(asym=0.6, age=0.3, bmi=0.3), 0.45),
        _b("chronic_back_pain", 0.15, dict(asym=0.5, lif=-0.2), 0.3),
        _b("nafld_diagnosis", 0.2, dict(met=-0.5, vat=0.4), 0.5),
        _b("hypothyroidism", 0.06, dict(sex=-0.6), 0.3),
        _b("asthma", 0.07, {}, 0.0),
        _b("insomnia", 0.1, dict(slp=-0.7), 0.45),
        _b("major_depressive_disorder", 0.08, dict(mood=-0.7), 0.45),
        _b("migraine", 0.12, dict(sex=-0.5), 0.2),
        _b("gout", 0.03, dict(sex=0.6, bmi=0.3), 0.35),
        _b("cardiovascular_disease", 0.06, dict(fit=-0.3, met=-0.3, age=0.5, sex=0.3), 0.4),
        _b("chronic_hip_pain", 0.08, dict(asym=0.6, fra=0.2), 0.35),
    ],
    "medications": [
        _b("statins", 0.15, dict(met=-0.3, age=0.6), 0.4),
        _b("metformin", 0.06, dict(met=-0.6, bmi=0.3), 0.5),
        _b("antihypertensives", 0.2, dict(met=-0.3, age=0.5, bmi=0.3), 0.45),
        _b("ssri_antidepressants", 0.07, dict(mood=-0.6), 0.35),
        _b("proton_pump_inhibitors", 0.1, {}, 0.0),
        _b("levothyroxine", 0.06, dict(sex=-0.6, age=0.2), 0.3),
        _b("nsaids_regular", 0.08, dict(asym=0.5), 0.25),
        _b("sleep_medication", 0.05, dict(slp=-0.6, age=0.2), 0.35),
        _b("vitamin_d_supplement", 0.2, dict(lif=0.3, sex=-0.3, age=0.2), 0.15),
        _b("aspirin_low_dose", 0.08, dict(age=0.6, sex=0.2), 0.35),
        _b("hormone_therapy_or_contraceptive", 0.1, dict(age=-0.3), 0.1, sex_only="female"),
    ],
}
assert list(NAMED) == list(SYSTEMS) == list(SYSTEM_FACTORS)
