"""The report page: one self-contained HTML file (images inlined as data URIs).

The page holds a title, the run directory, an optional headline table, and per
figure a section with its title, a caption (what it shows, the files it came from),
the PNG inlined as base64, and links to the side files (CSV, SVG, PNG) relative to
the page — or "not available: <reason>". Inline CSS only: no script, no external URL,
so the file renders the same opened alone from disk.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import html
import pathlib

import pandas as pd

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1.5rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; }
.meta { color: #555; margin-top: 0; }
code { background: #f3f3f3; padding: 0 0.25rem; border-radius: 3px; }
nav ol { columns: 2; font-size: 0.92rem; }
section { border-top: 1px solid #ddd; padding: 0.8rem 0 1.2rem; }
h2 { font-size: 1.15rem; margin: 0.4rem 0; }
.caption { margin: 0.2rem 0 0.6rem; }
.sources, .note { color: #555; font-size: 0.88rem; margin: 0.2rem 0; }
figure { margin: 0.4rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
.links a { margin-right: 0.8rem; font-size: 0.9rem; }
.na { color: #8a4b00; background: #fff6e5; padding: 0.4rem 0.6rem; border-radius: 4px; }
.missing { color: #888; }
div.scroll { overflow-x: auto; }
table.headline { border-collapse: collapse; font-size: 0.88rem; }
table.headline th, table.headline td { border: 1px solid #ccc; padding: 0.2rem 0.5rem;
                                       text-align: right; }
"""


@dataclasses.dataclass(frozen=True)
class Section:
  """One figure's entry on the page.

  Attributes:
    name: the figure's name (anchor, file stem).
    title: heading; caption: what the figure shows.
    sources: the input files, as shown (relative to the run's parent).
    note: a remark (fallback taken, clip shown), or "".
    png: the PNG to inline, or None when not available; links: label → href.
    reason: why it is not available ("" when it is).
  """
  name: str
  title: str
  caption: str
  sources: tuple[str, ...] = ()
  note: str = ""
  png: pathlib.Path | None = None
  links: tuple[tuple[str, str], ...] = ()
  reason: str = ""


def data_uri(png: pathlib.Path) -> str:
  """The PNG file as a data: URI."""
  return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _section(i: int, s: Section) -> str:
  e = html.escape
  parts = [f'<section id="{e(s.name)}">', f"<h2>{i}. {e(s.title)}</h2>",
           f'<p class="caption">{e(s.caption)}</p>']
  if s.sources:
    parts.append('<p class="sources">From: ' + ", ".join(
        f"<code>{e(src)}</code>" for src in s.sources) + "</p>")
  if s.note:
    parts.append(f'<p class="note">Note: {e(s.note)}</p>')
  if s.png is None:
    parts.append(f'<p class="na">not available: {e(s.reason)}</p>')
  else:
    parts.append(f'<figure><img src="{data_uri(s.png)}" alt="{e(s.title)}"></figure>')
    parts.append('<p class="links">' + "".join(
        f'<a href="{e(href)}">{e(label)}</a>' for label, href in s.links) + "</p>")
  parts.append("</section>")
  return "\n".join(parts)


def render(run_dir: str, sections: list[Section], headline: pd.DataFrame | None = None,
           headline_source: str = "") -> str:
  """The page's HTML."""
  e = html.escape
  shown = sum(s.png is not None for s in sections)
  when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
  toc = "".join(
      f'<li><a href="#{e(s.name)}">{e(s.title)}</a>'
      + ("" if s.png is not None else ' <span class="missing">(not available)</span>')
      + "</li>" for s in sections)
  body = [f"<h1>gait_jax report: {e(pathlib.Path(run_dir).name or run_dir)}</h1>",
          f'<p class="meta">Run directory <code>{e(run_dir)}</code> · written {when} · '
          f"{shown} of {len(sections)} figures available</p>",
          f"<nav><ol>{toc}</ol></nav>"]
  if headline is not None:
    body.append('<section id="headline"><h2>Headline</h2>'
                f'<p class="sources">From: <code>{e(headline_source)}</code></p>'
                + '<div class="scroll">'
                + headline.to_html(classes="headline", float_format="{:.3f}".format,
                                   border=0, na_rep="")
                + "</div></section>")
  body += [_section(i + 1, s) for i, s in enumerate(sections)]
  return ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          f"<title>gait_jax report: {e(run_dir)}</title>\n<style>{_CSS}</style>\n"
          "</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")
