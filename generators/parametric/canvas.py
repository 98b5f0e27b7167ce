"""Stage 3 of the face renderer: signed distance fields and the canvas they are painted on.

A shape is an implicit function evaluated on the pixels of a box (its bounding box only), turned
into anti-aliased coverage and composited onto an RGB float image that also keeps a label map.
"""

from __future__ import annotations

import math

import numpy as np

from .layout import to_pixels
from .params import FaceParams

#: Values of the canvas's label map: what each pixel shows.
LABEL_BACKGROUND, LABEL_FACE, LABEL_HAIR, LABEL_OTHER = 0, 1, 2, 3


def sd_ellipse(x: np.ndarray, y: np.ndarray, a: float, b: float) -> np.ndarray:
    """Approximate signed distance to an ellipse with semi-axes ``a``, ``b`` (exact on its edge)."""
    k0 = np.sqrt((x * (1.0 / a)) ** 2 + (y * (1.0 / b)) ** 2)
    k1 = np.sqrt((x * (1.0 / (a * a))) ** 2 + (y * (1.0 / (b * b))) ** 2)
    return (k0 - 1.0) * (k0 + 1e-6 * min(a, b)) / (k1 + 1e-6)


def sd_circle(x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    """Signed distance to a circle of radius ``r``."""
    return np.sqrt(x * x + y * y) - r


def sd_round_box(x, y, a: float, b: float, r: float) -> np.ndarray:
    """Signed distance to a box with half sizes ``a``, ``b`` and corner radius ``r``."""
    qx, qy = np.abs(x) - (a - r), np.abs(y) - (b - r)
    outside = np.sqrt(np.maximum(qx, 0.0) ** 2 + np.maximum(qy, 0.0) ** 2)
    return outside + np.minimum(np.maximum(qx, qy), 0.0) - r


def sd_segment(u, v, a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
    """Distance to the segment from ``a`` to ``b``."""
    bx, by = b[0] - a[0], b[1] - a[1]
    px, py = u - a[0], v - a[1]
    h = np.clip((px * bx + py * by) * (1.0 / (bx * bx + by * by)), 0.0, 1.0)
    return np.sqrt((px - h * bx) ** 2 + (py - h * by) ** 2)


def rgb(c) -> np.ndarray:
    """An RGB colour shaped [3, 1, 1] to broadcast over channel-first [3, h, w] fields."""
    return np.asarray(c, dtype=np.float32).reshape(3, 1, 1)


class Canvas:
    """An RGB float image plus a label map, addressed in face coordinates through boxes."""

    def __init__(self, p: FaceParams, res: int):
        self.res = res
        self.inv_px = res * p.scale  # face units -> pixels
        self.px = (np.arange(res, dtype=np.float32) + 0.5) / res - 0.5  # image coords of centres
        c, s = math.cos(math.radians(p.roll)), math.sin(math.radians(p.roll))
        dx, dy = self.px - p.tx, self.px - p.ty
        inv = 1.0 / p.scale
        self.u = (c * inv * dx)[None, :] + (s * inv * dy)[:, None]
        self.v = (-s * inv * dx)[None, :] + (c * inv * dy)[:, None]
        self.rgb = np.empty((3, res, res), dtype=np.float32)  # channel-first: fast broadcasting
        self.label = np.zeros((res, res), dtype=np.uint8)
        self._p = p

    def box(self, u0: float, u1: float, v0: float, v1: float):
        """Pixel slices covering the face-coordinate rectangle, or None if it is off-image."""
        corners = [to_pixels(self._p, self.res, u, v) for u in (u0, u1) for v in (v0, v1)]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        x0, x1 = max(int(math.floor(min(xs))) - 1, 0), min(int(math.ceil(max(xs))) + 1, self.res)
        y0, y1 = max(int(math.floor(min(ys))) - 1, 0), min(int(math.ceil(max(ys))) + 1, self.res)
        if x0 >= x1 or y0 >= y1:
            return None
        return slice(y0, y1), slice(x0, x1)

    def uv(self, box) -> tuple[np.ndarray, np.ndarray]:
        """Face coordinates (u, v) of the box's pixels."""
        return self.u[box], self.v[box]

    def image_xy(self, box) -> tuple[np.ndarray, np.ndarray]:
        """Image coordinates (centred, unframed) of the box, as broadcastable [h,1] and [1,w]."""
        return self.px[box[1]][None, :], self.px[box[0]][:, None]

    def cover(self, d: np.ndarray) -> np.ndarray:
        """Anti-aliased coverage of the region ``d < 0``."""
        return np.clip(0.5 - d * self.inv_px, 0.0, 1.0)

    def soft(self, d: np.ndarray, width: float) -> np.ndarray:
        """Smooth coverage of ``d < 0`` fading over ``width`` face units."""
        t = np.clip(0.5 - d * (1.0 / max(width, 1.0 / self.inv_px)), 0.0, 1.0)
        return t * t * (3.0 - 2.0 * t)

    def paint(self, box, alpha: np.ndarray, color, label: int | None = None) -> None:
        """Composite ``color`` ([3, 1, 1] or a [3, h, w] field) over the box with ``alpha``."""
        dst = self.rgb[(slice(None),) + box]
        dst += alpha * (color - dst)
        if label is not None:
            self.label[box][alpha > 0.5] = label
