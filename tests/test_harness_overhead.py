"""benchmarks/harness_overhead.py's bare loop: it samples the machine for as long as the runner's
timing phase does (``min_seconds``), not for a fixed number of rounds alone."""

from __future__ import annotations

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

    def score(self, batch):
        self.calls += 1
        self.clock.now += self.seconds * len(batch)


@pytest.fixture
def clock(overhead, monkeypatch):
    fake = Clock()
    monkeypatch.setattr(overhead.time, "perf_counter", fake)
    return fake


def test_without_min_seconds_the_bare_loop_times_the_rounds_asked(overhead, clock):
    detector = SteppingDetector(clock, 0.001)
    speed = overhead.bare_loop(detector, [[0] * 10, [0] * 10], warmup=1, rounds=5)
    assert detector.calls == 1 + 5 * 2
    assert speed == pytest.approx(1000.0)


def test_the_bare_loop_goes_on_until_min_seconds_are_timed(overhead, clock):
    detector = SteppingDetector(clock, 0.001)  # a round of 20 images takes 0.02 s
    overhead.bare_loop(detector, [[0] * 10, [0] * 10], warmup=1, rounds=5, min_seconds=0.5)
    assert detector.calls == 1 + 25 * 2  # 25 rounds of 0.02 s reach 0.5 s


def test_the_bare_loop_stops_at_max_rounds(overhead, clock):
    detector = SteppingDetector(clock, 0.000001)
    overhead.bare_loop(detector, [[0] * 10], warmup=0, rounds=5, min_seconds=60.0, max_rounds=40)
    assert detector.calls == 40
