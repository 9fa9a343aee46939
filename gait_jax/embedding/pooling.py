"""Region pooling: token features [B, T', J, D] → one vector per clip.

As published: average the chosen layer's token features over the joints of each
body region (left and right merged: legs, arms, torso, head), then summarise
each region's time series by statistics over time (mean and 99th percentile by
default). The vector is laid out region-major, then statistic, then channel, and
`feature_names` names every entry "<region>.<stat>.<channel>".

Pooling `by="joint"` skips the average over a region's joints: every joint keeps
its own rows, named "<joint>.<stat>.<channel>". A region mean adds up joints
whose features change with body size in different directions, so part of the
absolute scale the inputs (metres) carry cancels; per joint it stays (demo
cohort and encoder, mean over time only: height r 0.926 by region, 0.973 by joint).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gait_jax.models import masking

# Pooling region → the masking regions (models.masking.MASK_REGIONS) it merges.
DEFAULT_REGIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("legs", ("left_leg", "right_leg")),
    ("arms", ("left_arm", "right_arm")),  # hand joints, when selected, are arm joints
    ("torso", ("torso",)),
    ("head", ("head",)),
)
STATS = ("mean", "p99", "p95", "p50", "std", "max")
# What `pool` averages over before the statistics over time: each region's joints
# (published) or nothing (every joint its own row).
POOL_BY = ("region", "joint")


def region_weights(joints: Sequence[str],
                   regions: Sequence[tuple[str, Sequence[str]]] = DEFAULT_REGIONS
                   ) -> np.ndarray:
  """f32[R, J]: row r averages the joints of pooling region r.

  A region with no joint in the joint set is an error (its vector would be empty).
  """
  joint_regions = masking.region_ids(joints)
  rows = []
  for name, parts in regions:
    member = np.isin(joint_regions, masking.region_index(tuple(parts)))
    if not member.any():
      raise ValueError(f"pooling region {name!r} ({tuple(parts)}) has no joint in the "
                       f"joint set {tuple(joints)}")
    rows.append(member / member.sum())
  return np.stack(rows).astype(np.float32)


def pool_weights(joints: Sequence[str],
                 regions: Sequence[tuple[str, Sequence[str]]] = DEFAULT_REGIONS,
                 by: str = "region") -> tuple[tuple[str, ...], np.ndarray]:
  """(row names, f32[P, J]): the P rows `pool` summarises over time.

  by="region": `region_weights` (P = R), named after the regions; by="joint": the
  identity (P = J), named after the joints.
  """
  if by == "region":
    return tuple(name for name, _ in regions), region_weights(joints, regions)
  if by == "joint":
    return tuple(joints), np.eye(len(joints), dtype=np.float32)
  raise ValueError(f"pool by {by!r}; expected one of {POOL_BY}")


def _stat(x: jax.Array, stat: str) -> jax.Array:
  """x: [B, T', R, D] → [B, R, D], reduced over time."""
  if stat == "mean":
    return x.mean(axis=1)
  if stat == "std":
    return x.std(axis=1)
  if stat == "max":
    return x.max(axis=1)
  if stat.startswith("p") and stat[1:].isdigit():
    return jnp.percentile(x, float(stat[1:]), axis=1)
  raise ValueError(f"unknown pooling statistic {stat!r}; expected one of {STATS}")


def pool(features: jax.Array, weights: np.ndarray | jax.Array,
         stats: Sequence[str] = ("mean", "p99")) -> jax.Array:
  """features [B, T', J, D] → f32[B, P · len(stats) · D].

  Args:
    features: token features of a clip (any float dtype; pooled in float32).
    weights: f32[P, J] from `region_weights` or `pool_weights`.
    stats: statistics over time, from STATS ("p99" = 99th percentile).
  """
  regions = jnp.einsum("btjd,rj->btrd", features.astype(jnp.float32),
                       jnp.asarray(weights, jnp.float32))
  out = jnp.stack([_stat(regions, s) for s in stats], axis=2)  # [B, R, S, D]
  return out.reshape(out.shape[0], -1)


def feature_names(rows: Sequence[str | tuple[str, Sequence[str]]], stats: Sequence[str],
                  width: int) -> list[str]:
  """Column names of `pool`'s output, in its order.

  Args:
    rows: the weights' row names (`pool_weights`), or (name, parts) regions.
  """
  names = [r if isinstance(r, str) else r[0] for r in rows]
  return [f"{name}.{stat}.{c:03d}" for name in names for stat in stats
          for c in range(width)]
