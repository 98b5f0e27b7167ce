"""A detector's speed: the timing phase of a task (one figure per detector and corpus) and the
timm-style batch-size sweep."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from rich.progress import Progress

from ..data.corpus import Corpus, CorpusError
from ..data.suite import DEFAULT_THROUGHPUT, DetectorSpec, Suite, ThroughputSpec
from .fitting import fitted_detector, three_way_split
from .progress import advance, track
from .scoring import batch_size_for
from .timing import benchmark_calls, detector_batches, sweep_batch_sizes

#: The timing phase holds at most this many test images in memory (the first of the split).
TIMING_IMAGES = 512
#: What the scoring pass adds to the timing phase's figures: its own accounting of decoding and memory.
SCORING_ACCOUNTING = ("decode_images_per_s", "peak_rss_mb")


def uncached(detector: Any) -> AbstractContextManager:
    """A block in which ``detector`` serves nothing from its own caches, so timing measures real
    work: the detector's ``uncached()`` context where it has one (the eye detectors: their
    localisations), else a block that changes nothing."""
    hook = getattr(detector, "uncached", None)
    return hook() if callable(hook) else nullcontext()


def time_task(detector: Any, spec: DetectorSpec, corpus: Corpus, suite: Suite, scoring: dict[str, Any] | None = None,
              progress: Progress | None = None, description: str = "") -> dict[str, Any]:
    """The throughput row figures of ``detector`` on ``corpus``'s test split: the timing phase's
    (:func:`time_detector`), plus the scoring pass's own accounting (:data:`SCORING_ACCOUNTING`)
    when it scored in this run (``scoring``: its throughput; None for a task from the cache)."""
    _, _, test = three_way_split(corpus, suite.split)
    batch_size = int((scoring or {}).get("batch_size") or batch_size_for(spec, detector))
    task = track(progress, description, 1)
    figures = time_detector(detector, test, batch_size, suite.throughput)
    advance(progress, task)
    figures.update({key: (scoring or {}).get(key) for key in SCORING_ACCOUNTING})
    return figures


def time_detector(detector: Any, split: Corpus, batch_size: int, settings: ThroughputSpec = DEFAULT_THROUGHPUT) -> dict[str, Any]:
    """Images/s of ``detector.score`` on ``split``, timed apart from scoring (timm's recipe).

    The first :data:`TIMING_IMAGES` images of ``split`` are decoded into memory and cut into full
    batches of ``batch_size`` (:func:`~facebench.harness.run.timing.detector_batches`: a remainder is
    left out, fewer images than one batch are repeated to fill it). After ``settings.warmup``
    untimed calls, each round is one ``score`` call on the next batch
    (:func:`~facebench.harness.run.timing.benchmark_calls`): at least ``settings.rounds`` and one per
    batch, more until ``settings.min_seconds`` are timed. Every round does the same work, so
    corpora of one image size are timed on equal terms. Each call is timed alone
    (:class:`~facebench.harness.run.timing.CallClock`: CUDA events and synchronisation on a GPU) and
    nothing else sits inside the clock: no decoding, checks or bookkeeping; the detector's own
    caches are bypassed (:func:`uncached`), so repeated rounds time real work. Returns device,
    batch_size, images (distinct images timed), seconds (the median round), images_per_s (the median
    round's) with images_per_s_q1 / _q3 and round_images_per_s (every round), rounds, and
    per-image latency_p50/p95/p99_ms.
    """
    rows = split.rows()[:TIMING_IMAGES]
    if not rows:
        raise CorpusError(f"{split.root}: no test images to time the detector on; generate more images")
    batches = detector_batches(split.load_images(rows), batch_size)
    device = str(getattr(detector, "device", "cpu") or "cpu")
    with uncached(detector):  # eye detectors would otherwise time cache hits of localisations made while scoring
        result = benchmark_calls(detector.score, batches, device, warmup=settings.warmup, rounds=settings.rounds,
                                 min_seconds=settings.min_seconds)
    keep = ("device", "batch_size", "images", "images_per_s", "images_per_s_q1", "images_per_s_q3",
            "round_images_per_s", "rounds", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms")
    return {**{key: result[key] for key in keep}, "seconds": result["median_round_s"]}


def sweep(spec: DetectorSpec, label: str, corpus: Corpus, suite: Suite, detector: Any = None) -> list[dict[str, Any]]:
    """Throughput rows of a timm-style batch-size sweep of ``spec``'s detector fitted on ``corpus``
    (``detector``, or fitted here when None) on the first images of its test split."""
    settings = suite.throughput
    if detector is None:
        detector = fitted_detector(spec, label, corpus, suite.split)
    _, _, test = three_way_split(corpus, suite.split)
    images = test.load_images(test.rows()[: settings.images])
    with uncached(detector):
        rows = sweep_batch_sizes(detector, images, settings.batch_sizes, warmup=settings.warmup, rounds=settings.rounds)
    return [_sweep_row(f"{spec.label} @ {label}", row) for row in rows]


def _sweep_row(name: str, row: dict[str, Any]) -> dict[str, Any]:
    """A sweep result as a throughput row; latencies per image (batch latency / batch size)."""
    out = {"kind": "sweep", "name": name, "device": row["device"], "batch_size": row["batch_size"],
           "images": 0, "seconds": 0.0, "images_per_s": None, "error": row["error"]}
    if row["error"] is None:
        per_image = {q: row[f"batch_latency_{q}_ms"] / row["batch_size"] for q in ("p50", "p95", "p99")}
        out.update(images=row["images"] * row["rounds"], seconds=row["median_round_s"], images_per_s=row["images_per_s"],
                   latency_p50_ms=per_image["p50"], latency_p95_ms=per_image["p95"], latency_p99_ms=per_image["p99"],
                   peak_rss_mb=row["peak_rss_mb"], rounds=row["rounds"], images_per_s_q1=row["images_per_s_q1"],
                   images_per_s_q3=row["images_per_s_q3"], round_images_per_s=row["round_images_per_s"])
    return out
