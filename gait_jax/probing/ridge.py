"""Closed-form ridge for every target and every penalty from one basis per fit.

For one training set R (a fit) and one target with observed rows O ⊆ R, ridge with an
unpenalised intercept on O is

  ŷ(x) = ȳ_O + (x̃ - x̄_O)ᵀ W diag(1 / (λ + α)) c,   c = Wᵀ X̃_Oᵀ (y_O - ȳ_O),

where W diag(λ) Wᵀ is the eigendecomposition of the target's centred Gram over O.
Targets are grouped by missingness pattern (the exact set of rows that have them):
a pattern complete on R uses the fit's basis directly (W = V, x̄_O = 0: the Gram is
already diagonal), any other pattern gets one extra eigendecomposition in the fit's
basis (ρ×ρ), shared by all of its targets. Nothing is imputed and no participant is
dropped globally: each target uses exactly the rows that have it.

Held-out squared error for all α at once. Shared bases (large ρ) use the partial-
fraction identity d_f d_g = (d_f - d_g)/(λ_g - λ_f), d = 1/(λ + α): the quadratic
term Σ_fg c_f Q_fg c_g d_f d_g becomes Σ_f d_f β_f with β = c ⊙ ((Q ⊙ Γ) c),
Γ_fg = 1/(λ_g - λ_f), which is independent of α, so the 13 α values cost one ρ×ρ×K
matmul instead of 13 h×ρ×K ones. Pairs with nearly equal eigenvalues (where the
identity loses precision) are summed directly from a short list. Small bases (ρ up to
BATCHED_MAX_RANK) evaluate predictions for every α directly, per target, batched.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from gait_jax.probing import design

# Bases up to this rank are evaluated per target (batched einsums); larger ones per
# pattern with shared matrices and the partial-fraction identity.
BATCHED_MAX_RANK = 96
# Eigenvalue pairs closer than this (relative to λ + min α) are summed directly.
NEAR_GAP = 2e-3


@dataclasses.dataclass(frozen=True)
class Patterns:
  """Missingness patterns of the targets.

  masks: bool[P, N] rows that have the target, one row per distinct pattern.
  index: int32[K] pattern of each target.
  """
  masks: np.ndarray
  index: np.ndarray


def patterns(observed: np.ndarray) -> Patterns:
  """Groups targets by their observed-row sets; observed: bool[N, K]."""
  masks, index = np.unique(np.asarray(observed, bool).T, axis=0, return_inverse=True)
  return Patterns(masks, index.reshape(-1).astype(np.int32))


@dataclasses.dataclass(frozen=True)
class Group:
  """Targets whose model shares one eigenbasis within a fit.

  targets: int[K_g] target indices.
  values:  f64[ρ] eigenvalues; valid: bool[ρ].
  rotate:  f32[ρ, ρ] pattern eigenvectors in the fit's basis, or None (identity).
  centre:  f32[ρ] mean of the pattern's training rows in the fit's basis (or zeros).
  mask:    bool[N] rows that have these targets.
  """
  targets: np.ndarray
  values: np.ndarray
  valid: np.ndarray
  rotate: jax.Array | None
  centre: jax.Array
  mask: np.ndarray


@dataclasses.dataclass(frozen=True)
class RidgeFit:
  """Everything needed to predict held-out rows of one fit for any α.

  xt:     f32[N, F] features standardised with the fit's training statistics.
  basis:  the fit's Basis.
  groups: the pattern groups.
  coef:   f32[ρ, K] c of each target (in its group's basis).
  ybar:   f32[K] training mean of each target over its rows.
  """
  xt: jax.Array
  basis: design.Basis
  groups: tuple[Group, ...]
  coef: jax.Array
  ybar: jax.Array
  small: "PatternBases | None" = None


@dataclasses.dataclass(frozen=True)
class PatternBases:
  """Every pattern's basis as arrays (small ρ): values f64[P, ρ], valid bool[P, ρ],
  rotate f32[P, ρ, ρ], centre f32[P, ρ], masks bool[P, N], index int32[K]."""
  values: np.ndarray
  valid: np.ndarray
  rotate: jax.Array
  centre: jax.Array
  masks: np.ndarray
  index: jax.Array


@jax.jit
def _centred_cross(v, scale, mean, xy, oy, xm, om, sy, cnt, pattern_index):
  """Vᵀ X̃_Rᵀ P_k y_k for every target from summed block cross-products."""
  ybar = sy / jnp.maximum(cnt, 1.0)
  xty = (xy - mean[:, None] * oy) / scale[:, None]          # X̃ᵀ (m ⊙ y)
  xtm = ((xm - mean[:, None] * om) / scale[:, None])[:, pattern_index]  # X̃ᵀ m
  return v.T @ (xty - ybar[None, :] * xtm), ybar


def fit(x_std: jax.Array, basis: design.Basis, train: np.ndarray, sums: dict[str, jax.Array],
        pats: Patterns) -> RidgeFit:
  """Per-target ridge coefficients (all α) for one training set.

  Args:
    x_std: f32[N, F] features standardised on `train` (design.fit_basis).
    basis: the fit's basis.
    train: bool[N] training rows.
    sums: block cross-products summed over the training folds (engine._sum_over of engine._block_sums):
      xy f32[F, K] Σ x0·y0, oy f32[F, K] Σ o·y0, xm f32[F, P] Σ x0·m, om f32[F, P] Σ o·m,
      sy f32[K] Σ y0, cnt f32[K] number of training rows with the target
      (x0: features with NaN → 0, o: observed indicator, y0: targets with NaN → 0).
    pats: missingness patterns of the targets.
  """
  h, ybar = _centred_cross(basis.vectors, basis.scale, basis.mean, sums["xy"], sums["oy"],
                           sums["xm"], sums["om"], sums["sy"], sums["cnt"],
                           jnp.asarray(pats.index))
  rho = basis.vectors.shape[1]
  if rho <= BATCHED_MAX_RANK:
    return _fit_small(x_std, basis, train, pats, h, ybar)
  zeros = jnp.zeros(rho, x_std.dtype)
  groups, partial = [], []
  complete = [p for p in range(len(pats.masks)) if pats.masks[p][train].all()]
  incomplete = [p for p in range(len(pats.masks)) if p not in set(complete)]
  # Patterns complete on R share the fit's basis; their held-out masks differ, so each
  # stays its own group (sharing eigenvalues).
  for p in complete:
    groups.append(Group(np.flatnonzero(pats.index == p), basis.values, basis.valid, None,
                        zeros, pats.masks[p]))
  if incomplete:
    z_all = x_std @ basis.vectors
    masks = jnp.asarray(pats.masks[incomplete] & train[None, :], x_std.dtype)
    vals, vecs, centres = _pattern_bases(z_all, masks, jnp.asarray(basis.valid))
    vals = np.asarray(vals, np.float64)
    for j, p in enumerate(incomplete):
      valid = vals[j] > design.RANK_TOL * max(vals[j].max(), 1e-30)
      groups.append(Group(np.flatnonzero(pats.index == p), np.where(valid, vals[j], 0.0),
                          valid, vecs[j], centres[j], pats.masks[p]))
      partial.append(len(groups) - 1)
  coef = h
  if partial:
    idx = np.concatenate([groups[g].targets for g in partial])
    rot = jnp.concatenate([_rotate_coef(groups[g].rotate, h[:, groups[g].targets])
                           for g in partial], axis=1)
    coef = h.at[:, idx].set(rot)
  return RidgeFit(x_std, basis, tuple(groups), coef, ybar)


def _fit_small(x_std, basis, train, pats, h, ybar) -> RidgeFit:
  """Small bases: every pattern eigendecomposed at once, coefficients per target."""
  z_all = x_std @ basis.vectors
  masks = jnp.asarray(pats.masks & train[None, :], x_std.dtype)
  vals, vecs, centres = _pattern_bases(z_all, masks, jnp.asarray(basis.valid))
  vals = np.asarray(vals, np.float64)
  valid = vals > design.RANK_TOL * np.maximum(vals.max(1, keepdims=True), 1e-30)
  index = jnp.asarray(pats.index)
  coef = _rotate_per_target(vecs, index, h)
  small = PatternBases(np.where(valid, vals, 0.0), valid, vecs, centres, pats.masks, index)
  return RidgeFit(x_std, basis, (), coef, ybar, small)


@jax.jit
def _rotate_per_target(vecs, index, h):
  return jnp.einsum("krs,rk->sk", vecs[index], h)


@jax.jit
def _rotate_coef(w, h):
  return w.T @ h


def _pattern_bases(z, masks, valid):
  """Eigenbases of each pattern's centred Gram in the fit's basis.

  z: f32[N, ρ] rows in the fit's basis; masks: f32[P, N] training rows with the
  pattern's targets; valid: bool[ρ].
  Returns (values f32[P, ρ], vectors f32[P, ρ, ρ], centres f32[P, ρ]).
  """
  grams, centres = _pattern_grams(z, masks, valid)
  values, vectors = design.batched_eigh(grams)
  return values, vectors, centres


@jax.jit
def _pattern_grams(z, masks, valid):
  count = jnp.maximum(masks.sum(1), 1.0)
  centres = (masks @ z) / count[:, None]
  grams = jnp.einsum("pn,nf,ng->pfg", masks, z, z) - count[:, None, None] * (
      centres[:, :, None] * centres[:, None, :])
  keep = valid[:, None] & valid[None, :]
  return jnp.where(keep, grams, 0.0), centres


def _design_rows(rfit: RidgeFit, rows: np.ndarray) -> jax.Array:
  """f32[h, ρ] the given rows in the fit's basis."""
  return rfit.xt[rows] @ rfit.basis.vectors


def _inv(values: np.ndarray, valid: np.ndarray, alphas: np.ndarray, dtype) -> jax.Array:
  """d = 1/(λ + α) as f32[a, ρ], 0 outside the row space."""
  d = np.where(valid[None, :], 1.0 / (values[None, :] + np.asarray(alphas)[:, None]), 0.0)
  return jnp.asarray(d, dtype)


def _pad(rows: np.ndarray, size: int | None) -> tuple[np.ndarray, np.ndarray]:
  """Rows padded (with the first row) to `size`, and which are real: fixed shapes
  across folds of slightly different sizes, so nothing recompiles."""
  size = len(rows) if size is None else max(size, len(rows))
  keep = np.arange(size) < len(rows)
  return np.concatenate([rows, np.full(size - len(rows), rows[0], rows.dtype)]), keep


def heldout_sse(rfit: RidgeFit, rows: np.ndarray, y: np.ndarray | jax.Array,
                alphas: np.ndarray, size: int | None = None) -> jax.Array:
  """Squared error on held-out rows for every α and target.

  Args:
    rfit: the fit (its training rows must not include `rows`).
    rows: int[h] held-out rows.
    y: f32[N, K] targets (NaN = missing; missing rows add nothing); rows padded by the
      (padded to `size` rows internally).
    alphas: f64[a] penalties.
  Returns:
    f32[a, K] Σ over the held-out rows that have the target of (y - ŷ(α))².
  """
  rows, keep = _pad(rows, size)
  z = _design_rows(rfit, rows)
  yh = jnp.where(jnp.asarray(keep)[:, None], jnp.asarray(y)[rows], jnp.nan)
  out = jnp.zeros((len(alphas), yh.shape[1]), z.dtype)
  if rfit.small is not None:
    return _sse_batched(_small_design(rfit, z), rfit.small.index, rfit.coef, rfit.ybar, yh,
                        _small_inv(rfit, alphas))
  for g in rfit.groups:
    a = z - g.centre[None, :]
    if g.rotate is not None:
      a = a @ g.rotate
    mh = jnp.asarray(g.mask[rows] & keep, z.dtype)
    t = jnp.asarray(g.targets)
    out = out.at[:, t].set(_sse_shared(g, a, mh, rfit.coef[:, t], rfit.ybar[t], yh[:, t],
                                       alphas))
  return out


def _near_pairs(values: np.ndarray, valid: np.ndarray, alpha_min: float
                ) -> tuple[np.ndarray, np.ndarray]:
  """Index pairs f < g of valid eigenvalues closer than NEAR_GAP·(λ + α_min)."""
  order = np.argsort(values)
  v = values[order]
  ok = valid[order]
  f_list, g_list = [], []
  for off in range(1, len(v)):
    gap = v[off:] - v[:-off]
    near = (gap <= NEAR_GAP * (v[off:] + alpha_min)) & ok[off:] & ok[:-off]
    if not near.any():
      break
    i = np.flatnonzero(near)
    f_list.append(order[i])
    g_list.append(order[i + off])
  if not f_list:
    return np.zeros(0, np.int32), np.zeros(0, np.int32)
  return np.concatenate(f_list).astype(np.int32), np.concatenate(g_list).astype(np.int32)


def _sse_shared(g: Group, a, mh, coef, ybar, yh, alphas):
  values, valid = g.values, g.valid
  fi, gi = _near_pairs(values, valid, float(np.min(alphas)))
  diff = values[None, :] - values[:, None]        # λ_g - λ_f
  far = valid[:, None] & valid[None, :] & (np.abs(diff) > 0)
  far[fi, gi] = far[gi, fi] = False
  gamma = np.where(far, 1.0 / np.where(far, diff, 1.0), 0.0)
  np.fill_diagonal(gamma, 0.0)
  d = _inv(values, valid, alphas, a.dtype)
  # Pad the pair list to a bucket size so that compilations are reused.
  size = 0 if len(fi) == 0 else 1 << int(np.ceil(np.log2(len(fi))))
  pad = size - len(fi)
  pf = jnp.asarray(np.concatenate([fi, np.zeros(pad, np.int32)]))
  pg = jnp.asarray(np.concatenate([gi, np.zeros(pad, np.int32)]))
  pw = jnp.asarray(np.concatenate([np.ones(len(fi)), np.zeros(pad)]), a.dtype)
  return _sse_partial_fractions(a, mh, coef, ybar, jnp.nan_to_num(yh), d,
                                jnp.asarray(gamma, a.dtype), pf, pg, pw)


@jax.jit
def _sse_partial_fractions(a, mh, coef, ybar, yh, d, gamma, pf, pg, pw):
  """SSE f32[a, K] from α-independent statistics (see the module docstring)."""
  r0 = mh[:, None] * (yh - ybar[None, :])                     # [h, K]
  const = (r0 ** 2).sum(0)                                   # [K]
  p = a.T @ r0                                               # [ρ, K]
  am = a * mh[:, None]
  q = am.T @ a                                               # [ρ, ρ]
  beta = coef * ((q * gamma) @ coef)                         # [ρ, K]
  omega = jnp.diag(q)[:, None] * coef ** 2
  near = (pw * q[pf, pg])[:, None] * coef[pf] * coef[pg]     # [P, K]
  dd = d[:, pf] * d[:, pg]                                   # [a, P]
  return (const[None, :] - 2.0 * d @ (p * coef) + (d ** 2) @ omega + 2.0 * d @ beta
          + 2.0 * dd @ near)


def _small_design(rfit: RidgeFit, z: jax.Array) -> jax.Array:
  """f32[P, h, ρ] held-out rows in every pattern's basis."""
  sb = rfit.small
  return _pattern_design(z, sb.rotate, sb.centre)


@jax.jit
def _pattern_design(z, rot, centre):
  return (jnp.einsum("hr,prs->phs", z, rot)
          - jnp.einsum("pr,prs->ps", centre, rot)[:, None, :])


def _small_inv(rfit: RidgeFit, alphas: np.ndarray) -> jax.Array:
  """f32[K, a, ρ] 1/(λ + α) per target for the shared alphas f64[a]."""
  sb = rfit.small
  idx = np.asarray(sb.index)
  values, valid = sb.values[idx], sb.valid[idx]
  al = np.asarray(alphas, np.float64)[None, :, None]
  d = np.where(valid[:, None, :], 1.0 / (values[:, None, :] + al), 0.0)
  return jnp.asarray(d, rfit.xt.dtype)


@jax.jit
def _sse_batched(a, index, coef, ybar, yh, d):
  """Direct SSE for all α: a f32[P, h, ρ], d f32[K, a, ρ] → f32[a, K]."""
  pred = _predict_batched(a, index, coef, ybar, d)             # [K, a, h]
  y = yh.T[:, None, :]
  err = jnp.where(jnp.isnan(y), 0.0, pred - jnp.nan_to_num(y))
  return (err ** 2).sum(-1).T


def _predict_batched(a, index, coef, ybar, d):
  """f32[K, a, h]: each target through its pattern's held-out design."""
  return ybar[:, None, None] + jnp.einsum("khr,kar->kah", a[index], d * coef.T[:, None, :])


_predict_batched_jit = jax.jit(_predict_batched)


def predict(rfit: RidgeFit, rows: np.ndarray, alpha: np.ndarray | jax.Array,
            size: int | None = None) -> jax.Array:
  """f32[h, K] predictions for the given rows with a penalty per target (alpha [K], on
  the host or on device)."""
  n_rows = len(rows)
  rows, _ = _pad(rows, size)
  return _predict(rfit, rows, alpha)[:n_rows]


def _predict(rfit: RidgeFit, rows: np.ndarray, alpha: np.ndarray | jax.Array) -> jax.Array:
  z = _design_rows(rfit, rows)
  # On device, so that α chosen on device needs no host round trip.
  alpha = jnp.asarray(alpha, z.dtype)
  if rfit.small is not None:
    sb = rfit.small
    d = _device_inv(jnp.asarray(sb.values, z.dtype)[sb.index],
                    jnp.asarray(sb.valid)[sb.index], alpha[:, None])[:, None, :]
    return _predict_batched_jit(_small_design(rfit, z), sb.index, rfit.coef, rfit.ybar,
                                d)[:, 0, :].T
  out = jnp.zeros((len(rows), rfit.coef.shape[1]), z.dtype)
  for g in rfit.groups:
    a = z - g.centre[None, :]
    if g.rotate is not None:
      a = a @ g.rotate
    t = g.targets
    d = _device_inv(jnp.asarray(g.values, z.dtype)[:, None], jnp.asarray(g.valid)[:, None],
                    alpha[None, t])
    out = out.at[:, t].set(_predict_shared(a, rfit.coef[:, t], rfit.ybar[t], d))
  return out


@jax.jit
def _device_inv(values, valid, alpha):
  """1/(λ + α), 0 outside the row space, broadcasting values/valid against alpha."""
  return jnp.where(valid, 1.0 / (values + alpha), 0.0)


@jax.jit
def _predict_shared(a, coef, ybar, d):
  return ybar[None, :] + a @ (coef * d)
