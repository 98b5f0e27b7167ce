"""The eye artifacts' pixel versions, for photographs whose records carry located irises.

``parametric`` makes ``iris_mismatch``, ``irregular_pupils`` and ``highlight_mismatch`` by editing
its scene; on a photograph the face analysis (``pip install 'facebench[faces]'``) records each
iris (:mod:`~facebench.generators.irises`) and the eye contours, and these functions paint the
same faults on the real eyes. Every pixel they write lies inside the visible iris (its disc
inside the eye contour); the caller records as the mask the pixels that changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..irises import OPEN_UP, SIDES, Iris, inside_polygon, irises_of, opened_contour
from .base import ArtifactError, to_float, to_uint8
from .surroundings import masked_blur

#: A pixel of the iris disc is part of a corneal highlight when its darkest channel is at least
#: this bright and this many grey levels above the iris' median.
HIGHLIGHT_LEVEL, HIGHLIGHT_ABOVE = 110.0, 50.0
#: Highlights are looked for within this many iris radii of its centre.
HIGHLIGHT_ZONE = 0.75
#: Where no highlight is found: its offset from the iris centre and its radius, in iris radii.
DEFAULT_HIGHLIGHT = ((-0.35, -0.35), 0.22)
#: A new highlight's centre stays within this many iris radii of the iris centre.
HIGHLIGHT_REACH = 0.75
#: The iris-or-not cut (:func:`iris_likeness`) lies this far from the iris' level to its surround's,
#: and goes from 1 to 0 over this many grey levels.
IRIS_CUT, IRIS_CUT_WIDTH = 0.6, 20.0
#: A wobbly pupil stays within this fraction of the iris radius.
MAX_PUPIL = 0.85


@dataclass(frozen=True)
class Eye:
    """One located eye of an image: the iris and the pixels where it shows."""

    iris: Iris
    visible: np.ndarray  # bool [H, W]: inside the eye contour opened up as the iris search opens it (all where none)
    dx: np.ndarray  # float [H, W]: pixel centres' offsets from the iris centre
    dy: np.ndarray

    @property
    def distance(self) -> np.ndarray:
        return np.hypot(self.dx, self.dy)

    @property
    def disc(self) -> np.ndarray:
        """bool: the visible iris disc (pixel centres within the radius, inside the contour)."""
        return self.visible & (self.distance < self.iris.radius)


def located_eyes(name: str, image: np.ndarray, record) -> dict[str, Eye]:
    """Both eyes of ``record`` by side, or :class:`ArtifactError` (one line) where it lacks them."""
    irises = irises_of(record.landmarks)
    if len(irises) < 2:
        found = "none" if not irises else "one only (an eye closed or hidden)"
        raise ArtifactError(
            f"artifact {name!r} on existing pixels needs both irises located, and image {record.id!r} has {found}; "
            "use parametric, or photographs analysed with pip install 'facebench[faces]' where both eyes are open"
        )
    height, width = image.shape[:2]
    y, x = np.mgrid[0:height, 0:width] + 0.5
    eyes = {}
    for side in SIDES:
        iris = irises[side]
        contour_keys = [f"eye_{side}_{i}" for i in range(6)]
        if all(key in record.landmarks for key in contour_keys):
            points = np.array([record.landmarks[key] for key in contour_keys])
            visible = inside_polygon(opened_contour(points, OPEN_UP), x, y)
        else:
            visible = np.ones((height, width), bool)
        eyes[side] = Eye(iris, visible, x - iris.centre[0], y - iris.centre[1])
    return eyes


def cover(signed: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage from a signed distance in pixels (inside negative)."""
    return np.clip(0.5 - signed, 0.0, 1.0)


def darkest(image: np.ndarray) -> np.ndarray:
    return image.min(axis=-1).astype(np.float32)


def highlight_of(image: np.ndarray, eye: Eye) -> np.ndarray:
    """bool: the corneal highlight's pixels in ``eye`` (the largest bright blob on the iris), maybe empty."""
    from scipy import ndimage  # noqa: PLC0415

    zone = eye.visible & (eye.distance < HIGHLIGHT_ZONE * eye.iris.radius)  # short of the sclera
    if not zone.any():
        return zone
    level = darkest(image)
    bright = zone & (level >= max(HIGHLIGHT_LEVEL, float(np.median(level[zone])) + HIGHLIGHT_ABOVE))
    labels, count = ndimage.label(bright)
    if count == 0:
        return bright
    sizes = ndimage.sum(bright, labels, index=range(1, count + 1))
    return labels == 1 + int(np.argmax(sizes))


# --------------------------------------------------------------------------------------------
# iris_mismatch


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """float ``[..., 3]`` RGB in [0, 1] to HSV in [0, 1] (as :mod:`colorsys`, vectorised)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    spread = high - low
    safe = np.where(spread > 0, spread, 1.0)
    hue = np.where(high == r, (g - b) / safe, np.where(high == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    hue = np.where(spread > 0, (hue / 6.0) % 1.0, 0.0)
    saturation = np.where(high > 0, spread / np.where(high > 0, high, 1.0), 0.0)
    return np.stack([hue, saturation, high], axis=-1)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """float ``[..., 3]`` HSV in [0, 1] to RGB in [0, 1]."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    k = np.stack([(5.0 + h * 6.0) % 6.0, (3.0 + h * 6.0) % 6.0, (1.0 + h * 6.0) % 6.0], axis=-1)
    return v[..., None] - (v * s)[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def recolour_iris(image: np.ndarray, eye: Eye, turn: float, min_saturation: float) -> np.ndarray:
    """``image`` with the iris of ``eye`` (pupil and highlight left out) turned by ``turn`` of the
    colour circle and saturated to at least ``min_saturation``."""
    iris = eye.iris
    distance = eye.distance
    alpha = cover(distance - iris.radius) * (1.0 - cover(distance - iris.pupil_radius)) * eye.visible
    highlight = highlight_of(image, eye)
    alpha[highlight] = 0.0
    alpha *= iris_likeness(image, eye, highlight)
    region = alpha > 0
    pixels = to_float(image[region]) / 255.0
    hsv = rgb_to_hsv(pixels)
    hsv[:, 0] = (hsv[:, 0] + turn) % 1.0
    hsv[:, 1] = np.maximum(hsv[:, 1], min_saturation)
    turned = hsv_to_rgb(hsv) * 255.0
    out = image.copy()
    a = alpha[region][:, None]
    out[region] = to_uint8(to_float(image[region]) * (1.0 - a) + turned * a)
    return out


def iris_likeness(image: np.ndarray, eye: Eye, highlight: np.ndarray) -> np.ndarray:
    """float ``[H, W]`` in [0, 1]: 1 where a pixel is as dark as the iris, 0 where it is as bright as
    the sclera and lids around it (a soft cut between the two levels), so lid skin and sclera inside
    the disc keep their colour."""
    level = darkest(image)
    distance, radius = eye.distance, eye.iris.radius
    inner = eye.visible & (distance > eye.iris.pupil_radius) & (distance < 0.8 * radius) & ~highlight
    outer = eye.visible & (distance > 1.1 * radius) & (distance < 1.5 * radius)
    if not inner.any() or not outer.any():
        return np.ones(level.shape, np.float32)
    iris, around = float(np.median(level[inner])), float(np.median(level[outer]))
    cut = iris + IRIS_CUT * (around - iris)
    return np.clip((cut - level) / IRIS_CUT_WIDTH + 0.5, 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# irregular_pupils


def pupil_boundary(theta: np.ndarray, radius: float, harmonics) -> np.ndarray:
    """``r(t) = radius (1 + sum_k c_k cos(k t + phi_k))``, k = 2, 3, ... (as the parametric pupil)."""
    wobble = np.ones_like(theta)
    for k, (c, phase) in enumerate(harmonics, start=2):
        wobble = wobble + c * np.cos(k * theta + phase)
    return radius * np.maximum(wobble, 0.05)


def wobble_pupil(image: np.ndarray, eye: Eye, harmonics) -> np.ndarray:
    """``image`` with the pupil of ``eye`` given the boundary of ``harmonics``: the iris is stretched
    radially (a rubber sheet between pupil and rim, so its texture follows) and the new pupil darkened;
    the corneal highlight is kept."""
    from scipy import ndimage  # noqa: PLC0415

    iris = eye.iris
    rim, pupil = iris.radius, min(iris.pupil_radius, MAX_PUPIL * iris.radius)
    distance = eye.distance
    theta = np.arctan2(eye.dy, eye.dx)
    boundary = np.minimum(pupil_boundary(theta, pupil, harmonics), MAX_PUPIL * rim)
    region = eye.disc & ~highlight_of(image, eye)
    d, t, b = distance[region], theta[region], boundary[region]
    inside = d < b
    source = np.where(inside, d * pupil / b, pupil + (d - b) * (rim - pupil) / np.maximum(rim - b, 1e-6))
    src_x = iris.centre[0] + source * np.cos(t) - 0.5
    src_y = iris.centre[1] + source * np.sin(t) - 0.5
    x = to_float(image)
    stretched = np.stack([ndimage.map_coordinates(x[..., c], [src_y, src_x], order=1, mode="nearest")
                          for c in range(3)], axis=-1)
    old_pupil = eye.disc & (distance < pupil)
    level = darkest(image)
    dark = x[old_pupil][level[old_pupil] <= np.percentile(level[old_pupil], 20)].mean(axis=0) if old_pupil.any() else np.zeros(3)
    dark = np.minimum(dark, 40.0)
    alpha = cover(d - b)[:, None]
    out = image.copy()
    out[region] = to_uint8(stretched * (1.0 - alpha) + dark[None] * alpha)
    return out


# --------------------------------------------------------------------------------------------
# highlight_mismatch


def highlight_spot(image: np.ndarray, eye: Eye) -> tuple[tuple[float, float], float] | None:
    """The found highlight's centre offset and radius, in iris radii, or None."""
    found = highlight_of(image, eye)
    if not found.any():
        return None
    radius = eye.iris.radius
    offset = (float(eye.dx[found].mean()) / radius, float(eye.dy[found].mean()) / radius)
    size = math.sqrt(found.sum() / math.pi) / radius
    return offset, float(np.clip(size, 0.12, 0.35))


def highlight_target(eye: Eye, start: tuple[float, float], shift: float, angle: float) -> tuple[float, float]:
    """``start`` moved ``shift`` iris radii at ``angle``, turned (then shortened) until it lands on the
    visible iris within :data:`HIGHLIGHT_REACH`."""
    radius = eye.iris.radius
    cx, cy = eye.iris.centre
    height, width = eye.visible.shape
    for length in (shift, 0.75 * shift, 0.5 * shift):
        for turn in range(16):
            a = angle + turn * math.pi / 8
            ox, oy = start[0] + length * math.cos(a), start[1] + length * math.sin(a)
            col, row = int(cx + ox * radius), int(cy + oy * radius)
            if math.hypot(ox, oy) <= HIGHLIGHT_REACH and 0 <= row < height and 0 <= col < width and eye.visible[row, col]:
                return ox, oy
    return (start[0] + 0.5 * shift * math.cos(angle), start[1] + 0.5 * shift * math.sin(angle))


def erase_highlight(image: np.ndarray, eye: Eye) -> np.ndarray:
    """``image`` with the highlight of ``eye`` filled from the iris around it."""
    from scipy import ndimage  # noqa: PLC0415

    found = highlight_of(image, eye)
    if not found.any():
        return image
    spot = ndimage.binary_dilation(found, iterations=1) & eye.visible
    around = eye.disc & ~spot
    filled = masked_blur(to_float(image), around, sigma=max(1.0, 0.3 * eye.iris.radius))
    out = image.copy()
    out[spot] = to_uint8(filled[spot])
    return out


def paint_highlight(image: np.ndarray, eye: Eye, offset: tuple[float, float], size: float) -> np.ndarray:
    """``image`` with a corneal highlight (a soft near-white disc of ``size`` iris radii) at ``offset``."""
    radius = eye.iris.radius
    spot = np.hypot(eye.dx - offset[0] * radius, eye.dy - offset[1] * radius)
    alpha = 0.92 * cover(spot - max(size * radius, 0.8)) * eye.visible
    region = alpha > 0
    out = image.copy()
    a = alpha[region][:, None]
    out[region] = to_uint8(to_float(image[region]) * (1.0 - a) + 250.0 * a)
    return out
