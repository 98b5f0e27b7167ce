"""Metric rows of one task: every image and each artifact, with intervals, sensitivity and the chance level."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.suite import BootstrapSpec
from .metrics import ap_chance, compute_metrics, metrics_with_ci, unpaired
from .sensitivity import counterfactual_pairs, sensitivity


def row_subset(labels: np.ndarray, names: list[set[str]], artifact: str) -> np.ndarray:
    """Which images a metric row holds: every image for ``all``; else every real plus the fakes carrying ``artifact``."""
    if artifact == "all":
        return np.ones(len(labels), bool)
    return (labels == 0) | np.array([artifact in n for n in names], dtype=bool)


def row_threshold(threshold: float | dict[str, float] | None, artifact: str) -> float | None:
    """The calibrated threshold of one row: its own, else the ``all`` one (an artifact the
    calibration split lacks, e.g. a test corpus other than the training one)."""
    if not isinstance(threshold, dict):
        return threshold
    return threshold.get(artifact, threshold.get("all"))


def metric_rows(rows: list[dict], scores: np.ndarray, threshold: float | dict[str, float] | None,
                bootstrap: BootstrapSpec, sensitivity_on: bool, base: dict[str, Any]) -> list[dict[str, Any]]:
    """Metric rows with bootstrap intervals for all images and per artifact, plus counterfactual sensitivity
    and each row's ``ap_chance``. ``threshold``: one calibrated threshold for every row, or one per row
    (:func:`~facebench.harness.run.calibration.calibrated_thresholds`). Rows of an unpaired set (no pair
    holds a real and a fake) have stratified intervals and no sensitivity rows: the run records why
    (:data:`~facebench.harness.run.sensitivity.UNPAIRED_REASON`)."""
    labels = np.array([int(r["label"]) for r in rows])
    pairs = np.array([r["pair"] for r in rows])
    names = [set(r["artifact_names"]) for r in rows]
    sensitivity_on = sensitivity_on and not (len(rows) and unpaired(labels, pairs))
    out = []
    for artifact in ["all", *sorted(set().union(*names))]:
        keep = row_subset(labels, names, artifact)
        n_fake = int(labels[keep].sum())
        counts = {"n_real": int(keep.sum()) - n_fake, "n_fake": n_fake}
        cut = row_threshold(threshold, artifact)
        if bootstrap.resamples > 0:
            values: dict[str, dict[str, Any]] = metrics_with_ci(labels[keep], scores[keep], pairs[keep], n_resamples=bootstrap.resamples,
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
