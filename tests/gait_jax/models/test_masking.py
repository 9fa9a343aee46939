"""Masking: region spans, whole frames, ablation regions, input building, token splits."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gait_jax import skeleton
from gait_jax.models import configs
from gait_jax.models import gaitmae
from gait_jax.models import masking

# Small graphs compile several times faster without XLA's backend optimisations
# and fusion emitters.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
ALL32 = skeleton.JOINT_SETS["all32"]
REGIONS32 = masking.region_ids(ALL32)


def _cfg(**overrides):
  c = configs.get_model_config("smoke").masking
  c.update(overrides)
  return c


@functools.cache
def _masker(b: int, t: int, spec: gaitmae.MaskingSpec):
  return jax.jit(lambda r: masking.make_mask(r, b, t, REGIONS32, spec),
                 compiler_options=FAST_COMPILE)


def _mask(rng, b, t, regions, cfg) -> np.ndarray:
  assert regions is REGIONS32
  return np.asarray(_masker(b, t, gaitmae.MaskingSpec.from_config(cfg))(rng))


def test_region_ids_put_hands_with_their_arm():
  ids = dict(zip(ALL32, REGIONS32))
  arm = masking.MASK_REGIONS.index
  for side in ("LEFT", "RIGHT"):
    for joint in ("HAND", "HANDTIP", "THUMB", "ELBOW"):
      assert ids[f"{joint}_{side}"] == arm(f"{side.lower()}_arm")
  assert ids["HEAD"] == arm("head") and ids["FOOT_RIGHT"] == arm("right_leg")
  assert set(masking.region_ids(skeleton.JOINT_SETS["default26"])) == set(range(6))
  with pytest.raises(ValueError, match="unknown joint"):
    masking.region_ids(["KNEE"])
  with pytest.raises(ValueError, match="unknown masking regions"):
    masking.make_mask(jax.random.key(0), 1, 4, REGIONS32, _cfg(always_hide=("hands",)))


@pytest.mark.parametrize("span, k, frames", [(16, 4, 64), (5, 2, 23)])
def test_span_masking_hides_exactly_k_whole_regions_per_span(span, k, frames):
  b = 8
  hidden = _mask(jax.random.key(0), b, frames, REGIONS32,
                 _cfg(span_frames=span, regions_hidden=k, frame_ratio=0.0))
  assert hidden.shape == (b, frames, 32) and hidden.dtype == bool
  # A region is hidden or visible as a whole ...
  region_hidden = np.stack([hidden[..., REGIONS32 == r].all(-1) for r in range(6)], -1)
  region_any = np.stack([hidden[..., REGIONS32 == r].any(-1) for r in range(6)], -1)
  np.testing.assert_array_equal(region_any, region_hidden)
  # ... exactly k regions in every frame, and the same ones throughout a span.
  assert (region_hidden.sum(-1) == k).all()
  subsets = set()
  for ex in range(b):
    for start in range(0, frames, span):
      chunk = region_hidden[ex, start:start + span]
      assert (chunk == chunk[:1]).all()
      subsets.add(tuple(chunk[0]))
  # The choice varies across spans and examples.
  assert len(subsets) > 3
  first_span = {tuple(region_hidden[ex, 0]) for ex in range(b)}
  assert len(first_span) > 1
  assert len({tuple(region_hidden[0, s]) for s in range(0, frames, span)}) > 1


def test_regions_are_chosen_uniformly():
  hidden = _mask(jax.random.key(1), 512, 64, REGIONS32,
                 _cfg(span_frames=16, regions_hidden=2, frame_ratio=0.0))
  region_rate = [hidden[..., REGIONS32 == r].mean() for r in range(6)]
  np.testing.assert_allclose(region_rate, 2 / 6, atol=0.03)


def test_frame_masking_hides_whole_frames_at_the_configured_ratio():
  hidden = _mask(jax.random.key(2), 256, 128, REGIONS32,
                 _cfg(regions_hidden=0, frame_ratio=0.1))
  frame_hidden = hidden.all(-1)
  assert (hidden.any(-1) == frame_hidden).all()
  assert abs(frame_hidden.mean() - 0.1) < 0.01
  none = _mask(jax.random.key(2), 4, 32, REGIONS32, _cfg(regions_hidden=0, frame_ratio=0))
  assert not none.any()


def test_joint_masking_hides_single_joint_frames_and_keeps_the_other_draws():
  base = _cfg(regions_hidden=2, frame_ratio=0.05)
  plus = _cfg(regions_hidden=2, frame_ratio=0.05, joint_ratio=0.1)
  before = _mask(jax.random.key(4), 64, 64, REGIONS32, base)
  after = _mask(jax.random.key(4), 64, 64, REGIONS32, plus)
  assert (after | ~before).all()  # every span and frame draw is kept
  extra = after & ~before
  # Added joint-frames are isolated draws at the ratio, of the visible ones.
  assert abs(extra.sum() / (~before).sum() - 0.1) < 0.01
  assert not extra.all(-1).any()


def test_always_hide_regions_are_hidden_everywhere():
  cfg = _cfg(regions_hidden=1, frame_ratio=0.0, always_hide=("left_leg", "head"))
  hidden = _mask(jax.random.key(3), 16, 48, REGIONS32, cfg)
  always = np.isin(REGIONS32, masking.region_index(("left_leg", "head")))
  assert hidden[..., always].all()
  assert not hidden[..., ~always].all()
  fixed = np.asarray(masking.always_hidden(5, REGIONS32, ("right_arm",)))
  assert fixed.shape == (5, 32)
  assert (fixed[:, skeleton.JOINT_INDEX["THUMB_RIGHT"]]).all()
  assert fixed.sum() == 5 * 6  # shoulder, elbow, wrist + hand, tip, thumb


def test_make_mask_is_deterministic_in_the_key():
  cfg = _cfg()
  a = _mask(jax.random.key(4), 4, 32, REGIONS32, cfg)
  b = _mask(jax.random.key(4), 4, 32, REGIONS32, cfg)
  c = _mask(jax.random.key(5), 4, 32, REGIONS32, cfg)
  np.testing.assert_array_equal(a, b)
  assert (a != c).any()


def _skeleton(b=4, t=32, j=26, seed=0):
  rng = np.random.default_rng(seed)
  xyz = rng.normal(size=(b, t, j, 3)).astype(np.float32)
  conf = rng.uniform(0.1, 1, size=(b, t, j, 1)).astype(np.float32)
  x = np.concatenate([xyz, conf], -1)
  x[:, :, 0] = 0  # one unobserved joint
  return jnp.asarray(x)


def test_apply_mask_zeroes_and_flags_hidden_inputs():
  x = _skeleton()
  hidden = jax.random.bernoulli(jax.random.key(0), 0.5, x.shape[:3])
  out = np.asarray(jax.jit(masking.apply_mask, compiler_options=FAST_COMPILE)(x, hidden))
  h = np.asarray(hidden)
  assert out.shape == x.shape[:3] + (5,)
  assert (out[h][:, :4] == 0).all() and (out[h][:, 4] == 1).all()
  np.testing.assert_array_equal(out[~h][:, :4], np.asarray(x)[~h])
  assert (out[~h][:, 4] == 0).all()


def test_apply_mask_noise_only_on_visible_observed_xyz():
  x = _skeleton(b=8, t=64)
  hidden = jax.random.bernoulli(jax.random.key(0), 0.3, x.shape[:3])
  fn = jax.jit(masking.apply_mask, static_argnums=3, compiler_options=FAST_COMPILE)
  out = np.asarray(fn(x, hidden, jax.random.key(1), 0.05))
  h, xn = np.asarray(hidden), np.asarray(x)
  observed = (xn != 0).any(-1)
  vis = ~h & observed
  noise = out[..., :3][vis] - xn[..., :3][vis]
  assert abs(noise.std() - 0.05) < 0.002 and abs(noise.mean()) < 0.002
  np.testing.assert_array_equal(out[..., 3][~h], xn[..., 3][~h])  # confidence kept
  assert (out[~observed & ~h] == 0).all()  # unobserved stays exactly zero
  assert (out[h][:, :4] == 0).all()
  again = np.asarray(fn(x, hidden, jax.random.key(1), 0.05))
  other = np.asarray(fn(x, hidden, jax.random.key(2), 0.05))
  np.testing.assert_array_equal(out, again)
  assert (out != other).any()


def test_split_tokens_keeps_a_fixed_number_and_restores_order():
  keep, restore, hidden = jax.jit(lambda r: masking.split_tokens(r, 3, 40, 0.9),
                                  compiler_options=FAST_COMPILE)(jax.random.key(0))
  keep, restore, hidden = map(np.asarray, (keep, restore, hidden))
  assert keep.shape == (3, 4) and restore.shape == (3, 40)
  for b in range(3):
    np.testing.assert_array_equal(np.sort(restore[b]), np.arange(40))  # a permutation
    assert sorted(np.flatnonzero(~hidden[b])) == sorted(keep[b])
    # [visible..., hidden...] gathered by restore is back in token order.
    shuffled = np.concatenate([keep[b], np.argsort(restore[b])[4:]])
    np.testing.assert_array_equal(shuffled[restore[b]], np.arange(40))
  assert len({tuple(sorted(k)) for k in keep}) == 3
  assert masking.num_visible(1950, 0.9) == 195 and masking.num_visible(3, 0.9) == 1
  with pytest.raises(ValueError, match="mask_ratio"):
    masking.num_visible(10, 1.0)
