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
calibration_fraction = 0.25
[protocols]
perturbations = ["jpeg:50"]
sensitivity = true
[bootstrap]
resamples = 50
[throughput]
batch_sizes = [4]
rounds = 1
warmup = 0
images = 8

[[generators]]
name = "parametric"
label = "parametric-faces"
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
    from facebench.harness.report.html import write_report
    from facebench.harness.data.results import load_results
    from facebench.harness.run.runner import run_suite
    from facebench.harness.data.suite import load_suite

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
    box = page.evaluate("(() => { const s = document.getElementById('throughput-table').parentElement;"
                        " return [s.clientWidth, s.scrollWidth]; })()")
    assert box[0] <= 400 and box[1] > box[0]  # the wide table scrolls within its container
    assert problems == []
    page.close()


ROWS = """() => Array.from(document.getElementById("accuracy-table").tBodies[0].rows)
  .filter(r => r.offsetParent !== null)
  .map(r => Object.fromEntries(Array.from(r.cells).map((c, i) =>
    [document.getElementById("accuracy-table").tHead.rows[0].cells[i].textContent.trim(), c.textContent.trim()])))"""


def test_the_accuracy_table_fits_a_desktop_screen_in_its_compact_default(browser, report):
    page, problems, _ = _open(browser, report, 1280)
    box = page.evaluate("(() => { const s = document.getElementById('accuracy-table').parentElement;"
                        " return [s.clientWidth, s.scrollWidth]; })()")
    assert box[1] <= box[0]  # no sideways scrolling
    lined_up = page.evaluate("""(() => { const t = document.getElementById('accuracy-table');
        const heads = Array.from(t.tHead.rows[0].cells);
        return heads.map((th, i) => [th, t.tBodies[0].rows[0].cells[i]]).filter(([th]) => th.offsetParent !== null)
          .map(([th, td]) => [Math.round(th.getBoundingClientRect().left), Math.round(td.getBoundingClientRect().left)]);
      })()""")
    assert len(lined_up) >= 9 and all(head == cell for head, cell in lined_up), lined_up  # a table, columns aligned
    visible = page.evaluate("""Array.from(document.querySelectorAll('#accuracy-table thead th'))
        .filter(th => th.offsetParent !== null).map(th => th.textContent.trim())""")
    for label in ("detector", "corpus", "artifact", "perturbation", "AUC", "AP", "AP chance", "BalAcc@0.5", "BalAcc@cal"):
        assert label in visible
    assert "Brier" not in visible and "EER" not in visible  # behind the toggle
    assert problems == []
    page.close()


def test_the_toggle_shows_the_other_columns(browser, report):
    page, problems, _ = _open(browser, report, 1280)
    brier = page.locator("#accuracy-table thead th", has_text="Brier")
    assert not brier.is_visible()
    toggle = page.locator("#accuracy button.toggle-columns")
    toggle.click()
    assert brier.is_visible() and toggle.get_attribute("aria-pressed") == "true"
    first = page.evaluate(ROWS)[0]
    assert {"EER", "TPR@0.1%FPR", "ECE", "Brier"} <= set(first) and first["Brier"] != ""
    toggle.click()
    assert not brier.is_visible()
    assert problems == []
    page.close()


def test_the_filter_hides_rows_that_do_not_match(browser, report):
    page, problems, _ = _open(browser, report, 1280)
    everything = page.evaluate(ROWS)
    assert {r["detector"] for r in everything} == {"dct", "spectrum"}
    page.locator("#accuracy input.filter").fill("dct")
    shown = page.evaluate(ROWS)
    assert shown and len(shown) < len(everything) and {r["detector"] for r in shown} == {"dct"}
    page.locator("#accuracy input.filter").fill("spectrum jpeg")  # every word must match
    shown = page.evaluate(ROWS)
    assert shown and all(r["detector"] == "spectrum" and r["perturbation"] == "jpeg:50" for r in shown)
    assert page.locator("#accuracy .row-count").text_content().startswith(f"{len(shown)} of {len(everything)}")
    page.locator("#accuracy input.filter").fill("")
    page.locator("#accuracy select[data-key=artifact]").select_option("eyes_fixed")
    shown = page.evaluate(ROWS)
    assert shown and {r["artifact"] for r in shown} == {"eyes_fixed"} and len(shown) < len(everything)
    page.locator("#accuracy select[data-key=artifact]").select_option("")
    assert len(page.evaluate(ROWS)) == len(everything)
    assert problems == []
    page.close()


AUC_CELL = """(i) => {
  const t = document.getElementById("accuracy-table");
  const col = Array.from(t.tHead.rows[0].cells).findIndex(c => c.textContent.trim() === "AUC");
  const cell = t.tBodies[0].rows[i].cells[col];
  cell.scrollIntoView({block: "center"});
  t.parentElement.scrollLeft = 0;  // as a reader sees it, without scrolling sideways
  window.scrollTo(0, window.scrollY);
  const r = cell.getBoundingClientRect();
  return [r.left, r.top, r.right, r.bottom, innerWidth, innerHeight, cell.textContent.trim()];
}"""


def test_a_narrow_screen_shows_the_auc_numbers(browser, report):
    page, problems, _ = _open(browser, report, 400)
    rows = page.evaluate("document.getElementById('accuracy-table').tBodies[0].rows.length")
    assert rows >= 6
    for i in (0, rows - 1):
        *box, text = page.evaluate(AUC_CELL, i)
        left, top, right, bottom, width, height = box
        assert right > left and bottom > top  # drawn, not collapsed
        assert 0 <= left and right <= width and 0 <= top and bottom <= height, box  # on screen
        assert text[:1] in "0123456789-", text
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    assert problems == []
    page.close()
