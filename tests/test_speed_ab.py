"""`facebench speed-ab`: two builds timed side by side in worker processes, call by call, and the
paired verdict on their round ratios."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facebench.harness.cli import app
from facebench.harness.data.suite import parse_suite
from facebench.harness.report.speed_ab import judge, judge_row, lane_notes, markdown
from facebench.harness.run.ab_timing import (ABRow, WorkerError, start_worker, suite_lanes, time_ab, worker_command,
                                             worker_environment)
from facebench.harness.run.speed_worker import PROTOCOL, serve

SPEED_GATE = Path(__file__).resolve().parents[1] / "benchmarks" / "speed_gate.py"


def tiny_suite(detectors=("spectrum", "dct")):
    return parse_suite({
        "name": "ab", "split": {"test_fraction": 0.5}, "bootstrap": {"resamples": 0},
        "throughput": {"rounds": 3, "min_seconds": 0.0},
        "generators": [{"name": "parametric", "label": "faces", "count": 16, "batch_size": 16,
                        "params": {"resolution": 64, "artifacts": "upsampling"}}],
        "detectors": [{"name": name, "batch_size": 8} for name in detectors],
    }, "test")


@pytest.fixture(scope="module")
def lanes(tmp_path_factory):
    return suite_lanes(tiny_suite(), tmp_path_factory.mktemp("ab"))


def row(ratios, name="det @ c", base=100.0):
    return ABRow(name, baseline=[base] * len(ratios), current=[base * r for r in ratios],
                 baseline_lane={"device": "cpu", "batch_size": 8, "images": 8},
                 current_lane={"device": "cpu", "batch_size": 8, "images": 8})


# ---------------------------------------------------------------- the verdict


def test_an_unchanged_build_passes():
    verdict = judge_row(row([1.01, 0.99, 1.02, 0.98, 1.0, 1.03, 0.97, 1.01]), 0.2)
    assert not verdict.failed and abs(verdict.change) < 0.02


def test_a_build_thirty_percent_slower_fails_significantly():
    verdict = judge_row(row([0.70, 0.72, 0.69, 0.71, 0.68, 0.70, 0.73, 0.70]), 0.2)
    assert verdict.failed and verdict.p_value < 0.05
    assert "slower by 30.0% (> 20%); significant (8 paired rounds, sign test p = 0.0039)" == verdict.reason


def test_one_outlying_round_neither_hides_nor_makes_a_slowdown():
    # a busy machine slowed one baseline call: its ratio is 3.0, yet 7 of 8 rounds are slower
    slower = judge_row(row([0.70, 0.72, 3.0, 0.71, 0.68, 0.70, 0.73, 0.70]), 0.2)
    assert slower.failed and slower.p_value == pytest.approx(9 / 256)
    # and one slowed current call does not fail an unchanged build
    assert not judge_row(row([1.01, 0.99, 1.02, 0.25, 1.0, 1.03, 0.97, 1.01]), 0.2).failed


def test_a_drop_beyond_the_tolerance_that_the_rounds_do_not_carry_passes():
    # median 0.75, but only 5 of 9 rounds slower: as likely as chance
    verdict = judge_row(row([0.5, 0.6, 0.7, 0.75, 0.76, 1.2, 1.3, 1.4, 1.5]), 0.2)
    assert verdict.ratio == pytest.approx(0.76) and not verdict.failed and verdict.p_value >= 0.05
    assert "but not significant" in verdict.reason


def test_too_few_rounds_for_the_test_leave_the_tolerance_alone_and_say_so():
    verdict = judge_row(row([0.6, 0.62, 0.61]), 0.2)
    assert verdict.failed and "too few for the paired test: tolerance alone" in verdict.reason


def test_gains_never_fail_and_the_tolerance_is_checked():
    assert not judge_row(row([2.0] * 8), 0.2).failed
    with pytest.raises(ValueError, match="tolerance"):
        judge([row([1.0])], 1.5)


def test_the_summary_names_failures_and_where_the_builds_timed_different_work():
    slow = row([0.7] * 6, name="a @ c")
    slow.current_lane = {**slow.current_lane, "batch_size": 16}
    rows = [slow, row([1.0] * 6, name="b @ c")]
    text = markdown(judge(rows, 0.2), rows, 0.2, {"baseline": "/b/python", "current": "/c/python"})
    assert text.startswith("## facebench speed-ab: FAIL (1 of 2 rows")
    assert "alternating which goes first; ratio" in text  # rows without sessions: nothing said of them
    for r in rows:
        r.sessions = [0, 0, 1, 1, 2, 2]
    assert "alternating which goes first, in 3 sessions of fresh workers; ratio" in \
        markdown(judge(rows, 0.2), rows, 0.2, {})
    assert "| a @ c | 6 | 100.0 | 70.0 | 0.700 [0.700, 0.700] | **fail**" in text
    assert lane_notes(rows) == ["a @ c: the builds timed different work (batch_size 8 vs 16)"]


# ---------------------------------------------------------------- the worker


def answers(*requests):
    out = io.StringIO()
    serve(io.StringIO("".join(json.dumps(r) + "\n" for r in requests)), out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_the_worker_answers_each_request_and_reports_errors_in_one_line(lanes):
    hello, loaded, call, bad_lane, unknown = answers(
        {"op": "hello"}, {"op": "load", "lanes": lanes[:1]}, {"op": "call", "lane": 0}, {"op": "call", "lane": 5},
        {"op": "nap"}, {"op": "quit"}, {"op": "hello"})  # nothing is answered after quit
    assert hello["protocol"] == PROTOCOL
    assert hello["module"].endswith("speed_worker.py")
    assert loaded["lanes"] == [{"name": "spectrum @ faces", "device": "cpu", "batch_size": 8, "images": 8}]
    assert call["seconds"] > 0
    assert bad_lane == {"error": "ValueError: no lane 5: 1 loaded"}
    assert unknown == {"error": "ValueError: unknown request 'nap'"}


def test_a_lane_on_a_missing_corpus_is_an_error_answer(lanes, tmp_path):
    (answer,) = answers({"op": "load", "lanes": [{**lanes[0], "corpus": str(tmp_path / "gone")}]})
    assert "error" in answer and "gone" in answer["error"]


# ---------------------------------------------------------------- two builds


def test_two_workers_of_one_build_time_every_lane_in_paired_rounds(lanes):
    rows = time_ab(lanes, {"baseline": worker_command(sys.executable), "current": worker_command(sys.executable)},
                   rounds=4, min_seconds=0.0)
    assert [r.name for r in rows] == ["spectrum @ faces", "dct @ faces"]
    for r in rows:
        assert len(r.baseline) == len(r.current) == len(r.ratios) == 4
        assert r.baseline_lane == r.current_lane
        assert all(rate > 0 for rate in r.baseline + r.current)
    (note,) = lane_notes(rows)
    assert note.startswith("both builds ran ") and "speed_worker.py: one build timed against itself" in note


def test_a_slower_build_is_caught_and_the_same_build_passes(lanes):
    plain = worker_command(sys.executable)
    slowed = [sys.executable, str(SPEED_GATE), "--worker", "--slowdown", "0.6"]
    same = judge(time_ab(lanes[:1], {"baseline": plain, "current": plain}, rounds=9, min_seconds=0.0), 0.2)
    slower = judge(time_ab(lanes[:1], {"baseline": plain, "current": slowed}, rounds=9, min_seconds=0.0), 0.2)
    assert not same[0].failed, same[0].reason
    assert slower[0].failed and slower[0].ratio < 0.6, slower[0].reason


FAKE_WORKER = """
import json, os, sys
log = open(os.environ["FAKE_LOG"], "a")
starts = sum(1 for line in open(os.environ["FAKE_LOG"]) if line.startswith(os.environ["FAKE_SIDE"] + " hello"))
for line in sys.stdin:
    request = json.loads(line)
    log.write(os.environ["FAKE_SIDE"] + " " + request["op"] + " " + str(request.get("lane", "")) + "\\n")
    log.flush()
    if request["op"] == "hello":
        print(json.dumps({"protocol": %d, "facebench": "fake"}), flush=True)
    elif request["op"] == "load":
        size = int(os.environ.get("FAKE_BATCH_" + str(starts), "8"))
        print(json.dumps({"lanes": [{"name": l["name"], "device": "cpu", "batch_size": size, "images": 8}
                                    for l in request["lanes"]]}), flush=True)
    elif request["op"] == "call":
        print(json.dumps({"seconds": float(os.environ["FAKE_SECONDS"])}), flush=True)
    else:
        break
""" % PROTOCOL


def fake_commands(tmp_path, monkeypatch, baseline_seconds=0.1, current_seconds=0.1):
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    commands = {side: [sys.executable, str(script)] for side in ("baseline", "current")}
    envs = {"baseline": {"FAKE_SIDE": "baseline", "FAKE_SECONDS": str(baseline_seconds)},
            "current": {"FAKE_SIDE": "current", "FAKE_SECONDS": str(current_seconds)}}
    return commands, envs, log


def test_the_rounds_are_shared_among_sessions_of_fresh_workers_each_warmed_up_lane_by_lane(tmp_path, monkeypatch):
    commands, envs, log = fake_commands(tmp_path, monkeypatch, 0.1, 0.2)
    lanes = [{"name": "a"}, {"name": "b"}]
    rows = time_ab(lanes, commands, rounds=6, min_seconds=0.0, envs=envs, sessions=3, warmup_calls=2)
    for row in rows:
        assert row.sessions == [0, 0, 1, 1, 2, 2]
        assert row.baseline == [80.0] * 6 and row.current == [40.0] * 6 and row.ratios == [0.5] * 6
    assert lane_notes(rows) == []  # workers that do not say which file they run are not called one build
    lines = log.read_text().splitlines()
    assert [line for line in lines if "hello" in line] == ["baseline hello ", "current hello "] * 3
    first_session = lines[:lines.index("baseline hello ", 1)]
    calls = [line for line in first_session if " call " in line]
    # lane a: two untimed calls per side (the second pair current first), then 2 rounds alternating who goes first;
    # then the same for lane b, whose rounds go on alternating where lane a's left off
    assert calls == ["baseline call 0", "current call 0", "current call 0", "baseline call 0",
                     "baseline call 0", "current call 0", "current call 0", "baseline call 0",
                     "baseline call 1", "current call 1", "current call 1", "baseline call 1",
                     "baseline call 1", "current call 1", "current call 1", "baseline call 1"]


def test_min_seconds_is_reached_by_each_session_in_its_share(tmp_path, monkeypatch):
    commands, envs, _ = fake_commands(tmp_path, monkeypatch, 0.125, 0.125)
    (row,) = time_ab([{"name": "a"}], commands, rounds=2, min_seconds=1.0, envs=envs, sessions=2, warmup_calls=0)
    assert row.sessions == [0] * 4 + [1] * 4  # 0.5 s (4 calls of 0.125 s) per side in each session
    assert row.seconds("baseline") == pytest.approx(1.0)


def test_fewer_rounds_than_sessions_start_only_as_many_sessions_as_rounds(tmp_path, monkeypatch):
    commands, envs, log = fake_commands(tmp_path, monkeypatch)
    (row,) = time_ab([{"name": "a"}], commands, rounds=2, min_seconds=0.0, envs=envs, sessions=5, warmup_calls=0)
    assert row.sessions == [0, 1]
    assert log.read_text().count("hello") == 4


def test_a_lane_that_a_later_session_loads_otherwise_is_an_error(tmp_path, monkeypatch):
    commands, envs, _ = fake_commands(tmp_path, monkeypatch)
    envs["current"]["FAKE_BATCH_1"] = "16"  # the current build's second worker loads batches of 16
    with pytest.raises(WorkerError, match="the current build loaded a as .*'batch_size': 16.* in one session and as "
                                          ".*'batch_size': 8"):
        time_ab([{"name": "a"}], commands, rounds=2, min_seconds=0.0, envs=envs, sessions=2, warmup_calls=0)


def test_bad_settings_are_refused_before_any_worker_starts():
    with pytest.raises(ValueError, match="need rounds >= 1, sessions >= 1 and warmup_calls >= 0; got 3, 0, 1"):
        time_ab([], {}, rounds=3, sessions=0, warmup_calls=1)


def test_a_worker_that_dies_is_named_with_its_last_words():
    command = [sys.executable, "-c", "import sys; sys.stderr.write('no facebench here\\n'); sys.exit(3)"]
    with pytest.raises(WorkerError, match=r"the baseline build's worker .* exited with code 3 during 'hello': "
                                          r"no facebench here \(does that interpreter hold a facebench"):
        start_worker("baseline", command)


def test_a_worker_of_another_protocol_is_refused(tmp_path):
    script = tmp_path / "old_worker.py"
    script.write_text("import sys, json\nfor line in sys.stdin:\n"
                      "    print(json.dumps({'protocol': 0, 'facebench': '0.0.1'}), flush=True)\n")
    with pytest.raises(WorkerError, match="speaks speed-worker protocol 0, this build 1"):
        start_worker("current", [sys.executable, str(script)])


def test_workers_get_sleeping_openmp_threads_and_fixed_malloc_thresholds_unless_told_otherwise(monkeypatch):
    for key in ("OMP_WAIT_POLICY", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(key, raising=False)
    env = worker_environment()
    assert (env["OMP_WAIT_POLICY"], env["MALLOC_MMAP_THRESHOLD_"], env["MALLOC_TRIM_THRESHOLD_"]) == \
        ("PASSIVE", str(2**30), str(2**31))
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    env = worker_environment({"X": "1"})
    assert (env["OMP_WAIT_POLICY"], env["MALLOC_MMAP_THRESHOLD_"], env["X"]) == ("ACTIVE", "131072", "1")


def test_the_command_refuses_a_missing_interpreter(tmp_path):
    result = CliRunner().invoke(app, ["speed-ab", "--baseline-python", str(tmp_path / "nope"), "--results",
                                      str(tmp_path), "--no-progress"])
    assert result.exit_code == 2
    assert f"--baseline-python {tmp_path / 'nope'}: no executable interpreter there" in result.output
