"""Log DCT-II spectrum + logistic regression (Frank et al., ICML 2020).

Upsampling layers mirror an image's spectrum into the high frequencies; in the 2-D DCT of
the whole image the copies sit in the high-frequency corner and along the edges, where
camera images have little energy. The log magnitude of every coefficient, averaged over a
coarse grid of blocks of coefficients (so the feature has the same length at every image
size and stays short enough to fit on a few dozen images), is standardised and classified
by a logistic regression.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

from ..harness.contracts.detector import integer
from .features import LogisticFeatureDetector, luminance

GRID = 16
EPS = 1e-3


@lru_cache(maxsize=32)
def _block_mean_matrix(length: int, grid: int) -> np.ndarray:
    """[grid, length] float32 matrix that averages coefficient index i into block floor(i * grid / length)."""
    blocks = np.arange(length) * grid // length
    matrix = np.zeros((grid, length), np.float32)
    matrix[blocks, np.arange(length)] = 1.0
    return matrix / matrix.sum(axis=1, keepdims=True)


def log_dct(images: np.ndarray) -> np.ndarray:
    """[N, H, W] log(|DCT-II| + eps) of each image's mean-removed luminance (orthonormal DCT)."""
    gray = luminance(images)
    gray -= gray.mean(axis=(1, 2), keepdims=True)
    coef = scipy.fft.dctn(gray, type=2, axes=(1, 2), norm="ortho", workers=-1)
    return np.log(np.abs(coef) + EPS)


def dct_features(images: np.ndarray, grid: int = GRID) -> np.ndarray:
    """[N, grid * grid] block averages of the log DCT map (row-major: vertical frequency first)."""
    height, width = images.shape[1:3]
    if height < grid or width < grid:
        raise ValueError(f"dct detector: images of {height}x{width} are smaller than the {grid}x{grid} feature grid")
    rows = _block_mean_matrix(height, grid)
    cols = _block_mean_matrix(width, grid)
    blocks = rows @ log_dct(images) @ cols.T  # broadcasts over the batch
    return blocks.reshape(len(images), -1).astype(np.float64)


class DCTDetector(LogisticFeatureDetector):
    """Log DCT coefficients averaged on a ``grid x grid`` block grid, standardised, into a logistic regression.

    Parameters:
        grid: blocks per side of the coefficient map (the feature has ``grid**2`` values; 2..64).
        c: inverse regularisation strength of the logistic regression.
        batch_size: images per call the runner sends to ``score``; also the chunk size of feature extraction.
    """

    name = "dct"
    version = "0.1.0"
    targets = ("upsampling",)  # the artifacts it claims to respond to (the known-answer matrix)
    requires_fit = True
    #: What the detector reads: pixels only (never records or ground truth).
    inputs = ("pixels",)

    checks = {"grid": integer(2, 64)}
    grid: int

    def __init__(self, grid: int = GRID, c: float = 0.1, batch_size: int = 64):
        super().__init__(grid=grid, c=c, batch_size=batch_size)

    def batch_features(self, images: np.ndarray) -> np.ndarray:
        return dct_features(images, self.grid)
