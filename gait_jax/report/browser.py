"""Headless Chromium on the report page: a screenshot, and the DOM after loading.

  python -m gait_jax.report.browser OUT/index.html shot.png [--width 1280 --height 2400]

For the README's screenshot and the tests that check the page renders in a real
browser. Needs a `chromium` (or chromium-browser / google-chrome) binary on PATH;
as root it runs without the sandbox (Chromium refuses to start otherwise).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Sequence

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
  """The path of a Chromium binary on PATH, or None."""
  for name in BINARIES:
    path = shutil.which(name)
    if path:
      return path
  return None


def _run(args: Sequence[str], html: pathlib.Path, timeout: float) -> str:
  """Runs headless Chromium on the file URL of `html` with `args`; its stdout."""
  binary = find_chromium()
  if binary is None:
    raise FileNotFoundError(f"no Chromium binary on PATH (looked for {', '.join(BINARIES)})")
  with tempfile.TemporaryDirectory() as profile:
    cmd = [binary, "--headless", "--disable-gpu", "--no-first-run", "--disable-extensions",
           "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
           f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args,
           pathlib.Path(html).resolve().as_uri()]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
      cmd.insert(1, "--no-sandbox")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
  if done.returncode != 0:
    raise RuntimeError(f"{binary} exited with {done.returncode}: {done.stderr[-2000:]}")
  return done.stdout


def screenshot(html: str | os.PathLike, png: str | os.PathLike, width: int = 1280,
               height: int = 2400, timeout: float = 180.0) -> pathlib.Path:
  """Renders `html` (a file) and writes the top width × height pixels to `png`."""
  png = pathlib.Path(png).resolve()
  png.parent.mkdir(parents=True, exist_ok=True)
  png.unlink(missing_ok=True)
  _run([f"--window-size={width},{height}", f"--screenshot={png}"], pathlib.Path(html),
       timeout)
  if not png.is_file():
    raise RuntimeError(f"Chromium wrote no screenshot to {png}")
  return png


def dump_dom(html: str | os.PathLike, timeout: float = 180.0) -> str:
  """The serialised DOM of `html` (a file) after it loaded and its scripts ran."""
  return _run(["--dump-dom"], pathlib.Path(html), timeout)


def main(argv: Sequence[str] | None = None) -> pathlib.Path:
  parser = argparse.ArgumentParser(prog="python -m gait_jax.report.browser",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("html")
  parser.add_argument("png")
  parser.add_argument("--width", type=int, default=1280)
  parser.add_argument("--height", type=int, default=2400)
  args = parser.parse_args(argv)
  path = screenshot(args.html, args.png, args.width, args.height)
  print(f"screenshot: {path}")
  return path


if __name__ == "__main__":
  main()
