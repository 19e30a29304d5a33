"""Open a report.html in headless Chromium and read back what the browser rendered."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from vnflab.report.build import build_report

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")

#: Injected into a copy of the report (never into the report itself): counts what the browser decoded.
_PROBE = (
    "<script>addEventListener('load',()=>{const i=[...document.images];"
    "document.body.dataset.imagesDecoded=i.filter(x=>x.complete&&x.naturalWidth>0).length;"
    "document.body.dataset.images=i.length;"
    "document.body.dataset.tables=document.querySelectorAll('table').length;"
    "document.body.dataset.headings=[...document.querySelectorAll('h2')].map(h=>h.id).join(' ');});</script>"
)


def find_browser() -> str | None:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    return None


@dataclass(frozen=True)
class Rendered:
    dom: str
    images: int
    images_decoded: int
    tables: int
    headings: list[str]


def _flags(browser: str) -> list[str]:
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000"]


def render(html: Path, workdir: Path) -> Rendered:
    """The DOM Chromium built for ``html`` after load, with the probe's counts."""
    browser = find_browser()
    assert browser is not None
    probe = workdir / "probed.html"
    probe.write_text(html.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    done = subprocess.run([*_flags(browser), "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                          timeout=120, check=True)
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body is not None, done.stdout[:2000]
    attributes = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    return Rendered(done.stdout, int(attributes["images"]), int(attributes["images-decoded"]),
                    int(attributes["tables"]), attributes["headings"].split())


def screenshot(html: Path, png: Path) -> Path:
    """A full-width screenshot of ``html`` (the report as it is, without the probe)."""
    browser = find_browser()
    assert browser is not None
    subprocess.run([*_flags(browser), "--window-size=1280,4000", f"--screenshot={png}", html.as_uri()],
                   capture_output=True, timeout=120, check=True)
    return png


# The level-2 sections a reader must see, in the order the report leads with them (results first, manifest last).
SECTIONS = ("summary", "figure-2", "conclusions-recomputed", "management-requirements-paper-section-v", "overhead",
            "metric-definitions", "stopping", "outliers", "all-points-summary-table", "appendix-data",
            "appendix-run-manifest", "appendix-files")


def check_report_in_browser(run_dir: Path, workdir: Path, platforms: set[str]) -> str:
    """Build the report of ``run_dir``, open it in Chromium, assert what a reader must see; return the DOM."""
    generated = build_report(run_dir)
    rendered = render(generated.html, workdir)
    markdown = generated.report.read_text(encoding="utf-8")
    assert rendered.images == markdown.count("\n![") and rendered.images >= 3, rendered.images
    assert rendered.images_decoded == rendered.images, "a figure did not decode in the browser"
    assert rendered.tables == markdown.count("\n|--"), "every Markdown table is an HTML table"
    assert all(section in rendered.headings for section in SECTIONS), rendered.headings
    order = [rendered.headings.index(section) for section in SECTIONS]
    assert order == sorted(order), rendered.headings
    assert all(f'href="#{section}"' in rendered.dom for section in SECTIONS), "the table of contents links each"
    for platform in platforms:
        assert f"<td>{platform}</td>" in rendered.dom, platform
    png = screenshot(generated.html, workdir / "report.png")
    with Image.open(png) as image:
        assert image.size[0] == 1280
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 50, "the screenshot is (nearly) blank"
    return rendered.dom
