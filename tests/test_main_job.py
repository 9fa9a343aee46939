"""The main job's pipeline (launch/pipeline.sh, which launch/demo.sh runs at the demo's
size) at the smoke size: every stage, W&B offline, the report at the end."""

import json
import os
import pathlib
import re
import subprocess
import sys

import conftest
import numpy as np
import pandas as pd
import pytest

from gait_jax import skeleton
from gait_jax.report import figures, tables
from gait_jax.report.rundir import RunDir


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[pathlib.Path, str]:
  work = tmp_path_factory.mktemp("pipeline") / "demo"
  env = {**os.environ, "GAIT_JAX_DEMO_SIZE": "smoke", "GAIT_JAX_DEMO_DIR": str(work),
         "WANDB_MODE": "offline", "GAIT_JAX_PROGRESS": "0",
         "PATH": f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}"}
  done = subprocess.run(["bash", "launch/pipeline.sh"], cwd=conftest.REPO, env=env,
                        capture_output=True, text=True, check=False)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  return work, done.stdout


def test_every_stage_writes_its_outputs(run):
  work, stdout = run
  for path in ("shards/manifest.parquet", "pretrain_smoke/metrics.jsonl",
               "embed/embeddings.parquet", "features/features.parquet",
               "probe/results/comparisons.csv", "probe_tasks/results/roc.csv",
               "ablation/region_importance.csv", "ablation/target_importance.parquet",
               "ablation/region_recovery.csv", "ablation/figures/region_heatmap.png",
               "ablation/figures/region_heatmap.svg", "headline.csv"):
    assert (work / path).is_file(), path
  # The pretraining evaluators ran: held-out loss per task and the frozen probe.
  records = [json.loads(x) for x in
             (work / "pretrain_smoke" / "metrics.jsonl").read_text().splitlines()]
  (evals,) = [r for r in records if "loss" not in r]
  assert {"val/loss", "val/loss/treadmill", "probe/age_r", "probe/bmi_r",
          "probe/sex_auc"} <= set(evals)
  embeddings = pd.read_parquet(work / "embed" / "embeddings.parquet")
  assert embeddings["ablation"].nunique() == 9  # none, zero:×4, only:×4
  tasks = pd.read_parquet(work / "probe_tasks" / "results" / "targets.parquet")
  assert set(tasks["task"]) == {"fused", "treadmill", "self_selected_walk", "walk_in_place",
                                "sit_to_stand", "romberg_eyes_closed"}
  regions = pd.read_csv(work / "ablation" / "region_importance.csv")
  assert {"subset", "system", "region", "importance"} <= set(regions.columns)
  assert set(regions["region"]) == {"legs", "arms", "torso", "head"}
  assert set(regions["subset"]) == {"all", "male", "female"}
  headline = pd.read_csv(work / "headline.csv", index_col=0)
  assert list(headline.index) == ["embedding", "engineered"]
  # The report's path is the last line printed.
  assert stdout.strip().splitlines()[-1] == f"report: {work / 'report' / 'index.html'}"


def test_report_draws_every_figure(run):
  work, _ = run
  html = (work / "report" / "index.html").read_text()
  assert "not available" not in html
  figures = sorted(p.stem for p in (work / "report" / "figures").glob("*.png"))
  tables = sorted(p.stem for p in (work / "report" / "tables").glob("*.csv"))
  assert len(figures) >= 12 and figures == tables
  assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', html)) == len(figures)


def test_every_stage_logs_to_wandb_in_one_group(run):
  work, _ = run
  stages = {"pretrain_smoke": "pretrain", "embed": "embed", "features": "features",
            "probe": "probe", "probe_tasks": "probe", "ablation": "ablation",
            "report": "report"}
  for folder, job_type in stages.items():
    runs = list((work / folder / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, folder
    text = b"".join(p.read_bytes() for p in runs[0].glob("run-*.wandb"))
    assert job_type.encode() in text and b"demo" in text, folder


def _main(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "gait_jax.main", *args], cwd=conftest.REPO,
                        capture_output=True, text=True, check=False,
                        env={**os.environ, "WANDB_MODE": "disabled"})


def test_training_time_ablation_from_a_region_sweep(run, tmp_path):
  """An encoder pretrained without the legs (the `regions` sweep's layout), embedded
  and probed beside the inference-time ablations of the main encoder, which the job
  embeds itself from its checkpoint."""
  work, _ = run
  sweep = tmp_path / "sweep"
  done = _main("--config", "experiments/pretrain_gaitmae.py:smoke",
               "--workdir", str(sweep / "always_hide=left_leg-right_leg"),
               f"--config.data.shards={work / 'shards'}", "--config.total_steps=2",
               "--config.checkpoint_every=2", "--config.data.split=all",
               "--config.model.masking.always_hide=('left_leg','right_leg')")
  assert done.returncode == 0, done.stderr[-2000:]
  out = tmp_path / "ablation"
  common = ["--config", "experiments/ablation.py:smoke", "--workdir", str(out),
            f"--config.checkpoint_dir={work / 'pretrain_smoke'}",
            f"--config.data.shards={work / 'shards'}", "--config.data.max_clips_per_group=1",
            f"--config.phenotypes={work / 'cohort' / 'phenotypes.parquet'}",
            f"--config.dictionary={work / 'cohort' / 'dictionary.csv'}",
            "--config.probe.binary_model=ridge"]  # as the pipeline runs it
  bad = _main(*common, "--config.trained=hands=/nowhere")
  assert bad.returncode == 2 and "region 'hands' is not one of" in bad.stderr
  assert len(bad.stderr.strip().splitlines()) == 1
  done = _main(*common, f"--config.trained={sweep}")
  assert done.returncode == 0, done.stderr[-2000:]
  assert (out / "embed" / "embeddings.parquet").is_file()
  trained = pd.read_parquet(out / "embed_trained" / "legs" / "embeddings.parquet")
  assert set(trained["ablation"]) == {"none"}
  regions = pd.read_csv(out / "region_importance.csv")
  assert set(regions["ablation"]) == {"zero", "only", "trained"}
  assert set(regions.loc[regions["ablation"] == "trained", "region"]) == {"legs"}
  per_target = pd.read_parquet(out / "target_importance.parquet")
  legs = per_target[per_target["ablation"] == "trained"]
  assert (legs["features"] == "trained:legs").all() and legs["delta"].notna().any()


def test_reconstruction_from_the_checkpoint(run):
  """The report's reconstruction table from the run's real (2-step smoke) checkpoint."""
  table = tables.reconstruction(RunDir.open(run[0]))
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
