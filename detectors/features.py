"""Helpers shared by the hand-crafted frequency and noise detectors (dct, hf_falloff, residual_period, srm).

Each of those detectors turns an image into a short feature vector and classifies it with a
standardised logistic regression; this module holds the common pieces: luminance and the
logistic model. Parameter checks, batches and the fit/score logic are
:class:`~facebench.harness.contracts.detector.FeatureDetector`'s.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..harness.contracts.constants import LUMA
from ..harness.contracts.detector import FeatureDetector, check_labels, number
from ..harness.contracts.types import check_images

__all__ = ["LogisticFeatureDetector", "check_labels", "luminance"]


def luminance(images: np.ndarray) -> np.ndarray:
    """float32 [N, H, W] luminance (0..255) of uint8 RGB images [N, H, W, 3]."""
    check_images(images)
    return images.astype(np.float32) @ LUMA


class LogisticFeatureDetector(FeatureDetector):
    """Base of the feature + logistic regression detectors: subclasses define ``batch_features``.

    A subclass sets the class attributes of the Detector protocol, declares the checks of its
    own parameters and passes them, with ``c`` (inverse regularisation) and ``batch_size``, to
    ``super().__init__``.
    """

    checks = {"c": number()}

    c: float

    def make_model(self) -> Pipeline:
        return make_pipeline(StandardScaler(), LogisticRegression(C=self.c, max_iter=5000))
