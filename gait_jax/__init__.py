"""gait_jax: a JAX gait foundation model over 3D skeleton recordings."""
