"""The HTML report: every section, sortable tables, nothing loaded from the network, missing data noted."""

from __future__ import annotations

import base64
import dataclasses
import re
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from facebench.harness.cli import app
from facebench.harness.report.html import render_report, write_report
from facebench.harness.data.results import Results, load_results
from facebench.harness.run.runner import run_suite
from facebench.harness.data.suite import load_suite

SUITE = """
name = "html"
[split]
test_fraction = 0.5
calibration_fraction = 0.25
seed = 0
[protocols]
cross_generator = true
perturbations = ["jpeg:50", "blur:1", "jpeg:50+blur:1"]
sensitivity = true
[bootstrap]
resamples = 50
[throughput]
batch_sizes = [1, 4]
rounds = 1
warmup = 0
images = 8

[[generators]]
name = "parametric"
label = "up"
count = 80            # enough test pairs (>= 30 reals) for rows with intervals; smaller rows are marked small
batch_size = 40
[generators.params]
resolution = 64
artifacts = "upsampling:0.5,eyes_fixed"

[[generators]]
name = "parametric"
label = "control"
count = 10
seed_start = 9000
batch_size = 10
[generators.params]
resolution = 64
artifacts = "none"

[[detectors]]
name = "spectrum"
"""
SECTIONS = ("how-to-read", "accuracy", "controls", "throughput", "roc", "heatmap", "robustness", "cross", "gallery", "misses")
MAX_BYTES = 5_000_000


class Page(HTMLParser):
    """Tags with their attributes, the text of each section, and the accuracy table's cells."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.section_text: dict[str, str] = {}
        self.section_imgs: dict[str, int] = {}
        self._section: str | None = None
        self.styles: list[str] = []
        self._in_style = False
        self.tables: dict[str, dict] = {}
        self._table: dict | None = None
        self._row: list | None = None
        self._cell: dict | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attrs))
        if tag == "section":
            self._section = attrs.get("id")
            self.section_text[self._section] = ""
            self.section_imgs[self._section] = 0
        elif tag == "img" and self._section:
            self.section_imgs[self._section] += 1
        elif tag == "style":
            self._in_style = True
        elif tag == "table":
            self._table = self.tables[attrs.get("id", "")] = {"class": attrs.get("class", ""), "head": [], "rows": []}
            self._part = None
        elif tag in ("thead", "tbody") and self._table is not None:
            self._part = tag
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("th", "td") and self._row is not None:
            self._cell = {"tag": tag, "attrs": attrs, "text": "", "button": False}
        elif tag == "button" and self._cell is not None:
            self._cell["button"] = True

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None
        elif tag == "style":
            self._in_style = False
        elif tag in ("th", "td") and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table["head" if self._part == "thead" else "rows"].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._section:
            self.section_text[self._section] += data
        if self._in_style:
            self.styles.append(data)
        if self._cell is not None:
            self._cell["text"] += data


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("html")
    (root / "suite.toml").write_text(SUITE)
    result = run_suite(load_suite(root / "suite.toml"), root / "results", show_progress=False)
    assert result.errors == []
    return root / "results", load_results(f"{root / 'results' / 'facebench.sqlite'}:latest")


@pytest.fixture(scope="module")
def page(run):
    _, results = run
    text = render_report(results)
    return text, Page(text)


def test_every_section_is_present_with_its_plots(page):
    text, parsed = page
    assert text.startswith("<!DOCTYPE html>")
    assert set(SECTIONS) <= set(parsed.section_text)
    assert "95% bootstrap" in parsed.section_text["how-to-read"]
    assert parsed.section_imgs["roc"] == 4  # ROC and PR for each of two corpora
    assert parsed.section_imgs["heatmap"] == 1
    assert parsed.section_imgs["robustness"] >= 3  # jpeg, blur and the chain panel for a corpus
    assert parsed.section_imgs["cross"] == 1  # one matrix per detector
    assert parsed.section_imgs["throughput"] == 2  # bars and the batch-size sweep
    assert parsed.section_imgs["gallery"] == 2  # a strip per corpus
    assert parsed.section_imgs["misses"] >= 2 * 3  # the up corpus: 3 reals and 3 fakes
    assert "blur:1" in parsed.section_text["accuracy"] and "jpeg:50+blur:1" in parsed.section_text["accuracy"]
    for name in ("suite html", "status", "duration", "git commit", "corpora"):
        assert name in text


def test_accuracy_table_has_sortable_headers_and_every_cell(page, run):
    _, parsed = page
    _, results = run
    table = parsed.tables["accuracy-table"]
    assert "sortable" in table["class"].split()
    (head,) = table["head"]
    labels = [c["text"] for c in head]
    assert all(c["button"] for c in head)
    for label in ("detector", "corpus", "trained on", "artifact", "perturbation", "AUC", "AP chance", "BalAcc@0.5", "BalAcc@cal"):
        assert label in labels
    assert head[labels.index("AUC")]["attrs"].get("data-type") == "num"
    assert head[labels.index("AUC")]["attrs"].get("data-first") == "descending"
    assert head[labels.index("EER")]["attrs"].get("data-first") is None  # lower is better: ascending first
    cells = {(m["corpus"], m["train_corpus"], m["detector"], m["artifact"], m["perturbation"]) for m in results.metrics}
    # every cell of the "none" corpus is a control row: in the controls table (clean, artifact none), never ranked here
    controls = {c for c in cells if c[0] == "control"}
    assert controls and len(table["rows"]) == len(cells - controls)
    assert all(row[1]["text"] != "control" for row in table["rows"])
    shown = {c for c in controls if c[3] == "none" and c[4] == "none"}
    assert len(parsed.tables["controls-table"]["rows"]) == len(shown) > 0
    assert all(len(row) == len(head) for row in table["rows"])
    auc = labels.index("AUC")
    values = [row[auc]["attrs"]["data-v"] for row in table["rows"]]
    assert all(re.fullmatch(r"-?[0-9.e-]+|", v) for v in values) and any(values)
    assert any("[" in row[auc]["text"] for row in table["rows"])  # intervals shown
    throughput = parsed.tables["throughput-table"]
    assert "sortable" in throughput["class"].split() and all(c["button"] for c in throughput["head"][0])
    assert len(throughput["rows"]) == len(results.throughput)


def test_nothing_is_loaded_from_the_network(page):
    text, parsed = page
    outside_data = re.sub(r'data:[a-z+/]+;base64,[A-Za-z0-9+/=]+', "data:", text)
    assert not re.search(r"https?:|//[a-z0-9]", outside_data, re.IGNORECASE)
    for tag, attrs in parsed.tags:
        assert tag not in ("link", "iframe", "object", "embed", "base")
        for name in ("src", "href", "srcset", "action", "poster", "data"):
            if name in attrs:
                assert attrs[name].startswith(("data:", "#")), (tag, name, attrs[name][:60])
        if tag == "script":
            assert "src" not in attrs
    css = "".join(parsed.styles)
    assert "@import" not in css and "url(" not in css


def test_images_are_data_uris_that_decode(page):
    _, parsed = page
    images = [attrs["src"] for tag, attrs in parsed.tags if tag == "img"]
    assert len(images) > 10
    for src in images:
        kind, _, payload = src.partition(";base64,")
        data = base64.b64decode(payload, validate=True)
        if kind == "data:image/png":
            assert data.startswith(b"\x89PNG\r\n\x1a\n")
        else:
            assert kind == "data:image/svg+xml"
            svg = data.decode("utf-8")
            assert "<svg" in svg
            # inside the SVG, links only point within it (namespace declarations are not fetched)
            assert all(h.startswith(("#", "data:")) for h in re.findall(r'href="([^"]*)"', svg))


def test_page_is_small(page):
    text, _ = page
    assert len(text.encode("utf-8")) < MAX_BYTES


def _cheap(results: Results, **changes) -> Results:
    """``results`` with few plots to draw: clean within-generator metrics only, no throughput, no scores."""
    clean = [m for m in results.metrics if m["perturbation"] == "none" and m["train_corpus"] == m["corpus"]]
    return dataclasses.replace(results, **{"metrics": clean, "throughput": [], "scores": [], **changes})


def test_write_report_is_atomic_and_cli_writes_the_same_page(run, tmp_path):
    folder, results = run
    path = write_report(_cheap(results), tmp_path / "sub" / "report.html")
    assert path.is_file() and path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temporary file left
    out = tmp_path / "cli.html"
    result = CliRunner().invoke(app, ["report", "latest", "--results", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "MB" in result.output and out.is_file()
    assert Page(out.read_text(encoding="utf-8")).section_imgs["gallery"] == 2


def test_missing_scores_and_corpus_folders_leave_a_note(run):
    _, results = run
    info = {k: v for k, v in results.run["info"].items() if k not in ("corpus_paths", "seconds")}
    # an old run: its record's info names the corpora by digest only (no corpora given: read from there)
    old = dataclasses.replace(results, scores=[], run={**results.run, "info": info}, corpora=[])
    text = render_report(old)
    parsed = Page(text)
    assert parsed.section_imgs["roc"] == 0 and "No per-image scores" in parsed.section_text["roc"]
    assert parsed.section_imgs["gallery"] == 0 and "did not record its corpus folders" in parsed.section_text["gallery"]
    assert parsed.section_imgs["misses"] == 0
    assert parsed.section_imgs["accuracy"] == 0 and parsed.tables["accuracy-table"]["rows"]
    assert re.search(r"duration</dt><dd>\d+\.\d s", text)  # from started/finished when seconds is missing


def test_moved_corpora_are_found_by_digest_in_the_results_folder(run):
    folder, results = run
    nowhere = [dataclasses.replace(c, path="/nowhere/" + c.label) for c in results.corpora]
    assert len(nowhere) == 2 and all(c.key for c in nowhere)
    moved = _cheap(results, corpora=nowhere)
    lost = Page(render_report(moved))
    assert lost.section_imgs["gallery"] == 0 and "not found" in lost.section_text["gallery"]
    found = Page(render_report(moved, results_dir=folder))
    assert found.section_imgs["gallery"] == 2


def test_moved_corpora_of_a_run_stored_before_the_corpora_table_are_found_by_folder_name(run):
    folder, results = run
    nowhere = {c.label: f"/nowhere/{c.label}-{c.key}" for c in results.corpora}  # as info.corpus_paths held them
    info = dict(results.run["info"], corpus_paths=nowhere)
    old = _cheap(results, run={**results.run, "info": info}, corpora=[])
    assert sorted(c.path for c in old.corpora) == sorted(nowhere.values())
    assert Page(render_report(old)).section_imgs["gallery"] == 0
    assert Page(render_report(old, results_dir=folder)).section_imgs["gallery"] == 2


def test_no_report_scans_the_corpora_folder(run, tmp_path, monkeypatch):
    """Images come from the recorded folders: a stray corpus of the same digest elsewhere is never looked for."""
    from pathlib import Path

    folder, results = run
    globbed = []
    real_glob = Path.glob
    monkeypatch.setattr(Path, "glob", lambda self, pattern: globbed.append(pattern) or real_glob(self, pattern))
    monkeypatch.setattr(Path, "rglob", lambda self, pattern: globbed.append(pattern) or real_glob(self, pattern))
    render_report(_cheap(results), results_dir=folder)
    assert not [p for p in globbed if "corpus.json" in p]


def test_a_run_without_perturbations_or_cross_generator_rows_notes_their_absence(run):
    _, results = run
    parsed = Page(render_report(_cheap(results, scores=results.scores)))
    assert parsed.section_imgs["robustness"] == 0 and "No perturbed" in parsed.section_text["robustness"]
    assert parsed.section_imgs["cross"] == 0 and "cross_generator" in parsed.section_text["cross"]
    assert "No throughput rows" in parsed.section_text["throughput"]


def test_every_text_is_escaped():
    hostile = "<img src=x onerror=alert(1)>"
    metric = {"corpus": hostile, "train_corpus": hostile, "detector": hostile, "artifact": "all",
              "perturbation": "none",
              "metric": "auc", "value": 0.75, "ci_low": 0.7, "ci_high": 0.8, "n_real": 4, "n_fake": 4,
              "generator": "g", "corpus_digest": "d"}
    results = Results(
        run={"run_id": "r1", "suite": hostile, "status": "ok", "started": "2026-01-01T00:00:00+00:00",
             "finished": "2026-01-01T00:01:00+00:00",
             "info": {"suite_source": hostile, "environment": {"cpu_model": hostile}}},
        metrics=[metric],
        throughput=[{"kind": "detector", "name": hostile, "device": "cpu", "batch_size": 4, "images": 8,
                     "seconds": 1.0, "images_per_s": 8.0, "error": hostile}],
        errors=[{"task": hostile, "message": hostile}],
    )
    text = render_report(results)
    assert hostile not in text and "&lt;img src=x" in text
    parsed = Page(text)
    assert "errors" in parsed.section_text and "No per-image scores" in parsed.section_text["roc"]
    assert "1 min 0 s" not in text and "60.0 s" in text  # duration from the timestamps


def _metric(detector, value, ci, metric="auc", n=40):
    return {"corpus": "c", "train_corpus": "c", "detector": detector, "artifact": "all", "perturbation": "none",
            "metric": metric, "value": value, "ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None,
            "n_real": n, "n_fake": n, "generator": "g", "corpus_digest": "d"}


def test_degenerate_and_small_rows_are_marked_and_sorted_last():
    metrics = [_metric("tied", 0.5, (0.5, 0.5)), _metric("weak", 0.45, (0.3, 0.6)), _metric("good", 0.9, (0.8, 0.95)),
               _metric("tiny", 0.99, (0.9, 1.0), n=5)]
    results = Results(run={"run_id": "r1", "suite": "s", "status": "ok", "info": {}}, metrics=metrics, throughput=[],
                      errors=[])
    text = render_report(results)
    table = Page(text).tables["accuracy-table"]
    assert [row[0]["text"] for row in table["rows"]] == ["good", "weak", "tiny", "tied"]  # the last two by AUC
    tied = table["rows"][3]
    row_tags = {re.search(r'data-detector="([^"]*)"', tag).group(1): tag for tag in re.findall(r"<tr [^>]*>", text)
                if "data-detector" in tag}
    assert 'class="degenerate" data-last="1"' in row_tags["tied"]  # the sorting script keeps it last
    assert 'class="small" data-last="1"' in row_tags["tiny"] and "data-last" not in row_tags["weak"]
    auc = [c["text"] for c in table["head"][0]].index("AUC")
    assert tied[auc]["text"] == "0.500(degenerate)"
    assert "degenerate" in tied[auc]["attrs"]["title"]


def test_the_accuracy_table_has_a_compact_default_a_filter_and_a_toggle(page):
    text, parsed = page
    table = parsed.tables["accuracy-table"]
    assert {"compact", "stack"} <= set(table["class"].split())
    (head,) = table["head"]
    extra = [c["text"] for c in head if "extra" in c["attrs"].get("class", "").split()]
    assert {"EER", "TPR@1%FPR", "TPR@0.1%FPR", "ECE", "Brier"} <= set(extra)
    assert not {"detector", "corpus", "artifact", "perturbation", "AUC", "AP", "AP chance", "BalAcc@0.5",
                "BalAcc@cal"} & set(extra)
    for row in table["rows"]:
        assert [c["attrs"].get("data-label") for c in row[1:3]] == ["corpus", "trained on"]
    selects = {attrs.get("data-key") for tag, attrs in parsed.tags if tag == "select"}
    assert selects == {"artifact", "perturbation"}  # one detector and one ranked corpus here: nothing to pick
    assert 'class="filter"' in text and "toggle-columns" in text
    options = re.findall(r'<option value="([^"]*)">', text.split('data-key="perturbation"')[1].split("</select>")[0])
    assert options == ["", "none", "jpeg:50", "blur:1", "jpeg:50+blur:1"]  # by kind, then strength


def test_styles_and_script_are_the_package_files_inlined(page):
    from facebench.harness.report.html import static_text

    text, _ = page
    css, script = static_text("report.css"), static_text("report.js")
    assert "th[aria-sort=ascending]" in css and "table.sortable" in script
    assert f"<style>\n{css}</style>" in text and f"<script>\n{script}</script>" in text
