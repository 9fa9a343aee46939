"""The `embed` job: a pretrained encoder's frozen embeddings for every clip of a shard set.

  python -m gait_jax.main --config experiments/embed.py --workdir W \
      --config.checkpoint_dir=PRETRAIN_WORKDIR --config.data.shards=DIR

Reads the pretraining run's config.json and latest checkpoint, encodes every
clip (batched, the batch sharded over the mesh's data axes, bf16 on GPU/TPU with
dtype "auto"), pools each clip into one vector per ablation (`pooling`), reduces a
participant × task's clips by their median (`aggregate`) and writes, streaming:

  W/embeddings.parquet  one row per participant × task × ablation: participant_id,
                        task, ablation, n_clips, checkpoint_step, config_hash, then
                        float32 columns "<region>.<stat>.<channel>"
  W/embed_report.csv    clips whose embedding was not finite, and participant ×
                        task groups left without a usable clip
  W/embed_config.json   this job's config, with the checkpoint step and hash

An ablation zeroes body regions at the input (hidden joints are zeroed and flagged
in the mask channel, as in pretraining): "none", "zero:<region>" (hide that
pooling region's joints) or "only:<region>" (hide all the others).
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

from gait_jax import progress, schema, sharding
from gait_jax.errors import InputError
from gait_jax.data import pipeline
from gait_jax.data import shards as shards_lib
from gait_jax.embedding import aggregate, pooling
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


def make_embed_fn(model_def: state_lib.ModelDef, *, window: int, layer: int,
                  hidden: dict[str, tuple[str, ...]], weights: np.ndarray,
                  stats: Sequence[str]):
  """(params, batch) → {ablation: f32[B, F]}.

  A clip of T frames is cut into floor(T / window) consecutive windows (the
  encoder's training length; the centred frames when T is not a multiple); each
  window is encoded, and the windows' token features are concatenated in time
  before pooling, so a clip's statistics cover all of it.
  """
  def embed(params, batch):
    model = model_def.merge(params)
    skel, present = batch["skeleton"], batch["joint_present"]
    b, t, j, c = skel.shape
    n = t // window
    start = (t - n * window) // 2
    windows = skel[:, start:start + n * window].reshape(b * n, window, j, c)
    present_w = jnp.repeat(present, n, axis=0)
    out = {}
    for name, hide in hidden.items():
      feats = model.encode(windows, present_w, layer=layer, hide_regions=hide)
      feats = feats.reshape(b, n * feats.shape[1], *feats.shape[2:])
      out[name] = pooling.pool(feats, weights, stats)
    return out
  return embed


def _config_hash(pretrain: ml_collections.ConfigDict, config: ml_collections.ConfigDict,
                 step: int) -> str:
  text = json.dumps({"pretrain": json.loads(pretrain.to_json_best_effort()),
                     "embed": {k: json.loads(config.to_json_best_effort())[k]
                               for k in ("layer", "window_frames", "pool", "ablations")},
                     "step": step}, sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:12]


def run(config: ml_collections.ConfigDict, workdir: str) -> pathlib.Path | None:
  """Writes the embeddings (see the module docstring); returns the Parquet file's path
  on process 0 (None when no group had a usable clip)."""
  if not config.checkpoint_dir:
    raise InputError("config.checkpoint_dir (a pretraining run's workdir) is required")
  if not config.data.shards:
    raise InputError("config.data.shards (the shard set to embed) is required")
  out_dir = pathlib.Path(workdir)
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
  weights = pooling.region_weights(joints, regions)
  width = int(pretrain.model.width)
  names = pooling.feature_names(regions, stats, width)
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
  embed = jax.jit(make_embed_fn(encoder.model_def, window=window, layer=int(config.layer),
                                hidden=hidden, weights=weights, stats=stats),
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
  pd.DataFrame(report, columns=["participant_id", "task", "clip_id", "reason"]).to_csv(
      out_dir / "embed_report.csv", index=False)
  meta = json.loads(config.to_json_best_effort())
  meta.update(checkpoint_step=step, config_hash=config_hash, window_frames=window,
              feature_count=len(names), model_dtype=str(pretrain.model.dtype))
  (out_dir / "embed_config.json").write_text(json.dumps(meta, indent=2))
  dt = time.perf_counter() - t0
  print(f"embed: {done_clips} clips → {rows_written} rows ({len(expected)} participant × "
        f"task groups × {len(ablations)} ablations, {len(names)} features) from step "
        f"{step} in {dt:.0f} s ({done_clips / max(dt, 1e-9):.1f} clips/s); "
        f"{len(report)} report rows", flush=True)
  return output
