"""The synthetic cohort: files, determinism, planted effects, phenotype truth."""

from __future__ import annotations

import hashlib
import json
import pathlib

import numpy as np
import pandas as pd
import pytest

from data_tools import synth
from data_tools.synth import __main__ as synth_main
from data_tools.synth import body, catalogue, motor, people, phenotypes
from gait_jax import skeleton

J = skeleton.JOINT_INDEX
STRING_KEYS = ("layout", "participant_id", "task", "session")


def _digest(root: pathlib.Path) -> dict[str, str]:
  return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(root.rglob("*")) if p.is_file()}


def _load(path: pathlib.Path) -> dict[str, np.ndarray]:
  with np.load(path, allow_pickle=False) as z:
    return {k: z[k] for k in z.files}


def _times(arrays: dict[str, np.ndarray]) -> np.ndarray:
  if "timestamps" in arrays:
    return arrays["timestamps"]
  return np.arange(len(arrays["positions"])) / float(arrays["fps"])


def _interp_nan(x: np.ndarray) -> np.ndarray:
  """Fills NaN frames of f[T] by linear interpolation."""
  ok = np.isfinite(x)
  return np.interp(np.arange(len(x)), np.flatnonzero(ok), x[ok])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> pathlib.Path:
  """40 participants x 5 tasks x 20 s, 300 targets: enough to see planted effects."""
  out = tmp_path_factory.mktemp("cohort")
  summary = synth.generate(str(out), 40, seed=3, seconds=20, targets=300, workers=2,
                           verbose=False)
  assert summary["recordings"] == 200
  return out


@pytest.fixture(scope="module")
def gait_stats(cohort) -> pd.DataFrame:
  """Simple per-participant gait statistics measured from the skeletons."""
  ph = pd.read_parquet(cohort / "phenotypes.parquet")
  rows = []
  for pid in ph.participant_id:
    walk = _load(cohort / "recordings" / f"{pid}_self_selected_walk.npz")
    pelvis = walk["positions"][:, J["PELVIS"]].astype(np.float64)
    ok = np.isfinite(pelvis[:, 0])
    xz, t = pelvis[ok][::10][:, [0, 2]], _times(walk)[ok][::10]
    speed = np.linalg.norm(np.diff(xz, axis=0), axis=1).sum() / (t[-1] - t[0])
    tread = _load(cohort / "recordings" / f"{pid}_treadmill.npz")["positions"]
    width = np.nanmedian(np.abs(tread[:, J["ANKLE_LEFT"], 0] - tread[:, J["ANKLE_RIGHT"], 0]))
    spread = lambda z: np.nanpercentile(z, 95) - np.nanpercentile(z, 5)  # noqa: E731
    romberg = _load(cohort / "recordings" / f"{pid}_romberg_eyes_closed.npz")["positions"]
    neck = romberg[:, J["NECK"]].astype(np.float64)
    kernel = np.ones(15) / 15  # half a second: the tracker's jitter averages out
    sway = sum(np.convolve(_interp_nan(neck[:, c]), kernel, "valid").std() for c in (0, 2))
    rows.append(dict(participant_id=pid, speed=speed, width=width, sway=sway,
                     treadmill_travel=spread(tread[:, J["PELVIS"], 2]),
                     walk_travel=spread(pelvis[:, 2])))
  lat = pd.read_parquet(cohort / "latents.parquet")
  return pd.DataFrame(rows).merge(ph[["participant_id", "age", "bmi"]]).merge(lat)


def test_files_layout_and_ranges(cohort):
  files = sorted((cohort / "recordings").glob("*.npz"))
  assert len(files) == 200
  assert {f.name.split("_", 1)[1][:-4] for f in files} == set(synth.TASKS)
  timestamped = dropped = 0
  for f in files:
    a = _load(f)
    assert {"positions", "confidence", "layout", "participant_id", "task", "session"} <= set(a)
    assert ("fps" in a) != ("timestamps" in a)
    for k in STRING_KEYS:
      assert a[k].ndim == 0 and a[k].dtype.kind == "U"
    assert str(a["layout"]) == "azure_kinect" and str(a["session"]) == "0"
    assert f.name == f"{a['participant_id']}_{a['task']}.npz"
    pos, conf = a["positions"], a["confidence"]
    t = len(pos)
    assert pos.dtype == np.float32 and pos.shape[1:] == (32, 3)
    assert conf.dtype == np.float32 and conf.shape == (t, 32)
    if "timestamps" in a:
      timestamped += 1
      assert a["timestamps"].dtype == np.float64 and a["timestamps"].shape == (t,)
      assert 590 <= t < 600 and (np.diff(a["timestamps"]) > 0).all()
    else:
      assert t == 600 and float(a["fps"]) == 30.0
    # NaN exactly where the confidence is 0, and nowhere else.
    missing = np.isnan(pos).any(-1)
    assert (np.isnan(pos).all(-1) == missing).all()
    np.testing.assert_array_equal(missing, conf == 0)
    assert (conf >= 0).all() and (conf <= 1).all()
    assert missing.mean() < 0.2
    dropped += int(missing.any())
    # Head above the feet (y is down), feet near the floor ~1 m below the camera.
    head_y = np.nanmedian(pos[:, J["HEAD"], 1])
    foot_y = np.nanmedian(pos[:, [J["FOOT_LEFT"], J["FOOT_RIGHT"]], 1])
    assert head_y < foot_y - 0.8, f.name
    assert 0.5 < foot_y < 1.3, f.name
    assert 1.0 < np.nanmedian(pos[:, J["PELVIS"], 2]) < 5.0, f.name
    for (a_name, b_name), (lo, hi) in {("HIP_LEFT", "KNEE_LEFT"): (0.3, 0.6),
                                       ("KNEE_RIGHT", "ANKLE_RIGHT"): (0.3, 0.6),
                                       ("SHOULDER_LEFT", "ELBOW_LEFT"): (0.2, 0.45),
                                       ("NECK", "HEAD"): (0.05, 0.3)}.items():
      bone = np.nanmedian(np.linalg.norm(pos[:, J[a_name]] - pos[:, J[b_name]], axis=-1))
      assert lo < bone < hi, (f.name, a_name, b_name, bone)
    # Hands are tracked worse than the trunk.
    assert np.nanmean(conf[:, J["HANDTIP_LEFT"]]) < np.nanmean(conf[:, J["SPINE_CHEST"]])
  assert 1 <= timestamped <= 40  # ~5 % of 200
  assert dropped > 150  # most recordings lose a joint for a few frames somewhere


def test_reader_accepts_files(cohort):
  npz = pytest.importorskip("data_tools.readers.npz")
  from data_tools.readers import ReadOptions  # noqa: PLC0415
  for f in sorted((cohort / "recordings").glob("P00001_*.npz")):
    rec = npz.read(str(f), ReadOptions())
    assert rec.participant_id == "P00001" and rec.layout == "azure_kinect"
    assert rec.positions.shape[1:] == (32, 3) and (np.diff(rec.timestamps) > 0).all()


def test_older_walk_slower(gait_stats):
  g = gait_stats
  assert 0.7 < g.speed.median() < 1.6
  assert np.corrcoef(g.age, g.speed)[0, 1] < -0.3
  assert np.corrcoef(g.frailty, g.speed)[0, 1] < -0.3


def test_higher_bmi_wider_steps(gait_stats):
  g = gait_stats
  assert 0.03 < g.width.median() < 0.2
  assert np.corrcoef(g.bmi, g.width)[0, 1] > 0.3


def test_romberg_sway_grows_with_age_and_frailty(gait_stats):
  g = gait_stats
  assert np.corrcoef(g.age, g.sway)[0, 1] > 0.25
  assert np.corrcoef(g.frailty, g.sway)[0, 1] > 0.3


def test_treadmill_stays_walk_travels(gait_stats):
  assert (gait_stats.treadmill_travel < 0.5).all()
  assert (gait_stats.walk_travel > 2.0).all()


def test_leg_length_is_the_skeletons(cohort):
  """The leg_length covariate is the leg the skeletons are drawn with: hip to
  ankle joint, height x a personal proportion."""
  ph = pd.read_parquet(cohort / "phenotypes.parquet").set_index("participant_id")
  lat = pd.read_parquet(cohort / "latents.parquet").set_index("participant_id")
  motors = lat.filter(like="motor_").rename(columns=lambda c: c[len("motor_"):])
  built = [body.make_body(motors.loc[pid]).leg for pid in ph.index]
  np.testing.assert_allclose(ph["leg_length"], 100 * np.array(built), atol=0.05 + 1e-9)
  # Its own quantity, not height renamed: the proportion varies between people.
  ratio = ph["leg_length"] / ph["height"]
  assert 0.47 < ratio.median() < 0.51 and ratio.std() > 0.004
  assert 0.8 < np.corrcoef(ph["leg_length"], ph["height"])[0, 1] < 0.99
  # As measured from the tracked skeletons (hip-knee + knee-ankle, median over frames).
  measured = []
  for pid in ph.index:
    pos = _load(cohort / "recordings" / f"{pid}_self_selected_walk.npz")["positions"]
    def seg(a: str, b: str, pos=pos) -> float:
      return np.nanmedian(np.linalg.norm(pos[:, J[a]] - pos[:, J[b]], axis=-1))
    measured.append(np.mean([seg(f"HIP_{s}", f"KNEE_{s}") + seg(f"KNEE_{s}", f"ANKLE_{s}")
                             for s in ("LEFT", "RIGHT")]))
  assert np.corrcoef(measured, ph["leg_length"])[0, 1] > 0.95
  np.testing.assert_allclose(measured, ph["leg_length"] / 100, atol=0.03)


def test_leg_length_leaves_the_motion_as_it_was():
  """motor.leg_ratio is still 1 + 0.015 x the first motor normal, so adding the
  covariate changed no recording; bystanders (people.from_noise) get it too."""
  cohort = people.sample(2, 6)
  p = motor.params(cohort)
  np.testing.assert_array_equal(p["leg_ratio"], 1.0 + 0.015 * cohort["motor_noise"][:, 0])
  np.testing.assert_allclose(cohort["leg_length"],
                             body.leg_length(cohort["height"], p["leg_ratio"]))
  e = np.random.default_rng(0).standard_normal((3, people.NOISE_DIM))
  assert np.isfinite(motor.params(people.from_noise(e))["leg_ratio"]).all()


def test_dictionary_phenotypes_truth(cohort):
  d = pd.read_csv(cohort / "dictionary.csv")
  assert list(d.columns) == ["target", "system", "kind", "is_covariate"]
  targets = d[~d.is_covariate]
  assert len(targets) == 300 and d.target.is_unique
  assert set(targets.system) == set(catalogue.SYSTEMS) and targets.system.nunique() == 18
  assert set(targets.kind) == {"continuous", "binary"}
  assert list(d[d.is_covariate].target) == list(synth.COVARIATES)
  assert set(d[d.is_covariate].system) == {"anthropometrics"}
  assert d.set_index("target").loc["leg_length", "kind"] == "continuous"
  ph = pd.read_parquet(cohort / "phenotypes.parquet")
  assert list(ph.columns) == ["participant_id"] + list(d.target)
  assert len(ph) == 40 and ph.participant_id.iloc[0] == "P00001"
  assert not ph[list(synth.COVARIATES)].isna().any().any()
  assert ph[targets.target].isna().any().any()
  assert (ph.age.between(39, 71)).all() and set(ph.sex) <= {0.0, 1.0}
  binary = targets[targets.kind == "binary"].target
  assert set(np.unique(ph[binary].to_numpy()[~np.isnan(ph[binary].to_numpy())])) <= {0.0, 1.0}
  truth = json.loads((cohort / "truth.json").read_text())
  assert truth["seed"] == 3 and set(truth["targets"]) == set(targets.target)
  assert truth["covariates"]["leg_length"].startswith("cm")
  assert "leg_length" not in truth["sources"]  # no target depends on it
  assert {t["category"] for t in truth["targets"].values()} == set(synth.CATEGORIES)
  assert set(truth["factors"]) == set(synth.FACTOR_NAMES)
  for name, t in truth["targets"].items():
    assert (t["category"] == "gait") == bool(t["factors"]), name
    assert (t["category"] == "null") == (not t["factors"] and not t["covariates"]), name
    assert bool(t["regions"]) == bool(t["factors"]), name
  # Metabolic and frailty signal shows in the legs, sleep and lifestyle in the torso.
  assert truth["targets"]["hba1c"]["regions"] == ["left_leg", "right_leg"]
  assert truth["targets"]["sleep_efficiency"]["regions"] == ["torso"]
  lat = pd.read_parquet(cohort / "latents.parquet")
  assert set(synth.FACTOR_NAMES) <= set(lat.columns) and len(lat) == 40


def test_phenotype_model_at_scale():
  """2,000 people without motion: nulls are null, covariate-only targets vanish
  after covariate adjustment, gait targets carry their factors."""
  n, seed = 2000, 11
  cohort = people.sample(seed, n)
  design = phenotypes.design(seed, 400)
  values = phenotypes.simulate(design, cohort, seed)
  assert collections_counts(design) == {"gait": 140, "covariate_only": 120, "null": 140}
  z = people.source_matrix(cohort)
  covs = np.column_stack([np.ones(n)] + [cohort[c] for c in synth.COVARIATES])

  def corr_with_sources(y):
    """Correlation with each source; 0 for a source constant where y is seen
    (sex, for a one-sex target)."""
    ok = np.isfinite(y)
    return np.array([np.corrcoef(y[ok], z[ok, s])[0, 1] if z[ok, s].std() > 0 else 0.0
                     for s in range(z.shape[1])])

  null_r, cov_r, gait_r = [], [], []
  for j, t in enumerate(design):
    y = values[:, j]
    if np.nanstd(y) == 0 or np.isfinite(y).sum() < 500:
      continue
    if t.category == "null":
      null_r.append(np.abs(corr_with_sources(y)))
    elif t.category == "covariate_only" and t.kind == "continuous":
      ok = np.isfinite(y)
      beta = np.linalg.lstsq(covs[ok], y[ok], rcond=None)[0]
      resid = np.full(n, np.nan)
      resid[ok] = y[ok] - covs[ok] @ beta
      cov_r.append(np.abs(corr_with_sources(resid)[:len(synth.FACTOR_NAMES)]))
    elif t.category == "gait" and t.r2 >= 0.2:
      main = max(t.weights, key=lambda s: abs(t.weights[s]) if s in synth.FACTOR_NAMES else 0)
      gait_r.append(abs(corr_with_sources(y)[people.SOURCES.index(main)]))
  null_r, cov_r = np.concatenate(null_r), np.concatenate(cov_r)
  bound = 4.5 / np.sqrt(n)
  assert null_r.mean() < 0.03 and null_r.max() < bound
  assert cov_r.mean() < 0.03 and cov_r.max() < bound
  assert np.median(gait_r) > 0.2
  # Binary prevalences land near the planned ones; missingness is realistic.
  for j, t in enumerate(design):
    y = values[:, j]
    if t.kind == "binary" and t.missing_mechanism == "mcar":
      assert abs(np.nanmean(y) - t.prevalence) < 0.06, t.name
  missing = np.isnan(values).mean(axis=0)
  assert 0.03 < missing.mean() < 0.3 and missing.max() <= 0.8


def collections_counts(design) -> dict[str, int]:
  return {c: sum(t.category == c for t in design) for c in synth.CATEGORIES}


def test_people_are_prefix_stable():
  small, big = people.sample(5, 4), people.sample(5, 9)
  for k in list(synth.COVARIATES) + list(synth.FACTOR_NAMES):
    np.testing.assert_array_equal(small[k], big[k][:4])
  assert people.participant_id(0) == "P00001"


def test_deterministic_across_runs_and_workers(tmp_path):
  args = dict(participants=5, seconds=3, targets=60, verbose=False)
  synth.generate(str(tmp_path / "a"), seed=7, workers=1, **args)
  synth.generate(str(tmp_path / "b"), seed=7, workers=2, **args)
  synth.generate(str(tmp_path / "c"), seed=8, workers=2, **args)
  a, b, c = (_digest(tmp_path / k) for k in "abc")
  assert len(a) == 25 + 4 and a == b
  assert a.keys() == c.keys()
  assert all(a[k] != c[k] for k in a if k.startswith("recordings/"))
  assert a["phenotypes.parquet"] != c["phenotypes.parquet"]
  pa = pd.read_parquet(tmp_path / "a" / "phenotypes.parquet")
  pc = pd.read_parquet(tmp_path / "c" / "phenotypes.parquet")
  assert not pa.age.equals(pc.age)


def test_cli(tmp_path, capsys, monkeypatch):
  monkeypatch.setenv("GAIT_JAX_PROGRESS", "1")  # the bar even though stderr is captured
  (tmp_path / "recordings").mkdir()
  stale = tmp_path / "recordings" / "P00003_treadmill.npz"  # from a larger cohort
  stale.write_bytes(b"old")
  summary = synth_main.main(["--out", str(tmp_path), "--participants", "2", "--seconds", "2",
                             "--targets", "40", "--workers", "1", "--seed", "1"])
  assert summary["recordings"] == 10 and summary["targets"] == 40
  assert not stale.exists() and len(list((tmp_path / "recordings").iterdir())) == 10
  out, err = capsys.readouterr()
  assert "synth: wrote 10 recordings" in out and "participants," not in out
  assert "synth: 100%" in err and "2/2" in err  # the per-participant bar
  d = pd.read_csv(tmp_path / "dictionary.csv")
  assert (~d.is_covariate).sum() == 40 and d[~d.is_covariate].system.nunique() == 18
  with pytest.raises(ValueError, match="one per body system"):
    phenotypes.design(0, 10)


def test_cli_user_errors_are_one_line(tmp_path, capsys):
  with pytest.raises(SystemExit) as info:
    synth_main.main(["--out", str(tmp_path / "c"), "--participants", "2", "--targets", "3"])
  err = capsys.readouterr().err
  assert info.value.code == 2 and err.count("\n") == 1
  assert "need at least 18 targets (one per body system), got 3" in err
  assert not (tmp_path / "c").exists()  # refused before any file was written
  (tmp_path / "file").write_text("")
  with pytest.raises(SystemExit) as info:
    synth_main.main(["--out", str(tmp_path / "file"), "--participants", "2"])
  assert info.value.code == 2 and "is not a directory" in capsys.readouterr().err
