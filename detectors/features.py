"""Helpers shared by the hand-crafted frequency and noise detectors (dct, hf_falloff, residual_period, srm).

Each of those detectors turns an image into a short feature vector and classifies it with a
standardised logistic regression; this module holds the common pieces: luminance, chunked
feature extraction, and the fit/score logic with its checks.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..harness.contracts.types import check_images
from ..harness.contracts.constants import LUMA



def luminance(images: np.ndarray) -> np.ndarray:
    """float32 [N, H, W] luminance (0..255) of uint8 RGB images [N, H, W, 3]."""
    check_images(images)
    return images.astype(np.float32) @ LUMA


def check_labels(detector: str, images: np.ndarray, labels) -> np.ndarray:
    """``labels`` as ints, or ValueError unless there is one per image and both classes occur."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{detector} detector: need one label per image, got {labels.shape} labels for {len(images)} images")
    found = np.unique(labels).tolist()
    if set(found) != {0, 1}:
        raise ValueError(f"{detector} detector needs both real (0) and fake (1) images to fit, got labels {found}")
    return labels.astype(int)


def check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive_float(name: str, value) -> float:
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not number or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def in_chunks(extract: Callable[[np.ndarray], np.ndarray], images: np.ndarray, chunk: int) -> np.ndarray:
    """``extract`` applied to ``images`` ``chunk`` at a time (bounds memory), rows concatenated."""
    check_images(images)
    if len(images) == 0:
        raise ValueError("no images given")
    return np.concatenate([extract(images[start : start + chunk]) for start in range(0, len(images), chunk)])


class LogisticFeatureDetector:
    """Base of the feature + logistic regression detectors: subclasses define ``features``.

    A subclass sets the class attributes of the Detector protocol and, in ``__init__``,
    ``self.c`` (inverse regularisation), ``self.batch_size`` and ``self.device``, then calls
    :meth:`_reset`.
    """

    #: Scores are probabilities of "fake"; the runner checks it.
    score_range = (0.0, 1.0)

    name: str
    c: float
    batch_size: int

    def _reset(self) -> None:
        self.model: Pipeline | None = None

    def features(self, images: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, images: np.ndarray, labels: np.ndarray) -> None:
        labels = check_labels(self.name, images, labels)
        x = self.features(images)
        model = make_pipeline(StandardScaler(), LogisticRegression(C=self.c, max_iter=5000))
        model.fit(x, labels)
        self.model = model

    def score(self, images: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"{self.name} detector is not fitted; call fit() first")
        check_images(images)
        if len(images) == 0:
            return np.zeros(0)
        x = self.features(images)
        if x.shape[1] != self.model.n_features_in_:
            fitted = self.model.n_features_in_
            raise ValueError(f"{self.name} detector: {x.shape[1]} features, but it was fitted on {fitted}")
        return np.clip(self.model.predict_proba(x)[:, 1], 0.0, 1.0).astype(np.float64)
