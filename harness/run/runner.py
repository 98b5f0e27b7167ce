"""Drives a suite: build corpora, split by pair, fit, score, compute metrics, store the run."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Collection

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..contracts.version import __version__

from ..contracts import registry
from ..data.corpus import FORMAT_VERSION, Corpus, CorpusError, CorpusWriter
from ..contracts.errors import FacebenchError
from ..data.corpus_record import CorpusRecord, cache_folder_name, cache_key_of
from ..data.environment import environment
from ..data.results import Results, save_results
from .metrics import ap_chance, calibrated_threshold, compute_metrics, metrics_with_ci
from .perturb import Perturbation
from .perturb import parse as parse_perturbation
from .provenance import provenance
from .sensitivity import counterfactual_pairs, sensitivity
from ..data.store import Store
from ..data.suite import BootstrapSpec, DetectorSpec, GeneratorSpec, SplitSpec, Suite, SuiteError, ThroughputSpec
from .timing import (ThroughputMeter, benchmark_calls, calibrate_machine, current_rss_bytes,
                                      detector_batches, is_out_of_memory, release_cuda_memory, set_eval,
                                      sweep_batch_sizes)

#: The clean images: no perturbation.
CLEAN = parse_perturbation("none")
#: Bumped when task results change meaning, so cached tasks of an older harness are measured again.
TASK_FORMAT = 2  # 2: thresholds calibrated per row (all, each artifact); an ap_chance row
#: The timing phase holds at most this many test images in memory (the first of the split).
TIMING_IMAGES = 512
#: What the scoring pass adds to the timing phase's figures: its own accounting of decoding and memory.
SCORING_ACCOUNTING = ("decode_images_per_s", "peak_rss_mb")


class MixedSizeError(FacebenchError):
    """The sources of one corpus make images of different sizes."""


class DetectorOutputError(FacebenchError):
    """A detector returned scores of the wrong shape, with NaN/inf, or outside its declared ``score_range``."""


def make_progress(enabled: bool = True) -> Progress | None:
    """Progress bars on stderr: done/total, rate, elapsed and remaining time; silent when stderr is
    not a terminal (a log or a pipe would only get a stray blank line)."""
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import TimeRemainingColumn

    from .progress import RateColumn

    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeElapsedColumn(),
        TextColumn("eta"), TimeRemainingColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )


def _track(progress: Progress | None, description: str, total: int):
    return progress.add_task(description, total=total) if progress is not None else None


def _advance(progress: Progress | None, task, amount: int = 1) -> None:
    if progress is not None:
        progress.advance(task, amount)


def generator_config(spec: GeneratorSpec, generator: Any) -> dict[str, Any]:
    """What made a corpus's images: the generator's full config, counts and seeds."""
    params = generator.config() if hasattr(generator, "config") else dict(spec.params)
    return {
        "name": spec.name,
        "version": str(generator.version),
        "params": params,
        "count": spec.count,
        "seed_start": spec.seed_start,
        "corpus_format": FORMAT_VERSION,
    }


def corpus_key(spec: GeneratorSpec, generator: Any, reals: Any = None) -> tuple[dict[str, Any], str]:
    """The generator's full config and a content hash (of it and of its reals' config) naming its cached corpus."""
    config = generator_config(spec, generator)
    keyed = [config] if spec.reals is None else [config, generator_config(spec.reals, reals)]
    # the code and files behind the images too: a changed generator never reuses an old corpus
    keyed.append(provenance(type(generator), spec.params))
    if spec.reals is not None:
        keyed.append(provenance(type(reals), spec.reals.params))
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]
    return config, key


#: Key of a generator throughput dict from :func:`build_corpus` that marks figures of a reused corpus
#: (taken by the run that built it, not by this one).
REUSED_CORPUS = "reused_corpus"


def build_corpus(spec: GeneratorSpec, corpora_dir: Path, progress: Progress | None = None,
                 executor: Any = None, fresh: bool = False) -> tuple[Corpus, dict]:
    """The corpus of ``spec``, reused from the cache under ``corpora_dir`` or built there
    (by ``executor``, default: in this process); ``fresh`` builds it again even when cached.
    The throughput of a reused corpus is the build's, marked ``REUSED_CORPUS: True``."""
    generator = registry.create("generator", spec.name, **spec.params)
    reals = registry.create("generator", spec.reals.name, **spec.reals.params) if spec.reals else None
    _, key = corpus_key(spec, generator, reals)
    path = corpora_dir / cache_folder_name(spec.label, key)
    cached = (path / "corpus.json").exists()
    if cached and not fresh:
        corpus = Corpus.open(path)
        return corpus, {**corpus.meta["throughput"], REUSED_CORPUS: True}
    if executor is None:
        return generate_corpus(spec, path, progress, overwrite=cached, generator=generator, reals=reals)
    return executor.generate_corpus(spec, path, progress, overwrite=cached, generator=generator, reals=reals)


def generation_sources(spec: GeneratorSpec, generator: Any = None, reals: Any = None) -> tuple[Any, Any, list[dict]]:
    """``spec``'s generator and its reals' source (built where not given), and the configs its corpus records."""
    generator = generator or registry.create("generator", spec.name, **spec.params)
    if spec.reals is not None and reals is None:
        reals = registry.create("generator", spec.reals.name, **spec.reals.params)
    configs = [generator_config(spec, generator)] + ([generator_config(spec.reals, reals)] if spec.reals else [])
    return generator, reals, configs


def generate_corpus(
    spec: GeneratorSpec,
    path: Path,
    progress: Progress | None = None,
    *,
    overwrite: bool = False,
    generator: Any = None,
    reals: Any = None,
) -> tuple[Corpus, dict]:
    """Generate ``spec``'s corpus at ``path``, timing the generator; returns it and the throughput."""
    generator, reals, configs = generation_sources(spec, generator, reals)
    meter = ThroughputMeter(device=getattr(generator, "device", "cpu"))
    shapes: dict[tuple[int, ...], str] = {}
    with CorpusWriter(path, configs, overwrite=overwrite) as writer:
        sources = [(spec, generator, meter)] + ([(spec.reals, reals, None)] if spec.reals else [])
        for source_spec, source, timing in sources:
            seeds = list(range(source_spec.seed_start, source_spec.seed_start + source_spec.count))
            task = _track(progress, f"generate {spec.label}" + ("" if source is generator else " (reals)"), len(seeds))
            for start in range(0, len(seeds), source_spec.batch_size):
                chunk = seeds[start : start + source_spec.batch_size]
                if timing is None:
                    batch = source.generate(chunk)
                else:
                    with timing.batch() as timer:
                        batch = source.generate(chunk)
                        timer.items = len(batch)
                check_same_shape(shapes, tuple(batch.images.shape[1:3]), source_spec.name, spec.label)
                writer.write(batch)
                _advance(progress, task, len(chunk))
        throughput = {**meter.summary(), "batch_size": spec.batch_size}
        if hasattr(generator, "timing_summary"):  # e.g. per-step latency of a diffusion pipeline
            throughput.update(generator.timing_summary())
        corpus = writer.close(extra_meta={"throughput": throughput})
    return corpus, throughput


def check_same_shape(shapes: dict, shape: tuple[int, ...], source: str, label: str) -> None:
    """Detectors read a corpus in batches of one shape: refuse a ``(height, width)`` that differs
    from the one already seen in ``shapes`` (shape -> source)."""
    shapes.setdefault(shape, source)
    if len(shapes) > 1:
        sizes = ", ".join(f"{name}: {h}x{w}" for (h, w), name in shapes.items())
        raise MixedSizeError(f"corpus {label!r}: its sources make images of different sizes ({sizes}); "
                          "give them the same resolution parameter")


@dataclass
class Evaluation:
    """What one detector, trained on one corpus, did on one test corpus under one perturbation."""

    metrics: list[dict[str, Any]]
    throughput: dict[str, Any] | None
    scores: list[dict[str, Any]] = field(repr=False)
    cached: bool = False
    #: What went wrong but was recovered from, e.g. the batch size backed off after running out of memory.
    warnings: list[str] = field(default_factory=list)


def _check_scores(scores: Any, n: int, detector: str, score_range: Any = None) -> np.ndarray:
    """``scores`` as float64 ``[n]``; DetectorOutputError when the shape is wrong, a score is NaN or
    infinite, or (for a detector that declares ``score_range = (low, high)``) outside that range."""
    try:
        scores = np.asarray(scores, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DetectorOutputError(f"detector {detector!r} returned scores that are not numbers ({exc})") from None
    if scores.shape != (n,):
        raise DetectorOutputError(f"detector {detector!r} returned {scores.shape} scores for {n} images")
    if not np.all(np.isfinite(scores)):
        raise DetectorOutputError(f"detector {detector!r} returned NaN or infinite scores")
    if score_range is not None:
        try:
            low, high = (float(v) for v in score_range)
        except (TypeError, ValueError):
            raise DetectorOutputError(f"detector {detector!r} declares score_range {score_range!r}; expected (low, high)") from None
        outside = (scores < low) | (scores > high)
        if outside.any():
            raise DetectorOutputError(
                f"detector {detector!r} returned {int(outside.sum())} score(s) outside its declared score_range "
                f"[{low:g}, {high:g}] (e.g. {scores[outside][0]:g})"
            )
    return scores


def three_way_split(corpus: Corpus, split: SplitSpec) -> tuple[Corpus, Corpus, Corpus]:
    """(fit, calibration, test) views by pair; calibration is empty when its fraction is 0."""
    train, test = corpus.split(split.test_fraction, split.seed)
    if split.calibration_fraction <= 0:
        return train, train.select(ids=()), test
    fit, calibration = train.split(split.calibration_fraction, split.seed + 1)
    return fit, calibration, test


#: What scoring keeps of each manifest row (the rest, e.g. landmarks and masks, can be large).
_SCORED_FIELDS = ("id", "pair", "label", "artifact_names", "source")


def score_split(detector: Any, split: Corpus, batch_size: int, label: str, perturbation: Perturbation = CLEAN,
                progress: Progress | None = None, description: str = "") -> tuple[list[dict], np.ndarray, dict]:
    """Score every image of ``split`` in batches: (rows, scores, throughput).

    The clock runs around ``detector.score`` only; reading and decoding the images is timed
    apart (``decode_images_per_s``), and so is the perturbation, which belongs to neither.
    ``peak_rss_mb`` is the process's resident memory read after each batch (a sampling thread
    would cost fast detectors a few percent of their speed).

    A batch that runs out of memory (:func:`~facebench.harness.run.timing.is_out_of_memory`) is
    scored again in halves, down to one image at a time, and later batches keep the smaller
    size; the throughput's ``batch_size`` is the size scoring ended at, and its ``warnings``
    says what happened. Out of memory with one image fails the task.
    """
    meter = ThroughputMeter(device=str(getattr(detector, "device", "cpu") or "cpu"))
    rows_all, scores_all, decode_seconds, peak_rss = [], [], 0.0, 0
    size, backoffs = batch_size, []
    score_range = getattr(detector, "score_range", None)
    task = _track(progress, description, len(split))
    batches = split.iter_batches(batch_size)
    while True:
        start = time.perf_counter()
        try:
            rows, images = next(batches)
        except StopIteration:
            break
        decode_seconds += time.perf_counter() - start
        if perturbation.steps:
            images = perturbation.apply(images, keys=[f"{split.digest}:{row['id']}" for row in rows])
        scores, size = score_images(detector, images, size, meter, label, score_range, backoffs)
        scores_all.extend(scores)
        peak_rss = max(peak_rss, current_rss_bytes() or 0)
        rows_all.extend({key: row[key] for key in _SCORED_FIELDS} for row in rows)
        _advance(progress, task, len(rows))
    scores = np.concatenate(scores_all) if scores_all else np.zeros(0)
    images = len(rows_all)
    throughput = {**meter.summary(), "batch_size": size, "peak_rss_mb": peak_rss / 2**20 if peak_rss else None,
                  "decode_images_per_s": images / decode_seconds if decode_seconds > 0 else None}
    if backoffs:
        throughput["warnings"] = [f"out of memory at batch size {backoffs[0][0]} ({backoffs[0][1]}); "
                                  f"backed off to batch size {size}"]
    return rows_all, scores, throughput


def score_images(detector: Any, images: np.ndarray, size: int, meter: ThroughputMeter, label: str,
                 score_range: Any, backoffs: list) -> tuple[list[np.ndarray], int]:
    """Score ``images`` in chunks of ``size``, timing each ``detector.score`` call on ``meter``;
    a chunk that runs out of memory is scored again in halves (appended to ``backoffs``).
    Returns the checked scores per chunk and the size scoring ended at."""
    scores_all, done = [], 0
    while done < len(images):
        chunk = images[done : done + size]
        try:
            with meter.batch(len(chunk)):
                scores = detector.score(chunk)
        except Exception as exc:
            if size == 1 or not is_out_of_memory(exc):
                raise
            backoffs.append((size, _one_line(exc)))
        else:
            scores_all.append(_check_scores(scores, len(chunk), label, score_range))
            done += len(chunk)
            continue
        # after the except block, so the traceback's frames (and their tensors) are gone
        release_cuda_memory(meter.device)
        size = max(1, size // 2)
    return scores_all, size


def calibrate(detector: Any, calibration: Corpus, batch_size: int, label: str) -> dict[str, float] | None:
    """Thresholds picked on the calibration split by :func:`calibrated_thresholds` (None: no split or one class)."""
    if len(calibration) == 0:
        return None
    rows, scores, _ = score_split(detector, calibration, batch_size, label)
    return calibrated_thresholds(rows, scores) or None


def row_subset(labels: np.ndarray, names: list[set[str]], artifact: str) -> np.ndarray:
    """Which images a metric row holds: every image for ``all``; else every real plus the fakes carrying ``artifact``."""
    if artifact == "all":
        return np.ones(len(labels), bool)
    return (labels == 0) | np.array([artifact in n for n in names], dtype=bool)


def calibrated_thresholds(rows: list[dict], scores: np.ndarray) -> dict[str, float]:
    """One threshold per metric row, each picked on the same subset of the calibration split
    as the row it is applied to: ``all`` on every image, an artifact on the reals plus the fakes
    carrying it. Each maximises balanced accuracy (each class weighs half, whatever the fake
    share). A subset without both classes gets none."""
    labels = np.array([int(r["label"]) for r in rows])
    names = [set(r["artifact_names"]) for r in rows]
    out = {}
    for artifact in ["all", *sorted(set().union(set(), *names))]:
        keep = row_subset(labels, names, artifact)
        if len(np.unique(labels[keep])) == 2:
            out[artifact] = calibrated_threshold(labels[keep], scores[keep])
    return out


def _row_threshold(threshold: float | dict[str, float] | None, artifact: str) -> float | None:
    """The calibrated threshold of one row: its own, else the ``all`` one (an artifact the
    calibration split lacks, e.g. a test corpus other than the training one)."""
    if not isinstance(threshold, dict):
        return threshold
    return threshold.get(artifact, threshold.get("all"))


def metric_rows(rows: list[dict], scores: np.ndarray, threshold: float | dict[str, float] | None,
                bootstrap: BootstrapSpec, sensitivity_on: bool, base: dict[str, Any]) -> list[dict[str, Any]]:
    """Metric rows with bootstrap intervals for all images and per artifact, plus counterfactual sensitivity
    and each row's ``ap_chance``. ``threshold``: one calibrated threshold for every row, or one per row
    (:func:`calibrated_thresholds`)."""
    labels = np.array([int(r["label"]) for r in rows])
    pairs = np.array([r["pair"] for r in rows])
    names = [set(r["artifact_names"]) for r in rows]
    out = []
    for artifact in ["all", *sorted(set().union(*names))]:
        keep = row_subset(labels, names, artifact)
        n_fake = int(labels[keep].sum())
        counts = {"n_real": int(keep.sum()) - n_fake, "n_fake": n_fake}
        cut = _row_threshold(threshold, artifact)
        if bootstrap.resamples > 0:
            values = metrics_with_ci(labels[keep], scores[keep], pairs[keep], n_resamples=bootstrap.resamples,
                                     seed=bootstrap.seed, confidence=bootstrap.confidence, calibrated_threshold=cut)
        else:
            values = {name: {"value": value, "ci_low": None, "ci_high": None}
                      for name, value in compute_metrics(labels[keep], scores[keep], calibrated_threshold=cut).items()}
        values["ap_chance"] = {"value": ap_chance(labels[keep]), "ci_low": None, "ci_high": None}
        if sensitivity_on and artifact != "all":
            real, fake = counterfactual_pairs(rows, scores, artifact)
            values.update(sensitivity(real, fake, cut, bootstrap.resamples, bootstrap.confidence, bootstrap.seed))
        out += [{**base, "artifact": artifact, "metric": name, **value, **counts} for name, value in values.items()]
    return out


def task_key(spec: DetectorSpec, detector_cls: Any, train: Corpus, test: Corpus, perturbation: str, suite: Suite,
             labels: tuple[str, str]) -> str:
    """Content hash naming one cached task result: the detector's name, version, parameters,
    code and the files it loads (:func:`~facebench.harness.run.provenance.provenance`), facebench's
    code and version, the corpora's content and the protocol settings."""
    content = {
        "detector": spec.name, "label": spec.label, "version": str(getattr(detector_cls, "version", "?")),
        "params": spec.params, "batch_size": spec.batch_size, "train": train.digest, "test": test.digest,
        "corpus_labels": labels, "perturbation": perturbation, "split": asdict(suite.split),
        "bootstrap": asdict(suite.bootstrap), "sensitivity": suite.protocols.sensitivity, "harness": TASK_FORMAT,
        "provenance": provenance(detector_cls, spec.params),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


class TaskCache:
    """Finished task results as JSON files under ``root``, written atomically, so a killed run
    resumes where it stopped and a re-run reuses what it already measured."""

    def __init__(self, root: Path, enabled: bool = True, fresh_detectors: Collection[str] = ()):
        self.root = root
        self.enabled = enabled
        #: Labels of detectors whose tasks are measured again (and cached anew) even when cached.
        self.fresh_detectors = frozenset(fresh_detectors)

    def load(self, key: str, detector: str | None = None) -> Evaluation | None:
        """The cached result named ``key``; None when there is none, it is damaged, or the
        cache is off for every detector or for ``detector`` (a label)."""
        path = self.root / f"{key}.json"
        if not self.enabled or detector in self.fresh_detectors or not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            return Evaluation(data["metrics"], data["throughput"], data["scores"], cached=True,
                              warnings=list(data.get("warnings", [])))
        except (OSError, ValueError, KeyError):
            return None  # a damaged entry is measured again

    def save(self, key: str, evaluation: Evaluation) -> str | None:
        """Cache ``evaluation``; returns why it could not be cached (e.g. the disk is full), or None.

        A failure to cache loses nothing of this run: the result is still used, only not reused later.
        """
        if not self.enabled:
            return None
        data = {"metrics": evaluation.metrics, "throughput": evaluation.throughput, "scores": evaluation.scores,
                "warnings": evaluation.warnings}
        temporary = self.root / f".{key}.{os.getpid()}.tmp"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(data, default=_json_default))
            os.replace(temporary, self.root / f"{key}.json")
        except OSError as exc:
            try:
                temporary.unlink(missing_ok=True)
            except OSError:
                pass
            return f"result not cached in {self.root} ({exc.strerror or exc}); a rerun measures it again"
        return None


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def evaluate_group(
    spec: DetectorSpec,
    train: tuple[str, Corpus],
    tests: list[tuple[str, Corpus]],
    suite: Suite,
    cache: TaskCache,
    progress: Progress | None = None,
    executor: Any = None,
) -> tuple[list[tuple[str, Evaluation | Exception]], Any]:
    """Fit ``spec``'s detector on one corpus (if it learns), calibrate there, and score the test
    split of every corpus in ``tests`` under every perturbation; cached tasks are reused.

    Returns (task name, evaluation or the error of that task) per task, and the fitted detector
    (None when every task came from the cache). A failure to build or fit the detector raises:
    every task of the group needs it.
    """
    train_label, train_corpus = train
    perturbations = [CLEAN, *(parse_perturbation(p) for p in suite.protocols.perturbations)]
    detector_cls = registry.load("detector", spec.name)
    todo = [(test_label, test_corpus, p) for test_label, test_corpus in tests for p in perturbations]
    keys = {(t, p.name): task_key(spec, detector_cls, train_corpus, c, p.name, suite, (train_label, t)) for t, c, p in todo}
    results: list[tuple[str, Evaluation | Exception]] = []
    cached = {k: cache.load(key, spec.label) for k, key in keys.items()}
    detector, threshold = None, None
    for test_label, test_corpus, perturbation in todo:
        name = _task_name(spec.label, train_label, test_label, perturbation.name)
        hit = cached[(test_label, perturbation.name)]
        if hit is not None:
            hit.throughput = None  # speed is measured in every run, never served from the cache
            results.append((name, hit))
            continue
        if detector is None:
            detector, threshold = _fitted(spec, train_label, train_corpus, suite.split, progress)
        try:
            evaluation = _evaluate_one(detector, spec, threshold, train_label, (test_label, test_corpus),
                                       perturbation, suite, progress, executor)
        except Exception as exc:  # one failing task must not lose the group's others
            results.append((name, exc))
            continue
        problem = cache.save(keys[(test_label, perturbation.name)], replace(evaluation, throughput=None))
        if problem:
            evaluation.warnings.append(problem)
        results.append((name, evaluation))
    own = dict(results).get(_task_name(spec.label, train_label, train_label, CLEAN.name))
    if isinstance(own, Evaluation) and suite.throughput.measure:
        task = f"time {spec.label} on {train_label}"
        try:
            detector = detector or fitted_detector(spec, train_label, train_corpus, suite.split, progress)
            own.throughput = time_task(detector, spec, train_corpus, suite, own.throughput, progress, task)
        except Exception as exc:  # the metrics stand; only the speed figure is lost
            results.append((task, exc))
    elif isinstance(own, Evaluation):
        own.throughput = None
    return results, detector


def time_task(detector: Any, spec: DetectorSpec, corpus: Corpus, suite: Suite, scoring: dict[str, Any] | None = None,
              progress: Progress | None = None, description: str = "") -> dict[str, Any]:
    """The throughput row figures of ``detector`` on ``corpus``'s test split: the timing phase's
    (:func:`time_detector`), plus the scoring pass's own accounting (:data:`SCORING_ACCOUNTING`)
    when it scored in this run (``scoring``: its throughput; None for a task from the cache)."""
    _, _, test = three_way_split(corpus, suite.split)
    batch_size = int((scoring or {}).get("batch_size") or _batch_size(spec, detector))
    task = _track(progress, description, 1)
    figures = time_detector(detector, test, batch_size, suite.throughput)
    _advance(progress, task)
    figures.update({key: (scoring or {}).get(key) for key in SCORING_ACCOUNTING})
    return figures


def time_detector(detector: Any, split: Corpus, batch_size: int, settings: ThroughputSpec = ThroughputSpec()) -> dict[str, Any]:
    """Images/s of ``detector.score`` on ``split``, timed apart from scoring (timm's recipe).

    The first :data:`TIMING_IMAGES` images of ``split`` are decoded into memory and cut into full
    batches of ``batch_size`` (:func:`~facebench.harness.run.timing.detector_batches`: a remainder is
    left out, fewer images than one batch are repeated to fill it). After ``settings.warmup``
    untimed calls, each round is one ``score`` call on the next batch
    (:func:`~facebench.harness.run.timing.benchmark_calls`): at least ``settings.rounds`` and one per
    batch, more until ``settings.min_seconds`` are timed. Every round does the same work, so
    corpora of one image size are timed on equal terms. Each call is timed alone
    (:class:`~facebench.harness.run.timing.CallClock`: CUDA events and synchronisation on a GPU) and
    nothing else sits inside the clock: no decoding, checks or bookkeeping; the eye localiser's
    content cache is bypassed, so repeated rounds time real work. Returns device, batch_size,
    images (distinct images timed), seconds (the median round), images_per_s (the median
    round's) with images_per_s_q1 / _q3 and round_images_per_s (every round), rounds, and
    per-image latency_p50/p95/p99_ms.
    """
    rows = split.rows()[:TIMING_IMAGES]
    if not rows:
        raise CorpusError(f"{split.root}: no test images to time the detector on; generate more images")
    batches = detector_batches(split.load_images(rows), batch_size)
    from ...detectors.localise import cache_bypassed

    device = str(getattr(detector, "device", "cpu") or "cpu")
    with cache_bypassed():  # eye detectors would otherwise time cache hits of localisations made while scoring
        result = benchmark_calls(detector.score, batches, device, warmup=settings.warmup, rounds=settings.rounds,
                                 min_seconds=settings.min_seconds)
    keep = ("device", "batch_size", "images", "images_per_s", "images_per_s_q1", "images_per_s_q3",
            "round_images_per_s", "rounds", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms")
    return {**{key: result[key] for key in keep}, "seconds": result["median_round_s"]}


def _task_name(detector: str, train: str, test: str, perturbation: str) -> str:
    name = f"detect {detector} on {test}"
    if train != test:
        name += f" (trained on {train})"
    return name if perturbation == "none" else f"{name} under {perturbation}"


def _batch_size(spec: DetectorSpec, detector: Any) -> int:
    return int(spec.batch_size or getattr(detector, "batch_size", 32))


def _fitted(spec: DetectorSpec, label: str, corpus: Corpus, split: SplitSpec,
            progress: Progress | None) -> tuple[Any, dict[str, float] | None]:
    detector = fitted_detector(spec, label, corpus, split, progress)
    _, calibration, _ = three_way_split(corpus, split)
    return detector, calibrate(detector, calibration, _batch_size(spec, detector), spec.label)


def fitted_detector(spec: DetectorSpec, label: str, corpus: Corpus, split: SplitSpec,
                    progress: Progress | None = None) -> Any:
    """``spec``'s detector fitted on ``corpus``'s fit split (if it learns), in eval mode."""
    detector = registry.create("detector", spec.name, **spec.params)
    fit_part, _, test = three_way_split(corpus, split)
    if len(test) == 0:
        raise CorpusError(f"{corpus.root}: the test split is empty; generate more images")
    if detector.requires_fit:
        if len(np.unique(fit_part.labels)) < 2:
            raise CorpusError(f"{corpus.root}: the train split needs real and fake images to fit {spec.label!r}")
        task = _track(progress, f"fit {spec.label} on {label}", 1)
        detector.fit(fit_part.load_images(), fit_part.labels)
        _advance(progress, task)
    set_eval(detector)
    return detector


def _evaluate_one(detector: Any, spec: DetectorSpec, threshold: dict[str, float] | None, train_label: str,
                  test: tuple[str, Corpus], perturbation: Perturbation, suite: Suite,
                  progress: Progress | None, executor: Any = None) -> Evaluation:
    test_label, test_corpus = test
    _, _, test_split = three_way_split(test_corpus, suite.split)
    if len(test_split) == 0:
        raise CorpusError(f"{test_corpus.root}: the test split is empty; generate more images")
    batch_size = _batch_size(spec, detector)
    description = f"score {spec.label} on {test_label}" + ("" if perturbation is CLEAN else f" ({perturbation.name})")
    score = score_split if executor is None else executor.score_split
    rows, scores, throughput = score(detector, test_split, batch_size, spec.label, perturbation, progress, description)
    warnings = throughput.pop("warnings", [])
    generator = ",".join(sorted({r["source"] for r in rows}))
    base = {"corpus": test_label, "train_corpus": train_label, "corpus_digest": test_corpus.digest,
            "generator": generator, "detector": spec.label, "perturbation": perturbation.name}
    metrics = metric_rows(rows, scores, threshold, suite.bootstrap, suite.protocols.sensitivity, base)
    score_rows = [
        {"corpus": test_label, "train_corpus": train_label, "perturbation": perturbation.name, "detector": spec.label,
         "corpus_digest": test_corpus.digest, "id": r["id"], "pair": r["pair"], "label": int(r["label"]), "artifact_names": list(r["artifact_names"]),
         "score": float(s)}
        for r, s in zip(rows, scores)
    ]
    # One speed figure per (detector, corpus): clean images, trained where tested.
    keep_speed = perturbation is CLEAN and train_label == test_label
    return Evaluation(metrics, throughput if keep_speed else None, score_rows, warnings=warnings)


def evaluate(corpus: Corpus, spec: DetectorSpec, split: SplitSpec, corpus_label: str,
             progress: Progress | None = None, bootstrap: BootstrapSpec = BootstrapSpec(),
             throughput: ThroughputSpec = ThroughputSpec()) -> Evaluation:
    """Fit ``spec``'s detector on the train split (if it learns), score the test split and (unless
    ``throughput.measure`` is off) time it in the timing phase: one task, uncached."""
    suite = Suite(name="detect", source="detect", generators=(), detectors=(spec,), split=split, bootstrap=bootstrap,
                  throughput=throughput)
    detector, threshold = _fitted(spec, corpus_label, corpus, split, progress)
    evaluation = _evaluate_one(detector, spec, threshold, corpus_label, (corpus_label, corpus), CLEAN, suite, progress)
    evaluation.throughput = (time_task(detector, spec, corpus, suite, evaluation.throughput, progress,
                                       f"time {spec.label}") if throughput.measure else None)
    return evaluation


def sweep(spec: DetectorSpec, label: str, corpus: Corpus, suite: Suite, detector: Any = None) -> list[dict[str, Any]]:
    """Throughput rows of a timm-style batch-size sweep of ``spec``'s detector fitted on ``corpus``
    (``detector``, or fitted here when None) on the first images of its test split."""
    settings = suite.throughput
    if detector is None:
        detector = fitted_detector(spec, label, corpus, suite.split)
    _, _, test = three_way_split(corpus, suite.split)
    from ...detectors.localise import cache_bypassed

    images = test.load_images(test.rows()[: settings.images])
    with cache_bypassed():
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


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_record(suite: str, started: str, status: str, info: dict[str, Any]) -> dict[str, Any]:
    """The store's row for a run that started at ``started`` and ends now; info gains the environment."""
    return {
        "run_id": new_run_id(),
        "suite": suite,
        "started": started,
        "finished": now(),
        "status": status,
        "facebench_version": __version__,
        "info": {**info, "environment": environment()},
    }


def fresh_detector_labels(suite: Suite, names: Collection[str]) -> set[str]:
    """The labels of ``suite``'s detectors named in ``names`` (by label or by plug-in name);
    SuiteError naming the known ones for a name that is neither."""
    labels = set()
    for name in names:
        matched = {spec.label for spec in suite.detectors if name in (spec.label, spec.name)}
        if not matched:
            known = sorted({spec.label for spec in suite.detectors} | {spec.name for spec in suite.detectors})
            raise SuiteError(f"--fresh-detectors: unknown detector {name!r} in suite {suite.name!r}; "
                             f"known: {', '.join(known)}")
        labels |= matched
    return labels


def check_suite(suite: Suite) -> None:
    """Fail before any work if a plug-in of ``suite`` is unknown, broken, or given unknown parameters."""
    for kind, specs in (("generator", suite.generators), ("detector", suite.detectors)):
        for spec in specs:
            cls = registry.load(kind, spec.name)
            registry.check_params(cls, spec.params, f"{suite.source}: {kind} {spec.label!r}")
            reals = getattr(spec, "reals", None)
            if reals is not None:
                registry.check_params(registry.load(kind, reals.name), reals.params, f"{suite.source}: {kind} {spec.label!r} reals")


def run_suite(suite: Suite, results_dir: str | Path, store_path: str | Path | None = None, show_progress: bool = True,
              use_cache: bool = True, executor: Any = None, fresh: bool = False,
              fresh_detectors: Collection[str] = ()) -> Results:
    """Run every generator x detector task of ``suite``; a failing task is recorded, the rest go on.

    ``executor`` (see :mod:`facebench.harness.run.executors`) generates corpora and scores splits;
    None: in this process. Fitting, calibration, metrics, the cache and the store stay here.

    Finished tasks are cached under ``results_dir/tasks`` as they end, so a killed run resumes
    where it stopped and a repeated run reuses them (``use_cache=False`` measures every task again).
    ``fresh`` also generates every corpus again; ``fresh_detectors`` (labels or plug-in names)
    measures only those detectors' tasks again. Fresh results replace the cached ones.
    """
    check_suite(suite)
    fresh_labels = fresh_detector_labels(suite, fresh_detectors)
    results_dir = Path(results_dir)
    store = Store(store_path if store_path is not None else results_dir / "facebench.sqlite")
    cache = TaskCache(results_dir / "tasks", enabled=use_cache and not fresh, fresh_detectors=fresh_labels)
    started, clock = now(), time.perf_counter()
    # The machine's speed on a fixed workload, in this process: lets compare relate figures across machines.
    calibration = calibrate_machine() if suite.throughput.measure else None
    metrics, throughput, errors, score_rows, warnings = [], [], [], [], []
    corpora: list[tuple[GeneratorSpec, Corpus]] = []
    reused = task_count = 0
    reused_corpora: list[str] = []
    progress = make_progress(show_progress)
    with progress if progress is not None else nullcontext():
        for gen_spec in suite.generators:
            try:
                corpus, gen_throughput = build_corpus(gen_spec, results_dir / "corpora", progress, executor, fresh)
            except Exception as exc:  # one broken generator must not lose the others' results
                errors.append({"task": f"generate {gen_spec.label}", "message": _one_line(exc)})
                continue
            corpora.append((gen_spec, corpus))
            if gen_throughput.pop(REUSED_CORPUS, False):
                reused_corpora.append(gen_spec.label)
            throughput.append({"kind": "generator", "name": gen_spec.label, **gen_throughput})
        labelled = [(spec.label, corpus) for spec, corpus in corpora]
        for det_spec in suite.detectors:
            first_fitted = None
            for train in labelled:
                tests = labelled if suite.protocols.cross_generator else [train]
                try:
                    outcomes, fitted = evaluate_group(det_spec, train, tests, suite, cache, progress, executor)
                except Exception as exc:
                    errors.append({"task": f"fit {det_spec.label} on {train[0]}", "message": _one_line(exc)})
                    continue
                task_count += len(outcomes)
                for task, outcome in outcomes:
                    if isinstance(outcome, Exception):
                        errors.append({"task": task, "message": _one_line(outcome)})
                        continue
                    reused += outcome.cached
                    warnings += [{"task": task, "message": message} for message in outcome.warnings]
                    metrics += outcome.metrics
                    score_rows += outcome.scores
                    if outcome.throughput is not None:
                        throughput.append({"kind": "detector", "name": f"{det_spec.label} @ {train[0]}", **outcome.throughput})
                if train is labelled[0]:
                    first_fitted = fitted
            if suite.throughput.measure and suite.throughput.batch_sizes and labelled:
                try:
                    throughput += sweep(det_spec, *labelled[0], suite, first_fitted)
                except Exception as exc:
                    errors.append({"task": f"throughput sweep of {det_spec.label}", "message": _one_line(exc)})
    run = run_record(
        suite.name,
        started,
        "ok" if not errors else ("partial" if metrics else "failed"),
        {"suite_source": suite.source, "corpora": {spec.label: corpus.digest for spec, corpus in corpora},
         "corpus_paths": {spec.label: str(corpus.root.resolve()) for spec, corpus in corpora},
         "split": asdict(suite.split),
         "cached_tasks": reused, "reused_corpora": reused_corpora,
         "seconds": round(time.perf_counter() - clock, 3), "warnings": warnings,
         **({"calibration": calibration} if calibration else {})},
    )
    records = [CorpusRecord(spec.label, corpus.digest, str(corpus.root.resolve()), cache_key_of(spec.label, corpus.root))
               for spec, corpus in corpora]
    result = Results(run, metrics, throughput, errors, score_rows, corpora=records,
                     run_dir=results_dir / "runs" / run["run_id"], task_count=task_count)
    return save_results(result, store)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, FacebenchError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
