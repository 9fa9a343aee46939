"""The probe protocol as data: which models are fitted on which participants with which
folds, and which fitted predictions score which subset.

  subsets   all, male, female (bool masks over the participants)
  models    embedding (the embedding alone), base (covariates alone), full (both)
  fits      one per (rows, model): the models are cross-validated over the
            participants of `rows` — "all" for pooled models, each sex for
            sex-specific ones
  folds     int32[S, n] per fitted row set, built once per (subset, seed) from the
            participants (grouped, shuffled per seed); every model fitted on those rows,
            the fold guard and the scores use exactly these folds

A subset is scored on the predictions of the fit that covers it (pooled: the "all"
fit restricted to the subset's rows and folds; separate: its own fit).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gait_jax.probing import folds as folds_lib

MODELS = {"embedding": (True, False), "base": (False, True), "full": (True, True)}
SEX_MODELS = ("pooled", "separate")


@dataclasses.dataclass(frozen=True)
class Fit:
  """One cross-validated model family: `model` fitted over the participants of `rows`."""
  rows: str
  model: str

  @property
  def uses_embedding(self) -> bool:
    return MODELS[self.model][0]

  @property
  def uses_covariates(self) -> bool:
    return MODELS[self.model][1]


@dataclasses.dataclass(frozen=True)
class Protocol:
  """subsets: name → bool[N]; folds: fitted row set → int32[S, n_rows]."""
  subsets: dict[str, np.ndarray]
  folds: dict[str, np.ndarray]
  models: tuple[str, ...]
  sex_models: str

  def rows_for(self, subset: str) -> str:
    """The row set whose fit scores `subset`."""
    return "all" if self.sex_models == "pooled" else subset

  @property
  def fits(self) -> list[Fit]:
    return [Fit(rows, model) for rows in self.folds for model in self.models]

  def scoring(self, subset: str) -> tuple[str, np.ndarray, np.ndarray]:
    """(row set of the fit, positions of the subset's rows within it, their folds
    int32[S, n_subset])."""
    rows = self.rows_for(subset)
    fit_rows = np.flatnonzero(self.subsets[rows])
    mine = np.flatnonzero(self.subsets[subset][fit_rows])
    return rows, mine, self.folds[rows][:, mine]


def build(ids: np.ndarray, sex: np.ndarray | None, *, n_folds: int, seeds: tuple[int, ...],
          sex_models: str, covariates: bool) -> Protocol:
  """The protocol of a probe run.

  Args:
    ids: [N] participant ids (one row each).
    sex: f[N] 1 = male, 0 = female, NaN = unknown; None: only the "all" subset.
    n_folds, seeds: grouped folds repeated over seeds.
    sex_models: "pooled" (one model over everyone scores every subset) or "separate"
      (one model per sex).
    covariates: whether the base and full models (gain over covariates) are fitted.
  """
  if sex_models not in SEX_MODELS:
    raise ValueError(f"sex_models={sex_models!r}; expected one of {SEX_MODELS}")
  subsets = {"all": np.ones(len(ids), bool)}
  if sex is not None:
    subsets["male"] = sex == 1
    subsets["female"] = sex == 0
  fitted = ["all"] if sex_models == "pooled" else list(subsets)
  folds = {}
  for rows in fitted:
    members = np.asarray(ids)[subsets[rows]]
    if len(members) >= n_folds:
      folds[rows] = folds_lib.grouped_folds(members, n_folds, seeds)
  models = ("embedding", "base", "full") if covariates else ("embedding",)
  return Protocol(subsets, folds, models, sex_models)
