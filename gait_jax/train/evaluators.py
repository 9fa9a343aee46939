"""Evaluators run while pretraining (big_vision style): `config.evals` names them.

  config.evals.val = evaluators.loss_eval(every=50)                 # → val/loss, ...
  config.evals.probe = evaluators.probe_eval(every=500, phenotypes=P)  # → probe/age_r, ...

  evals = evaluators.build(config, mesh, rules, model_def, joints, num_frames)
  ...  # the trainer, every `every` steps and at the last one, on every process:
  writer.write(step, {k: v for ev in due for k, v in ev.run(state["params"], step).items()})
  ...
  for ev in evals:
    ev.close()

Each entry of `config.evals` is a ConfigDict with `type`, `every` (steps; 0 = off)
and the options of its type (`LOSS_OPTIONS`, `PROBE_OPTIONS`: every option and its
default); metric names start with the entry's name. Types:

  loss   held-out masked-reconstruction loss: `<name>/loss`, `<name>/position`,
         `<name>/velocity` and `<name>/loss/<task>` for each task of the split,
         means over clips of each clip's loss, every clip masked by its own fixed
         key (comparable across steps; unchanged by batch size, padding or mesh).
  probe  a frozen linear probe of held-out participants: `<name>/<target>_r`
         (continuous targets) or `<name>/<target>_auc` (binary).

Both read the shard set of `config.data` through the evaluation pipeline (one
epoch in clip-id order, padded last batch) with the option's `split` instead of
the training split, shard batches over `config.mesh.data_axes`, and jit their
device work once (compiled on the first run, then reused).
"""

from __future__ import annotations

import abc
import copy
import logging
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gait_jax import sharding
from gait_jax.data import pipeline
from gait_jax.data import shards as shards_lib
from gait_jax.embedding import job as embed_job
from gait_jax.embedding import pooling
from gait_jax.probing import engine, folds as folds_lib, stats, tables
from gait_jax.probing import job as probe_job
from gait_jax.train import state as state_lib

LOSS_METRICS = ("loss", "position", "velocity")

# Options of each type and their defaults (besides `type` and `every`).
LOSS_OPTIONS: dict[str, Any] = {
    # Participant split: "val", "test", "all" (or "train").
    "split": "val",
    # At most this many batches per run (0 = the whole split).
    "max_batches": 0,
    # Global batch size; 0 = config.data.batch_size.
    "batch_size": 0,
    # Clip c is masked with fold_in(key(seed), c): the same masks at every run,
    # whatever the batch size, padding or mesh.
    "seed": 0,
}
PROBE_OPTIONS: dict[str, Any] = {
    "split": "val",
    # Phenotype table (CSV or Parquet, one row per participant; what the probe job
    # reads). "" = the probe is off.
    "phenotypes": "",
    "id_column": "participant_id",
    # Targets: columns of the phenotype table. Two distinct values = binary (scored
    # by AUC), else continuous (Pearson r).
    "targets": ("age", "bmi", "sex"),
    "max_batches": 0,
    "batch_size": 0,
    # At most this many clips per participant × task (0 = all): the embedding cost.
    "max_clips_per_group": 0,
    # Embedding as the embed job's: clips cut into windows of the training crop,
    # at most max_windows central ones (0 = all), token features of `layer` pooled
    # over body regions with `stats` over time; then the mean over a participant's
    # clips.
    "max_windows": 0,
    "layer": -1,
    "stats": ("mean", "p99"),
    # Grouped folds × seeds; ridge penalties chosen per target by nested CV.
    "n_folds": 5,
    "n_seeds": 3,
    "alphas": (0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5),
    # The probe job's guard: a target is scored with at least min_samples
    # participants and, if binary, min_positives of each class overall and
    # min_fold_positives in every training fold; else NaN, with the reason logged.
    "min_samples": 15,
    "min_positives": 3,
    "min_fold_positives": 2,
    "seed": 0,
}
TYPES = {"loss": LOSS_OPTIONS, "probe": PROBE_OPTIONS}


def _eval_config(kind: str, every: int, **options) -> ml_collections.ConfigDict:
  unknown = sorted(set(options) - set(TYPES[kind]))
  if unknown:
    raise ValueError(f"unknown option(s) {unknown} of a {kind!r} evaluator; expected "
                     f"some of {sorted(TYPES[kind])}")
  return ml_collections.ConfigDict({"type": kind, "every": int(every),
                                    **TYPES[kind], **options})


def loss_eval(every: int, **options) -> ml_collections.ConfigDict:
  """A "loss" entry of config.evals with every option (LOSS_OPTIONS) filled in."""
  return _eval_config("loss", every, **options)


def probe_eval(every: int, **options) -> ml_collections.ConfigDict:
  """A "probe" entry of config.evals with every option (PROBE_OPTIONS) filled in."""
  return _eval_config("probe", every, **options)


# (val every, probe every) per pretraining variant.
EVERY = {"smoke": (2, 6), "small": (50, 50), "paper": (2000, 10_000)}


def evals_config(variant: str = "small", phenotypes: str = "") -> ml_collections.ConfigDict:
  """`config.evals` of a pretraining variant: "val" (loss) and "probe".

    smoke  val every 2 steps (2 batches), probe every 6, 3 folds; both on split
           "all", since a test cohort of a few people may have nobody in "val"
    small  both every 50 steps, split "val"
    paper  val every 2000 steps, probe every 10000, split "val"

  The probe runs when `evals.probe.phenotypes` names a table (here, or later with
  --config.evals.probe.phenotypes=P); every option exists in the returned config,
  so any can be overridden on the command line.
  """
  if variant not in EVERY:
    raise ValueError(f"unknown variant {variant!r}; expected one of {tuple(EVERY)}")
  val_every, probe_every = EVERY[variant]
  c = ml_collections.ConfigDict()
  c.val = loss_eval(val_every)
  c.probe = probe_eval(probe_every, phenotypes=phenotypes or "")
  if variant == "smoke":
    c.val.split = c.probe.split = "all"
    c.val.max_batches = 2
    c.probe.n_folds = 3
    c.probe.n_seeds = 1
    c.probe.min_samples = 6
    c.probe.min_fold_positives = 1
  return c


class Evaluator(abc.ABC):
  """One entry of config.evals: `run(params, step)` → {metric: float}."""

  def __init__(self, name: str, every: int):
    self.name = name
    self.every = int(every)
    # Why metrics of the last run are NaN (one line each); also logged.
    self.notes: list[str] = []

  @abc.abstractmethod
  def run(self, params: Any, step: int) -> dict[str, float]:
    """Evaluates `params` (the train state's, as laid out there); host floats."""

  def close(self) -> None:
    """Ends the evaluator (a run closes its own data iterator; nothing else is held
    open today, but call it: a later type may hold workers)."""

  def _note(self, text: str) -> None:
    self.notes.append(text)
    logging.warning("%s", text)


def _data_config(config: ml_collections.ConfigDict, name: str,
                 opts: ml_collections.ConfigDict, **fields
                 ) -> tuple[ml_collections.ConfigDict, Any, np.ndarray]:
  """(config.data for evaluation: the evaluator's split and batch size, read
  in-process; the shard set's manifest; the split's clip ids)."""
  data = copy.deepcopy(config.data)
  data.split = str(opts.split)
  if opts.batch_size:
    data.batch_size = int(opts.batch_size)
  data.worker_count = 0  # a run reads the split once: no worker processes to start
  for key, value in fields.items():
    data[key] = value
  try:
    manifest, _ = shards_lib.open_shard_set(data.shards)
    ids = pipeline.select_clips(manifest, data)
  except (ValueError, TypeError, shards_lib.ShardSetError) as e:
    raise ValueError(f"evals.{name}: {e}") from e
  if len(ids) == 0:
    raise ValueError(f"evals.{name}: split {data.split!r} has no clips")
  return data, manifest, ids


def _batches(dataset, mesh: Mesh, data_axes: Sequence[str], max_batches: int):
  """The split's global batches, from the start, at most `max_batches` (0 = all)."""
  batches = pipeline.GlobalBatches(dataset, mesh, tuple(data_axes))
  try:
    for i, batch in enumerate(batches):
      if max_batches and i >= max_batches:
        break
      yield batch
  finally:
    batches.close()


# --- loss ----------------------------------------------------------------------------

def per_example_rules(rules: sharding.Rules, data_axes: Sequence[str]) -> tuple:
  """The rules inside a vmap over examples whose axis is laid out over `data_axes`
  (`spmd_axis_name`): each example's own batch axis (size 1) and every other logical
  axis stay off the data axes."""
  taken = set(data_axes)
  out = []
  for name, axes in rules:
    if name == "batch" or axes is None:
      out.append((name, None))
      continue
    keep = tuple(a for a in ((axes,) if isinstance(axes, str) else axes) if a not in taken)
    out.append((name, keep[0] if len(keep) == 1 else (keep or None)))
  return tuple(out)


def make_loss_fn(model_def: state_lib.ModelDef, data_axes: Sequence[str] | None = None):
  """(params, batch, rng) → per-example metrics f32[B] (LOSS_METRICS), clip_id, valid.

  Each example is its own batch of one, masked with fold_in(rng, clip_id): its loss
  is independent of the batch it comes in (size, padding, order), so a split's mean
  over clips is exact. Padding rows (valid False) come out with loss 0 and are left
  out by the caller.

  Args:
    model_def: the run's module graph.
    data_axes: mesh axes of the batch (vmap's spmd_axis_name); trace under
      `per_example_rules`. None: no layout (no mesh set).
  """

  def loss_fn(params, batch, rng):
    model = model_def.merge(params)

    def one(skeleton, joint_present, valid, clip_id):
      example = {"skeleton": skeleton[None], "joint_present": joint_present[None],
                 "valid": valid[None]}
      key = jax.random.fold_in(rng, jnp.maximum(clip_id, 0))
      _, metrics = model.loss(example, key, train=False)
      return {k: metrics[k] for k in LOSS_METRICS}

    spmd = tuple(data_axes) if data_axes else None
    out = jax.vmap(one, spmd_axis_name=spmd)(
        batch["skeleton"], batch["joint_present"], batch["valid"], batch["clip_id"])
    return {**out, "clip_id": batch["clip_id"], "valid": batch["valid"]}

  return loss_fn


class LossEvaluator(Evaluator):
  """Mean masked-reconstruction loss over the split's clips, overall and per task.

  Metrics `<name>/loss`, `<name>/position`, `<name>/velocity` (means over clips of
  each clip's loss; `model.loss` in evaluation mode: masked, no noise, no dropout)
  and `<name>/loss/<task>`.
  """

  def __init__(self, name: str, opts: ml_collections.ConfigDict,
               config: ml_collections.ConfigDict, mesh: Mesh, rules: sharding.Rules,
               model_def: state_lib.ModelDef):
    super().__init__(name, opts.every)
    data, manifest, ids = _data_config(config, name, opts)
    self.mesh = mesh
    self.data_axes = tuple(config.mesh.data_axes)
    self.rules = per_example_rules(rules, self.data_axes)
    self.max_batches = int(opts.max_batches)
    self.rng = jax.random.key(int(opts.seed))
    self.task_of = manifest["task"].astype(str).to_numpy()  # clip ids are positions
    self.tasks = sorted(set(self.task_of[ids]))
    self.dataset = pipeline.make_dataset(data, train=False)
    self.step_fn = jax.jit(make_loss_fn(model_def, self.data_axes),
                           out_shardings=NamedSharding(mesh, PartitionSpec()))

  def run(self, params: Any, step: int) -> dict[str, float]:
    del step  # the same masks at every step
    self.notes = []
    outs = []
    with sharding.use_rules(self.mesh, self.rules):
      for batch in _batches(self.dataset, self.mesh, self.data_axes, self.max_batches):
        outs.append(self.step_fn(params, batch, self.rng))
    outs = jax.device_get(outs)
    if not outs:
      self._note(f"evals.{self.name}: no batch read")
      return {f"{self.name}/{k}": float("nan") for k in LOSS_METRICS}
    cat = {k: np.concatenate([np.asarray(o[k]) for o in outs]) for k in outs[0]}
    keep = cat["valid"].astype(bool) & (cat["clip_id"] >= 0)
    values = {k: cat[k][keep].astype(np.float64) for k in LOSS_METRICS}
    tasks = self.task_of[cat["clip_id"][keep]]
    out = {f"{self.name}/{k}": float(v.mean()) if len(v) else float("nan")
           for k, v in values.items()}
    for task in self.tasks:
      mine = tasks == task
      out[f"{self.name}/loss/{task}"] = (float(values["loss"][mine].mean()) if mine.any()
                                         else float("nan"))
    return out


# --- probe ---------------------------------------------------------------------------

def probe_scores(x: np.ndarray, y: np.ndarray, binary: np.ndarray, *, n_folds: int,
                 seeds: Sequence[int], alphas: Sequence[float],
                 guard: ml_collections.ConfigDict) -> tuple[np.ndarray, list[str | None]]:
  """Cross-validated ridge probe of every target: (score f64[K], reason per target).

  The probe job's engine and scores on one row per participant: grouped folds ×
  seeds, α per target and outer fold by nested CV, binary targets by a ridge
  classifier. Score: the within-fold Pearson r (continuous) or within-fold AUC of
  the ridge score (binary), averaged over seeds (`stats.fold_scores`); NaN where the
  guard (`probing.job.check_targets`) refuses the target, with its reason.

  Args:
    x: f[N, F] features, one row per participant.
    y: f[N, K] targets (NaN = missing; binary ones 0/1).
    binary: bool[K].
    n_folds, seeds, alphas: folds per seed, the seeds, the penalty grid.
    guard: min_samples, min_positives, min_fold_positives.
  """
  n, k = y.shape
  score = np.full(k, np.nan)
  if n < max(n_folds, 3):
    return score, [f"{n} participants cannot fill {n_folds} folds"] * k
  folds = folds_lib.grouped_folds(np.arange(n), n_folds, tuple(seeds))
  reasons = probe_job.check_targets(y, binary, folds, guard)
  ok = np.array([r is None for r in reasons])
  if ok.any():
    settings = engine.Settings(alphas=tuple(float(a) for a in alphas), binary_model="ridge",
                               logistic_patience=None, mesh=None, target_axis="")
    pred = engine.cross_validate(x, y[:, ok], binary[ok], folds, settings)
    scores = stats.fold_scores(y[:, ok], pred.oof, folds, binary[ok])
    score[ok] = np.where(binary[ok], scores["auc"], scores["r"])
  return score, reasons


def _read_targets(opts: ml_collections.ConfigDict, name: str
                  ) -> tuple[Any, list[str], np.ndarray, dict[str, str]]:
  """(values indexed by participant, targets, binary bool[K], reason per target
  the phenotype reader dropped) of the configured targets."""
  path = str(opts.phenotypes)
  try:
    raw = tables.read_table(path, "phenotype")
  except ValueError as e:
    raise ValueError(f"evals.{name}: {e}") from e
  targets = [str(t) for t in opts.targets]
  missing = [t for t in targets if t not in raw.columns]
  if opts.id_column not in raw.columns or missing:
    raise ValueError(f"evals.{name}: phenotype table {path!r} lacks the column(s) "
                     f"{([opts.id_column] if opts.id_column not in raw.columns else []) + missing}")
  report = tables.Report()
  ph = tables.phenotypes(raw[[opts.id_column] + targets], path, None, str(opts.id_column),
                         report)
  kinds = dict(zip(ph.meta["target"], ph.meta["kind"])) if len(ph.meta) else {}
  dropped = {r["name"]: r["reason"] for r in report.rows if r["scope"] == "target"}
  binary = np.array([kinds.get(t, "binary" if raw[t].nunique() == 2 else "continuous")
                     == "binary" for t in targets])
  values = ph.values.reindex(columns=targets)
  return values, targets, binary, dropped


class ProbeEvaluator(Evaluator):
  """Frozen embeddings of the split's participants → cross-validated ridge probes.

  Metrics `<name>/<target>_r` (continuous) and `<name>/<target>_auc` (binary); NaN
  with a note when the split has too few participants (or a target too few values).
  """

  def __init__(self, name: str, opts: ml_collections.ConfigDict,
               config: ml_collections.ConfigDict, mesh: Mesh, rules: sharding.Rules,
               model_def: state_lib.ModelDef, joints: Sequence[str], num_frames: int):
    super().__init__(name, opts.every)
    # Whole clips, cut into windows of the training crop (as the embed job does).
    data, manifest, _ = _data_config(config, name, opts, crop_frames=0,
                                     max_clips_per_group=int(opts.max_clips_per_group))
    self.values, self.targets, self.binary, self.dropped = _read_targets(opts, name)
    self.split = str(opts.split)
    self.mesh = mesh
    self.rules = tuple(rules)
    self.data_axes = tuple(config.mesh.data_axes)
    self.max_batches = int(opts.max_batches)
    self.n_folds = int(opts.n_folds)
    self.seeds = tuple(int(opts.seed) + s for s in range(int(opts.n_seeds)))
    self.alphas = tuple(float(a) for a in opts.alphas)
    self.guard = ml_collections.ConfigDict({
        "min_samples": int(opts.min_samples), "min_positives": int(opts.min_positives),
        "min_fold_positives": int(opts.min_fold_positives)})
    self.participants, self.person_of = np.unique(
        manifest["participant_id"].astype(str).to_numpy(), return_inverse=True)
    self.dataset = pipeline.make_dataset(data, train=False)
    weights = pooling.region_weights(joints)
    embed = embed_job.make_embed_fn(
        model_def, window=int(num_frames), layer=int(opts.layer), hidden={"none": ()},
        weights=weights, stats=tuple(opts.stats), max_windows=int(opts.max_windows))
    self.embed_fn = jax.jit(lambda p, b: {"x": embed(p, b)["none"], "clip_id": b["clip_id"]},
                            out_shardings=NamedSharding(mesh, PartitionSpec()))

  def metric(self, target: str, binary: bool) -> str:
    return f"{self.name}/{target}_{'auc' if binary else 'r'}"

  def embed(self, params: Any) -> tuple[np.ndarray, np.ndarray]:
    """(participant ids [N], f32[N, F] the mean embedding of each one's clips)."""
    outs = []
    with sharding.use_rules(self.mesh, self.rules):
      for batch in _batches(self.dataset, self.mesh, self.data_axes, self.max_batches):
        outs.append(self.embed_fn(params, batch))
    outs = jax.device_get(outs)
    if not outs:
      return self.participants[:0], np.zeros((0, 0), np.float32)
    x = np.concatenate([np.asarray(o["x"], np.float64) for o in outs])
    clip_id = np.concatenate([np.asarray(o["clip_id"]) for o in outs])
    keep = (clip_id >= 0) & np.isfinite(x).all(axis=1)
    if (~np.isfinite(x[clip_id >= 0])).any():
      self._note(f"evals.{self.name}: {int((clip_id >= 0).sum() - keep.sum())} clip(s) "
                 "with a non-finite embedding left out")
    person = self.person_of[clip_id[keep]]
    sums = np.zeros((len(self.participants), x.shape[1]))
    np.add.at(sums, person, x[keep])
    counts = np.bincount(person, minlength=len(self.participants))
    have = counts > 0
    return self.participants[have], (sums[have] / counts[have, None]).astype(np.float32)

  def run(self, params: Any, step: int) -> dict[str, float]:
    del step
    self.notes = []
    ids, x = self.embed(params)
    # Participants with embeddings and a phenotype row.
    both = [i for i, p in enumerate(ids) if p in self.values.index]
    y = self.values.reindex(ids[both]).to_numpy(np.float64)
    score, reasons = probe_scores(x[both], y, self.binary, n_folds=self.n_folds,
                                  seeds=self.seeds, alphas=self.alphas, guard=self.guard)
    out = {}
    for j, target in enumerate(self.targets):
      key = self.metric(target, bool(self.binary[j]))
      reason = self.dropped.get(target) or reasons[j]
      out[key] = float("nan") if target in self.dropped else float(score[j])
      if reason:
        self._note(f"evals.{self.name}: {key} is NaN: {reason} ({len(both)} "
                   f"participants of split {self.split!r} with phenotypes)")
    return out


# --- build ---------------------------------------------------------------------------

def build(config: ml_collections.ConfigDict, mesh: Mesh, rules: sharding.Rules,
          model_def: state_lib.ModelDef, joints: Sequence[str], num_frames: int
          ) -> list[Evaluator]:
  """The evaluators of `config.evals` whose `every` is > 0 (a probe without a
  phenotype table is off, with a warning).

  Args:
    config: the pretraining config (evals, data, mesh.data_axes).
    mesh, rules: the run's mesh and logical sharding rules.
    model_def: the run's module graph (`model_def.merge(params)`).
    joints: the joint set, in batch order; num_frames: T of the training examples.

  Raises:
    ValueError naming the entry for an unknown type or option, a missing `type` or
    `every`, or a split without clips.
  """
  out: list[Evaluator] = []
  for name, entry in (config.get("evals") or {}).items():
    entry = ml_collections.ConfigDict(entry)
    kind = entry.get("type")
    if kind not in TYPES:
      raise ValueError(f"evals.{name}: unknown type {kind!r}; expected one of {sorted(TYPES)}")
    if "every" not in entry:
      raise ValueError(f"evals.{name}: `every` (steps; 0 = off) is required")
    unknown = sorted(set(entry.keys()) - set(TYPES[kind]) - {"type", "every"})
    if unknown:
      raise ValueError(f"evals.{name}: unknown option(s) {unknown} of type {kind!r}; "
                       f"expected some of {sorted(TYPES[kind])}")
    opts = _eval_config(kind, entry.every, **{k: v for k, v in entry.items()
                                              if k not in ("type", "every")})
    if opts.every <= 0:
      continue
    if kind == "loss":
      out.append(LossEvaluator(name, opts, config, mesh, rules, model_def))
    elif not opts.phenotypes:
      logging.warning("evals.%s: no phenotype table (evals.%s.phenotypes); not run",
                      name, name)
    else:
      out.append(ProbeEvaluator(name, opts, config, mesh, rules, model_def, joints,
                                num_frames))
  return out
