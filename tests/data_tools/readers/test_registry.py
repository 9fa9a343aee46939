"""The reader registry: built from the reader modules, and what prepare asks."""

from __future__ import annotations

import pathlib
import sys

import pytest

import fakes
from data_tools import prepare, qc, readers
from data_tools.readers import npz
from gait_jax.errors import InputError

EXPECTED = {"csv": (".csv",), "k4abt_json": (".json",), "kinect_v2_csv": (".csv",),
            "mkv": (".mkv",), "npz": (".npz",)}

FAKE_READER = '''
from data_tools.readers import MissingDependency, npz

FORMAT = "fake_fmt"
EXTENSIONS = (".fake", ".fk")
AVAILABLE = True
READ = []


def check_available() -> None:
  if not AVAILABLE:
    raise MissingDependency("fake_fmt needs fakelib: pip install fakelib")


def read(path, opts):
  READ.append(path)
  return npz.read(path, opts)
'''


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
  """A directory added to the readers package's __path__, as a plugin would be."""
  directory = tmp_path / "plugins"
  directory.mkdir()
  monkeypatch.setattr(readers, "__path__", [*readers.__path__, str(directory)])
  readers.formats.cache_clear()
  yield directory
  readers.formats.cache_clear()
  for name in [m for m in sys.modules if m.startswith("data_tools.readers.fake")]:
    del sys.modules[name]


@pytest.fixture
def fake_reader(plugin_dir):
  (plugin_dir / "fake_fmt.py").write_text(FAKE_READER)
  return readers.get_format("fake_fmt").module


def test_registry_lists_every_reader_module_with_its_extensions():
  found = readers.formats()
  assert {name: f.extensions for name, f in found.items()} == EXPECTED
  assert list(found) == sorted(found)
  # Every module of the package is a reader (none is missed by discovery).
  on_disk = {p.stem for p in pathlib.Path(readers.__file__).parent.glob("*.py")} - {"__init__"}
  assert {f.module.__name__.rsplit(".", 1)[1] for f in found.values()} == on_disk
  assert readers.get_reader("npz") is npz.read


def test_unknown_format_names_the_known_ones():
  with pytest.raises(InputError, match="unknown format 'c3d'; known formats: csv, k4abt_json"):
    readers.get_format("c3d")


def test_prepare_searches_the_extensions_the_registry_declares(tmp_path):
  for name in ("a.npz", "b.csv", "b.csv.json", "c.json", "d.mkv", "e.txt"):
    (tmp_path / name).write_bytes(b"")
  found = {fmt: [pathlib.Path(f).name for f in prepare.find_inputs([str(tmp_path)], fmt)]
           for fmt in readers.formats()}
  # b.csv.json ends in .json but is the CSV's identity sidecar, never a recording.
  assert found == {"csv": ["b.csv"], "k4abt_json": ["c.json"], "kinect_v2_csv": ["b.csv"],
                   "mkv": ["d.mkv"], "npz": ["a.npz"]}


def test_a_module_added_to_the_package_path_is_found_and_prepared(fake_reader, tmp_path):
  fmt = readers.get_format("fake_fmt")
  assert fmt.extensions == (".fake", ".fk") and "fake_fmt" in readers.formats()
  data = tmp_path / "in"
  data.mkdir()
  for i, ext in enumerate((".fake", ".fk")):
    fakes.write_npz(data / f"walk{i}.npz", fakes.recording(95, seed=i, participant=f"P{i}"))
    (data / f"walk{i}.npz").rename(data / f"walk{i}{ext}")
  (data / "other.npz").write_bytes(b"")  # not this format's extension: not read
  report, manifest = prepare.prepare(
      [str(data)], "fake_fmt", str(tmp_path / "shards"), readers.ReadOptions(),
      qc.QCOptions(clip_frames=30), workers=1, log=lambda *_: None)
  assert sorted(pathlib.Path(p).name for p in fake_reader.READ) == ["walk0.fake", "walk1.fk"]
  assert list(report["status"]) == ["ok", "ok"] and len(manifest) == 6


def test_the_dependency_check_runs_once_before_any_file_is_read(fake_reader, tmp_path,
                                                                 monkeypatch, capsys):
  monkeypatch.setattr(fake_reader, "AVAILABLE", False)
  (tmp_path / "walk.fake").write_bytes(b"")
  with pytest.raises(readers.MissingDependency, match="pip install fakelib"):
    prepare.prepare([str(tmp_path)], "fake_fmt", str(tmp_path / "o"), readers.ReadOptions(),
                    qc.QCOptions(), workers=1)
  assert fake_reader.READ == [] and not (tmp_path / "o").exists()
  # The command line offers the new format and reports the missing dependency in one line.
  with pytest.raises(SystemExit) as info:
    prepare.main(["--input", str(tmp_path), "--format", "fake_fmt", "--out", str(tmp_path / "o")])
  err = capsys.readouterr().err
  assert info.value.code == 2 and err.count("\n") == 1 and "pip install fakelib" in err


def test_inconsistent_reader_modules_are_refused(plugin_dir):
  (plugin_dir / "fake_twin.py").write_text('FORMAT = "npz"\nEXTENSIONS = (".npz",)\n'
                                           "def read(path, opts): ...\n")
  with pytest.raises(TypeError, match="'npz' is declared by both"):
    readers.formats()
  readers.formats.cache_clear()
  (plugin_dir / "fake_twin.py").write_text('FORMAT = "twin"\n')
  sys.modules.pop("data_tools.readers.fake_twin", None)
  with pytest.raises(TypeError, match="declares FORMAT 'twin' but not EXTENSIONS"):
    readers.formats()
