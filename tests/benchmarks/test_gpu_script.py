"""benchmarks/gpu.sh --cpu-dry-run: every step of the GPU check runs (tiny sizes, CPU)."""

import os
import subprocess

from conftest import REPO


def test_gpu_script_dry_run_runs_every_step():
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh"), "--cpu-dry-run"],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
                        check=False)
  out = proc.stdout
  assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
  assert "== environment" in out and "backend cpu" in out
  # The train step: one row per attention implementation, with its attention path.
  rows = [line.split() for line in out.splitlines()
          if line.startswith("smoke") and not line.startswith("smoke (")]
  assert [r[0] for r in rows] == ["smoke", "smoke/xla/0"], out
  assert all(r[4] == "bfloat16" and r[5] in ("chunked", "one") for r in rows), rows  # "one pass"
  assert "clips/s" in out and "embed, 9 ablations" in out and "probe benchmark" in out
  # The profile: per-kernel rows of the trace and the families they sum to.
  assert "ms/step busy" in out and "family" in out and "matmul" in out
  # Attention alone: one row per shape.
  assert "attention fwd+bwd" in out and "temporal" in out and "spatial" in out
  assert out.count("exit status 0") == 5
