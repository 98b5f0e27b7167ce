"""The runner's timing phase: detector speed measured in every run on in-memory test images,
with its spread, never served from the task cache, and skipped only when asked."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from facebench.harness.data.corpus import Corpus
from facebench.harness.run.fitting import three_way_split
from facebench.harness.run.runner import run_suite
from facebench.harness.run.throughput import time_detector
from facebench.harness.data.store import Store
from facebench.harness.data.suite import SplitSpec, ThroughputSpec, load_suite

SUITE = """
name = "phase"
[split]
test_fraction = 0.5
[bootstrap]
resamples = 0
[throughput]
rounds = 3
warmup = 1
min_seconds = 0.0
{extra}

[[generators]]
name = "parametric"
label = "up"
count = 12
batch_size = 12
[generators.params]
resolution = 64
artifacts = "upsampling"

[[detectors]]
name = "spectrum"
batch_size = 5
"""


def suite_at(tmp_path, extra=""):
    path = tmp_path / "suite.toml"
    path.write_text(SUITE.format(extra=extra))
    return load_suite(path)


class SleepPerImage:
    """Sleeps 2 ms per image; the first call sleeps 200 ms more (a cold start the warm-up must absorb)."""

    device = "cpu"

    def __init__(self):
        self.calls = 0

    def score(self, images):
        self.calls += 1
        time.sleep(0.002 * len(images) + (0.2 if self.calls == 1 else 0.0))
        return np.zeros(len(images))


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    root = tmp_path_factory.mktemp("phase")
    suite = suite_at(root)
    return suite, root, run_suite(suite, root / "results", show_progress=False)


def detector_rows(result):
    return [t for t in result.throughput if t["kind"] == "detector"]


def test_the_phase_times_one_call_per_round_on_full_batches_after_a_warm_up(first):
    _, root, result = first
    corpus = Corpus.open(result.run["info"]["corpus_paths"]["up"])
    _, _, test = three_way_split(corpus, SplitSpec(0.5, 0))
    fake = SleepPerImage()
    figures = time_detector(fake, test, 3, ThroughputSpec(rounds=4, warmup=1, min_seconds=0.0))
    batches = len(test) // 3  # full batches only: every corpus is timed at the batch size
    assert len(test) % 3 and batches >= 2
    assert figures["images"] == 3 * batches and figures["batch_size"] == 3
    assert figures["rounds"] == max(4, batches) and fake.calls == 1 + figures["rounds"]
    assert 0.5 * 500 <= figures["images_per_s"] <= 1.02 * 500  # 2 ms per image; the cold call is not timed
    assert len(figures["round_images_per_s"]) == 4
    assert figures["images_per_s_q1"] <= figures["images_per_s"] <= figures["images_per_s_q3"]


def test_every_run_has_a_speed_row_with_its_spread_and_the_calibration(first):
    _, root, result = first
    (row,) = detector_rows(result)
    assert row["name"] == "spectrum @ up" and row["batch_size"] == 5 and row["rounds"] >= 3
    assert row["images_per_s_q1"] <= row["images_per_s"] <= row["images_per_s_q3"]
    assert row["decode_images_per_s"] > 0  # the scoring pass's own accounting rides along
    calibration = result.run["info"]["calibration"]
    assert calibration["units_per_s"] > 0 and calibration["workload"].startswith("fft256")
    (stored,) = [t for t in Store(root / "results" / "facebench.sqlite").throughput(result.run["run_id"])
                 if t["kind"] == "detector"]
    assert stored["round_images_per_s"] == pytest.approx(row["round_images_per_s"])


def test_a_cached_task_gets_a_freshly_measured_speed(first):
    suite, root, result = first
    tasks = list((root / "results" / "tasks").glob("*.json"))
    assert tasks and all(json.loads(p.read_text())["throughput"] is None for p in tasks)
    for path in tasks:  # a cache written by an older facebench, holding a speed figure
        data = json.loads(path.read_text())
        data["throughput"] = {**detector_rows(result)[0], "images_per_s": 123456.0, "rounds": 99}
        path.write_text(json.dumps(data))
    again = run_suite(suite, root / "results", show_progress=False)
    assert again.cached_tasks == len(tasks)
    (row,) = detector_rows(again)
    assert row["images_per_s"] != 123456.0 and row["rounds"] != 99 and row["rounds"] >= 3
    # missing (NaN, as the store gives it): nothing was decoded for scoring: the task came from the cache
    assert math.isnan(row["decode_images_per_s"])
    assert row["round_images_per_s"] != detector_rows(result)[0]["round_images_per_s"]


def test_measure_false_skips_the_phase_the_sweep_and_the_calibration(tmp_path):
    suite = suite_at(tmp_path, "measure = false\nbatch_sizes = [1, 2]")
    result = run_suite(suite, tmp_path / "results", show_progress=False)
    assert result.errors == [] and result.metrics
    assert [t["kind"] for t in result.throughput] == ["generator"]
    assert "calibration" not in result.run["info"]


def test_the_eye_localiser_cache_is_bypassed_while_timing(monkeypatch):
    from facebench.detectors import localise

    calls = []
    monkeypatch.setattr(localise, "locate_one", lambda image, names: calls.append(1))
    monkeypatch.setattr(localise, "resolve_backends", lambda backend: ["builtin"])
    localise.clear_cache()
    image = np.zeros((1, 64, 64, 3), np.uint8)
    localise.locate_eyes(image)
    localise.locate_eyes(image)
    assert len(calls) == 1  # the second call was a cache hit
    with localise.cache_bypassed():
        localise.locate_eyes(image)
        localise.locate_eyes(image)
    assert len(calls) == 3
    localise.clear_cache()


def test_cli_run_no_throughput(tmp_path):
    from typer.testing import CliRunner

    from facebench.harness.cli import app

    path = tmp_path / "suite.toml"
    path.write_text(SUITE.format(extra=""))
    done = CliRunner().invoke(app, ["run", str(path), "--results", str(tmp_path / "r"), "--no-progress", "--no-report",
                                    "--no-throughput"])
    assert done.exit_code == 0, done.output
    store = Store(tmp_path / "r" / "facebench.sqlite")
    assert [t["kind"] for t in store.throughput(store.run()["run_id"])] == ["generator"]
