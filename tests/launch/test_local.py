"""Every job over real processes: launch/local.sh starts 2 processes × 4 CPU devices
wired into one JAX job (gloo collectives), and each is compared with the one-process,
8-device run of the same command. Pretraining is killed with SIGKILL and restarted."""

import importlib.util
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import conftest
import numpy as np
import pandas as pd
import pytest

ROOT = conftest.REPO
LOCAL = ROOT / "launch" / "local.sh"
GAITMAE = str(ROOT / "experiments" / "pretrain_gaitmae.py")
STEPS, EVERY = 8, 4


def _env(**kw) -> dict[str, str]:
  env = {**os.environ, "WANDB_MODE": "disabled", "PYTHON": sys.executable, **kw}
  env["PATH"] = f"{pathlib.Path(sys.executable).parent}:{env['PATH']}"
  return env


def _two(command: list[str]) -> list[str]:
  return ["bash", str(LOCAL), "--processes", "2", "--devices-per-process", "4", "--", *command]


def _run(command: list[str], timeout: int = 600) -> str:
  proc = subprocess.run(command, env=_env(), cwd=ROOT, capture_output=True, text=True,
                        timeout=timeout)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  return proc.stdout


def _main(*args: str) -> list[str]:
  return [sys.executable, "-m", "gait_jax.main", *args]


def _pretrain(workdir, shards, *extra: str) -> list[str]:
  return _main("--config", f"{GAITMAE}:smoke", "--workdir", str(workdir),
               f"--config.data.shards={shards}", f"--config.total_steps={STEPS}",
               f"--config.checkpoint_every={EVERY}", "--config.keep_checkpoints=4",
               "--config.log_every=1", f"--config.evals.val.every={EVERY}", *extra)


def _losses(workdir, key: str = "loss") -> dict[int, float]:
  lines = (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()
  return {r["step"]: r[key] for r in map(json.loads, lines) if key in r}


def _assert_same_losses(got: dict[int, float], want: dict[int, float], steps) -> None:
  for step in steps:
    assert got[step] == pytest.approx(want[step], rel=1e-5), (step, got[step], want[step])


# --- The launcher ------------------------------------------------------------------------


def test_each_process_gets_its_place_in_the_job_and_a_prefix():
  code = ("import os; e = os.environ; print(e['JAX_PROCESS_ID'], e['JAX_NUM_PROCESSES'], "
          "e['JAX_COORDINATOR_ADDRESS'], e['XLA_FLAGS'])")
  proc = subprocess.run(["bash", str(LOCAL), "--processes", "3", "--devices-per-process", "2",
                         "--", sys.executable, "-c", code],
                        env={**_env(), "XLA_FLAGS": "--xla_force_host_platform_device_count=8 "
                             "--xla_cpu_use_thunk_runtime=true"},
                        capture_output=True, text=True, timeout=60)
  assert proc.returncode == 0, proc.stderr
  lines = sorted(proc.stdout.splitlines())
  assert len(lines) == 3
  ports = set()
  for i, line in enumerate(lines):
    m = re.fullmatch(rf"\[{i}\] {i} 3 localhost:(\d+) (.*)", line)
    assert m, line
    ports.add(m.group(1))
    assert m.group(2).split() == ["--xla_cpu_use_thunk_runtime=true",
                                  "--xla_force_host_platform_device_count=2"]
  assert len(ports) == 1


def test_a_failed_process_stops_the_others_within_seconds():
  code = ("import os, time, sys; i = int(os.environ['JAX_PROCESS_ID']); "
          "time.sleep(1); sys.exit(3) if i == 1 else time.sleep(600)")
  start = time.monotonic()
  proc = subprocess.run(["bash", str(LOCAL), "--processes", "2", "--grace", "2", "--",
                         sys.executable, "-c", code],
                        env=_env(), capture_output=True, text=True, timeout=60)
  assert proc.returncode == 3
  assert time.monotonic() - start < 15
  assert "process 1 exited with status 3; stopping process(es) [0]" in proc.stderr


def test_gpus_per_process_are_consecutive_blocks():
  code = "import os; print(os.environ['JAX_PROCESS_ID'], os.environ['CUDA_VISIBLE_DEVICES'])"
  proc = subprocess.run(["bash", str(LOCAL), "--processes", "2", "--gpus-per-process", "4",
                         "--", sys.executable, "-c", code],
                        env=_env(), capture_output=True, text=True, timeout=60)
  assert proc.returncode == 0, proc.stderr
  assert sorted(proc.stdout.splitlines()) == ["[0] 0 0,1,2,3", "[1] 1 4,5,6,7"]


@pytest.mark.parametrize("args, message", [
    (["--processes", "2"], "usage"),
    (["--processes", "0", "--", "true"], "must be at least 1"),
    (["--processes", "2", "--"], "no command"),
    (["--processes", "2", "--gpus-per-process", "0", "--", "true"], "must be at least 1"),
    (["--processes", "2", "--gpus-per-process", "1", "--devices-per-process", "1", "--",
      "true"], "not allowed with"),
])
def test_usage_errors(args, message):
  proc = subprocess.run(["bash", str(LOCAL), *args], env=_env(), capture_output=True,
                        text=True, timeout=60)
  assert proc.returncode != 0 and message in proc.stderr


# --- Pretraining ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tiny_shards, tmp_path_factory) -> pathlib.Path:
  """The uninterrupted one-process run on 8 devices."""
  workdir = tmp_path_factory.mktemp("reference") / "run"
  _run(_pretrain(workdir, tiny_shards))
  assert sorted(_losses(workdir)) == list(range(1, STEPS + 1))
  return workdir


def _kill_when_saved(proc: subprocess.Popen, workdir: pathlib.Path, step: int) -> None:
  """SIGKILL to every process of the launched job once checkpoint `step` is on disk."""
  pids, lines = [], []
  deadline = time.time() + 300
  for line in proc.stderr:
    lines.append(line)
    if m := re.match(r"\[launcher\] process \d+ of \d+: pid (\d+)", line):
      pids.append(int(m.group(1)))
    if len(pids) == 2:
      break
  assert len(pids) == 2, "".join(lines)
  while time.time() < deadline:
    if (workdir / "checkpoints" / str(step) / "commit_success.txt").exists() or (
        workdir / "checkpoints" / str(step) / "_CHECKPOINT_METADATA").exists():
      break
    assert proc.poll() is None, "the job ended before its checkpoint"
    time.sleep(0.05)
  for pid in pids:
    os.killpg(pid, signal.SIGKILL)
  assert proc.wait(timeout=60) != 0


def test_two_processes_killed_and_restarted_continue_the_one_process_run(
    tiny_shards, reference, tmp_path):
  workdir = tmp_path / "killed"
  cmd = _two(_pretrain(workdir, tiny_shards, "--config.async_checkpoint=False"))
  proc = subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  _kill_when_saved(proc, workdir, EVERY)
  first = _losses(workdir)
  out = _run(cmd)
  assert f"resumed from {workdir / 'checkpoints'} at step {EVERY}" in out
  # Process 0 alone logs; each process saved its own data iterator.
  assert "[0] step 8/8" in out and "[1] step" not in out
  data = workdir / "checkpoints" / str(STEPS) / "data"
  assert sorted(p.name for p in data.glob("*.json")) == ["process_0-of-2.json",
                                                         "process_1-of-2.json"]
  # The global batches do not depend on the process count: both attempts match the
  # one-process run, before and after the kill.
  want = _losses(reference)
  _assert_same_losses(first, want, [s for s in first if s <= EVERY])
  _assert_same_losses(_losses(workdir), want, range(EVERY + 1, STEPS + 1))
  # The held-out evaluator, run by both processes on their halves of the val clips.
  _assert_same_losses(_losses(workdir, "val/loss"), _losses(reference, "val/loss"),
                      (EVERY, STEPS))


def test_a_one_process_checkpoint_resumes_on_two_processes(tiny_shards, reference,
                                                           tmp_path):
  workdir = tmp_path / "moved"
  shutil.copytree(reference / "checkpoints" / str(EVERY),
                  workdir / "checkpoints" / str(EVERY))
  out = _run(_two(_pretrain(workdir, tiny_shards)))
  assert "at step 4" in out
  _assert_same_losses(_losses(workdir), _losses(reference), range(EVERY + 1, STEPS + 1))


# --- Embedding and probing -----------------------------------------------------------------


def test_embedding_over_two_processes_is_one_table_without_duplicates(
    tiny_shards, reference, tmp_path):
  tables = {}
  for name, wrap in (("one", list), ("two", _two)):
    _run(wrap(_main("--config", str(ROOT / "experiments" / "embed.py") + ":smoke",
                    "--workdir", str(tmp_path / name), f"--config.checkpoint_dir={reference}",
                    f"--config.data.shards={tiny_shards}")))
    tables[name] = pd.read_parquet(tmp_path / name / "embeddings.parquet")
  keys = ["participant_id", "task", "ablation"]
  one, two = (t.sort_values(keys).reset_index(drop=True) for t in tables.values())
  assert not two.duplicated(keys).any() and len(two) == 40  # 8 people × 5 tasks
  pd.testing.assert_frame_equal(one, two)


def _probe_inputs(root: pathlib.Path) -> tuple[str, str, str]:
  path = ROOT / "tests" / "gait_jax" / "probing" / "test_job.py"
  spec = importlib.util.spec_from_file_location("probe_job_tests", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module._write_inputs(root)  # pylint: disable=protected-access


def test_probing_over_two_processes_shards_the_targets_and_writes_one_table(tmp_path):
  emb, ph, dic = _probe_inputs(tmp_path)
  results = {}
  for name, wrap in (("one", list), ("two", _two)):
    out = _run(wrap(_main("--config", str(ROOT / "experiments" / "probe.py") + ":smoke",
                          "--workdir", str(tmp_path / name), f"--config.embeddings={emb}",
                          f"--config.phenotypes={ph}", f"--config.dictionary={dic}",
                          "--config.covariates=age,sex,bmi",
                          "--config.binary_model=ridge")))
    results[name] = pd.read_parquet(tmp_path / name / "results" / "targets.parquet")
  assert "[0] probe: 46 participants" in out and "[1] probe:" not in out
  pd.testing.assert_frame_equal(results["one"], results["two"], rtol=1e-6)
  assert results["two"]["status"].eq("ok").sum() > 10
