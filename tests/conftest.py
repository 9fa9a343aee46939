"""Test set-up: 8 fake CPU devices, W&B off. Runs before JAX is imported."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["WANDB_MODE"] = "disabled"

import pathlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

# The repository root (experiments/, launch/ and the package are under it).
REPO = pathlib.Path(__file__).resolve().parents[1]
UCALGARY = (REPO.parent / "shared" / "data"
            / "ucalgary_kinect_v2_gait")


@pytest.fixture
def ucalgary_dir() -> pathlib.Path:
  """The real UCalgary Kinect v2 recordings; skips when they are not on disk."""
  if not UCALGARY.is_dir():
    pytest.skip(f"real Kinect v2 data not found at {UCALGARY}")
  return UCALGARY


def build_cohort(root: pathlib.Path, *, participants: int, seconds: float, clip_frames: int,
                 clip_stride: int, targets: int = 40) -> pathlib.Path:
  """A synthetic cohort under root/cohort, prepared into shards at root/shards."""
  from data_tools import prepare, qc, synth  # pylint: disable=import-outside-toplevel
  synth.generate(str(root / "cohort"), participants=participants, seed=0, seconds=seconds,
                 targets=targets, workers=1, verbose=False)
  prepare.prepare([str(root / "cohort" / "recordings")], "npz", str(root / "shards"),
                  prepare.ReadOptions(),
                  qc.QCOptions(clip_frames=clip_frames, clip_stride=clip_stride),
                  workers=1, log=lambda *_: None)
  return root


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory) -> pathlib.Path:
  """A synthetic cohort of 8 people × 5 tasks × 4 s, prepared into 60-frame clips."""
  root = build_cohort(tmp_path_factory.mktemp("tiny"), participants=8, seconds=4.0,
                      clip_frames=60, clip_stride=30)
  return root / "shards"


@pytest.fixture(scope="session")
def pretrained(tiny_shards, tmp_path_factory) -> pathlib.Path:
  """A smoke GaitMAE pretrained for 2 steps on every participant of the tiny cohort."""
  workdir = tmp_path_factory.mktemp("pretrain")
  subprocess.run(
      [sys.executable, "-m", "gait_jax.main",
       "--config", "experiments/pretrain_gaitmae.py:smoke", "--workdir", str(workdir),
       f"--config.data.shards={tiny_shards}", "--config.total_steps=2",
       "--config.checkpoint_every=2", "--config.data.split=all"],
      check=True, capture_output=True, text=True, cwd=REPO)
  return workdir
