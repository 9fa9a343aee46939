"""Headline table of one or more probe runs, and power / false discoveries against truth.

  python -m gait_jax.probing.headline --run embedding=runs/demo/probe_embed \
      --run engineered=runs/demo/probe_features [--truth cohort/truth.json] [--out t.csv]

Per run (a probe job's workdir): out-of-fold r for age, BMI and visceral fat,
targets significant after Benjamini–Hochberg, body systems with at least one
significant independent gain over the covariates (men, women) and, given the
synthetic cohort's truth.json, the power on planted gait-dependent targets and
the false discovery proportion among the significant ones (a discovery is false
when the target is a planted null).
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np
import pandas as pd

HEADLINE_TARGETS = ("age", "bmi", "visceral_fat")


def truth_scores(targets: pd.DataFrame, truth: dict, subset: str = "all") -> dict[str, float]:
  """Power and false discovery proportion of `significant` against planted truth.

  truth: the synthetic cohort's truth.json ({"targets": {name: {"category":
  "gait" | "covariate_only" | None}}}). Power = significant gait targets / gait
  targets tested; FDP = significant null targets / significant targets.
  """
  category = {name: t.get("category") for name, t in truth["targets"].items()}
  part = targets[(targets["subset"] == subset) & (targets["status"] == "ok")]
  part = part[part["target"].isin(list(category))]
  cat = part["target"].map(category)
  sig = part["significant"].astype(bool)
  gait = cat == "gait"
  null = cat.isna()
  return {"power_gait": float(sig[gait].mean()) if gait.any() else np.nan,
          "fdp": float((sig & null).sum() / max(int(sig.sum()), 1)),
          "null_tested": int(null.sum()), "gait_tested": int(gait.sum())}


def headline(run_dir: str | pathlib.Path, truth: dict | None = None) -> dict[str, object]:
  """One row of the headline table for a probe workdir."""
  targets = pd.read_parquet(pathlib.Path(run_dir) / "results" / "targets.parquet")
  every = targets[targets["subset"] == "all"].set_index("target")
  tested = every[every["status"] == "ok"]
  row: dict[str, object] = {}
  for name in HEADLINE_TARGETS:
    row[f"r_{name}"] = float(every.loc[name, "r"]) if name in every.index else np.nan
  row["significant"] = f"{int(tested['significant'].sum())}/{len(tested)}"
  if "gain_significant" in targets:
    for subset in ("male", "female"):
      part = targets[(targets["subset"] == subset) & (targets["status"] == "ok")]
      gained = part[part["gain_significant"].astype(bool)]["system"].nunique()
      row[f"systems_gain_{subset}"] = f"{gained}/{part['system'].nunique()}"
  if truth is not None:
    row.update(truth_scores(targets, truth))
  return row


def main(argv: list[str] | None = None) -> pd.DataFrame:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--run", action="append", required=True, metavar="NAME=DIR",
                      help="a probe workdir, named (repeatable)")
  parser.add_argument("--truth", help="the synthetic cohort's truth.json")
  parser.add_argument("--out", help="write the table here (CSV)")
  args = parser.parse_args(argv)
  truth = json.loads(pathlib.Path(args.truth).read_text()) if args.truth else None
  rows = {}
  for spec in args.run:
    name, _, run_dir = spec.partition("=")
    if not run_dir:
      parser.error(f"--run {spec!r}: expected NAME=DIR")
    rows[name] = headline(run_dir, truth)
  table = pd.DataFrame.from_dict(rows, orient="index")
  with pd.option_context("display.width", 160, "display.max_columns", 20,
                         "display.float_format", "{:.3f}".format):
    print(table.to_string())
  if args.out:
    table.to_csv(args.out)
  return table


if __name__ == "__main__":
  main()
