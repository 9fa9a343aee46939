"""Logical axis names → mesh axes: one rules table, used for parameters and activations.

Parameters are created with logical names (`nnx.with_partitioning(init, ("embed",
"mlp"))`); activations are constrained at block boundaries with `constrain(x,
("batch", "frames", "joints", "embed"))`. The context is JAX's and Flax's own,
`jax.set_mesh(mesh)` and `nnx.logical_axis_rules(rules)`:

  with sharding.use_rules(mesh, rules):
    compiled = step.lower(...).compile()

Outside it (no mesh set, or no rules) `constrain` is a no-op, so models run
unchanged in tests, notebooks and on one device. Inside it Flax resolves the
rules for `nnx.get_partition_spec` too, which then returns mesh axes: read the
parameters' logical names outside the block (`logical_specs` reads them anywhere).

Logical names used by the models:
  batch     examples                    embed    model width
  frames    time (tokens per joint)     mlp      feed-forward hidden width
  joints    joints (tokens per frame)   heads    attention heads
  kv        per-head width              tokens   flattened token axis (MAMP)
  layers    stacked (scanned) layers
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
from flax import nnx
from flax.core import spmd as flax_spmd
from jax.sharding import Mesh, PartitionSpec

Rules = Sequence[tuple[str, str | Sequence[str] | None]]


def _rules_dict(rules: Rules) -> dict[str, tuple[str, ...] | None]:
  out = {}
  for name, axes in rules:
    if name in out:
      raise ValueError(f"logical axis {name!r} appears twice in the sharding rules")
    out[name] = None if axes is None else ((axes,) if isinstance(axes, str) else tuple(axes))
  return out


def logical_to_spec(names: Sequence[str | None], rules: Rules,
                    mesh: Mesh | jax.sharding.AbstractMesh | None = None) -> PartitionSpec:
  """PartitionSpec for an array whose dims carry `names` (None = replicated).

  A mesh axis is used at most once per array (a later dim that maps to an axis
  already taken stays replicated), and axes of size 1 or not in `mesh` are dropped.
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


def logical_specs(tree: Any) -> Any:
  """Logical PartitionSpecs of a tree of nnx.Variables (e.g. `nnx.state(model)`),
  also inside `use_rules` (where `nnx.get_partition_spec` resolves the rules)."""
  with nnx.logical_axis_rules(()):
    return nnx.get_partition_spec(tree)


@contextlib.contextmanager
def use_rules(mesh: Mesh, rules: Rules) -> Iterator[None]:
  """Sets `mesh` (`jax.set_mesh`) and the logical rules (`nnx.logical_axis_rules`)
  for code traced inside the block: `constrain` then applies."""
  _rules_dict(rules)  # fail early on a duplicated name
  rules = tuple((str(name), axes if axes is None or isinstance(axes, str) else tuple(axes))
                for name, axes in rules)
  with jax.set_mesh(mesh), nnx.logical_axis_rules(rules):
    yield


def constrain(x: jax.Array, names: Sequence[str | None]) -> jax.Array:
  """Constrains an activation's sharding by logical names (`jax.lax.
  with_sharding_constraint` against the mesh set by `use_rules`); a no-op without
  a mesh or rules. Decided at trace time: jit's cache keys on the mesh, not on
  Flax's rules, so trace under `use_rules`, not under `jax.set_mesh` alone."""
  mesh = jax.sharding.get_abstract_mesh()
  rules = flax_spmd.get_logical_axis_rules()
  if mesh.empty or not rules:
    return x
  if len(names) != x.ndim:
    raise ValueError(f"{len(names)} logical names for an array of rank {x.ndim}")
  return jax.lax.with_sharding_constraint(x, logical_to_spec(names, rules, mesh))


def per_device(fn: Callable[..., jax.Array], in_names: Sequence[Sequence[str | None]],
               out_names: Sequence[str | None]) -> Callable[..., jax.Array]:
  """`fn` run on each device's own part of its arguments (`jax.shard_map` over the
  mesh set by `use_rules`, each argument and the result laid out by its logical
  names), for code the partitioner cannot split itself, such as a `lax.map` over
  chunks of the batch. `fn` itself without a mesh or rules, or where every name
  maps to no mesh axis (one device)."""
  mesh = jax.sharding.get_abstract_mesh()
  rules = flax_spmd.get_logical_axis_rules()
  if mesh.empty or not rules:
    return fn
  in_specs = tuple(logical_to_spec(names, rules, mesh) for names in in_names)
  out_spec = logical_to_spec(out_names, rules, mesh)
  if not any(any(spec) for spec in (*in_specs, out_spec)):
    return fn
  return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_spec)


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
