"""Pretraining: train state, checkpoints, metric writer, figures and the loop."""
