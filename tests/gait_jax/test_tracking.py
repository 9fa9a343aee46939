"""tracking: real offline W&B runs in temporary workdirs, read back from the run's
`.wandb` file; grouping, resuming, the per-participant refusal, disabled mode."""

from __future__ import annotations

import json
import pathlib

import ml_collections
import numpy as np
import pandas as pd
import pytest

from wandb_offline import files_mention, read_offline_run
from wandb_offline import items as _items, of_type as _of_type

from gait_jax import tracking


def _config(**wandb) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.job = "embed"
  c.layer = -1
  c.wandb = tracking.wandb_config()
  c.wandb.update(wandb)
  return c


@pytest.fixture
def offline(monkeypatch):
  monkeypatch.setenv("WANDB_MODE", "offline")
  monkeypatch.setenv("WANDB_SILENT", "true")


def test_offline_run_records_group_job_type_config_and_logs(offline, tmp_path):
  workdir = tmp_path / "demo" / "embed"
  image = tmp_path / "fig.png"
  from PIL import Image  # pylint: disable=import-outside-toplevel
  Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(image)
  counts = pd.DataFrame({"reason": ["too short", "NaN joints"], "clips": [3, 1]})
  with tracking.start(_config(tags=("smoke",)), workdir, "embed") as tracker:
    assert tracker.enabled
    tracker.log({"clips_per_s": 12.5}, step=1)
    tracker.log({"clips_per_s": 13.5}, step=2)
    tracker.image("figure", image, step=2)
    tracker.summary({"clips": 120, "seconds": 4.0})
    tracker.table("excluded", counts)
  run_id = (workdir / tracking.RUN_ID_FILE).read_text().strip()
  records = read_offline_run(workdir)
  run = _of_type(records, "run")[0]
  assert run.run_id == run_id and run.run_group == "demo" and run.job_type == "embed"
  assert run.display_name == "embed" and run.project == "gait_jax"
  assert list(run.tags) == ["smoke"]
  config = _items(run.config.update)
  assert config["job"] == '"embed"' and config["layer"] == "-1"
  history = _of_type(records, "history")
  logged = [_items(h.item) for h in history]
  assert [float(h["clips_per_s"]) for h in logged if "clips_per_s" in h] == [12.5, 13.5]
  # Media are logged as nested keys ("figure.path", ...), an image at its step.
  steps = {k.split(".")[0]: int(h["_step"]) for h in logged for k in h}
  assert steps["figure"] == 2 and "excluded" in steps
  assert json.loads(next(h for h in logged if "excluded._type" in h)["excluded._type"]) \
      == "table-file"
  summary = {k: v for s in _of_type(records, "summary") for k, v in _items(s.update).items()}
  assert summary["clips"] == "120"
  tables = list((workdir / "wandb").glob("offline-run-*/files/media/table/excluded_*.json"))
  assert len(tables) == 1
  saved = json.loads(tables[0].read_text())
  assert saved["columns"] == ["reason", "clips"] and saved["data"][0] == ["too short", 3]


def test_rerun_in_the_same_workdir_resumes_the_same_run(offline, tmp_path):
  workdir = tmp_path / "sweep_a" / "probe"
  with tracking.start(_config(), workdir, "probe") as tracker:
    first = tracker.run_id
  with tracking.start(_config(), workdir, "probe") as tracker:
    assert tracker.run_id == first
  assert (workdir / tracking.RUN_ID_FILE).read_text().strip() == first


def test_group_and_name_default_from_the_workdir_unless_configured(offline, tmp_path,
                                                                   monkeypatch):
  monkeypatch.chdir(tmp_path)
  pathlib.Path("runs/sweep").mkdir(parents=True)
  # A relative workdir with a trailing slash still groups by its parent's name.
  with tracking.start(_config(), "runs/sweep/d2_h4/", "pretrain"):
    pass
  run = _of_type(read_offline_run(tmp_path / "runs/sweep/d2_h4"), "run")[0]
  assert (run.run_group, run.display_name, run.job_type) == ("sweep", "d2_h4", "pretrain")
  with tracking.start(_config(group="paper", name="emb-1"), tmp_path / "x" / "y", "report"):
    pass
  run = _of_type(read_offline_run(tmp_path / "x" / "y"), "run")[0]
  assert (run.run_group, run.display_name, run.job_type) == ("paper", "emb-1", "report")


def test_config_without_a_wandb_block_gets_the_defaults(offline, tmp_path):
  config = ml_collections.ConfigDict({"job": "probe"})
  with tracking.start(config, tmp_path / "g" / "probe", "probe") as tracker:
    assert tracker.enabled
  run = _of_type(read_offline_run(tmp_path / "g" / "probe"), "run")[0]
  assert run.project == "gait_jax" and run.run_group == "g"


def test_participant_id_lists_in_the_config_are_logged_as_counts(offline, tmp_path):
  config = _config()
  config.data = ml_collections.ConfigDict({"participants": ("P00017", "P00042"),
                                           "tasks": ("walk",)})
  workdir = tmp_path / "g" / "embed"
  with tracking.start(config, workdir, "embed"):
    pass
  logged = _items(_of_type(read_offline_run(workdir), "run")[0].config.update)
  assert json.loads(logged["data"]) == {"participants": "<2 ids>",
                                        "tasks": ["walk"]}
  assert files_mention(workdir, ["P00017", "P00042"]) == []
  assert config.data.participants == ("P00017", "P00042")  # the config is untouched


def test_per_participant_tables_and_files_are_refused(offline, tmp_path):
  per_person = pd.DataFrame({"participant_id": ["P1", "P2"], "r2": [0.1, 0.2]})
  with tracking.start(_config(), tmp_path / "g" / "report", "report") as tracker:
    with pytest.raises(ValueError, match="participant_id"):
      tracker.table("per_person", per_person)
    with pytest.raises(ValueError, match="participant_id"):
      tracker.table("indexed", per_person.set_index("participant_id"))
    tables = tmp_path / "tables"
    tables.mkdir()
    per_person.drop(columns="participant_id").to_csv(tables / "ok.csv", index=False)
    tracker.artifact("tables", "tables", tables)  # aggregates only: fine
    per_person.to_parquet(tables / "rows.parquet")
    with pytest.raises(ValueError, match="participant_id"):
      tracker.artifact("tables", "tables", tables)
    with pytest.raises(ValueError, match="participant_id"):
      tracker.artifact("rows", "tables", tables / "rows.parquet")
  # Refused without W&B too, so tests with W&B disabled catch it.
  with pytest.raises(ValueError, match="participant_id"):
    tracking.Tracker().table("per_person", per_person)
  artifacts = [r for r in read_offline_run(tmp_path / "g" / "report")
               if r.WhichOneof("record_type") == "artifact"]
  assert [a.artifact.name for a in artifacts] == ["tables"]


def test_disabled_mode_does_nothing(monkeypatch, tmp_path):
  monkeypatch.setenv("WANDB_MODE", "disabled")
  workdir = tmp_path / "g" / "embed"
  image = tmp_path / "missing.png"  # never read: nothing is logged
  with tracking.start(_config(mode="offline"), workdir, "embed") as tracker:
    assert not tracker.enabled and tracker.run_id is None
    tracker.log({"a": 1.0}, step=1)
    tracker.summary({"a": 1})
    tracker.table("t", pd.DataFrame({"reason": ["x"], "clips": [1]}))
    tracker.image("i", image)
  assert not (workdir / "wandb").exists() and not (workdir / tracking.RUN_ID_FILE).exists()


def test_config_mode_applies_without_the_environment_variable(monkeypatch, tmp_path):
  monkeypatch.delenv("WANDB_MODE")
  with tracking.start(_config(mode="disabled"), tmp_path / "g" / "e", "embed") as tracker:
    assert not tracker.enabled
  with pytest.raises(ValueError, match="mode"):
    tracking.start(_config(mode="sometimes"), tmp_path / "g" / "e", "embed")
  with pytest.raises(ValueError, match="job_type"):
    tracking.start(_config(mode="disabled"), tmp_path / "g" / "e", "train")


def test_online_without_a_key_falls_back_to_offline(monkeypatch, tmp_path, capsys):
  monkeypatch.delenv("WANDB_MODE")
  monkeypatch.delenv("WANDB_API_KEY", raising=False)
  monkeypatch.setenv("WANDB_SILENT", "true")
  monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc
  monkeypatch.setenv("NETRC", str(tmp_path / "home" / "netrc"))
  monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "home" / "wandb"))
  with tracking.start(_config(mode="online"), tmp_path / "g" / "f", "features") as tracker:
    assert tracker.enabled
  assert "no API key, logging offline" in capsys.readouterr().err
  assert len(list((tmp_path / "g" / "f" / "wandb").glob("offline-run-*"))) == 1


def test_reason_kind_drops_the_specifics():
  assert tracking.reason_kind("too few gait events: 2 heel strikes, 1 toe-off; NaN: a") \
      == "too few gait events"
  assert tracking.reason_kind("non_finite_embedding (none, zero:legs)") == "non_finite_embedding"
  assert tracking.reason_kind("incomplete: 3 of 5 clips read") == "incomplete"
  assert tracking.reason_kind("1 rise(s) in the clip: cycle time needs 2") \
      == "N rise(s) in the clip"
  assert tracking.slug("N rise(s) in the clip") == "n_rise_s_in_the_clip"
