"""Scores of cross-validated predictions, their calibrated tests, intervals and FDR.

Why scores are computed within test folds. A person's out-of-fold prediction contains
the training-fold mean, which never includes that person: for predictions near that
mean (strong shrinkage, a null target) the prediction is anti-correlated with y, so a
correlation over all out-of-fold predictions is biased towards -1/sqrt(n_fold), and
averaging predictions over seeds (the same leave-out in every seed) makes it far worse
(mean r = -0.28 on 300 pure-noise targets at n = 120). Within one test fold every
prediction comes from one model that never saw any of the fold's y, so a score computed
on that fold alone is unbiased under the null. Scores here are therefore:

  r     per test fold (Pearson, y and prediction on the fold's rows), averaged over
        folds with weights n_fold - 2 and then over seeds
  R²    per test fold on y and prediction centred on the fold: the share of the
        within-fold variance explained (0 for a constant prediction, < 0 when the
        prediction's variation is noise)
  AUC   within-fold pairs only (positives and negatives of the same test fold),
        pooled over the folds of a seed, then averaged over seeds
  MAE   mean absolute error of the raw predictions, averaged over seeds

and, in the published form (to compare with the paper): r and AUC of the pooled
out-of-fold predictions of each seed, mean and SD over seeds (`r_seed_mean`, ...).

Why the tests are calibrated with null targets. Out-of-fold predictions of two people
share training data: under the null, person i's prediction depends on y_j and person
j's on y_i, symmetrically, so Σ y_i p_i is a degenerate quadratic form whose variance
is about twice what a test treating predictions as fixed assumes (null p-values < 0.05
for 10-15 % of pure-noise binary targets). Each statistic is first standardised as if
predictions were fixed (z), then calibrated by λ = var z over simulated null targets
(pure noise, probed by the same models, folds and α search as the real ones; never
below 1): p = Φ̄(z / sqrt(λ)), one-sided (H1: better than chance). λ is reported.

  continuous: z = r · sqrt(Σ_folds (n_fold - 2))
  binary:     z = (AUC - 1/2) / sd₀, sd₀ the Mann–Whitney null SD of the within-fold AUC
  gain:       per-participant out-of-fold loss of the covariates-only model minus that
              of covariates + embedding (squared error; class-balanced log-loss),
              averaged over seeds; z = mean / standard error over participants

FDR: Benjamini–Hochberg via statsmodels.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats as sps
from statsmodels.stats import multitest

Z_95 = 1.959963984540054


def _fold_moments(y: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
  """Per-target sums over rows where both are finite; y, pred f[h, K]."""
  m = np.isfinite(y) & np.isfinite(pred)
  y0, p0 = np.where(m, y, 0.0), np.where(m, pred, 0.0)
  return {"n": m.sum(0).astype(np.float64), "sy": y0.sum(0), "sp": p0.sum(0),
          "syy": (y0 * y0).sum(0), "spp": (p0 * p0).sum(0), "syp": (y0 * p0).sum(0),
          "sae": np.abs(y0 - p0).sum(0)}


def _centred(s: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(Σ ỹ p̃, Σ ỹ², Σ p̃²) of the fold-centred values."""
  n = np.maximum(s["n"], 1.0)
  return (s["syp"] - s["sy"] * s["sp"] / n, s["syy"] - s["sy"] ** 2 / n,
          s["spp"] - s["sp"] ** 2 / n)


def _ranks(score: np.ndarray) -> np.ndarray:
  """Average ranks (ties share) per column over the finite rows; NaN elsewhere."""
  return sps.rankdata(np.where(np.isfinite(score), score, np.nan), axis=0, nan_policy="omit")


def _auc_sums(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                             np.ndarray]:
  """(U, n⁺n⁻, null variance of U, n) per target over rows with both finite."""
  m = np.isfinite(y) & np.isfinite(score)
  ranks = _ranks(np.where(m, score, np.nan))
  pos = m & (np.nan_to_num(y) > 0.5)
  n_pos, n = pos.sum(0).astype(np.float64), m.sum(0).astype(np.float64)
  n_neg = n - n_pos
  u = np.where(pos, ranks, 0.0).sum(0) - n_pos * (n_pos + 1) / 2
  return u, n_pos * n_neg, n_pos * n_neg * (n + 1) / 12.0, n


def fold_scores(y: np.ndarray, oof: np.ndarray, folds: np.ndarray, binary: np.ndarray
                ) -> dict[str, np.ndarray]:
  """Unbiased within-fold scores, their naive z statistics and the published form.

  Args:
    y: f[N, K] targets (NaN = missing; binary ones 0/1).
    oof: f[S, N, K] out-of-fold predictions of every seed (binary: logits); NaN where
      a target was not fitted.
    folds: int[S, N] the test fold of each row in each seed (the folds the models were
      fitted on, restricted to these rows).
    binary: bool[K].
  Returns:
    per-target f64[K] arrays: n, n_positive, r, r2, mae, auc, z, n_eff (Σ n_fold - 2,
    continuous; pairs n⁺n⁻, binary), r_seed_mean, r_seed_sd, auc_seed_mean,
    auc_seed_sd. Entries that do not apply to a target's kind are NaN.
  """
  y = np.asarray(y, np.float64)
  oof = np.asarray(oof, np.float64)
  s_count, _, k = oof.shape
  c, b = ~np.asarray(binary, bool), np.asarray(binary, bool)
  r_num = np.zeros((s_count, k))
  r_den = np.zeros((s_count, k))
  r2_num = np.zeros((s_count, k))
  r2_den = np.zeros((s_count, k))
  abs_err = np.zeros((s_count, k))
  counts = np.zeros((s_count, k))
  u_sum = np.zeros((s_count, k))
  pairs = np.zeros((s_count, k))
  u_var = np.zeros((s_count, k))
  r_seed = np.full((s_count, k), np.nan)
  auc_seed = np.full((s_count, k), np.nan)
  with np.errstate(invalid="ignore", divide="ignore"):
    for s in range(s_count):
      for fold in np.unique(folds[s]):
        rows = folds[s] == fold
        mom = _fold_moments(y[rows], oof[s, rows])
        cyp, cyy, cpp = _centred(mom)
        r_k = cyp / np.sqrt(cyy * cpp)
        w = np.where(np.isfinite(r_k), np.maximum(mom["n"] - 2.0, 0.0), 0.0)
        r_num[s] += w * np.nan_to_num(r_k)
        r_den[s] += w
        r2_num[s] += np.where(cyy > 0, cyy - 2 * cyp + cpp, 0.0)
        r2_den[s] += np.where(cyy > 0, cyy, 0.0)
        abs_err[s] += mom["sae"]
        counts[s] += mom["n"]
        if b.any():
          u, pq, var, _ = _auc_sums(y[rows][:, b], oof[s, rows][:, b])
          u_sum[s, b] += u
          pairs[s, b] += pq
          u_var[s, b] += var
      mom = _fold_moments(y, oof[s])
      cyp, cyy, cpp = _centred(mom)
      r_seed[s] = cyp / np.sqrt(cyy * cpp)
      if b.any():
        u, pq, _, _ = _auc_sums(y[:, b], oof[s][:, b])
        auc_seed[s, b] = u / pq
    with warnings.catch_warnings():  # targets not fitted: all-NaN columns
      warnings.simplefilter("ignore", RuntimeWarning)
      r = np.nanmean(np.where(r_den > 0, r_num / r_den, np.nan), 0)
      n_eff = np.nanmean(np.where(r_den > 0, r_den, np.nan), 0)
      r2 = 1.0 - np.nanmean(np.where(r2_den > 0, r2_num / r2_den, np.nan), 0)
      mae = np.nanmean(np.where(counts > 0, abs_err / counts, np.nan), 0)
      auc = np.nanmean(np.where(pairs > 0, u_sum / pairs, np.nan), 0)
      auc_sd0 = np.nanmean(np.where(pairs > 0, np.sqrt(u_var) / pairs, np.nan), 0)
      n_pairs = np.nanmean(np.where(pairs > 0, pairs, np.nan), 0)
      out = {
          "n": np.isfinite(y).sum(0).astype(np.float64),
          "n_positive": np.where(b, (np.nan_to_num(y) > 0.5).sum(0), np.nan),
          "r": np.where(c, r, np.nan), "r2": np.where(c, r2, np.nan),
          "mae": np.where(c, mae, np.nan), "auc": np.where(b, auc, np.nan),
          "z": np.where(c, r * np.sqrt(n_eff), (auc - 0.5) / auc_sd0),
          "n_eff": np.where(c, n_eff, n_pairs),
          "r_seed_mean": np.where(c, np.nanmean(r_seed, 0), np.nan),
          "r_seed_sd": np.where(c, _sd(r_seed), np.nan),
          "auc_seed_mean": np.where(b, np.nanmean(auc_seed, 0), np.nan),
          "auc_seed_sd": np.where(b, _sd(auc_seed), np.nan),
      }
  unfitted = ~np.isfinite(oof).any(axis=(0, 1))
  for key in out:
    if key not in ("n", "n_positive"):
      out[key][unfitted] = np.nan
  return out


def _sd(a: np.ndarray) -> np.ndarray:
  """SD over seeds (axis 0), ddof 1; 0 for one seed."""
  if a.shape[0] < 2:
    return np.where(np.isfinite(a[0]), 0.0, np.nan)
  return np.nanstd(a, axis=0, ddof=1)


def loss_difference(y: np.ndarray, base: np.ndarray, full: np.ndarray,
                    logits: np.ndarray) -> np.ndarray:
  """f64[N, K] per-participant out-of-fold loss of the base model minus the full
  model's, averaged over seeds (> 0: the full model predicts that person better); NaN
  where y is missing.

  Args:
    y: f[N, K]; base, full: f[S, N, K] out-of-fold predictions.
    logits: bool[K] targets whose predictions are logits of 0/1 labels (logistic).
  Squared error, or for logits the log-loss with balanced class weights (those the
  logistic models were fitted with).
  """
  y = np.asarray(y, np.float64)
  base, full = np.asarray(base, np.float64), np.asarray(full, np.float64)
  d = (y[None] - base) ** 2 - (y[None] - full) ** 2
  b = np.flatnonzero(logits)
  if len(b):
    yb = y[:, b]
    # NaN logits (targets not fitted) and one-class subsets give NaN, not warnings.
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
      warnings.simplefilter("ignore", RuntimeWarning)
      pos = np.nanmean(yb, axis=0)
      w = np.where(yb == 1, 0.5 / pos, 0.5 / (1 - pos))

      def log_loss(logit):
        return np.logaddexp(0.0, -logit) * (yb == 1) + np.logaddexp(0.0, logit) * (yb == 0)
      d[:, :, b] = w * (log_loss(base[:, :, b]) - log_loss(full[:, :, b]))
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    d = np.nanmean(d, axis=0)
  return np.where(np.isfinite(y), d, np.nan)


def mean_z(d: np.ndarray) -> np.ndarray:
  """f64[K] one-sample z = mean / standard error of d f[N, K] over its finite rows."""
  ok = np.isfinite(d)
  n = ok.sum(0)
  with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    mean = np.nanmean(d, 0)
    sd = np.nanstd(d, 0, ddof=1)
    return np.where(n > 2, mean / (sd / np.sqrt(n)), np.nan)


def null_scale(z_null: np.ndarray) -> float:
  """λ = the variance of simulated null targets' statistics, at least 1 (NaN: fewer
  than two). The variance, not the mean square: where the null mean is below 0 (adding
  noise features to the covariates makes predictions worse), that shift already makes
  the one-sided test conservative and should not widen it further."""
  z = np.asarray(z_null, np.float64)
  z = z[np.isfinite(z)]
  if len(z) < 2:
    return float("nan")
  return max(1.0, float(np.var(z, ddof=1)))


def calibrated_p(z: np.ndarray, scale: float) -> np.ndarray:
  """One-sided p = Φ̄(z / sqrt(λ)); with no λ (no null targets) λ = 1."""
  lam = 1.0 if not np.isfinite(scale) else scale
  return sps.norm.sf(np.asarray(z, np.float64) / np.sqrt(lam))


def r_interval(r: np.ndarray, n_eff: np.ndarray, scale: float
               ) -> tuple[np.ndarray, np.ndarray]:
  """95 % interval of r: Fisher z ± 1.96 sqrt(λ / n_eff)."""
  lam = 1.0 if not np.isfinite(scale) else scale
  with np.errstate(invalid="ignore", divide="ignore"):
    half = Z_95 * np.sqrt(lam / n_eff)
    centre = np.arctanh(np.clip(r, -0.999999, 0.999999))
    return np.tanh(centre - half), np.tanh(centre + half)


def auc_interval(auc: np.ndarray, n_pos: np.ndarray, n_neg: np.ndarray, scale: float
                 ) -> tuple[np.ndarray, np.ndarray]:
  """95 % interval of the AUC: ± 1.96 sqrt(λ) × the Hanley–McNeil standard error."""
  lam = 1.0 if not np.isfinite(scale) else scale
  a = np.asarray(auc, np.float64)
  with np.errstate(invalid="ignore", divide="ignore"):
    q1, q2 = a / (2 - a), 2 * a ** 2 / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a ** 2) + (n_neg - 1) * (q2 - a ** 2)) / (
        n_pos * n_neg)
    half = Z_95 * np.sqrt(lam * np.maximum(var, 0.0))
  return np.clip(a - half, 0.0, 1.0), np.clip(a + half, 0.0, 1.0)


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
