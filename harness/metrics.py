"""Detection metrics from labels and scores (fake is the positive class), via scikit-learn."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

#: Metric names in the order reports show them.
METRICS = ("auc", "ap", "accuracy")


def compute_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """AUC, AP and accuracy at ``threshold``; AUC and AP are NaN when only one class is present."""
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=float)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels and scores must be 1-D of one length, got {labels.shape} and {scores.shape}")
    if len(labels) == 0:
        raise ValueError("no scores to evaluate")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinity")
    both_classes = len(np.unique(labels)) == 2
    return {
        "auc": float(roc_auc_score(labels, scores)) if both_classes else math.nan,
        "ap": float(average_precision_score(labels, scores)) if both_classes else math.nan,
        "accuracy": float(accuracy_score(labels, scores >= threshold)),
    }
