r"""The report: a run directory → one self-contained HTML page, figures and tables.

  python -m gait_jax.report --run runs/demo --out runs/demo/report \
      [--truth runs/demo/cohort/truth.json] [--skip reconstruction] [--group NAME]

Writes

  OUT/index.html           the page; opens alone (images inlined as data URIs)
  OUT/figures/<name>.png   every figure that could be drawn, and .svg
  OUT/tables/<name>.csv    the tidy table each figure was drawn from

Each table is built from the run directory (`tables.BUILDERS`), written, read back
and drawn from the CSV (`figures.FIGURES`), so the page shows what the CSV holds.
A figure whose inputs are missing is listed as "not available: <reason>"; a run
directory with only some stages still gives a page. The tables and figures then go
to W&B (job type "report", grouped by the run directory's name; mode from
WANDB_MODE) through `gait_jax.tracking`, with OUT as an artifact of type "report";
tables with one row per participant stay out of W&B and of the artifact.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import shutil
import tempfile
import traceback
from collections.abc import Sequence

import pandas as pd

from gait_jax.errors import InputError, cli
from gait_jax.report import figures, page, tables
from gait_jax.report.rundir import RunDir

# Per-target and per-system tables, logged to W&B as tables.
WANDB_TABLES = ("task_scores", "sex_roc", "significant_by_system", "gain_by_system",
                "clinical_dumbbell", "embedding_vs_engineered", "region_importance",
                "data_quality", "power_fdp")
PNG_DPI = 110


@dataclasses.dataclass(frozen=True)
class Entry:
  """One figure of a built report: its table, and where its files went (None: not
  drawn; `table.reason` or `error` says why)."""
  name: str
  table: tables.Table
  csv: pathlib.Path | None = None
  png: pathlib.Path | None = None
  svg: pathlib.Path | None = None
  error: str = ""

  @property
  def reason(self) -> str:
    return self.error or self.table.reason


def _build_table(name: str, run: RunDir) -> tables.Table:
  """The builder's table; an unreadable or malformed input becomes the reason."""
  try:
    return tables.BUILDERS[name](run)
  except (OSError, ValueError, KeyError, TypeError) as e:
    print(f"report: {name}: inputs could not be read: {type(e).__name__}: {e}")
    return tables.missing(f"inputs could not be read: {type(e).__name__}: {e}")


def _draw(name: str, table: tables.Table, out: pathlib.Path) -> Entry:
  """Writes the CSV, redraws the figure from it, saves PNG and SVG."""
  csv = out / "tables" / f"{name}.csv"
  table.frame.to_csv(csv, index=False)
  try:
    fig = figures.FIGURES[name](pd.read_csv(csv))
    png, svg = out / "figures" / f"{name}.png", out / "figures" / f"{name}.svg"
    fig.savefig(png, dpi=PNG_DPI)
    fig.savefig(svg)
  except Exception as e:  # pylint: disable=broad-except
    # One figure that cannot be drawn must not cost the rest of the page.
    print(f"report: {name}: figure failed:\n{traceback.format_exc()}")
    return Entry(name, table, csv, error=f"the figure could not be drawn: "
                 f"{type(e).__name__}: {e}")
  return Entry(name, table, csv, png, svg)


def build(run_dir: str | pathlib.Path, out: str | pathlib.Path,
          truth: str | pathlib.Path | None = None, skip: Sequence[str] = ()
          ) -> tuple[pathlib.Path, list[Entry]]:
  """Writes the report of `run_dir` to `out`; returns (OUT/index.html, the entries).

  Args:
    run_dir: a run directory (see `rundir`).
    out: the output directory (created; files of the same names are replaced).
    truth: the synthetic cohort's truth.json (default RUN/cohort/truth.json if any).
    skip: figure names not to build (listed as not available).
  """
  run = RunDir.open(run_dir, truth)
  if not run.root.is_dir():
    raise InputError(f"--run {str(run_dir)!r}: not a directory")
  unknown = sorted(set(skip) - set(tables.BUILDERS))
  if unknown:
    raise InputError(f"--skip {unknown}: unknown figures; known: {list(tables.BUILDERS)}")
  out = pathlib.Path(out)
  (out / "figures").mkdir(parents=True, exist_ok=True)
  (out / "tables").mkdir(parents=True, exist_ok=True)
  entries, sections = [], []
  for name in tables.BUILDERS:
    # A figure of an earlier report in OUT that is not available now must not linger.
    for stale in (out / "tables" / f"{name}.csv", out / "figures" / f"{name}.png",
                  out / "figures" / f"{name}.svg"):
      stale.unlink(missing_ok=True)
    table = (tables.missing("skipped (--skip)") if name in skip
             else _build_table(name, run))
    entry = _draw(name, table, out) if table.frame is not None else Entry(name, table)
    entries.append(entry)
    links = ()
    if entry.png is not None:
      links = tuple((label, f"{kind}/{name}.{ext}") for label, kind, ext in (
          ("table (CSV)", "tables", "csv"), ("figure (SVG)", "figures", "svg"),
          ("figure (PNG)", "figures", "png")))
    sections.append(page.Section(
        name=name, title=figures.TITLES[name], caption=figures.caption(name),
        sources=tuple(run.relative(p) for p in table.sources), note=table.note,
        png=entry.png, links=links, reason=entry.reason))
  headline_path = run.file("headline.csv")
  headline = pd.read_csv(headline_path, index_col=0) if headline_path else None
  index = out / "index.html"
  index.write_text(page.render(str(run_dir), sections, headline,
                               run.relative(headline_path) if headline_path else ""),
                   encoding="utf-8")
  return index, entries


def _artifact_copy(out: pathlib.Path, entries: list[Entry], into: pathlib.Path
                   ) -> pathlib.Path:
  """The page, figures and tables of OUT, less per-participant tables, under `into`."""
  staged = into / "report"
  (staged / "figures").mkdir(parents=True)
  (staged / "tables").mkdir()
  shutil.copy2(out / "index.html", staged / "index.html")
  for e in entries:
    for path in (e.png, e.svg):
      if path is not None:
        shutil.copy2(path, staged / "figures" / path.name)
    if e.csv is not None and not e.table.per_participant:
      shutil.copy2(e.csv, staged / "tables" / e.csv.name)
  return staged


def log_to_wandb(run_dir: str | pathlib.Path, out: pathlib.Path, entries: list[Entry],
                 group: str | None = None) -> bool:
  """Logs the report to W&B through `gait_jax.tracking`; False (one printed line) when
  that module does not exist yet.

  Logged: the per-target and per-system tables (`WANDB_TABLES`), every figure as an
  image, counts of figures drawn and missing, and OUT (without per-participant tables)
  as an artifact of type "report".
  """
  try:
    from gait_jax import tracking  # pylint: disable=import-outside-toplevel
  except ModuleNotFoundError as e:
    if e.name != "gait_jax.tracking":
      raise
    print("report: W&B skipped: gait_jax.tracking is not available")
    return False
  import ml_collections  # pylint: disable=import-outside-toplevel
  name = pathlib.Path(run_dir).resolve().name
  config = ml_collections.ConfigDict({
      "wandb": tracking.wandb_config(),
      "report": {"run_dir": str(run_dir), "out": str(out)}})
  config.wandb.group = group or config.wandb.group or name
  tracker = tracking.start(config, str(out), "report")
  with tempfile.TemporaryDirectory() as tmp:
    try:
      for e in entries:
        if e.png is None:
          continue
        if e.name in WANDB_TABLES and not e.table.per_participant:
          tracker.table(f"report/{e.name}", e.table.frame)
        tracker.image(f"report/{e.name}", e.png)
      tracker.log({"report/figures": sum(e.png is not None for e in entries),
                   "report/not_available": sum(e.png is None for e in entries)})
      tracker.artifact(re.sub(r"[^A-Za-z0-9_.-]", "_", f"report-{name}"), "report",
                       _artifact_copy(out, entries, pathlib.Path(tmp)))
    finally:
      tracker.close()
  return True


@cli
def main(argv: Sequence[str] | None = None) -> pathlib.Path:
  """Builds the report and logs it; returns OUT (its last printed line names the page)."""
  parser = argparse.ArgumentParser(
      prog="python -m gait_jax.report", description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--run", required=True, help="the run directory (e.g. runs/demo)")
  parser.add_argument("--out", required=True, help="where the page, figures and tables go")
  parser.add_argument("--truth", help="truth.json (default RUN/cohort/truth.json if any)")
  parser.add_argument("--skip", action="append", default=[], metavar="FIGURE",
                      help=f"a figure not to build (repeatable): {', '.join(tables.BUILDERS)}")
  parser.add_argument("--group", help="W&B group (default: the run directory's name)")
  args = parser.parse_args(argv)
  index, entries = build(args.run, args.out, args.truth, args.skip)
  out = index.parent
  missing = [e.name for e in entries if e.png is None]
  print(f"report: {len(entries) - len(missing)} of {len(entries)} figures"
        + (f"; not available: {', '.join(missing)}" if missing else ""))
  log_to_wandb(args.run, out, entries, args.group)
  print(f"report: {index}")
  return out

