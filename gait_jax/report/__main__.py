"""python -m gait_jax.report --run RUN_DIR --out OUT_DIR [--truth PATH]: see `job`."""

from gait_jax.report import job

if __name__ == "__main__":
  job.main()
