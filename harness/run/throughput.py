"""A detector's speed: the timing phase (one figure per detector and corpus) and the timm-style
batch-size sweep.

The timing phase is interleaved: every corpus of one detector, and the calibration workload,
timed round by round in one phase, so that a machine that drifts in speed slows every lane alike.
Timing each (detector, corpus) on its own, one after the other, lets a machine whose speed drifts
over minutes (a shared VM) put the drift *between* corpora and between runs. Here each round
makes one call per lane, in an order that rotates from round to round (round 0: A, B, C; round 1:
B, C, A; ...), so neighbouring calls of different lanes see the same machine. On the CPU one more
lane runs :func:`~facebench.harness.run.timing.calibration_workload` (a fixed numpy FFT and
convolution), and every round of every detector lane gets a relative speed: its images/s divided
by the calibration lane's units/s *of the same round* (``round_images_per_unit``). A machine that
slows down slows both; a detector that slows down does not slow the calibration lane, so the
ratio drops with it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from rich.progress import Progress

from ..contracts.devices import synchronize
from ..data.corpus import Corpus, CorpusError
from ..data.suite import DEFAULT_THROUGHPUT, DetectorSpec, Suite, ThroughputSpec
from .allocator import steady_allocator
from .fitting import fitted_detector, three_way_split
from .inputs import largest_group, policy_of, timed_size_note
from .progress import advance, track
from .scoring import batch_size_for
from .timing import (CALIBRATION_VERSION, CallClock, calibration_workload, detector_batches, inference_mode,
                     percentile, spread, sweep_batch_sizes)

#: The timing phase holds at most this many test images of each corpus in memory (the first of the split).
TIMING_IMAGES = 512
#: What the scoring pass adds to the timing phase's figures: its own accounting of decoding and memory.
SCORING_ACCOUNTING = ("decode_images_per_s", "peak_rss_mb")
#: Name of the calibration lane; also the workload's name in ``calibrate_machine`` figures.
CALIBRATION_LANE = f"fft256+conv5x5 v{CALIBRATION_VERSION}"
#: Bounds on calibration units per call (each about 2 ms on a 2-core laptop CPU).
MIN_UNITS, MAX_UNITS = 1, 32

#: ``clock(fn, batch) -> seconds``: how one call is timed (default: :class:`CallClock` of the lane's device).
Clock = Callable[[Callable[[Any], Any], Any], float]


def uncached(detector: Any) -> AbstractContextManager:
    """A block in which ``detector`` serves nothing from its own caches, so timing measures real
    work: the detector's ``uncached()`` context where it has one (the eye detectors: their
    localisations), else a block that changes nothing."""
    hook = getattr(detector, "uncached", None)
    return hook() if callable(hook) else nullcontext()


def time_task(detector: Any, spec: DetectorSpec, corpus: Corpus, suite: Suite, scoring: dict[str, Any] | None = None,
              progress: Progress | None = None, description: str = "") -> dict[str, Any]:
    """The throughput row figures of ``detector`` on ``corpus``'s test split, timed alone in a phase
    of its own (:func:`time_jobs`), with the scoring pass's own accounting (:data:`SCORING_ACCOUNTING`)
    when it scored in this run (``scoring``: its throughput; None for a task from the cache)."""
    task = track(progress, description, 1)
    (figures,) = time_suite_jobs([timing_job(detector, spec, ("", corpus), suite, scoring, description)], suite.throughput)
    advance(progress, task)
    if isinstance(figures, BaseException):
        raise figures
    return figures


def timing_job(detector: Any, spec: DetectorSpec, corpus: tuple[str, Corpus], suite: Suite,
               scoring: dict[str, Any] | None, task: str) -> TimingJob:
    """The timing of ``detector`` on the test split of ``corpus`` (label, corpus), at the batch
    size scoring ended at (``scoring``; the spec's or detector's own for a task from the cache)."""
    label, data = corpus
    _, _, test = three_way_split(data, suite.split)
    batch_size = int((scoring or {}).get("batch_size") or batch_size_for(spec, detector))
    name = row_name(f"{spec.label} @ {label}", test, TIMING_IMAGES, detector)
    return TimingJob(name, task, detector, test, batch_size, scoring)


def row_name(name: str, split: Corpus, rows: int, detector: Any) -> str:
    """A throughput row's name: ``name``, and for a split whose first ``rows`` images reach the
    detector at several sizes, which one was timed (:func:`~facebench.harness.run.inputs.timed_size_note`)."""
    note = timed_size_note(split, rows, policy_of(detector)) if len(split) else ""
    return " ".join(filter(None, (name, note)))


def time_suite_jobs(jobs: Sequence[TimingJob],
                    settings: ThroughputSpec = DEFAULT_THROUGHPUT) -> list[dict[str, Any] | BaseException]:
    """:func:`time_jobs` with a suite's ``[throughput]`` settings."""
    return time_jobs(jobs, warmup=settings.warmup, rounds=settings.rounds, min_seconds=settings.min_seconds)


def time_detector(detector: Any, split: Corpus, batch_size: int, settings: ThroughputSpec = DEFAULT_THROUGHPUT) -> dict[str, Any]:
    """Images/s of ``detector.score`` on ``split``, timed apart from scoring (timm's recipe).

    The first :data:`TIMING_IMAGES` images of ``split`` are decoded into memory, brought to the
    detector's input policy (of a corpus of mixed sizes, those of the commonest size after it are
    timed: every round does the same work; :func:`~facebench.harness.run.inputs.largest_group`), and cut into full
    batches of ``batch_size`` (:func:`~facebench.harness.run.timing.detector_batches`: a remainder is
    left out, fewer images than one batch are repeated to fill it). After ``settings.warmup``
    untimed calls, each round is one ``score`` call on the next batch, next to one call of the
    calibration workload on the CPU (:func:`time_jobs`): at least ``settings.rounds`` and one per
    batch, more until ``settings.min_seconds`` are timed. Every round does the same work, so
    corpora of one image size are timed on equal terms. Each call is timed alone
    (:class:`~facebench.harness.run.timing.CallClock`: CUDA events and synchronisation on a GPU) and
    nothing else sits inside the clock: no decoding, checks or bookkeeping; the detector's own
    caches are bypassed (:func:`uncached`), so repeated rounds time real work. Returns device,
    batch_size, images (distinct images timed), seconds (the median round), images_per_s (the median
    round's) with images_per_s_q1 / _q3 and round_images_per_s (every round), rounds,
    per-image latency_p50/p95/p99_ms and round_images_per_unit (each round over the calibration
    workload's speed in that round; None on CUDA).
    """
    job = TimingJob("detector", "time detector", detector, split, batch_size)
    (figures,) = time_suite_jobs([job], settings)
    if isinstance(figures, BaseException):
        raise figures
    return {key: value for key, value in figures.items() if key not in SCORING_ACCOUNTING}


def sweep(spec: DetectorSpec, label: str, corpus: Corpus, suite: Suite, detector: Any = None) -> list[dict[str, Any]]:
    """Throughput rows of a timm-style batch-size sweep of ``spec``'s detector fitted on ``corpus``
    (``detector``, or fitted here when None) on the first images of its test split."""
    settings = suite.throughput
    if detector is None:
        detector = fitted_detector(spec, label, corpus, suite.split)
    _, _, test = three_way_split(corpus, suite.split)
    with steady_allocator(), uncached(detector):
        images = largest_group(test, test.rows()[: settings.images], policy_of(detector))
        rows = sweep_batch_sizes(detector, images, settings.batch_sizes, warmup=settings.warmup, rounds=settings.rounds)
    return [_sweep_row(row_name(f"{spec.label} @ {label}", test, settings.images, detector), row) for row in rows]


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


# --------------------------------------------------------------------------- the interleaved phase


@dataclass
class Lane:
    """One thing timed in the phase: ``fn`` called on ``batches`` in turn, ``size`` items a call."""

    name: str
    fn: Callable[[Any], Any]
    batches: Sequence[Any]
    size: int
    device: str = "cpu"
    #: Seconds of every timed call, one per round.
    seconds: list[float] = field(default_factory=list)
    #: The exception that took the lane out of the phase (later rounds skip it), or None.
    error: BaseException | None = None
    #: Whether the phase goes on until this lane has timed ``min_seconds`` (the calibration lane does not).
    paced: bool = True

    def batch(self, index: int) -> Any:
        return self.batches[index % len(self.batches)]

    @property
    def rates(self) -> list[float]:
        return [self.size / s if s > 0 else float("nan") for s in self.seconds]


def calibration_lane(units: int) -> Lane:
    """A lane of ``units`` calls of the calibration workload per round (its items are units)."""

    def work(_: Any) -> None:
        for _ in range(units):
            calibration_workload()

    return Lane(CALIBRATION_LANE, work, [None], units, paced=False)


def round_order(lanes: Sequence[Lane], round_index: int) -> list[Lane]:
    """The lanes in the order round ``round_index`` calls them: rotated by one each round, so no
    lane always follows the same neighbour or always opens the round."""
    shift = round_index % len(lanes) if lanes else 0
    return [*lanes[shift:], *lanes[:shift]]


def run_rounds(lanes: Sequence[Lane], rounds: int = 5, min_seconds: float = 0.0, max_rounds: int = 200,
               clock: Clock | None = None) -> int:
    """Time ``lanes`` round by round (:func:`round_order`); each lane's seconds land in ``lane.seconds``.

    At least ``rounds`` rounds and one per batch of every lane; more while any paced lane (every
    detector lane; not the calibration lane) has timed less than ``min_seconds`` (at most
    ``max_rounds``). A lane whose call raises keeps the exception in ``lane.error`` and is left out
    of later rounds; the others go on. Returns the number of rounds made. Warm-up is the caller's
    (:func:`warm_up`).
    """
    clocks = {lane.device: clock or CallClock(lane.device).time for lane in lanes}
    least = max([rounds, *(len(lane.batches) for lane in lanes)])
    made = 0

    def more() -> bool:
        paced = [lane for lane in lanes if lane.error is None and lane.paced]
        if not paced:
            return False
        return made < least or (made < max_rounds and any(sum(lane.seconds) < min_seconds for lane in paced))

    with inference_mode():
        while more():
            for lane in round_order(lanes, made):
                if lane.error is not None:
                    continue
                try:
                    lane.seconds.append(clocks[lane.device](lane.fn, lane.batch(len(lane.seconds))))
                except Exception as exc:  # noqa: BLE001 - one lane's failure must not lose the others' figures
                    lane.error = exc
            made += 1
    return made


def warm_up(lanes: Sequence[Lane], calls: int, clock: Clock | None = None) -> dict[str, float]:
    """``calls`` untimed calls of each lane (their results dropped); returns each lane's last
    warm-up call in seconds (by name; missing with ``calls`` = 0). A lane that raises keeps the
    exception in ``lane.error``."""
    last: dict[str, float] = {}
    with inference_mode():
        for lane in lanes:
            timer = clock or CallClock(lane.device).time
            try:
                for i in range(calls):
                    last[lane.name] = timer(lane.fn, lane.batch(i))
            except Exception as exc:  # noqa: BLE001
                lane.error = exc
            synchronize(lane.device)
    return last


def calibration_units(call_seconds: Sequence[float], unit_seconds: float) -> int:
    """Calibration units per call so that the calibration lane's call lasts about as long as the
    median detector call (``call_seconds``), within [MIN_UNITS, MAX_UNITS]."""
    calls = [s for s in call_seconds if s > 0]
    if not calls or unit_seconds <= 0:
        return 4
    return int(min(MAX_UNITS, max(MIN_UNITS, round(float(np.median(calls)) / unit_seconds))))


def lane_figures(lane: Lane, images: int, calibration: Lane | None = None) -> dict[str, Any]:
    """A detector lane's throughput figures: device, batch_size, images (distinct images cycled
    through), rounds, images_per_s (the median round's) with images_per_s_q1 / _q3,
    round_images_per_s, seconds (the median round), per-image latency_p50/p95/p99_ms, and
    round_images_per_unit (each round's images/s divided by the calibration lane's units/s in
    that round; None without a calibration lane)."""
    rates = lane.rates
    figures = spread(rates)
    per_image_ms = [1000 * s / lane.size for s in lane.seconds]
    out = {
        "device": lane.device, "batch_size": lane.size, "images": images, "rounds": len(rates),
        "images_per_s": figures["median"], "images_per_s_q1": figures["q1"], "images_per_s_q3": figures["q3"],
        "round_images_per_s": rates, "seconds": float(np.median(lane.seconds)),
        "latency_p50_ms": percentile(per_image_ms, 50), "latency_p95_ms": percentile(per_image_ms, 95),
        "latency_p99_ms": percentile(per_image_ms, 99), "round_images_per_unit": None,
    }
    if calibration is not None and calibration.error is None:
        out["round_images_per_unit"] = relative_rounds(rates, calibration.rates)
    return out


def relative_rounds(rates: Sequence[float], units_per_s: Sequence[float]) -> list[float]:
    """Round by round, images/s over the calibration units/s of the same round."""
    return [r / u if u > 0 else float("nan") for r, u in zip(rates, units_per_s)]


@dataclass
class TimingJob:
    """One throughput row to time: ``detector`` (fitted, in eval mode) on ``split``'s first
    :data:`TIMING_IMAGES` test images in batches of ``batch_size``. ``name`` is the row's name,
    ``task`` the name an error is reported under, ``scoring`` the scoring pass's throughput
    (None for a task from the cache)."""

    name: str
    task: str
    detector: Any
    split: Any
    batch_size: int
    scoring: dict[str, Any] | None = None


def time_jobs(jobs: Sequence[TimingJob], warmup: int = 1, rounds: int = 5, min_seconds: float = 0.0,
              max_rounds: int = 200, calibrate: bool = True,
              clock: Clock | None = None) -> list[dict[str, Any] | BaseException]:
    """Time every job in one interleaved phase; per job its figures (:func:`lane_figures`, plus the
    scoring pass's :data:`SCORING_ACCOUNTING`) or the exception that stopped it.

    Each job's images are decoded into memory first and cut into full batches
    (:func:`~facebench.harness.run.timing.detector_batches`); then ``warmup`` untimed calls per lane,
    and rounds as :func:`run_rounds` makes them, each call timed alone (CUDA events and
    synchronisation on a GPU; nothing else inside the clock), glibc's malloc thresholds set as a
    long-running process has them (:func:`~facebench.harness.run.allocator.steady_allocator`).
    With ``calibrate`` and at least one
    CPU lane, the calibration workload runs as one more lane, sized to last about as long as a
    detector call. Every detector's own caches are bypassed (:func:`uncached`), so repeated rounds
    time real work.
    """
    results: list[dict[str, Any] | BaseException | None] = [None] * len(jobs)
    lanes: dict[int, Lane] = {}
    images: dict[int, int] = {}
    with ExitStack() as stack:
        stack.enter_context(steady_allocator())  # the same malloc thresholds in every process: see .allocator
        for index, job in enumerate(jobs):
            try:
                lanes[index], images[index] = detector_lane(job)
            except Exception as exc:  # noqa: BLE001 - a job that cannot load its images fails alone
                results[index] = exc
        # eye detectors would otherwise time cache hits of localisations made while scoring
        for index in lanes:
            stack.enter_context(uncached(jobs[index].detector))
        calls = warm_up(list(lanes.values()), warmup, clock)
        calibration = None
        if calibrate and any(not lane.device.startswith("cuda") for lane in lanes.values()):
            unit = warm_up([calibration_lane(1)], 2, clock).get(CALIBRATION_LANE, 0.0)
            calibration = calibration_lane(calibration_units([calls.get(lane.name, 0.0) for lane in lanes.values()], unit))
            warm_up([calibration], 1, clock)
        live = [lane for lane in lanes.values() if lane.error is None]
        run_rounds(live + ([calibration] if calibration else []), rounds, min_seconds, max_rounds, clock)
    for index, lane in lanes.items():
        if lane.error is not None:
            results[index] = lane.error
            continue
        paired = calibration if not lane.device.startswith("cuda") else None
        figures = lane_figures(lane, images[index], paired)
        scoring = jobs[index].scoring or {}
        results[index] = {**figures, **{key: scoring.get(key) for key in SCORING_ACCOUNTING}}
    return results  # type: ignore[return-value]


def detector_lane(job: TimingJob) -> tuple[Lane, int]:
    """The lane of one job, and how many distinct images it cycles through."""
    rows = job.split.rows()[:TIMING_IMAGES]
    if not rows:
        raise CorpusError(f"{job.split.root}: no test images to time the detector on; generate more images")
    batches = detector_batches(largest_group(job.split, rows, policy_of(job.detector)), job.batch_size)
    device = str(getattr(job.detector, "device", "cpu") or "cpu")
    lane = Lane(job.name, job.detector.score, batches, len(batches[0]), device)
    return lane, lane.size * len(batches)
