"""GaitMAE and MAMP: the GaitModel protocol, exclusions, dtypes, remat, scanned
stacks, sharding names, and that a tiny model can fit a fixed batch."""

import functools
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from gait_jax import models
from gait_jax import skeleton
from gait_jax.models import losses
from gait_jax.models import masking

# Tiny test graphs compile several times faster without XLA's backend
# optimisations and fusion emitters (and run a little slower).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
JOINTS = skeleton.JOINT_SETS["default26"]
J = len(JOINTS)
B, T = 2, 16
ARCHS = ("smoke", "mamp_smoke")


def _batch(b: int = B, t: int = T, seed: int = 0) -> dict[str, jax.Array]:
  """Smooth synthetic walking-like motion, one unobserved stretch."""
  rng = np.random.default_rng(seed)
  pose = rng.uniform(-0.5, 0.5, size=(b, 1, J, 3))
  phase = rng.uniform(0, 2 * np.pi, size=(b, 1, J, 1))
  time = np.arange(t)[None, :, None, None] / 30.0
  xyz = pose + 0.1 * np.sin(2 * np.pi * time + phase)
  x = np.concatenate([xyz, np.ones((b, t, J, 1))], -1).astype(np.float32)
  x[0, 3:6, 5] = 0  # unobserved joint-frames
  return {"skeleton": jnp.asarray(x), "joint_present": jnp.ones((b, J), jnp.float32),
          "valid": jnp.ones((b,), bool), "clip_id": jnp.arange(b, dtype=jnp.int32)}


def _config(preset: str, **overrides):
  cfg = models.get_model_config(preset)
  if cfg.name == "gaitmae":
    cfg.depth = 1
  cfg.update(overrides)
  return cfg


_INITIAL_STATES = {}


def _build(cfg, seed: int = 0, num_frames: int = T):
  """models.build, initialised under one jit per parameter structure.

  Eager initialisation compiles every initializer for every shape (slow on CPU);
  configs that differ only in dtype, remat, dropout or masking share the same
  parameters, so they reuse one initial state (bit-identical to building them).
  """
  def make():
    return models.build(cfg, JOINTS, num_frames, rngs=nnx.Rngs(params=seed))

  graphdef, abstract = nnx.split(nnx.eval_shape(make))
  key = (seed, jax.tree.structure(abstract),
         tuple(x.shape for x in jax.tree.leaves(abstract)))
  if key not in _INITIAL_STATES:
    _INITIAL_STATES[key] = _jit(lambda: nnx.state(make()))()
  return nnx.merge(graphdef, jax.tree.map(lambda x: x, _INITIAL_STATES[key]))


def _jit(fn, **kwargs):
  return jax.jit(fn, compiler_options=FAST_COMPILE, **kwargs)


def _jit_loss(model, train: bool = True):
  """The trainer's view: a jitted function of (param state, batch, rng)."""
  graphdef, state = nnx.split(model)
  return _jit(lambda s, batch, rng: nnx.merge(graphdef, s).loss(batch, rng, train=train)
              ), state


def test_presets_and_build_checks():
  for preset in models.PRESETS:
    cfg = models.get_model_config(preset)
    assert cfg.name in ("gaitmae", "mamp") and cfg.dtype == "float32"
  paper = models.get_model_config("paper")
  assert (paper.depth, paper.width, paper.num_heads, paper.mlp_ratio) == (8, 128, 8, 2)
  assert paper.temporal_pos == "rotary" and paper.num_sinks == 0 and not paper.remat
  with pytest.raises(ValueError, match="unknown model preset"):
    models.get_model_config("huge")
  with pytest.raises(ValueError, match="patch_frames"):
    _build(_config("mamp_smoke"), num_frames=15)
  with pytest.raises(ValueError, match="unknown model"):
    _build(_config("smoke", name="resnet"))


@pytest.mark.parametrize("preset", ARCHS)
def test_both_architectures_implement_the_gait_model_protocol(preset):
  cfg = _config(preset)
  model = nnx.eval_shape(lambda: models.build(cfg, JOINTS, T, rngs=nnx.Rngs(params=0)))
  assert isinstance(model, models.GaitModel)
  assert model.joints == tuple(JOINTS) and model.num_frames == T
  assert model.depth == cfg.depth
  graphdef, state = nnx.split(model)
  batch, rng = _batch(), jax.random.key(0)
  skel, present = batch["skeleton"], batch["joint_present"]

  def shapes(method):  # shapes of model.method(...), traced, nothing computed
    return jax.eval_shape(lambda s: method(nnx.merge(graphdef, s)), state)

  loss, metrics = shapes(lambda m: m.loss(batch, rng, train=True))
  assert loss.shape == () and all(v.shape == () for v in metrics.values())
  out = shapes(lambda m: m.reconstruct(batch, rng))
  assert out["reconstruction"].shape == out["target"].shape == (B, T, J, 3)
  tokens = (B, T // cfg.get("patch_frames", 1), J, cfg.width)
  encoded = shapes(lambda m: m.encode(skel, present, layer=0))
  assert encoded.shape == tokens and encoded.dtype == jnp.float32
  assert shapes(lambda m: m.features(skel, hide_regions=("head",))).shape == tokens


@pytest.mark.parametrize("preset", ARCHS)
def test_api_shapes_finite_loss_and_exclusions(preset):
  cfg = _config(preset)
  model = _build(cfg)
  loss_fn, state = _jit_loss(model)
  batch = _batch(b=3)
  rng = jax.random.key(3)
  loss, metrics = loss_fn(state, batch, rng)
  assert loss.shape == () and loss.dtype == jnp.float32 and np.isfinite(loss)
  assert {"loss", "position", "velocity", "hidden_fraction"} <= set(metrics)
  for v in metrics.values():
    assert v.shape == () and v.dtype == jnp.float32 and np.isfinite(v)
  expected_hidden = cfg.get("mask_ratio", 4 / 6)
  assert abs(float(metrics["hidden_fraction"]) - expected_hidden) < 0.15

  # Absent joints and invalid examples do not count: wild values there (NaN
  # included) give the same loss as zeros.
  batch["joint_present"] = batch["joint_present"].at[:, 7].set(0)
  batch["valid"] = jnp.array([True, False, True])
  clean = {**batch, "skeleton": batch["skeleton"].at[:, :, 7].set(0).at[1].set(0)}
  wild = batch["skeleton"].at[:, :, 7].set(55.0).at[1].multiply(-300.0)
  wild = wild.at[1, 0, 0, 0].set(jnp.nan)
  ref, ref_metrics = loss_fn(state, clean, rng)
  got, got_metrics = loss_fn(state, {**batch, "skeleton": wild}, rng)
  for k in ref_metrics:
    np.testing.assert_allclose(got_metrics[k], ref_metrics[k], rtol=1e-6)
  # ... while the valid examples do count.
  other, _ = loss_fn(state, {**clean, "skeleton": clean["skeleton"].at[0].add(0.3)}, rng)
  assert abs(float(other) - float(ref)) > 1e-4


@pytest.mark.parametrize("preset", ARCHS)
def test_reconstruct_and_encode(preset):
  cfg = _config(preset)
  model = _build(cfg)
  batch = _batch()
  leg = masking.region_ids(JOINTS) == masking.MASK_REGIONS.index("left_leg")
  moved = batch["skeleton"].at[:, :, leg, :3].add(1.0)

  @_jit
  def run(batch, moved, rng):
    out = model.reconstruct(batch, rng)
    skel, present = batch["skeleton"], batch["joint_present"]
    feats = {"last": model.encode(skel, present), "first": model.encode(skel, present, layer=0),
             "features": model.features(skel),
             "moved": model.encode(moved, present),
             "hide": model.encode(skel, present, hide_regions=("left_leg",)),
             "hide_moved": model.encode(moved, present, hide_regions=("left_leg",))}
    return out, feats

  out, feats = run(batch, moved, jax.random.key(1))
  assert out["target"].shape == out["reconstruction"].shape == (B, T, J, 3)
  assert out["reconstruction"].dtype == jnp.float32
  assert out["hidden"].shape == (B, T, J) and out["hidden"].dtype == jnp.bool_
  np.testing.assert_array_equal(out["target"], batch["skeleton"][..., :3])

  t_out = T // cfg.get("patch_frames", 1)
  for v in feats.values():
    assert v.shape == (B, t_out, J, cfg.width) and v.dtype == jnp.float32
  # Inputs of a region hidden at encode time do not reach the features.
  np.testing.assert_allclose(feats["hide"], feats["hide_moved"], atol=1e-6)
  # encode = features of the cleaned clip (nothing to clean here), in float32.
  np.testing.assert_allclose(feats["features"], feats["last"], rtol=1e-6)
  assert not np.allclose(feats["last"], feats["moved"], atol=1e-3)
  with pytest.raises(ValueError, match="out of range"):
    model.encode(batch["skeleton"], batch["joint_present"], layer=cfg.depth)


@pytest.mark.parametrize("preset", ARCHS)
def test_bfloat16_compute_with_float32_params(preset):
  model = _build(_config(preset, dtype="bfloat16"))
  graphdef, state = nnx.split(model)
  batch = _batch()

  @_jit
  def run(state, batch, rng):
    m = nnx.merge(graphdef, state)
    loss, metrics = m.loss(batch, rng)
    return loss, metrics, m.features(batch["skeleton"])

  loss, metrics, inner = run(state, batch, jax.random.key(0))
  assert loss.dtype == jnp.float32 and np.isfinite(loss)
  assert all(v.dtype == jnp.float32 for v in metrics.values())
  assert inner.dtype == jnp.bfloat16
  assert {x.dtype for x in jax.tree.leaves(state)} == {jnp.dtype(jnp.float32)}


def _loss_and_grads(model, batch, rng):
  graphdef, state = nnx.split(model)

  def f(s):
    return nnx.merge(graphdef, s).loss(batch, rng, train=True)[0]

  return _jit(jax.value_and_grad(f))(state)


@pytest.mark.parametrize("preset", ARCHS)
def test_remat_gives_the_same_loss_and_gradients(preset):
  batch, rng = _batch(), jax.random.key(5)
  ref_loss, ref_grads = _loss_and_grads(_build(_config(preset, dropout=0.1)), batch, rng)
  loss, grads = _loss_and_grads(_build(_config(preset, dropout=0.1, remat=True)), batch, rng)
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               grads, ref_grads)
  assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads))


@pytest.mark.parametrize("temporal_pos, sinks", [("learned", 0), ("rotary", 2)])
def test_temporal_positions_and_sinks(temporal_pos, sinks):
  model = _build(_config("smoke", temporal_pos=temporal_pos, num_sinks=sinks))
  names = {"/".join(map(str, path)) for path, _ in nnx.to_flat_state(nnx.state(model))}
  assert any("temporal_embed" in n for n in names) == (temporal_pos == "learned")
  assert ("sinks" in names) == (sinks > 0)
  x = masking.apply_mask(_batch()["skeleton"], jnp.zeros((B, T, J), bool))
  y, y_rev = _jit(lambda x: (model(x), model(x[:, ::-1])[:, ::-1]))(x)
  assert y.shape == (B, T, J, 3) and np.isfinite(y).all()
  # Frame order matters to the model: the position signal reaches it.
  assert not np.allclose(y, y_rev, atol=1e-5)
  if temporal_pos == "learned":
    with pytest.raises(ValueError, match="learned temporal embedding"):
      jax.eval_shape(model, jnp.zeros((B, 2 * T, J, 5)))


@pytest.mark.parametrize("preset", ARCHS)
def test_parameters_carry_logical_axis_names(preset):
  model = _build(_config(preset))
  specs = nnx.get_partition_spec(nnx.state(model, nnx.Param))
  flat = {"/".join(map(str, k)): v.get_value() for k, v in nnx.to_flat_state(specs)}
  params = {"/".join(map(str, k)): v for k, v in nnx.to_flat_state(nnx.state(model))}
  assert flat.keys() == params.keys()
  logical = {"embed", "mlp", "heads", "kv", "joints", "frames", "layers"}
  used = set()
  for name, spec in flat.items():
    assert isinstance(spec, P) and len(spec) == params[name].ndim, name
    assert set(spec) - {None} <= logical, (name, spec)
    used |= set(spec) - {None}
  # MAMP: learned frame positions; GaitMAE: rotary. Both: stacked layers.
  expected = logical if preset == "mamp_smoke" else logical - {"frames"}
  assert used == expected
  if preset == "mamp_smoke":
    assert flat["encoder/attn/qkv_kernel"] == P("layers", "embed", None, "heads", "kv")
    assert flat["decoder/mlp/fc1/bias"] == P("layers", "mlp")
    assert flat["patch_pos"] == P("frames", "embed")
  else:
    assert flat["embed_kernel"] == P("joints", None, "embed")
    assert flat["layers/st_temporal/attn/qkv_kernel"] == P("layers", "embed", None,
                                                            "heads", "kv")
    assert flat["layers/ts_spatial/mlp/fc1/kernel"] == P("layers", "embed", "mlp")


def _overfit(preset: str, steps: int, lr: float, **overrides) -> tuple[float, float]:
  """Trains on one fixed batch and masking key, the way the trainer steps."""
  model = _build(_config(preset, **overrides))
  graphdef, state = nnx.split(model)
  opt = optax.adamw(lr, weight_decay=0.0)
  opt_state = opt.init(state)
  batch, rng = _batch(), jax.random.key(7)

  @_jit
  def step(state, opt_state, batch, rng):
    def loss_fn(s):
      return nnx.merge(graphdef, s).loss(batch, rng, train=True)

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state)
    updates, opt_state = opt.update(grads, opt_state, state)
    return optax.apply_updates(state, updates), opt_state, metrics

  losses = []
  for _ in range(steps):
    state, opt_state, metrics = step(state, opt_state, batch, rng)
    losses.append(metrics["loss"])
  return float(losses[0]), float(losses[-1])


@pytest.mark.parametrize("preset, overrides", [
    ("smoke", {"masking": {"noise_std": 0.0}}),
    ("mamp_smoke", {"mask_ratio": 0.5}),
])
def test_tiny_model_overfits_a_fixed_batch(preset, overrides):
  first, last = _overfit(preset, steps=150, lr=1e-2, **overrides)
  assert last < first / 5, (first, last)


def test_mamp_encoder_sees_only_visible_tokens():
  cfg = _config("mamp_smoke")
  model = _build(cfg)
  batch = _batch()
  p = cfg.patch_frames
  n = (T // p) * J
  keep, _, hidden = masking.split_tokens(jax.random.key(0), B, n, cfg.mask_ratio)
  assert keep.shape == (B, masking.num_visible(n, cfg.mask_ratio))
  # Scramble every hidden token's frames: the encoder output does not move ...
  tok_hidden = np.asarray(hidden).reshape(B, T // p, 1, J).repeat(p, axis=2)
  scrambled = jnp.where(jnp.asarray(tok_hidden.reshape(B, T, J))[..., None], 9.0,
                        batch["skeleton"])
  # ... while moving one visible token's frame does.
  n0 = int(keep[0, 0])
  moved = batch["skeleton"].at[0, (n0 // J) * p, n0 % J, :3].add(0.5)
  encode = jax.vmap(model.encode_visible, in_axes=(0, None))
  ref, same, diff = _jit(encode)(jnp.stack([batch["skeleton"], scrambled, moved]), keep)
  assert ref.shape == (B, keep.shape[1], cfg.width)
  np.testing.assert_allclose(same, ref, atol=1e-6)
  assert not np.allclose(diff, ref, atol=1e-5)


def test_bone_length_term_reads_each_joints_mean_token():
  """cfg.loss.bone_weight: the loss adds bone_weight × the L1 error of a linear head on
  each joint's time-mean token against its bone's mean length (joint to the nearest
  ancestor in the set, frames where both ends count)."""
  joints = ("PELVIS", "HIP_LEFT", "KNEE_LEFT", "ANKLE_LEFT", "HEAD")
  np.testing.assert_array_equal(skeleton.parents_within(joints), [-1, 0, 1, 2, 0])
  xyz = jnp.zeros((1, 3, 5, 3)).at[:, :, 2, 1].set(-0.5).at[:, :, 3, 1].set(-0.9)
  xyz = xyz.at[:, :, 4, 1].set(0.6).at[0, 1, 3, 1].set(-5.0)  # frame 1: a wild ankle
  counted = jnp.ones((1, 3, 5)).at[0, 1, 3].set(0.0)           # ... that does not count
  lengths, known = losses.bone_lengths(xyz, counted, jnp.array([-1, 0, 1, 2, 0]))
  np.testing.assert_allclose(lengths, [[0.0, 0.0, 0.5, 0.4, 0.6]], atol=1e-6)
  np.testing.assert_array_equal(known, [[0, 1, 1, 1, 1]])

  plain = _build(_config("smoke"))
  cfg = _config("smoke")
  cfg.loss.bone_weight = 2.0
  model = _build(cfg)
  assert plain.bone_head is None and model.bone_head.kernel.shape == (cfg.width, 1)
  batch, rng = _batch(), jax.random.key(0)
  loss, metrics = _jit(lambda: model.loss(batch, rng, train=False))()
  skel, counted = losses.clean_inputs(batch)
  hidden = masking.make_mask(jax.random.split(rng, 3)[0], B, T, model.joint_regions,
                             model.mask_spec)
  tokens = model._stream(masking.apply_mask(skel, hidden))  # pylint: disable=protected-access
  target, known = losses.bone_lengths(skel[..., :3], counted, jnp.array(model.parents))
  bone = jnp.sum(jnp.abs(model.bone_length_head(tokens) - target) * known) / known.sum()
  np.testing.assert_allclose(metrics["bone"], bone, rtol=1e-5)
  np.testing.assert_allclose(loss, metrics["position"] + 0.1 * metrics["velocity"]
                             + 2.0 * bone, rtol=1e-5)


def test_bone_channel_is_each_seen_joints_distance_to_its_parent():
  """cfg.bone_channel: one more input channel, the joint's distance to its parent in
  the frame, 0 where either end is hidden or unobserved (and for the root)."""
  model = _build(_config("smoke", bone_channel=True))
  assert model.embed_kernel.shape == (J, 6, model.joint_embed.shape[1])
  skel = np.asarray(_batch()["skeleton"])  # joint 5 unobserved in frames 3-5 of clip 0
  hidden = np.zeros((B, T, J), bool)
  hidden[1, 2, 0] = True  # the root, parent of joints 1 and 18, hidden in one frame
  x = masking.apply_mask(jnp.asarray(skel), jnp.asarray(hidden))
  got = np.asarray(_jit(model._bone_lengths)(x))  # pylint: disable=protected-access
  parents = np.asarray(model.parents)
  want = np.linalg.norm(skel[..., :3] - skel[:, :, np.maximum(parents, 0), :3], axis=-1)
  seen = ~hidden & (skel[..., 3] != 0)
  want = np.where(seen & seen[:, :, np.maximum(parents, 0)] & (parents >= 0), want, 0.0)
  # Zero somewhere: the root; joint 5 and its child; the root's three children.
  always = want.all(axis=(0, 1))
  assert np.flatnonzero(~always).tolist() == [0, 1, 5, 6, 12, 16]
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
  # The input projection reads it as its sixth channel.
  inputs = jnp.concatenate([x, jnp.asarray(want, jnp.float32)[..., None]], axis=-1)
  by_hand = (jnp.einsum("btjc,jcd->btjd", inputs, model.embed_kernel[...])
             + model.joint_embed[...])
  np.testing.assert_allclose(_jit(model._embed)(x), by_hand, rtol=1e-5, atol=1e-6)  # pylint: disable=protected-access


def test_published_input_sinks_and_pre_logits():
  """The published variant: 4 input channels through one shared projection (the mask
  flag is not read), 2 sink frames that the layers see but the output does not, a
  tanh pre-logits projection before the head."""
  cfg = _config("smoke", embedding="shared", mask_channel=False, num_sinks=2, pre_logits=8)
  model = _build(cfg)
  assert model.embed_kernel.shape == (4, cfg.width)
  assert model.pre_logits.kernel.shape == (cfg.width, 8) and model.head.kernel.shape == (8, 3)
  skel = _batch()["skeleton"]
  x = masking.apply_mask(skel, jnp.zeros((B, T, J), bool))
  flagged = x.at[..., 4].set(1.0)  # the mask channel alone changes nothing
  stream = _jit(lambda x: model._stream(x))  # pylint: disable=protected-access
  y, y_flag = _jit(lambda a, b: (model(a), model(b)))(x, flagged)
  assert y.shape == (B, T, J, 3)
  np.testing.assert_allclose(y, y_flag)
  assert stream(x).shape == (B, T, J, cfg.width)  # the sink frames are dropped
  # The sinks reach the clip's frames through the temporal attention.
  nnx.update(model, {"sinks": nnx.Param(jax.random.normal(jax.random.key(1),
                                                         model.sinks.shape))})
  assert not np.allclose(stream(x), _jit(lambda x: model._stream(x))(x), atol=1e-5)  # pylint: disable=protected-access
  per_joint = _build(_config("smoke"))
  assert per_joint.embed_kernel.shape == (J, 5, per_joint.joint_embed.shape[1])


def test_blocked_attention_matches_one_pass_values_and_gradients():
  from gait_jax.models import layers  # pylint: disable=import-outside-toplevel
  keys = jax.random.split(jax.random.key(0), 4)
  q = jax.random.normal(keys[0], (3, 2, 70, 8))  # [B', H, L, K]
  k, v = (jax.random.normal(key, (3, 2, 72, 8)) for key in keys[1:3])  # 2 more keys

  def total(q, k, v, block):
    return (layers.attention(q, k, v, block=block) ** 2).sum()

  full = jax.value_and_grad(total, argnums=(0, 1, 2))(q, k, v, 0)
  # One pair per step, at most 4 (6 pairs → 2 steps of 3), all 6 in one step.
  reference = jax.nn.dot_product_attention(*(x.swapaxes(1, 2) for x in (q, k, v)))
  np.testing.assert_allclose(layers.attention(q, k, v, block=70 * 72),
                             reference.swapaxes(1, 2), rtol=1e-5, atol=1e-6)
  for block in (70 * 72, 4 * 70 * 72, 6 * 70 * 72 - 1):
    value, grads = jax.value_and_grad(total, argnums=(0, 1, 2))(q, k, v, block)
    np.testing.assert_allclose(value, full[0], rtol=1e-5)
    for g, g_full in zip(grads, full[1]):
      np.testing.assert_allclose(g, g_full, rtol=1e-4, atol=1e-5)
  bf16 = layers.attention(*(x.astype(jnp.bfloat16) for x in (q, k, v)), block=70 * 72)
  assert bf16.dtype == jnp.bfloat16
  np.testing.assert_allclose(bf16.astype(jnp.float32), layers.attention(q, k, v),
                             atol=0.05)


def test_key_mask_equals_attention_over_the_kept_keys_alone():
  from gait_jax.models import layers  # pylint: disable=import-outside-toplevel
  keys = jax.random.split(jax.random.key(1), 3)
  q, k, v = (jax.random.normal(key, (3, 2, 40, 8)) for key in keys)  # [B', H, L, K]
  kept = [np.arange(40), np.arange(0, 40, 3), np.array([5])]
  mask = np.zeros((3, 40), bool)
  for i, idx in enumerate(kept):
    mask[i, idx] = True
  for block in (0, 40 * 40):  # one pass; one (sequence, head) pair per step
    out = layers.attention(q, k, v, block=block, key_mask=jnp.asarray(mask))
    for i, idx in enumerate(kept):
      alone = layers.attention(q[i:i + 1], k[i:i + 1, :, idx], v[i:i + 1, :, idx])
      np.testing.assert_allclose(out[i:i + 1], alone, rtol=1e-5, atol=1e-6)
  nothing = layers.attention(q, k, v, key_mask=jnp.zeros((3, 40), bool), block=40 * 40)
  assert np.isfinite(nothing).all()


@pytest.mark.parametrize("preset, always_hide", [("smoke", ()), ("smoke", ("head",)),
                                                 ("mamp_smoke", ())])
def test_per_example_hidden_mask_equals_hiding_regions_example_by_example(preset,
                                                                          always_hide):
  """encode(hidden=) with a different region set per example = encode(hide_regions=)
  of each example alone (GaitMAE: the model's always_hide on top of `hidden`)."""
  overrides = {"depth": 2}
  if preset == "smoke":
    overrides["masking"] = dict(models.get_model_config("smoke").masking,
                                always_hide=always_hide)
  else:  # MAMP: the blocked attention path as well
    overrides["attention_block"] = 2 * (T // 2) * J
  model = _build(_config(preset, **overrides))
  hides = [(), ("left_leg", "right_leg"), ("head", "torso", "left_arm", "right_arm"),
           tuple(masking.MASK_REGIONS)]
  batch = _batch(b=len(hides))
  regions = masking.region_ids(JOINTS)
  rows = np.stack([np.isin(regions, masking.region_index(h)) for h in hides])
  hidden = jnp.asarray(np.broadcast_to(rows[:, None], (len(hides), T, J)))

  @_jit
  def run(skel, present):
    together = model.encode(skel, present, layer=0, hidden=hidden)
    alone = [model.encode(skel[i:i + 1], present[i:i + 1], layer=0,
                          hide_regions=tuple(h) + always_hide)
             for i, h in enumerate(hides)]
    return together, jnp.concatenate(alone)

  together, alone = run(batch["skeleton"], batch["joint_present"])
  np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-5)
  assert not np.allclose(together[0], together[1], atol=1e-4)


@pytest.mark.parametrize("preset", ARCHS)
def test_scanned_layers_equal_applying_each_layer_in_turn(preset):
  model = _build(_config(preset, depth=3))
  skel = _batch()["skeleton"]
  if preset == "smoke":
    layers, norm = model.layers, model.norm
    embed = lambda s: model._embed(  # pylint: disable=protected-access  # noqa: E731
        masking.apply_mask(s, jnp.zeros((B, T, J), bool)))
  else:
    layers, norm, embed = model.encoder, model.encoder_norm, model.tokens
  graphdef, stacked = nnx.split(layers)

  @_jit
  def run(skel):
    h, by_hand = embed(skel), []
    for i in range(3):
      h = nnx.merge(graphdef, jax.tree.map(lambda a, i=i: a[i], stacked))(h)
      by_hand.append(h.reshape(B, -1, J, h.shape[-1]))
    scanned = [model.features(skel, layer=i) for i in range(3)]
    return by_hand, scanned, norm(by_hand[-1])

  by_hand, scanned, normed = run(skel)
  for i in range(2):  # earlier layers: the raw stream after layer i
    np.testing.assert_allclose(scanned[i], by_hand[i], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(scanned[2], normed, rtol=1e-5, atol=1e-5)
  assert not np.allclose(by_hand[0], by_hand[1], atol=1e-3)


@pytest.mark.parametrize("preset, published", [("smoke", False), ("smoke", True),
                                                ("mamp_smoke", False)])
def test_model_flops_match_xla_cost_analysis(preset, published):
  """Where XLA counts every op once (one layer, one-pass attention, no loop), its
  FLOP count agrees with the architecture's (XLA adds elementwise work)."""
  from gait_jax.models import flops  # pylint: disable=import-outside-toplevel
  cfg = _config(preset, attention_block=0, depth=1)
  if published:  # sink frames, shared 4-channel input, pre-logits
    cfg.update(num_sinks=2, embedding="shared", mask_channel=False, pre_logits=8)
  elif preset == "smoke":
    cfg.bone_channel = True
  if preset == "mamp_smoke":
    cfg.decoder_depth = 1
  model = _build(cfg)
  graphdef, state = nnx.split(model)
  batch = _batch()
  if preset == "smoke":
    fwd = lambda s, x: nnx.merge(graphdef, s)(  # noqa: E731
        masking.apply_mask(x, jnp.zeros((B, T, J), bool)))
  else:
    keep = jnp.tile(jnp.arange(masking.num_visible(T // cfg.patch_frames * J,
                                                   cfg.mask_ratio))[None], (B, 1))
    restore = jnp.tile(jnp.arange(T // cfg.patch_frames * J)[None], (B, 1))
    fwd = lambda s, x: nnx.merge(graphdef, s).decode(  # noqa: E731
        nnx.merge(graphdef, s).encode_visible(x, keep), restore, J)
  cost = jax.jit(fwd).lower(state, batch["skeleton"]).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  counted = flops.forward_flops(cfg, J, T) * B
  assert counted <= cost["flops"] <= 1.3 * counted, (counted, cost["flops"])


# --- The layers' hand-written pieces against plain JAX -------------------------


def _reference_norm(x, scale, bias, eps=1e-6):
  mean = x.mean(-1, keepdims=True)
  var = ((x - mean) ** 2).mean(-1, keepdims=True)
  return (x - mean) / jnp.sqrt(var + eps) * scale + bias


def test_layer_norm_backward_equals_autodiff_and_values_equal_flax():
  from gait_jax.models import layers  # pylint: disable=import-outside-toplevel
  keys = jax.random.split(jax.random.key(0), 4)
  x = 3.0 + 2.0 * jax.random.normal(keys[0], (4, 5, 16))
  scale = 1.0 + 0.3 * jax.random.normal(keys[1], (16,))
  bias = 0.1 * jax.random.normal(keys[2], (16,))
  ct = jax.random.normal(keys[3], x.shape)
  mine = jax.value_and_grad(lambda *a: (layers.norm(*a, 1e-6) * ct).sum(), (0, 1, 2))
  ref = jax.value_and_grad(lambda *a: (_reference_norm(*a) * ct).sum(), (0, 1, 2))
  (v1, g1), (v2, g2) = mine(x, scale, bias), ref(x, scale, bias)
  np.testing.assert_allclose(v1, v2, rtol=1e-5)
  for a, b in zip(g1, g2):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  # The module: nnx.LayerNorm's parameters (names, shapes, logical axes) and values.
  ours = layers.layer_norm(16, dtype=jnp.float32, rngs=nnx.Rngs(0))
  flax_ln = nnx.LayerNorm(16, epsilon=1e-6, rngs=nnx.Rngs(0))
  assert (jax.tree.map(jnp.shape, nnx.state(ours, nnx.Param))
          == jax.tree.map(jnp.shape, nnx.state(flax_ln, nnx.Param)))
  assert ours.scale.out_sharding == ("embed",) and ours.bias.out_sharding == ("embed",)
  for module in (ours, flax_ln):
    module.scale[...] = scale
    module.bias[...] = bias
  np.testing.assert_allclose(ours(x), flax_ln(x), rtol=1e-5, atol=1e-5)
  bf16 = layers.layer_norm(16, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))(x)
  assert bf16.dtype == jnp.bfloat16


def _reference_attention(x, attn, positions):
  """Attention over [B', L, D] written out: projections, rotate-half RoPE,
  softmax, output projection."""
  w = attn.qkv_kernel[...]
  qkv = jnp.einsum("bld,dthk->tbhlk", x, w) + attn.qkv_bias[...][:, None, :, None]
  q, k, v = qkv
  if attn.use_rotary:
    dim = q.shape[-1]
    inv_freq = 1.0 / (10_000.0 ** (jnp.arange(0, dim, 2) / dim))
    angles = positions[:, None] * inv_freq[None]
    cos, sin = jnp.cos(angles), jnp.sin(angles)

    def rotate(a):
      a1, a2 = jnp.split(a, 2, -1)
      return jnp.concatenate([a1 * cos - a2 * sin, a2 * cos + a1 * sin], -1)
    q, k = rotate(q), rotate(k)
  logits = jnp.einsum("bhlk,bhsk->bhls", q, k) / np.sqrt(q.shape[-1])
  out = jnp.einsum("bhls,bhsk->bhlk", jax.nn.softmax(logits, -1), v)
  return jnp.einsum("bhlk,hkd->bld", out, attn.out_kernel[...]) + attn.out_bias[...]


@pytest.mark.parametrize("rotary, block", [(True, 0), (True, 6 * 6), (False, 7 * 7)])
def test_attention_along_an_axis_of_the_stream_equals_attention_over_sequences(
    rotary, block):
  """Attention(x [B, T, J, D], seq_axis=1 or 2) = the written-out attention over the
  transposed [B·J, T, D] (or [B·T, J, D]) sequences: values and gradients."""
  from gait_jax.models import layers  # pylint: disable=import-outside-toplevel
  attn = layers.Attention(16, 2, use_rotary=rotary, attention_block=block,
                          rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(attn)
  params = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(jax.random.key(1), p.shape),
                        params)  # non-zero biases
  b, t, j = 2, 7, 6
  x = jax.random.normal(jax.random.key(2), (b, t, j, 16))
  ct = jax.random.normal(jax.random.key(3), x.shape)
  positions = jnp.arange(t, dtype=jnp.float32) - 1.0
  for axis in (1, 2):
    length = x.shape[axis]
    pos = positions if axis == 1 else jnp.arange(length, dtype=jnp.float32)

    def ours(params, x, axis=axis, pos=pos):
      return nnx.merge(graphdef, params)(x, pos, seq_axis=axis)

    def ref(params, x, axis=axis, pos=pos):
      seq = jnp.moveaxis(x, axis, 2).reshape(-1, length, 16)
      out = _reference_attention(seq, nnx.merge(graphdef, params), pos)
      return jnp.moveaxis(out.reshape(b, -1, length, 16), 2, axis)

    (v1, g1), (v2, g2) = (jax.value_and_grad(lambda p, x, f=f: (f(p, x) * ct).sum(), (0, 1))(
        params, x) for f in (ours, ref))
    np.testing.assert_allclose(ours(params, x), ref(params, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(v1, v2, rtol=1e-5)
    for a, c in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
      np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-4)


def test_blocked_attention_pads_a_last_short_step():
  """5 pairs at most 2 a step: 3 steps of 2, the last padded; same as one pass."""
  from gait_jax.models import layers  # pylint: disable=import-outside-toplevel
  q, k, v = (jax.random.normal(key, (5, 1, 9, 4)) for key in jax.random.split(jax.random.key(4), 3))
  total = lambda q, k, v, block: (layers.attention(q, k, v, block=block) ** 3).sum()  # noqa: E731
  full = jax.grad(total, (0, 1, 2))(q, k, v, 0)
  blocked = jax.grad(total, (0, 1, 2))(q, k, v, 2 * 81)
  for a, b in zip(blocked, full):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_dual_stream_layer_equals_the_transposing_formulation():
  """DualStreamLayer (blocks along axes of the stream, sigmoid fusion) = the
  published formulation: temporal blocks over the transposed [B·J, T, D]
  sequences, α = softmax(fuse([st; ts])); values and gradients, no dropout."""
  from gait_jax.models import gaitmae  # pylint: disable=import-outside-toplevel
  layer = gaitmae.DualStreamLayer(16, 2, 2.0, num_sinks=1, rotary=True, dropout_rate=0.1,
                                  dtype=jnp.float32, attention_impl=None,
                                  attention_block=0, rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(layer)
  params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.key(1), p.shape),
                        params)  # a non-trivial fusion
  b, t, j = 2, 6, 5
  x = jax.random.normal(jax.random.key(2), (b, t, j, 16))
  ct = jax.random.normal(jax.random.key(3), x.shape)
  positions = jnp.concatenate([jnp.zeros(1), jnp.arange(t - 1.0)])

  def ref(params, x):
    m = nnx.merge(graphdef, params)

    def spatial(block, h):
      return block(h.reshape(b * t, j, 16)).reshape(b, t, j, 16)

    def temporal(block, h):
      seq = h.transpose(0, 2, 1, 3).reshape(b * j, t, 16)
      return block(seq, None, positions).reshape(b, j, t, 16).transpose(0, 2, 1, 3)
    st = temporal(m.st_temporal, spatial(m.st_spatial, x))
    ts = spatial(m.ts_spatial, temporal(m.ts_temporal, x))
    alpha = jax.nn.softmax(m.fuse(jnp.concatenate([st, ts], -1)), -1)
    return alpha[..., :1] * st + alpha[..., 1:] * ts

  ours = lambda params, x: nnx.merge(graphdef, params)(x)  # noqa: E731
  np.testing.assert_allclose(ours(params, x), ref(params, x), rtol=1e-5, atol=1e-5)
  g1, g2 = (jax.grad(lambda p, x, f=f: (f(p, x) * ct).sum(), (0, 1))(params, x)
            for f in (ours, ref))
  for a, c in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
    np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("width", [64, 63])
def test_dropout_keeps_one_minus_rate_and_rescales(width):
  from gait_jax.models import layers  # pylint: disable=import-outside-toplevel
  x = jnp.ones((50, 40, width))
  assert layers.dropout(x, 0.1, None) is x and layers.dropout(x, 0.0, jax.random.key(0)) is x
  out = np.asarray(layers.dropout(x, 0.1, jax.random.key(0)))
  kept = out != 0
  assert abs(kept.mean() - 0.9) < 0.005
  np.testing.assert_allclose(out[kept], 1 / 0.9, rtol=1e-6)
  again = np.asarray(layers.dropout(x, 0.1, jax.random.key(0)))
  np.testing.assert_array_equal(out, again)
  assert not np.array_equal(out, np.asarray(layers.dropout(x, 0.1, jax.random.key(1))))
  # Neighbouring elements (the two halves of one 32-bit draw) are not correlated.
  if width % 2 == 0:
    halves = kept.reshape(-1, 2, width // 2)
    assert abs(np.corrcoef(halves[:, 0].ravel(), halves[:, 1].ravel())[0, 1]) < 0.02


def test_blocked_attention_under_a_mesh_runs_per_device_without_gathering_the_batch():
  """On a data 4 × tensor 2 mesh the chunked path runs on each device's sequences
  and heads (shard_map): the same values and gradients, and no all-gather in the
  compiled step (the partitioner alone gathered the whole batch to every device)."""
  from gait_jax import sharding  # pylint: disable=import-outside-toplevel
  from gait_jax.models import layers  # pylint: disable=import-outside-toplevel
  keys = jax.random.split(jax.random.key(5), 4)
  q, k, v = (jax.random.normal(key, (8, 2, 30, 4)) for key in keys[:3])  # [B', H, L, K]
  mask = jax.random.uniform(keys[3], (8, 30)) < 0.8
  total = lambda q, k, v: (layers.attention(q, k, v, block=2 * 900, key_mask=mask) ** 2).sum()  # noqa: E731
  want = jax.value_and_grad(total, (0, 1, 2))(q, k, v)
  mesh = sharding.make_mesh((("data", 4), ("tensor", 2)))
  rules = (("batch", "data"), ("heads", "tensor"))
  laid_out = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data", "tensor"))
  q, k, v = (jax.device_put(x, laid_out) for x in (q, k, v))
  with sharding.use_rules(mesh, rules):
    step = jax.jit(jax.value_and_grad(total, (0, 1, 2)))
    compiled = step.lower(q, k, v).compile()
    got = step(q, k, v)
  assert "all-gather" not in compiled.as_text()
  np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
  for g, g_want in zip(got[1], want[1]):
    np.testing.assert_allclose(g, g_want, rtol=1e-4, atol=1e-6)


def test_default_attention_is_cudnn_only_where_its_kernel_applies():
  from gait_jax.models import layers  # pylint: disable=import-outside-toplevel
  gpu = types.SimpleNamespace(platform="gpu", compute_capability="9.0")
  choose = functools.partial(layers.default_implementation, device=gpu)
  assert choose(jnp.bfloat16, 16, False) == "cudnn"
  assert choose(jnp.float16, 64, False) == "cudnn"
  assert choose(jnp.float32, 16, False) is None  # cuDNN's kernel is 16-bit only
  assert choose(jnp.bfloat16, 16, True) is None  # a key mask: XLA's
  assert choose(jnp.bfloat16, 12, False) is None  # head dim not a multiple of 8
  assert choose(jnp.bfloat16, 256, False) is None
  old_gpu = types.SimpleNamespace(platform="gpu", compute_capability="7.5")
  assert layers.default_implementation(jnp.bfloat16, 16, False, old_gpu) is None
  cpu = jax.devices("cpu")[0]
  assert layers.default_implementation(jnp.bfloat16, 16, False, cpu) is None
