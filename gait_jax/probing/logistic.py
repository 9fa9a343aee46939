"""Batched L2 logistic regression for binary targets, in the basis of a fit.

Each binary target is fitted on the training rows that have it, with balanced class
weights (n / (2·n_class), as scikit-learn's class_weight="balanced") and an
unpenalised intercept, minimising

  f(θ) = Σ_i s_i · logloss(y_i, b + z_iᵀ w) + (α/2)·||w||²,   θ = (b, w),

which is scikit-learn's LogisticRegression(C=1/α, class_weight="balanced"). The
features are the fit's standardised features in its eigenbasis (z = x̃ V, a rotation,
so the L2 penalty is unchanged and directions outside the training row space drop
out). Rows a target lacks get weight 0, which is the same as dropping them.

Solver: truncated Newton (Newton-CG) along the α path from the strongest penalty to
the weakest. Each α starts from the last solution extrapolated along the path (secant
in log α). A Newton step solves H δ = g by conjugate gradients with Hessian-vector
products Hv = Z₁ᵀ(d ⊙ Z₁v) + αv — two n×ρ matmuls over all targets at once; no
(ρ+1)² Hessian is ever formed — preconditioned by the exact diagonal of H; the line
search along δ is exact and costs O(n) per target, since Z₁δ comes out of CG. The
cost unit is one pass: an n×(ρ+1) by (ρ+1)×K matmul. Targets are solved together and
dropped from the batch as they converge (the batch shrinks in steps of a power of 2,
so a few shapes are compiled), which keeps a hard target from making every target pay.

Convergence is checked, not assumed: after every step the gradient is recomputed from
logits recomputed at the returned coefficients, and a target has converged when

  error = sqrt(gᵀ P⁻¹ g / Σ_i d_i) / max(1, rms logit) ≤ tol,
  P = diag(H),  d_i = s_i p_i (1 - p_i),

a scale-free gradient norm: the Newton-decrement estimate of the root-mean-square
distance of its training logits from the optimum, relative to their size once that
exceeds 1 (float32 resolves logits to a relative precision). The error of every
target and α is returned (Path.error). A target stops when its error has not improved
for STALL steps (the float32 floor) or after MAX_NEWTON steps; `require_converged`
raises naming every target above tolerance, `not_converged` lists them.

Nested cross-validation needs far fewer fits than the full path: `last` ends each
target's path at the α it needs (outer fits: the chosen α), and `held` with
`patience` ends a target's path once the held-out loss of every held-out set has been
above its best for `patience` consecutive α (the inner CV error of weaker penalties is
then left at +inf; exact whenever the held-out loss is unimodal in α within that
margin). The weakest penalties cost the most by far, so these two save most of the
work.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

# Converged when Path.error (module docstring) is at most this.
TOL = 1e-5
# Newton steps per α, and CG iterations per Newton step, before giving up.
MAX_NEWTON = 30
MAX_CG = 200
# Newton steps without a lower error after which a target is left at the float floor.
STALL = 3
# CG stops at this fraction of the starting residual (preconditioned norm).
FORCING = 0.1
# At most this many targets per solve (memory: about 8 × CHUNK × n floats); the batch
# shrinks by powers of 2 down to MIN_BATCH as targets converge.
CHUNK = 1024
MIN_BATCH = 8


class NotConverged(RuntimeError):
  """Some targets did not reach the tolerance at some α."""


@dataclasses.dataclass(frozen=True)
class Held:
  """Held-out rows whose loss is tracked along the path (inner cross-validation).

  z:       f32[h, ρ] held-out rows in the fit's basis.
  y:       f32[h, K] 0/1 labels (any value where the weight is 0).
  weights: f32[G, h, K] class weights of G held-out sets (0 = row not in the set).
  """
  z: jax.Array
  y: jax.Array
  weights: jax.Array


@dataclasses.dataclass(frozen=True)
class Path:
  """The fits of every target along the α path.

  coef:    f32[a, K, ρ+1] (intercept, coefficients); NaN where a target's path ended.
  error:   f32[a, K] convergence error at `coef` (module docstring), ≤ tol when
           converged (+inf if the fit broke down); NaN where the path ended.
  newton:  int32[a, K] Newton steps taken.
  passes:  f64[a] work at each α, in passes over the training rows for all K targets.
  heldout: f32[a, G, K] weighted held-out log-loss (with `held`); +inf where the path
           ended.
  """
  coef: jax.Array
  error: np.ndarray
  newton: np.ndarray
  passes: np.ndarray
  heldout: np.ndarray | None = None


def class_weights(y: jax.Array, observed: jax.Array) -> jax.Array:
  """f32[n, K] balanced weights of the rows (0 where the target is missing)."""
  m = observed.astype(y.dtype)
  n = m.sum(0)
  pos = (m * y).sum(0)
  neg = n - pos
  w_pos = n / (2.0 * jnp.maximum(pos, 1.0))
  w_neg = n / (2.0 * jnp.maximum(neg, 1.0))
  return m * jnp.where(y > 0.5, w_pos, w_neg)


# ----------------------------------------------------------------------------------
# One batch of targets at one α (jitted; every array has the batch axis first).


def _residual(eta, yt, st):
  """s·(p - y) and s·p·(1 - p) with full relative precision when p is near 0 or 1
  (separable data at weak penalties: 1 - p is computed as σ(-η), not subtracted)."""
  p, q = jax.nn.sigmoid(eta), jax.nn.sigmoid(-eta)
  return st * jnp.where(yt > 0.5, -q, p), st * p * q


def _evaluate(z1, z1sq, pen, theta, yt, st, alpha):
  """State at θ: logits, gradient, Hessian weights, diag(H), error (3 passes)."""
  dt = z1.dtype
  eta = theta @ z1.T                                                 # [B, n]
  r, d = _residual(eta, yt, st)
  g = r @ z1 + alpha * pen * theta                                   # [B, ρ+1]
  diag = d @ z1sq + alpha * pen
  diag = jnp.where(diag > 0, diag, 1.0)                              # targets without rows
  err = jnp.sqrt((g * g / diag).sum(1) / jnp.maximum(d.sum(1), 1e-30))
  used = (st > 0).astype(dt)
  scale = jnp.sqrt((used * eta * eta).sum(1) / jnp.maximum(used.sum(1), 1.0))
  return dict(theta=theta, eta=eta, g=g, d=d, diag=diag, err=err / jnp.maximum(scale, 1.0))


def _cg(z1, pen, g, d, diag, alpha, max_cg):
  """x ≈ H⁻¹g and Z₁x by Jacobi-preconditioned CG, each target to FORCING of its
  starting residual; returns the iterations run."""
  pr = g / diag
  rz = (g * pr).sum(1)
  goal = FORCING * jnp.sqrt(rz)

  def cond(c):
    return (c[-2] < max_cg) & jnp.any(c[-1])

  def body(c):
    x, zx, res, direction, rz, j, on = c
    zp = direction @ z1.T                                            # [B, n]
    hp = (d * zp) @ z1 + alpha * pen * direction
    step = jnp.where(on, rz / jnp.maximum((direction * hp).sum(1), 1e-30), 0.0)
    x = x + step[:, None] * direction
    zx = zx + step[:, None] * zp
    res = res - step[:, None] * hp
    pr = res / diag
    rz_new = (res * pr).sum(1)
    on = on & (jnp.sqrt(rz_new) > goal)
    beta = rz_new / jnp.maximum(rz, 1e-30)
    return x, zx, res, pr + beta[:, None] * direction, rz_new, j + 1, on

  start = (jnp.zeros_like(g), jnp.zeros_like(d), g, pr, rz, jnp.int32(0), rz > 0)
  x, zx, _, _, _, iters, _ = jax.lax.while_loop(cond, body, start)
  return x, zx, iters


def _line_search(eta, u, theta, delta, yt, st, pen, alpha, steps: int = 6):
  """t ≥ 0 minimising f(θ - tδ) per target: safeguarded 1-D Newton on a convex
  function, O(n) per evaluation since u = Z₁δ."""
  pd = (pen * theta * delta).sum(1)
  dd = (pen * delta * delta).sum(1)

  def body(_, c):
    t, lo, hi = c
    r, d = _residual(eta - t[:, None] * u, yt, st)
    d1 = -(r * u).sum(1) - alpha * (pd - t * dd)
    d2 = (d * u * u).sum(1) + alpha * dd
    lo = jnp.where(d1 < 0, t, lo)
    hi = jnp.where(d1 >= 0, t, hi)
    newton = t - d1 / jnp.maximum(d2, 1e-30)
    # Inside the bracket Newton is safe; outside it bisect (or double while hi = ∞).
    fallback = jnp.where(jnp.isfinite(hi), 0.5 * (lo + hi), 2.0 * lo)
    return jnp.where((newton > lo) & (newton < hi), newton, fallback), lo, hi

  b = eta.shape[0]
  start = (jnp.ones(b, eta.dtype), jnp.zeros(b, eta.dtype), jnp.full(b, jnp.inf, eta.dtype))
  return jax.lax.fori_loop(0, steps, body, start)[0]


def _newton_step(z1, z1sq, pen, state, yt, st, alpha, max_cg):
  """One Newton-CG step of a batch; (new state, CG iterations)."""
  x, zx, iters = _cg(z1, pen, state["g"], state["d"], state["diag"], alpha, max_cg)
  t = _line_search(state["eta"], zx, state["theta"], x, yt, st, pen, alpha)
  return _evaluate(z1, z1sq, pen, state["theta"] - t[:, None] * x, yt, st, alpha), iters


def _scatter(state, write, part):
  """state[write] = part; indices past the end (batch padding) are dropped."""
  return {key: state[key].at[write].set(part[key], mode="drop") for key in state}


@jax.jit
def _start(z1, z1sq, pen, state, theta, yt, st, read, write, alpha):
  """The state at θ[read] of the batch `read`, written to its targets."""
  return _scatter(state, write, _evaluate(z1, z1sq, pen, theta[read], yt[read], st[read],
                                          alpha))


@functools.partial(jax.jit, static_argnames=("max_cg",))
def _step(z1, z1sq, pen, state, yt, st, read, write, alpha, max_cg: int = MAX_CG):
  """One Newton-CG step of the batch `read` of the targets; (state, CG iterations)."""
  part = {key: value[read] for key, value in state.items()}
  part, iters = _newton_step(z1, z1sq, pen, part, yt[read], st[read], alpha, max_cg)
  return _scatter(state, write, part), iters


def _empty_state(k, n, width, dtype):
  return dict(theta=jnp.zeros((k, width), dtype), eta=jnp.zeros((k, n), dtype),
              g=jnp.zeros((k, width), dtype), d=jnp.zeros((k, n), dtype),
              diag=jnp.ones((k, width), dtype), err=jnp.zeros(k, dtype))


@jax.jit
def _heldout(theta, z1h, yh, wh):
  """f32[G, K] weighted held-out log-loss of coefficients θ f32[K, ρ+1]."""
  lg = z1h @ theta.T                                                 # [h, K]
  loss = jax.nn.softplus(lg) - jnp.nan_to_num(yh) * lg
  return (wh * loss[None]).sum(1)


def _sizes(k: int) -> list[int]:
  """Every batch size _batch can choose for k targets."""
  top = -(-k // MIN_BATCH) * MIN_BATCH
  sizes, size = [], MIN_BATCH
  while size < top:
    sizes.append(size)
    size *= 2
  return sizes + [top]


def _batch(active: np.ndarray, k: int) -> tuple[jax.Array, jax.Array, int]:
  """A batch of the active targets, padded to a power of 2 times MIN_BATCH (at most
  the padded chunk size): (indices to read, padded with the first active target;
  indices to write, padded with k, which is dropped; batch size)."""
  idx = np.flatnonzero(active).astype(np.int32)
  size = MIN_BATCH
  while size < len(idx):
    size *= 2
  size = min(size, -(-k // MIN_BATCH) * MIN_BATCH)
  pad = size - len(idx)
  read = np.concatenate([idx, np.full(pad, idx[0], np.int32)])
  write = np.concatenate([idx, np.full(pad, k, np.int32)])
  return jnp.asarray(read), jnp.asarray(write), size


def warm_up(n: int, rho: int, k: int, dtype=jnp.float32) -> None:
  """Compiles fit_path's kernels for training rows f[n, ρ] and k targets (every batch
  size), so that a timed or progress-reported fit_path does not compile. Runs each
  once on a batch whose results are all dropped (no work)."""
  k = min(k, CHUNK)
  z1, pen = jnp.zeros((n, rho + 1), dtype), jnp.zeros(rho + 1, dtype)
  state = _empty_state(k, n, rho + 1, dtype)
  yt = jnp.zeros((k, n), dtype)
  one = jnp.asarray(1.0, dtype)
  for size in _sizes(k):
    read, write = jnp.zeros(size, jnp.int32), jnp.full(size, k, jnp.int32)
    state = _start(z1, z1, pen, state, state["theta"], yt, yt, read, write, one)
    state, _ = _step(z1, z1, pen, state, yt, yt, read, write, one)
  jax.block_until_ready(state)


# ----------------------------------------------------------------------------------
# The path.


def fit_path(z: jax.Array, y: jax.Array, weights: jax.Array, alphas, *,
             init: jax.Array | None = None, last: np.ndarray | None = None,
             held: Held | None = None, patience: int | None = None, tol: float = TOL,
             max_newton: int = MAX_NEWTON, chunk: int = CHUNK) -> Path:
  """Fits every target along the α path, largest α first.

  Args:
    z: f32[n, ρ] training rows in the fit's basis. Pass the training rows only: a row
      given weight 0 costs as much as a used one.
    y: f32[n, K] 0/1 labels (any value where the weight is 0).
    weights: f32[n, K] sample weights (class_weights; 0 = row not used).
    alphas: f[a] penalties, strictly decreasing.
    init: optional f32[K, ρ+1] start at the first α (default 0: the intercept-only
      optimum under balanced weights and z centred on the training rows).
    last: optional int[K], the last α index each target needs (-1: none).
    held: optional held-out rows; their loss is returned as Path.heldout.
    patience: with `held`, end a target's path after this many consecutive α at which
      every held-out set's loss was above its best so far (None: the whole path).
    tol, max_newton: convergence tolerance on Path.error, Newton steps per α.
    chunk: most targets solved at once.
  Returns:
    Path.
  """
  k = y.shape[1]
  if k > chunk:
    parts = [fit_path(z, y[:, i:i + chunk], weights[:, i:i + chunk], alphas,
                      init=None if init is None else init[i:i + chunk],
                      last=None if last is None else last[i:i + chunk],
                      held=None if held is None else Held(held.z, held.y[:, i:i + chunk],
                                                          held.weights[..., i:i + chunk]),
                      patience=patience, tol=tol, max_newton=max_newton, chunk=chunk)
             for i in range(0, k, chunk)]
    return Path(jnp.concatenate([p.coef for p in parts], 1),
                np.concatenate([p.error for p in parts], 1),
                np.concatenate([p.newton for p in parts], 1),
                sum(p.passes * p.error.shape[1] for p in parts) / k,
                None if held is None else np.concatenate([p.heldout for p in parts], 2))
  alphas = np.asarray(alphas, np.float64)
  if np.any(np.diff(alphas) >= 0):
    raise ValueError(f"alphas must be strictly decreasing, got {alphas}")
  n, rho = z.shape
  dt = z.dtype
  z1 = jnp.concatenate([jnp.ones((n, 1), dt), z], axis=1)
  z1sq = z1 * z1
  pen = jnp.concatenate([jnp.zeros(1, dt), jnp.ones(rho, dt)])
  yt = jnp.nan_to_num(y).T.astype(dt)                                # [K, n]
  st = weights.T.astype(dt)
  theta = jnp.zeros((k, rho + 1), dt) if init is None else jnp.asarray(init, dt)
  prev = theta
  if held is not None:
    z1h = jnp.concatenate([jnp.ones((held.z.shape[0], 1), dt), held.z], axis=1)
    best_held = np.full((held.weights.shape[0], k), np.inf)
  rising = np.zeros(k, np.int64)
  on = np.ones(k, bool) if last is None else np.asarray(last) >= 0
  a = len(alphas)
  coef, error = [], np.full((a, k), np.nan, np.float32)
  newton, passes = np.zeros((a, k), np.int32), np.zeros(a)
  heldout = None if held is None else np.full((a, held.weights.shape[0], k), np.inf, np.float32)
  state = _empty_state(k, n, rho + 1, dt)
  for i, alpha in enumerate(alphas):
    if last is not None:
      on = on & (np.asarray(last) >= i)  # new arrays: JAX may alias host memory
    if not on.any():
      coef.append(jnp.full((k, rho + 1), jnp.nan, dt))
      continue
    alpha_j = jnp.asarray(alpha, dt)
    guess = theta
    if i >= 2:  # secant predictor in log α
      step = np.log(alphas[i] / alphas[i - 1]) / np.log(alphas[i - 1] / alphas[i - 2])
      guess = theta + jnp.asarray(step, dt) * (theta - prev)
    read, write, size = _batch(on, k)
    state = _start(z1, z1sq, pen, state, guess, yt, st, read, write, alpha_j)
    passes[i] += 3 * size / k
    err = np.asarray(state["err"])
    best, since = err.copy(), np.zeros(k, np.int64)
    active = on & (err > tol)
    for _ in range(max_newton):
      if not active.any():
        break
      read, write, size = _batch(active, k)
      state, iters = _step(z1, z1sq, pen, state, yt, st, read, write, alpha_j)
      passes[i] += (3 + 2 * int(iters)) * size / k
      newton[i] += active
      err = np.asarray(state["err"])
      since = np.where(err < best, 0, since + 1)                   # NaN never improves
      best = np.minimum(best, err)
      active = active & (err > tol) & (since < STALL)
    prev, theta = theta, jnp.where(jnp.asarray(on)[:, None], state["theta"], theta)
    coef.append(jnp.where(jnp.asarray(on)[:, None], theta, jnp.nan))
    error[i] = np.where(on, np.nan_to_num(err, nan=np.inf), np.nan)  # NaN: not converged
    if held is not None:
      loss = np.asarray(_heldout(theta, z1h, held.y, held.weights))
      heldout[i] = np.where(on[None], loss, np.inf)
      rising = np.where((loss > best_held).all(0), rising + 1, 0)
      best_held = np.minimum(best_held, loss)
      if patience is not None:
        on = on & (rising < patience)
  return Path(jnp.stack(coef), error, newton, passes, heldout)


def not_converged(path: Path, tol: float = TOL) -> np.ndarray:
  """bool[K] targets whose fit missed the tolerance at some α of their path."""
  return np.nan_to_num(path.error, nan=0.0).max(0) > tol


def require_converged(path: Path, tol: float = TOL, names=None) -> None:
  """Raises NotConverged naming the targets (indices, or `names`) that missed tol."""
  bad = np.flatnonzero(not_converged(path, tol))
  if len(bad):
    worst = float(np.nanmax(path.error[:, bad]))
    which = [names[i] if names is not None else int(i) for i in bad]
    raise NotConverged(f"logistic fit did not converge (error > {tol:g}) for {len(bad)} "
                       f"target(s) {which[:10]}; worst error {worst:.3g}")


@jax.jit
def logits(coef: jax.Array, z: jax.Array) -> jax.Array:
  """f32[a, h, K] logits of rows z f32[h, ρ] for every α and target (coef: Path.coef)."""
  return coef[..., 0][:, None, :] + jnp.einsum("hr,akr->ahk", z, coef[..., 1:])


@jax.jit
def heldout_loss(coef: jax.Array, z: jax.Array, y: jax.Array, weights: jax.Array) -> jax.Array:
  """f32[a, K] weighted log-loss of held-out rows (weights 0 where missing)."""
  lg = logits(coef, z)
  y = jnp.nan_to_num(y)[None]
  loss = jax.nn.softplus(lg) - y * lg
  return (weights[None] * loss).sum(1)
