"""The features of one fit: standardisation fitted on its training rows, its eigenbasis.

A "fit" is one training set of the nested cross-validation (all folds but one, or all
folds but two). Features may contain NaN (a person who lacks a task); they are
mean-imputed and standardised with statistics of the fit's training rows only, so an
imputed entry is exactly 0 in standardised units, and no statistic of a test row ever
reaches the model.

The basis of a fit is the eigendecomposition of the standardised training Gram
X̃ᵀX̃ = V diag(λ) Vᵀ, computed from the smaller side (F×F, or the n×n kernel when
there are fewer training rows than features). Every target and every ridge penalty is
then a diagonal operation in that basis. Large eigenproblems go to LAPACK on the host
in float64 (XLA's CPU eigensolver is far slower at F≈1000); small batched ones stay in
JAX.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

# Eigenproblems at least this large are solved on the host (scipy, float64).
HOST_EIGH_MIN = 160
# Eigenvalues below RANK_TOL × the largest are treated as zero (outside the row space).
RANK_TOL = 1e-6


@dataclasses.dataclass(frozen=True)
class Basis:
  """The eigenbasis of one fit's standardised training features.

  mean, scale: f32[F] imputation mean and standard deviation (training rows).
  vectors:     f32[F, ρ] eigenvectors V (orthonormal columns).
  values:      f64[ρ] eigenvalues λ of X̃ᵀX̃.
  valid:       bool[ρ] λ > RANK_TOL · max λ (directions outside the training row space
               are dropped, so ρ = rank ≤ min(F, training rows) and this is all True).
  """
  mean: jax.Array
  scale: jax.Array
  vectors: jax.Array
  values: np.ndarray
  valid: np.ndarray


@jax.jit
def standardise(x: jax.Array, train: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Mean-imputes and standardises features with statistics of the training rows.

  Args:
    x: f32[N, F] features, NaN = missing.
    train: bool[N] rows the statistics come from.
  Returns:
    (x̃ f32[N, F] with imputed entries 0, mean f32[F], scale f32[F]); the scale is the
    standard deviation of the imputed training column (as scikit-learn's
    SimpleImputer → StandardScaler), 1 for a constant column.
  """
  observed = ~jnp.isnan(x)
  x0 = jnp.where(observed, x, 0.0)
  w = train.astype(x.dtype)[:, None]
  count = jnp.maximum((w * observed).sum(0), 1.0)
  mean = (w * x0).sum(0) / count
  centred = jnp.where(observed, x0 - mean, 0.0)
  var = (w * centred ** 2).sum(0) / jnp.maximum(w.sum(), 1.0)
  scale = jnp.where(var > 1e-12 * (1.0 + mean ** 2), jnp.sqrt(var), 1.0)
  return centred / scale, mean, scale


@jax.jit
def _gram(xt: jax.Array, train: jax.Array) -> jax.Array:
  xw = xt * train.astype(xt.dtype)[:, None]
  return xw.T @ xw


@jax.jit
def _kernel(xt: jax.Array) -> jax.Array:
  return xt @ xt.T


def eigh(matrix: np.ndarray | jax.Array) -> tuple[np.ndarray, np.ndarray]:
  """Eigenvalues (ascending, as f64) and vectors of a symmetric matrix; host LAPACK
  divide-and-conquer in the matrix's precision (f32 Grams: f32, 1.6× faster)."""
  m = np.asarray(matrix)
  values, vectors = scipy.linalg.eigh(m, driver="evd", check_finite=False)
  return values.astype(np.float64), vectors


_jit_eigh = jax.jit(jnp.linalg.eigh)


def batched_eigh(matrices: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Eigenvalues and vectors of [B, d, d] symmetric matrices (JAX for small d)."""
  if matrices.shape[-1] >= HOST_EIGH_MIN:
    out = [eigh(m) for m in np.asarray(matrices)]
    return (jnp.asarray(np.stack([v for v, _ in out])),
            jnp.asarray(np.stack([u for _, u in out]), matrices.dtype))
  return _jit_eigh(matrices)


@jax.jit
def _from_sums(x, gram, total, count):
  """standardise + Gram from summed raw moments (features without NaN)."""
  mean = total / count
  cov = gram - count * mean[:, None] * mean[None, :]
  var = jnp.diag(cov) / count
  scale = jnp.where(var > 1e-12 * (1.0 + mean ** 2), jnp.sqrt(jnp.maximum(var, 0.0)), 1.0)
  return (x - mean) / scale, mean, scale, cov / (scale[:, None] * scale[None, :])


def fit_basis(x: jax.Array, train: np.ndarray, sums: tuple[jax.Array, jax.Array] | None = None
              ) -> tuple[jax.Array, Basis]:
  """Standardises `x` on the training rows and eigendecomposes their Gram.

  Args:
    x: f32[N, F] features (NaN = missing).
    train: bool[N] training rows.
    sums: optional (Σ xxᵀ f32[F, F], Σ x f32[F]) over the training rows, for features
      without NaN: the Gram then costs nothing per fit (the engine sums it per fold).
  Returns:
    (x̃ f32[N, F] standardised with the training statistics, Basis with ρ = F, or ρ = N
    when there are fewer training rows than features).
  """
  train_j = jnp.asarray(train)
  n_train, n_features = int(train.sum()), x.shape[1]
  if sums is not None and n_train >= n_features:
    xt, mean, scale, gram = _from_sums(x, sums[0], sums[1], jnp.asarray(n_train, x.dtype))
  else:
    xt, mean, scale = standardise(x, train_j)
    gram = None
  if n_train >= n_features:
    values, vectors = eigh(_gram(xt, train_j) if gram is None else gram)
    vectors = jnp.asarray(vectors, x.dtype)
  else:  # dual: eigenvectors of the N×N kernel of the training rows (others zeroed, so
    # their eigenvalues are 0 and drop out) map to feature space through X̃ᵀ; fixed
    # shapes across fits, so nothing recompiles.
    xr = xt * train_j.astype(xt.dtype)[:, None]
    values, u = eigh(_kernel(xr))
    root = np.sqrt(np.maximum(values, 0.0))
    ok = values > RANK_TOL * max(values.max(), 1e-30)
    inv = np.where(ok, 1.0 / np.where(ok, root, 1.0), 0.0)
    vectors = (xr.T @ jnp.asarray(u, x.dtype)) * jnp.asarray(inv, x.dtype)
  values = np.maximum(values, 0.0)
  valid = values > RANK_TOL * max(values.max(), 1e-30)
  if not valid.all():  # keep the row space only: ρ = rank, smaller systems downstream
    keep = np.flatnonzero(valid)
    vectors, values, valid = vectors[:, keep], values[keep], valid[keep]
  return xt, Basis(mean, scale, vectors, values, valid)
