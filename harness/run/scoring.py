"""Scoring a split with a fitted detector: the batch size, the out-of-memory back-off and the checks on scores."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from rich.progress import Progress

from ..contracts.errors import FacebenchError, one_line
from ..data.corpus import Corpus
from ..data.suite import DetectorSpec
from .inputs import detector_inputs, policy_of, split_batches
from .perturb import IDENTITY, Perturbation
from .progress import advance, track
from .timing import ThroughputMeter, current_rss_bytes, is_out_of_memory, release_cuda_memory

#: What scoring keeps of each manifest row (the rest, e.g. landmarks and masks, can be large).
SCORED_FIELDS = ("id", "pair", "label", "artifact_names", "source")
#: Images per ``score`` call of a detector that states no preference.
DEFAULT_BATCH_SIZE = 32


class DetectorOutputError(FacebenchError):
    """A detector returned scores of the wrong shape, with NaN/inf, or outside its declared ``score_range``."""


def batch_size_for(spec: DetectorSpec, detector: Any) -> int:
    """Images per ``score`` call of ``spec``'s detector, decided once per task: the suite's
    ``batch_size``, else the detector's own, else :data:`DEFAULT_BATCH_SIZE`. Scoring, calibration,
    the timing phase and every executor take this number; only the out-of-memory back-off of
    :func:`score_images` lowers it."""
    size: Any = spec.batch_size or getattr(detector, "batch_size", DEFAULT_BATCH_SIZE)
    return int(size)


@dataclass(frozen=True)
class Backoff:
    """Scoring ran out of memory at batch size ``size`` (``reason``: the error, one line) and went on in halves."""

    size: int
    reason: str

    def warning(self, ended_at: int) -> str:
        """What a run reports: where it ran out, and the size scoring ended at."""
        return f"out of memory at batch size {self.size} ({self.reason}); backed off to batch size {ended_at}"


def check_scores(scores: Any, n: int, detector: str, score_range: Any = None) -> np.ndarray:
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


def score_images(detector: Any, images: np.ndarray, size: int, meter: ThroughputMeter, label: str,
                 score_range: Any = None) -> tuple[list[np.ndarray], int, Backoff | None]:
    """Score ``images`` in chunks of ``size``, timing each ``detector.score`` call on ``meter``.

    A chunk that runs out of memory (:func:`~facebench.harness.run.timing.is_out_of_memory`) is
    scored again in halves, down to one image; out of memory with one image raises. Returns the
    checked scores per chunk, the size scoring ended at (the caller goes on with it) and the
    first back-off of this call (None when there was none)."""
    scores_all: list[np.ndarray] = []
    done, first = 0, None
    while done < len(images):
        chunk = images[done : done + size]
        try:
            with meter.batch(len(chunk)):
                scores = detector.score(chunk)
        except Exception as exc:
            if size == 1 or not is_out_of_memory(exc):
                raise
            first = first or Backoff(size, one_line(exc))
        else:
            scores_all.append(check_scores(scores, len(chunk), label, score_range))
            done += len(chunk)
            continue
        # after the except block, so the traceback's frames (and their tensors) are gone
        release_cuda_memory(meter.device)
        size = max(1, size // 2)
    return scores_all, size, first


def score_split(detector: Any, split: Corpus, batch_size: int, label: str, perturbation: Perturbation = IDENTITY,
                progress: Progress | None = None, description: str = "") -> tuple[list[dict], np.ndarray, dict]:
    """Score every image of ``split`` in batches of ``batch_size``: (rows, scores, throughput).

    The detector's input policy (:mod:`~facebench.harness.run.inputs`) is applied after the
    perturbation, and each batch holds images of one size after it (a corpus of one size is read
    in consecutive batches, as always); rows and scores come back in the split's row order.

    The clock runs around ``detector.score`` only; reading and decoding the images is timed
    apart (``decode_images_per_s``), and so is the perturbation, which belongs to neither.
    ``peak_rss_mb`` is the process's resident memory read after each batch (a sampling thread
    would cost fast detectors a few percent of their speed).

    A batch that runs out of memory is scored again in halves (:func:`score_images`), and later
    batches keep the smaller size; the throughput's ``batch_size`` is the size scoring ended at,
    and its ``warnings`` says what happened. Out of memory with one image fails the task.
    """
    meter = ThroughputMeter(device=str(getattr(detector, "device", "cpu") or "cpu"))
    n = len(split)
    rows_all: list[dict | None] = [None] * n
    scores_all = np.zeros(n)
    decode_seconds, peak_rss = 0.0, 0
    size, backoff = batch_size, None
    score_range = getattr(detector, "score_range", None)
    policy = policy_of(detector)
    task = track(progress, description, n)
    for indices in split_batches(split, batch_size, policy):
        start = time.perf_counter()
        rows = split.manifest.take(pa.array(indices)).to_pylist()
        images = split.load_image_list(rows)
        decode_seconds += time.perf_counter() - start
        keys = [f"{split.digest}:{row['id']}" for row in rows]
        for positions, batch in detector_inputs(images, policy, keys, perturbation, [row["id"] for row in rows],
                                                  f"{split.root}: "):
            chunks, size, new_backoff = score_images(detector, batch, size, meter, label, score_range)
            backoff = backoff or new_backoff
            if chunks:
                scores_all[indices[positions]] = np.concatenate(chunks)
        peak_rss = max(peak_rss, current_rss_bytes() or 0)
        for index, row in zip(indices, rows):
            rows_all[index] = {key: row[key] for key in SCORED_FIELDS}
        advance(progress, task, len(rows))
    throughput = {**meter.summary(), "batch_size": size, "peak_rss_mb": peak_rss / 2**20 if peak_rss else None,
                  "decode_images_per_s": n / decode_seconds if decode_seconds > 0 else None}
    if backoff is not None:
        throughput["warnings"] = [backoff.warning(size)]
    return rows_all, scores_all, throughput  # type: ignore[return-value]
