"""Decision thresholds picked on a corpus's calibration split, one per metric row."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.progress import Progress

from ..data.corpus import Corpus
from ..data.suite import DetectorSpec, SplitSpec
from .fitting import fitted_detector, three_way_split
from .metrics import calibrated_threshold
from .rows import row_subset
from .scoring import batch_size_for, score_split


def calibrate(detector: Any, calibration: Corpus, batch_size: int, label: str) -> dict[str, float] | None:
    """Thresholds picked on the calibration split by :func:`calibrated_thresholds` (None: no split or one class)."""
    if len(calibration) == 0:
        return None
    rows, scores, _ = score_split(detector, calibration, batch_size, label)
    return calibrated_thresholds(rows, scores) or None


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


def fitted_and_calibrated(spec: DetectorSpec, label: str, corpus: Corpus, split: SplitSpec,
                          progress: Progress | None) -> tuple[Any, dict[str, float] | None]:
    """``spec``'s detector fitted on ``corpus`` (:func:`~facebench.harness.run.fitting.fitted_detector`)
    and its thresholds calibrated there."""
    detector = fitted_detector(spec, label, corpus, split, progress)
    _, calibration, _ = three_way_split(corpus, split)
    return detector, calibrate(detector, calibration, batch_size_for(spec, detector), spec.label)
