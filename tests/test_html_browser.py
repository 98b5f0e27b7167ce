"""The HTML report in a real headless Chromium: no errors, no requests, sorting works, every image shows.

Needs the ``playwright`` Python package and a Chromium binary (Debian: ``apt-get install -y
chromium``); the test installs nothing and is skipped, saying which one is missing, without them.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


CHROMIUM = _chromium()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium at /usr/bin/chromium or on PATH "
                       "(Debian: apt-get install -y chromium)"),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", exc_type=ImportError,
    reason="the playwright Python package is not installed (pip install playwright; no browser download needed)",
)

SUITE = """
name = "browser"
[split]
test_fraction = 0.5
[protocols]
perturbations = ["jpeg:50"]
[bootstrap]
resamples = 50
[throughput]
batch_sizes = [4]
rounds = 1
warmup = 0
images = 8

[[generators]]
name = "parametric"
label = "up"
count = 12
batch_size = 12
[generators.params]
resolution = 64
artifacts = "upsampling:0.5,eyes_fixed"

[[detectors]]
name = "spectrum"

[[detectors]]
name = "dct"
"""

COLUMN = """([table, label]) => {
  const t = document.getElementById(table);
  const heads = Array.from(t.tHead.rows[0].cells).map(c => c.textContent.trim());
  const i = heads.indexOf(label);
  return Array.from(t.tBodies[0].rows).map(r => r.cells[i].getAttribute("data-v") ?? r.cells[i].textContent.trim());
}"""


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from facebench.harness.html_report import write_report
    from facebench.harness.results import load_results
    from facebench.harness.runner import run_suite
    from facebench.harness.suite import load_suite

    root = tmp_path_factory.mktemp("browser")
    (root / "suite.toml").write_text(SUITE)
    result = run_suite(load_suite(root / "suite.toml"), root / "results", show_progress=False)
    assert result.errors == []
    return write_report(load_results(f"{root / 'results' / 'facebench.sqlite'}:latest"), root / "report.html")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _open(browser, report: Path, width: int):
    page = browser.new_page(viewport={"width": width, "height": 900})
    problems: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: m.type in ("error", "warning") and problems.append(f"console {m.type}: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri(), wait_until="load")
    return page, problems, requests


def _numbers(values: list[str]) -> list[float]:
    return [float(v) if v not in ("", None) else math.nan for v in values]


def test_the_page_loads_offline_without_errors_and_every_image_shows(browser, report):
    page, problems, requests = _open(browser, report, 1280)
    assert problems == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    sizes = page.evaluate("Array.from(document.images).map(i => [i.alt, i.naturalWidth, i.naturalHeight])")
    assert len(sizes) > 10
    assert [s for s in sizes if s[1] <= 0 or s[2] <= 0] == []
    page.close()


def test_clicking_a_header_sorts_the_accuracy_table(browser, report):
    page, problems, _ = _open(browser, report, 1280)
    before = _numbers(page.evaluate(COLUMN, ["accuracy-table", "AUC"]))
    assert len(before) >= 6
    header = page.locator("#accuracy-table thead th", has_text="AUC").first
    header.locator("button").click()
    after = _numbers(page.evaluate(COLUMN, ["accuracy-table", "AUC"]))
    known = [v for v in after if not math.isnan(v)]
    assert header.get_attribute("aria-sort") == "descending"  # higher is better: best first
    assert known == sorted(known, reverse=True) and after[: len(known)] == known  # NaN (if any) last
    assert after != before and sorted(known) == sorted(v for v in before if not math.isnan(v))
    header.locator("button").click()
    again = [v for v in _numbers(page.evaluate(COLUMN, ["accuracy-table", "AUC"])) if not math.isnan(v)]
    assert header.get_attribute("aria-sort") == "ascending" and again == sorted(known)
    page.locator("#accuracy-table thead th", has_text="detector").first.locator("button").click()
    names = page.evaluate(COLUMN, ["accuracy-table", "detector"])
    assert names == sorted(names) and set(names) == {"dct", "spectrum"}
    assert problems == []
    page.close()


def test_a_narrow_screen_scrolls_tables_inside_their_box_not_the_page(browser, report):
    page, problems, _ = _open(browser, report, 400)
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    box = page.evaluate("(() => { const s = document.getElementById('accuracy-table').parentElement;"
                        " return [s.clientWidth, s.scrollWidth]; })()")
    assert box[0] <= 400 and box[1] > box[0]  # the wide table scrolls within its container
    assert problems == []
    page.close()
