"""One result object end to end: `run_suite` returns the `Results` the store holds, and the report
drawn from it is the page `facebench report RUN` draws from the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from facebench.harness.contracts.values import json_safe
from facebench.harness.data.results import Results, load_results
from facebench.harness.data.suite import load_suite
from facebench.harness.report.html import render_report
from facebench.harness.run.runner import run_suite
from tests.test_cli import TINY_SUITE, invoke

SUITE = TINY_SUITE.replace('name = "tiny"', 'name = "tiny"\n[throughput]\nbatch_sizes = [1, 2]\nrounds = 1\nwarmup = 0\nimages = 4')


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results_object")
    (root / "tiny.toml").write_text(SUITE)
    return root


def _plain(results: Results) -> dict:
    return json_safe({"run": results.run, "metrics": results.metrics, "throughput": results.throughput,
                      "errors": results.errors, "scores": results.scores, "corpora": results.corpora,
                      "source": results.source})


def test_facebench_run_draws_the_page_facebench_report_draws_from_the_store(folder):
    results = folder / "results"
    ran = invoke("run", folder / "tiny.toml", "--results", results, "--no-progress")
    assert ran.exit_code == 0, ran.output
    run_id = ran.stdout.split(", run ")[1].split(" ")[0]
    out = folder / "from_store.html"
    reported = invoke("report", run_id, "--results", results, "--out", out)
    assert reported.exit_code == 0, reported.output
    in_hand = (results / "report.html").read_text(encoding="utf-8")
    assert "gallery" in in_hand and run_id in in_hand
    assert in_hand == out.read_text(encoding="utf-8")  # the page holds no time of drawing


def test_run_suite_returns_the_results_the_store_gives_back(folder):
    results_dir = folder / "direct"
    result = run_suite(load_suite(folder / "tiny.toml"), results_dir, show_progress=False)
    assert isinstance(result, Results) and result.errors == []
    assert result.task_count == 1 and result.cached_tasks == 0 and result.reused_corpora == []
    assert result.run_dir == results_dir / "runs" / result.run_id and (result.run_dir / "scores.parquet").is_file()
    (corpus,) = result.corpora
    assert corpus.label == "upsampled" and corpus.key and Path(corpus.path).name == f"upsampled-{corpus.key}"
    assert Path(corpus.path, "corpus.json").is_file()
    assert {r["kind"] for r in result.throughput} == {"generator", "detector", "sweep"}
    stored = load_results(f"{results_dir / 'facebench.sqlite'}:{result.run_id}")
    assert result.metrics and result.scores
    assert _plain(result) == _plain(stored)
    assert render_report(result, results_dir) == render_report(stored, results_dir)

    again = run_suite(load_suite(folder / "tiny.toml"), results_dir, show_progress=False)
    assert again.cached_tasks == 1 and again.reused_corpora == ["upsampled"]
    assert again.corpora == result.corpora
    assert _plain(again)["metrics"] == _plain(result)["metrics"]
