"""Azimuthally averaged log power spectrum + logistic regression (Durall et al., CVPR 2020).

Upsampling layers copy an image's spectrum and leave energy at high frequencies that
camera images lack; the 1-D radial profile of the log power spectrum shows it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.sparse
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..harness.contracts.detector import FeatureDetector, require
from ..harness.contracts.types import check_images

N_BINS = 64


@lru_cache(maxsize=16)
def _ring_matrix(height: int, width: int, n_bins: int) -> scipy.sparse.csr_matrix:
    """A sparse [H*W, n_bins] matrix that averages each frequency ring (radius <= 0.5 cycles/px)."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    radius = np.sqrt(fy**2 + fx**2).ravel()
    keep = radius <= 0.5
    bins = np.minimum((radius[keep] / 0.5 * n_bins).astype(int), n_bins - 1)
    rows = np.flatnonzero(keep)
    counts = np.bincount(bins, minlength=n_bins).astype(np.float64)
    weights = 1.0 / counts[bins]
    return scipy.sparse.csr_matrix((weights, (rows, bins)), shape=(height * width, n_bins))


def radial_spectrum(images: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """[N, n_bins] azimuthal averages of the log power spectrum of each image's luminance."""
    check_images(images)
    gray = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    gray -= gray.mean(axis=(1, 2), keepdims=True)
    power = np.abs(scipy.fft.fft2(gray, axes=(1, 2), workers=-1)) ** 2
    log_power = np.log(power + 1e-8).reshape(len(images), -1)
    return np.asarray(log_power @ _ring_matrix(images.shape[1], images.shape[2], n_bins))


class SpectrumDetector(FeatureDetector):
    """Radial log power spectrum features, standardised, into a logistic regression.

    Parameters:
        n_bins: number of frequency rings between 0 and 0.5 cycles per pixel.
        c: inverse regularisation strength of the logistic regression.
        batch_size: images per call the runner sends to ``score``; also the chunk size of feature extraction.
    """

    name = "spectrum"
    targets = ("upsampling",)  # the artifacts it claims to respond to (the known-answer matrix)
    score_range = (0.0, 1.0)  # a probability of "fake"; the runner checks it
    version = "0.1.0"
    requires_fit = True
    #: What the detector reads: pixels only (never records or ground truth).
    inputs = ("pixels",)

    checks = {
        "n_bins": require(lambda n: n >= 4, "{name} must be >= 4, got {value}"),
        "c": require(lambda c: c > 0, "{name} must be > 0, got {value}"),
    }
    n_bins: int
    c: float

    def __init__(self, n_bins: int = N_BINS, c: float = 1.0, batch_size: int = 64):
        super().__init__(n_bins=n_bins, c=c, batch_size=batch_size)

    def batch_features(self, images: np.ndarray) -> np.ndarray:
        return radial_spectrum(images, self.n_bins)

    def make_model(self) -> Pipeline:
        return make_pipeline(StandardScaler(), LogisticRegression(C=self.c, max_iter=2000))

    def fit(self, images: np.ndarray, labels: np.ndarray) -> None:
        if len(np.unique(np.asarray(labels))) != 2:
            raise ValueError("spectrum detector needs both real and fake images to fit")
        super().fit(images, labels)
