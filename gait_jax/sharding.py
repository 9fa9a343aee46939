"""Logical axis names → mesh axes: one rules table, used for parameters and activations.

Parameters are created with logical names (`nnx.with_partitioning(init, ("embed",
"mlp"))`); activations are constrained at block boundaries with `constrain(x,
("batch", "frames", "joints", "embed"))`. The trainer sets the mesh and the rules
once (`with use_rules(mesh, rules):`); outside that context `constrain` is a no-op,
so models run unchanged in tests, notebooks and on one device.

Logical names used by the models:
  batch     examples                    embed    model width
  frames    time (tokens per joint)     mlp      feed-forward hidden width
  joints    joints (tokens per frame)   heads    attention heads
  kv        per-head width              tokens   flattened token axis (MAMP)
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Sequence

import jax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

# Parameter annotations are metadata here, resolved through the rules table by the
# trainer; Flax's eager sharding would instead demand a mesh at model creation.
nnx.use_eager_sharding(False)

Rules = Sequence[tuple[str, str | Sequence[str] | None]]

_CONTEXT: contextvars.ContextVar[tuple[Mesh, dict] | None] = contextvars.ContextVar(
    "gait_jax_sharding", default=None)


def _rules_dict(rules: Rules) -> dict[str, tuple[str, ...] | None]:
  out = {}
  for name, axes in rules:
    if name in out:
      raise ValueError(f"logical axis {name!r} appears twice in the sharding rules")
    out[name] = None if axes is None else ((axes,) if isinstance(axes, str) else tuple(axes))
  return out


def logical_to_spec(names: Sequence[str | None], rules: Rules,
                    mesh: Mesh | None = None) -> PartitionSpec:
  """PartitionSpec for an array whose dims carry `names` (None = replicated).

  A mesh axis is used at most once per array (a later dim that maps to an axis
  already taken stays replicated), and axes of size 1 are dropped.
  """
  table = _rules_dict(rules)
  used: set[str] = set()
  spec = []
  for name in names:
    axes = table.get(name) if name is not None else None
    if axes is None:
      spec.append(None)
      continue
    keep = tuple(a for a in axes if a not in used
                 and (mesh is None or (a in mesh.shape and mesh.shape[a] > 1)))
    used.update(keep)
    spec.append(None if not keep else keep[0] if len(keep) == 1 else keep)
  return PartitionSpec(*spec)


@contextlib.contextmanager
def use_rules(mesh: Mesh, rules: Rules) -> Iterator[None]:
  """Makes `constrain` active for code traced inside the block."""
  token = _CONTEXT.set((mesh, rules))
  try:
    yield
  finally:
    _CONTEXT.reset(token)


def constrain(x: jax.Array, names: Sequence[str | None]) -> jax.Array:
  """Constrains an activation's sharding by logical names; no-op without rules."""
  ctx = _CONTEXT.get()
  if ctx is None:
    return x
  mesh, rules = ctx
  if len(names) != x.ndim:
    raise ValueError(f"{len(names)} logical names for an array of rank {x.ndim}")
  return jax.lax.with_sharding_constraint(
      x, NamedSharding(mesh, logical_to_spec(names, rules, mesh)))


def make_mesh(axes: Sequence[tuple[str, int]], axis_type: str = "auto",
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A mesh over `devices` (default: all) from (name, size) pairs; one size may be
  -1 (the rest).

  `axis_type` "auto" (XLA propagates shardings from the declared ones) or
  "explicit"; written out because `jax.make_mesh` would default to Explicit.
  """
  names = tuple(name for name, _ in axes)
  sizes = [int(size) for _, size in axes]
  devices = list(jax.devices() if devices is None else devices)
  n = len(devices)
  if sizes.count(-1) > 1:
    raise ValueError(f"mesh {tuple(axes)}: at most one axis may be -1")
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if n % known:
      raise ValueError(f"mesh {tuple(axes)}: {n} devices are not divisible by {known}")
    sizes[sizes.index(-1)] = n // known
  if math.prod(sizes) != n:
    raise ValueError(f"mesh {dict(zip(names, sizes))} needs {math.prod(sizes)} devices, "
                     f"there are {n}")
  kinds = {"auto": jax.sharding.AxisType.Auto, "explicit": jax.sharding.AxisType.Explicit}
  if axis_type not in kinds:
    raise ValueError(f"axis_type {axis_type!r}; expected one of {sorted(kinds)}")
  return jax.make_mesh(tuple(sizes), names, axis_types=(kinds[axis_type],) * len(names),
                       devices=devices)
