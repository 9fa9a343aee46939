r"""The `ablation` job: embed with every region ablation, probe them on the same folds,
and score each body region's importance per target and per body system.

  python -m gait_jax.main --config experiments/ablation.py --workdir W \
      --config.checkpoint_dir=PRETRAIN_WORKDIR --config.data.shards=SHARDS \
      --config.phenotypes=P --config.dictionary=D [--config.trained=legs=DIR,...]

Writes
  W/embed/                     the ablation embeddings (unless config.embeddings is
                               given), W/embed_trained/<region>/ for trained ablations
  W/probe/                     the probe run over every ablation (results/targets,
                               comparisons with no ablation, calibration)
  W/target_importance.parquet  per subset × target × ablation: Δ score and its test
  W/region_importance.csv      per subset × body system × region × ablation kind: the
                               published summary `importance` (0–1 per system) and
                               the raw numbers (`importance.region_table`)
  W/region_recovery.csv        with config.truth: planted vs recovered top region
  W/figures/region_heatmap.png (+ .svg) one panel per sex
"""

from __future__ import annotations

import json
import pathlib
import sys

import jax
import ml_collections
import pandas as pd

from gait_jax import tracking
from gait_jax.ablation import importance as importance_lib
from gait_jax.embedding import job as embed_job
from gait_jax.errors import InputError
from gait_jax.probing import job as probe_job


def _trained(spec: str, regions: tuple[tuple[str, tuple[str, ...]], ...]
             ) -> list[tuple[str, str]]:
  """(region, pretraining workdir) of the training-time ablations.

  spec: comma-separated "REGION=WORKDIR" entries, or a sweep root (`launch/sweep.py
  ... --sweep regions`) whose runs are matched to regions by the masking regions their
  config.json always hides (a run hiding nothing is skipped).
  """
  by_parts = {tuple(sorted(parts)): name for name, parts in regions}
  out = []
  for part in (p.strip() for p in spec.split(",") if p.strip()):
    region, sep, path = part.partition("=")
    if sep:
      if region.strip() not in dict(regions):
        raise InputError(f"config.trained entry {part!r}: region {region!r} is not one of "
                         f"{[n for n, _ in regions]}")
      out.append((region.strip(), path.strip()))
      continue
    root = pathlib.Path(part)
    runs = sorted(root.glob("*/config.json"))
    if not runs:
      raise InputError(f"config.trained entry {part!r}: expected REGION=PRETRAIN_WORKDIR or "
                       "a sweep root with runs (*/config.json)")
    for config_json in runs:
      hidden = json.loads(config_json.read_text())["model"]["masking"]["always_hide"]
      if not hidden:
        continue
      name = by_parts.get(tuple(sorted(hidden)))
      if name is None:
        raise InputError(f"{config_json}: always_hide={hidden} is not one pooling region")
      out.append((name, str(config_json.parent)))
  return out


def _wandb(config: ml_collections.ConfigDict, workdir: pathlib.Path
           ) -> ml_collections.ConfigDict:
  """The W&B settings of a sub-job: in the ablation run's group."""
  c = ml_collections.ConfigDict(config.wandb.to_dict())
  c.group = c.group or workdir.resolve().parent.name
  return c


def _embed(config: ml_collections.ConfigDict, checkpoint_dir: str, ablations: tuple[str, ...],
           workdir: pathlib.Path, out: pathlib.Path) -> str:
  """Runs the embed job in `workdir` (unless its output exists); returns the table's
  path."""
  table = workdir / "embeddings.parquet"
  if not table.is_file():
    c = ml_collections.ConfigDict(config.embed.to_dict())
    c.checkpoint_dir = checkpoint_dir
    c.ablations = ablations
    c.wandb = _wandb(config, out)
    embed_job.run(c, str(workdir))
  if not table.is_file():
    raise InputError(f"the encoder at {checkpoint_dir} gave no usable embedding")
  return str(table)


def run(config: ml_collections.ConfigDict, workdir: str) -> pd.DataFrame:
  """Runs the ablation; returns the region table (also written to workdir)."""
  out = pathlib.Path(workdir)
  trained = _trained(config.trained, tuple((str(n), tuple(p))
                                            for n, p in config.embed.pool.regions))
  if config.embeddings:
    embeddings = str(config.embeddings)
  elif config.checkpoint_dir:
    embeddings = _embed(config, config.checkpoint_dir, tuple(config.embed.ablations),
                        out / "embed", out)
  else:
    raise InputError("config.checkpoint_dir (a pretraining run) or config.embeddings (a "
                     "table with ablation rows) is required")
  inputs = [f"trained:{region}="
            f"{_embed(config, path, ('none',), out / 'embed_trained' / region, out)}"
            for region, path in trained]
  if jax.process_index() != 0:
    return pd.DataFrame()

  probe = ml_collections.ConfigDict(config.probe.to_dict())
  probe.embeddings = embeddings
  probe.name = "embedding"
  probe.inputs = ",".join(inputs)
  probe.phenotypes, probe.dictionary = config.phenotypes, config.dictionary
  probe.compare = "reference"
  probe.wandb = _wandb(config, out)
  targets = probe_job.run(probe, str(out / "probe"))
  comparisons = pd.read_csv(out / "probe" / "results" / "comparisons.csv")
  reference = str(targets["features"].iloc[0])
  per_target = importance_lib.target_importance(targets, comparisons, reference)
  if not len(per_target):
    raise InputError(f"{embeddings} has no region ablation rows (zero:<region> / "
                     "only:<region>) and no trained ablation was given")
  regions = importance_lib.region_table(per_target, int(config.top_targets))
  per_target.to_parquet(out / "target_importance.parquet", index=False)
  regions.to_csv(out / "region_importance.csv", index=False)

  recovered = None
  if config.truth:
    truth = json.loads(pathlib.Path(config.truth).read_text())
    planted = importance_lib.planted_regions(
        truth, tuple((str(n), tuple(p)) for n, p in config.embed.pool.regions))
    recovered = importance_lib.recovery(regions, planted)
    recovered["checked"] = recovered["system"].isin(tuple(config.recovery_systems))
    recovered.to_csv(out / "region_recovery.csv", index=False)

  figures = _heatmaps(regions, out / "figures")
  _summary(regions, recovered)
  with tracking.start(config, out, "ablation") as tracker:
    tracker.table("region_importance", regions)
    tracker.artifact("target_importance", "results", out / "target_importance.parquet")
    if recovered is not None:
      tracker.table("region_recovery", recovered)
      tracker.summary(_recovery_counts(recovered))
    for path in figures:
      tracker.image(path.stem, path)
  failure = None if recovered is None else importance_lib.check_recovery(
      recovered, int(config.min_recovered))
  if failure:
    print(f"ablation: {failure}", file=sys.stderr)
    raise SystemExit(1)
  return regions


def _heatmaps(regions: pd.DataFrame, folder: pathlib.Path) -> list[pathlib.Path]:
  """figures/region_heatmap.png + .svg: one panel per sex (as published) and for
  everyone, per ablation kind."""
  from gait_jax.report import figures  # pylint: disable=import-outside-toplevel
  folder.mkdir(parents=True, exist_ok=True)
  fig = figures.region_importance(regions)
  for ext in ("png", "svg"):
    fig.savefig(folder / f"region_heatmap.{ext}", dpi=120)
  return [folder / "region_heatmap.png"]


def _recovery_counts(recovered: pd.DataFrame) -> dict[str, object]:
  """"k/n" systems recovered per subset: of the checked systems, and of all."""
  out = {}
  for subset, part in recovered.groupby("subset", sort=False):
    checked = part[part["checked"]]
    out[f"recovered_{subset}"] = f"{int(checked['match'].sum())}/{len(checked)}"
    out[f"recovered_{subset}_every_system"] = f"{int(part['match'].sum())}/{len(part)}"
  return out


def _summary(regions: pd.DataFrame, recovered: pd.DataFrame | None) -> None:
  zero = regions[(regions["ablation"] == "zero") & (regions["subset"] == "all")]
  if len(zero):
    table = zero.pivot(index="system", columns="region", values="raw")
    print("region importance (subset all, region zeroed: mean Δ score of each system's "
          "top targets):")
    with pd.option_context("display.width", 160, "display.float_format", "{:+.3f}".format):
      print(table.to_string())
  if recovered is not None and len(recovered):
    counts = _recovery_counts(recovered)
    text = "; ".join(f"{s} {counts[f'recovered_{s}']} (of every system "
                     f"{counts[f'recovered_{s}_every_system']})"
                     for s in recovered["subset"].unique())
    print(f"planted top region recovered, checked systems: {text}")
