"""What `facebench compare` calls a change within its tolerance: never a gain it did not judge."""

from __future__ import annotations

from facebench.harness.report.compare import compare, judge_speed
from tests.test_compare_like import corpus_rows, run_of, scores_of


def figures(rounds):
    rounds = sorted(float(v) for v in rounds)
    return {"median": rounds[len(rounds) // 2], "rounds": rounds, "iqr": (rounds[1], rounds[-2])}


def test_a_small_speed_gain_inside_the_tolerance_is_not_called_faster():
    """Seen: two runs of one build, +0.4% with overlapping IQRs, printed 'pass: faster'."""
    base = figures([2042.8, 2055.2, 2082.8, 2050.0, 2060.0])
    new = figures([1948.4, 2064.1, 2080.2, 2055.0, 2070.0])
    verdict = judge_speed(base, new, 0.2)
    assert not verdict["failed"]
    assert verdict["reason"] == "within tolerance"


def test_a_speed_gain_beyond_the_tolerance_says_by_how_much():
    base = figures([1000, 1010, 990, 1005, 995])
    new = figures([1300, 1310, 1290, 1305, 1295])
    verdict = judge_speed(base, new, 0.2)
    assert not verdict["failed"] and verdict["reason"] == "faster by 30% (> 20%)"


def test_a_small_metric_gain_inside_the_tolerance_is_not_called_better():
    """A gain of 0.001 AUC within the 0.02 tolerance was printed 'pass: better', unjudged."""
    real, fake = scores_of(seed=5)
    base = corpus_rows("faces", "f" * 64, real, fake)
    new = corpus_rows("faces", "f" * 64, real, fake + 0.002)
    comparison = compare(run_of("a", [base]), run_of("b", [new]))
    auc = next(r for r in comparison.metric_rows if r.metric == "auc")
    assert 0 < auc.new - auc.base < 0.02
    assert auc.reason == "within tolerance"


def test_a_current_run_without_throughput_says_why_its_speed_rows_are_missing():
    """Seen: comparing a `run --no-throughput` with a baseline failed on 'missing in current' with no hint."""
    from tests.test_speed_gate import results, speed_row

    baseline = results("a", [speed_row([1000, 1010, 990])])
    comparison = compare(baseline, results("b", []))
    (row,) = comparison.throughput_rows
    assert row.status == "fail"
    assert "measured no detector throughput" in row.reason and "compare --no-throughput" in row.reason
    kept = compare(baseline, results("b", [speed_row([1000, 1010, 990], detector="other")]))
    lost = next(r for r in kept.throughput_rows if r.status == "fail")
    assert lost.reason == "missing in current"
