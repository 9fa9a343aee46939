"""The report: a run directory → one self-contained HTML page, its figures and tables.

  python -m gait_jax.report --run runs/demo --out runs/demo/report

  rundir          where each stage of a run directory keeps its outputs; probe results
                  of every feature set read as one table
  tables          one tidy table per figure, built from the run directory (None and
                  the reason when its inputs are missing)
  reconstruction  one masked reconstruction from the pretraining checkpoint
  figures         one function per figure: tidy table → matplotlib Figure
  page            the HTML page, images inlined
  browser         headless Chromium: a screenshot of the page, image load checks
  job             build the page, figures and CSVs; log them to W&B; `main`
"""
