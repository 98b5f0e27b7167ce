import sqlite3

import pytest
from typer.testing import CliRunner

from facebench.harness.cli import app

runner = CliRunner()

TINY_SUITE = """
name = "tiny"
[split]
test_fraction = 0.5
[[generators]]
name = "parametric"
label = "upsampled"
count = 12
batch_size = 6
[generators.params]
resolution = 64
artifacts = "upsampling"
[[detectors]]
name = "spectrum"
"""


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpora") / "small"
    result = invoke("generate", "parametric", "--n", 6, "--artifacts", "upsampling", "-p", "resolution=64", "--out", out)
    assert result.exit_code == 0, result.output
    return out


def copy_corpus(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("command", [[], ["list"], ["generate"], ["detect"], ["run"], ["leaderboard"], ["corpus", "verify"]])
def test_every_command_has_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.startswith("facebench ")


def test_list_shows_plugins_and_artifacts():
    result = invoke("list")
    assert result.exit_code == 0
    for name in ("parametric", "spectrum", "upsampling", "eyes_fixed"):
        assert name in result.stdout


def test_generate_writes_a_corpus(small_corpus):
    from facebench.harness.data.corpus import Corpus

    corpus = Corpus.open(small_corpus)
    assert corpus.meta["counts"] == {"images": 12, "real": 6, "fake": 6}
    assert corpus.meta["generators"][0]["params"]["artifacts"] == "upsampling"
    assert corpus.meta["throughput"]["images_per_s"] > 0


def test_generate_refuses_existing_output_and_bad_artifacts(small_corpus, tmp_path):
    result = invoke("generate", "parametric", "--n", 2, "--out", small_corpus)
    assert result.exit_code == 2 and "already exists" in result.stderr  # wrong input, nothing ran
    result = invoke("generate", "parametric", "--n", 2, "--artifacts", "upsamplin", "--out", tmp_path / "x")
    assert result.exit_code == 2
    assert "did you mean 'upsampling'" in result.stderr
    assert not (tmp_path / "x").exists()


def test_usage_errors_exit_2(tmp_path):
    assert invoke("generate", "parametric", "--n", 0, "--out", tmp_path / "x").exit_code == 2
    result = invoke("generate", "parametric", "-p", "resolution", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "KEY=VALUE" in result.output
    result = invoke("detect", "spectrun", tmp_path)
    assert result.exit_code == 2 and "did you mean 'spectrum'" in result.stderr


def test_corpus_verify_ok_and_flipped_byte(small_corpus, tmp_path):
    assert invoke("corpus", "verify", small_corpus).exit_code == 0
    broken = copy_corpus(small_corpus, tmp_path / "broken")
    image = next((broken / "images").rglob("*.png"))
    data = bytearray(image.read_bytes())
    data[100] ^= 0xFF
    image.write_bytes(bytes(data))
    result = invoke("corpus", "verify", broken)
    assert result.exit_code == 1
    assert "corrupt: images/" in result.stdout
    assert "1 corrupt" in result.stderr


def test_detect_on_a_missing_corpus_is_one_clear_line(tmp_path):
    result = invoke("detect", "spectrum", "/not/a/corpus", "--results", tmp_path / "results")
    assert result.exit_code == 2  # wrong input, nothing ran
    assert result.stderr.strip().count("\n") == 0
    assert "/not/a/corpus" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "results").exists()


def test_detect_on_a_corpus_with_a_missing_image_writes_nothing(small_corpus, tmp_path):
    broken = copy_corpus(small_corpus, tmp_path / "broken")
    next((broken / "images").rglob("*.png")).unlink()
    result = invoke("detect", "spectrum", broken, "--results", tmp_path / "results")
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "is missing" in result.stderr
    assert not (tmp_path / "results" / "facebench.sqlite").exists()


def test_detect_stores_a_run(small_corpus, tmp_path):
    store = tmp_path / "fb.sqlite"
    result = invoke("detect", "spectrum", small_corpus, "--store", store)
    assert result.exit_code == 0, result.output
    assert "spectrum" in result.stdout
    with sqlite3.connect(store) as connection:
        assert connection.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
        assert connection.execute("SELECT count(*) FROM metrics WHERE metric = 'auc'").fetchone()[0] >= 1


def test_run_then_leaderboard(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    results = tmp_path / "results"
    result = invoke("run", suite, "--results", results, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "facebench leaderboard" in result.stdout and "upsampled" in result.stdout
    markdown = (results / "leaderboard.md").read_text()
    assert "| upsampled | all | spectrum |" in markdown
    assert (results / "facebench.sqlite").exists()
    again = invoke("leaderboard", "--results", results, "--markdown", tmp_path / "lb.md")
    assert again.exit_code == 0
    assert "spectrum" in again.stdout
    assert (tmp_path / "lb.md").read_text().splitlines()[6:] == markdown.splitlines()[6:]
    exports = invoke("leaderboard", "--results", results, "--csv", tmp_path / "csv", "--json", tmp_path / "lb.json",
                     "--all-metrics", "--perturbation", "none")
    assert exports.exit_code == 0, exports.output
    assert "all metrics: corpus upsampled, artifact all" in exports.stdout
    with sqlite3.connect(results / "facebench.sqlite") as connection:
        n_metrics = connection.execute("SELECT count(*) FROM metrics").fetchone()[0]
    assert len((tmp_path / "csv" / "leaderboard.csv").read_text().splitlines()) == n_metrics + 1
    assert (tmp_path / "csv" / "throughput.csv").exists()
    assert '"suite": "tiny"' in (tmp_path / "lb.json").read_text()


def test_run_with_a_bad_suite_is_a_usage_error(tmp_path):
    suite = tmp_path / "bad.toml"
    suite.write_text(TINY_SUITE.replace('name = "spectrum"', 'name = "spectrun"'))
    result = invoke("run", suite, "--results", tmp_path / "r")
    assert result.exit_code == 2
    assert "did you mean 'spectrum'" in result.stderr
    assert not (tmp_path / "r").exists()


def test_leaderboard_without_a_store(tmp_path):
    result = invoke("leaderboard", "--results", tmp_path)
    assert result.exit_code == 2 and "no results store" in result.stderr


def test_debug_keeps_the_traceback(tmp_path):
    result = invoke("--debug", "detect", "spectrum", tmp_path / "nope")
    assert result.exit_code != 0
    assert result.exception is not None and "no such corpus" in str(result.exception)
