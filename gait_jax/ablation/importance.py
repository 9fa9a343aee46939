"""Body-region importance from a probe run over ablated feature sets.

A region's importance for a target is the performance lost when the region is
removed: Δ = score(no ablation) − score(region zeroed at inference), r for
continuous and AUC for binary targets, with the probe's participant-level paired
test of the out-of-fold losses (`probing.job`, results/comparisons.csv) and BH.
Three kinds of ablation:

  zero     the region's joints hidden at inference (published)
  only     every other region hidden: what the region alone keeps (Δ = score of the
           region alone − score of the whole body; higher = more signal in it)
  trained  an encoder pretrained with the region always hidden

Per subset × body system × region, the published summary (`region_table`): the mean
Δ of the system's top-n targets (by the unablated score), and that row min-max
normalised to 0–1 across regions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


KINDS = ("zero", "only", "trained")
TARGET_COLUMNS = ("subset", "target", "system", "kind", "region", "ablation", "features",
                  "score_full", "score_ablated", "delta", "z", "p", "q", "significant")
REGION_COLUMNS = ("subset", "system", "region", "ablation", "importance", "raw",
                  "mean_delta", "n_targets", "n_top", "n_significant")


def parse_feature_set(set_id: str, reference_input: str) -> tuple[str, str] | None:
  """(ablation kind, region) of a probe feature-set id, None for other sets.

  "<input>/zero:legs" → ("zero", "legs"); "<input>/only:legs" → ("only", "legs");
  "trained:legs" (an input of its own) → ("trained", "legs").
  """
  if set_id.startswith("trained:") and "/" not in set_id:
    return "trained", set_id.split(":", 1)[1]
  head, _, ablation = set_id.partition("/")
  kind, _, region = ablation.partition(":")
  if head == reference_input and kind in ("zero", "only") and region:
    return kind, region
  return None


def target_importance(targets: pd.DataFrame, comparisons: pd.DataFrame,
                      reference: str) -> pd.DataFrame:
  """One row per subset × target × ablated feature set (TARGET_COLUMNS).

  Args:
    targets, comparisons: a probe run's results (targets.parquet, comparisons.csv)
      whose comparisons pair `reference` (the unablated set) with each ablated one.
  """
  rows = []
  reference_input = reference.split("/")[0]
  ok = targets[targets["status"] == "ok"].set_index(["features", "subset", "target"])
  for b, part in comparisons[comparisons["a"] == reference].groupby("b", sort=False):
    parsed = parse_feature_set(b, reference_input)
    if parsed is None:
      continue
    kind, region = parsed
    part = part[part["target"].isin(ok.loc[reference].index.get_level_values("target"))]
    sign = -1.0 if kind == "only" else 1.0
    rows.append(pd.DataFrame({
        "subset": part["subset"], "target": part["target"], "system": part["system"],
        "kind": part["kind"], "region": region, "ablation": kind, "features": b,
        "score_full": part["score_a"], "score_ablated": part["score_b"],
        "delta": sign * part["delta"], "z": sign * part["z"], "p": part["p"],
        "q": part["q"], "significant": part["significant"].astype(bool)}))
  if not rows:
    return pd.DataFrame(columns=list(TARGET_COLUMNS))
  return pd.concat(rows, ignore_index=True)[list(TARGET_COLUMNS)]


def region_table(importance: pd.DataFrame, top: int = 10) -> pd.DataFrame:
  """Per subset × system × region × ablation kind (REGION_COLUMNS).

  importance (the published summary) = raw min-max normalised across the regions of
  the row (subset, system, kind); raw = mean Δ over the system's `top` targets with
  the highest unablated score; mean_delta = mean Δ over all its targets;
  n_significant = targets whose paired test is significant with Δ > 0 (the region
  carries signal that the rest of the body does not replace).
  """
  out = []
  for (subset, system, kind), part in importance.groupby(["subset", "system", "ablation"],
                                                         sort=True):
    full = part.groupby("target")["score_full"].first().dropna()
    top_targets = full.sort_values(ascending=False).index[:top]
    rows = []
    for region, reg in part.groupby("region", sort=False):
      chosen = reg[reg["target"].isin(top_targets)]
      rows.append({"subset": subset, "system": system, "region": region, "ablation": kind,
                   "raw": float(chosen["delta"].mean()) if len(chosen) else np.nan,
                   "mean_delta": float(reg["delta"].mean()),
                   "n_targets": int(reg["target"].nunique()), "n_top": int(len(chosen)),
                   "n_significant": int((reg["significant"] & (reg["delta"] > 0)).sum())})
    raw = pd.Series([r["raw"] for r in rows], dtype=float)
    lo, hi = raw.min(), raw.max()  # NaN-skipping
    for r in rows:
      r["importance"] = (r["raw"] - lo) / (hi - lo) if hi > lo else np.nan
    out += rows
  return pd.DataFrame(out, columns=list(REGION_COLUMNS))


def planted_regions(truth: dict, regions: tuple[tuple[str, tuple[str, ...]], ...]
                    ) -> pd.DataFrame:
  """Per body system, the share of its planted gait signal in each pooling region.

  A synthetic cohort's truth.json ({"targets": {name: entry}}) lists each target's
  body regions (those of the latent factors it depends on, masking-region names) and
  signal fraction r2; each gait target's r2 is split equally over its pooling regions
  and summed per system. Returns: system, region, weight (shares sum to 1 per system), planted (the top
  region).
  """
  to_pool = {part: name for name, parts in regions for part in parts}
  weights: dict[tuple[str, str], float] = {}
  for entry in truth["targets"].values():
    if entry.get("category") != "gait":
      continue
    pooled = sorted({to_pool[r] for r in entry.get("regions", ()) if r in to_pool})
    for region in pooled:
      key = (entry["system"], region)
      weights[key] = weights.get(key, 0.0) + float(entry.get("r2", 1.0)) / len(pooled)
  frame = pd.DataFrame([(s, r, w) for (s, r), w in weights.items()],
                       columns=["system", "region", "weight"])
  if not len(frame):
    return frame.assign(planted="")
  frame["weight"] /= frame.groupby("system")["weight"].transform("sum")
  top = frame.loc[frame.groupby("system")["weight"].idxmax()].set_index("system")["region"]
  frame["planted"] = frame["system"].map(top)
  return frame.sort_values(["system", "region"], ignore_index=True)


def recovery(region_importance: pd.DataFrame, planted: pd.DataFrame,
             ablation: str = "zero") -> pd.DataFrame:
  """Per subset × system: the planted top region, the recovered one (highest
  importance) and whether they agree. A system whose planted signal is in the torso
  counts as recovered when the torso or the head comes first (the head rides on the
  torso: a slumped posture moves both)."""
  top = (region_importance[region_importance["ablation"] == ablation]
         .dropna(subset=["raw"]).sort_values("raw", ascending=False)
         .groupby(["subset", "system"], sort=True).head(1))
  planted_top = planted.groupby("system")["planted"].first()
  rows = []
  for r in top.itertuples():
    if r.system not in planted_top.index:
      continue
    want = planted_top[r.system]
    accept = {"torso", "head"} if want in ("torso", "head") else {want}
    rows.append({"subset": r.subset, "system": r.system, "planted": want,
                 "recovered": r.region, "match": r.region in accept})
  return pd.DataFrame(rows, columns=["subset", "system", "planted", "recovered", "match"])



def check_recovery(recovered: pd.DataFrame, minimum: int, subset: str = "all") -> str | None:
  """Why the recovery falls short (None when at least `minimum` of the checked systems
  are recovered in `subset`, or when minimum is 0)."""
  found = recovered[(recovered["subset"] == subset) & recovered["checked"]]
  hits = int(found["match"].sum())
  if not minimum or hits >= minimum:
    return None
  missed = ", ".join(f"{r.system} ({r.recovered} instead of {r.planted})"
                     for r in found[~found["match"]].itertuples())
  return (f"the planted region of only {hits} of {len(found)} checked systems was recovered "
          f"in subset {subset!r} (at least {minimum} required); missed: {missed}")
