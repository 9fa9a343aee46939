"""Test set-up: 8 fake CPU devices, W&B off. Runs before JAX is imported."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["WANDB_MODE"] = "disabled"

import pathlib  # noqa: E402

import pytest  # noqa: E402

UCALGARY = (pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
            / "ucalgary_kinect_v2_gait")


@pytest.fixture
def ucalgary_dir() -> pathlib.Path:
  """The real UCalgary Kinect v2 recordings; skips when they are not on disk."""
  if not UCALGARY.is_dir():
    pytest.skip(f"real Kinect v2 data not found at {UCALGARY}")
  return UCALGARY
