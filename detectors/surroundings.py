"""Surroundings detectors: a background blurrier than the face (``bg_blur``) and a lone earring (``earring``).

Both read pixels only, turn each image into a handful of numbers and classify them with a
standardised logistic regression (:class:`~facebench.detectors.features.LogisticFeatureDetector`).

``bg_blur``
    Portraits put the face in the middle and the background at the borders. A camera's noise
    and fine detail reach every part of the picture alike, so the high-frequency energy of the
    border patches, relative to that of the face, is roughly constant; a generator that blurs
    the background (uniform depth of field) removes it there only. The luminance is area-pooled
    2x2 (at 256 px; the pooling grows with the side) and a 4-neighbour Laplacian taken, its
    energy averaged on a grid of cells, and for each border region (top corners, top strip,
    left and right sides at mid height) the 25th percentile of the cells' log energy, minus
    the same statistic of the centre, is a feature. The low percentile measures the noise
    floor, where the blur shows most, and ignores the few cells on edges. The pooling keeps the
    band below a quarter of the sampling rate, so artifacts that only touch the top octave
    (a 2x upsampling's checkerboard) move the face and the border alike. Physics note: on a
    flat background a blur shows only as lost sensor noise, so a fake without camera noise
    (``missing_camera_noise``) also looks blurred at the border relative to the face, whose
    edges and shading remain; the detector responds to it (AUC ~0.8-0.85).

``earring``
    Real faces wear matching earrings or none, so the two ear regions look alike after
    mirroring about the face's vertical axis. The detector finds the eyes (the strongest
    mirror-symmetric pair of dark blobs next to bright ones, searched jointly over the axis,
    the eye row and the eye distance), which give the axis, the scale and the roll. Ear lobes
    sit about 1.6-2.8 eye half-distances out from the axis and 0.4-1.6 below the eye line;
    in these two regions it measures small bright and small dark details (top-hat and
    black-hat transforms of the luminance, about the size of an earring) and compares each
    side with the mirrored other side, allowing for a little misalignment (yaw moves the ears
    against the eyes). Features, for bright and for dark details: the larger one-sided excess
    over the mirror image, the smaller one, and the difference of the two sides' maxima. A
    lone earring makes one side's excess large; a matching pair or bare ears keep both small.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..harness.contracts.detector import integer
from .features import LogisticFeatureDetector, luminance
from ..harness.contracts.types import check_images
from ..harness.contracts.constants import LUMA

#: Smallest image side the detectors accept.
MIN_SIDE = 64


def _check_side(images: np.ndarray, who: str) -> None:
    check_images(images)
    if min(images.shape[1:3]) < MIN_SIDE:
        height, width = images.shape[1:3]
        raise ValueError(f"{who} detector: images of {height}x{width} are smaller than {MIN_SIDE} px")


def area_pool(x: np.ndarray, factor: int) -> np.ndarray:
    """Block means of ``factor x factor`` pixels over axes 1 and 2 of ``x`` (a remainder is cut off)."""
    if factor == 1:
        return x
    h, w = x.shape[1] // factor * factor, x.shape[2] // factor * factor
    total = None
    for dy in range(factor):
        for dx in range(factor):
            part = x[:, dy:h:factor, dx:w:factor]
            total = part.astype(np.float32) if total is None else total + part
    return total / np.float32(factor * factor)


def _odd(value: float, minimum: int = 3) -> int:
    return max(minimum, int(round(value)) // 2 * 2 + 1)


# --------------------------------------------------------------------------------------------
# bg_blur

#: Border regions of the cell grid as (row from, row to, column from, column to) fractions.
BORDER_REGIONS = {
    "top_left": (0.0, 0.25, 0.0, 0.2),
    "top_right": (0.0, 0.25, 0.8, 1.0),
    "top": (0.0, 0.12, 0.0, 1.0),
    "left": (0.3, 0.6, 0.0, 0.12),
    "right": (0.3, 0.6, 0.88, 1.0),
}
#: The face: the middle of a portrait.
CENTRE_REGION = (0.35, 0.65, 0.38, 0.62)
BLUR_QUANTILE = 25.0


def _region_mask(rows: int, cols: int, box: tuple[float, float, float, float]) -> np.ndarray:
    """Cells of a ``rows x cols`` grid whose centres lie in ``box``; the cell nearest its middle if none does."""
    y = (np.arange(rows) + 0.5) / rows
    x = (np.arange(cols) + 0.5) / cols
    mask = ((y >= box[0]) & (y < box[1]))[:, None] & ((x >= box[2]) & (x < box[3]))[None, :]
    if not mask.any():
        mask[np.argmin(np.abs(y - (box[0] + box[1]) / 2)), np.argmin(np.abs(x - (box[2] + box[3]) / 2))] = True
    return mask


def blur_features(images: np.ndarray, cell: int = 2) -> np.ndarray:
    """[N, 5] log high-band energy of each border region relative to the centre (see the module doc).

    ``cell``: side of the energy grid's cells in pixels of the pooled image (which has about
    128 px a side for inputs of 256 px and more, half the side for smaller ones).
    """
    _check_side(images, "bg_blur")
    side = min(images.shape[1:3])
    gray = area_pool(luminance(images), max(2, int(round(side / 128))))
    lap = 4.0 * gray[:, 1:-1, 1:-1] - gray[:, :-2, 1:-1] - gray[:, 2:, 1:-1] - gray[:, 1:-1, :-2] - gray[:, 1:-1, 2:]
    energy = area_pool(lap * lap, cell)
    rows, cols = energy.shape[1:]
    log_energy = np.log(energy + 1e-2).reshape(len(images), -1)

    def level(box):
        return np.percentile(log_energy[:, _region_mask(rows, cols, box).ravel()], BLUR_QUANTILE, axis=1)

    centre = level(CENTRE_REGION)
    return np.stack([level(box) - centre for box in BORDER_REGIONS.values()], axis=1).astype(np.float64)


class BackgroundBlurDetector(LogisticFeatureDetector):
    """Border-over-centre high-band energy (Laplacian of the pooled luminance) into a logistic regression.

    Parameters:
        cell: side in pooled pixels of the cells the Laplacian energy is averaged on (1..8).
        c: inverse regularisation strength of the logistic regression.
        batch_size: images per call the runner sends to ``score``; also the chunk size of feature extraction.
    """

    name = "bg_blur"
    version = "0.1.0"
    targets = ("background_blur",)  # the artifacts it claims to respond to (the known-answer matrix)
    requires_fit = True
    #: What the detector reads: pixels only (never records or ground truth).
    inputs = ("pixels",)

    checks = {"cell": integer(1, 8)}
    cell: int

    def __init__(self, cell: int = 2, c: float = 1.0, batch_size: int = 64):
        super().__init__(cell=cell, c=c, batch_size=batch_size)

    def batch_features(self, images: np.ndarray) -> np.ndarray:
        return blur_features(images, self.cell)


# --------------------------------------------------------------------------------------------
# earring

#: The eye search works on images of about this side (pooled down to it).
SEARCH_SIDE = 128
#: The ear comparison works on images of about this side (larger ones are pooled down to it).
WORK_SIDE = 256
#: Where the eye search looks, as fractions of the image: rows, axis positions, eye half-distances.
EYE_ROWS = (0.28, 0.64)
AXIS_RANGE = (0.38, 0.62)
EYE_DISTANCE = (0.05, 0.17)
#: Ear-lobe region in eye half-distances: below the eye line, and out from the axis.
EAR_BELOW = (0.4, 1.6)
EAR_OUT = (1.6, 2.8)
#: Allowed misalignment between the two sides, in eye half-distances (vertical, horizontal).
EAR_TOLERANCE = (0.3, 0.45)
#: Largest roll (slope of the eye line) the ear regions follow.
MAX_SLOPE = 0.2


def _eye_map(gray: np.ndarray) -> np.ndarray:
    """Eye-likeness: dark details (black-hat) next to bright ones (top-hat, spread sideways), smoothed."""
    unit = gray.shape[2] / WORK_SIDE
    size = _odd(9 * unit)
    dark = ndimage.grey_closing(gray, size=(1, size, size)) - gray
    bright = gray - ndimage.grey_opening(gray, size=(1, size, size))
    bright = ndimage.maximum_filter(bright, size=(1, 3, _odd(2 * 2 * 9 * unit / 3)))
    eye = np.sqrt(np.maximum(dark, 0.0) * np.maximum(bright, 0.0))
    return ndimage.gaussian_filter(eye, sigma=(0, 1.5 * unit, 1.5 * unit))


def find_eyes(images: np.ndarray) -> np.ndarray:
    """[N, 4] (axis x, eye-line y, eye half-distance, roll slope) in pixels of ``images`` [N, H, W, 3].

    The axis is the x of the mirror line (a column boundary); the slope is dy/dx of the line
    through the two eyes. Found as the mirror pair (same row, up to a small vertical slack) of
    largest eye-likeness, searched jointly over axis, row and half-distance on the luminance
    pooled to about ``SEARCH_SIDE`` px.
    """
    n, height, width = images.shape[:3]
    factor = max(1, int(round(min(height, width) / SEARCH_SIDE)))
    h, w = height // factor, width // factor
    r0, r1 = int(EYE_ROWS[0] * h), max(int(EYE_ROWS[1] * h), int(EYE_ROWS[0] * h) + 1)
    band = images[:, r0 * factor : r1 * factor, : w * factor]
    small = area_pool(band.astype(np.float32) @ LUMA, factor)
    eye = _eye_map(small)
    slack = max(1, int(round(3 * w / WORK_SIDE)))
    eye_tall = ndimage.maximum_filter(eye, size=(1, 2 * slack + 1, 1))
    axes = np.arange(int(AXIS_RANGE[0] * w), int(AXIS_RANGE[1] * w) + 1)
    dists = np.arange(max(1, int(EYE_DISTANCE[0] * w)), max(2, int(EYE_DISTANCE[1] * w)) + 1)
    left = np.clip(axes[:, None] - 1 - dists[None, :], 0, w - 1)
    right = np.clip(axes[:, None] + dists[None, :], 0, w - 1)
    out = np.zeros((n, 4))
    for i in range(n):
        pair = eye[i][:, left] * eye_tall[i][:, right]  # [rows, axes, dists]
        row, a, d = np.unravel_index(int(np.argmax(pair)), pair.shape)
        axis, dist = int(axes[a]), int(dists[d])
        # each eye's own row (the roll): the best row near the pair's row in that eye's column
        reach = max(slack, int(round(0.35 * dist)))
        lo, hi = max(0, row - reach), min(eye.shape[1], row + reach + 1)
        row_left = lo + int(np.argmax(eye[i, lo:hi, max(0, axis - 1 - dist)]))
        row_right = lo + int(np.argmax(eye[i, lo:hi, min(w - 1, axis + dist)]))
        slope = float(np.clip((row_right - row_left) / (2 * dist + 1), -MAX_SLOPE, MAX_SLOPE))
        out[i] = (axis * factor, (r0 + (row_left + row_right) / 2 + 0.5) * factor, (dist + 0.5) * factor, slope)
    return out


def _detail_maps(gray: np.ndarray, size: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(bright, dark) small-detail maps of a luminance crop [h, w]: top-hat and black-hat, smoothed."""
    bright = gray - ndimage.grey_opening(gray, size=(size, size))
    dark = ndimage.grey_closing(gray, size=(size, size)) - gray
    return ndimage.gaussian_filter(bright, sigma), ndimage.gaussian_filter(dark, sigma)


def _side_samples(rgb: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int, sigma: float):
    """Bright and dark detail maps of ``rgb`` [H, W, 3] sampled on integer ``rows`` x ``cols`` [K, D] (0 outside)."""
    h, w = rgb.shape[:2]
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    bright = np.zeros(rows.shape, np.float32)
    dark = np.zeros(rows.shape, np.float32)
    if not inside.any():
        return bright, dark
    margin = size + int(math.ceil(3 * sigma))
    y0, y1 = max(0, rows[inside].min() - margin), min(h, rows[inside].max() + margin + 1)
    x0, x1 = max(0, cols[inside].min() - margin), min(w, cols[inside].max() + margin + 1)
    crop_bright, crop_dark = _detail_maps(rgb[y0:y1, x0:x1].astype(np.float32) @ LUMA, size, sigma)
    bright[inside] = crop_bright[rows[inside] - y0, cols[inside] - x0]
    dark[inside] = crop_dark[rows[inside] - y0, cols[inside] - x0]
    return bright, dark


def _asymmetry(left: np.ndarray, right: np.ndarray, tolerance: tuple[int, int]) -> list[float]:
    """Largest and smaller one-sided excess over the mirrored side (within ``tolerance``), and |max L - max R|."""
    window = (2 * tolerance[0] + 1, 2 * tolerance[1] + 1)
    excess_left = float(np.max(left - ndimage.maximum_filter(right, size=window, mode="nearest")))
    excess_right = float(np.max(right - ndimage.maximum_filter(left, size=window, mode="nearest")))
    excess_left, excess_right = max(excess_left, 0.0), max(excess_right, 0.0)
    return [max(excess_left, excess_right), min(excess_left, excess_right), abs(float(left.max() - right.max()))]


def earring_features(images: np.ndarray) -> np.ndarray:
    """[N, 6] ear-region asymmetry of bright and dark small details (see the module doc)."""
    _check_side(images, "earring")
    factor = max(1, int(round(min(images.shape[1:3]) / WORK_SIDE)))
    rgb = area_pool(images, factor) if factor > 1 else images
    unit = rgb.shape[2] / WORK_SIDE
    size, sigma = _odd(9 * unit), max(1.0, unit)
    out = np.zeros((len(images), 6))
    for i, (axis, eye_row, dist, slope) in enumerate(find_eyes(rgb)):
        out_d = np.arange(int(math.ceil(EAR_OUT[0] * dist)), int(EAR_OUT[1] * dist) + 1)
        below = np.arange(int(math.ceil(EAR_BELOW[0] * dist)), int(EAR_BELOW[1] * dist) + 1)
        axis = int(axis)
        # the eye line at horizontal offset d from the axis: eye_row -/+ slope * d (left/right)
        rise = slope * (out_d + 0.5)
        rows_left = np.rint(eye_row - rise[None, :] + below[:, None]).astype(int)
        rows_right = np.rint(eye_row + rise[None, :] + below[:, None]).astype(int)
        cols_left = np.broadcast_to(axis - 1 - out_d, rows_left.shape)
        cols_right = np.broadcast_to(axis + out_d, rows_right.shape)
        bright_l, dark_l = _side_samples(rgb[i], rows_left, cols_left, size, sigma)
        bright_r, dark_r = _side_samples(rgb[i], rows_right, cols_right, size, sigma)
        tolerance = (int(EAR_TOLERANCE[0] * dist), int(EAR_TOLERANCE[1] * dist))
        out[i] = _asymmetry(bright_l, bright_r, tolerance) + _asymmetry(dark_l, dark_r, tolerance)
    return out


class EarringDetector(LogisticFeatureDetector):
    """Mirror asymmetry of small details in the two ear regions into a logistic regression.

    Parameters:
        c: inverse regularisation strength of the logistic regression.
        batch_size: images per call the runner sends to ``score``; also the chunk size of feature extraction.
    """

    name = "earring"
    version = "0.1.0"
    targets = ("earring_single",)  # the artifacts it claims to respond to (the known-answer matrix)
    requires_fit = True
    #: What the detector reads: pixels only (never records or ground truth).
    inputs = ("pixels",)

    def __init__(self, c: float = 1.0, batch_size: int = 64):
        super().__init__(c=c, batch_size=batch_size)

    def batch_features(self, images: np.ndarray) -> np.ndarray:
        return earring_features(images)
