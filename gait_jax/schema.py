"""The participant × task tables that the stages exchange: one contract, written once.

The embed job (`embeddings.parquet`) and the features job (`features.parquet`) write,
and the probe (and the report) read, a table with

  key columns       participant_id (str), task (str), ablation (str)
  metadata columns  n_clips (int), checkpoint_step (int), config_hash (str); optional
  feature columns   float, named in the Parquet schema's metadata (FEATURES_KEY) by
                    the job that wrote them

A table from elsewhere (another model's embeddings, a lab's feature sheet; CSV or
Parquet without that metadata) needs only participant_id: a missing task column
makes the table one view (task ALL_TASKS), a missing ablation column means
"none", and its feature columns are the remaining columns, which must be numeric
(non-numeric ones are reported and left out, by the reader).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gait_jax.errors import InputError

PARTICIPANT = "participant_id"
TASK = "task"
ABLATION = "ablation"
KEY_COLUMNS = (PARTICIPANT, TASK, ABLATION)
META_COLUMNS = ("n_clips", "checkpoint_step", "config_hash")
# The task of a table without a task column, and the ablation of one without ablations.
ALL_TASKS = "all"
NO_ABLATION = "none"
FEATURES_KEY = b"gait_jax.feature_columns"

_KEY_TYPES = {PARTICIPANT: pa.string(), TASK: pa.string(), ABLATION: pa.string(),
              "n_clips": pa.int32(), "checkpoint_step": pa.int64(),
              "config_hash": pa.string()}


def arrow_schema(features: Sequence[str], meta: Sequence[str] = META_COLUMNS,
                 feature_type: pa.DataType = pa.float32()) -> pa.Schema:
  """The Parquet schema of a table with these metadata and feature columns, the
  feature names recorded in its metadata."""
  fields = [(c, _KEY_TYPES[c]) for c in KEY_COLUMNS + tuple(meta)]
  fields += [(f, feature_type) for f in features]
  return pa.schema(fields, metadata={FEATURES_KEY: json.dumps(list(features)).encode()})


def write_table(frame: pd.DataFrame, features: Sequence[str], path: str | os.PathLike,
                meta: Sequence[str] = META_COLUMNS,
                feature_type: pa.DataType = pa.float64()) -> None:
  """Writes `frame` (key, metadata and feature columns) as a schema table."""
  schema = arrow_schema(features, meta, feature_type)
  table = pa.Table.from_pandas(frame[list(schema.names)], schema=schema, preserve_index=False)
  pq.write_table(table, path)


def read_table(path: str | os.PathLike) -> tuple[pd.DataFrame, list[str]]:
  """(table with the key columns filled in, its feature columns).

  Raises InputError naming the file when it is missing, unreadable or has no
  participant_id column. Feature columns: those the writer named, else every column
  that is not a key or metadata column.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise InputError(f"feature table {path!r} does not exist")
  named = None
  try:
    if path.endswith((".parquet", ".pq")):
      raw = pq.read_table(path)
      meta = raw.schema.metadata or {}
      if FEATURES_KEY in meta:
        named = json.loads(meta[FEATURES_KEY])
      frame = raw.to_pandas()
    else:
      frame = pd.read_csv(path)
  except Exception as e:  # pylint: disable=broad-except
    raise InputError(f"feature table {path!r} could not be read: {e}") from e
  if PARTICIPANT not in frame.columns:
    raise InputError(f"feature table {path!r} has no {PARTICIPANT!r} column")
  frame[PARTICIPANT] = frame[PARTICIPANT].astype(str)
  if TASK not in frame.columns:
    frame[TASK] = ALL_TASKS
  if ABLATION not in frame.columns:
    frame[ABLATION] = NO_ABLATION
  frame[TASK] = frame[TASK].astype(str)
  frame[ABLATION] = frame[ABLATION].astype(str)
  if named is not None:
    missing = [c for c in named if c not in frame.columns]
    if missing:
      raise InputError(f"feature table {path!r} lacks {len(missing)} of the feature "
                       f"columns its metadata names, e.g. {missing[0]!r}")
    return frame, list(named)
  reserved = set(KEY_COLUMNS) | set(META_COLUMNS)
  return frame, [c for c in frame.columns if c not in reserved]
