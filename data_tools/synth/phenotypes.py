"""Phenotype targets: which target depends on what, their values, the dictionary
and the planted truth.

Every target has a standardised liability

  liability = sum_s coef_s * z_s + noise_sd * eps,   eps ~ N(0, 1),

over the reference z-scores z_s of the latent factors and covariates
(people.SOURCES), scaled so that the signal explains a fraction r2 of its
variance in the reference population (noise_sd = sqrt(1 - r2)). Continuous
targets are an affine (or log-normal) map of the liability into their units;
binary targets threshold it at the normal quantile of their prevalence
(a probit model). Categories: `gait` targets depend on gait-visible factors
(and maybe covariates), `covariate_only` targets only on covariates (linearly,
so covariate adjustment removes them), `null` targets on nothing.

The design is drawn from `[seed, STREAM_DESIGN]`; participant i's noise and
missingness from `[seed, i, STREAM_PHENOTYPES]`, so a participant's values do
not depend on the cohort's size.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
import pandas as pd
from scipy import special

from data_tools.synth import catalogue, people
from gait_jax.errors import InputError

CATEGORIES: tuple[str, ...] = ("gait", "covariate_only", "null")
CATEGORY_SHARES = {"gait": 0.35, "covariate_only": 0.30, "null": 0.35}
COVARIATE_SYSTEM = "anthropometrics"
_COVARIATE_ODDS = {"age": 3.0, "sex": 3.0, "bmi": 3.0, "visceral_fat": 2.0, "height": 1.0}
_QUESTIONNAIRES = ("lifestyle", "nutrition", "mental_health", "sleep")


@dataclasses.dataclass
class Target:
  """One phenotype target (see the module docstring for the model)."""
  name: str
  system: str
  kind: str  # "continuous" | "binary"
  category: str
  weights: dict[str, float]  # source → weight on its z-score, before scaling
  r2: float
  loc: float = 0.0
  scale: float = 1.0
  unit: str = ""
  transform: str = "identity"
  prevalence: float | None = None
  lower: float | None = None
  missing_fraction: float = 0.0
  missing_mechanism: str = "mcar"  # "mcar" | "female_only" | "male_only"
  named: bool = False


def _category(weights: dict[str, float]) -> str:
  if any(s in people.FACTORS for s in weights):
    return "gait"
  return "covariate_only" if weights else "null"


def _allocate(total: int, shares: dict[str, float]) -> dict[str, int]:
  """Largest-remainder split of `total` over the keys, at least 1 each."""
  keys = list(shares)
  if total < len(keys):
    raise InputError(f"need at least {len(keys)} targets (one per body system), got {total}")
  raw = np.array([shares[k] for k in keys], np.float64)
  raw = raw / raw.sum() * (total - len(keys))
  counts = np.floor(raw).astype(int) + 1
  order = np.argsort(-(raw - np.floor(raw)), kind="stable")
  counts[order[:total - counts.sum()]] += 1
  return dict(zip(keys, counts.tolist()))


def _missing(rng: np.random.Generator, system: str, named: bool) -> tuple[float, str]:
  """(fraction, mechanism): mostly a few percent MCAR; questionnaires more."""
  if named:
    frac = rng.uniform(0.05, 0.25) if system in _QUESTIONNAIRES else rng.uniform(0.0, 0.08)
    return float(frac), "mcar"
  u = rng.random()
  frac = rng.uniform(0.0, 0.03) if u < 0.4 else (
      rng.uniform(0.03, 0.2) if u < 0.8 else rng.uniform(0.2, 0.4))
  female, male = (0.2, 0.1) if system == "hormonal" else (0.03, 0.02)
  v = rng.random()
  mechanism = "female_only" if v < female else ("male_only" if v < female + male else "mcar")
  return float(frac), mechanism


def _pick(rng: np.random.Generator, odds: dict[str, float], n: int) -> list[str]:
  keys = list(odds)
  p = np.array([odds[k] for k in keys], np.float64)
  return [str(k) for k in rng.choice(keys, size=min(n, len(keys)), replace=False,
                                     p=p / p.sum())]


def _generic(rng: np.random.Generator, system: str, name: str, category: str) -> Target:
  """A systematically named target of `system` in `category`."""
  binary = rng.random() < catalogue.BINARY_SHARE.get(system, catalogue.DEFAULT_BINARY_SHARE)
  weak = system in catalogue.WEAK_SYSTEMS
  weights: dict[str, float] = {}
  sign = lambda: rng.choice([-1.0, 1.0])  # noqa: E731
  if category == "gait":
    num = int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
    factors = _pick(rng, catalogue.SYSTEM_FACTORS[system], num)
    for j, f in enumerate(factors):
      weights[f] = sign() * (rng.uniform(0.5, 1.0) if j == 0 else rng.uniform(0.2, 0.7))
    if rng.random() < 0.5:
      for c in _pick(rng, _COVARIATE_ODDS, int(rng.integers(1, 3))):
        weights[c] = sign() * rng.uniform(0.1, 0.5)
    r2 = rng.uniform(0.02, 0.15) if weak else rng.uniform(0.05, 0.45)
  elif category == "covariate_only":
    for c in _pick(rng, _COVARIATE_ODDS, int(rng.integers(1, 4))):
      weights[c] = sign() * rng.uniform(0.3, 1.0)
    r2 = rng.uniform(0.02, 0.2) if weak else rng.uniform(0.05, 0.6)
  else:
    r2 = 0.0
  frac, mechanism = _missing(rng, system, named=False)
  target = Target(name=name, system=system, kind="binary" if binary else "continuous",
                  category=category, weights=weights, r2=float(r2),
                  missing_fraction=frac, missing_mechanism=mechanism)
  if binary:
    target.prevalence = float(np.exp(rng.uniform(np.log(0.02), np.log(0.4))))
  elif category != "covariate_only" and rng.random() < (0.8 if system == "microbiome" else 0.3):
    # Skewed (log-normal) targets; never covariate-only ones, whose covariate
    # dependence must stay linear for adjustment to remove it.
    target.transform = "log"
    target.loc = float(10.0 ** rng.uniform(-3.0, 2.0))
    target.scale = float(rng.uniform(0.3, 1.5))
  else:
    target.loc = float(10.0 ** rng.uniform(-1.0, 3.0))
    target.scale = float(target.loc * rng.uniform(0.1, 0.4))
  return target


def design(seed: int, num_targets: int) -> list[Target]:
  """The cohort's targets: named headline targets first within each system,
  then generic ones, with categories in CATEGORY_SHARES overall."""
  rng = np.random.default_rng([seed, people.STREAM_DESIGN])
  counts = _allocate(num_targets, catalogue.SYSTEMS)
  named: dict[str, list[Target]] = {}
  for system, count in counts.items():
    named[system] = []
    for spec in catalogue.NAMED[system][:count]:
      frac, mechanism = _missing(rng, system, named=True)
      if spec.sex_only:
        mechanism = f"{spec.sex_only}_only"
      named[system].append(Target(
          name=spec.name, system=system, kind=spec.kind, category=_category(spec.weights),
          weights=dict(spec.weights), r2=spec.r2, loc=spec.loc, scale=spec.scale,
          unit=spec.unit, transform=spec.transform, prevalence=spec.prevalence,
          lower=spec.lower, missing_fraction=frac, missing_mechanism=mechanism,
          named=True))
  num_named = collections.Counter(t.category for ts in named.values() for t in ts)
  num_generic = num_targets - sum(num_named.values())
  want = {c: max(CATEGORY_SHARES[c] * num_targets - num_named[c], 1e-9) for c in CATEGORIES}
  per_category = _allocate(num_generic + len(CATEGORIES), want) if num_generic else {}
  pool = [c for c in CATEGORIES for _ in range(per_category.get(c, 1) - 1)]
  pool = list(rng.permutation(np.array(pool, dtype=object))) if pool else []
  targets = []
  for system, count in counts.items():
    targets += named[system]
    extra = count - len(named[system])
    width = max(3, len(str(extra)))
    for k in range(extra):
      targets.append(_generic(rng, system, f"{system}_{k + 1:0{width}d}", pool.pop()))
  assert len(targets) == num_targets and not pool
  return targets


def _weight_matrix(targets: list[Target]) -> np.ndarray:
  """f64[S, K] weights over people.SOURCES."""
  index = {s: i for i, s in enumerate(people.SOURCES)}
  w = np.zeros((len(people.SOURCES), len(targets)))
  for k, t in enumerate(targets):
    for s, v in t.weights.items():
      w[index[s], k] = v
  return w


def coefficients(targets: list[Target]) -> np.ndarray:
  """f64[S, K] effective liability coefficients on the sources' z-scores."""
  w = _weight_matrix(targets)
  var = np.einsum("sk,st,tk->k", w, people.source_correlation(), w)
  r2 = np.array([t.r2 for t in targets])
  return w * np.where(var > 0, np.sqrt(r2 / np.maximum(var, 1e-12)), 0.0)


def simulate(targets: list[Target], cohort: dict[str, np.ndarray], seed: int) -> np.ndarray:
  """Target values f64[N, K] (NaN = missing) for the cohort (people.sample)."""
  n, k = len(cohort["age"]), len(targets)
  liability = people.source_matrix(cohort) @ coefficients(targets)
  noise = np.empty((n, k))
  present = np.empty((n, k))
  for i in range(n):
    rng = np.random.default_rng([seed, i, people.STREAM_PHENOTYPES])
    noise[i] = rng.standard_normal(k)
    present[i] = rng.random(k)
  r2 = np.array([t.r2 for t in targets])
  liability += np.sqrt(1.0 - r2) * noise
  values = np.empty((n, k))
  male = cohort["sex"] > 0.5
  for j, t in enumerate(targets):
    y = liability[:, j]
    if t.kind == "binary":
      v = (y > special.ndtri(1.0 - t.prevalence)).astype(np.float64)
    elif t.transform == "log":
      v = t.loc * np.exp(t.scale * y)
    else:
      v = t.loc + t.scale * y
    if t.lower is not None:
      v = np.maximum(v, t.lower)
    missing = present[:, j] < t.missing_fraction
    if t.missing_mechanism == "female_only":
      missing |= male
    elif t.missing_mechanism == "male_only":
      missing |= ~male
    values[:, j] = np.where(missing, np.nan, v)
  return values


def covariate_columns(cohort: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The covariate columns as measured (rounded as a clinic records them)."""
  digits = {"age": 1, "sex": 0, "height": 1, "weight": 1, "bmi": 2, "visceral_fat": 3,
            "leg_length": 1}
  return {c: np.round(cohort[c], digits[c]) for c in people.COVARIATES}


def table(targets: list[Target], cohort: dict[str, np.ndarray], values: np.ndarray
          ) -> pd.DataFrame:
  """phenotypes.parquet: participant_id, covariates, then every target."""
  ids = [people.participant_id(i) for i in range(len(cohort["age"]))]
  columns = {"participant_id": ids, **covariate_columns(cohort)}
  columns.update({t.name: values[:, j] for j, t in enumerate(targets)})
  return pd.DataFrame(columns)


def dictionary(targets: list[Target]) -> pd.DataFrame:
  """dictionary.csv: target, system, kind, is_covariate (covariates first)."""
  rows = [(c, COVARIATE_SYSTEM, "binary" if c == "sex" else "continuous", True)
          for c in people.COVARIATES]
  rows += [(t.name, t.system, t.kind, False) for t in targets]
  return pd.DataFrame(rows, columns=["target", "system", "kind", "is_covariate"])


def truth(targets: list[Target], values: np.ndarray) -> dict:
  """Per target: category, coefficients by factor and covariate, body regions,
  noise, transform, planned and observed missingness and prevalence."""
  coef = coefficients(targets)
  out = {}
  for j, t in enumerate(targets):
    c = {s: float(coef[i, j]) for i, s in enumerate(people.SOURCES) if coef[i, j] != 0.0}
    regions = sorted({r for f in c if f in people.FACTORS for r in people.FACTORS[f]["regions"]})
    col = values[:, j]
    observed = ~np.isnan(col)
    entry = {
        "system": t.system, "kind": t.kind, "category": t.category, "named": t.named,
        "factors": {s: v for s, v in c.items() if s in people.FACTORS},
        "covariates": {s: v for s, v in c.items() if s not in people.FACTORS},
        "regions": regions, "r2": t.r2, "noise_sd": float(np.sqrt(1.0 - t.r2)),
        "missing_fraction": t.missing_fraction, "missing_mechanism": t.missing_mechanism,
        "observed_fraction": float(observed.mean()) if col.size else 0.0,
    }
    if t.kind == "binary":
      entry["prevalence"] = t.prevalence
      entry["observed_prevalence"] = float(col[observed].mean()) if observed.any() else None
    else:
      entry.update(transform=t.transform, loc=t.loc, scale=t.scale, unit=t.unit,
                   lower=t.lower)
    out[t.name] = entry
  return out
