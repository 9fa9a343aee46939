"""One small metric writer: console line, `metrics.jsonl`, and Weights & Biases.

Only process 0 writes. W&B's mode comes from `WANDB_MODE` if set, else the config
("offline" by default: no network needed; "online" needs a key; "disabled" in
tests). The run id is kept in `WORKDIR/wandb_run_id`, so a resumed run appends to
the same W&B run.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import time
import uuid
from typing import Any

import jax
import ml_collections


def _fmt_duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class MetricWriter:
  """Writes scalar metrics per step; see the module docstring."""

  def __init__(self, workdir: str, config: ml_collections.ConfigDict, total_steps: int):
    self.enabled = jax.process_index() == 0
    self.workdir = pathlib.Path(workdir)
    self.total_steps = total_steps
    self._start: tuple[float, int] | None = None
    self._wandb = None
    if not self.enabled:
      return
    self.workdir.mkdir(parents=True, exist_ok=True)
    self._jsonl = open(self.workdir / "metrics.jsonl", "a", encoding="utf-8")
    mode = os.environ.get("WANDB_MODE") or config.wandb.mode
    if mode != "disabled":
      self._wandb = self._init_wandb(config, mode)

  def _init_wandb(self, config: ml_collections.ConfigDict, mode: str):
    import wandb  # pylint: disable=import-outside-toplevel
    if mode == "online" and not (os.environ.get("WANDB_API_KEY") or wandb.api.api_key):
      print("W&B: no API key, logging offline (`wandb sync` uploads later)", file=sys.stderr)
      mode = "offline"
    id_file = self.workdir / "wandb_run_id"
    if id_file.is_file():
      run_id = id_file.read_text().strip()
    else:
      run_id = uuid.uuid4().hex[:12]
      id_file.write_text(run_id)
    return wandb.init(
        project=config.wandb.project, entity=config.wandb.entity or None,
        group=config.wandb.group or None, tags=list(config.wandb.tags),
        name=config.wandb.name or self.workdir.name, config=config.to_dict(),
        dir=str(self.workdir), id=run_id, resume="allow", mode=mode)

  def write(self, step: int, metrics: dict[str, Any]) -> None:
    """Logs one step's scalars (python floats/ints)."""
    if not self.enabled:
      return
    record = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
    self._jsonl.write(json.dumps(record) + "\n")
    self._jsonl.flush()
    if self._wandb is not None:
      self._wandb.log({k: v for k, v in record.items() if k != "step"}, step=int(step))
    self._console(step, record)

  def _console(self, step: int, record: dict[str, float]) -> None:
    now = time.time()
    if self._start is None:
      self._start = (now, step)
    t0, s0 = self._start
    eta = (now - t0) / max(step - s0, 1) * (self.total_steps - step) if step > s0 else 0
    parts = [f"step {step}/{self.total_steps}", f"loss {record['loss']:.4f}"]
    if "clips_per_s" in record:
      parts.append(f"{record['clips_per_s']:.2f} clips/s")
    if "mfu" in record:
      parts.append(f"MFU {record['mfu']:.1%}")
    parts.append(f"eta {_fmt_duration(eta)}" if step > s0 else "eta -")
    print(" | ".join(parts), flush=True)

  def image(self, step: int, key: str, path: pathlib.Path) -> None:
    if self.enabled and self._wandb is not None:
      import wandb  # pylint: disable=import-outside-toplevel
      self._wandb.log({key: wandb.Image(str(path))}, step=int(step))

  def note(self, text: str) -> None:
    """A line of run information (compilation, memory, resume), console only."""
    if self.enabled:
      print(text, flush=True)

  def close(self) -> None:
    if not self.enabled:
      return
    self._jsonl.close()
    if self._wandb is not None:
      self._wandb.finish()
