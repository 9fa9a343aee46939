"""The engineered-features job's config (`gait_jax.features.job`): every setting and
its default, and how they become the extractor's options.

Variants:
  default  every clip of every participant (split "all"), 2 Grain worker processes
  smoke    at most 2 clips per participant × task, in-process: for tests
"""

from __future__ import annotations

import dataclasses

import ml_collections

from gait_jax import configs, tracking
from gait_jax.data import config as data_config
from gait_jax.features import anthropometry, balance, events, extract, gait

VARIANTS = ("default", "smoke")


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
  """The features job config of a variant."""
  configs.check_variant(variant, VARIANTS, "features")
  c = ml_collections.ConfigDict()
  c.job = "features"
  c.data = data_config.get_data_config()
  c.data.split = "all"  # features for everyone; the probe makes the splits
  c.features = get_features_config()
  # W&B: counts, timings and the exclusion counts of the run (`tracking`).
  c.wandb = tracking.wandb_config()
  if variant == "default":
    c.data.worker_count = 2
  else:
    c.data.worker_count = 0
    c.data.max_clips_per_group = 2
  return c


# The option dataclasses whose fields make up `config.features`, each field named as in
# its dataclass (the names are unique across them); nested option fields are skipped.
_OPTIONS = (extract.ClipOptions, gait.GaitOptions, events.EventOptions,
            balance.BalanceOptions, anthropometry.BodySizeOptions)


def _own_fields(cls) -> list[dataclasses.Field]:
  return [f for f in dataclasses.fields(cls) if not dataclasses.is_dataclass(f.default)]


def get_features_config() -> ml_collections.ConfigDict:
  """The `config.features` block: the task → family rules, then every field of the
  extractor's option dataclasses with its default (documented on the dataclass:
  extract.ClipOptions, gait.GaitOptions, events.EventOptions, balance.BalanceOptions,
  anthropometry.BodySizeOptions), so the defaults live in one place and every one
  can be overridden: e.g. `--config.features.body_size=False` leaves out the
  body-size features (segment lengths and widths, `anthropometry.BODY_FEATURES`),
  whose columns then stay NaN.

  Which clips are read, and by how many worker processes, is `config.data`'s
  (tasks, participants, split, max_clips_per_group, worker_count).
  """
  c = ml_collections.ConfigDict()
  # Ordered "glob=family" rules matched against task names (first match wins);
  # families: walk, in_place, sit_to_stand, romberg. A task no rule matches gets
  # no features (its clips are reported).
  c.task_families = extract.DEFAULT_TASK_FAMILIES
  for cls in _OPTIONS:
    for field in _own_fields(cls):
      if field.name in c:
        raise ValueError(f"option {field.name!r} of {cls.__name__} is named twice")
      c[field.name] = field.default
  return c


def clip_options(c: ml_collections.ConfigDict) -> extract.ClipOptions:
  """The extractor's options from a `get_features_config()` block."""
  def build(cls, **nested):
    values = {f.name: type(f.default)(c[f.name]) for f in _own_fields(cls)}
    return cls(**values, **nested)
  return build(extract.ClipOptions,
               gait=build(gait.GaitOptions, events=build(events.EventOptions)),
               balance=build(balance.BalanceOptions),
               anthropometry=build(anthropometry.BodySizeOptions))
