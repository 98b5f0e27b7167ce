"""Artifact sensitivity from counterfactual pairs: a real and its fake differ only by the artifact.

For each pair whose fake carries the artifact, the score shift is ``score(fake) - score(real)``;
a flip is a pair whose real is called real and whose fake is called fake at the threshold.
Intervals are percentile bootstraps over pairs, seeded.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

#: Why an unpaired corpus has no sensitivity figures (the run records it per corpus; reports show it).
UNPAIRED_REASON = ("not applicable: the corpus is unpaired (no pair id holds both a real and a fake, e.g. a dataset "
                   "of independent images), so no fake is a counterfactual edit of a real and there is no score "
                   "shift or flip rate to measure; its intervals resample reals and fakes apart")


def counterfactual_pairs(rows: Sequence[dict[str, Any]], scores: np.ndarray, artifact: str) -> tuple[np.ndarray, np.ndarray]:
    """(real scores, fake scores) of the pairs whose fake carries ``artifact``; one entry per fake."""
    real_by_pair = {row["pair"]: float(s) for row, s in zip(rows, scores) if int(row["label"]) == 0}
    reals, fakes = [], []
    for row, score in zip(rows, scores):
        if int(row["label"]) == 1 and artifact in row["artifact_names"] and row["pair"] in real_by_pair:
            reals.append(real_by_pair[row["pair"]])
            fakes.append(float(score))
    return np.array(reals), np.array(fakes)


def _mean_ci(values: np.ndarray, resamples: int, confidence: float, seed: int) -> tuple[float, float]:
    if resamples < 1 or len(values) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def sensitivity(real: np.ndarray, fake: np.ndarray, threshold: float | None, resamples: int = 1000,
                confidence: float = 0.95, seed: int = 0) -> dict[str, dict[str, float]]:
    """``score_shift`` and ``flip_rate`` (NaN without a threshold) with bootstrap intervals."""
    out: dict[str, dict[str, float]] = {}
    if len(real) == 0:
        return {name: {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan} for name in ("score_shift", "flip_rate")}
    shift = fake - real
    low, high = _mean_ci(shift, resamples, confidence, seed)
    out["score_shift"] = {"value": float(shift.mean()), "ci_low": low, "ci_high": high}
    if threshold is None or math.isnan(threshold):
        out["flip_rate"] = {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    else:
        flips = ((real < threshold) & (fake >= threshold)).astype(float)
        low, high = _mean_ci(flips, resamples, confidence, seed)
        out["flip_rate"] = {"value": float(flips.mean()), "ci_low": low, "ci_high": high}
    return out
