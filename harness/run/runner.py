"""Drives a suite: build corpora, split by pair, fit, score, compute metrics, store the run.

The pieces live in the run wing, one job each: :mod:`.corpora` (the corpus cache and generation),
:mod:`.scoring` (batch size, out-of-memory back-off), :mod:`.fitting`, :mod:`.calibration`,
:mod:`.rows` (metric rows), :mod:`.tasks` (task keys and the task cache), :mod:`.throughput`
(the timing phase and the sweep) and :mod:`.executors` (where generation and scoring run).
This module puts them in order.
"""

from __future__ import annotations

import secrets
import time
from contextlib import nullcontext
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Collection

from rich.progress import Progress

from ..contracts import registry
from ..contracts.errors import one_line
from ..contracts.version import __version__
from ..data.corpus import Corpus, CorpusError
from ..data.corpus_record import CorpusRecord, cache_key_of
from ..data.environment import environment
from ..data.results import Results, save_results
from ..data.shortcuts import INFO_KEY as SHORTCUTS_KEY
from ..data.shortcuts import corpus_shortcuts
from ..data.store import Store
from ..data.suite import (DEFAULT_BOOTSTRAP, DEFAULT_THROUGHPUT, BootstrapSpec, DetectorSpec, GeneratorSpec, SplitSpec, Suite,
                          SuiteError, ThroughputSpec)
from .calibration import fitted_and_calibrated
from .corpora import REUSED_CORPUS, build_corpus
from .executors import Executor, LocalExecutor
from .fitting import fitted_detector, three_way_split
from .perturb import IDENTITY, Perturbation
from .perturb import parse as parse_perturbation
from .provenance import param_files
from .progress import advance, make_progress, track
from .rows import metric_rows
from .scoring import batch_size_for
from .sensitivity import UNPAIRED_REASON
from .tasks import Evaluation, TaskCache, task_key, task_name
from .throughput import TimingJob, sweep, time_jobs, time_task, timing_job
from .timing import calibrate_machine


def evaluate_group(
    spec: DetectorSpec,
    train: tuple[str, Corpus],
    tests: list[tuple[str, Corpus]],
    suite: Suite,
    cache: TaskCache,
    progress: Progress | None = None,
    executor: Executor | None = None,
    timing: list[TimingJob] | None = None,
) -> tuple[list[tuple[str, Evaluation | Exception]], Any]:
    """Fit ``spec``'s detector on one corpus (if it learns), calibrate there, and score the test
    split of every corpus in ``tests`` under every perturbation; cached tasks are reused.
    The speed of the train corpus's own task is timed here, or, given a ``timing`` list, left
    there as a :class:`~facebench.harness.run.throughput.TimingJob` for one phase with other corpora.

    Returns (task name, evaluation or the error of that task) per task, and the fitted detector
    (None when every task came from the cache). A failure to build or fit the detector raises:
    every task of the group needs it.
    """
    train_label, train_corpus = train
    perturbations = [IDENTITY, *(parse_perturbation(p) for p in suite.protocols.perturbations)]
    detector_cls = registry.load("detector", spec.name)
    todo = [(test_label, test_corpus, p) for test_label, test_corpus in tests for p in perturbations]
    keys = {(t, p.name): task_key(spec, detector_cls, train_corpus, c, p.name, suite, (train_label, t)) for t, c, p in todo}
    results: list[tuple[str, Evaluation | Exception]] = []
    cached = {k: cache.load(key, spec.label) for k, key in keys.items()}
    detector, threshold = None, None
    for test_label, test_corpus, perturbation in todo:
        name = task_name(spec.label, train_label, test_label, perturbation.name)
        hit = cached[(test_label, perturbation.name)]
        if hit is not None:
            hit.throughput = None  # speed is measured in every run, never served from the cache
            results.append((name, hit))
            continue
        if detector is None:
            detector, threshold = fitted_and_calibrated(spec, train_label, train_corpus, suite.split, progress)
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
    own = dict(results).get(task_name(spec.label, train_label, train_label, IDENTITY.name))
    if isinstance(own, Evaluation) and suite.throughput.measure:
        task = f"time {spec.label} on {train_label}"
        try:
            detector = detector or fitted_detector(spec, train_label, train_corpus, suite.split, progress)
            if timing is None:
                own.throughput = time_task(detector, spec, train_corpus, suite, own.throughput, progress, task)
            else:
                timing.append(timing_job(detector, spec, (train_label, train_corpus), suite, own.throughput, task))
                own.throughput = None
        except Exception as exc:  # the metrics stand; only the speed figure is lost
            results.append((task, exc))
    elif isinstance(own, Evaluation):
        own.throughput = None
    return results, detector


def _evaluate_one(detector: Any, spec: DetectorSpec, threshold: dict[str, float] | None, train_label: str,
                  test: tuple[str, Corpus], perturbation: Perturbation, suite: Suite,
                  progress: Progress | None, executor: Executor | None = None) -> Evaluation:
    test_label, test_corpus = test
    _, _, test_split = three_way_split(test_corpus, suite.split)
    if len(test_split) == 0:
        raise CorpusError(f"{test_corpus.root}: the test split is empty; generate more images")
    batch_size = batch_size_for(spec, detector)
    description = f"score {spec.label} on {test_label}" + ("" if perturbation is IDENTITY else f" ({perturbation.name})")
    executor = executor or LocalExecutor()
    rows, scores, throughput = executor.score_split(detector, test_split, batch_size, spec.label, perturbation, progress, description)
    warnings = throughput.pop("warnings", [])
    generator = ",".join(sorted({r["source"] for r in rows}))
    base = {"corpus": test_label, "train_corpus": train_label, "corpus_digest": test_corpus.digest,
            "generator": generator, "detector": spec.label, "perturbation": perturbation.name}
    metrics = metric_rows(rows, scores, threshold, suite.bootstrap, suite.protocols.sensitivity, base)
    score_rows = [
        {"corpus": test_label, "train_corpus": train_label, "perturbation": perturbation.name, "detector": spec.label,
         "corpus_digest": test_corpus.digest, "id": r["id"], "pair": r["pair"], "label": int(r["label"]),
         "artifact_names": list(r["artifact_names"]),
         "score": float(s)}
        for r, s in zip(rows, scores)
    ]
    # One speed figure per (detector, corpus): clean images, trained where tested.
    keep_speed = perturbation is IDENTITY and train_label == test_label
    return Evaluation(metrics, throughput if keep_speed else None, score_rows, warnings=warnings)


def evaluate(corpus: Corpus, spec: DetectorSpec, split: SplitSpec, corpus_label: str,
             progress: Progress | None = None, bootstrap: BootstrapSpec = DEFAULT_BOOTSTRAP,
             throughput: ThroughputSpec = DEFAULT_THROUGHPUT) -> Evaluation:
    """Fit ``spec``'s detector on the train split (if it learns), score the test split and (unless
    ``throughput.measure`` is off) time it in the timing phase: one task, uncached."""
    suite = Suite(name="detect", source="detect", generators=(), detectors=(spec,), split=split, bootstrap=bootstrap,
                  throughput=throughput)
    detector, threshold = fitted_and_calibrated(spec, corpus_label, corpus, split, progress)
    evaluation = _evaluate_one(detector, spec, threshold, corpus_label, (corpus_label, corpus), IDENTITY, suite, progress)
    evaluation.throughput = (time_task(detector, spec, corpus, suite, evaluation.throughput, progress,
                                       f"time {spec.label}") if throughput.measure else None)
    return evaluation


def _time_detector_phase(spec: DetectorSpec, timing: list[TimingJob], suite: Suite, throughput: list[dict[str, Any]],
                         progress: Progress | None) -> list[dict[str, str]]:
    """Time every corpus of ``spec``'s detector in one interleaved phase (:func:`time_jobs`): their
    throughput rows are added to ``throughput``; returns the error rows of the jobs that failed.
    Empties ``timing`` (the fitted detectors it held)."""
    task = track(progress, f"time {spec.label}", 1)
    settings = suite.throughput
    errors = []
    for job, figures in zip(timing, time_jobs(timing, warmup=settings.warmup, rounds=settings.rounds,
                                              min_seconds=settings.min_seconds)):
        if isinstance(figures, BaseException):
            errors.append({"task": job.task, "message": one_line(figures)})
        else:
            throughput.append({"kind": "detector", "name": job.name, **figures})
    advance(progress, task)
    timing.clear()
    return errors


def new_run_id(started: str | None = None) -> str:
    """A run's id: the UTC time it started (``started``, ISO 8601; now when None) and 6 random hex
    digits, so the id and the date `facebench runs` shows agree."""
    moment = datetime.fromisoformat(started).astimezone(timezone.utc) if started else datetime.now(timezone.utc)
    return moment.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_record(suite: str, started: str, status: str, info: dict[str, Any]) -> dict[str, Any]:
    """The store's row for a run that started at ``started`` and ends now; info gains the environment."""
    return {
        "run_id": new_run_id(started),
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


def not_applicable(suite: Suite, corpora: list[tuple[GeneratorSpec, Corpus]]) -> dict[str, Any]:
    """The run info entry naming each unpaired corpus and why it has no sensitivity figures
    (``sensitivity_not_applicable``: label -> reason); empty when every corpus is paired or the
    suite asks for no sensitivity."""
    if not suite.protocols.sensitivity:
        return {}
    reasons = {spec.label: UNPAIRED_REASON for spec, corpus in corpora if len(corpus) and not corpus.paired}
    return {"sensitivity_not_applicable": reasons} if reasons else {}


def check_suite(suite: Suite) -> None:
    """Fail before any work if a plug-in of ``suite`` is unknown, broken, or given unknown parameters."""
    plugins: tuple[tuple[registry.Kind, tuple[Any, ...]], ...] = (("generator", suite.generators), ("detector", suite.detectors))
    for kind, specs in plugins:
        for spec in specs:
            cls = registry.load(kind, spec.name)
            registry.check_params(cls, spec.params, f"{suite.source}: {kind} {spec.label!r}")
            reals = getattr(spec, "reals", None)
            if reals is not None:
                registry.check_params(registry.load(kind, reals.name), reals.params, f"{suite.source}: {kind} {spec.label!r} reals")


def run_suite(suite: Suite, results_dir: str | Path, store_path: str | Path | None = None, show_progress: bool = True,
              use_cache: bool = True, executor: Executor | None = None, fresh: bool = False,
              fresh_detectors: Collection[str] = ()) -> Results:
    """Run every generator x detector task of ``suite``; a failing task is recorded, the rest go on.

    ``executor`` (an :class:`~facebench.harness.run.executors.Executor`) generates corpora and
    scores splits; None: a :class:`~facebench.harness.run.executors.LocalExecutor`, in this process.
    Fitting, calibration, metrics, the cache and the store stay here.

    Finished tasks are cached under ``results_dir/tasks`` as they end, so a killed run resumes
    where it stopped and a repeated run reuses them (``use_cache=False`` measures every task again).
    ``fresh`` also generates every corpus again; ``fresh_detectors`` (labels or plug-in names)
    measures only those detectors' tasks again. Fresh results replace the cached ones.
    """
    check_suite(suite)
    executor = executor if executor is not None else LocalExecutor()
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
                errors.append({"task": f"generate {gen_spec.label}", "message": one_line(exc)})
                continue
            corpora.append((gen_spec, corpus))
            if gen_throughput.pop(REUSED_CORPUS, False):
                reused_corpora.append(gen_spec.label)
            throughput.append({"kind": "generator", "name": gen_spec.label, **gen_throughput})
        labelled = [(spec.label, corpus) for spec, corpus in corpora]
        for det_spec in suite.detectors:
            first_fitted = None
            timing: list[TimingJob] = []  # every corpus of this detector is timed in one interleaved phase
            for train in labelled:
                tests = labelled if suite.protocols.cross_generator else [train]
                try:
                    outcomes, fitted = evaluate_group(det_spec, train, tests, suite, cache, progress, executor, timing)
                except Exception as exc:
                    errors.append({"task": f"fit {det_spec.label} on {train[0]}", "message": one_line(exc)})
                    continue
                task_count += len(outcomes)
                for task, outcome in outcomes:
                    if isinstance(outcome, Exception):
                        errors.append({"task": task, "message": one_line(outcome)})
                        continue
                    reused += outcome.cached
                    warnings += [{"task": task, "message": message} for message in outcome.warnings]
                    metrics += outcome.metrics
                    score_rows += outcome.scores
                if train is labelled[0]:
                    first_fitted = fitted
            if timing:
                errors += _time_detector_phase(det_spec, timing, suite, throughput, progress)
            if suite.throughput.measure and suite.throughput.batch_sizes and labelled:
                try:
                    throughput += sweep(det_spec, *labelled[0], suite, first_fitted)
                except Exception as exc:
                    errors.append({"task": f"throughput sweep of {det_spec.label}", "message": one_line(exc)})
    # reals and fakes whose files differ (format, quality, size, EXIF): a detector may score on that alone
    shortcuts = {spec.label: found for spec, corpus in corpora if (found := corpus_shortcuts(corpus))}
    run = run_record(
        suite.name,
        started,
        "ok" if not errors else ("partial" if metrics else "failed"),
        {"suite_source": suite.source, "corpora": {spec.label: corpus.digest for spec, corpus in corpora},
         "corpus_paths": {spec.label: str(corpus.root.resolve()) for spec, corpus in corpora},
         "split": asdict(suite.split),
         # the weight files (and other files) each detector loaded, by size and sha256
         "detector_files": {spec.label: files for spec in suite.detectors
                            if (files := param_files(registry.load("detector", spec.name), spec.params))},
         "cached_tasks": reused, "reused_corpora": reused_corpora,
         **not_applicable(suite, corpora),
         "seconds": round(time.perf_counter() - clock, 3), "warnings": warnings,
         **({SHORTCUTS_KEY: shortcuts} if shortcuts else {}),
         **({"calibration": calibration} if calibration else {})},
    )
    records = [CorpusRecord(spec.label, corpus.digest, str(corpus.root.resolve()), cache_key_of(spec.label, corpus.root))
               for spec, corpus in corpora]
    result = Results(run, metrics, throughput, errors, score_rows, corpora=records,
                     run_dir=results_dir / "runs" / run["run_id"], task_count=task_count)
    return save_results(result, store)

