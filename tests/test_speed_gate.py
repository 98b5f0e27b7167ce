"""The speed gate of `facebench compare`: a drop is judged against the measured spread of rounds,
and figures from different CPUs are related through the calibration workload."""

from __future__ import annotations

import numpy as np
import pytest

from facebench.harness.report.compare import compare, judge_speed
from facebench.harness.data.results import Results

ENV = {"cpu_model": "Test CPU", "gpu": None, "torch": "2.13.0", "git_commit": "abc123"}


def figures(rounds):
    rounds = [float(v) for v in rounds]
    return {"median": float(np.median(rounds)), "rounds": rounds,
            "iqr": (float(np.percentile(rounds, 25)), float(np.percentile(rounds, 75)))}


def speed_row(rounds, detector="det", device="cpu"):
    f = figures(rounds)
    return {"kind": "detector", "name": f"{detector} @ c", "device": device, "batch_size": 32, "images": 360,
            "seconds": 360 / f["median"], "images_per_s": f["median"], "images_per_s_q1": f["iqr"][0],
            "images_per_s_q3": f["iqr"][1], "rounds": len(rounds), "round_images_per_s": f["rounds"], "error": None}


def results(run_id, rows, env=ENV, calibration=None):
    info = {"environment": dict(env)}
    if calibration is not None:
        info["calibration"] = {"workload": "fft256+conv5x5 v1", "units_per_s": calibration}
    run = {"run_id": run_id, "suite": "t", "started": "2026-01-01T00:00:00+00:00",
           "finished": "2026-01-01T00:00:00+00:00", "status": "ok", "facebench_version": "0.1.0", "info": info}
    return Results(run, [], rows, [])


TIGHT = [1000, 1010, 990, 1005, 995, 1002, 998]  # a quiet machine: +-1%


def test_an_unchanged_build_passes():
    verdict = judge_speed(figures(TIGHT), figures([1003, 992, 1008, 1000, 996, 1001, 1006]), 0.2)
    assert not verdict["failed"] and verdict["reason"] in ("within tolerance", "faster")


def test_thirty_percent_slower_with_tight_rounds_fails():
    slower = [0.7 * v for v in TIGHT]
    verdict = judge_speed(figures(TIGHT), figures(slower), 0.2)
    assert verdict["failed"] and verdict["test"] == "mann-whitney" and verdict["p_value"] < 0.05
    assert "slower by 30%" in verdict["reason"]


def test_a_drop_inside_noisy_rounds_passes_within_the_spread():
    # the medians differ by 25% (beyond a 20% tolerance, which alone would fail), but the rounds interleave
    base = [1000, 600, 1400, 800, 1200, 700, 1300]
    new = [750, 1350, 500, 1250, 650, 900, 550]
    assert np.median(new) / np.median(base) - 1 == pytest.approx(-0.25)
    verdict = judge_speed(figures(base), figures(new), 0.2)
    assert not verdict["failed"] and verdict["p_value"] >= 0.05 and "within the measured spread" in verdict["reason"]


def test_too_few_rounds_for_the_rank_test_use_the_iqrs():
    # 3 rounds each: the smallest one-sided Mann-Whitney p is 1/20 = 0.05, never below the level
    slow = judge_speed(figures([1000, 1010, 990]), figures([700, 705, 695]), 0.2)
    assert slow["failed"] and slow["test"] == "iqr"
    overlapping = judge_speed(figures([1000, 400, 1600]), figures([700, 300, 1500]), 0.2)
    assert not overlapping["failed"] and overlapping["test"] == "iqr"


def test_rows_without_rounds_fall_back_to_the_tolerance():
    old = {"median": 1000.0, "rounds": [], "iqr": (float("nan"), float("nan"))}
    new = {"median": 700.0, "rounds": [], "iqr": (float("nan"), float("nan"))}
    verdict = judge_speed(old, new, 0.2)
    assert verdict["failed"] and verdict["test"] == "tolerance"
    assert not judge_speed(old, {**new, "median": 900.0}, 0.2)["failed"]


def test_compare_uses_the_rounds_of_stored_rows():
    base = results("base", [speed_row(TIGHT), speed_row(TIGHT, "noisy")])
    current = results("new", [speed_row([0.7 * v for v in TIGHT]),
                              speed_row([750, 1350, 500, 1250, 650, 900, 550], "noisy")])
    comparison = compare(base, current)
    rows = {r.name: r for r in comparison.throughput_rows}
    assert rows["det @ c"].failed and "Mann-Whitney" in rows["det @ c"].reason
    assert not rows["noisy @ c"].failed
    text = comparison.markdown()
    assert "base IQR" in text and "Mann-Whitney U" in text
    assert not compare(base, results("again", [speed_row(TIGHT), speed_row(TIGHT, "noisy")])).failed


def test_runs_from_different_cpus_are_compared_per_calibration_unit():
    other = {**ENV, "cpu_model": "Half-speed CPU"}
    base = results("base", [speed_row(TIGHT)], calibration=500.0)
    half = results("new", [speed_row([0.5 * v for v in TIGHT])], env=other, calibration=250.0)
    comparison = compare(base, half)
    (row,) = comparison.throughput_rows
    assert row.normalised and not row.failed and row.base == pytest.approx(2.0, rel=0.02)
    assert "images per calibration unit" in comparison.markdown()
    # the same figures without calibration: a 50% drop
    assert compare(results("base", [speed_row(TIGHT)]), results("new", half.throughput, env=other)).failed
    # on the same CPU the raw figures are compared, whatever the calibration says
    same_cpu = compare(base, results("new", half.throughput, calibration=250.0))
    assert same_cpu.failed and not same_cpu.throughput_rows[0].normalised
    assert "images per calibration unit" not in same_cpu.calibration_note()  # only the busier-machine caution


def test_gpu_rows_are_never_normalised_by_the_cpu_workload():
    other = {**ENV, "cpu_model": "Half-speed CPU"}
    base = results("base", [speed_row(TIGHT, device="cuda")], calibration=500.0)
    current = results("new", [speed_row(TIGHT, device="cuda")], env=other, calibration=250.0)
    (row,) = compare(base, current).throughput_rows
    assert not row.normalised and not row.failed


def test_a_busier_machine_on_the_same_cpu_is_pointed_out():
    base = results("base", [speed_row(TIGHT)], calibration=500.0)
    busy = results("new", [speed_row([0.6 * v for v in TIGHT])], calibration=300.0)
    comparison = compare(base, busy)
    assert comparison.failed  # the verdict stands; the summary says why it may be the machine's
    assert "changed by -40% between the runs" in comparison.markdown()
    steady = compare(base, results("new", [speed_row(TIGHT)], calibration=490.0))
    assert steady.calibration_note() is None
