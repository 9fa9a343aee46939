"""The clip record: how one fixed-length skeleton clip is stored in a shard.

A record is bytes, without pickle, readable from any language:

  b"GJCL" | u16 version | u32 header length | header (UTF-8 JSON) | array bytes

The header holds the clip's identity (participant, task, session, source file,
start frame, fps, free-form string metadata) and, under "arrays", the name, dtype
(little-endian numpy string) and shape of each array, stored back to back:

  positions  f32[T, 32, 3]  metres, canonical skeleton and frame; 0 for joints not
                            present, NaN where a present joint outside QC's
                            required set was not observed (an unfillable gap)
  confidence f32[T, 32]     in [0, 1]; 0 where a joint is missing or interpolated
  present    u8[32]         1 where the source layout provides the joint
"""

from __future__ import annotations

import dataclasses
import json
import struct
from typing import Any

import numpy as np

MAGIC = b"GJCL"
VERSION = 1
_PREFIX = struct.Struct("<4sHI")


@dataclasses.dataclass
class Clip:
  """A fixed-length clip on the canonical skeleton (see module docstring)."""
  positions: np.ndarray
  confidence: np.ndarray
  present: np.ndarray
  participant_id: str
  task: str
  session: str
  source: str
  start_frame: int
  fps: float
  meta: dict[str, str] = dataclasses.field(default_factory=dict)

  @property
  def num_frames(self) -> int:
    return int(self.positions.shape[0])


_ARRAYS = (("positions", "<f4"), ("confidence", "<f4"), ("present", "|u1"))


def encode(clip: Clip) -> bytes:
  """Serialises a clip to record bytes."""
  arrays = [np.ascontiguousarray(getattr(clip, name), dtype=dtype)
            for name, dtype in _ARRAYS]
  header = {
      "participant_id": clip.participant_id, "task": clip.task,
      "session": clip.session, "source": clip.source,
      "start_frame": int(clip.start_frame), "fps": float(clip.fps),
      "meta": {str(k): str(v) for k, v in clip.meta.items()},
      "arrays": [[name, dtype, list(a.shape)]
                 for (name, dtype), a in zip(_ARRAYS, arrays)],
  }
  header_bytes = json.dumps(header, sort_keys=True).encode()
  return b"".join([_PREFIX.pack(MAGIC, VERSION, len(header_bytes)), header_bytes]
                  + [a.tobytes() for a in arrays])


def decode_header(record: bytes) -> tuple[dict[str, Any], int]:
  """Returns the header dict and the offset where array bytes begin."""
  if len(record) < _PREFIX.size:
    raise ValueError(f"record of {len(record)} bytes is too short")
  magic, version, header_len = _PREFIX.unpack_from(record)
  if magic != MAGIC:
    raise ValueError(f"not a clip record (magic {magic!r})")
  if version != VERSION:
    raise ValueError(f"clip record version {version}, this code reads {VERSION}")
  start = _PREFIX.size
  header = json.loads(record[start:start + header_len])
  return header, start + header_len


def decode_arrays(record: bytes) -> dict[str, np.ndarray]:
  """The record's arrays only (the hot path of the input pipeline); zero-copy."""
  header, offset = decode_header(record)
  arrays = {}
  for name, dtype, shape in header["arrays"]:
    count = int(np.prod(shape))
    arrays[name] = np.frombuffer(record, dtype, count, offset).reshape(shape)
    offset += count * np.dtype(dtype).itemsize
  if offset != len(record):
    raise ValueError(f"record has {len(record) - offset} trailing bytes")
  return arrays


def decode(record: bytes) -> Clip:
  """Record bytes → Clip (arrays are read-only views into `record`)."""
  header, _ = decode_header(record)
  arrays = decode_arrays(record)
  return Clip(
      positions=arrays["positions"], confidence=arrays["confidence"],
      present=arrays["present"].astype(bool),
      participant_id=header["participant_id"], task=header["task"],
      session=header["session"], source=header["source"],
      start_frame=header["start_frame"], fps=header["fps"], meta=header["meta"])
