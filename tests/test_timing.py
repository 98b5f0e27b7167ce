"""Timing, peak memory, batch-size sweeps, decode timing and the environment record."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facebench.harness.data import environment as env_module
from facebench.harness.data.environment import environment
from facebench.harness.run.timing import (
    PeakMemory,
    ThroughputMeter,
    benchmark_callable,
    benchmark_detector,
    current_rss_bytes,
    is_out_of_memory,
    sweep_batch_sizes,
    time_decode,
)

REPO = Path(__file__).resolve().parents[1]
ENV_KEYS = {
    "cpu_model", "cpu_cores", "cpu_cores_usable", "memory_gb", "gpu", "gpu_count", "gpu_memory_gb", "torch",
    "torch_threads", "cuda", "python", "platform", "machine", "numpy", "facebench", "git_commit",
}
needs_proc = pytest.mark.skipif(current_rss_bytes() is None, reason="no /proc/self/statm here")


@pytest.fixture
def fresh_environment():
    environment.cache_clear()
    yield
    environment.cache_clear()


# ---------------------------------------------------------------------------- environment


def test_environment_has_every_key_and_sane_values(fresh_environment):
    env = environment()
    assert set(env) == ENV_KEYS
    assert env["cpu_cores"] >= 1 and env["torch"] == torch.__version__ and env["numpy"] == np.__version__
    assert env["gpu"] is None or isinstance(env["gpu"], str)
    if Path("/proc/meminfo").exists():
        assert env["memory_gb"] > 0.1 and env["cpu_model"]
    env["cpu_model"] = "changed"  # callers get a copy; the cache is untouched
    assert environment()["cpu_model"] != "changed"


def test_environment_never_raises_without_git(fresh_environment, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert environment()["git_commit"] is None
    environment.cache_clear()

    def broken(*args, **kwargs):
        raise subprocess.TimeoutExpired("git", 3)

    monkeypatch.setattr(env_module.subprocess, "run", broken)
    monkeypatch.setattr(env_module, "cpu_model", lambda: 1 / 0)
    env = environment()
    assert env["git_commit"] is None and env["cpu_model"] is None and set(env) == ENV_KEYS


def test_git_commit_is_this_checkouts_head(fresh_environment):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    commit = environment()["git_commit"]
    if Path(env_module.PACKAGE_DIR).resolve() != (REPO / "harness").resolve():
        # a plain `pip install .`: the code that runs is a copy in site-packages (perhaps in a venv
        # inside this checkout), which no checkout tracks, so no commit can be claimed for it
        assert commit is None
        return
    status = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, text=True)
    assert commit == head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def test_git_commit_is_none_outside_a_checkout(tmp_path):
    assert env_module.git_commit(tmp_path) is None
    if shutil.which("git") is None:
        return
    # A package folder inside another project's repository (a venv there), not tracked by it.
    package = tmp_path / "venv" / "facebench" / "harness"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (tmp_path / "README").write_text("other project")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "README"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    assert env_module.git_commit(package) is None


# ---------------------------------------------------------------------------- memory


@needs_proc
def test_peak_memory_sees_an_allocation_inside_the_block_only():
    with PeakMemory() as inside:
        block = np.ones(200 * 2**20 // 8)  # 200 MB, freed before the block ends
        time.sleep(0.03)
        del block
    assert inside.increase_mb >= 150, inside.__dict__
    assert inside.end_rss_mb < inside.peak_rss_mb - 100  # the peak came from the sampling thread
    assert inside.cuda_peak_mb is None

    before = np.ones(200 * 2**20 // 8)
    del before
    with PeakMemory() as outside:
        time.sleep(0.02)
    assert outside.increase_mb < 50 and outside.samples >= 2


@needs_proc
def test_meter_tracks_peak_memory_when_asked():
    meter = ThroughputMeter(track_memory=True)
    with meter.batch(1):
        block = np.ones(200 * 2**20 // 8)
        del block
    with meter.batch(1):
        pass
    assert meter.summary()["peak_rss_mb"] >= current_rss_bytes() / 2**20 + 150


def test_meter_summary_keeps_its_keys_and_adds_percentiles():
    meter = ThroughputMeter()
    for n, seconds in [(4, 0.004), (4, 0.008), (2, 0.002)]:
        with meter.batch(n):
            time.sleep(seconds)
    summary = meter.summary()
    assert {"device", "images", "seconds", "images_per_s", "latency_p50_ms", "latency_p95_ms"} <= set(summary)
    assert summary["images"] == 10 and summary["device"] == "cpu" and summary["peak_rss_mb"] is None
    assert summary["latency_p50_ms"] <= summary["latency_p95_ms"] <= summary["latency_p99_ms"]
    assert summary["batch_latency_p50_ms"] <= summary["batch_latency_p95_ms"] <= summary["batch_latency_p99_ms"]
    # sleep never returns early; p99 of exactly [2, 4, 8] ms interpolates to 7.92 ms
    assert summary["batch_latency_p99_ms"] >= 7.9 and summary["median_batch_s"] >= 0.004
    empty = ThroughputMeter().summary()
    assert empty["images"] == 0 and np.isnan(empty["latency_p99_ms"])


def test_meter_figure_is_the_median_batch_and_lies_within_its_own_iqr():
    # a slow first batch (warm-up) and a short last one: images / seconds falls below the batches'
    # lower quartile, which is how a generator row once printed 127.9 images/s beside IQR [129.9, 134.9]
    meter = ThroughputMeter(batch_seconds=[0.5, 0.1, 0.1, 0.11, 0.09, 0.1, 0.05],
                            batch_items=[10, 10, 10, 10, 10, 10, 2])
    summary = meter.summary()
    assert summary["images"] == 62 and summary["seconds"] == pytest.approx(1.05)
    assert summary["images"] / summary["seconds"] < summary["images_per_s_q1"]
    assert summary["images_per_s"] == pytest.approx(100.0)
    assert summary["images_per_s_q1"] <= summary["images_per_s"] <= summary["images_per_s_q3"]
    assert np.isnan(ThroughputMeter().summary()["images_per_s"])


# ---------------------------------------------------------------------------- benchmarks


class SleepPerImage:
    """Sleeps ``per_image_s`` per image; the first ``slow_calls`` calls take 0.2 s more."""

    def __init__(self, per_image_s: float, slow_calls: int = 0):
        self.per_image_s = per_image_s
        self.slow_calls = slow_calls
        self.calls = 0
        self.inference_mode = []

    def __call__(self, batch):
        self.calls += 1
        self.inference_mode.append(torch.is_inference_mode_enabled())
        time.sleep(len(batch) * self.per_image_s + (0.2 if self.calls <= self.slow_calls else 0.0))


def test_benchmark_callable_times_only_the_rounds():
    fn = SleepPerImage(0.002, slow_calls=2)
    batches = [np.zeros((4, 1)) for _ in range(3)]
    result = benchmark_callable(fn, batches, warmup=2, rounds=3)
    assert fn.calls == 2 + 3 * 3 and all(fn.inference_mode)
    # 2 ms per image: 500 images/s, less sleep overshoot on a busy machine
    assert 0.5 * 500 <= result["images_per_s"] <= 1.02 * 500, result
    assert 0.012 * 0.98 <= result["median_round_s"] < 0.1
    assert result["batch_latency_p99_ms"] < 100  # a timed warm-up call (200 ms more) would show here
    assert result["batch_latency_p50_ms"] <= result["batch_latency_p95_ms"] <= result["batch_latency_p99_ms"]
    assert result["batch_latency_p50_ms"] >= 8 * 0.98 and result["latency_p50_ms"] >= 2 * 0.98
    assert result | {"images_per_s": 0, "median_round_s": 0} == result | {
        "images_per_s": 0, "median_round_s": 0, "batch_size": 4, "batches": 3, "images": 12, "rounds": 3,
        "warmup": 2, "device": "cpu", "cuda_peak_mb": None,
    }
    if current_rss_bytes() is not None:
        assert result["peak_rss_mb"] > 0


def test_benchmark_callable_runs_more_rounds_for_min_seconds():
    fn = SleepPerImage(0.001)
    start = time.perf_counter()
    result = benchmark_callable(fn, lambda: np.zeros((2, 1)), warmup=0, rounds=1, min_seconds=0.05, max_rounds=200)
    assert time.perf_counter() - start >= 0.05 and fn.calls == result["rounds"] and result["batches"] == 1
    assert 1 < result["rounds"] <= 26  # 2 ms a round: it stops once 50 ms are timed
    capped = benchmark_callable(fn, np.zeros((2, 1)), warmup=0, rounds=1, min_seconds=10, max_rounds=3,
                                track_memory=False)
    assert capped["rounds"] == 3 and capped["peak_rss_mb"] is None


class FakeDetector:
    """Scores by mean brightness; runs out of memory above ``limit`` images per call."""

    device = "cpu"

    def __init__(self, limit: int | None = None, error: BaseException | None = None):
        self.limit = limit
        self.error = error
        self.batch_size = 7
        self.model = torch.nn.Linear(2, 1)  # in training mode, as nn modules start
        self.seen: list[int] = []

    def score(self, images: np.ndarray) -> np.ndarray:
        self.seen.append(len(images))
        assert not self.model.training and self.batch_size == len(images)
        if self.limit is not None and len(images) > self.limit:
            raise self.error or MemoryError("cannot allocate the activations")
        return images.mean(axis=(1, 2, 3)) / 255


def images(n: int = 40) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)


def test_benchmark_detector_puts_the_model_in_eval_mode_and_cuts_full_batches():
    detector = FakeDetector()
    result = benchmark_detector(detector, images(40), batch_size=16, warmup=1, rounds=2)
    assert not detector.model.training and detector.batch_size == 7  # its own batch size is restored
    assert set(detector.seen) == {16} and result["batches"] == 2 and result["images"] == 32
    small = benchmark_detector(FakeDetector(), images(3), batch_size=8, warmup=0, rounds=1)
    assert small["images"] == 8 and small["batches"] == 1  # 3 images repeated to fill one batch


@pytest.mark.parametrize(
    "error", [MemoryError(), RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), None]
)
def test_sweep_records_out_of_memory_and_backs_off(error):
    detector = FakeDetector(limit=16, error=error)
    rows = sweep_batch_sizes(detector, images(40), batch_sizes=(64, 1, 4, 16, 32), warmup=1, rounds=2)
    assert [r["batch_size"] for r in rows] == [1, 4, 16, 32]  # 64 is never tried
    assert max(detector.seen) == 32 and detector.batch_size == 7
    for row in rows[:3]:
        assert row["error"] is None and row["images_per_s"] > 0 and row["peak_rss_mb"] != 0
    assert rows[-1]["error"].startswith("out of memory") and "images_per_s" not in rows[-1]


def test_sweep_records_other_errors_and_stops():
    detector = FakeDetector(limit=4, error=ValueError("bad input"))
    rows = sweep_batch_sizes(detector, images(40), batch_sizes=(1, 8, 32), warmup=0, rounds=1)
    assert [r["batch_size"] for r in rows] == [1, 8] and rows[-1]["error"] == "ValueError: bad input"


def test_is_out_of_memory():
    assert is_out_of_memory(MemoryError()) and is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch")) and not is_out_of_memory(ValueError("out of memory"))
    assert is_out_of_memory(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"))
    assert is_out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))


def test_time_decode_reads_pngs(tmp_path):
    paths = []
    for i in range(4):
        path = tmp_path / f"{i}.png"
        Image.fromarray(images(1)[0].repeat(8, 0).repeat(8, 1)).save(path)
        paths.append(path)
    result = time_decode(paths, rounds=2)
    assert result["images"] == 4 and result["rounds"] == 2 and result["images_per_s"] > 0
    assert result["megapixels_per_s"] == pytest.approx(4 * 64 * 64 / 1e6 / result["seconds"])
    with pytest.raises(FileNotFoundError):
        time_decode([tmp_path / "missing.png"])
