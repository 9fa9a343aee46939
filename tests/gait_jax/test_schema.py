"""The participant × task table contract between embed, features and probe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gait_jax import schema
from gait_jax.errors import InputError


def test_written_tables_name_their_features(tmp_path):
  frame = pd.DataFrame({"participant_id": ["a", "b"], "task": ["walk", "walk"],
                        "ablation": ["none", "none"], "n_clips": [2, 3],
                        "checkpoint_step": [5, 5], "config_hash": ["h", "h"],
                        "legs.mean.0": [0.1, 0.2], "extra_numeric": [1.0, 2.0]})
  schema.write_table(frame, ["legs.mean.0"], tmp_path / "t.parquet")
  table, features = schema.read_table(tmp_path / "t.parquet")
  assert features == ["legs.mean.0"]  # named by the writer, not found by exclusion
  assert table["n_clips"].dtype == np.int32


def test_foreign_table_without_task_or_ablation(tmp_path):
  pd.DataFrame({"participant_id": [1, 2], "speed": [1.1, 1.2], "cadence": [100, 110]}).to_csv(
      tmp_path / "sheet.csv", index=False)
  table, features = schema.read_table(tmp_path / "sheet.csv")
  assert features == ["speed", "cadence"]
  assert set(table["task"]) == {schema.ALL_TASKS} and set(table["ablation"]) == {"none"}
  assert table["participant_id"].tolist() == ["1", "2"]


def test_bad_tables_name_the_file(tmp_path):
  with pytest.raises(InputError, match="missing.parquet.*does not exist"):
    schema.read_table(tmp_path / "missing.parquet")
  pd.DataFrame({"id": [1]}).to_csv(tmp_path / "noid.csv", index=False)
  with pytest.raises(InputError, match="noid.csv.*participant_id"):
    schema.read_table(tmp_path / "noid.csv")
  (tmp_path / "junk.parquet").write_bytes(b"not parquet")
  with pytest.raises(InputError, match="junk.parquet.*could not be read"):
    schema.read_table(tmp_path / "junk.parquet")
