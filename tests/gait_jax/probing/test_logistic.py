"""The binary probe's solver: scikit-learn's optimum, convergence reported, paths cut short."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import linear_model, preprocessing

from gait_jax.probing import design, logistic


def _problem(n, f, k, seed=0, prevalence=(0.5, 0.1, 0.3, 0.05), missing=0.15):
  """Features with a few strong directions and a decaying spectrum; imbalanced 0/1
  targets with missing labels (NaN)."""
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((n, f)) * np.linspace(2.0, 0.05, f)
  x[:, :3] += rng.standard_normal((n, 1))
  score = x[:, :6] @ rng.standard_normal((x[:, :6].shape[1], k)) + rng.standard_normal((n, k))
  cut = np.array([np.quantile(score[:, j], 1 - prevalence[j % len(prevalence)])
                  for j in range(k)])
  y = (score > cut).astype(float)
  y[rng.random((n, k)) < missing] = np.nan
  return x, y


def _fit(x, y, train, alphas, **kw):
  """fit_path on the training rows in the fit's basis; (path, x̃, basis)."""
  xt, basis = design.fit_basis(jnp.asarray(x, jnp.float32), train)
  z = (xt @ basis.vectors)[np.flatnonzero(train)]
  yt = y[train]
  observed = ~np.isnan(yt)
  weights = logistic.class_weights(jnp.asarray(np.nan_to_num(yt), jnp.float32),
                                   jnp.asarray(observed))
  path = logistic.fit_path(z, jnp.asarray(yt, jnp.float32), weights, alphas, **kw)
  return path, xt, basis


# n > F (primal basis) and n < F (dual basis: ρ = training rows < F); penalties from
# strong to weak enough that the n < F problem is separable and ill-conditioned.
@pytest.mark.parametrize("n,f", [(240, 30), (70, 150)])
def test_equals_sklearn_balanced_logistic(n, f):
  x, y = _problem(n, f, 4)
  train = np.arange(n) < int(0.8 * n)
  alphas = np.array([300.0, 10.0, 0.3, 0.01])
  path, xt, basis = _fit(x, y, train, alphas)
  logistic.require_converged(path)
  xs = preprocessing.StandardScaler().fit(x[train]).transform(x)
  v = np.asarray(basis.vectors, np.float64)
  for i, alpha in enumerate(alphas):
    lg = np.asarray(logistic.logits(path.coef[i:i + 1], xt @ basis.vectors))[0]  # [N, K]
    for t in range(y.shape[1]):
      obs = train & ~np.isnan(y[:, t])
      ref = linear_model.LogisticRegression(C=1 / alpha, class_weight="balanced", tol=1e-12,
                                            max_iter=100_000).fit(xs[obs], y[obs, t])
      coef = np.asarray(path.coef[i, t], np.float64)
      # Coefficients in feature space (V w), intercept, and the logits of every row
      # (training and held out), to float32 precision.
      scale = np.abs(ref.coef_).max()
      np.testing.assert_allclose(v @ coef[1:], ref.coef_[0], atol=2e-4 * scale)
      np.testing.assert_allclose(coef[0], ref.intercept_[0], atol=2e-4 * max(scale, 1.0))
      want = ref.decision_function(xs)
      np.testing.assert_allclose(lg[:, t], want, atol=1e-4 * max(1.0, np.abs(want).max()))


def test_missing_labels_are_dropped_rows_and_empty_targets_stay_zero():
  x, y = _problem(150, 20, 3)
  y[:, 2] = np.nan  # a target without rows
  xt, basis = design.fit_basis(jnp.asarray(x, jnp.float32), np.ones(150, bool))
  z = xt @ basis.vectors
  obs = ~np.isnan(y)
  yn = jnp.asarray(np.nan_to_num(y), jnp.float32)
  w = logistic.class_weights(yn, jnp.asarray(obs))
  alphas = np.array([10.0, 0.1])
  path = logistic.fit_path(z, yn, w, alphas)
  assert not logistic.not_converged(path).any()
  np.testing.assert_array_equal(np.asarray(path.coef[:, 2]), 0.0)
  rows = np.flatnonzero(obs[:, 0])
  alone = logistic.fit_path(z[rows], yn[rows, :1], w[rows, :1], alphas)
  want = np.asarray(alone.coef[:, 0])
  np.testing.assert_allclose(np.asarray(path.coef[:, 0]), want, atol=1e-4 * np.abs(want).max())


def test_non_convergence_is_reported():
  x, y = _problem(200, 40, 4)
  train = np.ones(200, bool)
  path, _, _ = _fit(x, y, train, np.array([1.0, 0.01]), max_newton=1)
  bad = logistic.not_converged(path)
  assert bad.all() and (np.nanmax(path.error, 0) > logistic.TOL).all()
  with pytest.raises(logistic.NotConverged, match="4 target"):
    logistic.require_converged(path)
  with pytest.raises(logistic.NotConverged, match="'b'"):
    logistic.require_converged(path, names=["a", "b", "c", "d"])
  fine, _, _ = _fit(x, y, train, np.array([1.0, 0.01]))
  logistic.require_converged(fine)
  assert np.nanmax(fine.error) <= logistic.TOL


def test_batching_does_not_change_a_target():
  """Targets drop out of the batch as they converge and chunks are solved apart: every
  target's fit equals its fit alone."""
  x, y = _problem(160, 25, 11, seed=3)
  train = np.ones(160, bool)
  alphas = np.array([100.0, 3.0, 0.1])
  together, _, _ = _fit(x, y, train, alphas, chunk=4)
  for t in (0, 5, 10):
    alone, _, _ = _fit(x, y[:, t:t + 1], train, alphas)
    np.testing.assert_allclose(np.asarray(together.coef[:, t]), np.asarray(alone.coef[:, 0]),
                               atol=1e-4)


def test_last_and_patience_cut_paths_without_changing_fits():
  x, y = _problem(300, 30, 6, seed=4)
  rng = np.random.default_rng(0)
  fold = rng.integers(0, 3, 300)
  train = fold == 0
  alphas = np.logspace(4, -1, 8)
  xt, basis = design.fit_basis(jnp.asarray(x, jnp.float32), train)
  z = xt @ basis.vectors
  yn = np.nan_to_num(y).astype(np.float32)
  obs = ~np.isnan(y)
  w = np.asarray(logistic.class_weights(jnp.asarray(yn), jnp.asarray(obs)))
  held = logistic.Held(z, jnp.asarray(yn),
                       jnp.asarray(np.stack([w * (fold == 1)[:, None], w * (fold == 2)[:, None]])))
  args = (z[np.flatnonzero(train)], jnp.asarray(yn[train]), jnp.asarray(w[train]), alphas)
  full = logistic.fit_path(*args, held=held)
  ref = np.asarray(logistic.heldout_loss(full.coef, z, yn, w * (fold == 1)[:, None]))
  np.testing.assert_allclose(full.heldout[:, 0], ref, rtol=1e-5)
  cut = logistic.fit_path(*args, held=held, patience=1)
  ended = ~np.isfinite(cut.heldout[:, 0])
  assert ended.any() and (np.diff(ended.astype(int), axis=0) >= 0).all()  # ends stay ended
  ran = ~ended
  np.testing.assert_allclose(cut.heldout[:, 0][ran], full.heldout[:, 0][ran], rtol=1e-4)
  assert np.isnan(np.asarray(cut.coef)[ended]).all()
  last = np.array([0, 3, 7, -1, 2, 5])
  short = logistic.fit_path(*args, last=last)
  for t, l in enumerate(last):
    assert np.isnan(np.asarray(short.coef[l + 1:, t])).all()
    if l >= 0:
      np.testing.assert_allclose(np.asarray(short.coef[l, t]), np.asarray(full.coef[l, t]),
                                 atol=1e-4)
  assert short.passes.sum() < full.passes.sum()


def test_alphas_must_decrease():
  x, y = _problem(50, 5, 1)
  with pytest.raises(ValueError, match="decreasing"):
    _fit(x, y, np.ones(50, bool), np.array([0.1, 10.0]))
