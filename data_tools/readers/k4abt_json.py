"""Azure Kinect Body Tracking JSON, as Microsoft's `offline_processor` writes it.

Schema (Azure-Kinect-Samples/body-tracking-samples/offline_processor):
  {"k4abt_sdk_version": str, "source_file": str, "joint_names": [32 names],
   "bone_list": [...], "frames": [{"frame_id": int, "timestamp_usec": int,
   "num_bodies": int, "bodies": [{"body_id": int,
   "joint_positions": [[x, y, z] x 32] millimetres (camera frame),
   "joint_orientations": [[w, x, y, z] x 32],
   "joint_confidence_levels": [0..3 x 32] (optional, newer writers only)}]}]}

One recording follows ONE person (`follow_one_body`): the body id seen in the most
frames; if the tracker re-assigns ids mid-walk, the body nearest the last chosen
pelvis (within 0.5 m) takes over. Frames without that person stay in the
recording as NaN frames with their timestamp; QC decides about gaps. The MKV
reader shares this logic through `tracked_recording`.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import re
from collections.abc import Sequence

import numpy as np

from data_tools.readers import ReadOptions
from data_tools.recording import Excluded, Recording, read_text
from gait_jax import skeleton

FORMAT = "k4abt_json"
EXTENSIONS = (".json",)

PELVIS = skeleton.JOINT_INDEX["PELVIS"]
# How far (metres) the pelvis may move between the last chosen frame and a body
# with a new id for that body to count as the same person re-identified.
MAX_SWITCH_DISTANCE_M = 0.5
# K4ABT_JOINT_CONFIDENCE_NONE/LOW/MEDIUM/HIGH = 0..3, mapped linearly onto [0, 1].
_MAX_CONFIDENCE_LEVEL = 3


@dataclasses.dataclass(frozen=True)
class TrackedBody:
  """One body in one frame: positions f32[32, 3] metres, confidence f32[32]."""
  body_id: int
  positions: np.ndarray
  confidence: np.ndarray


def _pelvis_distance(body: TrackedBody, ref: np.ndarray) -> float:
  d = float(np.linalg.norm(body.positions[PELVIS] - ref))
  return d if np.isfinite(d) else np.inf


def _pelvis_z(body: TrackedBody) -> float:
  z = float(body.positions[PELVIS, 2])
  return z if np.isfinite(z) else np.inf


def _nearest(bodies: Sequence[TrackedBody], ref: np.ndarray | None) -> TrackedBody:
  """The body nearest `ref` (a pelvis position), or nearest the camera without one."""
  if ref is None:
    return min(bodies, key=_pelvis_z)
  return min(bodies, key=lambda b: _pelvis_distance(b, ref))


def _follow(frames: Sequence[Sequence[TrackedBody]], body_id: int, max_switch_m: float
            ) -> tuple[list[TrackedBody | None], list[int]]:
  """One pass in frame order: keep `body_id`; on its loss take the body nearest the
  last chosen pelvis (within `max_switch_m`) and continue with that id."""
  current, followed = body_id, [body_id]
  previous_pelvis = None
  chosen: list[TrackedBody | None] = []
  for bodies in frames:
    pick = None
    same = [b for b in bodies if b.body_id == current]
    if same:
      # Several bodies with one id only happen when ids are unknown (MKV fallback).
      pick = _nearest(same, previous_pelvis)
    elif bodies and previous_pelvis is not None:
      candidate = _nearest(bodies, previous_pelvis)
      if _pelvis_distance(candidate, previous_pelvis) <= max_switch_m:
        pick, current = candidate, candidate.body_id
        if current not in followed:
          followed.append(current)
    chosen.append(pick)
    if pick is not None and np.isfinite(pick.positions[PELVIS]).all():
      previous_pelvis = pick.positions[PELVIS]
  return chosen, followed


def follow_one_body(frames: Sequence[Sequence[TrackedBody]],
                    max_switch_m: float = MAX_SWITCH_DISTANCE_M
                    ) -> tuple[list[TrackedBody | None], dict[str, str]]:
  """Chooses one person's body in every frame.

  The target is the body id present in the most frames (ties: the smallest median
  pelvis z, i.e. nearest the camera). From the target's first frame, forward and
  backward, a frame without the current id but with other bodies takes the body
  nearest the last chosen pelvis if it is within `max_switch_m` metres, and
  following continues with that body's id.

  Args:
    frames: per frame, the bodies the tracker reported (possibly none).
    max_switch_m: largest pelvis jump (metres) accepted for an id switch.

  Returns:
    The chosen body per frame (None where the person is not seen) and meta:
    followed_body_ids ("1" or "1,4"), bodies_seen, frames_multi_body.

  Raises:
    Excluded("no_body"): no frame has any body.
  """
  frames_with: collections.Counter[int] = collections.Counter()
  pelvis_z: dict[int, list[float]] = collections.defaultdict(list)
  multi = 0
  for bodies in frames:
    multi += len(bodies) > 1
    frames_with.update({b.body_id for b in bodies})
    for b in bodies:
      pelvis_z[b.body_id].append(_pelvis_z(b))
  if not frames_with:
    raise Excluded("no_body", f"none of the {len(frames)} frames has a tracked body")

  def rank(body_id: int) -> tuple[int, float, int]:
    return (-frames_with[body_id], float(np.median(pelvis_z[body_id])), body_id)

  target = min(frames_with, key=rank)
  first = next(i for i, bodies in enumerate(frames) if any(b.body_id == target for b in bodies))
  # Follow forward from the target's first frame, and backward from it, so that an
  # id switch early in the recording costs no frames either.
  forward, ids_forward = _follow(frames[first:], target, max_switch_m)
  backward, ids_backward = _follow(frames[first::-1], target, max_switch_m)
  chosen = backward[:0:-1] + forward
  followed = ids_backward[:0:-1] + ids_forward
  meta = {"followed_body_ids": ",".join(str(i) for i in followed),
          "bodies_seen": str(len(frames_with)),
          "frames_multi_body": str(multi)}
  return chosen, meta


def tracked_recording(path: str, frames: Sequence[Sequence[TrackedBody]],
                      timestamps_usec: Sequence[float], opts: ReadOptions,
                      meta: dict[str, str]) -> Recording:
  """Body-tracker output (per frame bodies + device timestamps) → one Recording.

  Frames whose timestamp does not advance are dropped (counted in meta as
  `duplicate_frames_dropped`); one body is followed; identity comes from `opts`,
  else from the file name stem (participant = stem, task = "unknown").

  Args:
    path: the source file.
    frames: per frame, bodies with positions f32[32, 3] metres (azure_kinect order).
    timestamps_usec: per frame, the device timestamp in microseconds.
    opts: identity; a layout other than azure_kinect is an error.
    meta: facts about the file to keep; extended in a copy.
  """
  if opts.layout not in (None, skeleton.AZURE_KINECT.name):
    raise Excluded("bad_metadata", f"body tracking output is always azure_kinect, but "
                   f"--layout {opts.layout!r} was given")
  if not frames:
    raise Excluded("empty", "no frames")
  keep, last = [], -np.inf
  for i, t in enumerate(timestamps_usec):
    if t > last:
      keep.append(i)
      last = t
  meta = dict(meta)
  meta["duplicate_frames_dropped"] = str(len(frames) - len(keep))
  frames = [frames[i] for i in keep]
  chosen, follow_meta = follow_one_body(frames)
  meta.update(follow_meta)

  num_frames, num_joints = len(frames), skeleton.NUM_JOINTS
  positions = np.full((num_frames, num_joints, 3), np.nan, np.float32)
  confidence = np.zeros((num_frames, num_joints), np.float32)
  for t, body in enumerate(chosen):
    if body is not None:
      positions[t], confidence[t] = body.positions, body.confidence
  meta["frames_without_body"] = str(sum(b is None for b in chosen))
  usec = np.asarray([timestamps_usec[i] for i in keep], np.float64)
  timestamps = (usec - usec[0]) / 1e6

  stem = os.path.splitext(os.path.basename(path))[0]
  participant, task = opts.participant_id, opts.task
  if not participant or not task:
    meta["identity_from"] = "file_name"
    participant, task = participant or stem, task or "unknown"
  return Recording(source=str(path), participant_id=participant, task=task,
                   session=opts.session or "0", layout=skeleton.AZURE_KINECT.name,
                   positions=positions, confidence=confidence, timestamps=timestamps,
                   meta=meta)


def _ends_early(text: str, error: json.JSONDecodeError) -> bool:
  """Whether a JSON error means the text was cut off rather than malformed."""
  if error.msg.startswith("Extra data"):
    return False
  rest = text[error.pos:].strip()
  # Nothing left, an unclosed string, or a cut-off literal/number (`tr`, `1.5e`).
  return (not rest or error.msg.startswith("Unterminated string")
          or re.fullmatch(r"[-+.\w]+", rest) is not None)


def _load_json(path: str):
  text = read_text(path)
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    reason = "truncated" if _ends_early(text, e) else "unreadable"
    raise Excluded(reason, f"invalid JSON in {path}: {e}") from None
  except RecursionError:
    raise Excluded("unreadable", f"{path}: JSON nested too deeply") from None


def _joint_order(names) -> np.ndarray:
  """int[32]: for each canonical joint, its index in the file's joint order."""
  if names is None:
    return np.arange(skeleton.NUM_JOINTS)
  if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
    raise Excluded("bad_metadata", "joint_names must be a list of strings")
  if len(names) != skeleton.NUM_JOINTS:
    raise Excluded("wrong_joint_count", f"joint_names has {len(names)} names, "
                   f"azure_kinect expects {skeleton.NUM_JOINTS}")
  norm = [n.strip().upper().removeprefix("K4ABT_JOINT_") for n in names]
  unknown = sorted(set(norm) - set(skeleton.JOINTS))
  if unknown or len(set(norm)) != len(norm):
    raise Excluded("bad_metadata", f"joint_names are not the 32 azure_kinect joints "
                   f"(unknown: {unknown}, duplicates: {len(norm) - len(set(norm))})")
  index = {n: i for i, n in enumerate(norm)}
  return np.array([index[j] for j in skeleton.JOINTS])


def _parse_body(body, order: np.ndarray, where: str) -> TrackedBody:
  if not isinstance(body, dict):
    raise Excluded("unreadable", f"{where}: a body must be a JSON object")
  body_id = body.get("body_id")
  if not isinstance(body_id, int) or isinstance(body_id, bool):
    raise Excluded("unreadable", f"{where}: body without an integer body_id")
  where = f"{where} body {body_id}"
  try:
    mm = np.asarray(body.get("joint_positions"), np.float64)
  except (TypeError, ValueError) as e:
    raise Excluded("unreadable", f"{where}: joint_positions not numeric [32, 3]: {e}"
                   ) from None
  if mm.ndim != 2 or mm.shape[1] != 3:
    raise Excluded("unreadable", f"{where}: joint_positions must be [32, 3], got "
                   f"{list(mm.shape)}")
  if mm.shape[0] != len(order):
    raise Excluded("wrong_joint_count", f"{where}: {mm.shape[0]} joints, azure_kinect "
                   f"expects {len(order)}")
  positions = (mm[order] / 1000.0).astype(np.float32)
  present = np.isfinite(positions).all(axis=-1)
  positions[~present] = np.nan
  levels = body.get("joint_confidence_levels")
  if levels is None:
    confidence = np.ones(len(order), np.float32)
  else:
    try:
      levels = np.asarray(levels, np.float64)
    except (TypeError, ValueError):
      levels = np.zeros(0)
    valid = np.isin(levels, np.arange(_MAX_CONFIDENCE_LEVEL + 1))
    if levels.shape != (len(order),) or not valid.all():
      raise Excluded("bad_metadata", f"{where}: joint_confidence_levels must be 32 "
                     f"integers in 0..{_MAX_CONFIDENCE_LEVEL}")
    confidence = (levels[order] / _MAX_CONFIDENCE_LEVEL).astype(np.float32)
  confidence[~present] = 0.0
  return TrackedBody(body_id=body_id, positions=positions, confidence=confidence)


def read(path: str, opts: ReadOptions) -> Recording:
  """Reads one offline_processor JSON into a Recording of the followed person.

  Args:
    path: the `.json` file.
    opts: identity (participant_id, task, session); layout must be azure_kinect.

  Returns:
    A Recording in the azure_kinect layout: positions f32[T, 32, 3] metres
    (camera frame), confidence f32[T, 32] = level / 3 (1 without levels),
    timestamps f64[T] seconds from the first frame.

  Raises:
    Excluded: unreadable, truncated, empty, no_body, wrong_joint_count, bad_metadata.
  """
  doc = _load_json(path)
  if not isinstance(doc, dict) or not isinstance(doc.get("frames"), list):
    raise Excluded("unreadable", f"{path}: not an offline_processor JSON (no 'frames' list)")
  if not doc["frames"]:
    raise Excluded("empty", f"{path}: 'frames' is empty")
  order = _joint_order(doc.get("joint_names"))
  frames, timestamps_usec = [], []
  for i, frame in enumerate(doc["frames"]):
    where = f"frame {i}"
    if not isinstance(frame, dict):
      raise Excluded("unreadable", f"{where}: a frame must be a JSON object")
    t = frame.get("timestamp_usec")
    if (not isinstance(t, (int, float)) or isinstance(t, bool)
        or not np.isfinite(t)):
      raise Excluded("bad_metadata", f"{where}: timestamp_usec missing or not a number")
    bodies = frame.get("bodies") or []
    if not isinstance(bodies, list):
      raise Excluded("unreadable", f"{where}: 'bodies' must be a list")
    frames.append([_parse_body(b, order, where) for b in bodies])
    timestamps_usec.append(float(t))
  meta = {k: str(doc[k]) for k in ("k4abt_sdk_version", "source_file")
          if isinstance(doc.get(k), (str, int, float))}
  return tracked_recording(path, frames, timestamps_usec, opts, meta)
