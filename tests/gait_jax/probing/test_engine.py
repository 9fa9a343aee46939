"""Probing engine: agreement with scikit-learn, grouping, missing targets, sharding, FDR."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from sklearn import impute, linear_model, model_selection, preprocessing

from gait_jax import sharding
from gait_jax.probing import design, engine, folds, logistic, ridge, stats


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


def _settings(alphas, mesh=None, binary_model="logistic"):
  return engine.Settings(alphas=tuple(alphas), binary_model=binary_model, logistic_patience=2,
                         mesh=mesh, target_axis="targets")


DEFAULT_ALPHAS = tuple(np.logspace(-1, 5, 13))


def _cv(x, y, binary, groups, n_folds, seeds, alphas=DEFAULT_ALPHAS, **kwargs):
  fold_ids = folds.grouped_folds(groups, n_folds, seeds)
  return engine.cross_validate(x, y, binary, fold_ids, _settings(alphas, **kwargs))


def _sklearn_nested(x, y, binary, groups, n_folds, seeds, alphas):
  """Nested CV done the slow way: a pipeline per fit, target and α, rows dropped per target."""
  fold_ids = folds.grouped_folds(groups, n_folds, seeds)
  alphas = np.asarray(sorted(alphas, reverse=True))
  oof = np.full((len(seeds),) + y.shape, np.nan)

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
    for j in range(n_folds):
      for t in range(y.shape[1]):
        errs = np.zeros(len(alphas))
        for i in set(range(n_folds)) - {j}:
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
  alphas = (0.3, 3.0, 30.0, 300.0)
  ours = _cv(x, y, binary, groups, 3, (0,), alphas)
  ref = _sklearn_nested(x, y, binary, groups, 3, (0,), alphas)
  np.testing.assert_allclose(ours.oof, ref, atol=1e-4, rtol=1e-4)


def test_ridge_classifier_ranks_like_logistic_on_the_same_folds():
  """The closed-form ridge classifier (binary_model="ridge") is scored by AUC like the
  published logistic probe; on the same folds their AUCs agree closely."""
  rng = np.random.default_rng(5)
  n, f, k = 240, 20, 12
  x = rng.standard_normal((n, f))
  y = (x @ rng.standard_normal((f, k)) * 0.4 + rng.standard_normal((n, k)) > 0.8).astype(float)
  binary = np.ones(k, bool)
  fold_ids = folds.grouped_folds(np.arange(n), 5, (0, 1))
  auc = {}
  for model in ("logistic", "ridge"):
    pred = engine.cross_validate(x, y, binary, fold_ids, _settings(DEFAULT_ALPHAS,
                                                                    binary_model=model))
    auc[model] = stats.fold_scores(y, pred.oof, fold_ids, binary)["auc"]
  assert np.all(auc["logistic"] > 0.6)
  np.testing.assert_allclose(auc["ridge"], auc["logistic"], atol=0.03)


def test_unconverged_logistic_targets_are_flagged_not_scored(monkeypatch):
  x, y, binary = _problem(60, 5, 3, n_binary=2, missing=0.0, nan_features=0.0)
  real = logistic.fit_path
  monkeypatch.setattr(logistic, "fit_path",
                      lambda *a, **kw: real(*a, **{**kw, "max_newton": 0}))
  pred = _cv(x, y, binary, np.arange(60), 3, (0,))
  assert pred.converged.tolist() == [True, False, False]
  assert np.isnan(pred.oof[..., 1:]).all() and np.isfinite(pred.oof[..., 0]).all()


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
  base = _cv(x, y, binary, groups, 4, (0,), (1.0,)).oof
  y2 = y.copy()
  y2[[1, 2], :] += 100.0  # person 0's other rows
  moved = _cv(x, y2, binary, groups, 4, (0,), (1.0,)).oof
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
  mesh = sharding.make_mesh((("targets", -1),))
  plain = _cv(x, y, binary, groups, 3, (0,), (1.0, 10.0, 100.0))
  sharded = _cv(x, y, binary, groups, 3, (0,), (1.0, 10.0, 100.0), mesh=mesh)
  np.testing.assert_allclose(sharded.oof, plain.oof, atol=1e-5, rtol=1e-5)
  np.testing.assert_array_equal(sharded.alpha, plain.alpha)


def _calibrated_p(y, oof, fold_ids, binary, n_null):
  """p-values of the first K - n_null targets, calibrated on the last n_null (nulls)."""
  z = stats.fold_scores(y, oof, fold_ids, binary)["z"]
  return stats.calibrated_p(z[:-n_null], stats.null_scale(z[-n_null:]))


def test_fdr_is_calibrated_on_null_targets():
  """BH at q over many null and a few real targets: the false discovery proportion,
  averaged over data seeds, stays at or below q."""
  q, fdps, found = 0.10, [], 0
  for seed in range(4):
    rng = np.random.default_rng(seed)
    n, k_null, k_real, k_sim = 100, 150, 15, 60
    x = rng.standard_normal((n, 8))
    y = rng.standard_normal((n, k_null + k_real + k_sim))
    y[:, k_null:k_null + k_real] += x[:, :1] * 0.8
    binary = np.zeros(y.shape[1], bool)
    pred = _cv(x, y, binary, np.arange(n), 5, (0,))
    _, sig = stats.fdr(_calibrated_p(y, pred.oof, pred.folds, binary, k_sim), q)
    found += sig[k_null:].sum()
    fdps.append(sig[:k_null].sum() / max(sig.sum(), 1))
  assert np.mean(fdps) <= q
  assert found >= 0.8 * 4 * 15  # and the real ones are found


def _gain(x_emb, cov, y, k_sim=60):
  rng = np.random.default_rng(1)
  y = np.c_[y, rng.standard_normal((len(y), k_sim))]  # simulated nulls
  binary = np.zeros(y.shape[1], bool)
  groups = np.arange(len(y))
  base = _cv(cov, y, binary, groups, 5, (0, 1)).oof
  full = _cv(np.c_[cov, x_emb], y, binary, groups, 5, (0, 1)).oof
  z = stats.mean_z(stats.loss_difference(y, base, full, binary))
  p = stats.calibrated_p(z[:-k_sim], stats.null_scale(z[-k_sim:]))
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


def test_fold_scores_match_scipy_and_sklearn_per_fold():
  """r is the (n_fold - 2)-weighted mean of each test fold's Pearson r, AUC counts the
  pairs within folds only (sklearn's AUC for one fold), both averaged over seeds; the
  published form is the pooled score per seed."""
  from scipy import stats as sps  # pylint: disable=import-outside-toplevel
  from sklearn import metrics  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(3)
  n = 90
  fold_ids = np.stack([np.arange(n) % 3, (np.arange(n) // 3) % 3])
  yc = rng.standard_normal((n, 2))
  yb = (rng.random((n, 2)) < 0.4).astype(float)
  yb[:4, 1] = np.nan
  y = np.c_[yc, yb]
  oof = np.stack([y + rng.standard_normal(y.shape) + 5.0 * fold_ids[s][:, None]
                  for s in range(2)])  # a fold-level offset: invisible within folds
  oof[:, :6, 2] = oof[:, 6:12, 2]  # ties
  binary = np.array([False, False, True, True])
  sc = stats.fold_scores(y, oof, fold_ids, binary)
  for j in (0, 1):
    r_seed = []
    for s in range(2):
      per_fold = [sps.pearsonr(y[fold_ids[s] == k, j], oof[s, fold_ids[s] == k, j]).statistic
                  for k in range(3)]
      sizes = [(fold_ids[s] == k).sum() - 2 for k in range(3)]
      r_seed.append(np.average(per_fold, weights=sizes))
    assert sc["r"][j] == pytest.approx(np.mean(r_seed), abs=1e-10)
    pooled = [sps.pearsonr(y[:, j], oof[s, :, j]).statistic for s in range(2)]
    assert sc["r_seed_mean"][j] == pytest.approx(np.mean(pooled), abs=1e-10)
    assert sc["r_seed_sd"][j] == pytest.approx(np.std(pooled, ddof=1), abs=1e-10)
  for j in (2, 3):
    aucs = []
    for s in range(2):
      u = pairs = 0.0
      for k in range(3):
        m = (fold_ids[s] == k) & np.isfinite(y[:, j])
        pos = (y[m, j] == 1).sum()
        pairs += pos * (m.sum() - pos)
        u += metrics.roc_auc_score(y[m, j], oof[s, m, j]) * pos * (m.sum() - pos)
      aucs.append(u / pairs)
    assert sc["auc"][j] == pytest.approx(np.mean(aucs), abs=1e-10)
  assert (sc["r"][:2] > 0.5).all() and (sc["auc"][2:] > 0.7).all()
  assert (sc["r_seed_mean"][:2] < sc["r"][:2]).all()  # the offset hurts pooled r only


def test_scores_of_null_targets_are_unbiased_and_tests_calibrated():
  """Pure-noise targets at n = 120 with random 32-d embeddings beside 3 covariates
  (strong shrinkage, where pooled out-of-fold r was -0.3): mean r within ±0.03, and the
  calibrated share of p < 0.05 in [0.02, 0.08] for continuous and binary targets and
  for the gain over covariates (nulls calibrated on a separate set of simulated nulls,
  as the probe job does)."""
  rng = np.random.default_rng(0)
  n, kc, kb, k_sim = 120, 300, 200, 100
  x = rng.standard_normal((n, 32))
  cov = rng.standard_normal((n, 3))
  y = np.c_[rng.standard_normal((n, kc + k_sim)) * 5 + 3,
            (rng.random((n, kb + k_sim)) < rng.uniform(0.2, 0.5, kb + k_sim)).astype(float)]
  binary = np.r_[np.zeros(kc + k_sim, bool), np.ones(kb + k_sim, bool)]
  full = _cv(np.c_[cov, x], y, binary, np.arange(n), 5, (0, 1, 2))
  base = _cv(cov, y, binary, np.arange(n), 5, (0, 1, 2))
  sc = stats.fold_scores(y, full.oof, full.folds, binary)
  gain_z = stats.mean_z(stats.loss_difference(y, base.oof, full.oof, binary))
  assert abs(np.mean(sc["r"][:kc])) <= 0.03
  assert abs(np.mean(sc["auc"][kc + k_sim:kc + k_sim + kb]) - 0.5) <= 0.02
  assert np.mean(sc["r_seed_mean"][:kc]) < -0.05  # the published form is biased
  for z in (sc["z"], gain_z):
    for real, sim in ((slice(0, kc), slice(kc, kc + k_sim)),
                      (slice(kc + k_sim, kc + k_sim + kb), slice(kc + k_sim + kb, None))):
      naive = stats.calibrated_p(z[real], 1.0)
      p = stats.calibrated_p(z[real], stats.null_scale(z[sim]))
      assert 0.02 <= np.mean(p < 0.05) <= 0.08, np.mean(p < 0.05)
      assert np.mean(naive < 0.05) > np.mean(p < 0.05)  # the dependence is real


def test_power_fdp_against_truth():
  truth = {"targets": {"a": {"category": "gait"}, "b": {"category": "covariate_only"},
                       "c": {"category": None}, "d": {"category": "gait"}}}
  out = stats.power_fdp({"a": True, "b": True, "c": True, "d": False}, truth)
  assert out == {"power": 2 / 3, "fdp": 1 / 3, "discoveries": 3, "true": 3}
  adj = stats.power_fdp({"a": True, "b": True, "c": False, "d": False}, truth,
                        covariate_adjusted=True)
  assert adj["power"] == 0.5 and adj["fdp"] == 0.5
