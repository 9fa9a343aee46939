"""Orbax checkpoints of the train state and the Grain iterator, under WORKDIR/checkpoints.

Each checkpoint holds two items: "state" (params, optimiser state, step, rng: the
whole `train.state` pytree) and "data" (the Grain iterator's position, one JSON
file per process). Saves are asynchronous and every `checkpoint_every` steps;
the last `keep` are kept. Restores go onto abstract targets that carry their
shardings, so each device reads only its own shards.
"""

from __future__ import annotations

import pathlib
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """A thin policy layer over `ocp.CheckpointManager`."""

  def __init__(self, directory: str | pathlib.Path, *, every: int, keep: int,
               use_async: bool = True):
    self.directory = pathlib.Path(directory).absolute()
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, save_interval_steps=max(int(every), 1),
        enable_async_checkpointing=use_async, create=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options,
                                         item_names=("state", "data"))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state: Any, data_iterator: Any, *, force: bool = False) -> bool:
    """Saves if `step` is on the interval (or `force`) and not saved yet; returns
    whether it saved."""
    if step in self.manager.all_steps():
      return False
    return self.manager.save(
        step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                      data=grain.checkpoint.CheckpointSave(data_iterator)),
        force=force)

  def restore(self, step: int, abstract_state: Any, data_iterator: Any) -> Any:
    """Restores state (onto `abstract_state`'s shapes and shardings) and the
    iterator's position in place; returns the state.

    A checkpoint written by another number of processes restores too: the state is
    global, and the iterator is moved to batch `step` (`pipeline`'s global batches
    do not depend on the process count, and a run consumes one batch per step).
    """
    written_by = self.process_count(step)
    if written_by in (None, jax.process_count()):
      restored = self.manager.restore(
          step, args=ocp.args.Composite(
              state=ocp.args.StandardRestore(abstract_state),
              data=grain.checkpoint.CheckpointRestore(data_iterator)))
      return restored["state"]
    restored = self.manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
    try:
      grain.experimental.set_next_index(data_iterator, step)
    except (ValueError, NotImplementedError, AttributeError) as e:
      raise ValueError(
          f"checkpoint {self.directory / str(step)} was written by {written_by} "
          f"processes, this run has {jax.process_count()}, and its data iterator cannot "
          f"be moved to batch {step} ({e}); resume with {written_by} processes, or with "
          "--config.data.worker_count=0") from e
    return restored["state"]

  def process_count(self, step: int) -> int | None:
    """How many processes wrote checkpoint `step`'s data item (None: unknown)."""
    counts = {int(p.stem.rsplit("-of-", 1)[1])
              for p in (self.directory / str(step) / "data").glob("process_*-of-*.json")}
    return counts.pop() if len(counts) == 1 else None

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def restore_params(directory: str | pathlib.Path, abstract_params: Any) -> tuple[Any, int]:
  """Params from the latest checkpoint of another run (`config.init_from`).

  `directory` is that run's workdir or its checkpoints folder. Returns (params,
  step). The optimiser state, step and data position are not taken.
  """
  directory = pathlib.Path(directory).absolute()
  if (directory / "checkpoints").is_dir():
    directory = directory / "checkpoints"
  manager = ocp.CheckpointManager(directory, item_names=("state", "data"))
  step = manager.latest_step()
  if step is None:
    raise FileNotFoundError(f"init_from: no checkpoint under {directory}")
  # Restore only the params subtree; the rest of the saved state is skipped.
  target = {"params": abstract_params}
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.PyTreeRestore(
          target, restore_args=jax.tree.map(
              lambda a: ocp.ArrayRestoreArgs(sharding=a.sharding), target),
          partial_restore=True)))
  manager.close()
  return restored["state"]["params"], step
