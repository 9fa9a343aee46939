"""The report's main: one self-contained page, a CSV and SVG beside every figure,
missing parts listed, W&B given aggregates only."""

import base64
import contextlib
import html.parser
import io
import pathlib
import shutil
import subprocess
import sys
import types

import numpy as np
import pandas as pd
import pytest

import conftest
import gait_jax
import report_fixtures as fx
from gait_jax.report import figures, job, tables


class _Page(html.parser.HTMLParser):
  """The <img> sources, links and "not available" sections of a page."""

  def __init__(self):
    super().__init__()
    self.images, self.links, self.sections, self.missing = [], [], [], []
    self._in_na = False
    self._section = None

  def handle_starttag(self, tag, attrs):
    a = dict(attrs)
    if tag == "img":
      self.images.append(a["src"])
    elif tag == "a":
      self.links.append(a["href"])
    elif tag == "section":
      self._section = a["id"]
      self.sections.append(a["id"])
    elif tag == "p" and a.get("class") == "na":
      self._in_na = True

  def handle_data(self, data):
    if self._in_na:
      self.missing.append((self._section, data))
      self._in_na = False


def _parse(path: pathlib.Path) -> _Page:
  page = _Page()
  page.feed(path.read_text(encoding="utf-8"))
  return page


class _FakeTracker:
  def __init__(self, calls):
    self.calls = calls

  def log(self, metrics):
    self.calls.append(("log", dict(metrics)))

  def table(self, key, frame):
    assert "participant_id" not in frame.columns
    self.calls.append(("table", key, frame.copy()))

  def image(self, key, path):
    assert pathlib.Path(path).is_file()
    self.calls.append(("image", key, str(path)))

  def artifact(self, name, type, path):  # pylint: disable=redefined-builtin
    files = sorted(str(p.relative_to(path)) for p in pathlib.Path(path).rglob("*")
                   if p.is_file())
    self.calls.append(("artifact", name, type, files))

  def close(self):
    self.calls.append(("close",))


def _fake_tracking(monkeypatch) -> list:
  """Puts a stand-in for gait_jax.tracking in place; returns its list of calls."""
  calls = []
  module = types.ModuleType("gait_jax.tracking")
  import ml_collections  # pylint: disable=import-outside-toplevel

  def start(config, workdir, job_type):
    calls.append(("start", config, workdir, job_type))
    return _FakeTracker(calls)

  module.start = start
  module.wandb_config = lambda: ml_collections.ConfigDict(
      {"project": "gait_jax", "entity": "", "group": "", "name": "", "tags": (),
       "mode": "offline"})
  monkeypatch.setitem(sys.modules, "gait_jax.tracking", module)
  monkeypatch.setattr(gait_jax, "tracking", module, raising=False)
  return calls


@pytest.fixture
def fake_tracking(monkeypatch):
  return _fake_tracking(monkeypatch)


def _only(*names: str) -> list[str]:
  """--skip arguments for every figure but `names` (quicker runs)."""
  return [a for n in tables.BUILDERS if n not in names for a in ("--skip", n)]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> pathlib.Path:
  return fx.make_run(tmp_path_factory.mktemp("run") / "demo")


@pytest.fixture(scope="module")
def report(run_dir, tmp_path_factory):
  """(OUT, stdout lines, tracking calls) of one main on the full fabricated run."""
  out = tmp_path_factory.mktemp("out") / "report"
  with pytest.MonkeyPatch.context() as mp:
    calls = _fake_tracking(mp)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
      returned = job.main(["--run", str(run_dir), "--out", str(out)])
  assert returned == out
  return out, buffer.getvalue().strip().splitlines(), calls


def test_main_writes_one_self_contained_page(report):
  out, lines, _ = report
  assert lines[-1] == f"report: {out / 'index.html'}"
  page = _parse(out / "index.html")
  assert page.sections == ["headline", *tables.BUILDERS]
  drawn = [n for n in tables.BUILDERS if n != "reconstruction"]
  assert len(page.images) == len(drawn)
  for src in page.images:
    assert src.startswith("data:image/png;base64,")
    png = base64.b64decode(src.split(",", 1)[1], validate=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
  for name in drawn:
    for rel in (f"tables/{name}.csv", f"figures/{name}.svg", f"figures/{name}.png"):
      assert (out / rel).is_file() and rel in page.links, rel
    # The CSV is the figure's whole input.
    assert isinstance(figures.FIGURES[name](pd.read_csv(out / "tables" / f"{name}.csv")),
                      figures.Figure)
  assert page.missing == [("reconstruction", "not available: no RUN/pretrain*/ with "
                           "config.json and checkpoints/")]
  assert not (out / "tables" / "reconstruction.csv").exists()
  text = (out / "index.html").read_text()
  assert "<script" not in text and "http://" not in text and "https://" not in text
  assert "demo/probe/results/targets.parquet" in text  # captions name their files
  assert ">12/40<" in text  # the headline table


def test_main_logs_aggregates_figures_and_the_artifact(report):
  out, _, fake_tracking = report
  kinds = [c[0] for c in fake_tracking]
  assert kinds[0] == "start" and kinds[-1] == "close"
  _, config, workdir, job_type = fake_tracking[0]
  assert job_type == "report" and workdir == str(out)
  assert config.wandb.group == "demo"
  logged = {c[1] for c in fake_tracking if c[0] == "table"}
  assert logged == {f"report/{n}" for n in job.WANDB_TABLES}
  assert "report/embedding_pca" not in logged
  images = {c[1] for c in fake_tracking if c[0] == "image"}
  assert images == {f"report/{n}" for n in tables.BUILDERS if n != "reconstruction"}
  (artifact,) = [c for c in fake_tracking if c[0] == "artifact"]
  _, name, kind, files = artifact
  assert (name, kind) == ("report-demo", "report")
  assert "index.html" in files and "figures/embedding_pca.png" in files
  # Per-participant rows stay home; W&B's own files are not part of the report.
  assert "tables/embedding_pca.csv" not in files and "tables/task_scores.csv" in files
  assert not any(f.startswith("wandb") for f in files)
  (counts,) = [c[1] for c in fake_tracking if c[0] == "log"]
  assert counts == {"report/figures": len(tables.BUILDERS) - 1, "report/not_available": 1}


def test_group_can_be_named(run_dir, tmp_path, fake_tracking):
  job.main(["--run", str(run_dir), "--out", str(tmp_path / "r"), "--group", "sweep1",
            *_only("power_fdp")])
  assert fake_tracking[0][1].wandb.group == "sweep1"


def test_without_the_tracking_module_wandb_is_skipped(run_dir, tmp_path, capsys, monkeypatch):
  monkeypatch.setitem(sys.modules, "gait_jax.tracking", None)  # import fails
  monkeypatch.delattr(gait_jax, "tracking", raising=False)
  out = job.main(["--run", str(run_dir), "--out", str(tmp_path / "r"),
                  *_only("power_fdp")])
  lines = capsys.readouterr().out.strip().splitlines()
  assert "report: W&B skipped: gait_jax.tracking is not available" in lines
  assert lines[-1] == f"report: {out / 'index.html'}"
  assert ("embedding_pca", "not available: skipped (--skip)") in _parse(
      out / "index.html").missing
  # Rebuilt into the same OUT, the figures no longer drawn leave no files behind.
  job.main(["--run", str(run_dir), "--out", str(out), *_only("embedding_pca")])
  assert (out / "figures" / "embedding_pca.png").is_file()
  assert not (out / "figures" / "power_fdp.png").exists()
  assert not (out / "tables" / "power_fdp.csv").exists()


def test_the_real_tracking_module_accepts_what_is_logged(run_dir, tmp_path, monkeypatch):
  """With gait_jax.tracking (W&B disabled by conftest), tables and the artifact pass
  its participant checks."""
  pytest.importorskip("gait_jax.tracking")
  monkeypatch.setenv("WANDB_MODE", "disabled")
  out = job.main(["--run", str(run_dir), "--out", str(tmp_path / "r")])
  assert (out / "index.html").is_file()


def test_a_run_with_only_some_stages_still_gives_a_page(tmp_path, fake_tracking):
  rng = np.random.default_rng(0)
  fx.write_cohort(tmp_path / "run", rng)
  fx.write_shards(tmp_path / "run")
  out = job.main(["--run", str(tmp_path / "run"), "--out", str(tmp_path / "r")])
  page = _parse(out / "index.html")
  assert len(page.images) == 1  # data quality
  assert {s for s, _ in page.missing} == set(tables.BUILDERS) - {"data_quality"}
  assert all(text.startswith("not available: ") for _, text in page.missing)


def test_a_malformed_input_costs_only_its_figure(run_dir, tmp_path, fake_tracking, capsys):
  run = tmp_path / "demo"
  shutil.copytree(run_dir, run)
  (run / "ablation" / "region_importance.csv").write_text("subset,system\nmale,lipids\n")
  out = job.main(["--run", str(run), "--out", str(tmp_path / "r"),
                  *_only("region_importance", "power_fdp")])
  missing = dict(_parse(out / "index.html").missing)
  assert "power_fdp" not in missing
  assert "could not be drawn" in missing["region_importance"]
  assert "figure failed" in capsys.readouterr().out


def test_command_line_errors_exit_2(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "gait_jax.report", "--run",
                         str(tmp_path / "nope"), "--out", str(tmp_path / "r")],
                        capture_output=True, text=True, cwd=conftest.REPO, check=False)
  assert proc.returncode == 2
  assert "not a directory" in proc.stderr and "Traceback" not in proc.stderr
