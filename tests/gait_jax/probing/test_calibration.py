"""Calibration of the probe's tests at small n: null targets, covariate-only targets, power.

A synthetic cohort of 60 people through the probe job (5 grouped folds × 2 seeds,
nested α): pure-null targets (continuous and binary), targets driven by the covariates
only, and "gait" targets with signal in the embedding beyond the covariates. The
embedding is noise plus the gait latent plus a noisy copy of the covariates (so it
predicts covariate-only targets without adding anything to them). At this n, pooled
out-of-fold correlations are biased (a fold-mean artifact) and out-of-fold predictions
are dependent (naive tests too liberal); the job's within-fold scores and null-calibrated
tests must hold on the nulls and still find the real signal.
"""

from __future__ import annotations

import importlib.util
import pathlib

import conftest
import numpy as np
import pandas as pd
import pytest

from gait_jax.probing import job, stats

_SPEC = importlib.util.spec_from_file_location(
    "probe_experiment", conftest.REPO / "experiments" / "probe.py")
probe_experiment = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(probe_experiment)

Q = 0.10
N = 60


def _cohort(root: pathlib.Path, seed: int, n_features: int, copy_covariates: bool
            ) -> tuple[str, str, str]:
  """Writes embeddings, phenotypes, dictionary; target names start with their category
  (null_, cov_, gait_; binary ones bnull_, bgait_)."""
  rng = np.random.default_rng(seed)
  ids = [f"P{i:03d}" for i in range(N)]
  cov = np.c_[rng.uniform(20, 80, N), np.arange(N) % 2, rng.normal(25, 4, N)]
  cov_z = (cov - cov.mean(0)) / cov.std(0)
  latent = rng.standard_normal(N)
  emb = rng.standard_normal((N, n_features))
  emb[:, :8] += 1.5 * latent[:, None]
  if copy_covariates:
    emb[:, 8:20] += cov_z @ rng.standard_normal((3, 12))
  cols = {}
  for j in range(150):  # arbitrary scales and offsets: the intercept is what misleads
    cols[f"null_{j}"] = rng.uniform(-50, 50) + rng.uniform(0.5, 20) * rng.standard_normal(N)
  for j in range(60):
    cols[f"cov_{j}"] = cov_z @ rng.uniform(0.3, 1.0, 3) + rng.standard_normal(N)
  for j in range(20):
    cols[f"gait_{j}"] = (cov_z @ rng.uniform(0.3, 1.0, 3) + 2.0 * latent
                         + 0.5 * rng.standard_normal(N))
  for j in range(40):
    cols[f"bnull_{j}"] = (rng.random(N) < rng.uniform(0.3, 0.5)).astype(float)
  for j in range(10):
    cols[f"bgait_{j}"] = (2.5 * latent + rng.standard_normal(N) > 0).astype(float)
  ph = pd.DataFrame(cols)
  ph[rng.random(ph.shape) < 0.08] = np.nan  # missing values: per-target row sets
  ph.insert(0, "participant_id", ids)
  ph["age"], ph["sex"], ph["bmi"] = cov[:, 0], cov[:, 1], cov[:, 2]
  pd.DataFrame({"participant_id": ids, "task": "walk", "ablation": "none",
                **{f"e{j}": emb[:, j] for j in range(n_features)}}).to_parquet(
                    root / "emb.parquet")
  ph.to_parquet(root / "ph.parquet")
  names = list(cols)
  pd.DataFrame({"target": names, "system": [t.split("_")[0] for t in names],
                "kind": ["binary" if t.startswith("b") else "continuous" for t in names],
                "is_covariate": False}).to_csv(root / "dict.csv", index=False)
  return str(root / "emb.parquet"), str(root / "ph.parquet"), str(root / "dict.csv")


def _probe(root: pathlib.Path, seed: int, n_features: int, copy_covariates: bool
           ) -> pd.DataFrame:
  emb, ph, dic = _cohort(root, seed, n_features, copy_covariates)
  config = probe_experiment.get_config("paper")
  config.embeddings, config.phenotypes, config.dictionary = emb, ph, dic
  config.covariates = "age,sex,bmi"
  config.n_seeds, config.q, config.seed = 2, Q, seed
  config.min_samples, config.min_positives, config.min_fold_positives = 20, 8, 3
  targets = job.run(config, str(root / "work"))
  out = targets[(targets["subset"] == "all") & (targets["status"] == "ok")].copy()
  out["category"] = out["target"].str.split("_").str[0]
  return out


@pytest.fixture(scope="module")
def probed(tmp_path_factory) -> pd.DataFrame:
  return _probe(tmp_path_factory.mktemp("calibration"), 1, 100, True)


def test_tests_are_calibrated_on_nulls_and_covariate_only_targets(probed):
  t = probed
  null = t["category"] == "null"
  assert abs(t.loc[null, "r"].mean()) <= 0.05
  assert abs(t.loc[t["category"] == "bnull", "auc"].mean() - 0.5) <= 0.05
  for cat in ("null", "bnull"):
    assert (t.loc[t["category"] == cat, "p"] < 0.05).mean() <= 0.08, cat
    assert (t.loc[t["category"] == cat, "gain_p"] < 0.05).mean() <= 0.08, cat
  assert t.loc[t["category"] == "cov", "gain_significant"].mean() <= 0.02
  false = t["category"].isin(["null", "bnull", "cov"]) & t["gain_significant"]
  assert false.sum() / max(int(t["gain_significant"].sum()), 1) <= 0.2


def test_gain_test_finds_real_extra_signal(probed):
  gait = probed[probed["category"] == "gait"]
  assert gait["gain_significant"].mean() >= 0.8
  assert (gait["gain"] > 0).all()


def test_loss_difference_signs_and_mean_z():
  y = np.array([[1.0, 1.0], [0.0, 0.0], [1.0, np.nan], [0.0, 1.0]])
  base = np.zeros((1,) + y.shape)
  full = np.array([[[2.0, 0.0], [-2.0, 0.0], [2.0, 0.0], [-2.0, 0.0]]])  # logits
  d = stats.loss_difference(y, base, full, np.array([False, True]))
  np.testing.assert_allclose(d[:, 0], [0.0, -4.0, 0.0, -4.0])
  assert np.isnan(d[2, 1]) and d[0, 1] == d[3, 1] == 0.0  # logit 0 in both
  two_seeds = stats.loss_difference(y, np.r_[base, base], np.r_[full, 0 * full],
                                    np.array([False, True]))
  np.testing.assert_allclose(two_seeds[:, 0], [0.0, -2.0, 0.0, -2.0])  # seed mean
  z = stats.mean_z(np.c_[np.arange(10.0) + 1, -np.arange(10.0) - 1])
  assert z[0] > 5 and z[1] < -5
