"""Phenotype probing: cross-validated linear probes from embeddings to many targets.

  folds     grouped outer folds, repeated over seeds (scikit-learn GroupKFold)
  design    per-fold feature standardisation/imputation and the eigenbasis of a fit
  ridge     closed-form ridge for every target and α from one basis (held-out error,
            predictions), missing targets grouped by pattern
  logistic  batched L2 logistic regression (Newton-CG along the α path, convergence
            checked) in the same basis
  engine    nested cross-validation over given folds: α per target, out-of-fold
            predictions, target axis sharded over a device mesh
  protocol  which models are fitted on which participants and folds, what they score
  stats     within-fold scores (unbiased for nulls) and the published form, tests
            calibrated by simulated null targets, intervals, FDR, gain, power/FDP
  config    the probe job's config
  tables    reading and checking the inputs, the report of excluded inputs, result tables
  job       the `probe` job (python -m gait_jax.main --config experiments/probe.py)
"""
