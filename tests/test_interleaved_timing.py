"""The interleaved timing phase (harness/run/throughput.py): every corpus of a detector and the
calibration workload timed round by round in one phase; the per-round images per calibration
unit it records; the speed gate judging those when both runs have them; stores without them."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from facebench.harness.data.results import Results
from facebench.harness.data.store import SCHEMA_VERSION, Store
from facebench.harness.report.compare import PER_ROUND_UNITS_NOTE, compare
from facebench.harness.run import runner
from facebench.harness.run.throughput import (CALIBRATION_LANE, Lane, TimingJob, calibration_lane, calibration_units,
                                              lane_figures, round_order, run_rounds, time_jobs)

# ---------------------------------------------------------------------------- rounds


class FakeClock:
    """Times a call as the lane's nominal seconds (``costs`` by the called function) times the
    machine's slowness at that moment (``slowness(call index)``); records the call order."""

    def __init__(self, costs, slowness=lambda i: 1.0):
        self.costs, self.slowness, self.calls = costs, slowness, []

    def __call__(self, fn, batch):
        fn(batch)
        self.calls.append(fn)
        return self.costs[fn] * self.slowness(len(self.calls) - 1)


def noop(name):
    def fn(batch):
        return None

    fn.__name__ = name
    return fn


def lanes_abc(costs, sizes=(4, 4, 4), batches=(1, 1, 1)):
    fns = [noop(n) for n in "abc"]
    clock = FakeClock({fn: cost for fn, cost in zip(fns, costs)})
    lanes = [Lane(n, fn, [np.zeros((s, 1))] * b, s) for n, fn, s, b in zip("abc", fns, sizes, batches)]
    return lanes, clock


def test_rounds_call_every_lane_once_in_an_order_that_rotates():
    lanes, clock = lanes_abc((0.01, 0.01, 0.01))
    made = run_rounds(lanes, rounds=4, clock=clock)
    assert made == 4 and [len(lane.seconds) for lane in lanes] == [4, 4, 4]
    order = "".join(fn.__name__ for fn in clock.calls)
    assert order == "abc" "bca" "cab" "abc"
    assert [lane.name for lane in round_order(lanes, 5)] == ["c", "a", "b"]


def test_rounds_go_on_until_every_paced_lane_timed_min_seconds():
    lanes, clock = lanes_abc((0.01, 0.05, 0.5))
    lanes[2].paced = False  # like the calibration lane: timed alongside, not waited for
    made = run_rounds(lanes, rounds=2, min_seconds=0.2, clock=clock)
    assert made == 20  # lane a needs 20 rounds of 10 ms; lane b would be done after 4
    assert len(lanes[1].seconds) == 20 and sum(lanes[0].seconds) == pytest.approx(0.2)
    lanes, clock = lanes_abc((0.01, 0.05, 0.5))
    assert run_rounds(lanes, rounds=2, min_seconds=0.2, max_rounds=7, clock=clock) == 7
    lanes, clock = lanes_abc((0.01, 0.01, 0.01), batches=(1, 6, 2))
    assert run_rounds(lanes, rounds=3, clock=clock) == 6  # one call per batch of every lane at least


def test_a_failing_lane_leaves_the_phase_and_the_others_go_on():
    calls = []

    def broken(batch):
        calls.append(1)
        raise RuntimeError("boom")

    lanes, clock = lanes_abc((0.01, 0.01, 0.01))
    clock.costs[broken] = 0.01
    lanes[1] = Lane("b", broken, [np.zeros((4, 1))], 4)
    run_rounds(lanes, rounds=3, clock=clock)
    assert isinstance(lanes[1].error, RuntimeError) and len(calls) == 1 and lanes[1].seconds == []
    assert len(lanes[0].seconds) == len(lanes[2].seconds) == 3


def test_a_machine_that_drifts_slows_interleaved_lanes_alike_and_cancels_in_the_ratio():
    # the machine gets 2% slower with every call: timed one after the other, corpus b would read far slower
    fns = [noop("a"), noop("b")]
    calibration = calibration_lane(1)
    costs = {fns[0]: 0.01, fns[1]: 0.01, calibration.fn: 0.005}
    clock = FakeClock(costs, slowness=lambda i: 1.02**i)
    lanes = [Lane(n, fn, [np.zeros((8, 1))], 8) for n, fn in zip("ab", fns)]
    run_rounds([*lanes, calibration], rounds=9, clock=clock)
    a, b = (lane_figures(lane, 8, calibration) for lane in lanes)
    assert b["images_per_s"] / a["images_per_s"] == pytest.approx(1.0, abs=0.05)  # at most 2 calls apart
    assert a["round_images_per_s"][-1] < 0.7 * a["round_images_per_s"][0]  # the drift is in the raw rounds ...
    per_unit = a["round_images_per_unit"]
    assert max(per_unit) / min(per_unit) < 1.07  # ... but not in the ratio to the calibration lane beside them
    assert np.median(per_unit) == pytest.approx(800 / 200, rel=0.05)  # 800 images/s over 200 units/s
    # the same lanes timed one after the other, as runs did before: corpus b reads about 20% slower
    clock = FakeClock(costs, slowness=lambda i: 1.02**i)
    apart = [Lane(n, fn, [np.zeros((8, 1))], 8) for n, fn in zip("ab", fns)]
    for lane in apart:
        run_rounds([lane], rounds=9, clock=clock)
    assert apart[1].rates[4] / apart[0].rates[4] < 0.85


def test_calibration_units_match_a_detector_call():
    assert calibration_units([0.008, 0.012, 0.010], 0.002) == 5
    assert calibration_units([10.0], 0.002) == 32 and calibration_units([1e-5], 0.002) == 1
    assert calibration_units([], 0.002) == 4


# ---------------------------------------------------------------------------- jobs


class SleepPerImage:
    device = "cpu"

    def __init__(self, per_image=0.001):
        self.per_image, self.calls = per_image, 0

    def score(self, images):
        import time

        self.calls += 1
        time.sleep(self.per_image * len(images))
        return np.zeros(len(images))


class FakeSplit:
    root = "fake"

    def __init__(self, n):
        self.n = n

    def rows(self):
        return [{"id": str(i)} for i in range(self.n)]

    def load_images(self, rows):
        return np.zeros((len(rows), 8, 8, 3), np.uint8)

    def load_image_list(self, rows):
        return list(self.load_images(rows))


def test_time_jobs_gives_each_job_its_figures_with_per_round_units():
    jobs = [TimingJob("x @ a", "time x on a", SleepPerImage(), FakeSplit(12), 4, {"decode_images_per_s": 99.0}),
            TimingJob("x @ b", "time x on b", SleepPerImage(), FakeSplit(8), 4),
            TimingJob("x @ empty", "time x on empty", SleepPerImage(), FakeSplit(0), 4)]
    a, b, empty = time_jobs(jobs, warmup=1, rounds=3)
    assert a["rounds"] == b["rounds"] == 3 and a["images"] == 12 and b["images"] == 8 and a["batch_size"] == 4
    assert a["decode_images_per_s"] == 99.0 and b["decode_images_per_s"] is None
    assert jobs[0].detector.calls == jobs[1].detector.calls == 1 + 3
    for figures in (a, b):
        assert len(figures["round_images_per_unit"]) == 3 and all(v > 0 for v in figures["round_images_per_unit"])
        assert 100 < figures["images_per_s"] <= 1000  # 1 ms per image (sleep overshoots on a busy machine)
    assert "no test images" in str(empty)
    (alone,) = time_jobs(jobs[:1], rounds=3, calibrate=False)
    assert alone["round_images_per_unit"] is None


def test_a_run_times_every_corpus_of_a_detector_in_one_phase(tmp_path, monkeypatch):
    from facebench.harness.data.suite import load_suite

    path = tmp_path / "suite.toml"
    generator = """
[[generators]]
name = "parametric"
label = "{label}"
count = 12
batch_size = 12
seed_start = {seed}
[generators.params]
resolution = 64
artifacts = "upsampling"
"""
    path.write_text('name = "two"\n[split]\ntest_fraction = 0.5\n[bootstrap]\nresamples = 0\n'
                    "[throughput]\nrounds = 3\nmin_seconds = 0.0\n"
                    + generator.format(label="one", seed=0) + generator.format(label="two", seed=500)
                    + '\n[[detectors]]\nname = "spectrum"\nbatch_size = 5\n')
    phases = []
    real = runner.time_jobs

    def spy(jobs, **kwargs):
        phases.append([job.name for job in jobs])
        return real(jobs, **kwargs)

    monkeypatch.setattr(runner, "time_jobs", spy)
    result = runner.run_suite(load_suite(path), tmp_path / "results", show_progress=False)
    assert result.errors == []
    assert phases == [["spectrum @ one", "spectrum @ two"]]
    rows = [t for t in result.throughput if t["kind"] == "detector"]
    assert [r["name"] for r in rows] == ["spectrum @ one", "spectrum @ two"]
    assert rows[0]["rounds"] == rows[1]["rounds"] and all(len(r["round_images_per_unit"]) == r["rounds"] for r in rows)
    assert all(r["decode_images_per_s"] > 0 for r in rows)
    stored = [t for t in Store(tmp_path / "results" / "facebench.sqlite").throughput(result.run["run_id"])
              if t["kind"] == "detector"]
    assert stored[0]["round_images_per_unit"] == pytest.approx(rows[0]["round_images_per_unit"])


# ---------------------------------------------------------------------------- gate

ENV = {"cpu_model": "Test CPU", "gpu": None, "torch": "2.13.0", "git_commit": "abc123"}
RATES = np.array([1000, 1010, 990, 1005, 995, 1002, 998, 1003, 997])  # the detector on a quiet machine
UNITS = np.array([500, 498, 503, 501, 499, 502, 497, 500, 501])  # the calibration lane beside it


def speed_row(rates, units=None, device="cpu"):
    rates = [float(v) for v in rates]
    row = {"kind": "detector", "name": "det @ c", "device": device, "batch_size": 32, "images": 320,
           "seconds": 0.03, "images_per_s": float(np.median(rates)), "images_per_s_q1": float(np.percentile(rates, 25)),
           "images_per_s_q3": float(np.percentile(rates, 75)), "rounds": len(rates), "round_images_per_s": rates,
           "error": None}
    if units is not None:
        row["round_images_per_unit"] = [r / u for r, u in zip(rates, units)]
    return row


def results(run_id, rows):
    run = {"run_id": run_id, "suite": "t", "started": "2026-01-01T00:00:00+00:00",
           "finished": "2026-01-01T00:00:00+00:00", "status": "ok", "facebench_version": "0.1.0",
           "info": {"environment": dict(ENV), "calibration": {"workload": "fft256+conv5x5 v1", "units_per_s": 500.0}}}
    return Results(run, [], rows, [])


def gate(base_row, new_row):
    comparison = compare(results("base", [base_row]), results("new", [new_row]))
    return comparison, comparison.throughput_rows[0]


def test_a_uniform_machine_slowdown_passes_on_per_round_units():
    machine = 0.6  # the whole machine 40% slower in the current run: detector and calibration lane alike
    comparison, row = gate(speed_row(RATES, UNITS), speed_row(machine * RATES, machine * UNITS))
    assert row.per_round_units and not row.failed and PER_ROUND_UNITS_NOTE in row.reason
    assert row.base == pytest.approx(2.0, rel=0.02) and row.change == pytest.approx(0.0, abs=0.01)
    assert "judged on images per calibration unit" in comparison.markdown()
    # the same rounds judged raw (a baseline stored before schema 5) fail: the gate falls back exactly as before
    comparison, raw = gate(speed_row(RATES), speed_row(machine * RATES, machine * UNITS))
    assert not raw.per_round_units and raw.failed and "Mann-Whitney" in raw.reason
    assert PER_ROUND_UNITS_NOTE not in raw.reason and "calibration unit, round" not in comparison.markdown()


def test_runs_of_different_calibration_workloads_are_judged_on_raw_images_per_s():
    machine = 0.6
    base, new = results("base", [speed_row(RATES, UNITS)]), results("new", [speed_row(machine * RATES, machine * UNITS)])
    new.run["info"]["calibration"]["workload"] = "fft256+conv5x5 v2"
    comparison = compare(base, new)
    (row,) = comparison.throughput_rows
    assert not row.per_round_units and row.failed  # the machine's slowdown no longer cancels: raw figures
    assert "different calibration workloads (baseline fft256+conv5x5 v1, current fft256+conv5x5 v2)" in (
        comparison.calibration_note())


def test_a_thirty_percent_slower_detector_fails_on_per_round_units():
    # the detector is 30% slower; the calibration lane beside it is not, so the ratio drops 30%
    _, row = gate(speed_row(RATES, UNITS), speed_row(0.7 * RATES, UNITS))
    assert row.per_round_units and row.failed and "slower by 30%" in row.reason and "Mann-Whitney" in row.reason
    # and on a machine that is also 40% slower in that run
    _, row = gate(speed_row(RATES, UNITS), speed_row(0.7 * 0.6 * RATES, 0.6 * UNITS))
    assert row.failed and row.change == pytest.approx(-0.3, abs=0.01)


def test_drift_inside_a_run_cancels_in_per_round_units():
    drift = np.linspace(1.0, 0.55, len(RATES))  # the machine slows down round after round in the current run
    _, row = gate(speed_row(RATES, UNITS), speed_row(RATES * drift, UNITS * drift))
    assert row.per_round_units and not row.failed


# ---------------------------------------------------------------------------- store


def test_a_schema_3_store_reads_and_gains_the_per_round_units(tmp_path):
    path = tmp_path / "fb.sqlite"
    columns = ("run_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, device TEXT NOT NULL,"
               " batch_size INTEGER NOT NULL, images INTEGER NOT NULL, seconds REAL NOT NULL, images_per_s REAL,"
               " latency_p50_ms REAL, latency_p95_ms REAL, latency_p99_ms REAL, peak_rss_mb REAL,"
               " decode_images_per_s REAL, error TEXT, rounds INTEGER, images_per_s_q1 REAL, images_per_s_q3 REAL,"
               " round_images_per_s TEXT")
    with sqlite3.connect(path) as connection:  # the throughput table as schema 3 wrote it
        connection.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('schema_version', '3');"
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, suite TEXT NOT NULL, started TEXT NOT NULL,"
            " finished TEXT NOT NULL, status TEXT NOT NULL, facebench_version TEXT NOT NULL, info TEXT NOT NULL);"
            f"CREATE TABLE throughput ({columns});"
            "INSERT INTO runs VALUES ('old', 's', 'a', 'b', 'ok', '0.1.0', '{}');"
            "INSERT INTO throughput VALUES ('old', 'detector', 'dct @ c', 'cpu', 32, 64, 0.1, 640.0, 1.5, 1.6, 1.7,"
            " 500.0, 900.0, NULL, 3, 630.0, 650.0, '[630.0, 640.0, 650.0]');"
        )
    store = Store(path)
    (old,) = store.throughput("old")
    assert old["round_images_per_s"] == [630.0, 640.0, 650.0] and old["round_images_per_unit"] is None
    new_row = speed_row(RATES, UNITS)
    store.write_run({"run_id": "new", "suite": "s", "started": "c", "finished": "d", "status": "ok",
                     "facebench_version": "0.1.0", "info": {}}, [], [new_row])
    (new,) = store.throughput("new")
    assert new["round_images_per_unit"] == pytest.approx(new_row["round_images_per_unit"])
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "5"
    assert SCHEMA_VERSION == 5
    # an old run against a new one: judged on images/s, as before
    old_results = Results({"run_id": "old", "info": {"environment": ENV}}, [], [{**old, "name": "det @ c"}], [])
    (row,) = compare(old_results, results("new", [{**new_row, "images_per_s": 640.0}])).throughput_rows
    assert not row.per_round_units and row.base == 640.0


def test_the_calibration_lane_is_named_after_the_workload():
    assert CALIBRATION_LANE == calibration_lane(2).name and calibration_lane(2).size == 2
    assert not calibration_lane(2).paced


def test_a_schema_4_store_gains_the_per_round_units_and_keeps_its_corpora(tmp_path):
    from facebench.harness.data.corpus_record import CorpusRecord

    path = tmp_path / "fb.sqlite"
    run = {"run_id": "old", "suite": "s", "started": "a", "finished": "b", "status": "ok",
           "facebench_version": "0.1.0", "info": {}}
    corpora = [CorpusRecord("faces", "d1" * 32, "/data/corpora/faces", "")]
    Store(path).write_run(run, [], [speed_row(RATES)], [], corpora)
    with sqlite3.connect(path) as connection:  # back to schema 4: no per-round units column
        connection.executescript("ALTER TABLE throughput DROP COLUMN round_images_per_unit;"
                                 "UPDATE meta SET value = '4' WHERE key = 'schema_version';")
    store = Store(path)
    (old,) = store.throughput("old")
    assert old["round_images_per_unit"] is None and old["round_images_per_s"] == pytest.approx(list(RATES))
    assert store.corpora("old") == corpora  # not copied a second time from the run's info
    store.write_run({**run, "run_id": "new"}, [], [speed_row(RATES, UNITS)])
    (new,) = store.throughput("new")
    assert new["round_images_per_unit"] == pytest.approx(list(RATES / UNITS))
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "5"
