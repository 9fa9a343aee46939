"""The cluster launchers: launch/sweep.py's backends (print, local, slurm, wandb),
launch/tpu.sh and launch/slurm_multinode.sbatch. SLURM, gcloud, W&B's agent and the
interpreter of the runs are fakes on PATH that record the arguments they get."""

import importlib.util
import os
import pathlib
import shlex
import subprocess
import sys

import conftest
import pytest
from absl import flags
from ml_collections import config_flags

ROOT = conftest.REPO
SWEEP = ROOT / "launch" / "sweep.py"
GAITMAE = str(ROOT / "experiments" / "pretrain_gaitmae.py")

# An experiment file with the interface sweep.py reads and nothing to train.
EXPERIMENT = '''
import ml_collections

def get_config(arg=None):
  return ml_collections.ConfigDict({"wandb": {"project": "proj", "entity": ""}})

def get_sweep(name="grid"):
  if name == "grid":
    return [{"model.depth": d, "optim.lr": lr} for d in (2, 4) for lr in (0.1, 0.01)]
  if name == "regions":
    return [{"model.masking.always_hide": parts} for parts in ((), ("legs",), ("head",))]
  if name == "ragged":
    return [{"model.depth": 2, "optim.lr": 0.1}, {"model.depth": 4, "optim.lr": 0.1},
            {"model.depth": 4, "optim.lr": 0.01}]
  raise ValueError(f"unknown sweep {name!r}")
'''
GRID_NAMES = ["depth=2_lr=0.1", "depth=2_lr=0.01", "depth=4_lr=0.1", "depth=4_lr=0.01"]


def _sweep_module():
  spec = importlib.util.spec_from_file_location("launch_sweep", SWEEP)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


sweep = _sweep_module()


@pytest.fixture
def experiment(tmp_path) -> str:
  path = tmp_path / "exp.py"
  path.write_text(EXPERIMENT)
  return f"{path}:v"


def _fake(tmp_path: pathlib.Path, name: str, body: str) -> pathlib.Path:
  """An executable tmp_path/bin/NAME running the bash `body`; returns bin/."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir(exist_ok=True)
  path = bin_dir / name
  path.write_text("#!/bin/bash\n" + body)
  path.chmod(0o755)
  return bin_dir


def _recorder(tmp_path: pathlib.Path, name: str) -> tuple[pathlib.Path, pathlib.Path]:
  """A fake NAME that drops its leading options (into NAME.options, one per line),
  writes the rest of its argv NUL-separated to NAME.argv and its directory to
  NAME.pwd. Returns (bin dir, argv file)."""
  record = tmp_path / name
  bin_dir = _fake(tmp_path, name, f"""
while [ $# -gt 0 ] && [[ "$1" == -* ]]; do echo "$1" >> {record}.options; shift; done
printf '%s\\0' "$@" > {record}.argv
pwd > {record}.pwd
""")
  return bin_dir, pathlib.Path(f"{record}.argv")


def _argv(path: pathlib.Path) -> list[str]:
  return path.read_text().split("\0")[:-1]


def _env(bin_dir: pathlib.Path, **extra: str) -> dict[str, str]:
  env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "WANDB_RUN"))}
  return {**env, "PATH": f"{bin_dir}:{env['PATH']}", **extra}


# --- print ---------------------------------------------------------------------------


def test_sweep_expands_into_commands():
  proc = subprocess.run([sys.executable, str(SWEEP), f"{GAITMAE}:small",
                         "--root", "runs/s", "--", "--config.data.shards=X"],
                        capture_output=True, text=True, check=True)
  lines = proc.stdout.strip().splitlines()
  assert len(lines) == 6
  assert len(set(lines)) == 6
  first = lines[0]
  assert "--config.model.masking.regions_hidden=3" in first
  assert "--config.model.depth=2" in first
  assert first.endswith("--config.data.shards=X")
  args = [shlex.split(line) for line in lines]
  assert args[0][:4] == ["python", "-m", "gait_jax.main", "--config"]
  assert args[0][5:7] == ["--workdir", "runs/s/regions_hidden=3_depth=2"]


def test_region_sweep_hides_each_region_in_one_run(capsys):
  assert sweep.main([f"{GAITMAE}:small", "--root", "runs/s", "--sweep", "regions"]) == 0
  args = [shlex.split(line) for line in capsys.readouterr().out.strip().splitlines()]
  hidden = [a[-1] for a in args]
  assert hidden == ["--config.model.masking.always_hide=()",
                    "--config.model.masking.always_hide=('left_leg','right_leg',)",
                    "--config.model.masking.always_hide=('left_arm','right_arm',)",
                    "--config.model.masking.always_hide=('torso',)",
                    "--config.model.masking.always_hide=('head',)"]
  with pytest.raises(SystemExit, match="unknown sweep 'nope'"):
    sweep.main([f"{GAITMAE}:small", "--sweep", "nope"])


def test_override_values_parse_back_to_the_sweep_values(tmp_path):
  """The override text, parsed by ml_collections as gait_jax.main parses it."""
  point = {"s": "online", "t": ("left_leg", "right_leg"), "e": (), "i": 3, "f": 1e-3,
           "b": True}
  config = tmp_path / "config.py"
  config.write_text("import ml_collections\n\ndef get_config():\n  return "
                    "ml_collections.ConfigDict({'s': 'offline', 't': ('x',), 'e': ('y',), "
                    "'i': 1, 'f': 0.5, 'b': False})\n")
  argv = ["prog", "--config", str(config)] + sweep.override_args(point)
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", flag_values=values, sys_argv=argv)
  values(argv)
  assert values.config.to_dict() == point


def test_print_wraps_each_point_in_the_local_launcher(experiment, tmp_path, monkeypatch,
                                                      capsys):
  monkeypatch.chdir(tmp_path)
  assert sweep.main([experiment, "--root", "r", "--processes", "2",
                     "--devices-per-process", "4", "--", "--config.data.shards=X"]) == 0
  lines = [shlex.split(line) for line in capsys.readouterr().out.splitlines()]
  assert len(lines) == 4
  launcher, rest = lines[1][:6], lines[1][6:]
  assert (tmp_path / launcher[0]).resolve() == ROOT / "launch" / "local.sh"
  assert launcher[1:] == ["--processes", "2", "--devices-per-process", "4", "--"]
  assert rest == ["python", "-m", "gait_jax.main", "--config", experiment,
                  "--workdir", "r/depth=2_lr=0.01", "--config.model.depth=2",
                  "--config.optim.lr=0.01", "--config.data.shards=X"]


def test_options_of_another_backend_are_refused(experiment, capsys):
  for argv in (["--backend", "slurm", "--parallel", "2"], ["--nodes", "2"],
               ["--backend", "wandb", "--processes", "2"], ["--devices-per-process", "2"],
               ["--backend", "local", "--parallel", "0"]):
    with pytest.raises(SystemExit) as e:
      sweep.main([experiment] + argv)
    assert e.value.code == 2, argv
  assert "--parallel must be at least 1" in capsys.readouterr().err


# --- local ---------------------------------------------------------------------------


def test_local_runs_every_point_and_names_the_failed_ones(experiment, tmp_path, capsys):
  """--parallel 2: each point's output in its sweep.log; depth=4 points fail."""
  bin_dir = _fake(tmp_path, "fakepy", """
echo "argv: $*"
case "$*" in *depth=4*) echo "boom" >&2; exit 3 ;; esac
""")
  root = tmp_path / "r"
  code = sweep.main([experiment, "--root", str(root), "--backend", "local", "--parallel",
                     "2", "--python", str(bin_dir / "fakepy"), "--", "--config.x=1"])
  assert code == 1
  err = capsys.readouterr().err
  assert "2 of 4 points failed" in err
  for name in GRID_NAMES:
    log = (root / name / "sweep.log").read_text()
    assert f"--workdir {root / name} " in log
    assert log.splitlines()[0].endswith("--config.x=1")
    failed = f"{name}: status 3 (log: {root / name / 'sweep.log'})" in err
    assert failed == ("boom" in log) == name.startswith("depth=4"), name


def test_local_in_sequence_prints_to_the_terminal(experiment, tmp_path, capfd):
  bin_dir = _fake(tmp_path, "fakepy", 'echo "ran $4"\n')
  root = tmp_path / "r"
  assert sweep.main([experiment, "--root", str(root), "--backend", "local",
                     "--python", str(bin_dir / "fakepy")]) == 0
  out = capfd.readouterr().out
  assert [line for line in out.splitlines() if line.startswith("ran ")] == \
      [f"ran {experiment}"] * 4
  assert "all 4 points succeeded" in out
  assert not list(root.rglob("sweep.log"))


# --- slurm ---------------------------------------------------------------------------


def test_slurm_array_task_runs_its_point_with_srun(experiment, tmp_path):
  root = tmp_path / "r"
  assert sweep.main([experiment, "--root", str(root), "--backend", "slurm", "--nodes", "2",
                     "--gpus-per-node", "4", "--time", "01:00:00", "--partition", "gpu",
                     "--", "--config.data.shards=X"]) == 0
  script = root / "sweep.sbatch"
  header = [line for line in script.read_text().splitlines() if line.startswith("#SBATCH")]
  assert header == ["#SBATCH --job-name=r", "#SBATCH --array=0-3", "#SBATCH --nodes=2",
                    "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4",
                    "#SBATCH --time=01:00:00", "#SBATCH --partition=gpu",
                    f"#SBATCH --chdir={ROOT}", f"#SBATCH --output={root}/logs/%A_%a.out"]
  assert (root / "logs").is_dir()
  bin_dir, argv = _recorder(tmp_path, "srun")
  env = _env(bin_dir, SLURM_ARRAY_TASK_ID="1", SLURM_ARRAY_JOB_ID="7", SLURM_JOB_ID="8",
             SLURM_NTASKS="8", SLURM_JOB_NUM_NODES="2")
  done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True,
                        check=True, cwd=tmp_path)
  assert _argv(argv) == ["python", "-m", "gait_jax.main", "--config", experiment,
                         "--workdir", str(root / "depth=2_lr=0.01"), "--config.model.depth=2",
                         "--config.optim.lr=0.01", "--config.data.shards=X"]
  assert (tmp_path / "srun.options").read_text().split() == ["--kill-on-bad-exit=1"]
  assert (tmp_path / "srun.pwd").read_text().strip() == str(ROOT)
  assert (root / "depth=2_lr=0.01").is_dir() and "sweep point 1 on 2 node(s)" in done.stdout
  for task, message in (("4", "no sweep point 4 (points: 0-3)"),
                        (None, "SLURM_ARRAY_TASK_ID: is not set")):
    env = _env(bin_dir, **({"SLURM_ARRAY_TASK_ID": task} if task else {}))
    bad = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True,
                         check=False)
    assert bad.returncode != 0 and message in bad.stderr, bad.stderr


def test_slurm_defaults_and_a_cluster_checkout(experiment, tmp_path, monkeypatch):
  """CPU only: one task per node; --chdir and --python as given, paths relative."""
  monkeypatch.chdir(tmp_path)
  checkout = tmp_path / "checkout"
  checkout.mkdir()
  config = "exp.py:v"
  assert sweep.main([config, "--root", "r", "--backend", "slurm", "--sweep", "regions",
                     "--chdir", str(checkout), "--python", ".venv/bin/python",
                     "--cpus-per-task", "6", "--account", "lab"]) == 0
  text = (tmp_path / "r" / "sweep.sbatch").read_text()
  header = [line for line in text.splitlines() if line.startswith("#SBATCH")]
  assert header == ["#SBATCH --job-name=r", "#SBATCH --array=0-2", "#SBATCH --nodes=1",
                    "#SBATCH --ntasks-per-node=1", "#SBATCH --cpus-per-task=6",
                    "#SBATCH --account=lab", f"#SBATCH --chdir={checkout}",
                    "#SBATCH --output=r/logs/%A_%a.out"]
  bin_dir, argv = _recorder(tmp_path, "srun")
  subprocess.run(["bash", "r/sweep.sbatch"], env=_env(bin_dir, SLURM_ARRAY_TASK_ID="1"),
                 capture_output=True, check=True)
  assert _argv(argv) == [".venv/bin/python", "-m", "gait_jax.main", "--config", config,
                         "--workdir", "r/always_hide=legs",
                         "--config.model.masking.always_hide=('legs',)"]
  assert (tmp_path / "srun.options").read_text().split() == ["--kill-on-bad-exit=1",
                                                              "--cpus-per-task=6"]
  assert (tmp_path / "srun.pwd").read_text().strip() == str(checkout)
  assert (checkout / "r" / "always_hide=legs").is_dir()


def test_multinode_example_runs_one_job_on_16_gpus(tmp_path):
  script = ROOT / "launch" / "slurm_multinode.sbatch"
  header = [line for line in script.read_text().splitlines() if line.startswith("#SBATCH")]
  for option in ("--nodes=2", "--ntasks-per-node=8", "--gpus-per-node=8"):
    assert f"#SBATCH {option}" in header
  bin_dir, argv = _recorder(tmp_path, "srun")
  workdir = tmp_path / "run"
  subprocess.run(["bash", str(script), "--config.total_steps=5"], cwd=ROOT, check=True,
                 env=_env(bin_dir, SHARDS="/data/shards", WORKDIR=str(workdir),
                          SLURM_CPUS_PER_TASK="8", SLURM_NTASKS="16"))
  assert _argv(argv) == ["python", "-m", "gait_jax.main", "--config",
                         "experiments/pretrain_gaitmae.py:paper", "--workdir", str(workdir),
                         "--config.data.shards=/data/shards", "--config.data.batch_size=128",
                         "--config.mesh.axes=(('data', 16), ('fsdp', 1), ('tensor', 1))",
                         "--config.total_steps=5"]
  assert (tmp_path / "srun.options").read_text().split() == ["--kill-on-bad-exit=1",
                                                              "--cpus-per-task=8"]
  assert workdir.is_dir()
  outside = subprocess.run(["bash", str(script)], cwd=tmp_path, env=_env(bin_dir),
                           capture_output=True, text=True, check=False)
  assert outside.returncode == 2 and "submit from the repository root" in outside.stderr


# --- wandb ---------------------------------------------------------------------------


def _agent_command(command: list[str], point: dict[str, str]) -> list[str]:
  """The argv W&B's agent runs for a point (wandb_agent.Agent._command_run, with W&B's
  own rendering of ${args})."""
  from wandb.sdk.launch.sweeps import utils  # pylint: disable=import-outside-toplevel
  macros = utils.create_sweep_command_args({"args": {k: {"value": v}
                                                     for k, v in point.items()}})
  macros.update(interpreter=["python"], env=["/usr/bin/env"])
  argv = []
  for chunk in utils.create_sweep_command(list(command)):
    argv += macros.get(chunk[2:-1], []) if chunk.startswith("${") else [chunk]
  return argv


def test_wandb_grid_sweep_runs_gait_jax_main_with_the_point(experiment, tmp_path):
  root = tmp_path / "r"
  assert sweep.main([experiment, "--root", str(root), "--backend", "wandb",
                     "--", "--config.data.shards=X"]) == 0
  try:
    from wandb.sdk.launch.sweeps.utils import load_sweep_config  # the `wandb sweep` reader
  except ImportError:
    pytest.skip("wandb is not installed")
  definition = load_sweep_config(str(root / "sweep.yaml"))
  assert definition["method"] == "grid" and definition["project"] == "proj"
  assert definition["parameters"] == {"config.model.depth": {"values": ["2", "4"]},
                                      "config.optim.lr": {"values": ["0.1", "0.01"]}}
  point = {"config.model.depth": "4", "config.optim.lr": "0.01"}
  bin_dir, argv = _recorder(tmp_path, "python")
  command = _agent_command(definition["command"], point)
  subprocess.run(command, env=_env(bin_dir, WANDB_RUN_ID="abc123"), check=True,
                 cwd=tmp_path)
  assert _argv(argv) == ["gait_jax.main", "--config", experiment,
                         "--config.wandb.mode=online", "--config.model.depth=4",
                         "--config.optim.lr=0.01", "--config.data.shards=X",
                         f"--workdir={root}/abc123"]
  assert (tmp_path / "python.options").read_text().split() == ["-m"]
  by_hand = subprocess.run(command, env=_env(bin_dir), capture_output=True, text=True,
                           check=False)
  assert by_hand.returncode != 0 and "run this with wandb agent" in by_hand.stderr


def test_wandb_tuple_values_and_chdir(experiment, tmp_path, monkeypatch):
  yaml = pytest.importorskip("yaml")
  monkeypatch.chdir(tmp_path)
  assert sweep.main([experiment, "--root", "r", "--sweep", "regions", "--backend", "wandb",
                     "--chdir", str(tmp_path)]) == 0
  definition = yaml.safe_load((tmp_path / "r" / "sweep.yaml").read_text())
  assert definition["parameters"] == {
      "config.model.masking.always_hide": {"values": ["()", "('legs',)", "('head',)"]}}
  bin_dir, argv = _recorder(tmp_path, "python")
  point = {"config.model.masking.always_hide": "('legs',)"}
  subprocess.run(_agent_command(definition["command"], point), check=True, cwd="/",
                 env=_env(bin_dir, WANDB_RUN_ID="xyz"))
  assert _argv(argv)[-2:] == ["--config.model.masking.always_hide=('legs',)",
                              "--workdir=r/xyz"]
  assert (tmp_path / "python.pwd").read_text().strip() == str(tmp_path)


def test_wandb_refuses_a_sweep_that_is_not_a_grid(experiment, tmp_path):
  with pytest.raises(SystemExit, match="not a grid.*depth=2, optim.lr=0.01"):
    sweep.main([experiment, "--root", str(tmp_path), "--sweep", "ragged",
                "--backend", "wandb"])
  with pytest.raises(ValueError, match="point 1 repeats point 0"):
    sweep.grid([{"a": 1}, {"a": 1}])
  with pytest.raises(ValueError, match="point 1 sets"):
    sweep.grid([{"a": 1}, {"b": 1}])
  assert sweep.grid([{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]) == {"a": ["1", "2"],
                                                                   "b": ["x"]}


def test_yaml_writer_round_trips():
  yaml = pytest.importorskip("yaml")
  data = {"name": "it's \"quoted\" \\ #not-a-comment: -x", "empty": {}, "none": [],
          "command": ["${args}", "-c", "exec \"$@\" --workdir=r/\"$WANDB_RUN_ID\"", "été"],
          "weird key: yes": {"values": ["()", "('a',)", "", "null", "3", "true"]}}
  assert yaml.safe_load(sweep.to_yaml(data)) == data


# --- tpu -----------------------------------------------------------------------------


def _tpu(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
  return subprocess.run(["bash", str(ROOT / "launch" / "tpu.sh"), *args], env=env,
                        capture_output=True, text=True, check=False)


def test_tpu_runs_the_command_on_every_worker(tmp_path):
  checkout = tmp_path / "my checkout"
  checkout.mkdir()
  command = ["python3", "-c", "import os, sys; print(os.getcwd(), sys.argv[1:])",
             "a b", "$HOME", "it's"]
  expected = ["compute", "tpus", "tpu-vm", "ssh", "pod", "--zone=us-central2-b",
              "--project=proj", "--worker=all"]
  dry = _tpu("--tpu", "pod", "--zone=us-central2-b", "--project", "proj", "--repo-dir",
             str(checkout), "--dry-run", "--", *command)
  assert dry.returncode == 0, dry.stderr
  printed = shlex.split(dry.stdout)
  assert printed[:-1] == ["gcloud"] + expected
  bin_dir, argv = _recorder(tmp_path, "gcloud")
  ran = _tpu("--tpu", "pod", "--zone=us-central2-b", "--project", "proj", "--repo-dir",
             str(checkout), "--", *command, env=_env(bin_dir))
  assert ran.returncode == 0, ran.stderr
  # The fake drops no options here: gcloud's first word is not one.
  assert _argv(argv) == expected + [printed[-1]]
  remote = printed[-1].removeprefix("--command=")
  worker = subprocess.run(["bash", "-c", remote], cwd=tmp_path, capture_output=True,
                          text=True, check=True)
  assert worker.stdout.strip() == f"{checkout} ['a b', '$HOME', \"it's\"]"


def test_tpu_usage_errors_exit_2():
  for args, message in ((["--zone", "z", "--", "ls"], "--tpu is required"),
                        (["--tpu", "t", "--", "ls"], "--zone is required"),
                        (["--tpu", "t", "--zone", "z"], "no command"),
                        (["--tpu", "t", "--zone", "z", "--wat", "--", "ls"],
                         "unknown option '--wat'"),
                        (["--tpu", "t", "--zone"], "--zone needs a value")):
    done = _tpu(*args)
    assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
  assert "usage: launch/tpu.sh" in done.stderr
