"""A whole run on a tiny suite: the spectrum detector must find upsampling and nothing in a control."""

from facebench.harness.run.runner import run_suite
from facebench.harness.data.store import Store
from facebench.harness.data.suite import load_suite

SUITE = """
name = "e2e"
[split]
test_fraction = 0.5
seed = 1

[[generators]]
name = "parametric"
label = "upsampling"
count = 60
batch_size = 30
[generators.params]
resolution = 64
artifacts = "upsampling"

[[generators]]
name = "parametric"
label = "control"
count = 60
seed_start = 5000
batch_size = 30
[generators.params]
resolution = 64
artifacts = "none"

[[detectors]]
name = "spectrum"
"""


def auc(rows, corpus, artifact="all"):
    (value,) = [r["value"] for r in rows if r["corpus"] == corpus and r["artifact"] == artifact and r["metric"] == "auc"]
    return value


def test_spectrum_finds_upsampling_and_sits_at_chance_on_the_control(tmp_path):
    suite_path = tmp_path / "e2e.toml"
    suite_path.write_text(SUITE)
    result = run_suite(load_suite(suite_path), tmp_path / "results", show_progress=False)
    assert result.errors == []
    stored = Store(tmp_path / "results" / "facebench.sqlite")
    rows = stored.metrics(result.run["run_id"])
    assert auc(rows, "upsampling", "upsampling") >= 0.9
    assert abs(auc(rows, "control") - 0.5) <= 0.15
    kinds = {(t["kind"], t["name"]) for t in stored.throughput(result.run["run_id"])}
    assert {("generator", "upsampling"), ("generator", "control"), ("detector", "spectrum @ upsampling")} <= kinds
    assert (result.run_dir / "scores.parquet").exists()


def test_rerun_reuses_cached_corpora(tmp_path):
    suite_path = tmp_path / "e2e.toml"
    suite_path.write_text(SUITE.replace("count = 60", "count = 8"))
    suite = load_suite(suite_path)
    first = run_suite(suite, tmp_path / "results", show_progress=False)
    corpora = sorted((tmp_path / "results" / "corpora").iterdir())
    stamps = [(c / "corpus.json").stat().st_mtime_ns for c in corpora]
    second = run_suite(suite, tmp_path / "results", show_progress=False)
    assert sorted((tmp_path / "results" / "corpora").iterdir()) == corpora
    assert [(c / "corpus.json").stat().st_mtime_ns for c in corpora] == stamps
    assert first.run["info"]["corpora"] == second.run["info"]["corpora"]
    assert len(Store(tmp_path / "results" / "facebench.sqlite").runs()) == 2
