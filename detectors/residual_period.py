"""Periodic peaks in the noise residual's spectrum + logistic regression (Corvi et al., ICASSP 2023).

A generator's fingerprint can be a faint pattern tiled with period P; in the spectrum of the
noise residual ``x - denoise(x)`` it shows as peaks at the harmonics ``(ky, kx) / P``. For each
period in ``periods`` the detector measures, at that period's primitive harmonics (those that
are not harmonics of a shorter period), the log ratio of the peak power to the median power of
the surrounding frequencies, and keeps its mean and maximum. A logistic regression weighs them.

JPEG's 8x8 grid puts peaks of its own at every k/8, and that includes every harmonic of
periods 2 and 4. Real photographs are JPEG'd too, so the fitted weights learn the JPEG level;
period 8 is in the default set so the regression can tell "period-4 peaks stronger than JPEG's
odd k/8 peaks" (a period-4 pattern) from "all k/8 peaks up" (just JPEG).
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np
import scipy.fft

from ..harness.contracts.detector import choice
from .features import LogisticFeatureDetector, luminance

PERIODS = (2, 3, 4, 5, 6, 7, 8)
#: Half-width (in frequency bins) of the neighbourhood whose median is the reference of a peak.
NEIGHBOURHOOD = 4
DENOISERS = ("median", "mean")


def _median3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def median3x3(gray: np.ndarray) -> np.ndarray:
    """The exact 3x3 median of every image of ``gray`` [N, H, W] (borders mirrored, as
    ``scipy.ndimage.median_filter(mode="reflect")``), with whole-array min/max operations: sort
    each vertical triple, then the median of the nine is the median of (the largest of the three
    minima, the median of the three medians, the smallest of the three maxima)."""
    p = np.pad(gray, ((0, 0), (1, 1), (1, 1)), mode="symmetric")
    top, mid, bottom = p[:, :-2], p[:, 1:-1], p[:, 2:]
    low, high = np.minimum(top, mid), np.maximum(top, mid)
    low, middle, high = np.minimum(low, bottom), np.maximum(low, np.minimum(high, bottom)), np.maximum(high, bottom)
    left, centre, right = slice(0, -2), slice(1, -1), slice(2, None)
    max_low = np.maximum(np.maximum(low[:, :, left], low[:, :, centre]), low[:, :, right])
    med_mid = _median3(middle[:, :, left], middle[:, :, centre], middle[:, :, right])
    min_high = np.minimum(np.minimum(high[:, :, left], high[:, :, centre]), high[:, :, right])
    return _median3(max_low, med_mid, min_high)


def residual(images: np.ndarray, denoiser: str = "median") -> np.ndarray:
    """[N, H, W] luminance minus its 3x3 median (or 3x3 mean): the noise residual."""
    gray = luminance(images)
    if denoiser == "median":
        smooth = median3x3(gray)
    else:
        padded = np.pad(gray, ((0, 0), (1, 1), (1, 1)), mode="symmetric")
        rows = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
        smooth = (rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]) / np.float32(9.0)
    return gray - smooth


def primitive_harmonics(period: int) -> list[tuple[int, int]]:
    """(ky, kx) in 0..P-1 whose frequency (ky, kx)/P is not a harmonic of a shorter period, one of
    each conjugate pair (the residual is real, so its spectrum is symmetric)."""
    seen, out = set(), []
    for ky in range(period):
        for kx in range(period):
            if gcd(gcd(ky, kx), period) != 1 or (ky, kx) in seen:
                continue
            seen.update({(ky, kx), ((-ky) % period, (-kx) % period)})
            out.append((ky, kx))
    return out


def _half_plane(y: np.ndarray, x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Flat indices into an ``rfft2`` spectrum [H, W//2+1] of full-spectrum bins (y, x): a bin
    in the missing half is read at its conjugate, which has the same power."""
    y, x = y % height, x % width
    mirror = x > width // 2
    y = np.where(mirror, (-y) % height, y)
    x = np.where(mirror, (-x) % width, x)
    return y * (width // 2 + 1) + x


@lru_cache(maxsize=16)
def _peak_indices(height: int, width: int, periods: tuple[int, ...], radius: int):
    """Flat indices into an ``rfft2`` spectrum: for every primitive harmonic of every period the
    3x3 bins around its (fractional) position, and a ring of bins around it (the reference), plus
    which period each harmonic belongs to."""
    near = np.arange(-1, 2)
    span = np.arange(-radius, radius + 1)
    ring_y, ring_x = np.meshgrid(span, span, indexing="ij")
    outside = np.maximum(np.abs(ring_y), np.abs(ring_x)) >= 2  # leave the peak's own 3x3 out
    ring_y, ring_x = ring_y[outside], ring_x[outside]
    peaks, rings, owners = [], [], []
    for index, period in enumerate(periods):
        for ky, kx in primitive_harmonics(period):
            cy, cx = int(round(ky * height / period)), int(round(kx * width / period))
            py, px = np.meshgrid(cy + near, cx + near, indexing="ij")
            peaks.append(_half_plane(py.ravel(), px.ravel(), height, width))
            rings.append(_half_plane(cy + ring_y, cx + ring_x, height, width))
            owners.append(index)
    return np.array(peaks), np.array(rings), np.array(owners)


def period_features(images: np.ndarray, periods: tuple[int, ...] = PERIODS, denoiser: str = "median") -> np.ndarray:
    """[N, 2 * len(periods)]: per period, the mean and the max over its primitive harmonics of
    log(peak power / median power of the surrounding bins) in the residual's spectrum."""
    res = residual(images, denoiser)
    n, height, width = res.shape
    res -= res.mean(axis=(1, 2), keepdims=True)
    spectrum = scipy.fft.rfft2(res, axes=(1, 2), workers=-1)
    power = (spectrum.real**2 + spectrum.imag**2).reshape(n, -1)
    peaks, rings, owners = _peak_indices(height, width, tuple(periods), NEIGHBOURHOOD)
    peak = power[:, peaks].max(axis=2)  # [N, harmonics]: a period that does not divide the size smears over neighbours
    reference = np.median(power[:, rings], axis=2)
    ratio = np.log((peak + 1e-6) / (reference + 1e-6))
    columns = []
    for index in range(len(periods)):
        mine = ratio[:, owners == index]
        columns += [mine.mean(axis=1), mine.max(axis=1)]
    return np.column_stack(columns).astype(np.float64)


def check_periods(periods) -> tuple[int, ...]:
    """``periods`` (one or several) as a tuple of distinct ints in 2..32; ValueError otherwise."""
    if isinstance(periods, (int, np.integer)) and not isinstance(periods, bool):
        periods = (periods,)
    try:
        periods = tuple(periods)
    except TypeError:
        raise ValueError(f"periods must be a list of integers in 2..32, got {periods!r}") from None
    if not periods:
        raise ValueError("periods must name at least one period")
    for period in periods:
        if isinstance(period, bool) or not isinstance(period, (int, np.integer)) or not 2 <= period <= 32:
            raise ValueError(f"periods must be integers in 2..32, got {period!r}")
    if len(set(periods)) != len(periods):
        raise ValueError(f"periods must be distinct, got {list(periods)}")
    return tuple(int(p) for p in periods)


class ResidualPeriodDetector(LogisticFeatureDetector):
    """Peak-to-median ratios at the harmonics k/P of the noise residual's spectrum, into a logistic regression.

    Parameters:
        periods: the periods P to look at (distinct integers in 2..32).
        denoiser: "median" (3x3 median, the default) or "mean" (3x3 box; faster, weaker).
        c: inverse regularisation strength of the logistic regression.
        batch_size: images per call the runner sends to ``score``; also the chunk size of feature extraction.
    """

    name = "residual_period"
    version = "0.1.0"
    targets = ("periodic",)  # the artifacts it claims to respond to (the known-answer matrix)
    requires_fit = True
    #: What the detector reads: pixels only (never records or ground truth).
    inputs = ("pixels",)

    checks = {"periods": lambda name, value: check_periods(value), "denoiser": choice(DENOISERS)}
    periods: tuple[int, ...]
    denoiser: str

    def __init__(self, periods=PERIODS, denoiser: str = "median", c: float = 1.0, batch_size: int = 64):
        super().__init__(periods=periods, denoiser=denoiser, c=c, batch_size=batch_size)

    def batch_features(self, images: np.ndarray) -> np.ndarray:
        return period_features(images, self.periods, self.denoiser)
