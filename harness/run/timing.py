"""Throughput and memory measured the same way for generators and detectors.

Two tools: :class:`ThroughputMeter` times the batches of a real run as they go by, and
:func:`benchmark_callable` / :func:`benchmark_detector` / :func:`sweep_batch_sizes` follow
timm's benchmark recipe on in-memory batches (eval mode, ``torch.inference_mode``, untimed
warm-up, CUDA synchronised around the clock, several rounds, the median round).
:func:`time_decode` times reading and decoding PNG files apart from any model.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..contracts.devices import synchronize

MB = 2**20


class CallClock:
    """Times one call of ``fn(batch)``: on the CPU with ``perf_counter``; on CUDA with a pair of
    CUDA events recorded around the call on the current stream, the device synchronised before
    the start (no earlier work inside the clock) and after the end (the call's kernels finished)."""

    def __init__(self, device: str = "cpu"):
        self.device = str(device)
        self.cuda = self.device.startswith("cuda")
        if self.cuda:
            import torch

            self._stream = torch.cuda.current_stream(torch.device(self.device))
            self._start = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)

    def time(self, fn: Callable[[Any], Any], batch: Any) -> float:
        """Seconds ``fn(batch)`` took (its result is dropped)."""
        if not self.cuda:
            start = time.perf_counter()
            fn(batch)
            return time.perf_counter() - start
        synchronize(self.device)
        self._start.record(self._stream)
        fn(batch)
        self._end.record(self._stream)
        synchronize(self.device)
        return self._start.elapsed_time(self._end) / 1000.0


def spread(values: Sequence[float]) -> dict[str, Any]:
    """rounds, median, q1 and q3 of per-round figures (NaN where there are none)."""
    values = [float(v) for v in values]
    return {"rounds": len(values), "median": percentile(values, 50), "q1": percentile(values, 25),
            "q3": percentile(values, 75)}


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of ``values``; NaN for none."""
    return float(np.percentile(values, q)) if len(values) else float("nan")


# ---------------------------------------------------------------------------- memory


def current_rss_bytes() -> int | None:
    """This process's resident set size now, from /proc/self/statm; None where there is no /proc."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _max_rss_bytes() -> int | None:
    """The process's high-water RSS (ru_maxrss): it never goes down, so it is only a fallback."""
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    except (ImportError, OSError, AttributeError):
        return None


class PeakMemory:
    """Peak resident memory (MB) of this process during a ``with`` block, and on CUDA the peak
    memory torch allocated there.

    ``ru_maxrss`` cannot be reset, so a daemon thread samples the current RSS every
    ``interval_s`` (plus at entry and exit). Limitation: an allocation that comes and goes
    between two samples (shorter than ``interval_s``, 5 ms by default) is missed, so the figure
    is a lower bound of the true peak. Without /proc (not Linux) it falls back to ``ru_maxrss``,
    the process's lifetime high-water mark, which blocks cannot tell apart.

    Attributes after the block: ``start_rss_mb``, ``peak_rss_mb``, ``end_rss_mb``,
    ``increase_mb`` (peak minus start), ``cuda_peak_mb`` (None off CUDA), ``samples``.
    """

    def __init__(self, device: str = "cpu", interval_s: float = 0.005):
        self.device = str(device)
        self.interval_s = interval_s
        self.start_rss_mb: float | None = None
        self.peak_rss_mb: float | None = None
        self.end_rss_mb: float | None = None
        self.cuda_peak_mb: float | None = None
        self.samples = 0
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sampler: Callable[[], int | None] = current_rss_bytes

    @property
    def increase_mb(self) -> float | None:
        if self.peak_rss_mb is None or self.start_rss_mb is None:
            return None
        return self.peak_rss_mb - self.start_rss_mb

    def _sample(self) -> int | None:
        rss = self._sampler()
        if rss is not None:
            self._peak = max(self._peak, rss)
            self.samples += 1
        return rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> "PeakMemory":
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        start = self._sample()
        if start is None:
            self._sampler = _max_rss_bytes
            start = self._sample()
        self.start_rss_mb = None if start is None else start / MB
        if start is not None and self.interval_s > 0:
            self._thread = threading.Thread(target=self._run, name="facebench-peak-memory", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        end = self._sample()
        self.end_rss_mb = None if end is None else end / MB
        self.peak_rss_mb = self._peak / MB if self.samples else None
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
            self.cuda_peak_mb = torch.cuda.max_memory_allocated(self.device) / MB


# ---------------------------------------------------------------------------- meter


@dataclass
class ThroughputMeter:
    """Accumulates (items, seconds) per batch; use :meth:`batch` around each batch's work.

    With ``track_memory`` each batch also runs inside :class:`PeakMemory` (its sampling thread
    starts and stops outside the clock), and the summary's ``peak_rss_mb`` is the largest peak.
    """

    device: str = "cpu"
    batch_seconds: list[float] = field(default_factory=list)
    batch_items: list[int] = field(default_factory=list)
    track_memory: bool = False
    peak_rss_mb: float | None = None

    def batch(self, n_items: int = 0) -> "_BatchTimer":
        """Time one batch; set ``timer.items`` inside the block when the count is known only then."""
        return _BatchTimer(self, n_items)

    @property
    def items(self) -> int:
        return int(sum(self.batch_items))

    @property
    def seconds(self) -> float:
        return float(sum(self.batch_seconds))

    def summary(self) -> dict[str, Any]:
        """images, seconds (all items, all time), images_per_s (the median batch's images/s) with
        its spread over batches (rounds = timed batches, images_per_s_q1 / _q3 = quartiles of the
        batches' images/s), per-image latency percentiles (ms), per-batch latency percentiles (ms),
        the median batch's seconds and peak_rss_mb (None unless tracked).

        The figure is the median batch, not images / seconds, so it always lies within its own
        IQR: a slow first batch (warm-up) or a short last one moves the total but not the median."""
        per_image_ms = [1000 * s / n for s, n in zip(self.batch_seconds, self.batch_items) if n]
        batch_ms = [1000 * s for s in self.batch_seconds]
        per_batch = [n / s for s, n in zip(self.batch_seconds, self.batch_items) if n and s > 0]
        return asdict(
            Throughput(
                device=self.device,
                images=self.items,
                seconds=self.seconds,
                images_per_s=percentile(per_batch, 50),
                rounds=len(per_batch),
                images_per_s_q1=percentile(per_batch, 25),
                images_per_s_q3=percentile(per_batch, 75),
                latency_p50_ms=percentile(per_image_ms, 50),
                latency_p95_ms=percentile(per_image_ms, 95),
                latency_p99_ms=percentile(per_image_ms, 99),
                batch_latency_p50_ms=percentile(batch_ms, 50),
                batch_latency_p95_ms=percentile(batch_ms, 95),
                batch_latency_p99_ms=percentile(batch_ms, 99),
                median_batch_s=percentile(self.batch_seconds, 50),
                peak_rss_mb=self.peak_rss_mb,
            )
        )


@dataclass(frozen=True)
class Throughput:
    device: str
    images: int
    seconds: float
    images_per_s: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float = float("nan")
    batch_latency_p50_ms: float = float("nan")
    batch_latency_p95_ms: float = float("nan")
    batch_latency_p99_ms: float = float("nan")
    median_batch_s: float = float("nan")
    peak_rss_mb: float | None = None
    rounds: int = 0
    images_per_s_q1: float = float("nan")
    images_per_s_q3: float = float("nan")


class _BatchTimer:
    def __init__(self, meter: ThroughputMeter, n_items: int):
        self.meter = meter
        self.items = n_items
        self.memory = PeakMemory(meter.device) if meter.track_memory else None

    def __enter__(self) -> "_BatchTimer":
        if self.memory is not None:
            self.memory.__enter__()
        synchronize(self.meter.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            synchronize(self.meter.device)
            self.meter.batch_seconds.append(time.perf_counter() - self.start)
            self.meter.batch_items.append(self.items)
        if self.memory is not None:
            self.memory.__exit__(exc_type, exc, tb)
            peaks = [p for p in (self.meter.peak_rss_mb, self.memory.peak_rss_mb) if p is not None]
            self.meter.peak_rss_mb = max(peaks) if peaks else None


# ---------------------------------------------------------------------------- benchmarks


def inference_mode():
    """``torch.inference_mode()``, or nothing where torch is not installed."""
    try:
        import torch
    except ImportError:
        return nullcontext()
    return torch.inference_mode()


def _as_batches(make_batch_or_batches: Any) -> list[Any]:
    batches = make_batch_or_batches() if callable(make_batch_or_batches) else make_batch_or_batches
    if hasattr(batches, "shape"):  # one array or tensor is one batch
        return [batches]
    batches = list(batches)
    if not batches:
        raise ValueError("benchmark needs at least one batch")
    return batches


def benchmark_callable(
    fn: Callable[[Any], Any],
    make_batch_or_batches: Any,
    batch_size: int | None = None,
    device: str = "cpu",
    warmup: int = 2,
    rounds: int = 5,
    min_seconds: float = 0.0,
    max_rounds: int = 100,
    track_memory: bool = True,
) -> dict[str, Any]:
    """Time ``fn(batch)`` over in-memory batches, timm-style; a dict of figures.

    ``make_batch_or_batches``: one batch (anything with ``.shape``), a sequence of batches, or a
    zero-argument callable returning either; they are made before any timing. ``warmup`` untimed
    calls (cycling through the batches) come first, then ``rounds`` timed rounds of one call per
    batch; more rounds follow while the timed total is under ``min_seconds`` (at most
    ``max_rounds``). Every call runs inside ``torch.inference_mode()`` and is timed alone, with
    CUDA synchronised on both sides. Putting a model in eval mode is the caller's job
    (:func:`benchmark_detector` does it for detectors).

    Returns device, batch_size, batches and images (per round), rounds, warmup,
    images_per_s (of the median round), images_per_s_q1 / _q3 (quartiles of the rounds'
    images/s), round_images_per_s (every round's figure), median_round_s,
    batch_latency_p50/p95/p99_ms, latency_p50/p95/p99_ms (per image: call time / images),
    peak_rss_mb (whole benchmark, warm-up included; None with ``track_memory=False``, which spares
    the figures :class:`PeakMemory`'s sampling thread) and
    cuda_peak_mb (None off CUDA). On CUDA each call is timed with CUDA events (:class:`CallClock`).
    """
    if rounds < 1 or warmup < 0:
        raise ValueError(f"need rounds >= 1 and warmup >= 0, got rounds={rounds}, warmup={warmup}")
    device = str(device)
    batches = _as_batches(make_batch_or_batches)
    sizes = [len(b) for b in batches]
    if batch_size is None:
        batch_size = sizes[0]
    round_seconds: list[float] = []
    batch_seconds: list[float] = []
    per_image_ms: list[float] = []
    clock = CallClock(device)
    with PeakMemory(device, interval_s=0.005 if track_memory else 0.0) as memory, inference_mode():
        for i in range(warmup):
            fn(batches[i % len(batches)])
        synchronize(device)
        while len(round_seconds) < rounds or (sum(round_seconds) < min_seconds and len(round_seconds) < max_rounds):
            total = 0.0
            for batch, n in zip(batches, sizes):
                seconds = clock.time(fn, batch)
                total += seconds
                batch_seconds.append(seconds)
                if n:
                    per_image_ms.append(1000 * seconds / n)
            round_seconds.append(total)
    median_round = float(np.median(round_seconds))
    batch_ms = [1000 * s for s in batch_seconds]
    per_round = [sum(sizes) / s if s > 0 else float("nan") for s in round_seconds]
    return {
        "device": device,
        "batch_size": int(batch_size),
        "batches": len(batches),
        "images": int(sum(sizes)),
        "rounds": len(round_seconds),
        "warmup": warmup,
        "images_per_s": sum(sizes) / median_round if median_round > 0 else float("nan"),
        "images_per_s_q1": percentile(per_round, 25),
        "images_per_s_q3": percentile(per_round, 75),
        "round_images_per_s": per_round,
        "median_round_s": median_round,
        "batch_latency_p50_ms": percentile(batch_ms, 50),
        "batch_latency_p95_ms": percentile(batch_ms, 95),
        "batch_latency_p99_ms": percentile(batch_ms, 99),
        "latency_p50_ms": percentile(per_image_ms, 50),
        "latency_p95_ms": percentile(per_image_ms, 95),
        "latency_p99_ms": percentile(per_image_ms, 99),
        "peak_rss_mb": memory.peak_rss_mb if track_memory else None,
        "cuda_peak_mb": memory.cuda_peak_mb,
    }


def set_eval(detector: Any) -> None:
    """Put a detector in inference mode: call its ``eval()`` if it has one, else ``eval()`` its
    torch module (``model``, ``network``, ``net`` or ``module``). The detector stays so."""
    if callable(getattr(detector, "eval", None)):
        detector.eval()
        return
    try:
        from torch import nn
    except ImportError:
        return
    for name in ("model", "network", "net", "module"):
        module = getattr(detector, name, None)
        if isinstance(module, nn.Module):
            module.eval()


def detector_batches(images: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Full batches of ``batch_size`` cut from ``images`` (the remainder is dropped); fewer images
    than one batch are repeated cyclically to fill it, so every call sees exactly ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(images) == 0:
        raise ValueError("benchmark needs at least one image")
    if len(images) < batch_size:
        return [np.resize(images, (batch_size, *images.shape[1:]))]
    return [images[start : start + batch_size] for start in range(0, len(images) - batch_size + 1, batch_size)]


def benchmark_detector(detector: Any, images: np.ndarray, batch_size: int = 32, **kwargs: Any) -> dict[str, Any]:
    """:func:`benchmark_callable` for a facebench detector's ``score`` on uint8 [N, H, W, 3] images.

    The detector is put in eval mode (:func:`set_eval`) and timed on its ``device`` (default
    "cpu"). If it has an integer ``batch_size`` (its own chunking inside ``score``) that is set
    to ``batch_size`` for the benchmark and restored after. Keyword arguments go to
    :func:`benchmark_callable` (warmup, rounds, min_seconds, max_rounds, track_memory).
    """
    set_eval(detector)
    device = str(getattr(detector, "device", "cpu") or "cpu")
    own = getattr(detector, "batch_size", None)
    chunks = isinstance(own, int) and not isinstance(own, bool)
    if chunks:
        detector.batch_size = batch_size
    try:
        return benchmark_callable(detector.score, detector_batches(images, batch_size), batch_size, device, **kwargs)
    finally:
        if chunks:
            detector.batch_size = own


#: What a RuntimeError says when a GPU library could not allocate its workspace.
OUT_OF_MEMORY_MESSAGES = ("out of memory", "cublas_status_alloc_failed", "cudnn_status_alloc_failed")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says memory ran out: MemoryError, torch's OutOfMemoryError, or a
    RuntimeError whose message says "out of memory" (CUDA, MPS and older torch) or that cuBLAS
    or cuDNN failed to allocate (a capped or full GPU can fail there first)."""
    if isinstance(exc, MemoryError):
        return True
    message = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(text in message for text in OUT_OF_MEMORY_MESSAGES)


def release_cuda_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:
            pass


def sweep_batch_sizes(
    detector: Any, images: np.ndarray, batch_sizes: Iterable[int] = (1, 8, 32, 64, 128), **kwargs: Any
) -> list[dict[str, Any]]:
    """:func:`benchmark_detector` at each batch size, smallest first; one row per size tried.

    Rows carry ``"error": None`` when measured. Running out of memory (:func:`is_out_of_memory`)
    gives a row ``{"batch_size": b, "device": ..., "error": "out of memory: ..."}``, empties the
    CUDA cache, and stops the sweep: larger sizes would need more memory still. Any other
    exception is recorded the same way (``"TypeName: message"``) and also stops the sweep, since
    it rarely depends on the batch size and the detector's state is no longer known. Nothing
    raised by the detector escapes (KeyboardInterrupt and SystemExit do).
    """
    device = str(getattr(detector, "device", "cpu") or "cpu")
    rows: list[dict[str, Any]] = []
    for batch_size in sorted(set(int(b) for b in batch_sizes)):
        error = None
        try:
            rows.append({**benchmark_detector(detector, images, batch_size, **kwargs), "error": None})
        except Exception as exc:  # noqa: BLE001 - a sweep records failures instead of crashing
            kind = "out of memory" if is_out_of_memory(exc) else type(exc).__name__
            error = f"{kind}: {exc}".strip().rstrip(":")
        if error is not None:
            # After the except block, so the traceback's frames (and their tensors) are gone.
            release_cuda_memory(device)
            rows.append({"batch_size": batch_size, "device": device, "error": error})
            break
    return rows


# ---------------------------------------------------------------------------- calibration

#: Bumped whenever :func:`calibration_workload` changes, so figures of different workloads never mix.
CALIBRATION_VERSION = 1


def calibration_workload() -> float:
    """One fixed unit of work, like a frequency detector's: a 2-D FFT of a 256 x 256 image and a
    5 x 5 convolution of a 128 x 128 one (float64 numpy); returns a checksum so nothing is skipped."""
    rng = np.random.default_rng(0)
    image = rng.random((256, 256))
    spectrum = np.abs(np.fft.rfft2(image))
    windows = np.lib.stride_tricks.sliding_window_view(image[:128, :128], (5, 5))
    filtered = np.einsum("ijkl,kl->ij", windows, np.full((5, 5), 1 / 25.0))
    return float(spectrum[1:4, 1:4].sum() + filtered[:4, :4].sum())


def calibrate_machine(rounds: int = 7, units_per_round: int = 8, warmup: int = 2) -> dict[str, Any]:
    """The speed of this process on :func:`calibration_workload` (about 0.2 s on a 2-core laptop CPU):
    ``warmup`` untimed units, then ``rounds`` timed rounds of ``units_per_round`` units.

    Returns workload (its name and version), units_per_s (the median round's), units_per_s_q1 / _q3,
    rounds and round_units_per_s. Throughput divided by units_per_s is images per calibration unit:
    a figure that travels between machines of different speed better than images/s alone.
    """
    for _ in range(warmup):
        calibration_workload()
    per_round = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(units_per_round):
            calibration_workload()
        per_round.append(units_per_round / (time.perf_counter() - start))
    figures = spread(per_round)
    return {"workload": f"fft256+conv5x5 v{CALIBRATION_VERSION}", "units_per_s": figures["median"],
            "units_per_s_q1": figures["q1"], "units_per_s_q3": figures["q3"], "rounds": rounds,
            "round_units_per_s": per_round}


# ---------------------------------------------------------------------------- decoding


def decode_image(path: str | Path) -> np.ndarray:
    """One image file as uint8 [H, W, 3] RGB, decoded the way the corpus decodes it."""
    from PIL import Image

    from ..data.corpus import to_rgb

    with Image.open(path) as image:
        image.load()
        return np.asarray(image if image.mode == "RGB" else to_rgb(image))


def time_decode(paths: Sequence[str | Path], rounds: int = 1) -> dict[str, Any]:
    """Read and decode ``paths`` with Pillow, apart from any model; figures of the median round.

    Returns images (per round), rounds, seconds (median round), images_per_s, latency_p50_ms
    (per image) and megapixels_per_s. The first round may read from disk and later ones from the
    page cache; pass ``rounds`` > 1 to see the warm figure. Unreadable files raise.
    """
    paths = list(paths)
    if not paths or rounds < 1:
        raise ValueError("time_decode needs at least one path and one round")
    round_seconds, per_image_ms, pixels = [], [], 0
    for _ in range(rounds):
        total, pixels = 0.0, 0
        for path in paths:
            start = time.perf_counter()
            image = decode_image(path)
            seconds = time.perf_counter() - start
            total += seconds
            per_image_ms.append(1000 * seconds)
            pixels += image.shape[0] * image.shape[1]
        round_seconds.append(total)
    seconds = float(np.median(round_seconds))
    return {
        "images": len(paths),
        "rounds": rounds,
        "seconds": seconds,
        "images_per_s": len(paths) / seconds if seconds > 0 else float("nan"),
        "latency_p50_ms": percentile(per_image_ms, 50),
        "megapixels_per_s": pixels / 1e6 / seconds if seconds > 0 else float("nan"),
    }
