"""The Grain input pipeline: a shard set → host batches → global `jax.Array`s.

  select_clips    manifest + config filters (task, participant, split) → clip ids
  make_dataset    → grain.IterDataset of this process's batches (numpy)
  make_clip_dataset → grain.MapDataset of raw records with their manifest identity
                  (for jobs on the recording itself: features)
  GlobalBatches   host batches → jax.Arrays sharded over the mesh's data axes,
                  with the Grain iterator's checkpointable state

Order and epochs (training), by `cfg.sampler`:

  "clips"    an epoch visits every selected clip once.
  "windows"  an epoch draws `cfg.windows_per_group` clips, uniformly at random and
             anew each epoch, from every participant × task group: each task weighs
             the same whatever its recording length (published: 2 windows of each
             person's every task per epoch).

The stream is global: epoch e is one permutation of all examples, seeded by
(seed, e) — Grain's `shuffle` folds the epoch into its seed when read past the first
epoch through `repeat` — and window draws and augmentation come from generators
seeded by (seed, global element index), so they differ from epoch to epoch; the
training crop (`crop_frames`) takes a random window of the drawn clip. Global batch
b is elements [b·B, (b+1)·B) of that stream, and process p reads only its rows
[p·B/P, (p+1)·B/P) of each (`_ProcessRows`): no example is read twice or by two
processes, and the global batches are the same whatever the number of processes.
Batches may straddle epoch boundaries; only the last partial global batch of the
whole run is dropped. `epoch_examples` is an epoch's length.

Evaluation: no shuffle, no augmentation, one epoch; each process pads its clips to
the same whole number of batches with copies marked `valid=False` (clip_id -1), so
the union over processes holds every selected clip exactly once.

State: everything is a function of the element index, so the Grain iterator's
state (`get_state()`, a small dict) restores the exact batch stream, with or
without worker processes.
"""

from __future__ import annotations

import hashlib
import pathlib
from collections.abc import Iterator, Sequence
from typing import Any

import grain
import jax
import ml_collections
import numpy as np
import pandas as pd
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gait_jax.data import config as config_lib
from gait_jax.data import shards as shards_lib
from gait_jax.data import transforms as tr


def split_of(participant_id: str, fractions: Sequence[float] = (0.8, 0.1, 0.1),
             seed: int = 0) -> str:
  """"train", "val" or "test" for a participant, from sha256(seed, id) alone."""
  if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
    raise ValueError(f"split_fractions must be 3 non-negative numbers summing to 1, "
                     f"got {tuple(fractions)}")
  digest = hashlib.sha256(f"{seed}\x00{participant_id}".encode()).digest()
  u = int.from_bytes(digest[:8], "big") / 2.0**64  # uniform in [0, 1)
  cumulative = np.cumsum(fractions)
  for name, edge in zip(("train", "val"), cumulative[:2]):
    if u < edge:
      return name
  return "test"


def load_participants(spec: str | Sequence[Any]) -> tuple[str, ...]:
  """Participant ids from a tuple/list, or from a text file (one id per line)."""
  if isinstance(spec, (str, pathlib.Path)):
    path = pathlib.Path(spec)
    if not path.is_file():
      raise ValueError(f"participants={str(spec)!r} is not a file (a single id must "
                       "be given as a 1-tuple)")
    lines = (line.strip() for line in path.read_text().splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))
  return tuple(str(p) for p in spec)


def select_clips(manifest: pd.DataFrame, cfg: ml_collections.ConfigDict) -> np.ndarray:
  """int64[N] clip ids passing the task, participant, split and clips-per-group
  filters, in manifest order (ascending clip id)."""
  keep = np.ones(len(manifest), bool)
  pids = manifest["participant_id"].astype(str)

  def apply(name: str, mask: np.ndarray, value: Any, known: Sequence[str]) -> None:
    keep[:] &= mask
    if not keep.any():
      raise ValueError(f"no clips left after the {name!r} filter ({name}={value!r}); "
                       f"the shard set has {name}: {sorted(set(known))[:20]}")

  if len(manifest) == 0:
    raise ValueError("the shard set has no clips")
  if cfg.tasks:
    tasks = tuple(str(t) for t in cfg.tasks)
    apply("tasks", manifest["task"].isin(tasks).to_numpy(), tasks,
          manifest["task"].astype(str))
  if cfg.participants is not None and len(cfg.participants):
    wanted = load_participants(cfg.participants)
    apply("participants", pids.isin(wanted).to_numpy(), wanted, pids)
  if cfg.split not in config_lib.SPLITS:
    raise ValueError(f"split={cfg.split!r}; expected one of {config_lib.SPLITS}")
  if cfg.split != "all":
    fractions = tuple(cfg.split_fractions)
    splits = {p: split_of(p, fractions, cfg.split_seed) for p in pids.unique()}
    apply("split", pids.map(splits).eq(cfg.split).to_numpy(), cfg.split,
          [f"{s}: {sum(v == s for v in splits.values())} participants"
           for s in ("train", "val", "test")])
  if cfg.get("max_clips_per_group", 0) > 0:
    order = manifest.sort_values("clip_id")[keep[np.argsort(manifest["clip_id"].to_numpy(),
                                                             kind="stable")]]
    rank = order.groupby(["participant_id", "task"], sort=False).cumcount()
    return np.sort(order["clip_id"].to_numpy(np.int64)[
        (rank < int(cfg.max_clips_per_group)).to_numpy()])
  return manifest["clip_id"].to_numpy(np.int64)[keep]


class ClipSource:
  """Random access to chosen records of a shard set: i → {record, clip_id, valid}.

  Entries with valid False are padding: they read `clip_ids[0]`'s record (so shapes
  match) and report clip_id -1.
  """

  def __init__(self, paths: Sequence[str], clip_ids: np.ndarray,
               valid: np.ndarray | None = None):
    self._source = grain.sources.ArrayRecordDataSource(list(paths))
    self._ids = np.asarray(clip_ids, np.int64)
    self._valid = np.ones(len(self._ids), bool) if valid is None else np.asarray(valid, bool)
    if len(self._valid) != len(self._ids):
      raise ValueError("clip_ids and valid differ in length")

  def __len__(self) -> int:
    return len(self._ids)

  def _element(self, i: int, record: bytes) -> dict[str, Any]:
    valid = bool(self._valid[i])
    return {"record": record, "clip_id": int(self._ids[i]) if valid else -1,
            "valid": valid}

  def __getitem__(self, index) -> dict[str, Any]:
    i = int(index)
    return self._element(i, self._source[int(self._ids[i])])

  def _getitems(self, indices: Sequence[int]) -> list[dict[str, Any]]:
    recs = self._source.__getitems__([int(self._ids[int(i)]) for i in indices])
    return [self._element(int(i), r) for i, r in zip(indices, recs)]

  def __repr__(self) -> str:
    return f"ClipSource({len(self)} clips)"


def _eval_clips(ids: np.ndarray, *, local_batch: int, process_index: int,
                process_count: int) -> tuple[np.ndarray, np.ndarray]:
  """This process's (clip ids, valid) for evaluation; see the module docstring."""
  local = ids[process_index::process_count]
  per_process = -(-len(ids) // process_count)
  padded = -(-per_process // local_batch) * local_batch
  valid = np.arange(padded) < len(local)
  filler = np.full(padded - len(local), ids[0], np.int64)
  return np.concatenate([local, filler]), valid


def _groups(manifest: pd.DataFrame, ids: np.ndarray) -> list[np.ndarray]:
  """The clip ids of each participant × task group among `ids`, groups sorted by
  (participant, task)."""
  rows = manifest.set_index("clip_id").loc[ids, ["participant_id", "task"]].astype(str)
  return [np.asarray(group.index, np.int64)
          for _, group in rows.groupby(["participant_id", "task"], sort=True)]


def epoch_examples(cfg: ml_collections.ConfigDict) -> int:
  """Training examples in one epoch of `cfg.sampler` over all processes (see the
  module docstring); one epoch is epoch_examples / batch_size steps."""
  manifest, _ = shards_lib.open_shard_set(cfg.shards)
  ids = select_clips(manifest, cfg)
  if cfg.sampler == "windows":
    return len(_groups(manifest, ids)) * int(cfg.windows_per_group)
  return len(ids)


class _ProcessRows(grain.MapDataset):
  """Process p's rows of each global batch of its parent: element i is the parent's
  (i // L)·B + p·L + i % L, with L = B / P the per-process batch. Placed after the
  random maps, whose draws then depend on the global index alone."""

  def __init__(self, parent: grain.MapDataset, *, global_batch: int, process_index: int,
               process_count: int):
    super().__init__(parent)
    self._global = int(global_batch)
    self._local = self._global // int(process_count)
    self._offset = int(process_index) * self._local
    self._length = len(parent) // self._global * self._local

  def __len__(self) -> int:
    return self._length

  def _parent_index(self, index: int) -> int:
    batch, row = divmod(int(index), self._local)
    return batch * self._global + self._offset + row

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    return self._parent[self._parent_index(index)]

  def _getitems(self, indices: Sequence[int]) -> list[Any]:
    return self._parent._getitems([self._parent_index(i) for i in indices])  # pylint: disable=protected-access

  def __str__(self) -> str:
    return f"_ProcessRows(rows {self._offset}:{self._offset + self._local} of {self._global})"


class _GroupSlots:
  """Random access to the window sampler's slots of one epoch: i → {"group": g}."""

  def __init__(self, num_groups: int, windows: int):
    self._groups = np.repeat(np.arange(num_groups, dtype=np.int64), windows)

  def __len__(self) -> int:
    return len(self._groups)

  def __getitem__(self, index) -> dict[str, Any]:
    return {"group": int(self._groups[int(index)])}


class _DrawWindow(grain.transforms.RandomMap):
  """{"group"} → {"record", "clip_id", "valid"}: a uniformly random clip of the group."""

  def __init__(self, paths: Sequence[str], groups: list[np.ndarray]):
    self._paths = list(paths)
    self._groups = groups
    self._source = None

  def random_map(self, element: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    if self._source is None:  # opened in the process that reads (workers included)
      self._source = grain.sources.ArrayRecordDataSource(self._paths)
    clips = self._groups[element["group"]]
    clip = int(clips[rng.integers(len(clips))])
    return {"record": self._source[clip], "clip_id": clip, "valid": True}


def _stream_seed(seed: int, purpose: str) -> int:
  """A 32-bit seed for the training stream's draws (`purpose`: "augment",
  "window"), so that one draw does not shadow another."""
  digest = hashlib.sha256(f"{purpose}\x00{seed}\x000".encode()).digest()
  return int.from_bytes(digest[:4], "big")


def make_dataset(cfg: ml_collections.ConfigDict, *, train: bool,
                 process_index: int | None = None,
                 process_count: int | None = None) -> grain.IterDataset:
  """This process's batches: dicts of numpy arrays with leading dim B/P.

  Batch fields (B/P = batch_size // process_count):
    skeleton f32[B/P, T', J', 4], joint_present f32[B/P, J'], clip_id i32[B/P],
    valid bool[B/P] (all True in training; False marks evaluation padding).

  Args:
    cfg: a `config.get_data_config()` config.
    train: shuffled, augmented, `num_epochs` epochs, last partial batch dropped;
      else one epoch in clip-id order, no augmentation, padded last batch.
    process_index, process_count: default to JAX's.
  """
  if not cfg.shards:
    raise ValueError("cfg.shards (the shard set directory) is required")
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if cfg.batch_size <= 0 or cfg.batch_size % process_count:
    raise ValueError(f"batch_size={cfg.batch_size} must be a positive multiple of the "
                     f"process count {process_count}")
  local_batch = cfg.batch_size // process_count
  opts = tr.TransformOptions.from_config(cfg)

  manifest, paths = shards_lib.open_shard_set(cfg.shards)
  ids = select_clips(manifest, cfg)
  if cfg.sampler not in config_lib.SAMPLERS:
    raise ValueError(f"sampler={cfg.sampler!r}; expected one of {config_lib.SAMPLERS}")
  if not train:
    local_ids, valid = _eval_clips(ids, local_batch=local_batch, process_index=process_index,
                                   process_count=process_count)
    ds = grain.MapDataset.source(ClipSource(paths, local_ids, valid))
    ds = ds.map(tr.DecodeRecord()).map(tr.EvalTransform(opts))
    ds = ds.batch(local_batch, drop_remainder=False)  # padded: every batch is full
    return to_iter_dataset(ds, cfg)

  if cfg.sampler == "windows":
    groups = _groups(manifest, ids)
    ds = grain.MapDataset.source(_GroupSlots(len(groups), int(cfg.windows_per_group)))
  else:
    ds = grain.MapDataset.source(ClipSource(paths, ids, np.ones(len(ids), bool)))
  if len(ds) < cfg.batch_size:
    raise ValueError(f"an epoch of {len(ds)} examples ({cfg.sampler} sampler) is shorter "
                     f"than the global batch of {cfg.batch_size}")
  ds = ds.seed(cfg.seed)
  if cfg.shuffle:
    # Shuffle before repeat: each epoch is one permutation, seeded by (seed, epoch).
    ds = ds.shuffle()
  ds = ds.repeat(cfg.num_epochs)
  if cfg.sampler == "windows":
    ds = ds.seed(_stream_seed(cfg.seed, "window"))
    ds = ds.random_map(_DrawWindow(paths, groups))
  ds = ds.map(tr.DecodeRecord())
  ds = ds.seed(_stream_seed(cfg.seed, "augment"))
  ds = ds.random_map(tr.TrainTransform(opts))
  if process_count > 1:
    ds = _ProcessRows(ds, global_batch=cfg.batch_size, process_index=process_index,
                      process_count=process_count)
  ds = ds.batch(local_batch, drop_remainder=True)
  return to_iter_dataset(ds, cfg)


def to_iter_dataset(ds: grain.MapDataset, cfg: ml_collections.ConfigDict
                    ) -> grain.IterDataset:
  """`ds` read with the config's threads and prefetch, its maps run in
  `cfg.worker_count` worker processes (0 = in this process)."""
  read = grain.ReadOptions(num_threads=cfg.read_threads,
                           prefetch_buffer_size=cfg.prefetch)
  it_ds = ds.to_iter_dataset(read)
  if cfg.worker_count > 0:
    _mark_flags_parsed()
    it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=cfg.worker_count, per_worker_buffer_size=cfg.worker_buffer_size))
  return it_ds


class _ReportedClipSource(ClipSource):
  """A ClipSource whose elements also carry the manifest's participant_id and task,
  and where a record the shard cannot give back (e.g. a corrupt chunk) comes as
  record b"" with its `error` instead of raising, so a job can report it and go on."""

  def __init__(self, paths: Sequence[str], rows: pd.DataFrame):
    super().__init__(paths, rows["clip_id"].to_numpy())
    self._identity = rows[["participant_id", "task"]].astype(str).to_dict("records")

  def _element(self, i: int, record: bytes, error: str = "") -> dict[str, Any]:
    return {**super()._element(i, record), **self._identity[i], "error": error}

  def __getitem__(self, index) -> dict[str, Any]:
    i = int(index)
    try:
      record, error = self._source[int(self._ids[i])], ""
    except Exception as e:  # pylint: disable=broad-except
      record, error = b"", str(e) or type(e).__name__
    return self._element(i, record, error)

  def _getitems(self, indices: Sequence[int]) -> list[dict[str, Any]]:
    try:
      return super()._getitems(indices)
    except Exception:  # pylint: disable=broad-except
      return [self[i] for i in indices]


def make_clip_dataset(cfg: ml_collections.ConfigDict) -> grain.MapDataset:
  """Every clip `select_clips` keeps, as its raw record with its manifest identity,
  for jobs that work on the recording rather than on a model example (features).

  Evaluation mode without the model's transforms: clip-id order, no shuffle,
  augmentation, cropping, centring, scaling or padding, all clips in this process.
  Elements: {"record": bytes, "error": str, "clip_id": int, "valid": True,
  "participant_id": str, "task": str}; an unreadable record has record b"" and its
  error. Map the job's own transforms on it and read it with `to_iter_dataset`.
  """
  if not cfg.shards:
    raise ValueError("cfg.shards (the shard set directory) is required")
  manifest, paths = shards_lib.open_shard_set(cfg.shards)
  rows = manifest.iloc[select_clips(manifest, cfg)]  # clip ids are manifest positions
  return grain.MapDataset.source(_ReportedClipSource(paths, rows))


def _mark_flags_parsed() -> None:
  """Grain's worker processes read absl flags, which a library caller never parsed."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def batch_sharding(mesh: Mesh, data_axes: str | Sequence[str]) -> NamedSharding:
  """Leading (batch) dimension split over `data_axes`, the rest replicated."""
  axes = (data_axes,) if isinstance(data_axes, str) else tuple(data_axes)
  unknown = [a for a in axes if a not in mesh.axis_names]
  if not axes or unknown:
    raise ValueError(f"data_axes {axes} must be axes of the mesh {mesh.axis_names}")
  return NamedSharding(mesh, PartitionSpec(axes if len(axes) > 1 else axes[0]))


def batch_spec(batch_size: int, frames: int, joints: int,
               sharding: NamedSharding | None = None) -> dict[str, jax.ShapeDtypeStruct]:
  """The global batch's shapes and dtypes (`make_dataset`'s fields × process count),
  for compiling a step without reading data."""
  def spec(shape, dtype):
    return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)
  return {"skeleton": spec((batch_size, frames, joints, 4), np.float32),
          "joint_present": spec((batch_size, joints), np.float32),
          "clip_id": spec((batch_size,), np.int32), "valid": spec((batch_size,), np.bool_)}


def to_global(batch: dict[str, np.ndarray], sharding: NamedSharding
              ) -> dict[str, jax.Array]:
  """This process's batch → global jax.Arrays (batch dim × process_count)."""
  spec = sharding.spec[0]
  axes = (spec,) if isinstance(spec, str) else tuple(spec)
  shards = int(np.prod([sharding.mesh.shape[a] for a in axes]))
  local = next(iter(batch.values())).shape[0]
  global_batch = local * jax.process_count()
  if global_batch % shards:
    raise ValueError(f"global batch size {global_batch} is not divisible by the "
                     f"{shards} devices along the mesh's data axes {axes}")
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}


class GlobalBatches(Iterator[dict[str, jax.Array]]):
  """Iterates a host dataset as global batches laid out over the mesh's data axes.

  `get_state()` / `set_state()` are the Grain iterator's: store the state in the
  checkpoint, and a fresh `GlobalBatches` with the state set yields exactly the
  batches the saved one would have yielded next.
  """

  def __init__(self, dataset: grain.IterDataset, mesh: Mesh,
               data_axes: str | Sequence[str] = ("data",)):
    self.sharding = batch_sharding(mesh, data_axes)
    self.iterator = iter(dataset)

  def __iter__(self) -> GlobalBatches:
    return self

  def __next__(self) -> dict[str, jax.Array]:
    return to_global(next(self.iterator), self.sharding)

  def get_state(self) -> dict[str, Any]:
    return self.iterator.get_state()

  def set_state(self, state: dict[str, Any]) -> None:
    self.iterator.set_state(state)

  def close(self) -> None:
    """Stops worker processes (if any) now rather than at garbage collection."""
    close = getattr(self.iterator, "close", None)
    if close is not None:
      close()
