"""The whole chain on a synthetic cohort with planted truth: recordings → shards →
engineered gait features → probe → headline; planted targets found, nulls not."""

import json
import subprocess
import sys

import pandas as pd
import pytest

import conftest
from gait_jax.probing import headline, stats


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
  root = conftest.build_cohort(tmp_path_factory.mktemp("truth"), participants=48,
                               seconds=8.0, clip_frames=240, clip_stride=240, targets=300)
  run = lambda *args: subprocess.run(  # noqa: E731
      [sys.executable, "-m", "gait_jax.main", *args], check=True, capture_output=True,
      text=True)
  run("--config", "experiments/features.py:smoke", "--workdir", str(root / "features"),
      f"--config.data.shards={root / 'shards'}")
  run("--config", "experiments/probe.py:smoke", "--workdir", str(root / "probe"),
      f"--config.embeddings={root / 'features' / 'features.parquet'}",
      f"--config.phenotypes={root / 'cohort' / 'phenotypes.parquet'}",
      f"--config.dictionary={root / 'cohort' / 'dictionary.csv'}", "--config.n_seeds=3",
      "--config.binary_model=ridge")  # as the pipeline runs it
  return root


def test_planted_targets_are_found_and_nulls_are_not(probed):
  truth = json.loads((probed / "cohort" / "truth.json").read_text())
  targets = pd.read_parquet(probed / "probe" / "results" / "targets.parquet")
  tested = targets[(targets["subset"] == "all") & (targets["status"] == "ok")]
  found = stats.power_fdp(dict(zip(tested["target"], tested["significant"])), truth)
  # 48 people: strong planted effects are found, and discoveries are mostly real.
  assert found["discoveries"] >= 10, found
  assert found["power"] >= 0.08, found
  assert found["fdp"] <= 0.2, found
  by_name = tested.set_index("target")
  assert by_name.loc["bmi", "significant"] and by_name.loc["bmi", "r"] > 0.5


def test_headline_table(probed, tmp_path, capsys):
  out = tmp_path / "headline.csv"
  table = headline.main(["--run", f"engineered={probed / 'probe'}",
                         "--truth", str(probed / "cohort" / "truth.json"),
                         "--out", str(out)])
  assert "r_bmi" in capsys.readouterr().out
  row = table.loc["engineered"]
  assert row["r_bmi"] > 0.5 and 0.0 <= row["fdp"] <= 0.2
  targets = pd.read_parquet(probed / "probe" / "results" / "targets.parquet")
  tested = targets[(targets["subset"] == "all") & (targets["status"] == "ok")]
  assert row["significant"] == f"{int(tested['significant'].sum())}/{len(tested)}"
  assert "systems_gain_male" in table.columns and "gain_fdp" in table.columns
  assert pd.read_csv(out, index_col=0).shape == table.shape
