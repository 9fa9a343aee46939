"""The report page in a real browser: headless Chromium loads every image of
OUT/index.html from a file:// URL, and a screenshot of it is not blank."""

import pathlib
import re

import matplotlib.image
import pytest

import report_fixtures as fx
from gait_jax.report import browser, figures, job

pytestmark = pytest.mark.skipif(
    browser.find_chromium() is None,
    reason=f"no Chromium on PATH ({', '.join(browser.BINARIES)}); e.g. apt-get install "
           "chromium")

# Marks each image loaded or not once the page has loaded, and counts them on <body>.
_CHECK = """<script>
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    var good = imgs[i].complete && imgs[i].naturalWidth > 0;
    imgs[i].setAttribute("data-loaded", good ? "yes" : "no");
    if (good) ok++;
  }
  document.body.setAttribute("data-images", imgs.length + "/" + ok);
});
</script>"""
_BROKEN = '<img id="broken" src="data:image/png;base64,bm90IGEgcG5n" alt="not a png">'


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> pathlib.Path:
  root = tmp_path_factory.mktemp("browser")
  run = fx.make_run(root / "demo")
  return job.build(run, root / "report")[0]


def _loaded(html: str, where: pathlib.Path) -> tuple[str, list[str]]:
  """(<body data-images>, data-loaded of each image) of `html` rendered by Chromium."""
  where.write_text(html, encoding="utf-8")
  dom = browser.dump_dom(where)
  (count,) = re.findall(r'data-images="([^"]*)"', dom)
  return count, re.findall(r'data-loaded="([^"]*)"', dom)


def test_every_image_loads_from_a_file_url(page, tmp_path):
  html = page.read_text(encoding="utf-8")
  n = html.count("<img ")
  assert n == len(figures.FIGURES) - 1  # no reconstruction: the run has no checkpoint
  # The check itself: a broken image beside them is reported as not loaded.
  count, flags = _loaded(html.replace("</body>", _BROKEN + _CHECK + "</body>"),
                         tmp_path / "check.html")
  assert count == f"{n + 1}/{n}"
  assert flags == ["yes"] * n + ["no"]
  # The page alone, away from its side files, still shows every image.
  (tmp_path / "elsewhere").mkdir()
  count, flags = _loaded(html.replace("</body>", _CHECK + "</body>"),
                         tmp_path / "elsewhere" / "index.html")
  assert count == f"{n}/{n}" and flags == ["yes"] * n


def test_screenshot_is_not_blank(page, tmp_path):
  png = browser.screenshot(page, tmp_path / "shot.png", width=1000, height=1600)
  pixels = matplotlib.image.imread(png)[..., :3]
  assert pixels.shape == (1600, 1000, 3)
  assert pixels.std() > 0.05
  # Figures are drawn: saturated colours (the plots' lines and points), not only text.
  saturation = pixels.max(-1) - pixels.min(-1)
  assert (saturation > 0.3).mean() > 0.001
