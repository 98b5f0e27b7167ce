"""The Ray executor: one long-lived pool of worker actors per run generates corpora and scores splits.

Imported only when ``--executor ray`` is asked for. The corpus folder must be on storage
that every Ray worker reaches at the same path (a shared filesystem: NFS, EFS, Lustre...):
workers write images into the writer's hidden partial folder and read them to score.

The pool (:class:`WorkerPool`) is made of plain Ray actors (:class:`Worker`), started once and
reused for every corpus, split and perturbation of the run. A worker builds a generator once per
(generator, params) and loads a fitted detector once (sent with ``ray.put``, one copy per run),
then takes many batches. The driver streams batches to the ready workers, a couple in flight
per worker, and puts the results back in order (:func:`run_batches`).

Failures: a worker that dies (killed, out of memory, its node lost) is restarted by Ray
(``max_restarts=-1``) where the cluster has room; meanwhile its batches go to the other workers,
and it takes work again once it answers. A batch is retried at most ``max_retries`` times.

Determinism: a batch's files are named by image id and its rows come back to the driver,
which adds them in seed order, so the manifest and digest equal the local executor's; scores
are put back in the split's row order and perturbations use the same per-image keys.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import ray
from ray.exceptions import RayActorError

from ..contracts import registry
from ..data.corpus import Corpus, CorpusWriter, write_record
from ..data.suite import GeneratorSpec
from .corpora import check_same_shape, generation_sources
from .executors import Executor, ExecutorError
from .inputs import detector_inputs, policy_of, split_batches
from .perturb import IDENTITY, Perturbation
from .progress import advance, track
from .scoring import SCORED_FIELDS, Backoff, score_images
from .timing import ThroughputMeter, current_rss_bytes

#: Columns of a split's manifest a worker needs to read an image.
READ_FIELDS = ("id", "path", "width", "height")
#: Batches in flight per worker: one running, one queued, so a worker never waits for the driver.
IN_FLIGHT = 2


@dataclass(frozen=True)
class ScoringJob:
    """What every batch of one scoring shares: the split's folder and digest, the perturbation, the detector's label and batch size."""

    root: str
    digest: str
    perturbation: Perturbation
    label: str
    batch_size: int


class Worker:
    """One actor of the run's pool: keeps the last generator it built and the last detector it
    loaded, so many batches pay for one build or load."""

    def __init__(self) -> None:
        self.generator_key: str | None = None
        self.generator: Any = None
        self.detector_key: str | None = None
        self.detector: Any = None
        self.corpora: dict[str, Corpus] = {}
        self.sizes: dict[tuple[str, str], tuple[int, Backoff | None]] = {}

    @ray.method(max_task_retries=-1)
    def ready(self) -> tuple[str, int]:
        """(node id, pid): answers once the actor runs, after a restart too."""
        return ray.get_runtime_context().get_node_id(), os.getpid()

    def generate(self, key: str, cls: type, params: dict[str, Any], seeds: list[int],
                 folder: str) -> tuple[list[dict], tuple, float, int]:
        """Generate ``seeds`` (building ``cls(**params)`` unless built already under ``key``) and
        write their files into ``folder``: (rows, image shape, seconds, images)."""
        if key != self.generator_key:
            self.generator = self.generator_key = None  # free the old one first (GPU memory)
            self.generator, self.generator_key = cls(**params), key
        start = time.perf_counter()
        batch = self.generator.generate(seeds)
        seconds = time.perf_counter() - start
        rows = [write_record(folder, image, record) for image, record in zip(batch.images, batch.records)]
        shape = tuple(batch.images.shape[1:3]) if len(batch) and not batch.mixed_sizes else ()
        return rows, shape, seconds, len(batch)

    def score(self, key: str, detector_ref: list, job: ScoringJob, rows: list[dict]) -> dict[str, Any]:
        """Read, perturb and score ``rows`` of ``job``'s split with the detector ``key`` (loaded from
        ``detector_ref[0]`` unless loaded already); the scores and this batch's figures."""
        if key != self.detector_key:
            self.detector = self.detector_key = None
            self.detector, self.detector_key = ray.get(detector_ref[0]), key
            self.sizes.clear()
        corpus = self.corpora.get(job.root)
        if corpus is None:
            if len(self.corpora) >= 4:
                self.corpora.pop(next(iter(self.corpora)))
            corpus = self.corpora[job.root] = Corpus.open(job.root)
        start = time.perf_counter()
        images = corpus.load_image_list(rows)
        decode = time.perf_counter() - start
        keys = [f"{job.digest}:{row['id']}" for row in rows]
        # the out-of-memory back-off carries over from batch to batch of one scoring, as locally
        size, backoff = self.sizes.get((job.digest, job.perturbation.name), (job.batch_size, None))
        meter = ThroughputMeter(device=device_of(self.detector))
        scored = np.zeros(len(rows))
        # the perturbation, then the input policy, one score call per size it gives (as score_split)
        for positions, group in detector_inputs(images, policy_of(self.detector), keys, job.perturbation,
                                                [row["id"] for row in rows]):
            scores, size, new_backoff = score_images(self.detector, group, size, meter, job.label,
                                                     getattr(self.detector, "score_range", None))
            backoff = backoff or new_backoff
            if scores:
                scored[positions] = np.concatenate(scores)
        self.sizes[(job.digest, job.perturbation.name)] = (size, backoff)
        return {"scores": scored, "score_s": meter.seconds,
                "decode_s": decode, "rss": current_rss_bytes() or 0, "size": size,
                "warning": backoff.warning(size) if backoff is not None else ""}


class WorkerPool:
    """Worker actors of one kind (CPU: one CPU each; GPU: one GPU each), created once and grown
    on demand; tracks which are ready to take work."""

    def __init__(self, gpus: float):
        self.gpus = gpus
        self.actors: list[Any] = []
        self.ready: list[Any] = []
        self.probes: dict[Any, Any] = {}  # ready() call -> its actor
        options = {"num_cpus": 0, "num_gpus": 1} if gpus else {"num_cpus": 1}
        self.remote = ray.remote(Worker).options(max_restarts=-1, max_task_retries=0, **options)

    def grow(self, size: int) -> None:
        """Start workers until the pool has ``size`` (they join :attr:`ready` when they answer)."""
        while len(self.actors) < size:
            actor = self.remote.remote()
            self.actors.append(actor)
            self.probe(actor)

    def probe(self, actor: Any) -> None:
        self.probes[actor.ready.remote()] = actor

    def lost(self, actor: Any) -> None:
        """``actor`` died: out of rotation until it answers again (Ray restarts it where there is room)."""
        if actor in self.ready:
            self.ready.remove(actor)
            self.probe(actor)

    def answered(self, probe: Any) -> None:
        actor = self.probes.pop(probe)
        try:
            ray.get(probe)
        except RayActorError:  # ready() is retried while Ray restarts the actor: this one is gone for good
            self.actors.remove(actor)
            return
        if actor not in self.ready:
            self.ready.append(actor)

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors, self.ready, self.probes = [], [], {}


def run_batches(pool: WorkerPool, count: int, submit: Callable[[Any, int], Any], done: Callable[[int, Any], None],
                max_retries: int, what: str, wait_s: float = 600.0) -> list[Any]:
    """Run batches ``0..count-1`` on ``pool``'s ready workers (``submit(actor, i)`` -> an object
    ref), at most :data:`IN_FLIGHT` per worker; ``done(i, result)`` as each one finishes; returns
    the results in batch order.

    A batch whose worker died goes to another worker (at most ``max_retries`` times); an error
    raised by the batch's own code cancels the rest and raises it (its original type). With no
    worker ready and none answering within ``wait_s`` seconds (the cluster has no room to start
    or restart one), ExecutorError."""
    results: list[Any] = [None] * count
    todo = deque(range(count))
    running: dict[Any, tuple[int, Any]] = {}  # ref -> (batch, actor)
    attempts = [0] * count
    while todo or running:
        for actor in list(pool.ready):
            while todo and sum(1 for _, a in running.values() if a is actor) < IN_FLIGHT:
                i = todo.popleft()
                attempts[i] += 1
                running[submit(actor, i)] = (i, actor)
        waiting = list(running) + list(pool.probes)
        if not waiting:
            raise ExecutorError(f"ray: no worker is left for {what}: each one failed to start; see the Ray logs")
        ready, _ = ray.wait(waiting, num_returns=1, timeout=None if running else wait_s)
        if not ready:
            raise ExecutorError(f"ray: no worker of {what} started within {wait_s:g} s; the cluster has no free "
                                f"{'GPU' if pool.gpus else 'CPU'} for one: add nodes, or pass actors=N")
        ref = ready[0]
        if ref in pool.probes:
            pool.answered(ref)
            continue
        i, actor = running.pop(ref)
        try:
            result = ray.get(ref)
        except RayActorError as exc:  # its worker died (or is unreachable): another one takes the batch
            pool.lost(actor)
            if attempts[i] > max_retries:
                _settle(running)
                raise ExecutorError(f"ray: {what}: batch {i} lost its worker {attempts[i]} times "
                                    f"({type(exc).__name__}); see the Ray logs of the nodes") from None
            todo.appendleft(i)
            continue
        except Exception as exc:
            _settle(running)
            raise original_error(exc) from None
        results[i] = result
        done(i, result)
    return results


def _settle(running: dict[Any, Any]) -> None:
    """Cancel the batches still queued and wait (a little) for the running ones, so none writes
    into a folder the caller is about to remove."""
    for ref in running:
        try:
            ray.cancel(ref)
        except Exception:  # noqa: BLE001 - already finished, or its worker is gone
            pass
    if running:
        ray.wait(list(running), num_returns=len(running), timeout=30)


def original_error(exc: BaseException) -> BaseException:
    """The user's exception inside Ray's wrappers (RayTaskError); an ExecutorError with Ray's one line otherwise."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if not type(current).__module__.startswith("ray.") and "RayTaskError" not in type(current).__name__:
            return current
        current = getattr(current, "cause", None) or current.__cause__
    text = str(exc).strip().splitlines()
    return ExecutorError(f"ray: {type(exc).__name__}: {text[0] if text else ''}".rstrip(": "))


class RayExecutor(Executor):
    """Runs corpus generation and scoring on a pool of Ray actors; see the module docstring and docs/ray.md.

    ``actors``: workers per pool (default: one per CPU of the cluster, one per GPU for CUDA
    plug-ins). ``max_retries``: times a batch is sent again after its worker died.
    ``wait_s``: how long a job waits for a worker when none is ready (e.g. every node lost).
    A detector is sent to the workers once per object: do not change a detector between
    :meth:`score_split` calls (fit a new one instead)."""

    name = "ray"

    def __init__(self, address: str | None = None, *, max_retries: int = 3, actors: int | None = None,
                 wait_s: float = 600.0, **init_options: Any):
        self.max_retries, self.actors, self.wait_s = max_retries, actors, wait_s
        self.pools: dict[float, WorkerPool] = {}
        self.detectors: list[tuple[Any, str, Any]] = []  # (detector, key, its ray.put ref), newest last
        self._started = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, **({"include_dashboard": False, "log_to_driver": False} | init_options))
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ExecutorError(f"cannot connect to Ray at {address!r}: {str(exc).strip().splitlines()[0]}; "
                                    "start a cluster with `ray start --head`") from None
            self._started = True

    def close(self) -> None:
        """Stop the workers, and the Ray runtime if this executor started it."""
        if ray.is_initialized():
            for pool in self.pools.values():
                pool.close()
        self.pools, self.detectors = {}, []
        if self._started and ray.is_initialized():
            ray.shutdown()
        self._started = False

    def pool(self, gpus: float, batches: int) -> WorkerPool:
        """The run's pool for plug-ins that need ``gpus`` per worker, grown to fit ``batches`` batches."""
        pool = self.pools.get(gpus)
        if pool is None:
            pool = self.pools[gpus] = WorkerPool(gpus)
        slots = ray.cluster_resources().get("GPU" if gpus else "CPU", 0)
        if gpus and slots < 1 and not pool.actors:
            raise ExecutorError("ray: a plug-in on CUDA needs a GPU and the cluster has none; "
                                "add a GPU node or set the plug-in's device to cpu")
        pool.grow(max(1, self.actors or min(int(slots), batches)))
        return pool

    # ------------------------------------------------------------------ generation

    def generate_corpus(self, spec, path, progress=None, *, overwrite=False, generator=None, reals=None):
        """Generate ``spec``'s corpus at ``path``: batches of ``batch_size`` seeds on the pool's workers."""
        generator, reals, configs = generation_sources(spec, generator, reals)
        meter = ThroughputMeter(device=device_of(generator))
        shapes: dict[tuple[int, ...], str] = {}
        with CorpusWriter(path, configs, overwrite=overwrite) as writer:
            folder = str(writer.partial.resolve())
            sources = [(spec, generator, meter)] + ([(spec.reals, reals, None)] if spec.reals else [])
            for source_spec, source, timing in sources:
                task = track(progress, f"generate {spec.label}" + ("" if source is generator else " (reals)"), source_spec.count)
                try:
                    results = self.generate_batches(source_spec, source, folder, lambda n, task=task: advance(progress, task, n),
                                                    f"generate {spec.label}")
                except OSError as exc:  # e.g. the shared disk is full: one line, as locally
                    raise writer.write_error(exc) from None
                for rows, shape, seconds, n in results:  # in seed order
                    if shape:
                        check_same_shape(shapes, shape, source_spec.name, spec.label)
                    if timing is not None:
                        timing.batch_seconds.append(seconds)
                        timing.batch_items.append(n)
                    writer.add_rows(rows)
            throughput = {**meter.summary(), "batch_size": spec.batch_size}
            corpus = writer.close(extra_meta={"throughput": throughput})
        return corpus, throughput

    def generate_batches(self, spec: GeneratorSpec, source: Any, folder: str, advanced: Callable[[int], None],
                         what: str) -> list[tuple[list[dict], tuple, float, int]]:
        """Generate ``spec``'s seeds into ``folder``, ``batch_size`` seeds a batch, on the pool's
        workers (each builds the generator once); each batch's (rows, shape, seconds, images) in seed order."""
        cls = registry.load("generator", spec.name)
        key = f"{cls.__module__}.{cls.__qualname__}:{json.dumps(spec.params, sort_keys=True, default=str)}"
        params = dict(spec.params)
        seeds = list(range(spec.seed_start, spec.seed_start + spec.count))
        chunks = [seeds[i : i + spec.batch_size] for i in range(0, len(seeds), spec.batch_size)]
        pool = self.pool(gpus_of(source), len(chunks))
        return run_batches(pool, len(chunks), lambda actor, i: actor.generate.remote(key, cls, params, chunks[i], folder),
                           lambda i, _: advanced(len(chunks[i])), self.max_retries, what, self.wait_s)

    # ------------------------------------------------------------------ scoring

    def detector_ref(self, detector: Any) -> tuple[str, Any]:
        """A key naming ``detector`` and its one copy in the object store (put once per detector object)."""
        for known, key, ref in self.detectors:
            if known is detector:
                return key, ref
        key = f"{type(detector).__qualname__}-{os.urandom(6).hex()}"
        self.detectors = [*self.detectors[-1:], (detector, key, ray.put(detector))]  # the two newest
        return self.detectors[-1][1:]

    def score_split(self, detector, split, batch_size, label, perturbation=None, progress=None, description=""):
        """Score ``split`` on the pool's workers, ``batch_size`` images a batch; rows and scores in the split's order.

        Throughput: ``images_per_s`` and ``seconds`` are the wall clock of the whole scoring;
        ``actor_score_seconds`` sums the workers' time inside ``detector.score``, from which the
        latency percentiles come.
        """
        perturbation = perturbation or IDENTITY
        task = track(progress, description, len(split))
        table = split.manifest
        rows = table.select(list(SCORED_FIELDS)).to_pylist()
        if not rows:
            return [], np.zeros(0), {**ThroughputMeter(device=device_of(detector)).summary(), "batch_size": batch_size,
                                     "peak_rss_mb": None, "decode_images_per_s": None, "actor_score_seconds": 0.0}
        reads = table.select(list(READ_FIELDS)).to_pylist()
        # images of one size after the detector's input policy travel together (one size: row order)
        order = list(split_batches(split, batch_size, policy_of(detector)))
        batches = [[reads[i] for i in indices] for indices in order]
        key, ref = self.detector_ref(detector)
        job = ScoringJob(str(Path(split.root).resolve()), split.digest, perturbation, label, batch_size)
        start = time.perf_counter()
        pool = self.pool(gpus_of(detector), len(batches))
        parts = run_batches(pool, len(batches), lambda actor, i: actor.score.remote(key, [ref], job, batches[i]),
                            lambda i, _: advance(progress, task, len(batches[i])), self.max_retries, f"score {label}",
                            self.wait_s)
        wall = time.perf_counter() - start
        in_batch_order = np.concatenate([part["scores"] for part in parts]).astype(float)
        if len(in_batch_order) != len(rows):
            raise ExecutorError(f"ray: scoring {label!r} returned {len(in_batch_order)} scores for {len(rows)} images")
        scores = np.empty(len(rows))
        scores[np.concatenate(order)] = in_batch_order  # back to the split's row order
        return rows, scores, scoring_throughput(parts, batches, wall, device_of(detector))


def scoring_throughput(parts: Sequence[dict[str, Any]], batches: Sequence[list], wall: float, device: str) -> dict[str, Any]:
    """A scoring's throughput from its batches' figures and its wall time (see :meth:`RayExecutor.score_split`)."""
    n = sum(len(batch) for batch in batches)
    meter = ThroughputMeter(device=device)
    meter.batch_seconds = [float(part["score_s"]) for part in parts]
    meter.batch_items = [len(batch) for batch in batches]
    decode = sum(float(part["decode_s"]) for part in parts)
    peak = max(int(part["rss"]) for part in parts)
    summary = meter.summary()
    throughput = {**summary, "seconds": wall, "images_per_s": n / wall if wall > 0 else float("nan"),
                  "batch_size": min(int(part["size"]) for part in parts), "peak_rss_mb": peak / 2**20 if peak else None,
                  "decode_images_per_s": n / decode if decode > 0 else None, "actor_score_seconds": summary["seconds"]}
    warnings = sorted({part["warning"] for part in parts if part["warning"]})
    if warnings:
        throughput["warnings"] = warnings[:1]
    return throughput


def device_of(obj: Any) -> str:
    return str(getattr(obj, "device", "cpu") or "cpu")


def gpus_of(obj: Any) -> float:
    """One GPU per worker when ``obj`` runs on CUDA."""
    return 1.0 if device_of(obj).startswith("cuda") else 0.0
