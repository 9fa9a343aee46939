"""The probe job end to end: fake embeddings + a phenotype table with bad inputs."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys
from types import SimpleNamespace

import conftest
import numpy as np
import pandas as pd
import pytest

from gait_jax.errors import InputError
from gait_jax.probing import folds, job

_SPEC = importlib.util.spec_from_file_location(
    "probe_experiment", conftest.REPO / "experiments" / "probe.py")
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
      "flat": 3.0, "words": ["x"] * n, "empty": np.nan, "infinite": rng.standard_normal(n)})
  ph.loc[3:9, "gait_speed"] = np.nan
  ph.loc[4, "infinite"] = np.inf
  ph = pd.concat([ph, ph.iloc[[5]]])  # P00005 twice
  ph.to_csv(root / "phenotypes.csv", index=False)
  dictionary = pd.DataFrame({
      "target": ["age", "sex", "bmi", "gait_speed", "noise", "diagnosis", "rare", "flat",
                 "words", "empty", "not_there", "infinite"],
      "system": ["anthropometrics"] * 3 + ["gait", "other", "disease", "disease", "other",
                                           "other", "other", "other", "other"],
      "kind": ["continuous", "binary", "continuous", "continuous", "continuous", "binary",
               "binary", "continuous", "continuous", "continuous", "continuous",
               "continuous"],
      "is_covariate": [True] * 3 + [False] * 9})
  dictionary.to_csv(root / "dictionary.csv", index=False)
  return (str(root / "embeddings.parquet"), str(root / "phenotypes.csv"),
          str(root / "dictionary.csv"))


def test_probe_job_end_to_end_with_bad_inputs(tmp_path, capsys):
  emb, ph, dic = _write_inputs(tmp_path)
  config = probe_experiment.get_config("smoke")
  config.embeddings, config.phenotypes, config.dictionary = emb, ph, dic
  config.covariates = "age,sex,bmi"
  config.null_targets = 8  # each kind still calibrated; the logistic's cost is per target
  job.run(config, str(tmp_path / "w"))

  targets = pd.read_parquet(tmp_path / "w" / "results" / "targets.parquet")
  for col in ("target", "system", "kind", "subset", "n", "r", "auc", "p", "q", "significant",
              "r_ci_low", "r_ci_high", "r2", "mae", "r_base", "r_full", "gain", "gain_p",
              "gain_q", "gain_significant", "status", "z", "null_scale", "r_seed_mean",
              "r_seed_sd", "auc_seed_mean", "auc_seed_sd"):
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
  assert reasons["infinite"].startswith("non_finite")
  assert not (targets["target"].str.startswith(job.NULL_PREFIX)).any()
  calibration = pd.read_csv(tmp_path / "w" / "results" / "calibration.csv")
  assert set(calibration["test"]) == {"continuous", "binary", "gain_continuous",
                                      "gain_binary"}
  assert (calibration["null_scale"] >= 1.0).all() and (calibration["null_targets"] > 0).all()
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
  config.binary_model = "ridge"  # fast; the logistic runs in the end-to-end test
  config.embeddings, config.phenotypes, config.dictionary = emb, ph, dic
  config.covariates, config.fusion, config.sex_models = "", "average", "separate"
  targets = job.run(config, str(tmp_path / "w"))
  assert "gain" not in targets.columns
  speed = targets[targets["target"] == "gait_speed"].set_index("subset")
  assert speed.loc["all", "r"] > 0.5 and speed.loc["all", "significant"]
  assert speed.loc["male", "n"] + speed.loc["female", "n"] == speed.loc["all", "n"]


def test_every_unscored_target_has_a_report_row(tmp_path):
  emb, ph, dic = _write_inputs(tmp_path)
  config = probe_experiment.get_config("smoke")
  config.binary_model = "ridge"  # fast; the logistic runs in the end-to-end test
  config.embeddings, config.phenotypes, config.dictionary = emb, ph, dic
  config.covariates = ""
  targets = job.run(config, str(tmp_path / "w"))
  report = pd.read_csv(tmp_path / "w" / "probe_report.csv")
  dictionary = pd.read_csv(dic)
  scored = set(targets.loc[targets["status"] == "ok", "target"])
  for name in set(dictionary["target"]) - scored:
    assert name in set(report["name"]), name


def test_held_out_of_a_pretraining_run_probes_only_whom_it_did_not_train_on(tmp_path):
  """--config.held_out_of=PRETRAIN_WORKDIR drops the participants that run read (its
  shard set under its split), each with a report row."""
  from gait_jax.data import pipeline, shards  # pylint: disable=import-outside-toplevel
  from gait_jax.train import config as train_config  # pylint: disable=import-outside-toplevel
  emb, ph, dic = _write_inputs(tmp_path)
  writer = shards.ShardSetWriter(tmp_path / "shards", clips_per_shard=64)
  ids = sorted(pd.read_parquet(emb)["participant_id"].unique())
  for pid in ids:
    writer.add(b"record", {"participant_id": pid, "task": "walk", "session": "1",
                           "source": f"{pid}.npz", "start_frame": 0, "frames": 60,
                           "fps": 30.0})
  writer.commit()
  pretrain = train_config.get_config("smoke", "smoke")
  pretrain.data.shards = str(tmp_path / "shards")
  pretrain.data.split_fractions = (0.5, 0.25, 0.25)
  (tmp_path / "pretrain").mkdir()
  (tmp_path / "pretrain" / "config.json").write_text(pretrain.to_json_best_effort())
  trained = {p for p in ids if pipeline.split_of(p, (0.5, 0.25, 0.25)) == "train"}
  assert 10 < len(trained) < len(ids) - 20

  config = probe_experiment.get_config("smoke")
  config.binary_model = "ridge"  # fast; the logistic runs in the end-to-end test
  config.embeddings, config.phenotypes, config.dictionary = emb, ph, dic
  config.covariates = ""
  config.held_out_of = str(tmp_path / "pretrain")
  targets = job.run(config, str(tmp_path / "w"))
  report = pd.read_csv(tmp_path / "w" / "probe_report.csv")
  dropped = report[report["reason"].str.startswith("trained on by the encoder")]
  table = pd.read_csv(ph)["participant_id"]
  both = set(ids) & set(table)
  assert set(dropped["name"]) == trained & both
  twice = set(table[table.duplicated()])  # dropped as ambiguous
  assert targets.loc[targets["status"] == "ok", "n"].max() == len(both - trained - twice)
  config.held_out_of = str(tmp_path / "nowhere")
  with pytest.raises(InputError, match="config.json"):
    job.run(config, str(tmp_path / "w2"))


def test_task_less_table_is_one_view(tmp_path):
  """participant_id + numeric columns (another lab's feature sheet) probes as one view."""
  emb, ph, dic = _write_inputs(tmp_path)
  walk = pd.read_parquet(emb).query("task == 'walk' and ablation == 'none'")
  sheet = walk[["participant_id"] + [c for c in walk if c.startswith("e")]]
  sheet.to_csv(tmp_path / "sheet.csv", index=False)
  config = probe_experiment.get_config("smoke")
  config.embeddings, config.phenotypes, config.dictionary = (str(tmp_path / "sheet.csv"), ph,
                                                             dic)
  config.covariates = ""
  targets = job.run(config, str(tmp_path / "w"))
  speed = targets[(targets["target"] == "gait_speed") & (targets["subset"] == "all")]
  assert speed["r"].item() > 0.5


def test_fold_guard_checks_the_folds_that_are_fitted():
  """Positives per training fold are counted on the folds given, not on others: a
  target whose positives all share one fold is refused exactly when they do."""
  config = probe_experiment.get_config("smoke")
  n = 30
  fold_ids = folds.grouped_folds(np.arange(n), 3, (0, 1))
  y = np.zeros((n, 2))
  together = np.flatnonzero(fold_ids[0] == 0)[:5]
  y[together, 0] = 1  # 5 positives, all in fold 0 of seed 0
  y[:5, 1] = 1
  binary = np.array([True, True])
  config.min_positives, config.min_fold_positives = 4, 2
  why = job.check_targets(y, binary, fold_ids[:1], config)
  assert why[0] is not None and "training fold (0 < 2)" in why[0]
  spread = job.check_targets(y[:, 1:], binary[1:], fold_ids[:1], config)
  expected_worst = min((y[fold_ids[0] != k, 1] == 1).sum() for k in range(3))
  assert (spread[0] is None) == (expected_worst >= 2)


def test_user_error_prints_one_line_without_traceback(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "gait_jax.main", "--config", "experiments/probe.py:smoke",
       "--workdir", str(tmp_path / "w"), f"--config.embeddings={tmp_path / 'none.parquet'}",
       f"--config.phenotypes={tmp_path / 'none.csv'}"],
      capture_output=True, text=True, cwd=conftest.REPO, check=False)
  assert proc.returncode == 2, proc.stderr
  lines = [line for line in proc.stderr.splitlines() if "WARNING" not in line and line]
  assert lines == [f"gait_jax.main: error: feature table '{tmp_path / 'none.parquet'}' "
                   "does not exist"], proc.stderr
  for arg in ("experiments/probe.py:bogus", "experiments/missing.py"):
    proc = subprocess.run([sys.executable, "-m", "gait_jax.main", "--config", arg,
                           "--workdir", str(tmp_path / "w")], capture_output=True, text=True,
                          cwd=conftest.REPO, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr


def test_feature_sets_on_the_same_folds_with_paired_comparisons(tmp_path):
  """A second input scored on the same folds as the first and compared with it per
  target; gains over the covariates for both; ROC curves of sex."""
  emb, ph, dic = _write_inputs(tmp_path)
  frame = pd.read_parquet(emb)
  # A second input that carries none of the signal.
  noise = frame.copy()
  feats = [c for c in frame.columns if c.startswith("e")]
  noise[feats] = np.random.default_rng(1).standard_normal((len(noise), len(feats)))
  noise.to_parquet(tmp_path / "noise.parquet")
  config = probe_experiment.get_config("smoke")
  config.binary_model = "ridge"  # fast; the logistic runs in the end-to-end test
  config.embeddings, config.phenotypes, config.dictionary = emb, ph, dic
  config.inputs = f"noise={tmp_path / 'noise.parquet'}"
  config.covariates = "age,sex,bmi"
  config.null_targets = 20
  job.run(config, str(tmp_path / "w"))
  results = tmp_path / "w" / "results"
  targets = pd.read_parquet(results / "targets.parquet")
  assert list(dict.fromkeys(targets["features"])) == ["embedding", "noise"]
  assert (targets["task"] == "fused").all() and (targets["ablation"] == "none").all()
  assert targets.loc[targets["features"] == "noise", "gain"].notna().any()
  speed = targets[(targets["target"] == "gait_speed") & (targets["subset"] == "all")
                  ].set_index("features")
  assert speed.loc["embedding", "r"] > 0.5 and abs(speed.loc["noise", "r"]) < 0.4

  comparisons = pd.read_csv(results / "comparisons.csv")
  assert set(zip(comparisons["a"], comparisons["b"])) == {("embedding", "noise")}
  vs_noise = comparisons[comparisons["subset"] == "all"].set_index("target")
  row = vs_noise.loc["gait_speed"]
  assert row["delta"] == pytest.approx(speed.loc["embedding", "r"] - speed.loc["noise", "r"])
  assert row["z"] > 3 and row["significant"]
  assert not vs_noise.loc["noise", "significant"]
  assert set(vs_noise.loc[["gait_speed", "diagnosis"], "metric"]) == {"r", "auc"}
  # The comparisons' null calibration is recorded.
  calibration = pd.read_csv(results / "calibration.csv")
  assert "compare_continuous" in set(calibration["test"])

  roc = pd.read_csv(results / "roc.csv")
  assert set(roc["target"]) == {"sex"} and set(roc["features"]) == {"embedding", "noise"}
  curve = roc[(roc["features"] == "embedding") & (roc["subset"] == "all")]
  assert curve["fpr"].is_monotonic_increasing and curve["tpr"].iloc[-1] == 1.0
  systems = pd.read_csv(results / "systems.csv")
  assert {"features", "system", "subset", "significant"} <= set(systems.columns)


def test_each_task_alone_and_fused(tmp_path):
  emb, ph, dic = _write_inputs(tmp_path)
  config = probe_experiment.get_config("smoke")
  config.binary_model = "ridge"  # fast; the logistic runs in the end-to-end test
  config.embeddings, config.phenotypes, config.dictionary = emb, ph, dic
  config.tasks = "each"
  config.covariates = "age"
  config.null_targets = 20
  job.run(config, str(tmp_path / "w"))
  targets = pd.read_parquet(tmp_path / "w" / "results" / "targets.parquet")
  assert list(dict.fromkeys(targets["features"])) == [
      "embedding", "embedding/tug", "embedding/walk"]
  assert set(targets.loc[targets["features"] == "embedding/walk", "task"]) == {"walk"}
  # Gains over the covariates for the primary (fused) set only.
  assert targets.loc[targets["features"] == "embedding", "gain"].notna().any()
  assert targets.loc[targets["features"] == "embedding/walk", "gain"].isna().all()
  speed = targets[(targets["target"] == "gait_speed") & (targets["subset"] == "all")
                  ].set_index("features")
  assert speed.loc["embedding/walk", "r"] > 0.5 and speed.loc["embedding/tug", "r"] > 0.5
  comparisons = pd.read_csv(tmp_path / "w" / "results" / "comparisons.csv")
  assert set(comparisons["b"]) == {"embedding/tug", "embedding/walk"}


def test_ablation_each_scores_every_ablation_and_compares_with_none(tmp_path):
  emb, ph, dic = _write_inputs(tmp_path)
  frame = pd.read_parquet(emb)
  frame = frame[frame["ablation"] == "none"]
  hidden = frame.assign(ablation="zero:legs")
  hidden[["e0", "e1"]] = 0.0  # the region that carried the signal is gone
  pd.concat([frame, hidden]).to_parquet(tmp_path / "ablated.parquet")
  config = probe_experiment.get_config("smoke")
  config.binary_model = "ridge"  # fast; the logistic runs in the end-to-end test
  config.embeddings, config.phenotypes, config.dictionary = (
      str(tmp_path / "ablated.parquet"), ph, dic)
  config.ablation = "each"
  config.covariates = ""
  config.null_targets = 20
  job.run(config, str(tmp_path / "w"))
  comparisons = pd.read_csv(tmp_path / "w" / "results" / "comparisons.csv")
  row = comparisons[(comparisons["b"] == "embedding/zero:legs")
                    & (comparisons["subset"] == "all")].set_index("target").loc["gait_speed"]
  assert row["a"] == "embedding" and row["delta"] > 0.3 and row["significant"]


def test_compare_pairs_reference_explicit_and_none():
  sets = [SimpleNamespace(id=i) for i in ("embedding", "embedding/zero:legs", "noise")]
  config = probe_experiment.get_config("smoke")
  assert job._pairs(config, sets) == [("embedding", "embedding/zero:legs"),  # pylint: disable=protected-access
                                      ("embedding", "noise")]
  config.compare = "embedding/zero:legs:noise,noise:embedding"
  assert job._pairs(config, sets) == [("embedding/zero:legs", "noise"),  # pylint: disable=protected-access
                                      ("noise", "embedding")]
  config.compare = ""
  assert job._pairs(config, sets) == []  # pylint: disable=protected-access
  config.compare = "embedding:nowhere"
  with pytest.raises(InputError, match="expected A:B"):
    job._pairs(config, sets)  # pylint: disable=protected-access
