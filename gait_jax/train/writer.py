"""One small metric writer: console line, `metrics.jsonl`, and Weights & Biases.

Only process 0 writes. The W&B run is the pretraining job's `tracking.start` run
(job_type "pretrain"): mode from `WANDB_MODE` if set, else the config ("offline"
by default: no network needed; "online" needs a key; "disabled" in tests), and
the run id kept in `WORKDIR/wandb_run_id`, so a resumed run appends to the same
W&B run.
"""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any

import jax
import ml_collections

from gait_jax import tracking


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
    self._tracker = tracking.Tracker()
    if not self.enabled:
      return
    self.workdir.mkdir(parents=True, exist_ok=True)
    self._jsonl = open(self.workdir / "metrics.jsonl", "a", encoding="utf-8")
    self._tracker = tracking.start(config, self.workdir, "pretrain")

  def write(self, step: int, metrics: dict[str, Any]) -> None:
    """Logs one step's scalars (python floats/ints)."""
    if not self.enabled:
      return
    record = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
    self._jsonl.write(json.dumps(record) + "\n")
    self._jsonl.flush()
    self._tracker.log({k: v for k, v in record.items() if k != "step"}, step=int(step))
    self._console(step, record)

  def _console(self, step: int, record: dict[str, float]) -> None:
    now = time.time()
    if self._start is None:
      self._start = (now, step)
    t0, s0 = self._start
    if "loss" not in record:  # an evaluator's metrics (`evaluators`)
      print(" | ".join([f"step {step}/{self.total_steps} eval"] + [
          f"{k} {v:.4f}" for k, v in record.items() if k != "step"]), flush=True)
      return
    eta = (now - t0) / max(step - s0, 1) * (self.total_steps - step) if step > s0 else 0
    parts = [f"step {step}/{self.total_steps}", f"loss {record['loss']:.4f}"]
    if "clips_per_s" in record:
      parts.append(f"{record['clips_per_s']:.2f} clips/s")
    if "mfu" in record:
      parts.append(f"MFU {record['mfu']:.1%}")
    parts.append(f"eta {_fmt_duration(eta)}" if step > s0 else "eta -")
    print(" | ".join(parts), flush=True)

  def image(self, step: int, key: str, path: pathlib.Path) -> None:
    self._tracker.image(key, path, step=int(step))

  def note(self, text: str) -> None:
    """A line of run information (compilation, memory, resume), console only."""
    if self.enabled:
      print(text, flush=True)

  def close(self) -> None:
    if not self.enabled:
      return
    self._jsonl.close()
    self._tracker.close()
