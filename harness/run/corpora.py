"""Corpora of a suite: their cache keys, the corpus cache under a results folder, and generation in this process."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rich.progress import Progress

from ..contracts import registry
from ..contracts.errors import FacebenchError
from ..data.corpus import FORMAT_VERSION, Corpus, CorpusWriter
from ..data.corpus_record import cache_folder_name
from ..data.suite import GeneratorSpec
from .progress import advance, track
from .provenance import provenance
from .timing import ThroughputMeter

#: Key of a generator throughput dict from :func:`build_corpus` that marks figures of a reused corpus
#: (taken by the run that built it, not by this one).
REUSED_CORPUS = "reused_corpus"


class MixedSizeError(FacebenchError):
    """The sources of one corpus make images of different sizes."""


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


def build_corpus(spec: GeneratorSpec, corpora_dir: Path, progress: Progress | None = None,
                 executor: Any = None, fresh: bool = False) -> tuple[Corpus, dict]:
    """The corpus of ``spec``, reused from the cache under ``corpora_dir`` or built there
    (by ``executor``, an :class:`~facebench.harness.run.executors.Executor`; default: in this
    process); ``fresh`` builds it again even when cached. The throughput of a reused corpus is
    the build's, marked ``REUSED_CORPUS: True``."""
    generator = registry.create("generator", spec.name, **spec.params)
    reals = registry.create("generator", spec.reals.name, **spec.reals.params) if spec.reals else None
    _, key = corpus_key(spec, generator, reals)
    path = corpora_dir / cache_folder_name(spec.label, key)
    cached = (path / "corpus.json").exists()
    if cached and not fresh:
        corpus = Corpus.open(path)
        return corpus, {**corpus.meta["throughput"], REUSED_CORPUS: True}
    make = generate_corpus if executor is None else executor.generate_corpus
    return make(spec, path, progress, overwrite=cached, generator=generator, reals=reals)


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
            task = track(progress, f"generate {spec.label}" + ("" if source is generator else " (reals)"), len(seeds))
            for start in range(0, len(seeds), source_spec.batch_size):
                chunk = seeds[start : start + source_spec.batch_size]
                if timing is None:
                    batch = source.generate(chunk)
                else:
                    with timing.batch() as timer:
                        batch = source.generate(chunk)
                        timer.items = len(batch)
                if not batch.mixed_sizes:  # a source of native sizes (a list of images) makes many on purpose
                    check_same_shape(shapes, tuple(batch.images.shape[1:3]), source_spec.name, spec.label)
                writer.write(batch)
                advance(progress, task, len(chunk))
        throughput = {**meter.summary(), "batch_size": spec.batch_size}
        if hasattr(generator, "timing_summary"):  # e.g. per-step latency of a diffusion pipeline
            throughput.update(generator.timing_summary())
        corpus = writer.close(extra_meta={"throughput": throughput})
    return corpus, throughput


def check_same_shape(shapes: dict, shape: tuple[int, ...], source: str, label: str) -> None:
    """Refuse a ``(height, width)`` that differs from the one already seen in ``shapes`` (shape ->
    source): sources of one fixed size each that disagree (e.g. fakes at 256 px, their reals at
    128 px) would hand detectors the size as a shortcut. A source of native sizes (its batches a
    list of images) is not checked: each detector's input policy takes care of sizes."""
    shapes.setdefault(shape, source)
    if len(shapes) > 1:
        sizes = ", ".join(f"{name}: {h}x{w}" for (h, w), name in shapes.items())
        raise MixedSizeError(f"corpus {label!r}: its sources make images of different sizes ({sizes}); "
                          "give them the same resolution parameter")
