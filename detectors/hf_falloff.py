"""High-frequency falloff of the azimuthal spectrum + logistic regression (Dzanic et al., NeurIPS 2020).

Camera images' power falls off with frequency roughly as a power law. Generators that
over-smooth (diffusion) lose power at the high end; some GANs add power there. The detector
averages the power spectrum over rings (azimuthal average), then describes its high end with
a few fitted numbers:

- a quadratic fit of log power against log frequency over the high band ``[f_low, 0.5]``
  (level, slope, curvature) and the RMS of its residual;
- a power-law (line) fit over the mid band ``[f_mid, f_low]``, its slope, and how far the high
  band lies above or below that line extrapolated (mean and at the top end: the "residual
  energy" above ``f_low``);
- the share of the power above ``f_low``.

These are standardised and classified by a small logistic regression.

Physics note: anything that changes the top of the spectrum moves these numbers, so the
detector also responds to upsampling (spectral copies at the high end) and to the size
shortcut (a bicubic upscale removes the top of the spectrum). That is correct behaviour for a
falloff detector, not a leak.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.sparse

from ..harness.contracts.detector import all_of, integer, number, require
from .features import LogisticFeatureDetector, luminance

N_BINS = 64
#: Number of features :func:`falloff_features` returns per image.
N_FEATURES = 9


@lru_cache(maxsize=16)
def _ring_mean_matrix(height: int, width: int, n_bins: int) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """A sparse [H * (W//2+1), n_bins] matrix averaging ``rfft2`` power over rings of radius (0, 0.5],
    and the bins' centre frequencies (cycles per pixel). Each rfft2 column that stands for two
    columns of the full spectrum (its conjugate) is weighted twice."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt(fy**2 + fx**2)
    twice = np.ones_like(radius)
    last = width // 2 if width % 2 == 0 else None
    twice[:, 1:last] = 2.0
    radius, twice = radius.ravel(), twice.ravel()
    keep = (radius > 0) & (radius <= 0.5)
    bins = np.minimum((radius[keep] / 0.5 * n_bins).astype(int), n_bins - 1)
    weights = twice[keep]
    totals = np.bincount(bins, weights=weights, minlength=n_bins)
    if np.any(totals[n_bins // 8 :] == 0):
        raise ValueError(f"hf_falloff: a {height}x{width} image is too small for {n_bins} frequency rings")
    totals = np.maximum(totals, 1.0)  # only the lowest rings can be empty; the fits never use them
    matrix = scipy.sparse.csr_matrix((weights / totals[bins], (np.flatnonzero(keep), bins)), shape=(radius.size, n_bins))
    centres = (np.arange(n_bins) + 0.5) * 0.5 / n_bins
    return matrix, centres


def radial_power(images: np.ndarray, n_bins: int = N_BINS) -> tuple[np.ndarray, np.ndarray]:
    """([N, n_bins] log of the ring-averaged power spectrum of each image's luminance, [n_bins] frequencies).

    The luminance is mean-removed and multiplied by a separable Hann window, so the border
    (where the periodic FFT wraps around) adds no false high frequency.
    """
    gray = luminance(images)
    height, width = gray.shape[1:]
    gray -= gray.mean(axis=(1, 2), keepdims=True)
    window = np.outer(np.hanning(height + 2)[1:-1], np.hanning(width + 2)[1:-1]).astype(np.float32)
    spectrum = scipy.fft.rfft2(gray * window, axes=(1, 2), workers=-1)
    power = (spectrum.real**2 + spectrum.imag**2).reshape(len(images), -1)
    matrix, centres = _ring_mean_matrix(height, width, n_bins)
    ring = np.asarray(power @ matrix, dtype=np.float64)
    return np.log(ring + 1e-6), centres


def _fit(u: np.ndarray, y: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares polynomial fits of every row of ``y`` [N, K] against ``u`` [K]: (coefficients
    [N, degree+1], lowest order first; fitted values [N, K])."""
    design = np.vander(u, degree + 1, increasing=True)
    coef, *_ = np.linalg.lstsq(design, y.T, rcond=None)
    return coef.T, (design @ coef).T


def bands(freq: np.ndarray, f_low: float, f_mid: float) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the high band ``[f_low, 0.5]`` and the mid band ``[f_mid, f_low)`` over ring
    frequencies ``freq``; a ``ValueError`` when either has too few rings to fit."""
    high = freq >= f_low
    mid = (freq >= f_mid) & (freq < f_low)
    if high.sum() < 4 or mid.sum() < 2:
        raise ValueError(
            f"hf_falloff: with {len(freq)} frequency rings the high band [{f_low:g}, 0.5] has {int(high.sum())} "
            f"(needs 4) and the mid band [{f_mid:g}, {f_low:g}) has {int(mid.sum())} (needs 2); use more rings, "
            "larger images or wider bands"
        )
    return high, mid


def falloff_features(images: np.ndarray, f_low: float = 0.25, f_mid: float = 0.05, n_bins: int = N_BINS) -> np.ndarray:
    """[N, N_FEATURES] fit parameters of the high end of each image's azimuthal spectrum (see the module doc)."""
    log_power, freq = radial_power(images, min(n_bins, min(images.shape[1:3]) // 2))
    log_f = np.log(freq)
    high, mid = bands(freq, f_low, f_mid)
    u_high = log_f[high] - log_f[high].mean()  # centred: level, slope and curvature decorrelate
    coef_high, fitted_high = _fit(u_high, log_power[:, high], 2)
    rms_high = np.sqrt(np.mean((log_power[:, high] - fitted_high) ** 2, axis=1))
    coef_mid, _ = _fit(log_f[mid], log_power[:, mid], 1)
    extrapolated = coef_mid[:, :1] + coef_mid[:, 1:2] * log_f[high][None, :]
    excess = log_power[:, high] - extrapolated  # > 0: more power than the mid-band power law predicts
    top = max(1, int(high.sum()) // 4)
    power = np.exp(log_power - log_power.max(axis=1, keepdims=True)) * freq[None, :]  # ring power x circumference
    share_high = np.log(power[:, high].sum(axis=1) / power.sum(axis=1))
    return np.column_stack(
        [
            coef_high[:, 0],
            coef_high[:, 1],
            coef_high[:, 2],
            rms_high,
            coef_mid[:, 1],
            excess.mean(axis=1),
            excess[:, -top:].mean(axis=1),
            excess[:, :top].mean(axis=1),
            share_high,
        ]
    )


class HFFalloffDetector(LogisticFeatureDetector):
    """Fitted decay of the high end of the azimuthal spectrum, standardised, into a logistic regression.

    Parameters:
        f_low: where the high band starts, in cycles per pixel (0.05 < f_low < 0.45).
        f_mid: where the mid band (the power-law reference) starts (0 < f_mid < f_low - 0.05).
        n_bins: frequency rings between 0 and 0.5 cycles per pixel (>= 16).
        c: inverse regularisation strength of the logistic regression.
        batch_size: images per call the runner sends to ``score``; also the chunk size of feature extraction.
    """

    name = "hf_falloff"
    version = "0.1.0"
    targets = ("hf_smooth", "hf_excess")  # the artifacts it claims to respond to (the known-answer matrix)
    requires_fit = True
    #: What the detector reads: pixels only (never records or ground truth).
    inputs = ("pixels",)

    checks = {
        "f_low": all_of(number(), require(lambda f: 0.05 < f < 0.45, "{name} must be in (0.05, 0.45) cycles per pixel, got {value}")),
        "f_mid": number(),
        "n_bins": integer(16),
    }
    f_low: float
    f_mid: float
    n_bins: int

    def __init__(self, f_low: float = 0.25, f_mid: float = 0.05, n_bins: int = N_BINS, c: float = 1.0, batch_size: int = 64):
        super().__init__(f_low=f_low, f_mid=f_mid, n_bins=n_bins, c=c, batch_size=batch_size)
        if not self.f_mid < self.f_low - 0.05:
            raise ValueError(f"f_mid must be below f_low - 0.05 = {self.f_low - 0.05:g}, got {self.f_mid}")
        bands((np.arange(self.n_bins) + 0.5) * 0.5 / self.n_bins, self.f_low, self.f_mid)  # enough rings in each band

    def batch_features(self, images: np.ndarray) -> np.ndarray:
        return falloff_features(images, self.f_low, self.f_mid, self.n_bins)
