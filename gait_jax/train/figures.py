"""The reconstruction figure: a skeleton at a few frames, original vs reconstruction."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gait_jax import skeleton  # noqa: E402


def bones(joints: Sequence[str]) -> list[tuple[int, int]]:
  """(child, parent) index pairs within a joint subset, skipping absent parents."""
  return [(i, int(p)) for i, p in enumerate(skeleton.parents_within(joints)) if p >= 0]


def draw_pose(ax, xy: np.ndarray, pairs: Sequence[tuple[int, int]], hidden: np.ndarray,
              lo: np.ndarray, hi: np.ndarray) -> None:
  """One skeleton frame on `ax`: bones in grey, joints blue (seen) or red (hidden);
  xy f[J, 2] drawn up (y already flipped); joints with a NaN coordinate are skipped."""
  for a, b in pairs:
    if np.isfinite(xy[[a, b]]).all():
      ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="0.3", lw=1.1)
  ok = np.isfinite(xy).all(1)
  ax.scatter(xy[ok, 0], xy[ok, 1], s=9, zorder=3,
             c=np.where(np.asarray(hidden, bool)[ok], "tab:red", "tab:blue"))
  ax.set_xlim(lo[0], hi[0])
  ax.set_ylim(lo[1], hi[1])
  ax.set_aspect("equal")
  ax.set_xticks([])
  ax.set_yticks([])


def reconstruction_figure(target: np.ndarray, reconstruction: np.ndarray,
                          hidden: np.ndarray, joints: Sequence[str],
                          path: pathlib.Path, title: str = "",
                          num_frames: int = 4) -> pathlib.Path:
  """Draws one example, front view (x right, y down → drawn up).

  Args:
    target, reconstruction: f32[T, J, 3] metres.
    hidden: bool[T, J], joints the model did not see (drawn in red).
    joints: canonical names of the J joints.
  """
  t = target.shape[0]
  frames = np.linspace(0, t - 1, num_frames).astype(int)
  pairs = bones(joints)
  fig, axes = plt.subplots(2, num_frames, figsize=(2.2 * num_frames, 4.6), squeeze=False)
  # Both rows share the original's limits, so a poor reconstruction looks poor.
  lo = (target[..., :2] * [1, -1]).reshape(-1, 2).min(0) - 0.1
  hi = (target[..., :2] * [1, -1]).reshape(-1, 2).max(0) + 0.1
  for row, (name, data) in enumerate((("original", target), ("reconstruction", reconstruction))):
    for col, f in enumerate(frames):
      ax = axes[row, col]
      draw_pose(ax, data[f, :, :2] * [1, -1], pairs, hidden[f], lo, hi)
      if row == 0:
        ax.set_title(f"frame {f}", fontsize=8)
      if col == 0:
        ax.set_ylabel(name, fontsize=8)
  fig.suptitle(title + "  (red: hidden from the model)", fontsize=9)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=90, bbox_inches="tight")
  plt.close(fig)
  return path
