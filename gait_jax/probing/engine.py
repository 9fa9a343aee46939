"""Nested cross-validation of linear probes for many targets at once.

  cross_validate(x, y, binary, folds, settings) → Predictions

The folds come from the caller (folds.grouped_folds, built once per subset and seed by
the probe protocol), so every model and check of a run uses the same ones. Outer fold
k is predicted by a model fitted on the other folds, with the penalty α of each target
chosen by inner cross-validation over those other folds: the inner error of α for
outer fold k is the held-out error on fold j of the fit on "all folds but j and k",
summed over j ≠ k (squared error for continuous targets, class-weighted log-loss for
binary ones). Those fits are shared between outer folds, so a seed costs K(K-1)/2 inner
fits and K outer fits, each one eigendecomposition of the standardised training
features (design.py); every target and every α is then cheap (ridge.py, logistic.py).

Continuous targets: ridge (closed form). Binary targets: L2 logistic with balanced
class weights (Newton-CG along the α path; inner fits stop once the held-out loss
rises, outer fits at the chosen α; a target that misses the solver's tolerance is
flagged and not predicted), or a ridge classifier on the 0/1 labels. Outer-fold α
picks and predictions stay on device until the end of a seed. Cross-products Xᵀy for all targets are summed per fold once per seed
(one N×F×K matmul) and combined per fit, instead of one n×F×K matmul per fit.

The target axis can be sharded over a device mesh (`mesh`, axis `target_axis`):
target-wise arrays are laid out with NamedSharding and XLA partitions every matmul
over targets; results are identical to the unsharded run. A mesh over several
processes splits the targets between the processes first (process p fits targets
p, p + P, ...; targets share nothing but the features), each shards its part over
its own devices, and the predictions are gathered so that every process returns
all of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gait_jax.probing import design, folds as folds_lib, logistic, ridge


@dataclasses.dataclass(frozen=True)
class Settings:
  """How the models are fitted (built from the probe config; no defaults here).

  alphas: the penalty grid (ridge: α·||w||² on the sum of squared errors; logistic:
    α/2·||w||² on the weighted log-loss, i.e. scikit-learn C = 1/α).
  binary_model: "logistic" (L2 logistic, balanced class weights: the published probe)
    or "ridge" (a ridge classifier: closed-form ridge on the 0/1 labels, scored by AUC
    of its predictions; the same ranking as ±1 labels).
  logistic_patience: inner logistic fits end a target's α path after this many
    consecutive α whose held-out losses all rose (logistic.fit_path); None: the whole
    path.
  mesh, target_axis: optional device mesh to shard the target axis over.
  """
  alphas: tuple[float, ...]
  binary_model: str
  logistic_patience: int | None
  mesh: Mesh | None
  target_axis: str


BINARY_MODELS = ("logistic", "ridge")


@dataclasses.dataclass(frozen=True)
class Predictions:
  """Out-of-fold predictions of every seed.

  oof:   f32[S, N, K] prediction of each row by the model that did not see it
         (continuous: value; binary: logit, or the ridge classifier's value); NaN for
         targets not fitted.
  alpha: f64[S, K_folds, K] the penalty chosen for each seed, outer fold and target.
  folds: int32[S, N] outer fold of each row (as given).
  converged: bool[K] False for a logistic target whose fit missed the solver's tolerance
         in some fit (its predictions are NaN: not scored, reported by the job).
  """
  oof: np.ndarray
  alpha: np.ndarray
  folds: np.ndarray
  converged: np.ndarray


def _pad_rows(rows: np.ndarray, size: int, pad_index: int) -> np.ndarray:
  return np.concatenate([rows, np.full(size - len(rows), pad_index, rows.dtype)])


@jax.jit
def _block(x0, o, y0, m, pm):
  return dict(xy=x0.T @ y0, oy=o.T @ y0, xm=x0.T @ pm, om=o.T @ pm, sy=y0.sum(0), cnt=m.sum(0))


@jax.jit
def _block_complete(x0, y0, m, pm):
  """_block for features without NaN: Σ o·y0 is Σ y0 in every feature (half the work)."""
  sy, cnt = y0.sum(0), m.sum(0)
  ones = jnp.ones((x0.shape[1], 1), x0.dtype)
  return dict(xy=x0.T @ y0, oy=ones * sy[None, :], xm=x0.T @ pm,
              om=ones * pm.sum(0)[None, :], sy=sy, cnt=cnt)


def _block_sums(x, y, pats, fold_rows) -> list[dict[str, jax.Array]]:
  """Per-fold sums of the cross-products ridge.fit needs (one pass over the data)."""
  observed = ~jnp.isnan(x)
  x0 = jnp.where(observed, x, 0.0)
  o = observed.astype(x.dtype)
  m = (~jnp.isnan(y)).astype(x.dtype)
  y0 = jnp.where(m > 0, y, 0.0)
  pm = jnp.asarray(pats.masks.T, x.dtype)
  # One extra all-zero row lets every fold be padded to the same size (one compile).
  pad = lambda a: jnp.concatenate([a, jnp.zeros((1,) + a.shape[1:], a.dtype)])  # noqa: E731
  x0, o, y0, m, pm = map(pad, (x0, o, y0, m, pm))
  size = max(len(r) for r in fold_rows)
  n = x.shape[0]
  complete = bool(observed.all())
  out = []
  for rows in fold_rows:
    idx = jnp.asarray(_pad_rows(rows, size, n))
    if complete:
      out.append(_block_complete(x0[idx], y0[idx], m[idx], pm[idx]))
    else:
      out.append(_block(x0[idx], o[idx], y0[idx], m[idx], pm[idx]))
  return out


@jax.jit
def _gram_block(xb):
  return xb.T @ xb, xb.sum(0)


def _gram_sums(x, fold_rows, size) -> list[tuple[jax.Array, jax.Array]]:
  """Per-fold raw Σ xxᵀ and Σ x (features without NaN), padded with zero rows."""
  xp = jnp.concatenate([x, jnp.zeros((1, x.shape[1]), x.dtype)])
  return [_gram_block(xp[jnp.asarray(_pad_rows(r, size, x.shape[0]))]) for r in fold_rows]


def _sum_over(blocks: list[dict[str, jax.Array]], keep: Sequence[int]) -> dict[str, jax.Array]:
  return jax.tree.map(lambda *a: sum(a[1:], a[0]), *[blocks[b] for b in keep])


def _shard_targets(a: jax.Array, settings: Settings) -> jax.Array:
  """Lays the last (target) axis out over the mesh axis."""
  if settings.mesh is None:
    return a
  spec = PartitionSpec(*([None] * (a.ndim - 1)), settings.target_axis)
  return jax.device_put(a, NamedSharding(settings.mesh, spec))


def cross_validate(x: np.ndarray, y: np.ndarray, binary: np.ndarray, folds: np.ndarray,
                   settings: Settings) -> Predictions:
  """Out-of-fold predictions of every target for every seed's folds.

  Args:
    x: f32[N, F] features, NaN = missing (imputed and standardised per training fold).
    y: f32[N, K] targets, NaN = missing (a target uses only the rows that have it);
      binary targets hold 0/1.
    binary: bool[K] which targets are binary (logistic, or the ridge classifier)
      rather than continuous (ridge).
    folds: int32[S, N] outer fold in [0, K_folds) of each row for each seed, built by
      the caller (`folds.grouped_folds`) so that the same folds serve every model and
      every check; K_folds ≥ 3 (the inner CV uses the other folds).
    settings: α grid, binary model, mesh.
  Returns:
    Predictions.
  """
  x = np.asarray(x, np.float32)
  y = np.asarray(y, np.float32)
  binary = np.asarray(binary, bool)
  if settings.mesh is not None and len({d.process_index for d in settings.mesh.devices.flat}) > 1:
    return _cross_validate_over_processes(x, y, binary, folds, settings)
  if settings.binary_model not in BINARY_MODELS:
    raise ValueError(f"binary_model={settings.binary_model!r}; expected one of "
                     f"{BINARY_MODELS}")
  logistic_targets = binary if settings.binary_model == "logistic" else np.zeros_like(binary)
  n, k = y.shape
  fold_ids = np.asarray(folds, np.int32)
  if fold_ids.ndim != 2 or fold_ids.shape[1] != n:
    raise ValueError(f"folds of shape {fold_ids.shape}; expected [seeds, {n}]")
  n_seeds, n_folds = fold_ids.shape[0], int(fold_ids.max()) + 1
  if n_folds < 3:
    raise ValueError(f"{n_folds} folds: nested cross-validation needs at least 3")
  alphas = np.asarray(sorted(settings.alphas, reverse=True), np.float64)
  oof = np.full((n_seeds, n, k), np.nan, np.float32)
  chosen = np.full((n_seeds, n_folds, k), np.nan)
  cont = np.flatnonzero(~logistic_targets)
  bins = np.flatnonzero(logistic_targets)
  n_dev = 1 if settings.mesh is None else settings.mesh.shape[settings.target_axis]
  xj = jnp.asarray(x)
  yc = _padded_targets(y[:, cont], n_dev, settings)
  yb = _padded_targets(y[:, bins], n_dev, settings, logistic.CHUNK if len(bins) > logistic.CHUNK
                       else 1)
  failed = np.zeros(yb.shape[1], bool)
  pats = ridge.patterns(~np.isnan(np.asarray(yc)))
  x_complete = not np.isnan(x).any()
  alphas_j = jnp.asarray(alphas, jnp.float32)
  for s in range(n_seeds):
    f = fold_ids[s]
    fold_rows = [np.flatnonzero(f == j) for j in range(n_folds)]
    size = max(len(r) for r in fold_rows)
    smallest = min(len(r) for r in fold_rows)
    blocks = _block_sums(xj, yc, pats, fold_rows) if len(cont) else None
    grams = _gram_sums(xj, fold_rows, size) if x_complete else None
    inner_c = {j: 0.0 for j in range(n_folds)}
    inner_b = {j: 0.0 for j in range(n_folds)}
    for a, b in folds_lib.fold_pairs(n_folds):
      train = (f != a) & (f != b)
      keep = [j for j in range(n_folds) if j not in (a, b)]
      xt, basis = design.fit_basis(xj, train, grams and _sum_over(grams, keep))
      if len(cont):
        rfit = ridge.fit(xt, basis, train, _sum_over(blocks, keep), pats)
        inner_c[b] = inner_c[b] + ridge.heldout_sse(rfit, fold_rows[a], yc, alphas, size)
        inner_c[a] = inner_c[a] + ridge.heldout_sse(rfit, fold_rows[b], yc, alphas, size)
      if len(bins):
        path, _ = _logistic_path(xt, basis, train, yb, alphas, n - 2 * smallest,
                                 held_sets=(fold_rows[a], fold_rows[b]), held_rows=2 * size,
                                 patience=settings.logistic_patience)
        failed |= logistic.not_converged(path)
        inner_b[b] = inner_b[b] + path.heldout[:, 0]  # fold a held out: outer fold b's α
        inner_b[a] = inner_b[a] + path.heldout[:, 1]
    # Outer folds: α picked and predictions made on device; brought to the host once
    # per seed (the eigendecompositions are the only host steps inside the loop).
    outer = []
    for j in range(n_folds):
      train = f != j
      keep = [i for i in range(n_folds) if i != j]
      xt, basis = design.fit_basis(xj, train, grams and _sum_over(grams, keep))
      rows = fold_rows[j]
      fold_out = {}
      if len(cont):
        rfit = ridge.fit(xt, basis, train, _sum_over(blocks, keep), pats)
        pick = jnp.argmin(inner_c[j], axis=0)
        fold_out["cont"] = (ridge.predict(rfit, rows, alphas_j[pick], size), pick)
      if len(bins):
        pick = np.argmin(inner_b[j], axis=0)
        path, z = _logistic_path(xt, basis, train, yb, alphas, n - smallest, last=pick)
        failed |= logistic.not_converged(path)
        coef = path.coef[jnp.asarray(pick), jnp.arange(len(pick))]      # [K, ρ+1]
        padded, _ = ridge._pad(rows, size)  # pylint: disable=protected-access
        fold_out["bins"] = (coef[:, 0][None, :] + z[padded] @ coef[:, 1:].T, pick)
      outer.append(fold_out)
    for j, fold_out in enumerate(jax.device_get(outer)):
      rows = fold_rows[j]
      for key, targets in (("cont", cont), ("bins", bins)):
        if key in fold_out:
          pred, pick = fold_out[key]
          oof[s][np.ix_(rows, targets)] = pred[:len(rows), :len(targets)]
          chosen[s, j, targets] = alphas[pick[:len(targets)]]
  converged = np.ones(k, bool)
  converged[bins] = ~failed[:len(bins)]
  oof[:, :, ~converged] = np.nan
  return Predictions(oof, chosen, fold_ids, converged)


def _cross_validate_over_processes(x: np.ndarray, y: np.ndarray, binary: np.ndarray,
                                   folds: np.ndarray, settings: Settings) -> Predictions:
  """`cross_validate` with the targets split over processes (see the module
  docstring); every process returns every target's predictions."""
  count, index = jax.process_count(), jax.process_index()
  k = y.shape[1]
  per = -(-k // count)
  mine = np.arange(index, k, count)
  pad = per - len(mine)  # all-missing targets (never fitted), so all parts are equal
  y_mine = np.concatenate([y[:, mine], np.full((len(y), pad), np.nan, y.dtype)], 1)
  binary_mine = np.concatenate([binary[mine], np.zeros(pad, bool)])
  local = Mesh(np.asarray(jax.local_devices()), (settings.target_axis,))
  part = cross_validate(x, y_mine, binary_mine, folds,
                        dataclasses.replace(settings, mesh=local))
  # [P, ...] every process's part, by a collective over the processes.
  # f64 α travel as their bits (JAX without x64 would round them to f32).
  oof, alpha_bits, converged = multihost_utils.process_allgather(
      (part.oof, np.ascontiguousarray(part.alpha).view(np.uint32), part.converged))
  chosen = np.ascontiguousarray(np.asarray(alpha_bits, np.uint32)).view(np.float64)
  out_oof = np.empty((oof.shape[1], oof.shape[2], k), oof.dtype)
  out_chosen = np.empty((chosen.shape[1], chosen.shape[2], k), chosen.dtype)
  out_converged = np.empty(k, bool)
  for p in range(count):
    cols = np.arange(p, k, count)
    out_oof[:, :, cols] = oof[p][:, :, :len(cols)]
    out_chosen[:, :, cols] = chosen[p][:, :, :len(cols)]
    out_converged[cols] = converged[p][:len(cols)]
  return Predictions(out_oof, out_chosen, part.folds, out_converged)


def _padded_targets(y: np.ndarray, n_dev: int, settings: Settings, multiple: int = 1
                    ) -> jax.Array:
  """Targets padded to a multiple of the mesh size (padding: all missing), sharded."""
  k = y.shape[1]
  m = int(np.lcm(n_dev, multiple))
  if m > 1 and k % m:
    y = np.concatenate([y, np.full((y.shape[0], m - k % m), np.nan, y.dtype)], 1)
  return _shard_targets(jnp.asarray(y), settings)


def _row_space(basis: design.Basis) -> jax.Array:
  """f32[F, rank] the basis vectors with non-zero eigenvalues."""
  return basis.vectors[:, np.flatnonzero(basis.valid)]


def _logistic_path(xt: jax.Array, basis: design.Basis, train: np.ndarray, yb: jax.Array,
                   alphas: np.ndarray, n_rows: int, *, held_sets: tuple[np.ndarray, ...] = (),
                   held_rows: int = 0, patience: int | None = None,
                   last: np.ndarray | None = None) -> tuple[logistic.Path, jax.Array]:
  """One fit's logistic path over its training rows only; (path, z f32[N+1, ρ]: every
  row in the fit's basis, plus an all-zero row).

  Training rows are padded to n_rows and held-out rows to held_rows with the zero row at
  weight 0, so that each kind of fit (inner, outer) has one shape. Class weights are
  balanced over each target's training rows; held-out rows are weighted with the same
  weights (the inner CV loss is the training objective's loss on held-out rows).
  """
  n, k = yb.shape
  z = xt @ _row_space(basis)
  z = jnp.concatenate([z, jnp.zeros((1, z.shape[1]), z.dtype)])
  yp = jnp.concatenate([yb, jnp.full((1, k), jnp.nan, yb.dtype)])

  def pad(rows, size):
    return jnp.asarray(np.concatenate([rows, np.full(size - len(rows), n)]))

  rows = pad(np.flatnonzero(train), n_rows)
  yr = yp[rows]
  used = ~jnp.isnan(yr)
  y0 = jnp.where(used, yr, 0.0)
  count = used.sum(0)
  pos = y0.sum(0)
  w_pos = count / (2.0 * jnp.maximum(pos, 1.0))
  w_neg = count / (2.0 * jnp.maximum(count - pos, 1.0))
  weights = jnp.where(used, jnp.where(y0 > 0.5, w_pos, w_neg), 0.0)
  held = None
  if held_sets:
    hrows = pad(np.concatenate(held_sets), held_rows)
    yh = yp[hrows]
    wh = jnp.where(jnp.isnan(yh), 0.0, jnp.where(jnp.nan_to_num(yh) > 0.5, w_pos, w_neg))
    member = np.repeat(np.arange(len(held_sets) + 1),
                       [len(r) for r in held_sets] + [held_rows - sum(map(len, held_sets))])
    sets = jnp.stack([wh * jnp.asarray(member == g, wh.dtype)[:, None]
                      for g in range(len(held_sets))])
    held = logistic.Held(z[hrows], jnp.nan_to_num(yh), sets)
  path = logistic.fit_path(z[rows], y0, weights, alphas, held=held, patience=patience,
                           last=last)
  return path, z
