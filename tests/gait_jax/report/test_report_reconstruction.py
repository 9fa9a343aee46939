"""The reconstruction figure's table from a real (2-step smoke) checkpoint."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

import conftest
from gait_jax import skeleton
from gait_jax.report import figures, tables
from gait_jax.report.rundir import RunDir


@pytest.fixture(scope="module")
def run_dir(tiny_shards, tmp_path_factory):
  """RUN/shards (the tiny cohort's) and RUN/pretrain_smoke (2 steps)."""
  run = tmp_path_factory.mktemp("run") / "demo"
  shutil.copytree(tiny_shards, run / "shards")
  subprocess.run(
      [sys.executable, "-m", "gait_jax.main",
       "--config", "experiments/pretrain_gaitmae.py:smoke",
       "--workdir", str(run / "pretrain_smoke"), f"--config.data.shards={run / 'shards'}",
       "--config.total_steps=2", "--config.checkpoint_every=2", "--config.data.split=all"],
      check=True, capture_output=True, text=True, cwd=conftest.REPO)
  return run


@pytest.mark.slow
def test_reconstruction_from_a_checkpoint(run_dir):
  table = tables.reconstruction(RunDir.open(run_dir))
  assert table.frame is not None, table.reason
  frame = table.frame
  joints = skeleton.JOINT_SETS["default26"]
  assert set(frame["source"]) == {"input", "prediction", "truth"}
  per = frame.groupby("source").size()
  assert (per == per["truth"]).all() and per["truth"] % len(joints) == 0
  truth = frame[frame.source == "truth"].reset_index(drop=True)
  shown = frame[frame.source == "input"].reset_index(drop=True)
  pred = frame[frame.source == "prediction"].reset_index(drop=True)
  assert list(truth["joint"][:len(joints)]) == list(joints)
  hidden = truth["hidden"].to_numpy()
  assert 0 < hidden.mean() < 1
  # Input: the truth where the model saw it, nothing where it was hidden.
  assert shown.loc[hidden, ["x", "y", "z"]].isna().all().all()
  np.testing.assert_array_equal(shown.loc[~hidden, ["x", "y", "z"]],
                                truth.loc[~hidden, ["x", "y", "z"]])
  assert np.isfinite(pred[["x", "y", "z"]].to_numpy()).all()
  assert not np.allclose(pred[["x", "y", "z"]], truth[["x", "y", "z"]])
  fig = figures.reconstruction(frame)
  assert len(fig.axes) == 12
