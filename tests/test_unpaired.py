"""Unpaired corpora (no pair id holds both a real and a fake, as in real datasets): a stratified
bootstrap, sensitivity reported as not applicable with its reason, and a split by pair id that
keeps groups of images sharing one (e.g. frames of one video) on one side."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facebench.harness.contracts.types import Batch, Record
from facebench.harness.data.corpus import write_corpus
from facebench.harness.data.suite import BootstrapSpec, SplitSpec
from facebench.harness.report.text import build_leaderboard, tables, to_markdown
from facebench.harness.run.fitting import three_way_split
from facebench.harness.run.metrics import bootstrap_ci, paired_bootstrap_drop, unpaired
from facebench.harness.run.rows import metric_rows
from facebench.harness.run.runner import not_applicable
from facebench.harness.run.sensitivity import UNPAIRED_REASON


def grouped_corpus(path, groups=30, per_group=3):
    """``groups`` groups of ``per_group`` images sharing a pair id; a group is all real or all fake."""
    rng = np.random.default_rng(0)
    records, images = [], []
    for g in range(groups):
        label = g % 2
        for k in range(per_group):
            records.append(Record(id=f"g{g:03d}-{k}", label=label, source="dataset", source_version="1", seed=g * 10 + k,
                                  pair=f"video-{g:03d}", artifacts={"gan": {"strength": 1.0}} if label else {}))
            images.append(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    return write_corpus(path, [Batch(np.stack(images), records)], [{"name": "dataset"}])


def test_unpaired_means_no_pair_holds_both_classes():
    assert unpaired([0, 1, 0, 1], ["a", "b", "c", "d"])
    assert unpaired([0, 0, 1, 1], ["a", "a", "b", "b"])  # groups, each of one class
    assert not unpaired([0, 1, 0, 1], ["a", "a", "b", "c"])


def test_the_split_by_pair_id_never_puts_a_group_on_both_sides(tmp_path):
    corpus = grouped_corpus(tmp_path / "c")
    assert not corpus.paired
    fit, calibration, test = three_way_split(corpus, SplitSpec(test_fraction=0.5, calibration_fraction=0.25, seed=3))
    sides = [set(part.manifest.column("pair").to_pylist()) for part in (fit, calibration, test)]
    assert all(len(side) > 0 for side in sides)
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    for part in (fit, calibration, test):  # whole groups: every image of a pair id on the side of its pair
        counts = {}
        for pair in part.manifest.column("pair").to_pylist():
            counts[pair] = counts.get(pair, 0) + 1
        assert set(counts.values()) == {3}


def test_the_bootstrap_of_an_unpaired_set_keeps_the_class_counts():
    # reals all wrong, fakes all right: plain accuracy is the fake share, fixed only when each
    # resample keeps the class counts (stratified); resampling units freely moves it
    labels = np.array([0] * 4 + [1] * 20)
    scores = np.ones(24)
    pairs = np.array([f"image-{i}" for i in range(24)])
    low, high = bootstrap_ci(labels, scores, pairs, ["accuracy"], n_resamples=300)["accuracy"]
    assert low == high == pytest.approx(20 / 24)
    low, high = bootstrap_ci(labels, scores, pairs, ["accuracy"], n_resamples=300, stratified=False)["accuracy"]
    assert low < 20 / 24 < high
    with pytest.raises(ValueError, match="stratified"):
        bootstrap_ci(labels, scores, np.array(["x", "y"] * 12), ["accuracy"], stratified=True)
    drop = paired_bootstrap_drop(labels, scores, scores * 0.4, pairs, "accuracy", n_resamples=100)
    assert drop["ci_low"] == drop["ci_high"] == pytest.approx(20 / 24 - 4 / 24)


def test_a_paired_set_resamples_by_pair_as_before():
    labels = np.array([0, 1] * 12)
    pairs = np.repeat([f"p{i}" for i in range(12)], 2)
    scores = np.linspace(0, 1, 24)
    auto = bootstrap_ci(labels, scores, pairs, ["auc"], n_resamples=200)
    plain = bootstrap_ci(labels, scores, pairs, ["auc"], n_resamples=200, stratified=False)
    assert auto == plain


def rows_of(corpus):
    return [{k: r[k] for k in ("id", "pair", "label", "artifact_names", "source")} for r in corpus.rows()]


def test_an_unpaired_corpus_has_no_sensitivity_rows_and_the_run_says_why(tmp_path):
    corpus = grouped_corpus(tmp_path / "c")
    rows = rows_of(corpus)
    scores = np.array([0.2 + 0.6 * r["label"] for r in rows])
    base = {"corpus": "videos", "train_corpus": "videos", "corpus_digest": corpus.digest, "generator": "dataset",
            "detector": "d", "perturbation": "none"}
    metrics = metric_rows(rows, scores, 0.5, BootstrapSpec(resamples=50), True, base)
    names = {m["metric"] for m in metrics}
    assert "auc" in names and not names & {"score_shift", "flip_rate"}
    assert {m["artifact"] for m in metrics} == {"all", "gan"}
    assert all(not math.isnan(m["ci_low"]) for m in metrics if m["metric"] == "auc")

    class Spec:
        label = "videos"

    class Protocols:
        sensitivity = True

    class FakeSuite:
        protocols = Protocols()

    info = not_applicable(FakeSuite(), [(Spec(), corpus)])  # type: ignore[arg-type]
    assert info == {"sensitivity_not_applicable": {"videos": UNPAIRED_REASON}}
    Protocols.sensitivity = False
    assert not_applicable(FakeSuite(), [(Spec(), corpus)]) == {}  # type: ignore[arg-type]
    run = {"run_id": "r", "suite": "s", "info": info}
    board = build_leaderboard(run, metrics)
    (note,) = [spec for spec in tables(board) if spec.key == "sensitivity"]
    assert note.rows == [] and note.notes == (f"corpus videos: sensitivity {UNPAIRED_REASON}",)
    assert "sensitivity not applicable: the corpus is unpaired" in to_markdown(board)


def test_the_html_report_says_sensitivity_does_not_apply(tmp_path):
    pytest.importorskip("matplotlib")
    from facebench.harness.data.results import Results
    from facebench.harness.report.html import render_report

    corpus = grouped_corpus(tmp_path / "c")
    rows = rows_of(corpus)
    scores = np.array([0.2 + 0.6 * r["label"] for r in rows])
    base = {"corpus": "videos", "train_corpus": "videos", "corpus_digest": corpus.digest, "generator": "dataset",
            "detector": "d", "perturbation": "none"}
    metrics = metric_rows(rows, scores, 0.5, BootstrapSpec(resamples=20), True, base)
    run = {"run_id": "r", "suite": "s", "status": "ok",
           "info": {"sensitivity_not_applicable": {"videos": UNPAIRED_REASON}}}
    page = render_report(Results(run, metrics, [], [], []))
    assert "Corpus videos: counterfactual sensitivity (score shift, flip rate) not applicable: the corpus is unpaired" in page
