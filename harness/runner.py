"""Drives a suite: build corpora, split by pair, fit, score, compute metrics, store the run."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from facebench.harness import __version__, registry
from facebench.harness.corpus import FORMAT_VERSION, Corpus, CorpusError, CorpusWriter
from facebench.harness.errors import FacebenchError
from facebench.harness.metrics import compute_metrics
from facebench.harness.store import Store
from facebench.harness.suite import DetectorSpec, GeneratorSpec, SplitSpec, Suite
from facebench.harness.timing import ThroughputMeter
from facebench.harness.types import Batch


class MixedSizeError(FacebenchError):
    """The sources of one corpus make images of different sizes."""


class DetectorOutputError(FacebenchError):
    """A detector returned scores of the wrong shape or with NaN/inf."""


def make_progress(enabled: bool = True) -> Progress | None:
    if not enabled:
        return None
    from rich.console import Console

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
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
    key = hashlib.sha256(json.dumps(keyed if len(keyed) > 1 else config, sort_keys=True).encode()).hexdigest()[:12]
    return config, key


def build_corpus(spec: GeneratorSpec, corpora_dir: Path, progress: Progress | None = None) -> tuple[Corpus, dict]:
    """The corpus of ``spec``, reused from the cache under ``corpora_dir`` or built there."""
    generator = registry.create("generator", spec.name, **spec.params)
    reals = registry.create("generator", spec.reals.name, **spec.reals.params) if spec.reals else None
    _, key = corpus_key(spec, generator, reals)
    path = corpora_dir / f"{spec.label}-{key}"
    if (path / "corpus.json").exists():
        corpus = Corpus.open(path)
        return corpus, corpus.meta["throughput"]
    return generate_corpus(spec, path, progress, generator=generator, reals=reals)


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
    generator = generator or registry.create("generator", spec.name, **spec.params)
    if spec.reals is not None and reals is None:
        reals = registry.create("generator", spec.reals.name, **spec.reals.params)
    configs = [generator_config(spec, generator)] + ([generator_config(spec.reals, reals)] if spec.reals else [])
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
                _check_same_size(shapes, batch, source_spec.name, spec.label)
                writer.write(batch)
                _advance(progress, task, len(chunk))
        throughput = {**meter.summary(), "batch_size": spec.batch_size}
        if hasattr(generator, "timing_summary"):  # e.g. per-step latency of a diffusion pipeline
            throughput.update(generator.timing_summary())
        corpus = writer.close(extra_meta={"throughput": throughput})
    return corpus, throughput


def _check_same_size(shapes: dict, batch: Batch, source: str, label: str) -> None:
    """Detectors read a corpus in batches of one shape: refuse to mix image sizes."""
    shape = tuple(batch.images.shape[1:3])
    shapes.setdefault(shape, source)
    if len(shapes) > 1:
        sizes = ", ".join(f"{name}: {h}x{w}" for (h, w), name in shapes.items())
        raise MixedSizeError(f"corpus {label!r}: its sources make images of different sizes ({sizes}); "
                          "give them the same resolution parameter")


@dataclass
class Evaluation:
    """What one detector did on one corpus's test split."""

    metrics: list[dict[str, Any]]
    throughput: dict[str, Any]
    scores: list[dict[str, Any]] = field(repr=False)


def _check_scores(scores: Any, n: int, detector: str) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if scores.shape != (n,):
        raise DetectorOutputError(f"detector {detector!r} returned {scores.shape} scores for {n} images")
    if not np.all(np.isfinite(scores)):
        raise DetectorOutputError(f"detector {detector!r} returned NaN or infinite scores")
    return scores


def evaluate(
    corpus: Corpus,
    spec: DetectorSpec,
    split: SplitSpec,
    corpus_label: str,
    progress: Progress | None = None,
) -> Evaluation:
    """Fit ``spec``'s detector on the train split (if it learns), score the test split."""
    detector = registry.create("detector", spec.name, **spec.params)
    train, test = corpus.split(split.test_fraction, split.seed)
    if len(test) == 0:
        raise CorpusError(f"{corpus.root}: the test split is empty; generate more images")
    if detector.requires_fit:
        if len(np.unique(train.labels)) < 2:
            raise CorpusError(f"{corpus.root}: the train split needs real and fake images to fit {spec.label!r}")
        task = _track(progress, f"fit {spec.label} on {corpus_label}", 1)
        detector.fit(train.load_images(), train.labels)
        _advance(progress, task)
    meter = ThroughputMeter(device=getattr(detector, "device", "cpu"))
    batch_size = int(getattr(detector, "batch_size", 32))
    rows_all, scores_all = [], []
    task = _track(progress, f"score {spec.label} on {corpus_label}", len(test))
    for rows, images in test.iter_batches(batch_size):
        with meter.batch(len(rows)):
            scores = detector.score(images)
        scores_all.append(_check_scores(scores, len(rows), spec.label))
        rows_all.extend(rows)
        _advance(progress, task, len(rows))
    scores = np.concatenate(scores_all)
    labels = np.array([r["label"] for r in rows_all])
    names = [set(r["artifact_names"]) for r in rows_all]
    generator = ",".join(sorted({r["source"] for r in rows_all}))

    def metric_rows(artifact: str, keep: np.ndarray) -> list[dict[str, Any]]:
        values = compute_metrics(labels[keep], scores[keep])
        n_fake = int(labels[keep].sum())
        return [
            {
                "corpus": corpus_label, "corpus_digest": corpus.digest, "generator": generator,
                "detector": spec.label, "artifact": artifact, "metric": metric, "value": value,
                "n_real": int(keep.sum()) - n_fake, "n_fake": n_fake,
            }
            for metric, value in values.items()
        ]

    metrics = metric_rows("all", np.ones(len(labels), bool))
    for artifact in sorted(set().union(*names)):
        keep = (labels == 0) | np.array([artifact in n for n in names])
        metrics += metric_rows(artifact, keep)
    score_rows = [
        {"corpus": corpus_label, "detector": spec.label, "id": r["id"], "pair": r["pair"], "label": int(r["label"]),
         "artifact_names": list(r["artifact_names"]), "score": float(s)}
        for r, s in zip(rows_all, scores)
    ]
    throughput = {**meter.summary(), "batch_size": batch_size}
    return Evaluation(metrics, throughput, score_rows)


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


def environment() -> dict[str, Any]:
    """Where the figures were measured."""
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


@dataclass
class RunResult:
    run: dict[str, Any]
    metrics: list[dict[str, Any]]
    throughput: list[dict[str, Any]]
    errors: list[dict[str, str]]
    run_dir: Path


def check_suite(suite: Suite) -> None:
    """Fail before any work if a plug-in of ``suite`` is unknown, broken, or given unknown parameters."""
    for kind, specs in (("generator", suite.generators), ("detector", suite.detectors)):
        for spec in specs:
            cls = registry.load(kind, spec.name)
            registry.check_params(cls, spec.params, f"{suite.source}: {kind} {spec.label!r}")
            reals = getattr(spec, "reals", None)
            if reals is not None:
                registry.check_params(registry.load(kind, reals.name), reals.params, f"{suite.source}: {kind} {spec.label!r} reals")


def run_suite(suite: Suite, results_dir: str | Path, store_path: str | Path | None = None, show_progress: bool = True) -> RunResult:
    """Run every generator x detector task of ``suite``; a failing task is recorded, the rest go on."""
    check_suite(suite)
    results_dir = Path(results_dir)
    store = Store(store_path if store_path is not None else results_dir / "facebench.sqlite")
    started = now()
    metrics, throughput, errors, score_rows = [], [], [], []
    corpora: list[tuple[GeneratorSpec, Corpus]] = []
    progress = make_progress(show_progress)
    with progress if progress is not None else nullcontext():
        for gen_spec in suite.generators:
            try:
                corpus, gen_throughput = build_corpus(gen_spec, results_dir / "corpora", progress)
            except Exception as exc:  # one broken generator must not lose the others' results
                errors.append({"task": f"generate {gen_spec.label}", "message": _one_line(exc)})
                continue
            corpora.append((gen_spec, corpus))
            throughput.append({"kind": "generator", "name": gen_spec.label, **gen_throughput})
        for det_spec in suite.detectors:
            for gen_spec, corpus in corpora:
                try:
                    result = evaluate(corpus, det_spec, suite.split, gen_spec.label, progress)
                except Exception as exc:
                    errors.append({"task": f"detect {det_spec.label} on {gen_spec.label}", "message": _one_line(exc)})
                    continue
                metrics += result.metrics
                score_rows += result.scores
                throughput.append({"kind": "detector", "name": f"{det_spec.label} @ {gen_spec.label}", **result.throughput})
    run = run_record(
        suite.name,
        started,
        "ok" if not errors else ("partial" if metrics else "failed"),
        {"suite_source": suite.source, "corpora": {spec.label: corpus.digest for spec, corpus in corpora}},
    )
    run_dir = results_dir / "runs" / run["run_id"]
    if score_rows:
        run_dir.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(score_rows), run_dir / "scores.parquet")
    store.write_run(run, metrics, throughput, errors)
    return RunResult(run, metrics, throughput, errors, run_dir)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, FacebenchError) else f"{type(exc).__name__}: {text}"
