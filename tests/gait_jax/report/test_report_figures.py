"""Report figures: each draws the panels and marks its table asks for, and redraws
identically from its CSV."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from gait_jax import skeleton
from gait_jax.report import figures

JOINTS = skeleton.JOINT_SETS["default26"]


def _pretrain_loss() -> pd.DataFrame:
  rows = []
  for run in ("pretrain_small", "pretrain_mamp"):
    for step in (10, 20, 30):
      rows.append({"run": run, "series": "loss", "split": "train", "step": step,
                   "value": 1.0 / step})
    for series in ("val/loss", "val/loss/treadmill"):
      rows += [{"run": run, "series": series, "split": "val", "step": s, "value": 2.0 / s}
               for s in (20, 30)]
  return pd.DataFrame(rows)


def _reconstruction() -> pd.DataFrame:
  rng = np.random.default_rng(0)
  t, j = 6, len(JOINTS)
  truth = rng.normal(size=(t, j, 3)) * 0.3
  hidden = rng.random((t, j)) < 0.4
  frames = []
  for source, xyz in (("input", np.where(hidden[..., None], np.nan, truth)),
                      ("prediction", truth + 0.05), ("truth", truth)):
    frames.append(pd.DataFrame({
        "frame": np.repeat(np.arange(t), j), "joint": np.tile(JOINTS, t),
        "x": xyz[..., 0].ravel(), "y": xyz[..., 1].ravel(), "z": xyz[..., 2].ravel(),
        "source": source, "hidden": hidden.ravel()}))
  return pd.concat(frames, ignore_index=True)


def _task_scores() -> pd.DataFrame:
  rows = []
  for target, metric in (("age", "r"), ("bmi", "r"), ("visceral_fat", "r"), ("sex", "auc")):
    for features in ("embedding", "engineered"):
      for k, task in enumerate(("fused", "treadmill", "walk")):
        s = 0.3 + 0.1 * k if metric == "r" else 0.7 + 0.05 * k
        rows.append({"features": features, "task": task, "target": target, "metric": metric,
                     "score": s, "ci_low": s - 0.1, "ci_high": s + 0.1, "n": 50})
  return pd.DataFrame(rows)


def _sex_roc() -> pd.DataFrame:
  rows = []
  fpr = np.linspace(0, 1, 5)
  for features in ("embedding", "engineered"):
    for task in ("fused", "treadmill", "walk"):
      rows += [{"features": features, "task": task, "fpr": f, "tpr": np.sqrt(f), "auc": 0.7}
               for f in fpr]
  return pd.DataFrame(rows)


def _embedding_pca() -> pd.DataFrame:
  rng = np.random.default_rng(1)
  n = 20
  age = rng.uniform(30, 70, n)
  age[0] = np.nan  # unknown: drawn grey
  return pd.DataFrame({"pc1": rng.normal(size=n), "pc2": rng.normal(size=n),
                       "pc1_share": 0.3, "pc2_share": 0.2, "age": age,
                       "sex": np.arange(n) % 2, "bmi": rng.uniform(18, 35, n)})


def _by_system(value: str) -> pd.DataFrame:
  rows = []
  for k, system in enumerate(("lipids", "sleep", "renal_function")):
    for subset in ("male", "female"):
      tested = 10
      hit = k + (subset == "male")
      row = {"features": "embedding", "subset": subset, "system": system, "tested": tested,
             value: hit, "share": hit / tested}
      if value == "gain_significant":
        row["mean_gain"] = 0.01 * (k - 1)
      rows.append(row)
  return pd.DataFrame(rows)


def _clinical_dumbbell() -> pd.DataFrame:
  rows = []
  for i in range(5):
    for model, auc in (("gait", 0.6), ("covariates", 0.65), ("gait + covariates", 0.7)):
      rows.append({"target": f"dx_{i}", "system": "medical_conditions" if i < 3 else
                   "medications", "model": model, "auc": auc + 0.01 * i})
  return pd.DataFrame(rows)


def _embedding_vs_engineered() -> pd.DataFrame:
  rows = []
  for i in range(12):
    binary = i % 2 == 0
    rows.append({"a": "embedding", "b": "engineered", "subset": "all", "target": f"t{i}",
                 "system": "lipids", "kind": "binary" if binary else "continuous",
                 "metric": "auc" if binary else "r", "score_a": 0.5 + 0.02 * i,
                 "score_b": 0.55, "delta": 0.02 * i - 0.05, "q": 0.01,
                 "significant": i in (0, 1, 10, 11), "paired_test": True})
  return pd.DataFrame(rows)


def _full_vs_ablated() -> pd.DataFrame:
  rows = []
  for region in ("legs", "arms"):
    for i in range(8):
      binary = i % 2 == 0
      full = 0.6 + 0.01 * i if binary else 0.3 + 0.01 * i
      rows.append({"region": region, "ablation": "zero", "target": f"t{i}",
                   "system": "lipids", "metric": "auc" if binary else "r",
                   "score_full": full, "score_ablated": full - 0.02 * (i - 3),
                   "delta": 0.02 * (i - 3), "q": 0.01, "significant": i in (1, 6, 7)})
  return pd.DataFrame(rows)


def _region_importance() -> pd.DataFrame:
  rng = np.random.default_rng(2)
  rows = []
  for subset in ("male", "female"):
    for ablation in ("zero", "trained"):
      for system in ("lipids", "sleep", "renal_function"):
        for region in ("legs", "arms", "torso", "head"):
          rows.append({"subset": subset, "system": system, "region": region,
                       "ablation": ablation, "importance": rng.random(), "raw": 0.1,
                       "n_targets": 4, "n_top": 4, "n_significant": 1})
  return pd.DataFrame(rows)


def _data_quality() -> pd.DataFrame:
  return pd.DataFrame([
      {"stage": "prepare (QC)", "unit": "recordings", "status": "kept",
       "reason": "passed QC", "count": 290},
      {"stage": "prepare (QC)", "unit": "recordings", "status": "excluded",
       "reason": "too_short", "count": 7},
      {"stage": "embed", "unit": "clips", "status": "excluded",
       "reason": "non_finite_embedding", "count": 2},
      {"stage": "probe", "unit": "targets", "status": "kept", "reason": "scored",
       "count": 3000},
      {"stage": "probe", "unit": "target", "status": "excluded",
       "reason": "too few samples", "count": 12},
      {"stage": "probe", "unit": "participant", "status": "excluded",
       "reason": "no embedding row", "count": 1}])


def _power_fdp() -> pd.DataFrame:
  return pd.DataFrame([
      {"features": "embedding", "test": "probe", "power": 0.8, "fdp": 0.05,
       "discoveries": 40, "true": 48},
      {"features": "embedding", "test": "gain", "power": 0.5, "fdp": 0.1,
       "discoveries": 20, "true": 30},
      {"features": "engineered", "test": "probe", "power": 0.6, "fdp": 0.08,
       "discoveries": 30, "true": 48},
      {"features": "engineered", "test": "gain", "power": 0.3, "fdp": 0.2,
       "discoveries": 10, "true": 30}])


TABLES = {
    "pretrain_loss": _pretrain_loss,
    "reconstruction": _reconstruction,
    "task_scores": _task_scores,
    "sex_roc": _sex_roc,
    "embedding_pca": _embedding_pca,
    "significant_by_system": lambda: _by_system("significant"),
    "gain_by_system": lambda: _by_system("gain_significant"),
    "clinical_dumbbell": _clinical_dumbbell,
    "embedding_vs_engineered": _embedding_vs_engineered,
    "full_vs_ablated": _full_vs_ablated,
    "region_importance": _region_importance,
    "data_quality": _data_quality,
    "power_fdp": _power_fdp,
}


def _pixels(fig: Figure) -> np.ndarray:
  canvas = FigureCanvasAgg(fig)
  canvas.draw()
  return np.asarray(canvas.buffer_rgba()).copy()


def _points(ax) -> int:
  return sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))


def test_every_figure_has_a_table_here_a_title_and_a_caption():
  assert set(TABLES) == set(figures.FIGURES) == set(figures.TITLES)
  for name in figures.FIGURES:
    assert len(figures.caption(name)) > 20, name
    assert "Columns" not in figures.caption(name)  # the first paragraph only


@pytest.mark.parametrize("name", sorted(figures.FIGURES))
def test_redrawn_from_its_csv_pixel_for_pixel(name, tmp_path):
  frame = TABLES[name]()
  frame.to_csv(tmp_path / f"{name}.csv", index=False)
  original = figures.FIGURES[name](frame)
  redrawn = figures.FIGURES[name](pd.read_csv(tmp_path / f"{name}.csv"))
  assert isinstance(redrawn, Figure)
  a, b = _pixels(original), _pixels(redrawn)
  assert a.shape == b.shape
  np.testing.assert_array_equal(a, b)
  assert a[..., :3].std() > 5  # something is drawn


def test_pretrain_loss_one_panel_per_run_val_dashed():
  fig = figures.pretrain_loss(_pretrain_loss())
  assert [ax.get_title() for ax in fig.axes] == ["pretrain_small", "pretrain_mamp"]
  lines = fig.axes[0].get_lines()
  assert [l.get_label() for l in lines] == ["loss", "val/loss", "val/loss/treadmill"]
  assert [l.get_linestyle() for l in lines] == ["-", "--", "--"]
  np.testing.assert_allclose(lines[0].get_ydata(), [0.1, 0.05, 1 / 30])
  assert fig.axes[0].get_yscale() == "log"


def test_reconstruction_rows_are_sources_and_hidden_joints_red():
  frame = _reconstruction()
  fig = figures.reconstruction(frame, num_frames=3)
  assert len(fig.axes) == 9
  assert [fig.axes[3 * r].get_ylabel() for r in range(3)] == ["input", "prediction", "truth"]
  first = int(frame["frame"].min())
  hidden = frame[(frame["source"] == "truth") & (frame["frame"] == first)]["hidden"].sum()
  j = len(JOINTS)
  # Input shows only the visible joints; truth shows all, the hidden ones red.
  assert _points(fig.axes[0]) == j - hidden
  assert _points(fig.axes[6]) == j
  colors = fig.axes[6].collections[0].get_facecolors()
  red = np.isclose(colors[:, 0], 0.839, atol=0.01) & np.isclose(colors[:, 1], 0.153, atol=0.01)
  assert red.sum() == hidden


def test_task_scores_one_panel_per_target_with_intervals():
  fig = figures.task_scores(_task_scores())
  assert [ax.get_title() for ax in fig.axes] == ["age", "bmi", "visceral_fat", "sex"]
  assert fig.axes[3].get_xlabel() == "AUC" and fig.axes[0].get_xlabel() == "r"
  assert len(fig.axes[0].containers) == 2  # one errorbar per feature set
  bars = fig.axes[0].containers[0]
  segments = bars.lines[2][0].get_segments()
  assert len(segments) == 3
  np.testing.assert_allclose([s[1, 0] - s[0, 0] for s in segments], 0.2)
  assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["fused", "treadmill",
                                                                    "walk"]


def test_sex_roc_curve_per_task_and_chance_line():
  fig = figures.sex_roc(_sex_roc())
  assert len(fig.axes) == 2
  labels = [l.get_label() for l in fig.axes[0].get_lines()]
  assert labels[:3] == ["fused (0.70)", "treadmill (0.70)", "walk (0.70)"]
  assert len(labels) == 4  # + the chance diagonal


def test_embedding_pca_three_panels_every_person_drawn():
  frame = _embedding_pca()
  fig = figures.embedding_pca(frame)
  panels = [ax for ax in fig.axes if ax.get_title()]
  assert [ax.get_title() for ax in panels] == ["coloured by age", "coloured by sex",
                                               "coloured by bmi"]
  assert len(fig.axes) == 5  # + colour bars for age and BMI
  for ax in panels:
    assert _points(ax) == len(frame)
  assert panels[0].get_xlabel() == "PC1 (30%)"


def test_significant_by_system_bars_are_shares_men_and_women():
  frame = _by_system("significant")
  fig = figures.significant_by_system(frame)
  (ax,) = fig.axes
  assert [t.get_text() for t in ax.get_legend().get_texts()] == ["male", "female"]
  widths = [p.get_width() for p in ax.patches]
  np.testing.assert_allclose(sorted(widths), sorted(frame["share"]))
  assert ax.yaxis_inverted()


def test_gain_by_system_share_and_mean_gain_panels():
  frame = _by_system("gain_significant")
  fig = figures.gain_by_system(frame)
  left, right = fig.axes
  np.testing.assert_allclose(sorted(p.get_width() for p in right.patches),
                             sorted(frame["mean_gain"]))
  # Shared y: the systems read top-down in the table's order on both panels.
  assert left.yaxis_inverted() and right.yaxis_inverted()


def test_clinical_dumbbell_three_models_per_target():
  frame = _clinical_dumbbell()
  fig = figures.clinical_dumbbell(frame)
  (ax,) = fig.axes
  scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
  assert {c.get_label() for c in scatters} == set(figures.MODEL_COLORS)
  # The smallest on top, so that equal AUCs do not hide one another.
  assert scatters[-1].get_label() == "gait"
  assert scatters[-1].get_sizes()[0] < scatters[0].get_sizes()[0]
  assert all(len(c.get_offsets()) == 5 for c in scatters)
  labels = [t.get_text() for t in ax.get_yticklabels()]
  assert labels[0] == "dx_0  [medical conditions]" and labels[4] == "dx_4  [medications]"


def test_embedding_vs_engineered_panel_per_metric_significant_coloured():
  fig = figures.embedding_vs_engineered(_embedding_vs_engineered())
  assert len(fig.axes) == 2
  r_ax = fig.axes[0]
  counts = {c.get_label(): len(c.get_offsets()) for c in r_ax.collections}
  # Continuous: t1 (worse: engineered better) and t11 (better) are significant.
  assert counts == {"not significant": 4, "embedding better": 1, "engineered better": 1}
  assert r_ax.get_xlabel() == "engineered (r)" and r_ax.get_ylabel() == "embedding (r)"


def test_full_vs_ablated_panel_per_metric_and_region():
  fig = figures.full_vs_ablated(_full_vs_ablated())
  assert len(fig.axes) == 4  # (r, auc) × (legs, arms)
  r_legs = fig.axes[0]
  assert r_legs.get_title() == "legs: continuous (n = 4)"
  assert r_legs.get_xlabel() == "without legs (r)" and r_legs.get_ylabel() == "whole body (r)"
  counts = {c.get_label(): len(c.get_offsets()) for c in r_legs.collections}
  # Continuous t1 (Δ −0.04: better without legs) and t7 (Δ +0.08) are significant.
  assert counts == {"not significant": 2, "whole body better": 1, "without legs better": 1}


def test_region_importance_grid_matches_the_table():
  frame = _region_importance()
  fig = figures.region_importance(frame)
  images = [ax for ax in fig.axes if ax.images]
  assert len(images) == 4  # 2 ablation kinds × 2 sexes (+ a colour bar axis)
  assert images[0].get_title() == "male: removed at inference"
  grid = images[0].images[0].get_array()
  want = frame[(frame.subset == "male") & (frame.ablation == "zero")].pivot(
      index="system", columns="region", values="importance").loc[
          ["lipids", "sleep", "renal_function"], ["legs", "arms", "torso", "head"]]
  np.testing.assert_allclose(grid, want.to_numpy())


def test_data_quality_panel_per_stage_bar_per_reason():
  frame = _data_quality()
  fig = figures.data_quality(frame)
  assert [ax.get_title(loc="left") for ax in fig.axes] == ["prepare (QC)", "embed", "probe"]
  assert [len(ax.patches) for ax in fig.axes] == [2, 1, 3]
  assert [p.get_width() for p in fig.axes[2].patches] == [3000, 12, 1]


def test_power_fdp_bars_hold_the_values():
  frame = _power_fdp()
  fig = figures.power_fdp(frame)
  power, fdp = fig.axes
  assert sorted(p.get_height() for p in power.patches) == sorted(frame["power"])
  assert sorted(p.get_height() for p in fdp.patches) == sorted(frame["fdp"])
