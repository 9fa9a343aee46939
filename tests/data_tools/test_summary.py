"""`python -m data_tools.summary`: user errors are one line on stderr, not a traceback."""

import subprocess
import sys

import pytest

from data_tools import summary
from gait_jax.errors import InputError


def test_a_directory_that_is_not_a_shard_set_is_one_line(tmp_path):
  (tmp_path / "walk.npz").write_bytes(b"")
  proc = subprocess.run([sys.executable, "-m", "data_tools.summary", "--shards", str(tmp_path)],
                        capture_output=True, text=True, check=False)
  assert proc.returncode == 2, proc.stderr
  assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
  assert f"{tmp_path}: no manifest.parquet" in proc.stderr
  assert "not a prepared shard set" in proc.stderr and proc.stdout == ""


def test_bad_flags_and_a_cohort_that_is_not_one(tmp_path, capsys):
  with pytest.raises(SystemExit) as info:
    summary.main(["--shards", str(tmp_path), "--batch-size", "0"])
  err = capsys.readouterr().err
  assert info.value.code == 2 and err.count("\n") == 1 and "--batch-size" in err
  with pytest.raises(InputError, match=f"--cohort {tmp_path}: no dictionary.csv"):
    summary.cohort_summary(str(tmp_path))
