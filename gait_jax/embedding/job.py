r"""The `embed` job: a pretrained encoder's frozen embeddings for every clip of a shard set.

  python -m gait_jax.main --config experiments/embed.py --workdir W \
      --config.checkpoint_dir=PRETRAIN_WORKDIR --config.data.shards=DIR

Reads the pretraining run's config.json and latest checkpoint, encodes every
clip (batched, the batch sharded over the mesh's data axes, bf16 on GPU/TPU with
dtype "auto"), pools each clip into one vector per ablation (`pooling`), reduces a
participant × task's clips by their median (`aggregate`) and writes, streaming:

  W/embeddings.parquet  one row per participant × task × ablation: participant_id,
                        task, ablation, n_clips, checkpoint_step, config_hash, then
                        float32 columns "<region>.<stat>.<channel>" (pool.by
                        "joint": "<joint>.<stat>.<channel>")
  W/embed_report.csv    clips whose embedding was not finite, and participant ×
                        task groups left without a usable clip
  W/embed_config.json   this job's config, with the checkpoint step and hash

and to the job's W&B run (`tracking`, job_type "embed", in W/wandb): clips, rows,
groups, seconds, clips/s and the exclusions counted per kind of reason (a table;
nothing per participant).

An ablation zeroes body regions at the input (hidden joints are zeroed and flagged
in the mask channel, as in pretraining): "none", "zero:<region>" (hide that
pooling region's joints) or "only:<region>" (hide all the others). A batch's
ablations go through the encoder as one forward pass over the stacked batch
(`make_embed_fn`), on top of the model's own masking.always_hide.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from gait_jax import progress, schema, sharding, tracking
from gait_jax.errors import InputError
from gait_jax.data import pipeline
from gait_jax.data import shards as shards_lib
from gait_jax.embedding import aggregate, pooling
from gait_jax.models import masking
from gait_jax.train import state as state_lib

def ablation_regions(ablation: str, regions: Sequence[tuple[str, Sequence[str]]]
                     ) -> tuple[str, ...]:
  """Masking regions an ablation hides: "none", "zero:<region>", "only:<region>"."""
  if ablation == "none":
    return ()
  kind, _, name = ablation.partition(":")
  by_name = {n: tuple(parts) for n, parts in regions}
  if kind not in ("zero", "only") or name not in by_name:
    raise ValueError(f"ablation {ablation!r}; expected 'none', 'zero:<region>' or "
                     f"'only:<region>' with a region from {sorted(by_name)}")
  if kind == "zero":
    return by_name[name]
  return tuple(p for n, parts in regions if n != name for p in parts)


def _window_frames(config: ml_collections.ConfigDict,
                   pretrain: ml_collections.ConfigDict, clip_frames: int) -> int:
  window = int(config.window_frames)
  if window < 0:
    window = int(pretrain.data.crop_frames) or clip_frames
  if window == 0:
    window = clip_frames
  if window > clip_frames:
    raise InputError(f"window_frames={window} exceeds the clips' {clip_frames} frames")
  return window


def ablation_masks(hidden: dict[str, tuple[str, ...]], joints: Sequence[str]
                   ) -> np.ndarray:
  """bool[A, J]: the joints each ablation hides (rows in `hidden`'s order).

  Args:
    hidden: ablation name → the masking regions it hides (`ablation_regions`).
    joints: the model's joint set, in batch order.
  """
  regions = masking.region_ids(joints)
  return np.stack([np.isin(regions, masking.region_index(parts))
                   for parts in hidden.values()])


def make_embed_fn(model_def: state_lib.ModelDef, *, window: int, layer: int,
                  hidden: dict[str, tuple[str, ...]], weights: np.ndarray,
                  stats: Sequence[str], per_pass: int = 0, max_windows: int = 0):
  """(params, batch) → {ablation: f32[B, F]}.

  A clip of T frames is cut into n = floor(T / window) consecutive windows (the
  encoder's training length; the centred frames when T is not a multiple; at most
  `max_windows` central ones when it is > 0); each
  window is encoded, and the windows' token features are concatenated in time
  before pooling, so a clip's statistics cover all of it.

  The A ablations go through the encoder together: one forward pass over a
  stacked batch of B·A·n rows [B·A·n, window, J, C] (clip-major, so the batch's
  sharding over clips carries over), each row hiding its ablation's joints with
  a per-row mask (`encode(..., hidden=)`; the model's own masking.always_hide
  applies on top). `per_pass` k ≥ 1 stacks k ablations per pass instead (still
  one jitted function); 0 = all in one.
  """
  names = tuple(hidden)
  per_pass = per_pass if per_pass > 0 else len(names)
  passes = [names[i:i + per_pass] for i in range(0, len(names), per_pass)]

  def embed(params, batch):
    model = model_def.merge(params)
    skel, present = batch["skeleton"], batch["joint_present"]
    b, t, j, c = skel.shape
    n = t // window if max_windows <= 0 else min(t // window, max_windows)
    start = (t - n * window) // 2
    windows = skel[:, start:start + n * window].reshape(b, 1, n, window, j, c)
    out = {}
    for group in passes:
      a = len(group)
      rows = jnp.broadcast_to(windows, (b, a, n, window, j, c)).reshape(-1, window, j, c)
      hide = ablation_masks({k: hidden[k] for k in group}, model.joints)
      hide = jnp.broadcast_to(hide[None, :, None, None], (b, a, n, window, j))
      feats = model.encode(rows, jnp.repeat(present, a * n, axis=0), layer=layer,
                           hidden=hide.reshape(-1, window, j))  # [B·a·n, T', J, D]
      feats = feats.reshape(b * a, n * feats.shape[1], *feats.shape[2:])
      pooled = pooling.pool(feats, weights, stats).reshape(b, a, -1)
      out.update({name: pooled[:, i] for i, name in enumerate(group)})
    return out
  return embed


def ablations_per_pass(config: ml_collections.ConfigDict, platform: str) -> int:
  """config.ablations_per_pass resolved for a device platform ("cpu", "gpu", ...):
  -1 = all in one pass on accelerators, one per pass on CPU."""
  per_pass = int(config.ablations_per_pass)
  if per_pass == -1:
    return 1 if platform == "cpu" else len(config.ablations)
  if per_pass < 1:
    raise InputError(f"ablations_per_pass={per_pass}; expected -1 (auto) or >= 1")
  return per_pass


def _config_hash(pretrain: ml_collections.ConfigDict, config: ml_collections.ConfigDict,
                 step: int) -> str:
  embed = {k: json.loads(config.to_json_best_effort())[k]
           for k in ("layer", "window_frames", "max_windows", "pool", "ablations")}
  if embed["pool"].get("by") == "region":  # the published pooling keeps its old hash
    del embed["pool"]["by"]
  text = json.dumps({"pretrain": json.loads(pretrain.to_json_best_effort()),
                     "embed": embed, "step": step}, sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:12]


def exclusion_counts(report: pd.DataFrame) -> pd.DataFrame:
  """The report (participant_id, task, clip_id, reason rows) as counts per kind of
  reason (`tracking.reason_kind`), nothing per participant: reason, rows (report
  rows), clips (rows about one clip), groups (distinct participant × task)."""
  frame = pd.DataFrame({
      "reason": report["reason"].map(tracking.reason_kind),
      "clip": (report["clip_id"] >= 0).astype(int),
      "group": report["participant_id"].astype(str) + "\0" + report["task"].astype(str)})
  counts = frame.groupby("reason", sort=True).agg(
      rows=("clip", "size"), clips=("clip", "sum"), groups=("group", "nunique"))
  return counts.reset_index().astype({"rows": int, "clips": int, "groups": int})


def run(config: ml_collections.ConfigDict, workdir: str) -> pathlib.Path | None:
  """Writes the embeddings (see the module docstring); returns the Parquet file's path
  on process 0 (None when no group had a usable clip). Counts and timings go to
  the job's W&B run (`tracking`, job_type "embed")."""
  if not config.checkpoint_dir:
    raise InputError("config.checkpoint_dir (a pretraining run's workdir) is required")
  if not config.data.shards:
    raise InputError("config.data.shards (the shard set to embed) is required")
  with tracking.start(config, workdir, "embed") as tracker:
    return _embed(config, pathlib.Path(workdir), tracker)


def _embed(config: ml_collections.ConfigDict, out_dir: pathlib.Path,
           tracker: tracking.Tracker) -> pathlib.Path | None:
  main_process = jax.process_index() == 0
  if main_process:
    out_dir.mkdir(parents=True, exist_ok=True)
  t0 = time.perf_counter()

  # --- The pretrained model -------------------------------------------------------
  mesh = sharding.make_mesh(tuple(tuple(a) for a in config.mesh.axes),
                            axis_type=config.mesh.axis_type)
  encoder = state_lib.load_encoder(config.checkpoint_dir, mesh, str(config.dtype))
  pretrain, joints, params, step = encoder.config, encoder.joints, encoder.params, encoder.step
  manifest, _ = shards_lib.open_shard_set(config.data.shards)
  clip_frames = int(manifest["frames"].iloc[0])
  window = _window_frames(config, pretrain, clip_frames)

  regions = tuple((str(n), tuple(p)) for n, p in config.pool.regions)
  stats = tuple(config.pool.stats)
  ablations = tuple(config.ablations)
  hidden = {a: ablation_regions(a, regions) for a in ablations}
  rows, weights = pooling.pool_weights(joints, regions, str(config.pool.by))
  width = int(pretrain.model.width)
  names = pooling.feature_names(rows, stats, width)
  config_hash = _config_hash(pretrain, config, step)

  # --- Data -------------------------------------------------------------------------
  data_cfg = config.data
  ids = pipeline.select_clips(manifest, data_cfg)
  clips = manifest.set_index("clip_id").loc[ids, ["participant_id", "task"]]

  groups = clips.groupby(["participant_id", "task"], sort=False).size()
  expected = {(str(p), str(t)): int(n) for (p, t), n in groups.items()}
  group_of = {int(c): (str(p), str(t)) for c, p, t in
              zip(clips.index, clips["participant_id"], clips["task"])}
  dataset = pipeline.make_dataset(data_cfg, train=False)
  batches = pipeline.GlobalBatches(dataset, mesh, tuple(config.mesh.data_axes))
  per_pass = ablations_per_pass(config, mesh.devices.flat[0].platform)
  embed = jax.jit(make_embed_fn(encoder.model_def, window=window, layer=int(config.layer),
                                hidden=hidden, weights=weights, stats=stats,
                                per_pass=per_pass, max_windows=int(config.max_windows)),
                  in_shardings=(encoder.shardings, batches.sharding),
                  out_shardings=NamedSharding(mesh, PartitionSpec()))

  # --- Stream: embed, reduce per participant × task, write ---------------------------
  reducer = aggregate.GroupReducer(expected, ablations, str(config.person_reduce))
  report: list[dict[str, object]] = []
  writer = None
  table_schema = schema.arrow_schema(names)
  keys = schema.KEY_COLUMNS + schema.META_COLUMNS
  pending: list[dict[str, object]] = []
  rows_written = 0
  done_clips = 0
  emitted: set[tuple[str, str]] = set()

  def flush(force: bool = False) -> None:
    nonlocal writer, rows_written
    if not main_process or not pending or (len(pending) < 256 and not force):
      return
    matrix = np.stack([r["vector"] for r in pending])
    columns = [pa.array([r[k] for r in pending], type=table_schema.field(k).type)
               for k in keys]
    columns += [pa.array(matrix[:, i]) for i in range(matrix.shape[1])]
    table = pa.Table.from_arrays(columns, schema=table_schema)
    if writer is None:
      writer = pq.ParquetWriter(out_dir / "embeddings.parquet.tmp", table_schema)
    writer.write_table(table)
    rows_written += len(pending)
    pending.clear()

  bar = progress.bar(total=len(ids), desc="embed", unit="clip")
  try:
    for batch in batches:
      out = embed(params, batch)
      if jax.process_count() > 1:
        clip_id = multihost_utils.process_allgather(batch["clip_id"], tiled=True)
      else:
        clip_id = np.asarray(batch["clip_id"])
      out = {k: np.asarray(v) for k, v in out.items()}
      for i, cid in enumerate(np.asarray(clip_id)):
        if cid < 0:  # padding of the last batch
          continue
        group = group_of[int(cid)]
        vectors = {k: v[i] for k, v in out.items()}
        bad = [k for k, v in vectors.items() if not np.isfinite(v).all()]
        if bad:
          report.append({"participant_id": group[0], "task": group[1], "clip_id": int(cid),
                         "reason": f"non_finite_embedding ({', '.join(bad)})"})
          vectors = None
        done_clips += 1
        for (pid, task), n_clips, reduced in reducer.add(group, vectors):
          emitted.add((pid, task))
          for ablation, vec in reduced.items():
            pending.append({"participant_id": pid, "task": task, "ablation": ablation,
                            "n_clips": n_clips, "checkpoint_step": step,
                            "config_hash": config_hash, "vector": vec})
        flush()
      bar.update(int((np.asarray(clip_id) >= 0).sum()))
      # W&B's own step: a re-run resumes the run past its last step.
      elapsed = time.perf_counter() - t0
      tracker.log({"clips": done_clips, "clips_per_s": done_clips / max(elapsed, 1e-9)})
  finally:
    bar.close()
    batches.close()
  flush(force=True)

  for (pid, task), (seen, n) in reducer.incomplete().items():
    report.append({"participant_id": pid, "task": task, "clip_id": -1,
                   "reason": f"incomplete: {seen} of {n} clips read"})
  with_bad_clips = {(r["participant_id"], r["task"]) for r in report
                    if r["reason"].startswith("non_finite")}
  if not main_process:
    return None
  output = None
  if writer is not None:
    writer.close()
    output = out_dir / "embeddings.parquet"
    (out_dir / "embeddings.parquet.tmp").replace(output)
  for group in sorted(with_bad_clips - emitted):
    report.append({"participant_id": group[0], "task": group[1], "clip_id": -1,
                   "reason": "no_usable_clip"})
  report_frame = pd.DataFrame(report, columns=["participant_id", "task", "clip_id", "reason"])
  report_frame.to_csv(out_dir / "embed_report.csv", index=False)
  meta = json.loads(config.to_json_best_effort())
  meta.update(checkpoint_step=step, config_hash=config_hash, window_frames=window,
              feature_count=len(names), model_dtype=str(pretrain.model.dtype))
  (out_dir / "embed_config.json").write_text(json.dumps(meta, indent=2))
  dt = time.perf_counter() - t0
  print(f"embed: {done_clips} clips → {rows_written} rows ({len(expected)} participant × "
        f"task groups × {len(ablations)} ablations, {len(names)} features) from step "
        f"{step} in {dt:.0f} s ({done_clips / max(dt, 1e-9):.1f} clips/s); "
        f"{len(report)} report rows", flush=True)
  excluded = exclusion_counts(report_frame)
  tracker.summary({
      "clips": done_clips, "rows": rows_written, "groups": len(expected),
      "groups_written": len(emitted), "ablations": len(ablations),
      "features": len(names), "checkpoint_step": step, "window_frames": window,
      "seconds": dt, "clips_per_s": done_clips / max(dt, 1e-9),
      "report_rows": len(report),
      **{f"excluded/{tracking.slug(r)}": int(n)
         for r, n in zip(excluded["reason"], excluded["rows"])}})
  tracker.table("excluded", excluded)
  return output
