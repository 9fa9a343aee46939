"""The report's figures: one function per figure, tidy table in, matplotlib Figure out.

Each function takes exactly the table `tables.py` builds (the CSV beside the figure),
so a figure is redrawn from its CSV alone:

  figures.FIGURES[name](pd.read_csv(OUT / "tables" / f"{name}.csv"))

Figures are `matplotlib.figure.Figure` objects drawn by the Agg renderer, made
without pyplot: nothing global is switched or left open. Rows are drawn in the
table's order (the builders sort them), so the CSV also fixes the layout.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gait_jax import skeleton
from gait_jax.train import figures as train_figures

SEX_COLORS = {"male": "tab:blue", "female": "tab:red", "all": "0.4"}
MODEL_COLORS = {"gait": "tab:blue", "covariates": "tab:orange",
                "gait + covariates": "tab:green"}
REGIONS = ("legs", "arms", "torso", "head")
ABLATIONS = ("zero", "only", "trained")
ABLATION_TITLES = {"zero": "removed at inference", "only": "only the region kept",
                   "trained": "pretrained without"}


def _colors(names) -> dict[str, str]:
  """A tab10 colour per name, in order."""
  return {n: f"C{i % 10}" for i, n in enumerate(names)}


def _order(values: pd.Series) -> list:
  """Distinct values in the order they first appear."""
  return list(pd.unique(values))


def _shorten(text: str, limit: int = 60) -> str:
  return text if len(text) <= limit else text[:limit - 1] + "…"


def _subsets(frame: pd.DataFrame) -> list[str]:
  """The table's subsets, men and women first."""
  have = _order(frame["subset"].astype(str))
  return [s for s in ("male", "female", "all") if s in have] + [
      s for s in have if s not in ("male", "female", "all")]


def pretrain_loss(frame: pd.DataFrame) -> Figure:
  """Training loss (solid) and held-out losses (`val/...`, dashed) against step, one
  panel per pretraining run.

  Columns: run, series (metrics.jsonl key), split (train/val), step, value.
  """
  runs = _order(frame["run"])
  fig = Figure(figsize=(5.5 * len(runs), 3.6), layout="constrained")
  axes = fig.subplots(1, len(runs), squeeze=False)[0]
  for ax, run in zip(axes, runs):
    part = frame[frame["run"] == run]
    for series in _order(part["series"]):
      rows = part[part["series"] == series].sort_values("step")
      val = rows["split"].iloc[0] == "val"
      per_task = val and series.count("/") > 1
      ax.plot(rows["step"], rows["value"], ls="--" if val else "-",
              lw=0.9 if per_task else 1.6, alpha=0.7 if per_task else 1.0, label=series)
    ax.set_title(run, fontsize=10)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if (part["value"] > 0).all():
      ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
  return fig


def reconstruction(frame: pd.DataFrame, num_frames: int = 4) -> Figure:
  """Masked input, the model's prediction and the truth of one clip at a few frames,
  front view; red points are joint-frames hidden from the model.

  Columns: frame, joint (canonical name), x, y, z (metres, canonical frame: +y down),
  source (input/prediction/truth), hidden. Input rows are NaN where hidden.
  """
  joints = _order(frame["joint"])
  pairs = train_figures.bones([j for j in joints if j in skeleton.JOINT_INDEX])
  all_frames = np.sort(frame["frame"].unique())
  shown = all_frames[np.linspace(0, len(all_frames) - 1, min(num_frames, len(all_frames))
                                 ).astype(int)]
  sources = [s for s in ("input", "prediction", "truth") if s in set(frame["source"])]
  fig = Figure(figsize=(2.2 * len(shown), 2.4 * len(sources)), layout="constrained")
  axes = fig.subplots(len(sources), len(shown), squeeze=False)
  # Every panel shares the truth's limits, so a poor prediction looks poor.
  ref = frame[frame["source"] == ("truth" if "truth" in sources else sources[0])]
  xy_all = ref[["x", "y"]].to_numpy(float) * [1, -1]
  lo, hi = np.nanmin(xy_all, 0) - 0.1, np.nanmax(xy_all, 0) + 0.1
  for row, source in enumerate(sources):
    for col, f in enumerate(shown):
      ax = axes[row, col]
      part = frame[(frame["source"] == source) & (frame["frame"] == f)].set_index("joint")
      part = part.reindex(joints)
      train_figures.draw_pose(ax, part[["x", "y"]].to_numpy(float) * [1, -1], pairs,
                              part["hidden"].fillna(False).astype(bool).to_numpy(), lo, hi)
      if row == 0:
        ax.set_title(f"frame {int(f)}", fontsize=8)
      if col == 0:
        ax.set_ylabel(source, fontsize=9)
  fig.suptitle("red: hidden from the model", fontsize=9)
  return fig


def task_scores(frame: pd.DataFrame) -> Figure:
  """Score with its 95 % interval per task (fused = all tasks together), one panel
  per headline target, one colour per feature set.

  Columns: features, task, target, metric (r/auc), score, ci_low, ci_high, n.
  """
  targets = _order(frame["target"])
  tasks = _order(frame["task"])
  sets = _order(frame["features"])
  colors = _colors(sets)
  fig = Figure(figsize=(3.2 * len(targets), 0.45 * len(tasks) + 1.6), layout="constrained")
  axes = fig.subplots(1, len(targets), squeeze=False, sharey=True)[0]
  step = 0.7 / max(len(sets), 1)
  for ax, target in zip(axes, targets):
    part = frame[frame["target"] == target]
    for k, name in enumerate(sets):
      rows = part[part["features"] == name].set_index("task").reindex(tasks)
      y = np.arange(len(tasks)) + (k - (len(sets) - 1) / 2) * step
      s = rows["score"].to_numpy(float)
      err = np.abs(np.stack([s - rows["ci_low"].to_numpy(float),
                             rows["ci_high"].to_numpy(float) - s]))
      ax.errorbar(s, y, xerr=np.nan_to_num(err), fmt="o", ms=4, capsize=2,
                  color=colors[name], label=name)
    metric = part["metric"].iloc[0]
    ax.axvline(0.5 if metric == "auc" else 0.0, color="0.6", lw=0.8, ls=":")
    ax.set_title(target, fontsize=10)
    ax.set_xlabel("AUC" if metric == "auc" else "r")
    ax.grid(axis="x", alpha=0.3)
  axes[0].set_yticks(np.arange(len(tasks)), tasks, fontsize=8)
  axes[0].set_ylim(len(tasks) - 0.5, -0.5)  # first task on top
  if len(sets) > 1:
    axes[-1].legend(fontsize=7)
  return fig


def sex_roc(frame: pd.DataFrame) -> Figure:
  """ROC curve of sex per task, one panel per feature set; the AUC in the legend is
  that of the curve (out-of-fold predictions pooled over folds, averaged over seeds),
  which can differ from the within-fold AUC of the other figures.

  Columns: features, task, fpr, tpr, auc.
  """
  sets = _order(frame["features"])
  tasks = _order(frame["task"])
  colors = _colors(tasks)
  fig = Figure(figsize=(3.8 * len(sets), 3.8), layout="constrained")
  axes = fig.subplots(1, len(sets), squeeze=False)[0]
  for ax, name in zip(axes, sets):
    part = frame[frame["features"] == name]
    for task in tasks:
      rows = part[part["task"] == task]
      if rows.empty:
        continue
      rows = rows.sort_values(["fpr", "tpr"])
      lw = 2.2 if task == "fused" else 1.2
      ax.plot(rows["fpr"], rows["tpr"], color=colors[task], lw=lw,
              label=f"{task} ({rows['auc'].iloc[0]:.2f})")
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls=":")
    ax.set_title(f"sex, {name}", fontsize=10)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="lower right", title="task (AUC)", title_fontsize=7)
  return fig


def embedding_pca(frame: pd.DataFrame) -> Figure:
  """The first two principal components of the person embeddings, coloured by age,
  sex and BMI (grey: unknown).

  Columns: pc1, pc2, pc1_share, pc2_share (explained variance), age, sex (1 male,
  0 female), bmi. One row per participant.
  """
  fig = Figure(figsize=(12, 3.9), layout="constrained")
  axes = fig.subplots(1, 3)
  x, y = frame["pc1"].to_numpy(float), frame["pc2"].to_numpy(float)
  for ax, column in zip(axes, ("age", "sex", "bmi")):
    c = frame[column].to_numpy(float) if column in frame else np.full(len(frame), np.nan)
    known = np.isfinite(c)
    ax.scatter(x[~known], y[~known], s=10, color="0.75")
    if column == "sex":
      for value, name in ((1, "male"), (0, "female")):
        m = known & (c == value)
        ax.scatter(x[m], y[m], s=12, color=SEX_COLORS[name], label=name, alpha=0.8)
      ax.legend(fontsize=7)
    elif known.any():
      points = ax.scatter(x[known], y[known], c=c[known], s=12, cmap="viridis")
      fig.colorbar(points, ax=ax, label=column, shrink=0.8)
    ax.set_title(f"coloured by {column}", fontsize=10)
    ax.set_xlabel(f"PC1 ({frame['pc1_share'].iloc[0]:.0%})")
    ax.set_ylabel(f"PC2 ({frame['pc2_share'].iloc[0]:.0%})")
  return fig


def _system_bars(ax, frame: pd.DataFrame, value: str, systems: list[str],
                 count: str | None = None) -> None:
  """Horizontal bars of `value` per system, one bar per subset; labelled
  "count/tested" at the bar's end when `count` names a column."""
  subsets = _subsets(frame)
  height = 0.8 / len(subsets)
  for k, subset in enumerate(subsets):
    rows = frame[frame["subset"] == subset].set_index("system").reindex(systems)
    y = np.arange(len(systems)) + (k - (len(subsets) - 1) / 2) * height
    width = rows[value].to_numpy(float)
    ax.barh(y, width, height=height, color=SEX_COLORS.get(subset, f"C{k + 2}"), label=subset)
    if count is not None:
      for yi, w, c, n in zip(y, width, rows[count], rows["tested"]):
        if np.isfinite(w):
          ax.text(w, yi, f" {int(c)}/{int(n)}", va="center", fontsize=6)
  ax.set_yticks(np.arange(len(systems)), systems, fontsize=8)
  if not ax.yaxis_inverted():  # axes sharing y invert together
    ax.invert_yaxis()
  ax.grid(axis="x", alpha=0.3)


def significant_by_system(frame: pd.DataFrame) -> Figure:
  """Share of each body system's targets significant after BH, men and women.

  Columns: features, subset, system, tested, significant, share.
  """
  systems = _order(frame["system"])
  fig = Figure(figsize=(6, 0.32 * len(systems) + 1.4), layout="constrained")
  ax = fig.subplots()
  _system_bars(ax, frame, "share", systems, count="significant")
  ax.set_xlabel("share of targets significant")
  ax.set_xlim(0, min(1.0, max(0.1, float(frame["share"].max()) * 1.2)))
  ax.legend(fontsize=8)
  ax.set_title(f"feature set: {frame['features'].iloc[0]}", fontsize=10)
  return fig


def gain_by_system(frame: pd.DataFrame) -> Figure:
  """Independent gain over the covariates per system: the share of targets with a
  significant gain (left) and the mean gain in score (right), men and women.

  Columns: features, subset, system, tested, gain_significant, share, mean_gain.
  """
  systems = _order(frame["system"])
  fig = Figure(figsize=(10, 0.32 * len(systems) + 1.4), layout="constrained")
  left, right = fig.subplots(1, 2, sharey=True)
  _system_bars(left, frame, "share", systems, count="gain_significant")
  left.set_xlabel("share of targets with a significant gain")
  left.set_xlim(0, min(1.0, max(0.1, float(frame["share"].max()) * 1.2)))
  _system_bars(right, frame, "mean_gain", systems)
  right.axvline(0, color="0.4", lw=0.8)
  right.set_xlabel("mean gain (score with gait + covariates − covariates alone)")
  left.legend(fontsize=8)
  fig.suptitle(f"feature set: {frame['features'].iloc[0]}", fontsize=10)
  return fig


def clinical_dumbbell(frame: pd.DataFrame) -> Figure:
  """AUC of gait alone, covariates alone and both per diagnosis or medication.

  Columns: target, system, model (gait/covariates/gait + covariates), auc.
  """
  targets = _order(frame["target"])
  wide = frame.pivot_table(index="target", columns="model", values="auc").reindex(targets)
  system = frame.drop_duplicates("target").set_index("target")["system"]
  fig = Figure(figsize=(7, 0.3 * len(targets) + 1.4), layout="constrained")
  ax = fig.subplots()
  y = np.arange(len(targets))
  ax.hlines(y, wide.min(axis=1), wide.max(axis=1), color="0.75", lw=2, zorder=1)
  # Largest first: equal AUCs show as concentric dots, none hidden.
  for model, size in (("gait + covariates", 75), ("covariates", 42), ("gait", 18)):
    if model in wide:
      ax.scatter(wide[model], y, color=MODEL_COLORS[model], s=size, zorder=3, label=model)
  labels = [f"{t}  [{str(system[t]).replace('_', ' ')}]" for t in targets]
  ax.set_yticks(y, labels, fontsize=7)
  ax.invert_yaxis()
  ax.axvline(0.5, color="0.6", lw=0.8, ls=":")
  ax.set_xlabel("AUC")
  ax.grid(axis="x", alpha=0.3)
  ax.legend(fontsize=7, loc="lower right")
  return fig


def _paired_scatter(ax, part: pd.DataFrame, a: str, b: str, metric: str) -> None:
  """Per target, score_a (y) against score_b (x) with the identity line; the targets
  whose paired test is significant coloured by which side is better."""
  sa, sb = part["score_a"].to_numpy(float), part["score_b"].to_numpy(float)
  sig = part["significant"].fillna(False).astype(bool).to_numpy()
  ax.scatter(sb[~sig], sa[~sig], s=8, color="0.65", alpha=0.6, label="not significant")
  better = sig & (sa > sb)
  ax.scatter(sb[better], sa[better], s=14, color="tab:blue", label=f"{a} better")
  ax.scatter(sb[sig & ~better], sa[sig & ~better], s=14, color="tab:orange",
             label=f"{b} better")
  finite = np.concatenate([sa, sb])
  finite = finite[np.isfinite(finite)]
  lo, hi = (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)
  pad = 0.05 * max(hi - lo, 1e-3)
  ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.4", lw=0.8, ls=":")
  ax.set_xlabel(f"{b} ({metric})")
  ax.set_ylabel(f"{a} ({metric})")
  ax.set_aspect("equal")
  ax.legend(fontsize=7, loc="upper left")


def _metrics(frame: pd.DataFrame) -> list[str]:
  return [m for m in ("r", "auc") if m in set(frame["metric"])]


def embedding_vs_engineered(frame: pd.DataFrame) -> Figure:
  """Per target, the score of one feature set (a) against another's (b) on the same
  folds, one panel per metric; coloured where the paired test is significant.

  Columns: a, b, subset, target, system, kind, metric (r/auc), score_a, score_b, delta,
  q, significant, paired_test (False: no paired test was run, nothing is coloured).
  """
  metrics = _metrics(frame)
  a, b = frame["a"].iloc[0], frame["b"].iloc[0]
  fig = Figure(figsize=(4.3 * len(metrics), 4.3), layout="constrained")
  axes = fig.subplots(1, len(metrics), squeeze=False)[0]
  for ax, metric in zip(axes, metrics):
    part = frame[frame["metric"] == metric]
    _paired_scatter(ax, part, a, b, metric)
    kind = "binary targets" if metric == "auc" else "continuous targets"
    ax.set_title(f"{kind} (n = {len(part)})", fontsize=10)
  if not frame["paired_test"].astype(bool).any():
    fig.suptitle("no paired test in this run: nothing is marked significant", fontsize=9)
  return fig


def full_vs_ablated(frame: pd.DataFrame) -> Figure:
  """Per target, the score with the whole body against the score with one region
  removed at inference (or alone, or never seen in training), one panel per region (columns) and metric (rows); coloured
  where the paired test is significant.

  Columns: region, ablation, target, system, metric (r/auc), score_full,
  score_ablated, delta, q, significant.
  """
  metrics = _metrics(frame)
  regions = _order(frame["region"])
  label = {"zero": "without {}", "only": "{} alone", "trained": "trained without {}"}[
      frame["ablation"].iloc[0]]
  fig = Figure(figsize=(3.4 * len(regions), 3.6 * len(metrics)), layout="constrained")
  axes = fig.subplots(len(metrics), len(regions), squeeze=False)
  for row, metric in zip(axes, metrics):
    for ax, region in zip(row, regions):
      part = frame[(frame["metric"] == metric) & (frame["region"] == region)]
      part = part.rename(columns={"score_full": "score_a", "score_ablated": "score_b"})
      _paired_scatter(ax, part, "whole body", label.format(region), metric)
      kind = "binary" if metric == "auc" else "continuous"
      ax.set_title(f"{region}: {kind} (n = {len(part)})", fontsize=10)
  return fig


def region_importance(frame: pd.DataFrame) -> Figure:
  """Importance of each body region per system (0–1 within a system's row), one panel
  per ablation kind (rows) and sex (columns).

  Columns: subset, system, region, ablation, importance, raw, n_targets, n_top,
  n_significant.
  """
  kinds = [k for k in ABLATIONS if k in set(frame["ablation"])] + [
      k for k in _order(frame["ablation"]) if k not in ABLATIONS]
  subsets = _subsets(frame)
  regions = [r for r in REGIONS if r in set(frame["region"])] + [
      r for r in _order(frame["region"]) if r not in REGIONS]
  systems = _order(frame["system"])
  fig = Figure(figsize=(2.2 + 2.4 * len(subsets), 0.28 * len(systems) * len(kinds) + 1.2),
               layout="constrained")
  axes = fig.subplots(len(kinds), len(subsets), squeeze=False)
  image = None
  for i, kind in enumerate(kinds):
    for j, subset in enumerate(subsets):
      ax = axes[i, j]
      part = frame[(frame["ablation"] == kind) & (frame["subset"] == subset)]
      grid = part.pivot_table(index="system", columns="region", values="importance")
      grid = grid.reindex(index=systems, columns=regions)
      image = ax.imshow(grid.to_numpy(float), vmin=0, vmax=1, cmap="magma_r",
                        aspect="auto")
      ax.set_xticks(np.arange(len(regions)), regions, fontsize=8)
      ax.set_yticks(np.arange(len(systems)), systems if j == 0 else [""] * len(systems),
                    fontsize=7)
      ax.set_title(f"{subset}: {ABLATION_TITLES.get(kind, kind)}", fontsize=8)
  fig.colorbar(image, ax=axes, label="importance (row-normalised)", shrink=0.6)
  return fig


def data_quality(frame: pd.DataFrame) -> Figure:
  """Counts kept and excluded at each stage, by reason, one panel per stage.

  Columns: stage, unit (recordings, clips, groups, targets, participants, ...),
  status (kept/excluded), reason, count.
  """
  stages = _order(frame["stage"])
  sizes = [len(frame[frame["stage"] == s]) for s in stages]
  fig = Figure(figsize=(8, 0.3 * sum(sizes) + 0.9 * len(stages) + 0.5),
               layout="constrained")
  axes = fig.subplots(len(stages), 1, squeeze=False,
                      gridspec_kw={"height_ratios": [max(n, 1) + 1.5 for n in sizes]})[:, 0]
  for ax, stage in zip(axes, stages):
    part = frame[frame["stage"] == stage]
    y = np.arange(len(part))
    kept = (part["status"] == "kept").to_numpy()
    ax.barh(y, part["count"].to_numpy(float), color=np.where(kept, "tab:green", "tab:red"))
    labels = [_shorten(f"{u}: {r}") for u, r in zip(part["unit"], part["reason"])]
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    for yi, count in zip(y, part["count"]):
      ax.text(count, yi, f" {int(count)}", va="center", fontsize=7)
    ax.set_xlim(0, max(float(part["count"].max()), 1.0) * 1.12)
    ax.set_title(stage, fontsize=9, loc="left")
    ax.grid(axis="x", alpha=0.3)
  axes[-1].set_xlabel("count (green: kept, red: excluded)")
  return fig


def power_fdp(frame: pd.DataFrame) -> Figure:
  """Power and false discovery proportion per feature set against the synthetic
  cohort's truth: plain discoveries and independent gains over the covariates.

  Columns: features, test (probe/gain), power, fdp, discoveries, true.
  """
  sets = _order(frame["features"])
  tests = _order(frame["test"])
  fig = Figure(figsize=(8, 3.2), layout="constrained")
  axes = fig.subplots(1, 2)
  width = 0.8 / len(tests)
  for ax, value in zip(axes, ("power", "fdp")):
    for k, test in enumerate(tests):
      rows = frame[frame["test"] == test].set_index("features").reindex(sets)
      x = np.arange(len(sets)) + (k - (len(tests) - 1) / 2) * width
      bars = ax.bar(x, rows[value].to_numpy(float), width=width, color=f"C{k}", label=test)
      ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(np.arange(len(sets)), sets, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title({"power": "power", "fdp": "false discovery proportion"}[value],
                 fontsize=10)
    ax.grid(axis="y", alpha=0.3)
  axes[0].legend(fontsize=8)
  return fig


FIGURES: dict[str, Callable[[pd.DataFrame], Figure]] = {
    "pretrain_loss": pretrain_loss,
    "reconstruction": reconstruction,
    "task_scores": task_scores,
    "sex_roc": sex_roc,
    "embedding_pca": embedding_pca,
    "significant_by_system": significant_by_system,
    "gain_by_system": gain_by_system,
    "clinical_dumbbell": clinical_dumbbell,
    "embedding_vs_engineered": embedding_vs_engineered,
    "full_vs_ablated": full_vs_ablated,
    "region_importance": region_importance,
    "data_quality": data_quality,
    "power_fdp": power_fdp,
}

TITLES: dict[str, str] = {
    "pretrain_loss": "Pretraining loss",
    "reconstruction": "A reconstruction",
    "task_scores": "Results per task",
    "sex_roc": "Sex from gait: ROC per task",
    "embedding_pca": "Person embeddings, first two principal components",
    "significant_by_system": "Significant targets per body system",
    "gain_by_system": "Independent gain over the covariates per body system",
    "clinical_dumbbell": "Diagnoses and medications: gait, covariates, both",
    "embedding_vs_engineered": "Gait embedding against engineered gait features",
    "full_vs_ablated": "Whole body against one region removed, per target",
    "region_importance": "Body-region importance per system",
    "data_quality": "Data kept and excluded at each stage",
    "power_fdp": "Power and false discoveries against the synthetic truth",
}


def caption(name: str) -> str:
  """What figure `name` shows: the first paragraph of its function's docstring."""
  doc = FIGURES[name].__doc__ or ""
  return " ".join(doc.strip().split("\n\n")[0].replace("`", "").split())
