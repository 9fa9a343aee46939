"""Phenotype probing: cross-validated linear probes from embeddings to many targets.

  folds     grouped outer folds, repeated over seeds (scikit-learn GroupKFold)
  design    per-fold feature standardisation/imputation and the eigenbasis of a fit
  ridge     closed-form ridge for every target and α from one basis (held-out error,
            predictions), missing targets grouped by pattern
  logistic  batched L2 logistic regression (Newton) in the same basis
  engine    nested cross-validation over seeds: α per target, out-of-fold predictions,
            target axis sharded over a device mesh
  stats     scores, p-values, bootstrap intervals, FDR, gain over covariates, power/FDP
  tables    reading and checking the inputs, the report of excluded inputs, result tables
  job       the `probe` job (python -m gait_jax.main --config experiments/probe.py)
"""
