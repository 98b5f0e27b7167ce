"""The Ray executor: sharded corpus generation on Ray tasks, scoring on Ray Data actors.

Imported only when ``--executor ray`` is asked for. The corpus folder must be on storage
that every Ray worker reaches at the same path (a shared filesystem: NFS, EFS, Lustre...):
workers write images into the writer's hidden partial folder and read them to score.

Determinism: a shard's files are named by image id and its rows come back to the driver,
which adds them in seed order, so the manifest and digest equal the local executor's; scores
are put back in the split's row order and perturbations use the same per-image keys.
"""

from __future__ import annotations

import logging
import pickle
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import ray

from ..contracts import registry
from ..data.corpus import Corpus, CorpusWriter, write_record
from .corpora import check_same_shape, generation_sources
from .executors import Executor, ExecutorError
from .inputs import detector_inputs, policy_of, split_batches
from .progress import advance, track
from .scoring import SCORED_FIELDS, Backoff, score_images
from .timing import ThroughputMeter, current_rss_bytes
from .perturb import IDENTITY

#: Columns of a split's manifest an actor needs to read an image.
_READ_FIELDS = ("id", "path", "width", "height")


def _generate_shard(cls: type, params: dict[str, Any], seeds: list[int], folder: str) -> tuple[list[dict], tuple, float, int]:
    """One Ray task: generate ``seeds`` and write their files into ``folder``; (rows, shape, seconds, images)."""
    generator = cls(**params)
    start = time.perf_counter()
    batch = generator.generate(seeds)
    seconds = time.perf_counter() - start
    rows = [write_record(folder, image, record) for image, record in zip(batch.images, batch.records)]
    shape = tuple(batch.images.shape[1:3]) if len(batch) and not batch.mixed_sizes else ()
    return rows, shape, seconds, len(batch)


class _Scorer:
    """A Ray Data actor: loads the fitted detector once, then decodes, perturbs and scores batches."""

    def __init__(self, detector_ref: list, root: str, digest: str, perturbation: Any, label: str, batch_size: int):
        self.detector = ray.get(detector_ref[0])
        self.corpus = Corpus.open(root)  # reads images by manifest row
        self.digest, self.perturbation, self.label, self.size = digest, perturbation, label, batch_size
        self.device = str(getattr(self.detector, "device", "cpu") or "cpu")
        self.score_range = getattr(self.detector, "score_range", None)
        self.policy = policy_of(self.detector)
        self.backoff: Backoff | None = None
        self.error: str | None = None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # Ray Data wraps what a UDF raises and drops its type and message, so a failure comes
        # back as data: the pickled exception in an "error" column, raised again by the driver.
        n = len(batch["index"])
        if self.error is None:
            try:
                return self._score(batch)
            except Exception as exc:  # noqa: BLE001 - the driver raises it again
                self.error = _pickled(exc)
        return {"index": batch["index"], "score": np.full(n, np.nan), "batch": np.full(n, ""), "score_s": np.zeros(n),
                "decode_s": np.zeros(n), "rss": np.zeros(n, np.int64), "size": np.full(n, self.size, np.int64),
                "warning": np.full(n, ""), "error": np.full(n, self.error)}

    def _score(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [dict(zip(_READ_FIELDS, values)) for values in zip(*(batch[k].tolist() for k in _READ_FIELDS))]
        start = time.perf_counter()
        images = self.corpus.load_image_list(rows)
        decode = time.perf_counter() - start
        keys = [f"{self.digest}:{row['id']}" for row in rows]
        meter = ThroughputMeter(device=self.device)
        n = len(rows)
        scored = np.zeros(n)
        # the input policy after the perturbation, one score call per size it gives (as score_split)
        for positions, group in detector_inputs(images, self.policy, keys, self.perturbation, [row["id"] for row in rows]):
            scores, self.size, backoff = score_images(self.detector, group, self.size, meter, self.label, self.score_range)
            self.backoff = self.backoff or backoff
            if scores:
                scored[positions] = np.concatenate(scores)
        warning = self.backoff.warning(self.size) if self.backoff is not None else ""
        return {
            "index": batch["index"],
            "score": scored,
            "batch": np.full(n, uuid.uuid4().hex),
            "score_s": np.full(n, meter.seconds),
            "decode_s": np.full(n, decode),
            "rss": np.full(n, current_rss_bytes() or 0, dtype=np.int64),
            "size": np.full(n, self.size, dtype=np.int64),
            "warning": np.full(n, warning),
            "error": np.full(n, ""),
        }


def _pickled(exc: BaseException) -> str:
    """``exc`` pickled, as hex; an ExecutorError with its one line when it does not pickle."""
    try:
        blob = pickle.dumps(exc)
        pickle.loads(blob)
    except Exception:  # noqa: BLE001
        text = str(exc).strip().splitlines()
        blob = pickle.dumps(ExecutorError(f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__))
    return blob.hex()


def _original(exc: BaseException) -> BaseException:
    """The user's exception inside Ray's wrappers (RayTaskError, Ray Data's UserCodeException)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    found = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if not type(current).__module__.startswith("ray.") and "RayTaskError" not in type(current).__name__:
            found = current
            break
        current = getattr(current, "cause", None) or current.__cause__
    if found is not None:
        return found
    text = str(exc).strip().splitlines()
    return ExecutorError(f"ray: {type(exc).__name__}: {text[0] if text else ''}".rstrip(": "))


class RayExecutor(Executor):
    """Runs corpus generation and scoring on Ray; see the module docstring and docs/ray.md."""

    name = "ray"

    def __init__(self, address: str | None = None, *, max_retries: int = 3, actors: int | None = None,
                 **init_options: Any):
        self.max_retries, self.actors = max_retries, actors
        self._started = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, **({"include_dashboard": False, "log_to_driver": False} | init_options))
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ExecutorError(f"cannot connect to Ray at {address!r}: {str(exc).strip().splitlines()[0]}; "
                                    "start a cluster with `ray start --head`") from None
            self._started = True
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # the run's own progress bars say enough
        ray.data.DataContext.get_current().enable_progress_bars = False

    def close(self) -> None:
        if self._started and ray.is_initialized():
            ray.shutdown()
        self._started = False

    # ------------------------------------------------------------------ generation

    def generate_corpus(self, spec, path, progress=None, *, overwrite=False, generator=None, reals=None):
        """Generate ``spec``'s corpus at ``path``: one Ray task per ``batch_size`` seeds."""
        generator, reals, configs = generation_sources(spec, generator, reals)
        meter = ThroughputMeter(device=getattr(generator, "device", "cpu"))
        shapes: dict[tuple[int, ...], str] = {}
        remote = ray.remote(_generate_shard).options(max_retries=self.max_retries, num_gpus=_gpus(generator))
        with CorpusWriter(path, configs, overwrite=overwrite) as writer:
            folder = str(writer.partial.resolve())
            sources = [(spec, generator, meter)] + ([(spec.reals, reals, None)] if spec.reals else [])
            for source_spec, source, timing in sources:
                cls = registry.load("generator", source_spec.name)
                seeds = list(range(source_spec.seed_start, source_spec.seed_start + source_spec.count))
                chunks = [seeds[i : i + source_spec.batch_size] for i in range(0, len(seeds), source_spec.batch_size)]
                task = track(progress, f"generate {spec.label}" + ("" if source is generator else " (reals)"), len(seeds))
                refs = [remote.remote(cls, dict(source_spec.params), chunk, folder) for chunk in chunks]
                pending = list(refs)
                try:
                    while pending:  # progress as shards finish; results are taken in seed order below
                        done, pending = ray.wait(pending, num_returns=1)
                        advance(progress, task, len(chunks[refs.index(done[0])]))
                    results = ray.get(refs)
                except Exception as exc:
                    for ref in refs:
                        ray.cancel(ref, force=True)
                    original = _original(exc)
                    if isinstance(original, OSError):  # e.g. the shared disk is full: one line, as locally
                        raise writer.write_error(original) from None
                    raise original from None
                for rows, shape, seconds, n in results:
                    if shape:
                        check_same_shape(shapes, shape, source_spec.name, spec.label)
                    if timing is not None:
                        timing.batch_seconds.append(seconds)
                        timing.batch_items.append(n)
                    writer.add_rows(rows)
            throughput = {**meter.summary(), "batch_size": spec.batch_size}
            corpus = writer.close(extra_meta={"throughput": throughput})
        return corpus, throughput

    # ------------------------------------------------------------------ scoring

    def score_split(self, detector, split, batch_size, label, perturbation=None, progress=None, description=""):
        """Score ``split`` on a pool of Ray Data actors; rows and scores in the split's order.

        Throughput: ``images_per_s`` and ``seconds`` are the wall clock of the whole scoring;
        ``actor_score_seconds`` sums the actors' time inside ``detector.score``, from which the
        latency percentiles come.
        """
        perturbation = perturbation or IDENTITY
        task = track(progress, description, len(split))
        table = split.manifest
        rows = table.select(list(SCORED_FIELDS)).to_pylist()
        if not rows:
            return [], np.zeros(0), {**ThroughputMeter(device=_device(detector)).summary(), "batch_size": batch_size,
                                     "peak_rss_mb": None, "decode_images_per_s": None, "actor_score_seconds": 0.0}
        items = [{"index": i, **row} for i, row in enumerate(table.select(list(_READ_FIELDS)).to_pylist())]
        # images of one size after the detector's input policy travel together (one size: row order)
        items = [items[i] for batch_rows in split_batches(split, batch_size, policy_of(detector)) for i in batch_rows]
        gpus = _gpus(detector)
        actors = self.actors or max(1, min(_cluster_slots(gpus), -(-len(items) // batch_size)))
        detector_ref = ray.put(detector)  # held until scoring ends: actors load it once each
        start = time.perf_counter()
        try:
            dataset = ray.data.from_items(items).map_batches(
                _Scorer,
                fn_constructor_kwargs={"detector_ref": [detector_ref], "root": str(Path(split.root).resolve()),
                                       "digest": split.digest, "perturbation": perturbation, "label": label,
                                       "batch_size": batch_size},
                batch_size=batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors),
                num_gpus=gpus or None,
            )
            parts = list(dataset.iter_batches(batch_format="numpy", batch_size=None))
        except Exception as exc:
            raise _original(exc) from None
        wall = time.perf_counter() - start
        out = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        errors = [e for e in out["error"].tolist() if e]
        if errors:
            raise pickle.loads(bytes.fromhex(errors[0]))
        order = np.argsort(out["index"], kind="stable")
        if not np.array_equal(out["index"][order], np.arange(len(items))):
            raise ExecutorError(f"ray: scoring {label!r} returned {len(order)} scores for {len(items)} images")
        scores = out["score"][order].astype(float)
        meter = ThroughputMeter(device=_device(detector))
        decode = 0.0
        for batch_id in dict.fromkeys(out["batch"].tolist()):
            first = int(np.argmax(out["batch"] == batch_id))
            meter.batch_seconds.append(float(out["score_s"][first]))
            meter.batch_items.append(int((out["batch"] == batch_id).sum()))
            decode += float(out["decode_s"][first])
        summary = meter.summary()
        peak = int(out["rss"].max())
        throughput = {**summary, "seconds": wall, "images_per_s": len(items) / wall if wall > 0 else float("nan"),
                      "batch_size": int(out["size"].min()), "peak_rss_mb": peak / 2**20 if peak else None,
                      "decode_images_per_s": len(items) / decode if decode > 0 else None,
                      "actor_score_seconds": summary["seconds"]}
        warnings = sorted({w for w in out["warning"].tolist() if w})
        if warnings:
            throughput["warnings"] = warnings[:1]
        advance(progress, task, len(rows))
        return rows, scores, throughput


def _device(obj: Any) -> str:
    return str(getattr(obj, "device", "cpu") or "cpu")


def _gpus(obj: Any) -> float:
    """One GPU per task or actor when ``obj`` runs on CUDA."""
    return 1.0 if _device(obj).startswith("cuda") else 0.0


def _cluster_slots(gpus: float) -> int:
    resources = ray.cluster_resources()
    return int(resources.get("GPU", 0) if gpus else resources.get("CPU", 1))
