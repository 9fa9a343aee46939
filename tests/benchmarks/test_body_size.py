"""benchmarks/body_size.py --smoke: every step runs, the probe holds out the people the
encoder trained on, and the table reads the probe's own results."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import body_size  # noqa: E402  pylint: disable=wrong-import-position

from gait_jax import schema  # noqa: E402
from gait_jax.features import anthropometry  # noqa: E402


def test_body_size_probes_held_out_people_against_segment_lengths(pretrained, tmp_path):
  work = tmp_path / "body"
  proc = subprocess.run(
      [sys.executable, str(REPO / "benchmarks" / "body_size.py"), "--smoke",
       "--encoder", f"enc={pretrained}", "--participants", "20", "--seeds", "2",
       "--work", str(work)],
      cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

  segments, columns = schema.read_table(work / "segments_clips1.parquet")
  assert columns == list(anthropometry.BODY_FEATURES)
  assert len(segments) == 20 * 5  # every participant × task of the cohort

  # The tiny cohort's 8 people (the same seed, so the same first 8) trained the
  # encoder: the probe reports them and scores the other 12.
  report = pd.read_csv(work / "probe_clips1" / "probe_report.csv")
  trained = report[report["reason"].str.contains("trained on by the encoder", na=False)]
  assert sorted(trained["name"]) == [f"P{i:05d}" for i in range(1, 9)]
  results = work / "probe_clips1" / "results"
  scores = pd.read_csv(results / "targets.csv")
  assert set(scores["features"]) == {"segment_lengths", "engineered", "enc_regions",
                                     "enc_joints"}
  assert (scores.loc[scores["subset"] == "all", "n"] == 12).all()

  out = body_size.table(results, ["height", "leg_length"])
  assert list(out.index) == ["segment_lengths", "engineered", "enc_regions", "enc_joints"]
  got = scores[(scores["subset"] == "all") & (scores["features"] == "enc_joints")
               & (scores["target"] == "height")]["r"].item()
  assert out.loc["enc_joints", "height"] == round(got, 4)
  # Δr is the set's r less the segment lengths'; both one-sided tests are read.
  paired = pd.read_csv(results / "comparisons.csv")
  row = paired[(paired["a"] == "enc_joints") & (paired["b"] == "segment_lengths")
               & (paired["subset"] == "all") & (paired["target"] == "leg_length")].iloc[0]
  assert out.loc["enc_joints", "leg_length Δr (q−, q+)"].startswith(f"{row['delta']:+.3f} (")
  assert out.loc["segment_lengths", "height Δr (q−, q+)"] == ""
  assert "segment_lengths" in proc.stdout and "enc_joints" in proc.stdout


def test_body_size_refuses_encoders_trained_on_different_people(pretrained, tmp_path):
  other = tmp_path / "other"
  other.mkdir()
  config = json.loads((pretrained / "config.json").read_text())
  config["data"]["participants"] = ["P00001", "P00002"]
  (other / "config.json").write_text(json.dumps(config))
  with pytest.raises(SystemExit, match="trained on other people"):
    body_size._encoders([f"a={pretrained}", f"b={other}"])  # pylint: disable=protected-access
  with pytest.raises(SystemExit, match="expected NAME=PRETRAIN_WORKDIR"):
    body_size._encoders([str(pretrained)])  # pylint: disable=protected-access


def test_body_size_refuses_a_work_directory_made_for_other_inputs(pretrained, tmp_path):
  """A cohort of another size, or an encoder name already embedded from another run,
  is an error naming the directory, never a silent reuse."""
  work = tmp_path / "body"
  (work / "cohort").mkdir(parents=True)
  pd.DataFrame({"participant_id": ["P00001", "P00002"]}).to_parquet(
      work / "cohort" / "phenotypes.parquet")
  cmd = [sys.executable, str(REPO / "benchmarks" / "body_size.py"), "--smoke",
         "--encoder", f"enc={pretrained}", "--participants", "20", "--work", str(work)]
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
  assert proc.returncode != 0 and "holds 2 participants, not --participants 20" in proc.stderr

  embed = tmp_path / "embed_enc_joints_clips1"
  embed.mkdir()
  assert not body_size._embedded(embed, pretrained)  # pylint: disable=protected-access
  (embed / "embeddings.parquet").write_bytes(b"")
  (embed / "embed_config.json").write_text(json.dumps({"checkpoint_dir": str(pretrained)}))
  assert body_size._embedded(embed, pretrained)  # pylint: disable=protected-access
  with pytest.raises(SystemExit, match="embeds .*other_run"):
    body_size._embedded(embed, tmp_path / "other_run")  # pylint: disable=protected-access
