"""Synthetic recordings as Azure Kinect Body Tracking JSON (`offline_processor`).

The participant's tracker output is the npz path's, unchanged (same seed, same
numbers), written the way the real SDK reports it:

  * millimetres, camera frame; 0.1 mm resolution (`%.1f`), so a reader's metres
    differ from the npz's by at most 0.05 mm (plus float32 rounding);
  * timestamp_usec: integer device microseconds. Files with device timestamps
    keep the npz's jittered times (and its lost frames); the others are nominal
    30 fps from a random start offset of 0.1-2 s (a device clock does not
    start at 0);
  * no NaN: a joint the sensor model dropped is reported where the tracker
    predicts it (`sensor.guess`: the estimate plus 3x the jitter and a slow
    ~3 cm wander) with confidence level NONE; a frame whose every joint is
    dropped has no participant body at all (with nobody else in view,
    `num_bodies` 0 and `bodies` []);
  * joint_confidence_levels quantise the synthetic confidence c in [0, 1]:
    NONE (0) for c < 0.2 (and so every dropped joint, c = 0), LOW (1) for
    0.2 <= c < 0.5 (occluded, out of view, brief low-confidence spells, hand
    tips and thumbs), MEDIUM (2) for c >= 0.5 (tracked; hands, far feet).
    HIGH (3) is defined by the SDK but never emitted by it, so not here either;
  * joint_orientations: the identity quaternion [1, 0, 0, 0] (w, x, y, z) for
    every joint. Real orientations would need the SDK's per-joint axis
    conventions; nothing downstream reads them.

What a real recording adds, drawn from the recording's own stream
[seed, index, STREAM_K4ABT, task_number + 1] (so the participant's numbers do
not depend on these events):

  * a bystander in ~10 % of recordings: another synthetic person (own body and
    motion parameters, same kinematics) standing or slowly walking toward or
    away from the camera 1.2-2 m to the side of the participant's median
    position, at or behind their depth and inside the field of view, for a
    random stretch of 10-40 % of the frames (at most 3.5 m of walking), with
    its own tracker noise, dropouts and guesses. The stretch stays under the
    participant's share of frames, as a passer-by's would;
  * an id switch in ~3 % of recordings: between 60 % and 90 % of the way in,
    after at least 10 frames in which the participant was seen, the tracker
    loses them for 0-2 frames and re-acquires them under a new body_id. The
    switch is kept after the midpoint because `readers.k4abt_json` follows the
    id seen in the most frames and only re-identifies forward in time;
  * body_ids count up from 1 in order of first appearance, as the SDK assigns
    them; where two bodies are in view the bystander is listed first in a
    random 20-80 % of frames.

Every recording's events are returned as `Events`, written by cohort.py to
recordings.csv.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING

import numpy as np

from data_tools.synth import body as body_lib
from data_tools.synth import motor, people, sensor, stationary, walking
from gait_jax import skeleton

if TYPE_CHECKING:  # render imports this module
  from data_tools.synth.render import Take

SDK_VERSION = "1.1.2"
# Confidence → K4ABT_JOINT_CONFIDENCE_* level: NONE below LOW_FROM, LOW below
# MEDIUM_FROM, MEDIUM above. The real SDK emits no HIGH.
LOW_FROM, MEDIUM_FROM = 0.2, 0.5
BYSTANDER_PROBABILITY = 0.10
ID_SWITCH_PROBABILITY = 0.03
# Shortest recording (frames) that gets a bystander or an id switch.
_MIN_EVENT_FRAMES = 30
# Frames the participant must have been seen just before an id switch, so the
# re-acquired body is within the reader's 0.5 m re-identification radius.
_SEEN_BEFORE_SWITCH = 10

_NJ = skeleton.NUM_JOINTS
_PELVIS = skeleton.JOINT_INDEX["PELVIS"]
_IDENTITY = "[" + ",".join(["[1,0,0,0]"] * _NJ) + "]"
# One body, filled by `%` from (body_id, 96 mm coordinates, 32 levels): a single
# C-level formatting call per body instead of ~130 Python str() calls.
_BODY = ('{"body_id":%d,"joint_positions":[' + ",".join(["[%.1f,%.1f,%.1f]"] * _NJ)
         + '],"joint_orientations":' + _IDENTITY + ',"joint_confidence_levels":['
         + ",".join(["%d"] * _NJ) + "]}")
_FRAME = '{"frame_id":%d,"timestamp_usec":%d,"num_bodies":%d,"bodies":[%s]}'


@dataclasses.dataclass(frozen=True)
class Events:
  """One JSON recording's row of recordings.csv (frame indices count the file's
  frames from 0; -1 / "" / 0 where the event did not happen)."""
  file: str
  participant_id: str
  task: str
  frames: int
  timestamped: bool
  participant_body_ids: str  # "1", or "1,3" after an id switch
  id_switch: bool
  id_switch_frame: int  # first frame with the new id
  bystander: bool
  bystander_body_id: int
  bystander_kind: str  # "standing" or "walking"
  bystander_first_frame: int
  bystander_frames: int
  frames_bystander_first: int  # frames listing the bystander before the participant
  frames_without_participant: int
  frames_without_body: int


@dataclasses.dataclass(frozen=True)
class _Track:
  """One body_id's reports: present bool[T'], positions f32[T', 32, 3] metres
  (finite), levels uint8[T', 32]."""
  role: str
  present: np.ndarray
  positions: np.ndarray
  levels: np.ndarray


def levels(confidence: np.ndarray) -> np.ndarray:
  """uint8 confidence levels 0..2 (NONE, LOW, MEDIUM) from confidence in [0, 1]."""
  return ((confidence >= LOW_FROM).astype(np.uint8)
          + (confidence >= MEDIUM_FROM).astype(np.uint8))


def _timestamps_usec(take: Take, start_s: float, fps: float) -> np.ndarray:
  """int64[T'] device timestamps: the take's own, else nominal from `start_s`."""
  if take.timestamps is not None:
    return np.round(take.timestamps * 1e6).astype(np.int64)
  return np.round((start_s + np.arange(len(take.keep)) / fps) * 1e6).astype(np.int64)


def _bystander(rng: np.random.Generator, take: Take, fps: float) -> tuple[_Track, str]:
  """Another person in view for a stretch of the recording (see module doc).

  Returns:
    The bystander's track over the take's T' frames (present only within the
    stretch, less frames whose every joint the sensor model dropped) and its
    kind, "standing" or "walking".
  """
  t = len(take.keep)
  length = int(rng.integers(t // 10, int(0.4 * t) + 1))
  walker = rng.random() < 0.5
  noise = rng.standard_normal((1, people.NOISE_DIM))
  m = {k: float(v[0]) for k, v in motor.params(people.from_noise(noise)).items()}
  body = body_lib.make_body(m)
  pelvis = take.world[:, _PELVIS]
  x = float(np.median(pelvis[:, 0])) + rng.choice([-1.0, 1.0]) * rng.uniform(1.4, 2.0)
  # Deep enough that the whole figure is inside the 75-degree horizontal view.
  z_min = max(1.5, abs(x) / 0.65)
  z = max(min(float(np.median(pelvis[:, 2])) + rng.uniform(-0.3, 1.5), 4.5), z_min)
  speed = rng.uniform(0.5, 0.9)
  away = rng.random() < 0.5
  if walker:
    length = min(length, int(3.5 / speed * fps))
  first = int(rng.integers(0, t - length + 1))
  frames = take.keep[first:first + length]
  n = int(frames[-1] - frames[0] + 1)
  cam_h = take.camera.height
  if walker:
    dist = speed * n / fps
    z = max(z, z_min + 0.5 * dist)
    world = walking.stroll(rng, m, body, n, fps, cam_h, speed,
                           (x, z - 0.5 * dist if away else z + 0.5 * dist),
                           0.0 if away else 180.0)
  else:
    world = stationary.romberg(rng, m, body, n, fps, cam_h)
    centre = np.median(world[:, _PELVIS], axis=0)
    world = world + np.array([x - centre[0], 0.0, z - centre[2]])
  _, conf, estimate = sensor.observe(rng, sensor.to_camera(world, take.camera), fps)
  rows = frames - frames[0]
  conf, estimate = conf[rows], estimate[rows]
  dropped = conf == 0
  present = np.zeros(t, bool)
  present[first:first + length] = ~dropped.all(axis=1)
  positions = np.zeros((t, _NJ, 3), np.float32)
  positions[first:first + length] = sensor.guess(rng, estimate, dropped, fps)
  lv = np.zeros((t, _NJ), np.uint8)
  lv[first:first + length] = levels(conf)
  return _Track("bystander", present, positions, lv), ("walking" if walker else "standing")


def _switch_frame(rng: np.random.Generator, seen: np.ndarray) -> int | None:
  """A frame 60-90 % of the way in that ends `_SEEN_BEFORE_SWITCH` seen frames."""
  t = len(seen)
  # run[i] = seen frames among i - W + 1 .. i: the switch frame and those before.
  run = np.convolve(seen.astype(np.int64), np.ones(_SEEN_BEFORE_SWITCH, np.int64))[:t]
  ok = np.flatnonzero(run == _SEEN_BEFORE_SWITCH)
  ok = ok[(ok >= int(0.6 * t)) & (ok < int(0.9 * t))]
  return int(rng.choice(ok)) if len(ok) else None


def _body_strings(track: _Track, body_id: int) -> tuple[np.ndarray, list[str]]:
  """Frame indices where the track is present and its body objects there."""
  idx = np.flatnonzero(track.present)
  n = len(idx)
  table = np.concatenate([np.full((n, 1), body_id, np.float64),
                          track.positions[idx].reshape(n, 3 * _NJ).astype(np.float64) * 1e3,
                          track.levels[idx].astype(np.float64)], axis=1)
  if not np.isfinite(table).all():
    raise ValueError("k4abt: a reported joint is not finite; the SDK never writes NaN")
  return idx, [_BODY % tuple(row) for row in table.tolist()]


def render(seed: int, index: int, task: str, task_number: int, take: Take, fps: float
           ) -> tuple[str, Events]:
  """One recording as offline_processor JSON text and its events.

  Args:
    seed, index: the cohort seed and the participant's index.
    task: the task name; task_number: its place in render.TASKS (the stream).
    take: render.Take, the participant's simulated recording.
    fps: nominal frame rate, Hz.

  Returns:
    The JSON document (ASCII, one frame per line) and the recording's Events.
  """
  rng = np.random.default_rng([seed, index, people.STREAM_K4ABT, task_number + 1])
  t = len(take.keep)
  start_s = rng.uniform(0.1, 2.0)
  want_bystander = rng.random() < BYSTANDER_PROBABILITY and t >= _MIN_EVENT_FRAMES
  want_switch = rng.random() < ID_SWITCH_PROBABILITY and t >= _MIN_EVENT_FRAMES
  dropped = take.confidence == 0
  seen = ~dropped.all(axis=1)
  positions = sensor.guess(rng, take.estimate, dropped, fps)
  lv = levels(take.confidence)
  tracks, switch = [], None
  if want_switch:
    switch = _switch_frame(rng, seen)
  if switch is None:
    tracks.append(_Track("participant", seen, positions, lv))
  else:
    gap = int(rng.integers(0, 3))
    frame = np.arange(t)
    tracks.append(_Track("participant", seen & (frame < switch - gap), positions, lv))
    tracks.append(_Track("participant", seen & (frame >= switch), positions, lv))
  kind = ""
  if want_bystander:
    track, kind = _bystander(rng, take, fps)
    tracks.append(track)
  tracks = [tr for tr in tracks if tr.present.any()]
  # The SDK numbers bodies as it first sees them; the participant wins ties.
  tracks.sort(key=lambda tr: int(np.argmax(tr.present)))
  bystander_first = np.zeros(t, bool)
  if kind:
    bystander_first = rng.random(t) < rng.uniform(0.2, 0.8)

  bodies: list[list[str]] = [[] for _ in range(t)]
  owners: list[list[str]] = [[] for _ in range(t)]
  for body_id, track in enumerate(tracks, 1):
    idx, strings = _body_strings(track, body_id)
    for i, s in zip(idx.tolist(), strings):
      bodies[i].append(s)
      owners[i].append(track.role)
  listed_first = 0
  for i in np.flatnonzero(bystander_first).tolist():
    if len(bodies[i]) > 1 and owners[i][0] != "bystander":
      k = owners[i].index("bystander")
      bodies[i].insert(0, bodies[i].pop(k))
      listed_first += 1
  usec = _timestamps_usec(take, start_s, fps).tolist()
  frames = [_FRAME % (i, usec[i], len(b), ",".join(b)) for i, b in enumerate(bodies)]
  pid = people.participant_id(index)
  header = {"k4abt_sdk_version": SDK_VERSION, "source_file": f"{pid}_{task}.mkv",
            "start_offset_usec": 0, "joint_names": list(skeleton.JOINTS),
            "bone_list": [[skeleton.JOINTS[j], skeleton.JOINTS[p]]
                          for j, p in enumerate(skeleton.PARENTS) if p >= 0]}
  text = (json.dumps(header, separators=(",", ":"))[:-1] + ',"frames":[\n'
          + ",\n".join(frames) + "\n]}\n")

  part = [(i, tr) for i, tr in enumerate(tracks, 1) if tr.role == "participant"]
  by = [(i, tr) for i, tr in enumerate(tracks, 1) if tr.role == "bystander"]
  with_participant = np.zeros(t, bool)
  for _, tr in part:
    with_participant |= tr.present
  events = Events(
      file=f"{pid}_{task}.json", participant_id=pid, task=task, frames=t,
      timestamped=take.timestamps is not None,
      participant_body_ids=",".join(str(i) for i, _ in part),
      id_switch=len(part) > 1,
      id_switch_frame=int(np.argmax(part[1][1].present)) if len(part) > 1 else -1,
      bystander=bool(by), bystander_body_id=by[0][0] if by else -1,
      bystander_kind=kind if by else "",
      bystander_first_frame=int(np.argmax(by[0][1].present)) if by else -1,
      bystander_frames=int(by[0][1].present.sum()) if by else 0,
      frames_bystander_first=listed_first,
      frames_without_participant=int((~with_participant).sum()),
      frames_without_body=sum(not b for b in bodies))
  return text, events


def write(path: str, text: str) -> int:
  """Writes `text` (ASCII) to `path` via a temporary name; returns bytes."""
  tmp = f"{path}.tmp{os.getpid()}"
  data = text.encode("ascii")
  with open(tmp, "wb") as f:
    f.write(data)
  os.replace(tmp, path)
  return len(data)
