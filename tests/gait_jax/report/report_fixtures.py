"""A fabricated run directory with every stage the report reads (no training).

`make_run(root)` writes small files with the columns the stages write; the values
are random but seeded, so tests can recompute what a table should hold.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pandas as pd

from gait_jax import schema

N_PEOPLE = 24
TASKS = ("treadmill", "self_selected_walk")
# target → (system, kind)
TARGETS = {
    "age": ("anthropometrics", "continuous"), "sex": ("anthropometrics", "binary"),
    "bmi": ("anthropometrics", "continuous"),
    "visceral_fat": ("anthropometrics", "continuous"),
    "ldl": ("lipids", "continuous"), "hdl": ("lipids", "continuous"),
    "triglycerides": ("lipids", "continuous"),
    "sleep_hours": ("sleep", "continuous"),
    **{f"diagnosis_{i}": ("medical_conditions", "binary") for i in range(14)},
    **{f"medication_{i}": ("medications", "binary") for i in range(10)},
}
SUBSETS = ("all", "male", "female")
REGIONS = ("legs", "arms", "torso", "head")
SYSTEMS = ("anthropometrics", "lipids", "sleep", "medical_conditions", "medications")


def people() -> list[str]:
  return [f"P{i:03d}" for i in range(N_PEOPLE)]


def write_cohort(root: pathlib.Path, rng: np.random.Generator) -> None:
  d = root / "cohort"
  d.mkdir(parents=True, exist_ok=True)
  sex = np.arange(N_PEOPLE) % 2
  pd.DataFrame({"participant_id": people(), "age": rng.uniform(40, 70, N_PEOPLE),
                "sex": sex, "bmi": rng.uniform(19, 35, N_PEOPLE),
                "visceral_fat": rng.uniform(0.5, 3, N_PEOPLE),
                "height": rng.uniform(150, 190, N_PEOPLE)}).to_parquet(
                    d / "phenotypes.parquet", index=False)
  pd.DataFrame([{"target": t, "system": s, "kind": k, "is_covariate": s == "anthropometrics"}
                for t, (s, k) in TARGETS.items()]).to_csv(d / "dictionary.csv", index=False)
  cats = ["gait", "covariate_only", "null"]
  truth = {"targets": {t: {"category": cats[i % 3]} for i, t in enumerate(TARGETS)}}
  (d / "truth.json").write_text(json.dumps(truth))


def write_shards(root: pathlib.Path) -> None:
  d = root / "shards"
  d.mkdir(parents=True, exist_ok=True)
  rows = []
  for i, p in enumerate(people()[:6]):
    for task in TASKS:
      bad = (i, task) in ((0, "treadmill"), (1, "treadmill"), (2, "self_selected_walk"))
      rows.append({"file": f"rec/{p}_{task}.npz", "participant": p, "task": task,
                   "session": 0, "status": "excluded" if bad else "ok",
                   "reason": ("too_short" if i < 2 else "bone_length") if bad else "",
                   "detail": f"{i + 10} frames" if bad else "", "frames_in": 900,
                   "frames_out": 0 if bad else 900, "clips": 0 if bad else 5, "notes": ""})
  pd.DataFrame(rows).to_csv(d / "qc_report.csv", index=False)


def write_pretrain(root: pathlib.Path) -> None:
  d = root / "pretrain_small"
  d.mkdir(parents=True, exist_ok=True)
  lines = []
  for step in range(10, 110, 10):
    rec = {"step": step, "loss": 1.0 / step, "lr": 1e-3}
    if step % 50 == 0:
      rec.update({"val/loss": 1.2 / step, "val/loss/treadmill": 1.3 / step})
    lines.append(json.dumps(rec))
  (d / "metrics.jsonl").write_text("\n".join(lines) + "\n{\"step\": 11")  # a cut last line
  (d / "config.json").write_text("{}")


def write_embeddings(root: pathlib.Path, rng: np.random.Generator, stage: str = "embed",
                     name: str = "embeddings") -> None:
  d = root / stage
  d.mkdir(parents=True, exist_ok=True)
  feats = [f"legs.mean.{i:03d}" for i in range(8)]
  rows = []
  for p in people():
    for task in TASKS:
      for ablation in ("none", "zero:legs"):
        rows.append({"participant_id": p, "task": task, "ablation": ablation, "n_clips": 2,
                     "checkpoint_step": 100, "config_hash": "abc",
                     **dict(zip(feats, rng.normal(size=len(feats))))})
  schema.write_table(pd.DataFrame(rows), feats, d / f"{name}.parquet")
  if stage == "embed":
    pd.DataFrame([{"participant_id": "P000", "task": "treadmill", "clip_id": 3,
                   "reason": "non_finite_embedding (none)"},
                  {"participant_id": "P001", "task": "treadmill", "clip_id": 7,
                   "reason": "non_finite_embedding (zero:legs)"},
                  {"participant_id": "P001", "task": "treadmill", "clip_id": -1,
                   "reason": "incomplete: 1 of 2 clips read"}]).to_csv(
                       d / "embed_report.csv", index=False)


def targets_frame(rng: np.random.Generator, features: str, tasks=("fused",),
                  covariates: bool = True) -> pd.DataFrame:
  """A probe results table: one row per task × subset × target."""
  rows = []
  for task in tasks:
    for subset in SUBSETS:
      for j, (target, (system, kind)) in enumerate(TARGETS.items()):
        binary = kind == "binary"
        score = rng.uniform(0.5, 0.9) if binary else rng.uniform(-0.1, 0.6)
        sig = bool(rng.random() < 0.4)
        # Feature-set ids as the probe writes them: "<input>[/<task>]".
        row = {"features": features if task == "fused" else f"{features}/{task}",
               "input": features, "task": task,
               "ablation": "none", "target": target, "system": system, "kind": kind,
               "subset": subset, "n": N_PEOPLE, "n_positive": 8 if binary else np.nan,
               "r": np.nan if binary else score,
               "r_ci_low": np.nan if binary else score - 0.1,
               "r_ci_high": np.nan if binary else score + 0.1,
               "r2": np.nan, "mae": np.nan, "auc": score if binary else np.nan,
               "auc_ci_low": score - 0.05 if binary else np.nan,
               "auc_ci_high": min(score + 0.05, 1) if binary else np.nan,
               "z": 2.0, "null_scale": 1.2, "p": 0.01 if sig else 0.5,
               "q": 0.05 if sig else 0.6, "significant": sig, "score": score,
               "status": "excluded" if target == "sleep_hours" and subset == "male" else "ok"}
        if covariates:
          base = rng.uniform(0.5, 0.8) if binary else rng.uniform(0, 0.4)
          full = base + rng.uniform(-0.02, 0.1)
          row.update(score_base=base, score_full=full, r_base=np.nan if binary else base,
                     r_full=np.nan if binary else full, auc_base=base if binary else np.nan,
                     auc_full=full if binary else np.nan, gain=full - base, gain_z=1.0,
                     gain_p=0.2, gain_q=0.3, gain_significant=bool(rng.random() < 0.3))
        rows.append(row)
  return pd.DataFrame(rows)


def roc_frame(frame: pd.DataFrame) -> pd.DataFrame:
  rows = []
  for r in frame[frame["kind"] == "binary"].itertuples():
    fpr = np.linspace(0, 1, 6)
    for f, t in zip(fpr, np.sqrt(fpr)):
      # No input column: the probe's roc.csv names the feature set only.
      rows.append({"features": r.features, "task": r.task, "ablation": r.ablation,
                   "subset": r.subset, "target": r.target, "fpr": f, "tpr": t,
                   "auc": r.auc})
  return pd.DataFrame(rows)


def write_probe(root: pathlib.Path, rng: np.random.Generator) -> pd.DataFrame:
  d = root / "probe" / "results"
  d.mkdir(parents=True, exist_ok=True)
  targets = pd.concat([targets_frame(rng, "embedding"), targets_frame(rng, "engineered")],
                      ignore_index=True)
  targets.to_parquet(d / "targets.parquet", index=False)
  emb = targets[targets["features"] == "embedding"].reset_index(drop=True)
  eng = targets[targets["features"] == "engineered"].reset_index(drop=True)
  comp = pd.DataFrame({"a": "embedding", "b": "engineered", "subset": emb["subset"],
                       "target": emb["target"], "system": emb["system"], "kind": emb["kind"],
                       "metric": np.where(emb["kind"] == "binary", "auc", "r"),
                       "score_a": emb["score"], "score_b": eng["score"],
                       "delta": emb["score"] - eng["score"], "z": 1.0, "null_scale": 1.1,
                       "p": 0.1, "q": 0.2, "significant": np.arange(len(emb)) % 5 == 0,
                       "n": N_PEOPLE})
  comp.to_csv(d / "comparisons.csv", index=False)
  roc_frame(targets).to_csv(d / "roc.csv", index=False)
  pd.DataFrame([{"scope": "target", "name": "sleep_hours",
                 "reason": "not scored in subset male: too few samples (9 < 20)"},
                {"scope": "target", "name": "diagnosis_3",
                 "reason": "not scored in subset female: too few samples (8 < 20)"},
                {"scope": "participant", "name": "P099",
                 "reason": "no embedding row"}]).to_csv(root / "probe" / "probe_report.csv",
                                                       index=False)
  return targets


def write_probe_tasks(root: pathlib.Path, rng: np.random.Generator) -> pd.DataFrame:
  d = root / "probe_tasks" / "results"
  d.mkdir(parents=True, exist_ok=True)
  targets = targets_frame(rng, "embedding", tasks=TASKS + ("fused",))
  targets.to_parquet(d / "targets.parquet", index=False)
  roc_frame(targets).to_csv(d / "roc.csv", index=False)
  return targets


def write_ablation(root: pathlib.Path, rng: np.random.Generator) -> None:
  d = root / "ablation"
  d.mkdir(parents=True, exist_ok=True)
  rows = []
  for subset in ("all", "male", "female"):
    for ablation in ("zero", "only", "trained"):
      for system in SYSTEMS:
        raw = rng.uniform(0, 0.1, len(REGIONS))
        imp = (raw - raw.min()) / (raw.max() - raw.min())
        for region, r, i in zip(REGIONS, raw, imp):
          rows.append({"subset": subset, "system": system, "region": region,
                       "ablation": ablation, "importance": i, "raw": r, "n_targets": 5,
                       "n_top": 5, "n_significant": 2})
  pd.DataFrame(rows).to_csv(d / "region_importance.csv", index=False)
  rows = []
  for subset in ("all", "male", "female"):
    for ablation in ("zero", "only"):
      for region in REGIONS:
        for target, (system, kind) in TARGETS.items():
          full = rng.uniform(0.5, 0.8) if kind == "binary" else rng.uniform(0, 0.5)
          ablated = full - rng.uniform(-0.05, 0.1)
          rows.append({"subset": subset, "target": target, "system": system, "kind": kind,
                       "region": region, "ablation": ablation,
                       "features": f"embedding/{ablation}:{region}", "score_full": full,
                       "score_ablated": ablated, "delta": full - ablated, "z": 1.0,
                       "p": 0.3, "q": 0.5, "significant": full - ablated > 0.08})
  pd.DataFrame(rows).to_parquet(d / "target_importance.parquet", index=False)


def make_run(root: pathlib.Path, seed: int = 0) -> pathlib.Path:
  """Writes every stage under root; returns root."""
  rng = np.random.default_rng(seed)
  write_cohort(root, rng)
  write_shards(root)
  write_pretrain(root)
  write_embeddings(root, rng)
  write_embeddings(root, rng, stage="features", name="features")
  write_probe(root, rng)
  write_probe_tasks(root, rng)
  write_ablation(root, rng)
  pd.DataFrame({"r_age": [0.41, 0.3], "significant": ["12/40", "8/40"]},
               index=["embedding", "engineered"]).to_csv(root / "headline.csv")
  return root
