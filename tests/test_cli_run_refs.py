"""Commands as a stranger types them: `leaderboard RUN`, `detect` with its calibration workload, `info` on a perturbation."""

from __future__ import annotations

import pytest

from tests.test_cli import TINY_SUITE, invoke


def test_leaderboard_takes_a_run_id_or_latest_as_an_argument(tmp_path):
    """Seen: `facebench leaderboard RUN_ID` said 'Got unexpected extra argument(s)', while
    `facebench report RUN_ID` and `facebench export RUN_ID` take one; `--run latest` found no run."""
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    results = tmp_path / "results"
    first = invoke("run", suite, "--results", results, "--no-progress")
    assert first.exit_code == 0, first.output
    older = first.stdout.split(", run ")[1].split(" ")[0]
    second = invoke("run", suite.parent / "tiny.toml", "--results", results, "--no-progress", "--no-throughput")
    assert second.exit_code == 0, second.output
    newer = second.stdout.split(", run ")[1].split(" ")[0]
    assert older != newer

    by_argument = invoke("leaderboard", older, "--results", results)
    assert by_argument.exit_code == 0, by_argument.output
    assert f"run {older}" in by_argument.stdout
    for latest in (("latest",), ("--run", "latest"), ()):
        shown = invoke("leaderboard", *latest, "--results", results)
        assert shown.exit_code == 0, shown.output
        assert f"run {newer}" in shown.stdout
    both = invoke("leaderboard", older, "--run", newer, "--results", results)
    assert both.exit_code == 2 and "two runs given" in both.stderr


def test_a_detect_run_records_the_calibration_workload(tmp_path):
    """Seen: `facebench detect` stored speed figures without the calibration workload a suite run
    records, so `compare` could not relate them across machines (README, Speed)."""
    from facebench.harness.data.results import load_results

    corpus = tmp_path / "small"
    made = invoke("generate", "parametric", "--n", "6", "--artifacts", "upsampling", "-p", "resolution=64",
                  "--out", corpus)
    assert made.exit_code == 0, made.output
    store = tmp_path / "fb.sqlite"
    result = invoke("detect", "spectrum", corpus, "--store", store)
    assert result.exit_code == 0, result.output
    calibration = load_results(f"{store}").run["info"]["calibration"]
    assert calibration["units_per_s"] > 0 and calibration["workload"]
    assert "calibration workload" in result.stdout


@pytest.mark.parametrize("kind", ["jpeg", "blur", "resize", "noise", "crop"])
def test_info_on_a_perturbation_gives_examples_that_parse(kind):
    """Seen: `facebench info jpeg` gave the example 'jpeg:... + blur:2', a spec no suite accepts."""
    from facebench.harness.run.perturb import parse

    result = invoke("info", kind)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "..." not in text
    examples = [word.rstrip(";,") for word in text.split() if word.startswith(f"{kind}:") and word[len(kind) + 1:][:1].isdigit()]
    assert len(examples) == 2 and "+" in examples[1]
    for example in examples:
        parse(example)


@pytest.mark.parametrize("command", [["report"], ["export"], ["compare", "latest", "latest"]])
def test_a_missing_store_names_the_option_that_points_at_one(tmp_path, monkeypatch, command):
    """Seen: 'pass STORE.sqlite:latest or the results folder', without saying how to pass a folder."""
    monkeypatch.chdir(tmp_path)
    result = invoke(*command)
    assert result.exit_code == 2
    assert "--results DIR" in result.stderr and "facebench run" in result.stderr


def test_a_rerun_says_which_corpora_it_reused_and_whose_speed_figures_they_carry(tmp_path):
    """Seen: a rerun printed the generator's images/s of the run that built the cached corpus as its
    own row, with nothing but a table footnote to say so."""
    from facebench.harness.data.results import load_results

    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    results = tmp_path / "results"
    first = invoke("run", suite, "--results", results, "--no-progress", "--no-throughput")
    assert first.exit_code == 0, first.output
    assert "corpora" not in first.stdout.split("leaderboard written")[0].splitlines()[-1]
    assert load_results("latest", results / "facebench.sqlite").run["info"]["reused_corpora"] == []
    again = invoke("run", suite, "--results", results, "--no-progress", "--no-throughput")
    assert again.exit_code == 0, again.output
    assert ("corpora from the cache: upsampled (1 of 1); their generator images/s are from the run that built them"
            in again.stdout)
    assert load_results("latest", results / "facebench.sqlite").run["info"]["reused_corpora"] == ["upsampled"]
    fresh = invoke("run", suite, "--results", results, "--no-progress", "--no-throughput", "--fresh")
    assert fresh.exit_code == 0 and "corpora from the cache" not in fresh.stdout
