"""benchmarks/harness_overhead.py's bare loop makes the calls the runner's timing phase makes: one
``score`` call per round on the next batch, at least ``rounds`` and one per batch, more until
``min_seconds`` are timed, so both sides of a pair sample the machine alike."""

from __future__ import annotations

import sys

import pytest

from tests.scripts import load_benchmark


@pytest.fixture(scope="module")
def overhead():
    return load_benchmark("harness_overhead")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SteppingDetector:
    """Every score call advances the clock by ``seconds`` per image."""

    def __init__(self, clock: Clock, seconds: float):
        self.clock, self.seconds, self.calls = clock, seconds, 0
        self.batches: list[int] = []

    def score(self, batch):
        self.calls += 1
        self.batches.append(id(batch))
        self.clock.now += self.seconds * len(batch)


@pytest.fixture
def clock(overhead, monkeypatch):
    fake = Clock()
    monkeypatch.setattr(overhead.time, "perf_counter", fake)
    return fake


def test_without_min_seconds_the_bare_loop_makes_one_call_per_round(overhead, clock):
    detector = SteppingDetector(clock, 0.001)
    speed = overhead.bare_loop(detector, [[0] * 10, [0] * 10], warmup=1, rounds=5)
    assert detector.calls == 1 + 5
    assert speed == pytest.approx(1000.0)


def test_the_bare_loop_makes_at_least_one_call_per_batch_in_turn(overhead, clock):
    detector = SteppingDetector(clock, 0.001)
    batches = [[0] * 10 for _ in range(7)]
    overhead.bare_loop(detector, batches, warmup=0, rounds=5)
    assert detector.batches == [id(batch) for batch in batches]


def test_the_bare_loop_goes_on_until_min_seconds_are_timed(overhead, clock):
    detector = SteppingDetector(clock, 0.001)  # a call of 10 images takes 0.01 s
    overhead.bare_loop(detector, [[0] * 10, [0] * 10], warmup=1, rounds=5, min_seconds=0.5)
    assert detector.calls == 1 + 50  # 50 calls of 0.01 s reach 0.5 s


def test_the_bare_loop_reports_the_median_call(overhead, clock):
    seconds_per_image = iter([0.001, 0.001, 0.004, 0.001, 0.002])  # call by call

    class UnevenDetector:
        def score(self, batch):
            clock.now += next(seconds_per_image) * len(batch)

    speed = overhead.bare_loop(UnevenDetector(), [[0] * 10], warmup=0, rounds=5)
    assert speed == pytest.approx(1000.0)  # calls of 1000, 1000, 250, 1000, 500 images/s


def test_the_bare_loop_stops_at_max_rounds(overhead, clock):
    detector = SteppingDetector(clock, 0.000001)
    overhead.bare_loop(detector, [[0] * 10], warmup=0, rounds=5, min_seconds=60.0, max_rounds=40)
    assert detector.calls == 40


def test_every_runner_measurement_lies_between_two_bare_ones(overhead, clock):
    calls = []

    def runner():
        calls.append("runner")
        return 1.0

    def bare():
        calls.append("bare")
        return 1.0

    runs, bares = overhead.bracketed(runner, bare, pairs=3)
    assert calls == ["bare", "runner", "bare", "runner", "bare", "runner", "bare"]
    assert (len(runs), len(bares)) == (3, 4)


def test_more_pairs_are_taken_until_the_seconds_have_gone_by(overhead, clock):
    def runner():
        clock.now += 1.0
        return 1.0

    def bare():
        clock.now += 1.0
        return 1.0

    runs, _ = overhead.bracketed(runner, bare, pairs=2, seconds=10.0)
    assert len(runs) == 5  # the first bare one, then 5 pairs of 2 s reach 11 s
    runs, _ = overhead.bracketed(runner, bare, pairs=2, seconds=1000.0, max_pairs=7)
    assert len(runs) == 7


def test_a_pair_s_ratio_is_over_the_bare_figures_around_it(overhead):
    # the machine speeds up from 100 to 144 while the runner, at 0.9 of bare, measures 108
    assert overhead.bracketed_ratios([108.0], [100.0, 144.0]) == [pytest.approx(0.9)]
    assert overhead.bracketed_ratios([1.0, 2.0], [1.0, 1.0, 4.0]) == [pytest.approx(1.0), pytest.approx(1.0)]


@pytest.mark.parametrize("argument", [["--pairs", "0"], ["--rounds", "0"], ["--seconds", "-1"]])
def test_a_measurement_without_pairs_or_rounds_is_refused(overhead, monkeypatch, capsys, argument):
    monkeypatch.setattr(sys, "argv", ["harness_overhead.py", *argument])
    with pytest.raises(SystemExit) as stop:
        overhead.main()
    assert stop.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err
