r"""Headline table of one or more probe runs, and power / false discoveries against truth.

  python -m gait_jax.probing.headline --run runs/demo/probe [--run NAME=DIR ...] \
      [--truth cohort/truth.json] [--out t.csv]

One row per primary feature set (each input, all tasks fused, no ablation) of each
run (a probe job's workdir; a NAME prefixes its rows): out-of-fold r for age, BMI and visceral fat (within
test folds, and in the published form: pooled per seed, mean over seeds),
targets significant after Benjamini–Hochberg, body systems with at least one
significant independent gain over the covariates (men, women) and, given the
synthetic cohort's truth.json, power and false discovery proportion
(`stats.power_fdp`): of plain discoveries (true: gait-dependent or covariate-only
targets) and of independent gains (true: gait-dependent targets only).
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np
import pandas as pd

from gait_jax.probing import stats

HEADLINE_TARGETS = ("age", "bmi", "visceral_fat")


def headline(targets: pd.DataFrame, truth: dict | None = None) -> dict[str, object]:
  """One row of the headline table from one feature set's targets table."""
  every = targets[targets["subset"] == "all"].set_index("target")
  tested = every[every["status"] == "ok"]
  row: dict[str, object] = {}
  for name in HEADLINE_TARGETS:
    have = name in every.index
    row[f"r_{name}"] = float(every.loc[name, "r"]) if have else np.nan
    # The published form: pooled out-of-fold r per seed, mean over seeds.
    row[f"r_{name}_published"] = float(every.loc[name, "r_seed_mean"]) if have else np.nan
  row["significant"] = f"{int(tested['significant'].sum())}/{len(tested)}"
  if "gain_significant" in targets:
    for subset in ("male", "female"):
      part = targets[(targets["subset"] == subset) & (targets["status"] == "ok")]
      gained = part[part["gain_significant"].astype(bool)]["system"].nunique()
      row[f"systems_gain_{subset}"] = f"{gained}/{part['system'].nunique()}"
  if truth is not None:
    sig = dict(zip(tested.index, tested["significant"].astype(bool)))
    plain = stats.power_fdp(sig, truth)
    row.update(power=plain["power"], fdp=plain["fdp"])
    if "gain_significant" in tested:
      gain = stats.power_fdp(dict(zip(tested.index, tested["gain_significant"].astype(bool))),
                             truth, covariate_adjusted=True)
      row.update(gain_power=gain["power"], gain_fdp=gain["fdp"])
  return row


def headlines(run_dir: str | pathlib.Path, truth: dict | None = None
              ) -> dict[str, dict[str, object]]:
  """Rows of the headline table for a probe workdir: one per primary feature set."""
  targets = pd.read_parquet(pathlib.Path(run_dir) / "results" / "targets.parquet")
  if "features" not in targets:  # a run from before feature sets
    return {"embedding": headline(targets, truth)}
  primary = targets[(targets["task"] == "fused") & (targets["ablation"] == "none")]
  return {str(name): headline(part, truth)
          for name, part in primary.groupby("features", sort=False)}


def main(argv: list[str] | None = None) -> pd.DataFrame:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--run", action="append", required=True, metavar="[NAME=]DIR",
                      help="a probe workdir (repeatable); NAME prefixes its rows")
  parser.add_argument("--truth", help="the synthetic cohort's truth.json")
  parser.add_argument("--out", help="write the table here (CSV)")
  args = parser.parse_args(argv)
  truth = json.loads(pathlib.Path(args.truth).read_text()) if args.truth else None
  rows = {}
  for spec in args.run:
    name, _, run_dir = spec.rpartition("=")
    if not (pathlib.Path(run_dir) / "results" / "targets.parquet").is_file():
      parser.error(f"--run {spec!r}: {run_dir} has no results/targets.parquet")
    found = headlines(run_dir, truth)
    for features, row in found.items():
      label = features if not name else name if len(found) == 1 else f"{name}/{features}"
      rows[label] = row
  table = pd.DataFrame.from_dict(rows, orient="index")
  with pd.option_context("display.width", 160, "display.max_columns", 20,
                         "display.float_format", "{:.3f}".format):
    print(table.to_string())
  if args.out:
    table.to_csv(args.out)
  return table


if __name__ == "__main__":
  main()
