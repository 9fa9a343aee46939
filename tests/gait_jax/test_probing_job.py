"""The probe job end to end: fake embeddings + a phenotype table with bad inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gait_jax.probing import job

import importlib.util
import pathlib

_SPEC = importlib.util.spec_from_file_location(
    "probe_experiment", pathlib.Path(__file__).parents[2] / "experiments" / "probe.py")
probe_experiment = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(probe_experiment)


def _write_inputs(root: pathlib.Path) -> tuple[str, str, str]:
  rng = np.random.default_rng(0)
  n, f = 48, 6
  ids = [f"P{i:05d}" for i in range(n)]
  latent = rng.standard_normal((n, 2))
  rows = []
  for task in ("walk", "tug"):
    feats = np.c_[latent, rng.standard_normal((n, f - 2))] + 0.3 * rng.standard_normal((n, f))
    for i in range(n - 1):  # P00047 has phenotypes but no embeddings
      if task == "tug" and i % 8 == 0:
        continue  # a missing task: NaN features, imputed inside training folds
      rows.append({"participant_id": ids[i], "task": task, "ablation": "none", "n_clips": 2,
                   "checkpoint_step": 10, "config_hash": "abc",
                   **{f"e{j}": feats[i, j] for j in range(f)}})
  rows.append({**rows[0], "participant_id": "Q99999"})  # embeddings but no phenotypes
  rows.append({**rows[1], "ablation": "left_leg"})        # another ablation: ignored
  pd.DataFrame(rows).to_parquet(root / "embeddings.parquet")
  ph = pd.DataFrame({
      "participant_id": ids, "age": rng.uniform(20, 80, n), "sex": np.arange(n) % 2,
      "bmi": rng.normal(25, 4, n),
      "gait_speed": latent[:, 0] + 0.4 * rng.standard_normal(n),
      "noise": rng.standard_normal(n),
      "diagnosis": (latent[:, 1] + 0.5 * rng.standard_normal(n) > 0).astype(float),
      "rare": (np.arange(n) < 2).astype(float),
      "flat": 3.0, "words": ["x"] * n, "empty": np.nan})
  ph.loc[3:9, "gait_speed"] = np.nan
  ph = pd.concat([ph, ph.iloc[[5]]])  # P00005 twice
  ph.to_csv(root / "phenotypes.csv", index=False)
  dictionary = pd.DataFrame({
      "target": ["age", "sex", "bmi", "gait_speed", "noise", "diagnosis", "rare", "flat",
                 "words", "empty", "not_there"],
      "system": ["anthropometrics"] * 3 + ["gait", "other", "disease", "disease", "other",
                                           "other", "other", "other"],
      "kind": ["continuous", "binary", "continuous", "continuous", "continuous", "binary",
               "binary", "continuous", "continuous", "continuous", "continuous"],
      "is_covariate": [True] * 3 + [False] * 8})
  dictionary.to_csv(root / "dictionary.csv", index=False)
  return (str(root / "embeddings.parquet"), str(root / "phenotypes.csv"),
          str(root / "dictionary.csv"))


def test_probe_job_end_to_end_with_bad_inputs(tmp_path, capsys):
  emb, ph, dic = _write_inputs(tmp_path)
  config = probe_experiment.get_config("smoke")
  config.embeddings, config.phenotypes, config.dictionary = emb, ph, dic
  config.covariates = "age,sex,bmi"
  config.n_bootstrap = 200
  job.run(config, str(tmp_path / "w"))

  targets = pd.read_parquet(tmp_path / "w" / "results" / "targets.parquet")
  for col in ("target", "system", "kind", "subset", "n", "r", "auc", "p", "q", "significant",
              "r_ci_low", "r_ci_high", "r2", "mae", "r_base", "r_full", "gain", "gain_p",
              "gain_q", "gain_significant", "status"):
    assert col in targets.columns, col
  assert set(targets["subset"]) == {"all", "male", "female"}
  alls = targets[targets["subset"] == "all"].set_index("target")
  assert alls.loc["gait_speed", "significant"] and alls.loc["gait_speed", "r"] > 0.5
  assert alls.loc["gait_speed", "n"] == 46 - 7 + 1  # 46 usable people, 7 missing (1 a dup)
  assert alls.loc["diagnosis", "auc"] > 0.7
  assert alls.loc["rare", "status"] == "excluded" and np.isnan(alls.loc["rare", "p"])
  assert (tmp_path / "w" / "results" / "targets.csv").exists()

  systems = pd.read_csv(tmp_path / "w" / "results" / "systems.csv")
  assert {"system", "subset", "targets", "significant", "gain_significant"} <= set(systems)
  assert systems.query("system == 'gait' and subset == 'all'")["significant"].item() == 1

  report = pd.read_csv(tmp_path / "w" / "probe_report.csv")
  reasons = dict(zip(report["name"], report["reason"]))
  assert "duplicate participant ID" in reasons["P00005"] or any(
      "duplicate participant ID" in r for r in report.loc[report["name"] == "P00005", "reason"])
  assert "no embeddings" in reasons["P00047"]
  assert "no phenotypes" in reasons["Q99999"]
  assert reasons["flat"] == "constant"
  assert reasons["words"] == "non-numeric values"
  assert reasons["empty"] == "all values missing"
  assert "too few positives" in reasons["rare"]
  assert "not in the phenotype table" in reasons["not_there"]
  assert "participant" in set(report["scope"]) and "target" in set(report["scope"])
  out = capsys.readouterr().out
  assert "significant" in out and "all" in out


def test_probe_job_unusable_inputs_name_the_file(tmp_path):
  emb, ph, _ = _write_inputs(tmp_path)
  config = probe_experiment.get_config("smoke")
  config.embeddings, config.phenotypes = emb, str(tmp_path / "missing.csv")
  with pytest.raises(ValueError, match="missing.csv.*does not exist"):
    job.run(config, str(tmp_path / "w"))
  other = pd.read_csv(ph).assign(participant_id=lambda d: "Z" + d["participant_id"])
  other.to_csv(tmp_path / "other.csv", index=False)
  config.phenotypes = str(tmp_path / "other.csv")
  with pytest.raises(ValueError, match="no participant IDs in common.*other.csv"):
    job.run(config, str(tmp_path / "w"))


def test_probe_job_average_fusion_and_sex_specific_models(tmp_path):
  emb, ph, dic = _write_inputs(tmp_path)
  config = probe_experiment.get_config("smoke")
  config.embeddings, config.phenotypes, config.dictionary = emb, ph, dic
  config.covariates, config.fusion, config.sex_models = "", "average", "separate"
  targets = job.run(config, str(tmp_path / "w"))
  assert "gain" not in targets.columns
  speed = targets[targets["target"] == "gait_speed"].set_index("subset")
  assert speed.loc["all", "r"] > 0.5 and speed.loc["all", "significant"]
  assert speed.loc["male", "n"] + speed.loc["female", "n"] == speed.loc["all", "n"]
