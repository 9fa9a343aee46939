"""Report tables: built from a fabricated run directory, values recomputed from its
files; missing stages give a reason instead of a table."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

import report_fixtures as fx
from gait_jax.probing import stats
from gait_jax.report import rundir, tables
from gait_jax.report.rundir import RunDir


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> RunDir:
  return RunDir.open(fx.make_run(tmp_path_factory.mktemp("run") / "demo"))


@pytest.fixture(scope="module")
def built(run) -> dict[str, tables.Table]:
  return {name: builder(run) for name, builder in tables.BUILDERS.items()}


def _targets(run: RunDir) -> pd.DataFrame:
  return pd.read_parquet(run.root / "probe" / "results" / "targets.parquet")


def test_every_table_but_the_reconstruction_is_built(built):
  for name, table in built.items():
    if name == "reconstruction":
      assert table.frame is None and "checkpoints" in table.reason
    else:
      assert table.frame is not None and len(table.frame), (name, table.reason)
      assert table.sources and all(p.exists() for p in table.sources), name
      assert "participant_id" not in table.frame.columns, name


def test_truth_is_found_in_the_cohort_unless_given(run, tmp_path):
  assert run.truth == run.root / "cohort" / "truth.json"
  other = tmp_path / "t.json"
  assert RunDir.open(run.root, other).truth == other


def test_pretrain_loss_train_and_val_series(built):
  frame = built["pretrain_loss"].frame
  counts = frame.groupby(["series", "split"]).size().to_dict()
  # 10 logged steps, 2 with validation; the cut last line is skipped.
  assert counts == {("loss", "train"): 10, ("val/loss", "val"): 2,
                    ("val/loss/treadmill", "val"): 2}
  np.testing.assert_allclose(frame[frame.series == "loss"]["value"], 1 / np.arange(10, 110, 10))


def test_task_scores_headline_targets_per_task(built, run):
  frame = built["task_scores"].frame
  assert list(pd.unique(frame["target"])) == ["age", "bmi", "visceral_fat", "sex"]
  assert list(pd.unique(frame["task"]))[0] == "fused"
  assert set(frame["task"]) == {"fused", *fx.TASKS}
  assert set(frame[frame.target == "sex"]["metric"]) == {"auc"}
  assert set(frame["features"]) == {"embedding"}  # the input, not "embedding/treadmill"
  src = pd.read_parquet(run.root / "probe_tasks" / "results" / "targets.parquet")
  src = src[src.subset == "all"].set_index(["task", "target"])
  for r in frame.itertuples():
    want = src.loc[(r.task, r.target)]
    assert r.score == want[r.metric]
    assert r.ci_low == want[f"{r.metric}_ci_low"] and r.ci_high == want[f"{r.metric}_ci_high"]


def test_sex_roc_only_sex_subset_all(built, run):
  frame = built["sex_roc"].frame
  src = pd.read_csv(run.root / "probe_tasks" / "results" / "roc.csv")
  want = src[(src.target == "sex") & (src.subset == "all")]
  assert len(frame) == len(want) and set(frame["task"]) == set(want["task"])
  assert set(frame["features"]) == {"embedding"}
  assert list(frame.columns) == ["features", "task", "fpr", "tpr", "auc"]


def test_significant_by_system_counts_scored_targets_of_the_embedding(built, run):
  frame = built["significant_by_system"].frame
  assert set(frame["subset"]) == {"all", "male", "female"} and set(frame["features"]) == {"embedding"}
  t = _targets(run)
  t = t[(t.features == "embedding") & (t.status == "ok")]
  for r in frame.itertuples():
    part = t[(t.subset == r.subset) & (t.system == r.system)]
    assert r.tested == len(part) and r.significant == part["significant"].sum()
    assert r.share == pytest.approx(r.significant / r.tested)
  # sleep_hours is the only sleep target and was not scored in men.
  assert not ((frame.subset == "male") & (frame.system == "sleep")).any()
  mean_share = frame.groupby("system", sort=False)["share"].mean()
  assert list(mean_share) == sorted(mean_share, reverse=True)


def test_gain_by_system_mean_gain(built, run):
  frame = built["gain_by_system"].frame
  t = _targets(run)
  t = t[(t.features == "embedding") & (t.status == "ok") & (t.subset == "female")]
  row = frame[(frame.subset == "female") & (frame.system == "lipids")].iloc[0]
  lip = t[t.system == "lipids"]
  assert row.mean_gain == pytest.approx(lip["gain"].mean())
  assert row.gain_significant == lip["gain_significant"].sum()


def test_clinical_dumbbell_top_binary_targets_by_both(built, run):
  frame = built["clinical_dumbbell"].frame
  assert set(frame["system"]) <= set(tables.CLINICAL_SYSTEMS)
  assert frame["target"].nunique() == tables.CLINICAL_TOP  # 24 candidates, top 20
  assert set(frame["model"]) == {"gait", "covariates", "gait + covariates"}
  both = frame[frame.model == "gait + covariates"]["auc"].to_numpy()
  assert (np.diff(both) <= 0).all()
  t = _targets(run)
  t = t[(t.features == "embedding") & (t.subset == "all")].set_index("target")
  first = frame[frame.target == frame.target.iloc[0]].set_index("model")["auc"]
  want = t.loc[frame.target.iloc[0]]
  assert (first["gait"], first["covariates"], first["gait + covariates"]) == (
      want.auc, want.auc_base, want.auc_full)


def test_embedding_vs_engineered_from_comparisons(built):
  frame = built["embedding_vs_engineered"].frame
  assert set(frame["subset"]) == {"all"} and frame["paired_test"].all()
  assert len(frame) == len(fx.TARGETS)
  assert (frame["a"] == "embedding").all() and (frame["b"] == "engineered").all()


def test_embedding_pca_one_row_per_person_no_ids(built, run):
  table = built["embedding_pca"]
  frame = table.frame
  assert table.per_participant and len(frame) == fx.N_PEOPLE
  ph = pd.read_parquet(run.root / "cohort" / "phenotypes.parquet").sort_values(
      "participant_id")
  np.testing.assert_allclose(frame["age"], ph["age"])
  np.testing.assert_array_equal(frame["sex"], ph["sex"])
  # Principal components: uncorrelated, the first explaining at least as much.
  assert abs(np.corrcoef(frame["pc1"], frame["pc2"])[0, 1]) < 1e-6
  assert frame["pc1"].var() >= frame["pc2"].var()
  assert frame["pc1_share"].iloc[0] >= frame["pc2_share"].iloc[0] > 0


def test_region_importance_is_passed_through_for_men_women_and_everyone(built, run):
  src = pd.read_csv(run.root / "ablation" / "region_importance.csv")
  assert set(src["subset"]) == {"all", "male", "female"}
  pd.testing.assert_frame_equal(built["region_importance"].frame, src)


def test_full_vs_ablated_is_everyone_removed_at_inference(built, run):
  src = pd.read_parquet(run.root / "ablation" / "target_importance.parquet")
  want = src[(src["subset"] == "all") & (src["ablation"] == "zero")]
  frame = built["full_vs_ablated"].frame
  assert len(frame) == len(want) and set(frame["ablation"]) == {"zero"}
  np.testing.assert_allclose(frame["score_ablated"], want["score_ablated"])
  assert set(frame.loc[frame["metric"] == "auc", "target"]) == set(
      want.loc[want["kind"] == "binary", "target"])


def test_data_quality_counts_per_stage_and_reason(built):
  frame = built["data_quality"].frame
  got = {(r.stage, r.unit, r.status, r.reason): r.count for r in frame.itertuples()}
  assert got[("prepare (QC)", "recordings", "kept", "passed QC")] == 9
  assert got[("prepare (QC)", "recordings", "excluded", "too_short")] == 2
  assert got[("prepare (QC)", "recordings", "excluded", "bone_length")] == 1
  # Particulars are dropped, so alike reasons count together.
  assert got[("embed", "clips", "excluded", "non_finite_embedding")] == 2
  assert got[("embed", "participant × task", "excluded", "incomplete")] == 1
  assert got[("embed", "participant × task", "kept", "in the table")] == fx.N_PEOPLE * 2
  assert got[("probe", "target", "excluded", "too few samples")] == 2  # two targets
  assert got[("probe", "participant", "excluded", "no embedding row")] == 1
  assert got[("probe", "targets", "kept", "scored (subset all)")] == len(fx.TARGETS)


@pytest.mark.parametrize("reason, kind", [
    ("too_short", "too_short"),
    ("non_finite_embedding (none, zero:legs)", "non_finite_embedding"),
    ("no complete stride of one foot: stride time from two steps; NaN: cadence",
     "no complete stride of one foot"),
    ("NaN: stride_time_cv, stance_asymmetry", "NaN values"),
    ("2 rise in the clip: cycle time needs 2; NaN: sts_cycle_s", "# rise in the clip"),
    ("not scored in subset female: too few positives/negatives (3/57 < 10)",
     "too few positives/negatives"),
    ("not scored in subset all (embedding): too few positives/negatives (1/51 < 10)",
     "too few positives/negatives"),
    (float("nan"), "unspecified"),
])
def test_reasons_are_counted_by_kind(reason, kind):
  assert tables._reason_key(reason) == kind  # pylint: disable=protected-access


def test_power_fdp_matches_stats(built, run):
  frame = built["power_fdp"].frame.set_index(["features", "test"])
  truth = json.loads(run.truth.read_text())
  t = _targets(run)
  for name in ("embedding", "engineered"):
    part = t[(t.features == name) & (t.subset == "all") & (t.status == "ok")]
    plain = stats.power_fdp(dict(zip(part.target, part.significant)), truth)
    gain = stats.power_fdp(dict(zip(part.target, part.gain_significant)), truth,
                           covariate_adjusted=True)
    assert frame.loc[(name, "probe"), "power"] == pytest.approx(plain["power"])
    assert frame.loc[(name, "probe"), "fdp"] == pytest.approx(plain["fdp"])
    assert frame.loc[(name, "gain"), "discoveries"] == gain["discoveries"]


def test_an_empty_run_gives_reasons_only(tmp_path):
  run = RunDir.open(tmp_path)
  for name, builder in tables.BUILDERS.items():
    table = builder(run)
    assert table.frame is None and table.reason, name


def test_a_partial_run_gives_what_it_has(tmp_path):
  rng = np.random.default_rng(0)
  fx.write_cohort(tmp_path, rng)
  fx.write_shards(tmp_path)
  got = {name: builder(RunDir.open(tmp_path)) for name, builder in tables.BUILDERS.items()}
  assert [n for n, t in got.items() if t.frame is not None] == ["data_quality"]
  assert "targets.parquet" in got["significant_by_system"].reason
  assert "embeddings.parquet" in got["embedding_pca"].reason


@pytest.mark.parametrize("feature_set, task, ablation, name", [
    ("embedding", "fused", "none", "embedding"),
    ("embedding/treadmill", "treadmill", "none", "embedding"),
    ("embedding/zero:legs", "fused", "zero:legs", "embedding"),
    ("mamp/walk/only:arms", "walk", "only:arms", "mamp"),
])
def test_input_of_a_feature_set_id(feature_set, task, ablation, name):
  assert rundir.input_of(feature_set, task, ablation) == name


def test_older_probe_dirs_are_feature_sets_by_name(tmp_path):
  """probe_embed/ and probe_features/ without feature-set columns (the demo's layout
  before the joint probe): one set each, named from the directory; no comparisons.csv,
  so the scatter pairs the scores without a test."""
  rng = np.random.default_rng(0)
  fx.write_cohort(tmp_path, rng)
  for d, name in (("probe_embed", "embedding"), ("probe_features", "engineered")):
    (tmp_path / d / "results").mkdir(parents=True)
    t = fx.targets_frame(rng, name).drop(columns=list(rundir.SET_COLUMNS))
    t.to_parquet(tmp_path / d / "results" / "targets.parquet")
  run = RunDir.open(tmp_path)
  frame, files = rundir.read_probe(run.probe_dirs(), "targets.parquet")
  assert len(files) == 2 and set(frame["features"]) == {"embedding", "engineered"}
  assert set(frame["task"]) == {"fused"} and set(frame["ablation"]) == {"none"}
  pair = tables.embedding_vs_engineered(run)
  assert pair.frame is not None and not pair.frame["paired_test"].any()
  assert not pair.frame["significant"].any() and "without a paired test" in pair.note
  emb = frame[(frame.features == "embedding") & (frame.subset == "all")].set_index("target")
  row = pair.frame.iloc[0]
  assert row.score_a == emb.loc[row.target, "score"]
  power = tables.power_fdp(run).frame
  assert set(power["features"]) == {"embedding", "engineered"}


def test_task_scores_fall_back_to_a_multi_task_main_probe(tmp_path):
  rng = np.random.default_rng(0)
  (tmp_path / "probe" / "results").mkdir(parents=True)
  fx.targets_frame(rng, "embedding", tasks=("fused", "treadmill")).to_parquet(
      tmp_path / "probe" / "results" / "targets.parquet")
  table = tables.task_scores(RunDir.open(tmp_path))
  assert set(table.frame["task"]) == {"fused", "treadmill"} and "main probe" in table.note
  # The per-system counts still use the fused rows only.
  sig = tables.significant_by_system(RunDir.open(tmp_path)).frame
  assert sig["tested"].sum() == 3 * len(fx.TARGETS) - 1  # sleep_hours excluded in men


def test_separate_probes_with_one_input_name_are_told_apart(tmp_path):
  """Two probe runs that each called their input "embedding" (the default): the sets
  are named after their directories."""
  rng = np.random.default_rng(0)
  for d in ("probe_embed", "probe_features"):
    (tmp_path / d / "results").mkdir(parents=True)
    t = fx.targets_frame(rng, "embedding", tasks=("fused", "walk"))
    t.to_parquet(tmp_path / d / "results" / "targets.parquet")
    fx.roc_frame(t).to_csv(tmp_path / d / "results" / "roc.csv", index=False)
  run = RunDir.open(tmp_path)
  frame, _ = rundir.read_probe(run.probe_dirs(), "targets.parquet")
  assert set(zip(frame["features"], frame["input"])) == {
      ("embedding", "embedding"), ("embedding/walk", "embedding"),
      ("engineered", "engineered"), ("engineered/walk", "engineered")}
  roc = tables.sex_roc(run).frame
  assert set(roc["features"]) == {"embedding", "engineered"}
  assert set(roc["task"]) == {"fused", "walk"}
  pair = tables.embedding_vs_engineered(run).frame
  assert (pair["a"] == "embedding").all() and (pair["b"] == "engineered").all()


def test_without_a_task_probe_the_fused_scores_are_shown(tmp_path):
  rng = np.random.default_rng(0)
  (tmp_path / "probe" / "results").mkdir(parents=True)
  fx.targets_frame(rng, "embedding").to_parquet(
      tmp_path / "probe" / "results" / "targets.parquet")
  table = tables.task_scores(RunDir.open(tmp_path))
  assert set(table.frame["task"]) == {"fused"} and "all tasks together only" in table.note
  assert "roc.csv" in tables.sex_roc(RunDir.open(tmp_path)).reason


def test_a_feature_set_other_than_embedding_is_shown_with_a_note(tmp_path):
  rng = np.random.default_rng(0)
  (tmp_path / "probe" / "results").mkdir(parents=True)
  fx.targets_frame(rng, "mamp").to_parquet(tmp_path / "probe" / "results" / "targets.parquet")
  table = tables.significant_by_system(RunDir.open(tmp_path))
  assert set(table.frame["features"]) == {"mamp"} and "'mamp'" in table.note


def test_gain_tables_need_covariates(tmp_path):
  rng = np.random.default_rng(0)
  (tmp_path / "probe" / "results").mkdir(parents=True)
  fx.targets_frame(rng, "embedding", covariates=False).to_parquet(
      tmp_path / "probe" / "results" / "targets.parquet")
  run = RunDir.open(tmp_path)
  assert "covariates" in tables.gain_by_system(run).reason
  assert "auc_full" in tables.clinical_dumbbell(run).reason
  assert tables.significant_by_system(run).frame is not None


def test_pca_without_phenotypes_is_uncoloured(run, tmp_path):
  shutil.copytree(run.root / "embed", tmp_path / "embed")
  table = tables.embedding_pca(RunDir.open(tmp_path))
  assert table.frame["age"].isna().all() and "not coloured" in table.note


def test_reconstruction_uses_the_checkpoint_of_the_embeddings(tmp_path, monkeypatch):
  from gait_jax.report import reconstruction  # pylint: disable=import-outside-toplevel
  for name in ("pretrain_a", "pretrain_b"):
    (tmp_path / name / "checkpoints").mkdir(parents=True)
    (tmp_path / name / "config.json").write_text("{}")
  (tmp_path / "shards").mkdir()
  (tmp_path / "shards" / "manifest.parquet").write_bytes(b"")
  (tmp_path / "embed").mkdir()
  (tmp_path / "embed" / "embed_config.json").write_text(
      json.dumps({"checkpoint_dir": "elsewhere/pretrain_b"}))
  used = []

  def fake(pretrain_dir, shards_dir):
    used.append(pretrain_dir.name)
    raise RuntimeError("no real checkpoint here")

  monkeypatch.setattr(reconstruction, "reconstruction_table", fake)
  table = tables.reconstruction(RunDir.open(tmp_path))
  assert used == ["pretrain_b"]
  assert table.frame is None and "RuntimeError: no real checkpoint here" in table.reason
