"""One variant parser, one base config per job, every experiment file's variants."""

from __future__ import annotations

import importlib.util

import conftest
import pytest

from gait_jax import configs, main
from gait_jax.errors import InputError

EXPERIMENTS = {"pretrain_gaitmae.py": ("paper", "small", "smoke"),
               "pretrain_mamp.py": ("paper", "small", "smoke"),
               "embed.py": ("default", "ablations", "per_joint", "smoke"),
               "features.py": ("default", "smoke"),
               "probe.py": ("paper", "smoke")}


def _experiment(name: str):
  spec = importlib.util.spec_from_file_location(name[:-3], conftest.REPO / "experiments" / name)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_parse_variant_refuses_what_it_does_not_know():
  variant, opts = configs.parse_variant("paper,steps=3,fast=true", ("paper", "smoke"), "smoke",
                                        {"steps": 1, "fast": False, "name": ""})
  assert variant == "paper" and opts.steps == 3 and opts.fast is True and opts.name == ""
  assert configs.parse_variant(None, ("paper", "smoke"), "smoke")[0] == "smoke"
  assert configs.parse_variant("steps=2", ("a",), "a", {"steps": 1})[1].steps == 2
  with pytest.raises(InputError, match="unknown variant 'big'"):
    configs.parse_variant("big", ("paper", "smoke"), "smoke")
  with pytest.raises(InputError, match="unknown config option 'seed'"):
    configs.parse_variant("paper,seed=1", ("paper",), "paper")  # never dropped silently
  with pytest.raises(InputError, match="expected int"):
    configs.parse_variant("paper,steps=many", ("paper",), "paper", {"steps": 1})
  with pytest.raises(InputError, match="only the first item"):
    configs.parse_variant("paper,smoke", ("paper", "smoke"), "paper")


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_experiment_variant_builds_and_names_a_job(name):
  module = _experiment(name)
  for variant in EXPERIMENTS[name]:
    config = module.get_config(variant)
    assert config.job in main.JOBS
    assert config.job == "features" or "axis_type" in config.mesh  # numpy on the host
  with pytest.raises(InputError):
    module.get_config("no_such_variant")


def test_one_knob_per_setting():
  """The knobs removed as duplicates or dead stay removed."""
  features = _experiment("features.py").get_config("smoke")
  assert "max_clips_per_group" not in features.features
  assert features.data.max_clips_per_group == 2
  for variant in ("paper", "small", "smoke"):
    pretrain = _experiment("pretrain_mamp.py").get_config(variant)
    assert "param_dtype" not in pretrain.model and "hidden_only" not in pretrain.model.loss
  probe = _experiment("probe.py").get_config("paper")
  assert "n_bootstrap" not in probe and probe.null_targets > 0


def test_feature_options_have_one_source_of_defaults():
  """config.features is built from the extractor's option dataclasses: the defaults
  match exactly, every field is there, and an override reaches the nested option."""
  from gait_jax.features import config as features_config  # pylint: disable=import-outside-toplevel
  from gait_jax.features import extract  # pylint: disable=import-outside-toplevel
  block = features_config.get_features_config()
  assert features_config.clip_options(block) == extract.ClipOptions()
  block.min_prominence, block.sts_min_range_m = 0.4, 0.2
  opts = features_config.clip_options(block)
  assert opts.gait.events.min_prominence == 0.4 and opts.balance.sts_min_range_m == 0.2
