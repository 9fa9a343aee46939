"""Probing engine: agreement with scikit-learn, grouping, missing targets, sharding, FDR."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from sklearn import impute, linear_model, model_selection, preprocessing

from gait_jax import sharding
from gait_jax.probing import design, engine, folds, ridge, stats


def _problem(n, f, k, seed=0, nan_features=0.03, missing=0.1, n_binary=2):
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((n, f))
  x[:, :3] += x[:, 3:4]
  w = rng.standard_normal((f, k)) * 0.3
  y = x @ w + rng.standard_normal((n, k))
  y[:, k - n_binary:] = (y[:, k - n_binary:] > 0.5).astype(float)
  y[rng.random((n, k)) < missing] = np.nan
  y[:, 0] = x @ w[:, 0] + rng.standard_normal(n)  # one complete target
  if nan_features:
    x[rng.random((n, f)) < nan_features] = np.nan
  binary = np.arange(k) >= k - n_binary
  return x, y, binary


def _sklearn_nested(x, y, binary, groups, settings):
  """Nested CV done the slow way: a pipeline per fit, target and α, rows dropped per target."""
  fold_ids = folds.grouped_folds(groups, settings.n_folds, settings.seeds)
  alphas = np.asarray(sorted(settings.alphas, reverse=True))
  oof = np.full((len(settings.seeds),) + y.shape, np.nan)

  def fit_predict(train, test, t, alpha):
    xs = impute.SimpleImputer().fit(x[train]).transform(x)
    xs = preprocessing.StandardScaler().fit(xs[train]).transform(xs)
    obs = train & ~np.isnan(y[:, t])
    if binary[t]:
      m = linear_model.LogisticRegression(C=1 / alpha, class_weight="balanced", tol=1e-10,
                                          max_iter=5000).fit(xs[obs], y[obs, t])
      return m.decision_function(xs[test])
    return linear_model.Ridge(alpha=alpha).fit(xs[obs], y[obs, t]).predict(xs[test])

  for s, f in enumerate(fold_ids):
    for j in range(settings.n_folds):
      for t in range(y.shape[1]):
        errs = np.zeros(len(alphas))
        for i in set(range(settings.n_folds)) - {j}:
          train, test = (f != i) & (f != j), (f == i) & ~np.isnan(y[:, t])
          obs = train & ~np.isnan(y[:, t])
          for a, alpha in enumerate(alphas):
            p = fit_predict(train, test, t, alpha)
            if binary[t]:
              pos, tot = y[obs, t].sum(), obs.sum()
              w = np.where(y[test, t] > 0.5, tot / (2 * pos), tot / (2 * (tot - pos)))
              errs[a] += (w * (np.logaddexp(0, p) - y[test, t] * p)).sum()
            else:
              errs[a] += ((y[test, t] - p) ** 2).sum()
        oof[s, f == j, t] = fit_predict(f != j, f == j, t, alphas[int(np.argmin(errs))])
  return oof


@pytest.mark.parametrize("n,f,nan_features", [(90, 12, 0.03), (260, 110, 0.0)])
def test_nested_cv_matches_sklearn(n, f, nan_features):
  """Ridge and logistic out-of-fold predictions, α chosen by nested grouped CV, equal
  scikit-learn's Ridge / LogisticRegression on GroupKFold splits. (90, 12) runs the
  batched small-basis path with NaN features; (260, 110) the shared basis with the
  partial-fraction α sweep and per-fold summed Grams."""
  x, y, binary = _problem(n, f, 5, nan_features=nan_features)
  groups = np.repeat(np.arange(n // 2), 2)  # two rows per participant
  settings = engine.Settings(n_folds=3, seeds=(0,), alphas=(0.3, 3.0, 30.0, 300.0))
  ours = engine.cross_validate(x, y, binary, groups, settings)
  ref = _sklearn_nested(x, y, binary, groups, settings)
  np.testing.assert_allclose(ours.oof, ref, atol=1e-4, rtol=1e-4)


def test_folds_are_sklearn_group_kfold_and_never_split_a_person():
  groups = np.repeat(np.arange(40), np.arange(40) % 3 + 1)
  ids = folds.grouped_folds(groups, 5, (0, 7))
  for s, seed in enumerate((0, 7)):
    kf = model_selection.GroupKFold(5, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(kf.split(groups, groups=groups)):
      assert (ids[s, test] == k).all()
  folds.check_grouping(ids, groups)
  leaked = ids.copy()
  first = np.flatnonzero(groups == 2)
  leaked[0, first[0]] = (leaked[0, first[1]] + 1) % 5  # one of person 2's rows moves
  with pytest.raises(AssertionError, match="participant 2"):
    folds.check_grouping(leaked, groups)


def test_engine_keeps_each_person_in_one_fold():
  """Every out-of-fold prediction of a person comes from a model that never saw any of
  their rows: perturbing one person's other rows' targets leaves it unchanged."""
  x, y, binary = _problem(60, 6, 2, n_binary=0, missing=0.0, nan_features=0.0)
  groups = np.repeat(np.arange(20), 3)
  settings = engine.Settings(n_folds=4, seeds=(0,), alphas=(1.0,))
  base = engine.cross_validate(x, y, binary, groups, settings).oof
  y2 = y.copy()
  y2[[1, 2], :] += 100.0  # person 0's other rows
  moved = engine.cross_validate(x, y2, binary, groups, settings).oof
  np.testing.assert_allclose(moved[0, 0], base[0, 0], atol=1e-4)
  assert np.abs(moved[0, 3:] - base[0, 3:]).max() > 1.0  # others did see those rows


@pytest.mark.parametrize("n,f", [(80, 10), (240, 120), (40, 150)])
def test_missing_targets_equal_dropping_rows_per_target(n, f):
  """A fit with per-target missingness equals fitting each target on its own rows
  (every target its own pattern here, plus two sharing one), for several α."""
  rng = np.random.default_rng(1)
  x = rng.standard_normal((n, f)) + 0.5 * rng.standard_normal((n, 1))
  k = 7
  y = x[:, :4] @ rng.standard_normal((4, k)) + rng.standard_normal((n, k))
  y[rng.random((n, k)) < 0.2] = np.nan
  y[:, 6] = np.where(np.isnan(y[:, 5]), np.nan, y[:, 6])  # 5 and 6 share a pattern
  train = rng.random(n) < 0.7
  test = np.flatnonzero(~train)
  xt, basis = design.fit_basis(jax.numpy.asarray(x, np.float32), train)
  pats = ridge.patterns(~np.isnan(y))
  blocks = engine._block_sums(jax.numpy.asarray(x, np.float32),  # pylint: disable=protected-access
                              jax.numpy.asarray(y, np.float32), pats, [np.flatnonzero(train)])
  rfit = ridge.fit(xt, basis, train, blocks[0], pats)
  xs = preprocessing.StandardScaler().fit(x[train]).transform(x)
  for alpha in (3.0, 30.0):  # f32: conditioning at tiny α on n ≈ F is not the point
    ours = np.asarray(ridge.predict(rfit, test, np.full(k, alpha)))
    sse = np.asarray(ridge.heldout_sse(rfit, test, y.astype(np.float32), np.array([alpha])))[0]
    for t in range(k):
      obs = train & ~np.isnan(y[:, t])
      m = linear_model.Ridge(alpha=alpha).fit(xs[obs], y[obs, t])
      # f32 against f64: 1e-4 of the target's range.
      scale = np.nanmax(np.abs(y[:, t]))
      np.testing.assert_allclose(ours[:, t], m.predict(xs[test]), atol=1e-4 * scale, rtol=1e-4)
      held = ~np.isnan(y[test, t])
      ref = ((y[test, t][held] - m.predict(xs[test][held])) ** 2).sum()
      np.testing.assert_allclose(sse[t], ref, rtol=2e-4)


def test_partial_fraction_sweep_with_tied_eigenvalues():
  """Near-equal eigenvalues (orthogonal features) go through the near-pair list; the
  α sweep still equals predictions evaluated α by α."""
  rng = np.random.default_rng(2)
  n, n_train, f = 400, 300, 128
  # Training columns orthonormal and centred: the standardised Gram is n·I, every
  # eigenvalue tied (up to rounding).
  q, _ = np.linalg.qr(np.c_[np.ones(n_train), rng.standard_normal((n_train, f))])
  x = np.r_[q[:, 1:] * np.sqrt(n_train), rng.standard_normal((n - n_train, f))].astype(np.float32)
  y = (x[:, :5] @ rng.standard_normal((5, 6)) + rng.standard_normal((n, 6))).astype(np.float32)
  train = np.arange(n) < n_train
  test = np.flatnonzero(~train)
  xt, basis = design.fit_basis(jax.numpy.asarray(x), train)
  assert len(ridge._near_pairs(basis.values, basis.valid, 0.1)[0]) > 100  # pylint: disable=protected-access
  pats = ridge.patterns(np.ones_like(y, bool))
  blocks = engine._block_sums(jax.numpy.asarray(x), jax.numpy.asarray(y), pats,  # pylint: disable=protected-access
                              [np.flatnonzero(train)])
  rfit = ridge.fit(xt, basis, train, blocks[0], pats)
  alphas = np.logspace(-1, 5, 13)
  sse = np.asarray(ridge.heldout_sse(rfit, test, y, alphas))
  for i, alpha in enumerate(alphas):
    pred = np.asarray(ridge.predict(rfit, test, np.full(6, alpha)))
    np.testing.assert_allclose(sse[i], ((y[test] - pred) ** 2).sum(0), rtol=1e-4)


def test_sharded_targets_equal_unsharded():
  assert len(jax.devices()) == 8
  x, y, binary = _problem(70, 9, 13, n_binary=4)
  groups = np.arange(70)
  base = engine.Settings(n_folds=3, seeds=(0,), alphas=(1.0, 10.0, 100.0))
  mesh = sharding.make_mesh((("targets", -1),))
  plain = engine.cross_validate(x, y, binary, groups, base)
  sharded = engine.cross_validate(x, y, binary, groups,
                                  engine.Settings(n_folds=3, seeds=(0,),
                                                  alphas=(1.0, 10.0, 100.0), mesh=mesh))
  np.testing.assert_allclose(sharded.oof, plain.oof, atol=1e-5, rtol=1e-5)
  np.testing.assert_array_equal(sharded.alpha, plain.alpha)


def test_fdr_is_calibrated_on_null_targets():
  """BH at q over many null and a few real targets: the false discovery proportion,
  averaged over data seeds, stays at or below q."""
  q, fdps, found = 0.10, [], 0
  for seed in range(4):
    rng = np.random.default_rng(seed)
    n, k_null, k_real = 100, 150, 15
    x = rng.standard_normal((n, 8))
    y = rng.standard_normal((n, k_null + k_real))
    y[:, k_null:] += x[:, :1] * 0.8
    pred = engine.cross_validate(x, y, np.zeros(y.shape[1], bool), np.arange(n),
                                 engine.Settings(n_folds=5, seeds=(0,)))
    sc = stats.continuous_scores(y, stats.average_seeds(pred.oof))
    _, sig = stats.fdr(sc["p"], q)
    found += sig[k_null:].sum()
    fdps.append(sig[:k_null].sum() / max(sig.sum(), 1))
  assert np.mean(fdps) <= q
  assert found >= 0.8 * 4 * 15  # and the real ones are found


def _gain(x_emb, cov, y, n_boot=400):
  settings = engine.Settings(n_folds=5, seeds=(0, 1))
  binary = np.zeros(y.shape[1], bool)
  groups = np.arange(len(y))
  base = stats.average_seeds(engine.cross_validate(cov, y, binary, groups, settings).oof)
  full = stats.average_seeds(engine.cross_validate(np.c_[cov, x_emb], y, binary, groups,
                                                   settings).oof)
  w = stats.resample_weights(groups, n_boot, 0)
  p = stats.bootstrap_p(stats.pearson(y, full, w) - stats.pearson(y, base, w))
  return stats.fdr(p, 0.10)[1]


def test_gain_over_covariates_needs_real_extra_signal():
  rng = np.random.default_rng(0)
  n, k = 150, 8
  cov = rng.standard_normal((n, 3))
  latent = rng.standard_normal((n, 1))
  y_cov = cov @ rng.uniform(0.5, 1.0, (3, k)) + rng.standard_normal((n, k))
  noisy_copy = np.c_[cov + 0.3 * rng.standard_normal((n, 3)), rng.standard_normal((n, 10))]
  assert not _gain(noisy_copy, cov, y_cov).any()
  y_extra = y_cov + 1.2 * latent
  informative = np.c_[latent + 0.3 * rng.standard_normal((n, 1)), rng.standard_normal((n, 10))]
  assert _gain(informative, cov, y_extra).sum() >= k - 1


def test_bootstrap_auc_and_scores_match_scipy_and_sklearn():
  from sklearn import metrics  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(3)
  y = (rng.random((80, 3)) < 0.3).astype(float)
  s = y + rng.standard_normal((80, 3))
  s[:5, 0] = s[5:10, 0]  # ties
  y[:4, 1] = np.nan
  ones = np.ones((1, 80))
  boot = stats.bootstrap_auc(y, s, ones)[0]
  sc = stats.binary_scores(y, s)
  for j in range(3):
    ok = ~np.isnan(y[:, j])
    assert boot[j] == pytest.approx(metrics.roc_auc_score(y[ok, j], s[ok, j]))
    assert sc["auc"][j] == pytest.approx(boot[j])
  yc = rng.standard_normal((50, 2))
  pc = yc + rng.standard_normal((50, 2))
  from scipy import stats as sps  # pylint: disable=import-outside-toplevel
  cs = stats.continuous_scores(yc, pc)
  for j in range(2):
    ref = sps.pearsonr(yc[:, j], pc[:, j], alternative="greater")
    assert cs["r"][j] == pytest.approx(ref.statistic, abs=1e-10)
    assert cs["p"][j] == pytest.approx(ref.pvalue, rel=1e-6)


def test_power_fdp_against_truth():
  truth = {"targets": {"a": {"category": "gait"}, "b": {"category": "covariate_only"},
                       "c": {"category": None}, "d": {"category": "gait"}}}
  out = stats.power_fdp({"a": True, "b": True, "c": True, "d": False}, truth)
  assert out == {"power": 2 / 3, "fdp": 1 / 3, "discoveries": 3, "true": 3}
  adj = stats.power_fdp({"a": True, "b": True, "c": False, "d": False}, truth,
                        covariate_adjusted=True)
  assert adj["power"] == 0.5 and adj["fdp"] == 0.5
