"""GaitMAE and MAMP: the GaitModel protocol, exclusions, dtypes, remat, scanned
stacks, sharding names, and that a tiny model can fit a fixed batch."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from gait_jax import models
from gait_jax import skeleton
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
  assert any(n.endswith("sinks") for n in names) == (sinks > 0)
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


def test_blocked_attention_matches_one_pass_values_and_gradients():
  from gait_jax.models import layers  # pylint: disable=import-outside-toplevel
  keys = jax.random.split(jax.random.key(0), 4)
  q = jax.random.normal(keys[0], (3, 2, 70, 8))  # [B', H, L, K]
  k, v = (jax.random.normal(key, (3, 2, 72, 8)) for key in keys[1:3])  # with 2 sinks

  def total(q, k, v, block):
    return (layers.attention(q, k, v, block=block) ** 2).sum()

  full = jax.value_and_grad(total, argnums=(0, 1, 2))(q, k, v, 0)
  # One pair per step, 4 pairs (6 pairs → uneven, padded), all 6 in one step.
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


@pytest.mark.parametrize("preset", ARCHS)
def test_model_flops_match_xla_cost_analysis(preset):
  """Where XLA counts every op once (one layer, one-pass attention, no loop), its
  FLOP count agrees with the architecture's (XLA adds elementwise work)."""
  from gait_jax.models import flops  # pylint: disable=import-outside-toplevel
  cfg = _config(preset, attention_block=0, depth=1)
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
