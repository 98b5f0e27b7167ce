"""Spatial rich model residual statistics + logistic regression (Fridrich & Kodovsky 2012; used for GAN detection).

A camera leaves noise in every pixel (sensor pattern, shot and read noise, demosaicking);
generated images lack it or carry a different kind. High-pass "SRM" kernels strip the content
and keep that noise. Each residual is quantised (divided by ``q`` and rounded) and truncated to
``[-T, T]``; the detector counts the co-occurrences of horizontally and vertically adjacent
quantised values (a ``(2T+1)^2`` histogram per kernel, both directions pooled, normalised), and
a logistic regression weighs those frequencies.

Kernels (all on luminance):

- ``first``: first-order differences ``x[j+1] - x[j]``, horizontal and vertical pooled;
- ``second``: second-order differences ``x[j-1] - 2 x[j] + x[j+1]``, pooled the same way;
- ``square3``: the 3x3 "KB" kernel ``[[-1, 2, -1], [2, -4, 2], [-1, 2, -1]] / 4``;
- ``kv``: the 5x5 "KV" kernel divided by 12.
"""

from __future__ import annotations

import numpy as np

from ..harness.contracts.detector import all_of, integer, number, require
from .features import LogisticFeatureDetector, luminance

KV = np.array(
    [
        [-1, 2, -2, 2, -1],
        [2, -6, 8, -6, 2],
        [-2, 8, -12, 8, -2],
        [2, -6, 8, -6, 2],
        [-1, 2, -2, 2, -1],
    ],
    np.float32,
) / 12.0
SQUARE3 = np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], np.float32) / 4.0
KERNELS = ("first", "second", "square3", "kv")


#: KV is symmetric and of rank 2: KV = sum_i w_i * outer(v_i, v_i); each term is applied as two 1-D passes.
_EIGEN_VALUES, _EIGEN_VECTORS = np.linalg.eigh(KV.astype(np.float64))
KV_TERMS = tuple(
    (float(_EIGEN_VALUES[i]), _EIGEN_VECTORS[:, i].astype(np.float32)) for i in np.argsort(-np.abs(_EIGEN_VALUES))[:2]
)


def _correlate_1d(x: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    """'valid' correlation of ``x`` [N, H, W] with ``taps`` along ``axis`` (1 rows, 2 columns)."""
    length = x.shape[axis] - len(taps) + 1
    out = None
    for k, tap in enumerate(taps):
        part = x[:, k : k + length] if axis == 1 else x[:, :, k : k + length]
        out = tap * part if out is None else out + tap * part
    return out


def kv_residual(gray: np.ndarray) -> np.ndarray:
    """'valid' correlation of every image of ``gray`` [N, H, W] with the 5x5 KV kernel (separably)."""
    out = None
    for weight, vector in KV_TERMS:
        term = _correlate_1d(_correlate_1d(gray, vector * np.float32(weight), 1), vector, 2)
        out = term if out is None else out + term
    return out


def residual_maps(gray: np.ndarray, kernels: tuple[str, ...]) -> list[tuple[str, np.ndarray, tuple[int, ...]]]:
    """For each kernel its residual maps, each with the axes (1 rows, 2 columns) along which its
    co-occurrences are counted: a directional kernel gives one map per direction, counted along it."""
    maps: list[tuple[str, np.ndarray, tuple[int, ...]]] = []
    second_h = gray[:, :, :-2] - 2 * gray[:, :, 1:-1] + gray[:, :, 2:]
    for kernel in kernels:
        if kernel == "first":
            maps += [(kernel, np.diff(gray, axis=2), (2,)), (kernel, np.diff(gray, axis=1), (1,))]
        elif kernel == "second":
            maps += [(kernel, second_h, (2,)), (kernel, gray[:, :-2] - 2 * gray[:, 1:-1] + gray[:, 2:], (1,))]
        elif kernel == "square3":  # the KB kernel is -1/4 x (vertical second difference of second_h)
            maps.append((kernel, (second_h[:, :-2] - 2 * second_h[:, 1:-1] + second_h[:, 2:]) * np.float32(-0.25), (1, 2)))
        else:
            maps.append((kernel, kv_residual(gray), (1, 2)))
    return maps


def quantise(res: np.ndarray, q: float, t: int) -> np.ndarray:
    """uint8 codes 0..2t of ``round(res / q)`` truncated to [-t, t]."""
    codes = np.rint(res * np.float32(1.0 / q))
    np.clip(codes, -t, t, out=codes)
    codes += t
    return codes.astype(np.uint8)


def cooccurrence(codes: np.ndarray, axis: int, levels: int) -> np.ndarray:
    """[N, levels^2] counts of (code, next code along ``axis``) per image."""
    if axis == 2:
        pair = codes[:, :, :-1] * np.uint8(levels) + codes[:, :, 1:]
    else:
        pair = codes[:, :-1, :] * np.uint8(levels) + codes[:, 1:, :]
    return np.stack([np.bincount(p.ravel(), minlength=levels * levels) for p in pair]).astype(np.float64)


def srm_features(images: np.ndarray, kernels: tuple[str, ...] = KERNELS, q: float = 1.0, t: int = 2) -> np.ndarray:
    """[N, len(kernels) * (2t+1)^2] normalised co-occurrence histograms of the quantised residuals."""
    gray = luminance(images)
    if min(gray.shape[1:]) < 6:
        raise ValueError(f"srm detector: images of {gray.shape[1]}x{gray.shape[2]} are too small (need >= 6x6)")
    levels = 2 * t + 1
    counts = {kernel: np.zeros((len(gray), levels * levels)) for kernel in kernels}
    for kernel, res, axes in residual_maps(gray, kernels):
        codes = quantise(res, q, t)
        for axis in axes:
            counts[kernel] += cooccurrence(codes, axis, levels)
    blocks = [counts[k] / counts[k].sum(axis=1, keepdims=True) for k in kernels]
    return np.concatenate(blocks, axis=1)


def check_kernels(kernels) -> tuple[str, ...]:
    """``kernels`` (one name or several) as a tuple of distinct names from :data:`KERNELS`; ValueError otherwise."""
    if isinstance(kernels, str):
        kernels = (kernels,)
    kernels = tuple(kernels)
    if not kernels:
        raise ValueError(f"kernels must name at least one of {', '.join(KERNELS)}")
    unknown = [k for k in kernels if k not in KERNELS]
    if unknown:
        raise ValueError(f"unknown SRM kernel(s) {', '.join(map(repr, unknown))}; choose from {', '.join(KERNELS)}")
    if len(set(kernels)) != len(kernels):
        raise ValueError(f"kernels must be distinct, got {list(kernels)}")
    return kernels


class SRMDetector(LogisticFeatureDetector):
    """Co-occurrences of quantised SRM residuals, standardised, into a logistic regression.

    Parameters:
        kernels: which high-pass kernels to use, from "first", "second", "square3", "kv".
        q: quantisation step (grey levels) applied to each residual before rounding (> 0).
        t: truncation threshold: quantised residuals are clipped to [-t, t] (1..4).
        c: inverse regularisation strength of the logistic regression.
        batch_size: images per call the runner sends to ``score``; also the chunk size of feature extraction.
    """

    name = "srm"
    version = "0.1.0"
    targets = ("missing_camera_noise",)  # the artifacts it claims to respond to (the known-answer matrix)
    requires_fit = True
    #: What the detector reads: pixels only (never records or ground truth).
    inputs = ("pixels",)

    checks = {
        "kernels": lambda name, value: check_kernels(value),
        "q": number(),
        "t": all_of(integer(), require(lambda t: t <= 4, "{name} must be in 1..4, got {value}")),
    }
    kernels: tuple[str, ...]
    q: float
    t: int

    def __init__(self, kernels=KERNELS, q: float = 1.0, t: int = 2, c: float = 0.1, batch_size: int = 64):
        super().__init__(kernels=kernels, q=q, t=t, c=c, batch_size=batch_size)

    def batch_features(self, images: np.ndarray) -> np.ndarray:
        return srm_features(images, self.kernels, self.q, self.t)
