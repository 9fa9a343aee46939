"""Scores of out-of-fold predictions, their tests, intervals, FDR and gain over covariates.

Scores are computed on the seed-averaged out-of-fold prediction of each participant
(`average_seeds`): every seed's prediction of a person comes from a model that never
saw that person, so their mean does not either, and one prediction per person makes
participant-level tests and bootstraps well defined.

  continuous: Pearson r (one-sided t-test, H1: r > 0), R² = 1 - SSE/SST, MAE
  binary:     AUC with the one-sided Mann–Whitney U test (scipy)
  intervals:  percentile bootstrap over participants (vectorised: resampling counts)
  gain:       Δr / ΔAUC of full (covariates + embedding) over baseline (covariates),
              paired bootstrap over participants, p = (1 + #{Δ* ≤ 0}) / (B + 1)
  FDR:        Benjamini–Hochberg via statsmodels.multipletests
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats as sps
from statsmodels.stats import multitest


def average_seeds(oof: np.ndarray) -> np.ndarray:
  """f32[N, K] mean over seeds of f32[S, N, K] out-of-fold predictions."""
  with warnings.catch_warnings():  # targets never fitted stay NaN
    warnings.simplefilter("ignore", RuntimeWarning)
    return np.nanmean(oof, axis=0)


def _corr_from(n, sy, sp, syy, spp, syp):
  with np.errstate(invalid="ignore", divide="ignore"):
    cov = syp - sy * sp / n
    vy = syy - sy ** 2 / n
    vp = spp - sp ** 2 / n
    return cov / np.sqrt(vy * vp)


def pearson(y: np.ndarray, pred: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
  """r per target (f64[K]), or per resample with weights f[B, N]; NaN-aware in y/pred."""
  mask = np.isfinite(y) & np.isfinite(pred)
  y0 = np.where(mask, y, 0.0)
  p0 = np.where(mask, pred, 0.0)
  m = mask.astype(np.float64)
  w = np.ones((1, y.shape[0])) if weights is None else weights
  r = _corr_from(w @ m, w @ y0, w @ p0, w @ (y0 * y0), w @ (p0 * p0), w @ (y0 * p0))
  return r[0] if weights is None else r


def continuous_scores(y: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
  """n, r, one-sided p (H1: r > 0), R², MAE per target; y, pred f[N, K] (NaN = none)."""
  mask = np.isfinite(y) & np.isfinite(pred)
  n = mask.sum(0)
  r = pearson(y, pred)
  # Targets not fitted (excluded, reported elsewhere) are all-NaN columns here.
  with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    t = r * np.sqrt((n - 2) / np.maximum(1.0 - r ** 2, 1e-300))
    p = np.where(n > 2, sps.t.sf(t, np.maximum(n - 2, 1)), np.nan)
    y0 = np.where(mask, y, np.nan)
    resid = np.where(mask, y - pred, np.nan)
    sse = np.nansum(resid ** 2, 0)
    sst = np.nansum((y0 - np.nanmean(y0, 0)) ** 2, 0)
    r2 = 1.0 - sse / sst
    mae = np.nanmean(np.abs(resid), 0)
  return {"n": n, "r": r, "p": p, "r2": r2, "mae": mae}


def binary_scores(y: np.ndarray, score: np.ndarray) -> dict[str, np.ndarray]:
  """n, n_positive, AUC and one-sided Mann–Whitney p (H1: AUC > 0.5) per target."""
  k = y.shape[1]
  out = {"n": np.zeros(k, int), "n_positive": np.zeros(k, int), "auc": np.full(k, np.nan),
         "p": np.full(k, np.nan)}
  for j in range(k):
    mask = np.isfinite(y[:, j]) & np.isfinite(score[:, j])
    pos = score[mask & (y[:, j] > 0.5), j]
    neg = score[mask & (y[:, j] <= 0.5), j]
    out["n"][j], out["n_positive"][j] = mask.sum(), len(pos)
    if len(pos) and len(neg):
      u, p = sps.mannwhitneyu(pos, neg, alternative="greater")
      out["auc"][j], out["p"][j] = u / (len(pos) * len(neg)), p
  return out


def resample_weights(groups: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
  """f64[B, N] how often each row is drawn when participants are resampled."""
  _, inverse = np.unique(groups, return_inverse=True)
  n_groups = inverse.max() + 1
  rng = np.random.default_rng(seed)
  counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot)
  return counts[:, inverse].astype(np.float64)


def bootstrap_auc(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
  """f64[B, K] AUC of each resample (weights f[B, N]); exact ties count one half."""
  n_boot, k = weights.shape[0], y.shape[1]
  out = np.full((n_boot, k), np.nan)
  for j in range(k):
    mask = np.isfinite(y[:, j]) & np.isfinite(score[:, j])
    s, lab, w = score[mask, j], y[mask, j] > 0.5, weights[:, mask]
    order = np.argsort(s, kind="stable")
    s, lab, w = s[order], lab[order], w[:, order]
    # Negatives strictly below each row, plus half of the tied negatives.
    wn = w * ~lab
    _, first, counts = np.unique(s, return_index=True, return_counts=True)
    tie_group = np.repeat(np.arange(len(first)), counts)
    start = np.cumsum(wn, 1)
    group_end = start[:, first + counts - 1]
    group_start = np.concatenate([np.zeros((n_boot, 1)), start], 1)[:, first]
    tied_neg = (group_end - group_start)[:, tie_group]
    below = group_start[:, tie_group] + 0.5 * tied_neg
    wp = w * lab
    with np.errstate(invalid="ignore", divide="ignore"):
      out[:, j] = (wp * below).sum(1) / (wp.sum(1) * wn.sum(1))
  return out


def interval(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
  """Percentile interval of f[B, K] bootstrap samples."""
  lo = (1.0 - level) / 2.0
  with warnings.catch_warnings():  # targets without any finite resample give NaN
    warnings.simplefilter("ignore", RuntimeWarning)
    return (np.nanquantile(samples, lo, axis=0), np.nanquantile(samples, 1.0 - lo, axis=0))


def bootstrap_p(delta: np.ndarray) -> np.ndarray:
  """One-sided p of H0: Δ ≤ 0 from f[B, K] paired bootstrap differences."""
  b = np.isfinite(delta).sum(0)
  with np.errstate(invalid="ignore"):
    return np.where(b > 0, (1.0 + (delta <= 0).sum(0)) / (b + 1.0), np.nan)


def loss_difference(y: np.ndarray, base: np.ndarray, full: np.ndarray,
                    binary: np.ndarray) -> np.ndarray:
  """f64[N, K] per-participant out-of-fold loss of the base model minus the full
  model's (> 0: the full model predicts that person better); NaN where y is missing.

  Continuous: squared error. Binary (predictions are logits): log-loss with the
  balanced class weights the models were fitted with.
  """
  d = (y - base) ** 2 - (y - full) ** 2
  b = np.flatnonzero(binary)
  if len(b):
    yb = y[:, b]
    pos = np.nanmean(yb, axis=0)
    w = np.where(yb == 1, 0.5 / pos, 0.5 / (1 - pos))
    def log_loss(logit):
      return np.logaddexp(0.0, -logit) * (yb == 1) + np.logaddexp(0.0, logit) * (yb == 0)
    d[:, b] = w * (log_loss(base[:, b]) - log_loss(full[:, b]))
  return np.where(np.isfinite(y), d, np.nan)


def bootstrap_mean_p(d: np.ndarray, weights: np.ndarray) -> np.ndarray:
  """One-sided p of H0: E[d] ≤ 0 from a participant bootstrap of the mean of d[N, K]
  (weights f[B, N] from `resample_weights`)."""
  ok = np.isfinite(d)
  total = weights @ np.where(ok, d, 0.0)
  count = weights @ ok.astype(np.float64)
  with np.errstate(invalid="ignore", divide="ignore"):
    return bootstrap_p(total / count)


def fdr(p: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
  """Benjamini–Hochberg over the finite p-values: (q-values, significant)."""
  qv = np.full(p.shape, np.nan)
  sig = np.zeros(p.shape, bool)
  ok = np.isfinite(p)
  if ok.any():
    sig[ok], qv[ok], _, _ = multitest.multipletests(p[ok], alpha=q, method="fdr_bh")
  return qv, sig


def power_fdp(significant: dict[str, bool], truth: dict, covariate_adjusted: bool = False
              ) -> dict[str, float]:
  """Power and false discovery proportion against the synthetic cohort's truth.json.

  Args:
    significant: target → discovered (e.g. the `significant` or `gain_significant`
      column of targets.parquet for one subset).
    truth: the parsed truth.json ({"targets": {name: {"category": ...}}}).
    covariate_adjusted: True for gain discoveries (only "gait" targets are true);
      False for plain probing ("gait" and "covariate_only" both carry signal).
  Returns:
    {"power", "fdp", "discoveries", "true"} over targets present in both.
  """
  cats = {k: v.get("category") for k, v in truth["targets"].items()}
  real = {"gait"} if covariate_adjusted else {"gait", "covariate_only"}
  names = [t for t in significant if t in cats]
  is_true = np.array([cats[t] in real for t in names], bool)
  found = np.array([bool(significant[t]) for t in names], bool)
  n_found = int(found.sum())
  return {"power": float((found & is_true).sum() / max(is_true.sum(), 1)),
          "fdp": float((found & ~is_true).sum() / max(n_found, 1)),
          "discoveries": n_found, "true": int(is_true.sum())}
