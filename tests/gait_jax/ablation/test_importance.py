"""Region importance from a probe run's comparisons; planted vs recovered regions."""

import numpy as np
import pandas as pd
import pytest

from gait_jax.ablation import importance
from gait_jax.embedding import pooling


def _probe_tables():
  """A probe run over none / zero:legs / zero:torso / only:legs / trained:legs with two
  systems: 'metabolic' (legs carry it) and 'sleep' (the torso does)."""
  rng = np.random.default_rng(0)
  rows, comparisons = [], []
  for subset in ("all", "male"):
    for system, carrier in (("metabolic", "legs"), ("sleep", "torso")):
      for t in range(12):
        target = f"{system}_{t}"
        full = 0.6 - 0.03 * t
        rows.append({"features": "embedding", "subset": subset, "target": target,
                     "system": system, "status": "ok", "score": full})
        for b, region in (("embedding/zero:legs", "legs"), ("embedding/zero:torso", "torso"),
                          ("embedding/only:legs", "legs"), ("trained:legs", "legs")):
          lost = 0.3 if region == carrier else 0.02
          score_b = full - lost
          if b.startswith("embedding/only"):
            score_b = full - (0.02 if region == carrier else 0.3)
          comparisons.append({
              "a": "embedding", "b": b, "subset": subset, "target": target,
              "system": system, "kind": "continuous", "metric": "r", "score_a": full,
              "score_b": score_b, "delta": full - score_b, "z": 5 * (full - score_b),
              "p": 0.001 if full - score_b > 0.1 else 0.4, "q": 0.01,
              "significant": full - score_b > 0.1})
  comparisons.append({**comparisons[0], "b": "engineered"})  # not an ablation: ignored
  return pd.DataFrame(rows), pd.DataFrame(comparisons)


def test_target_importance_reads_each_ablation_kind():
  targets, comparisons = _probe_tables()
  per_target = importance.target_importance(targets, comparisons, "embedding")
  assert set(per_target["ablation"]) == {"zero", "only", "trained"}
  assert "engineered" not in set(per_target["features"])
  legs = per_target[(per_target["target"] == "metabolic_0") & (per_target["subset"] == "all")
                    ].set_index("features")
  assert legs.loc["embedding/zero:legs", "delta"] == pytest.approx(0.3)
  # "only": Δ = what the region alone keeps relative to the whole body (higher = more).
  assert legs.loc["embedding/only:legs", "delta"] == pytest.approx(-0.02)
  assert legs.loc["trained:legs", "region"] == "legs"
  assert list(per_target.columns) == list(importance.TARGET_COLUMNS)


def test_region_table_is_the_top_targets_mean_normalised_per_system():
  targets, comparisons = _probe_tables()
  per_target = importance.target_importance(targets, comparisons, "embedding")
  # One of metabolic's weaker targets loses a lot when the torso goes: it is not in the
  # top 10, so the published summary ignores it and the mean over all targets does not.
  per_target.loc[(per_target["target"] == "metabolic_11")
                 & (per_target["features"] == "embedding/zero:torso"), "delta"] = 5.0
  regions = importance.region_table(per_target, top=10)
  zero = regions[(regions["ablation"] == "zero") & (regions["subset"] == "all")
                 ].set_index(["system", "region"])
  assert zero.loc[("metabolic", "legs"), "importance"] == 1.0
  assert zero.loc[("metabolic", "torso"), "importance"] == 0.0
  assert zero.loc[("metabolic", "legs"), "raw"] == pytest.approx(0.3)
  assert zero.loc[("metabolic", "torso"), "raw"] == pytest.approx(0.02)
  assert zero.loc[("metabolic", "torso"), "mean_delta"] > 0.4
  assert zero.loc[("metabolic", "legs"), "n_top"] == 10
  assert zero.loc[("metabolic", "legs"), "n_targets"] == 12
  assert zero.loc[("sleep", "torso"), "n_significant"] == 12
  assert zero.loc[("sleep", "legs"), "n_significant"] == 0
  assert list(regions.columns) == list(importance.REGION_COLUMNS)


def _truth():
  def entry(system, regions, category="gait", r2=0.5):
    return {"system": system, "category": category, "regions": regions, "r2": r2}
  return {"targets": {
      "m1": entry("metabolic", ["left_leg", "right_leg"]),
      "m2": entry("metabolic", ["left_leg", "right_leg", "torso"]),
      "m3": entry("metabolic", [], category="covariate_only"),
      "s1": entry("sleep", ["torso"]),
      "s2": entry("sleep", ["head", "torso"]),
      "f1": entry("fitness", ["left_arm", "right_arm", "left_leg", "right_leg"], r2=0.2)}}


def test_planted_regions_from_truth():
  planted = importance.planted_regions(_truth(), pooling.DEFAULT_REGIONS)
  weights = planted.set_index(["system", "region"])["weight"]
  assert weights[("metabolic", "legs")] == pytest.approx(0.75)
  assert weights[("sleep", "torso")] == pytest.approx(0.75)
  assert weights[("fitness", "arms")] == pytest.approx(0.5)
  assert planted.groupby("system")["planted"].first().to_dict() == {
      "fitness": "arms", "metabolic": "legs", "sleep": "torso"}


def test_recovery_compares_the_top_region_with_the_planted_one():
  targets, comparisons = _probe_tables()
  regions = importance.region_table(importance.target_importance(targets, comparisons,
                                                                 "embedding"))
  planted = importance.planted_regions(_truth(), pooling.DEFAULT_REGIONS)
  found = importance.recovery(regions, planted)
  assert set(found["subset"]) == {"all", "male"}
  assert found["match"].all(), found
  # The head counts for a torso-planted system; the legs do not.
  flipped = regions.copy()
  flipped.loc[(flipped["system"] == "metabolic") & (flipped["region"] == "torso"), "raw"] = 9
  assert not importance.recovery(flipped, planted).set_index(["subset", "system"]).loc[
      ("all", "metabolic"), "match"]


def test_check_recovery_names_the_missed_systems():
  recovered = pd.DataFrame({
      "subset": ["all"] * 3 + ["male"], "system": ["legsy", "torsoy", "other", "legsy"],
      "planted": ["legs", "torso", "legs", "legs"], "recovered": ["legs", "arms", "arms", "arms"],
      "match": [True, False, False, False], "checked": [True, True, False, True]})
  assert importance.check_recovery(recovered, 0) is None
  assert importance.check_recovery(recovered, 1) is None
  message = importance.check_recovery(recovered, 2)
  assert "only 1 of 2 checked systems" in message and "torsoy (arms instead of torso)" in message
  assert "other" not in message
