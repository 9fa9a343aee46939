"""What every job config shares: the one variant parser and the mesh block.

Experiment files (`experiments/*.py`) are run as `--config FILE.py[:ARG]`; ARG is
`variant[,key=value,...]`, e.g. `paper,dtype=float32`. Each job's base config lives in
the library beside the job (`train/config.py`, `embedding/config.py`,
`features/config.py`, `probing/config.py`) and is the only place its defaults are set;
experiment files choose a variant and say what differs. Any field can then be
overridden on the command line with `--config.key=value`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ml_collections

from gait_jax.errors import InputError


def check_variant(variant: str, variants: Sequence[str], job: str) -> None:
  """InputError unless `variant` is one of the job's `variants`."""
  if variant not in variants:
    raise InputError(f"unknown variant {variant!r} of the {job} config; expected one of "
                     f"{tuple(variants)}")


def parse_variant(arg: str | None, variants: Sequence[str], default: str,
                  options: Mapping[str, object] | None = None
                  ) -> tuple[str, ml_collections.ConfigDict]:
  """'paper,dtype=float32' → ('paper', ConfigDict(dtype='float32')).

  Args:
    arg: the text after ":" in --config (None or "" = the default variant).
    variants: the known variant names.
    default: the variant when `arg` names none.
    options: the known `key=value` options with their defaults (the value's type
      converts the text: int, float, bool "true"/"false", str).
  Raises:
    InputError for an unknown variant or option, or a value of the wrong type:
    nothing in `arg` is dropped silently.
  """
  options = dict(options or {})
  parts = [p.strip() for p in (arg or "").split(",") if p.strip()]
  variant = default
  if parts and "=" not in parts[0]:
    variant = parts.pop(0)
  check_variant(variant, variants, "experiment")
  out = ml_collections.ConfigDict(options)
  for part in parts:
    key, sep, text = part.partition("=")
    if not sep:
      raise InputError(f"config argument {part!r}: only the first item may be a variant; "
                       "the others are key=value")
    if key not in options:
      raise InputError(f"unknown config option {key!r} in {arg!r}; known options: "
                       f"{sorted(options) or 'none'}")
    out[key] = _convert(key, text, options[key])
  return variant, out


def _convert(key: str, text: str, default: object) -> object:
  if isinstance(default, bool):
    if text.lower() not in ("true", "false"):
      raise InputError(f"config option {key}={text!r}: expected true or false")
    return text.lower() == "true"
  try:
    return type(default)(text) if default is not None else text
  except ValueError as e:
    raise InputError(f"config option {key}={text!r}: expected {type(default).__name__}"
                     ) from e


def mesh_config(axes: Sequence[tuple[str, int]], **named_axes: object
                ) -> ml_collections.ConfigDict:
  """The `config.mesh` block.

  axes: (name, size) pairs over all devices, one size may be -1 (the rest).
  axis_type: "auto" (XLA propagates shardings from the declared ones) or "explicit".
  named_axes: which mesh axes play which role for the job, e.g. data_axes=("data",)
    (the batch is split over them) or target_axis="targets" (the probe's targets).
  """
  c = ml_collections.ConfigDict()
  c.axes = tuple(axes)
  c.axis_type = "auto"
  for name, value in named_axes.items():
    c[name] = value
  return c
