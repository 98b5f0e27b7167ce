"""Results export/loading, the compare gate, its CLI, and the pytest-benchmark regression gate."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from facebench.harness.cli import app
from facebench.harness.report.compare import OVERLAP, PAIRED, TOLERANCE_ONLY, CompareError, compare, parse_tolerances
from facebench.harness.run.metrics import bootstrap_ci, compute_metrics
from facebench.harness.data.results import Results, ResultsError, export_json, load_results, results_to_dict
from facebench.harness.data.store import Store

ENV = {"cpu_model": "Test CPU", "gpu": None, "torch": "2.13.0", "git_commit": "abc123"}


def run_record(run_id, env=ENV, started="2026-01-01T00:00:00+00:00"):
    return {"run_id": run_id, "suite": "t", "started": started, "finished": started, "status": "ok",
            "facebench_version": "0.1.0", "info": {"environment": dict(env)}}


def base_scores(n_pairs=200, seed=0):
    """A good detector: reals around 0.3, fakes around 0.7 (AUC about 0.97)."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0.3, 0.12, n_pairs), 0, 1), np.clip(rng.normal(0.7, 0.12, n_pairs), 0, 1)


def evaluation(real, fake, detector="det", corpus="c", artifacts=None, with_ci=False):
    """Metric rows (overall and per artifact) and score rows of one detector on one corpus."""
    n = len(real)
    artifacts = artifacts or ["a"] * n
    labels = np.r_[np.zeros(n, int), np.ones(n, int)]
    scores = np.r_[real, fake]
    pairs = np.r_[np.arange(n), np.arange(n)].astype(str)
    names = [[]] * n + [[a] for a in artifacts]
    metrics = []
    subsets = {"all": np.ones(2 * n, bool)}
    for artifact in sorted(set(artifacts)):
        subsets[artifact] = (labels == 0) | np.array([artifact in x for x in names])
    for artifact, keep in subsets.items():
        values = compute_metrics(labels[keep], scores[keep])
        cis = bootstrap_ci(labels[keep], scores[keep], pairs[keep], n_resamples=200) if with_ci else {}
        for metric, value in values.items():
            low, high = cis.get(metric, (math.nan, math.nan))
            metrics.append({"corpus": corpus, "train_corpus": corpus, "corpus_digest": "d", "generator": "g",
                            "detector": detector, "artifact": artifact, "perturbation": "none", "metric": metric,
                            "value": value, "ci_low": low, "ci_high": high, "n_real": int((labels[keep] == 0).sum()),
                            "n_fake": int(labels[keep].sum())})
    score_rows = [{"corpus": corpus, "train_corpus": corpus, "perturbation": "none", "detector": detector,
                   "id": f"{'r' if lab == 0 else 'f'}{pair}", "pair": pair, "label": int(lab),
                   "artifact_names": name, "score": float(s)}
                  for lab, pair, name, s in zip(labels, pairs, names, scores)]
    return metrics, score_rows


def throughput_row(detector="det", corpus="c", images_per_s=100.0, error=None):
    return {"kind": "detector", "name": f"{detector} @ {corpus}", "device": "cpu", "batch_size": 32, "images": 400,
            "seconds": 4.0, "images_per_s": images_per_s, "latency_p50_ms": 10.0, "latency_p95_ms": 12.0,
            "latency_p99_ms": 13.0, "peak_rss_mb": 500.0, "decode_images_per_s": None, "error": error}


def make_results(run_id, evaluations, images_per_s=None, with_scores=True, env=ENV, errors=()):
    """``evaluations``: {detector: (real scores, fake scores)}."""
    metrics, scores, throughput = [], [], []
    for detector, (real, fake, *rest) in evaluations.items():
        m, s = evaluation(real, fake, detector, artifacts=rest[0] if rest else None,
                          with_ci=not with_scores)
        metrics += m
        scores += s if with_scores else []
        throughput.append(throughput_row(detector, images_per_s=(images_per_s or {}).get(detector, 100.0)))
    return Results(run_record(run_id, env), metrics, throughput, list(errors), scores)


@pytest.fixture(scope="module")
def good():
    return base_scores()


@pytest.fixture(scope="module")
def baseline(good):
    return make_results("base", {"det": good, "det2": good})


def degraded(real, fake, noise, seed=1):
    rng = np.random.default_rng(seed)
    return real + rng.normal(0, noise, len(real)), fake + rng.normal(0, noise, len(fake))


def row(comparison, metric="auc", detector="det", artifact="all"):
    (found,) = [r for r in comparison.metric_rows
                if r.metric == metric and r.detector == detector and r.artifact == artifact]
    return found


# --------------------------------------------------------------------------- results


def test_json_round_trip_keeps_nan(tmp_path, baseline):
    results = make_results("r1", {"det": base_scores(20)})
    results.metrics[0]["value"] = math.nan
    results.throughput[0]["images_per_s"] = math.inf
    path = export_json(results, tmp_path / "out" / "r1.json")
    raw = json.loads(path.read_text())  # strict JSON: no NaN literals
    assert raw["format"] == "facebench-results" and raw["version"] == 1
    assert raw["metrics"][0]["value"] is None and raw["throughput"][0]["images_per_s"] is None
    loaded = load_results(path)
    assert math.isnan(loaded.metrics[0]["value"]) and math.isnan(loaded.throughput[0]["images_per_s"])
    assert loaded.metrics[1:] == results.metrics[1:]
    assert loaded.scores == results.scores and loaded.run == results.run
    assert results_to_dict(loaded) == raw
    assert [p.name for p in path.parent.iterdir()] == ["r1.json"]  # no temporary file left


def test_load_from_store_by_id_latest_and_bare_id(tmp_path):
    store_path = tmp_path / "results" / "facebench.sqlite"
    first = make_results("r1", {"det": base_scores(10)})
    second = make_results("r2", {"det": base_scores(10, seed=5)})
    store = Store(store_path)
    store.write_run(first.run, first.metrics, first.throughput, [{"task": "t", "message": "m"}])
    store.write_run(run_record("r2", started="2026-01-02T00:00:00+00:00"), second.metrics, second.throughput)
    run_dir = store_path.parent / "runs" / "r1"
    run_dir.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(first.scores), run_dir / "scores.parquet")

    by_id = load_results(f"{store_path}:r1")
    assert by_id.run_id == "r1" and by_id.run["info"]["environment"]["cpu_model"] == "Test CPU"
    assert by_id.errors == [{"task": "t", "message": "m"}]
    assert len(by_id.metrics) == len(first.metrics) and "run_id" not in by_id.metrics[0]
    assert by_id.scores == first.scores
    latest = load_results(store_path)
    assert latest.run_id == "r2" and latest.scores == []  # no scores.parquet: empty, fine
    assert load_results(f"{store_path}:latest").run_id == "r2"
    assert load_results("r1", default_store=store_path).run_id == "r1"
    assert load_results("latest", default_store=store_path).run_id == "r2"


def test_bad_references_are_clear_errors(tmp_path):
    store_path = tmp_path / "fb.sqlite"
    Store(store_path).write_run(run_record("r1"), [], [])
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    cases = {
        str(tmp_path / "missing.json"): "no such results file",
        str(tmp_path / "junk.json"): "not JSON",
        str(tmp_path / "other.json"): "not a facebench results file",
        f"{store_path}:nope": "no run 'nope'; most recent: r1",
        str(tmp_path / "missing.sqlite"): "no such results store",
        "nope": "no results store at",
    }
    for ref, message in cases.items():
        with pytest.raises(ResultsError, match=message):
            load_results(ref, default_store=tmp_path / "absent.sqlite")


# --------------------------------------------------------------------------- compare


def test_identical_runs_pass(baseline):
    comparison = compare(baseline, baseline)
    assert not comparison.failed
    assert {r.status for r in comparison.rows} == {"pass"}
    assert len(comparison.metric_rows) == 2 * 2 * 5  # 2 detectors x (all, a) x 5 gated metrics
    assert comparison.markdown().startswith("## facebench compare: PASS")


def test_degraded_detector_fails_with_a_real_paired_drop(baseline, good):
    current = make_results("cur", {"det": degraded(*good, noise=0.5), "det2": good})
    comparison = compare(baseline, current)
    auc = row(comparison)
    assert comparison.failed and auc.failed and auc.test == PAIRED
    assert auc.worse_by > 0.1 and auc.drop_ci[0] > 0
    assert not any(r.failed for r in comparison.rows if r.kind == "metric" and r.detector == "det2")
    text = comparison.markdown()
    assert "FAIL" in text.splitlines()[0] and "### Failures" in text
    failures = text.split("### Failures")[1].split("### Metrics")[0]
    assert "| auc | det @ c |" in failures and "det2" not in failures


def test_small_drop_within_tolerance_passes(baseline, good):
    current = make_results("cur", {"det": degraded(*good, noise=0.02), "det2": good})
    comparison = compare(baseline, current)
    assert 0 < row(comparison).worse_by < 0.02
    assert not comparison.failed


def test_drop_beyond_tolerance_but_not_significant_passes():
    real, fake = base_scores(15, seed=3)
    base = make_results("b", {"det": (real, fake)})
    # One fake drops just below the highest real under it: one real/fake pair swaps order.
    i = int(np.argmin(fake))
    new_fake = fake.copy()
    new_fake[i] = real[real < fake[i]].max() - 1e-3
    current = make_results("c", {"det": (real, new_fake)})
    comparison = compare(base, current, tolerances={"auc": 0.0})
    auc = row(comparison)
    assert auc.worse_by > 0 and auc.test == PAIRED
    assert auc.status == "pass" and "not significant" in auc.reason and auc.drop_ci[0] <= 0
    assert "not significant" in comparison.markdown()


def test_only_the_degraded_artifact_fails(good):
    real, fake = good
    artifacts = ["a", "b"] * (len(fake) // 2)
    noisy = fake + np.where(np.array(artifacts) == "b", np.random.default_rng(2).normal(-0.3, 0.3, len(fake)), 0)
    base = make_results("b", {"det": (real, fake, artifacts)})
    current = make_results("c", {"det": (real, noisy, artifacts)})
    comparison = compare(base, current, n_resamples=300)
    assert row(comparison, artifact="b").failed and row(comparison, artifact="all").failed
    assert not row(comparison, artifact="a").failed  # the fakes carrying "a" did not change


def test_fallback_without_scores_uses_ci_overlap_then_tolerance(good):
    base = make_results("b", {"det": good}, with_scores=False)
    far = make_results("c", {"det": degraded(*good, noise=0.6)}, with_scores=False)
    near = make_results("c", {"det": degraded(*good, noise=0.1)}, with_scores=False)
    auc = row(compare(base, far))
    assert auc.failed and auc.test == OVERLAP and "do not overlap" in auc.reason
    auc = row(compare(base, near, tolerances={"auc": 0.0}))
    assert auc.worse_by > 0 and not auc.failed and auc.test == OVERLAP
    for rows in (base.metrics, near.metrics):
        for r in rows:
            r["ci_low"] = r["ci_high"] = math.nan
    comparison = compare(base, near, tolerances={"auc": 0.0})
    auc = row(comparison)
    assert auc.failed and auc.test == TOLERANCE_ONLY
    assert TOLERANCE_ONLY in comparison.markdown()


def test_throughput_gate(baseline, good):
    slow = make_results("c", {"det": good, "det2": good}, images_per_s={"det": 50.0, "det2": 95.0})
    comparison = compare(baseline, slow)
    rates = {r.name: r for r in comparison.throughput_rows}
    assert rates["det @ c"].failed and rates["det @ c"].change == pytest.approx(-0.5)
    assert not rates["det2 @ c"].failed  # 5 % slower: within 20 %
    assert not any(r.failed for r in comparison.metric_rows)
    assert "-50.0%" in comparison.markdown()
    assert "time both builds side by side with `facebench speed-ab`" in comparison.markdown()
    assert "speed-ab" not in compare(baseline, baseline).markdown()  # the hint stands under a speed failure only
    assert not compare(baseline, slow, throughput_tolerance=None).failed
    faster = make_results("c", {"det": good, "det2": good}, images_per_s={"det": 500.0})
    assert not compare(baseline, faster).failed
    broken = make_results("c", {"det": good, "det2": good})
    broken.throughput[0]["error"] = "CUDA out of memory"
    assert compare(baseline, broken).failures[0].reason == "error in current: CUDA out of memory"


def test_missing_detector_fails_and_new_ones_are_listed(baseline, good):
    current = make_results("c", {"det": good, "det3": good})
    comparison = compare(baseline, current)
    assert comparison.failed
    missing = [r for r in comparison.failures]
    assert missing and all(r.reason == "missing in current" and "det2" in r.label for r in missing)
    assert {r.status for r in comparison.rows if "det3" in r.label} == {"new"}
    assert "missing in current" in comparison.markdown()


def test_environment_table_and_warning(baseline, good):
    other = make_results("c", {"det": good, "det2": good}, env={**ENV, "cpu_model": "Other CPU", "git_commit": "def"})
    text = compare(baseline, other).markdown()
    assert "| cpu_model | Test CPU | Other CPU |" in text and "| git_commit | abc123 | def |" in text
    assert "**Warning:**" in text and "not comparable" in text
    same_machine = make_results("c", {"det": good, "det2": good}, env={**ENV, "git_commit": "def"})
    assert "**Warning:**" not in compare(baseline, same_machine).markdown()


def test_bad_tolerances():
    assert parse_tolerances(["auc=0.01", "accuracy=0.05"]) == {"auc": 0.01, "accuracy": 0.05}
    for bad in (["auc"], ["auc=x"], ["nope=0.1"], ["auc=-1"]):
        with pytest.raises(CompareError):
            parse_tolerances(bad)


# --------------------------------------------------------------------------- CLI


def test_cli_exit_codes_and_markdown(tmp_path, monkeypatch):
    good = base_scores(60)
    base = export_json(make_results("b", {"det": good}), tmp_path / "base.json")
    worse = export_json(make_results("c", {"det": degraded(*good, noise=0.5)}), tmp_path / "cur.json")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    runner = CliRunner()

    result = runner.invoke(app, ["compare", str(base), str(worse), "--markdown-out", str(tmp_path / "out.md")])
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "| auc |" in result.output
    assert (tmp_path / "out.md").read_text().startswith("## facebench compare: FAIL")
    assert "FAIL" in summary.read_text()

    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    result = runner.invoke(app, ["compare", str(base), str(base), "--no-throughput", "--markdown-out", str(tmp_path / "pass.md")])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and "not checked" in result.output
    # on a pass the terminal counts the rows that passed; --all and the Markdown file list them
    assert "| auc |" not in result.output and "rows within their tolerances (listed with --all" in result.output
    assert "| auc |" in (tmp_path / "pass.md").read_text()
    listed = runner.invoke(app, ["compare", str(base), str(base), "--no-throughput", "--all"])
    assert listed.exit_code == 0 and "| auc |" in listed.output and "within their tolerances (listed" not in listed.output
    result = runner.invoke(app, ["compare", str(base), str(worse), "-t", "auc=inf", "-t", "ap=1",
                                 "-t", "balanced_accuracy=1", "-t", "tpr_at_fpr_1=1", "-t", "eer=1"])
    assert result.exit_code == 0, result.output

    for bad in (["compare", str(base), str(tmp_path / "absent.json")],
                ["compare", str(base), str(base), "--tolerance", "auc=?"],
                ["compare", str(base), "some-run", "--results", str(tmp_path)]):
        result = runner.invoke(app, bad)
        assert result.exit_code == 2, (bad, result.output)


# --------------------------------------------------------------------------- pytest-benchmark gate

BENCH_FILE = '''
import os
import time

import numpy as np

from facebench.detectors.spectrum import SpectrumDetector

rng = np.random.default_rng(0)
IMAGES = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
DETECTOR = SpectrumDetector()
DETECTOR.fit(IMAGES, np.array([0, 1] * 8))
SLOW = os.environ.get("FACEBENCH_TEST_DEGRADE") == "1"


def score(images):
    scores = DETECTOR.score(images)
    # A fixed pause keeps the round time steady on a busy machine, so the unchanged detector
    # passes the 25 % gate reliably; the degraded one pays far more.
    time.sleep(0.06 if SLOW else 0.02)
    return scores


def test_score(benchmark):
    assert benchmark(score, IMAGES[:8]).shape == (8,)
'''
# pytest-benchmark reads the CPU's details with py-cpuinfo (about a second) unless told otherwise.
BENCH_CONFTEST = '''
import platform


def pytest_benchmark_generate_machine_info(config):
    return {"node": "test", "machine": platform.machine(), "python_version": platform.python_version()}
'''


def test_pytest_benchmark_gate_fails_on_a_degraded_detector(tmp_path):
    pytest.importorskip("pytest_benchmark")
    (tmp_path / "bench_score.py").write_text(textwrap.dedent(BENCH_FILE))
    (tmp_path / "conftest.py").write_text(textwrap.dedent(BENCH_CONFTEST))
    storage = tmp_path / "storage"
    # Only pytest-benchmark: autoloading every installed plug-in (hypothesis...) costs seconds a run.
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"

    def bench(*extra, degrade=False):
        command = [sys.executable, "-m", "pytest", "bench_score.py", "-q", "-p", "pytest_benchmark.plugin",
                   "-p", "no:cacheprovider",
                   "--benchmark-only", f"--benchmark-storage={storage}", "--benchmark-min-rounds=8",
                   "--benchmark-max-time=0.15", "--benchmark-warmup=off", *extra]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env={**env, "FACEBENCH_TEST_DEGRADE": "1" if degrade else "0"})

    saved = bench("--benchmark-save=baseline")
    assert saved.returncode == 0, saved.stdout + saved.stderr
    assert list(storage.glob("*/0001_baseline.json"))
    gate = ("--benchmark-compare=0001", "--benchmark-compare-fail=median:25%")
    unchanged = bench(*gate)
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    slower = bench(*gate, degrade=True)
    assert slower.returncode != 0
    assert "Performance has regressed" in slower.stdout + slower.stderr
