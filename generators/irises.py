"""Irises and pupils located inside the eye contours of a face (classical, no model).

dlib's 68 points outline each eye with six points but place no iris. Inside each contour the
iris is the circle whose rim is the strongest dark-inside, bright-outside step (the limbus
against the sclera), measured only where the ring is visible (inside the contour: the lids
hide the rest), as Daugman's integro-differential operator does. The pupil is then the
strongest such step inside the iris, where one shows (dark brown irises hide it); else
:data:`PUPIL_FRACTION` of the iris radius.

A record carries each iris as three landmarks, so a similarity warp (``eyes_fixed``) moves
them with the rest: ``iris_left`` (centre), ``iris_left_edge`` (a point on the rim, so the
radius is their distance) and ``pupil_left_edge`` (a point on the pupil's rim, same
direction); likewise ``right``. ``benchmarks/face_analysis_accuracy.py`` measures them
against the parametric renderer's ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The eye is searched on a copy scaled so its corners lie this many pixels apart.
WORK_WIDTH = 64.0
#: Iris radii searched, as fractions of the corner-to-corner eye width.
RADIUS_RANGE = (0.14, 0.36)
#: Rings sampled inside and outside a candidate rim, as fractions of its radius.
INNER_RINGS = (0.78, 0.88)
OUTER_RINGS = (1.12, 1.22)
#: Angles sampled around each ring.
ANGLES = 32
#: Candidate centres are first tried every this many working pixels, then refined around the best.
COARSE_STEP = 2
#: The contour is opened up by this factor about its corner line before it is searched: dlib's
#: lids often sit inside the visible eye.
OPEN_UP = 1.3
#: A candidate circle counts only where at least this fraction of its ring samples is visible.
MIN_VISIBLE = 0.2
#: Eyes whose contour is less open than this fraction of their width are taken as closed.
MIN_OPENING = 0.12
#: Pupil radius where no pupil edge shows, and the range searched, as fractions of the iris radius.
PUPIL_FRACTION = 0.4
PUPIL_RANGE = (0.2, 0.55)
#: A pupil edge counts when its step is at least this many grey levels (0..255).
MIN_PUPIL_STEP = 12.0
SIDES = ("left", "right")
#: The landmarks a record carries for two located irises.
IRIS_NAMES = tuple(name for side in SIDES for name in (f"iris_{side}", f"iris_{side}_edge", f"pupil_{side}_edge"))


@dataclass(frozen=True)
class Iris:
    """One located iris: centre (x, y) and radii in pixels, pixel centres at +0.5."""

    centre: tuple[float, float]
    radius: float
    pupil_radius: float


def locate_iris(image: np.ndarray, contour: np.ndarray) -> Iris | None:
    """The iris inside the eye ``contour`` (float ``[6, 2]`` x, y: dlib's six eye points) of an RGB
    uint8 image, or None where the eye is closed or too small to search."""
    from scipy import ndimage  # noqa: PLC0415

    contour = np.asarray(contour, dtype=np.float64)
    width = float(np.hypot(*(contour[3] - contour[0])))
    opening = _opening(contour)
    if width < 4.0 or opening < MIN_OPENING * width:
        return None
    scale = WORK_WIDTH / width
    margin = 0.45 * width
    x0, y0 = contour.min(axis=0) - margin
    x1, y1 = contour.max(axis=0) + margin
    # the darkest channel: the sclera is bright in all three, an iris of any colour (and the pupil) dark in one
    grey = image.min(axis=-1).astype(np.float32)
    # the working crop: pixel (i, j) of it sits at image position (x0 + (j + 0.5) / scale, ...)
    cols = int(np.ceil((x1 - x0) * scale))
    rows = int(np.ceil((y1 - y0) * scale))
    ys, xs = np.mgrid[0:rows, 0:cols].astype(np.float64)
    src_x, src_y = x0 + (xs + 0.5) / scale - 0.5, y0 + (ys + 0.5) / scale - 0.5
    crop = ndimage.map_coordinates(grey, [src_y, src_x], order=1, mode="nearest")
    crop = ndimage.gaussian_filter(crop, 1.0)
    local = (contour - (x0, y0)) * scale - 0.5  # contour in crop pixel coordinates (centres at integers)
    visible = inside_polygon(opened_contour(local, OPEN_UP), xs, ys)
    if visible.sum() < 20:
        return None
    coarse = visible & (xs % COARSE_STEP == 0) & (ys % COARSE_STEP == 0)
    centres = np.stack([xs[coarse], ys[coarse]], axis=1)
    radii = np.arange(RADIUS_RANGE[0] * WORK_WIDTH, RADIUS_RANGE[1] * WORK_WIDTH + 0.5, 1.0)
    scores = _rim_scores(crop, visible, centres, radii)
    best = np.unravel_index(int(np.argmax(scores)), scores.shape)
    if not np.isfinite(scores[best]):
        return None
    cx, cy, r = centres[best[0], 0], centres[best[0], 1], radii[best[1]]
    # refine: a finer grid around the best circle
    fine = np.arange(-COARSE_STEP, COARSE_STEP + 0.01, 0.25 * COARSE_STEP)
    grid = np.stack(np.meshgrid(cx + fine, cy + fine), axis=-1).reshape(-1, 2)
    fine_radii = r + np.arange(-1.0, 1.01, 0.25)
    scores = _rim_scores(crop, visible, grid, fine_radii)
    best = np.unravel_index(int(np.argmax(scores)), scores.shape)
    cx, cy, r = grid[best[0], 0], grid[best[0], 1], fine_radii[best[1]]
    pupil = _pupil_radius(crop, visible, cx, cy, r)
    centre = (x0 + (cx + 0.5) / scale, y0 + (cy + 0.5) / scale)
    return Iris(centre=(float(centre[0]), float(centre[1])), radius=float(r / scale), pupil_radius=float(pupil / scale))


def _opening(contour: np.ndarray) -> float:
    """The eye's opening: mean distance between the upper (1, 2) and lower (5, 4) lid points."""
    return float((np.hypot(*(contour[1] - contour[5])) + np.hypot(*(contour[2] - contour[4]))) / 2)


def opened_contour(contour: np.ndarray, factor: float) -> np.ndarray:
    """``contour`` with its lid points moved away from the corner-to-corner line by ``factor``."""
    start, end = contour[0], contour[3]
    along = (end - start) / max(float(np.hypot(*(end - start))), 1e-9)
    normal = np.array([-along[1], along[0]])
    offset = (contour - start) @ normal
    return contour + (factor - 1.0) * offset[:, None] * normal[None]


def inside_polygon(polygon: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """bool: the points (xs, ys) inside ``polygon`` (even-odd rule)."""
    inside = np.zeros(xs.shape, bool)
    n = len(polygon)
    for i in range(n):
        (xa, ya), (xb, yb) = polygon[i], polygon[(i + 1) % n]
        crosses = (ya > ys) != (yb > ys)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = xa + (ys - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (xs < at)
    return inside


def _ring_means(crop: np.ndarray, visible: np.ndarray, centres: np.ndarray, radii: np.ndarray,
                rings: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean grey level and visible count on rings of ``rings * radii`` about ``centres``: ``[C, R]`` each."""
    from scipy import ndimage  # noqa: PLC0415

    theta = np.linspace(0.0, 2 * np.pi, ANGLES, endpoint=False)
    ring = np.asarray(rings)[:, None, None] * np.stack([np.cos(theta), np.sin(theta)], axis=-1)[None]  # [K, A, 2]
    offsets = radii[:, None, None, None] * ring[None]  # [R, K, A, 2]
    points = centres[:, None, None, None, :] + offsets[None]  # [C, R, K, A, 2]
    px, py = points[..., 0].ravel(), points[..., 1].ravel()
    values = ndimage.map_coordinates(crop, [py, px], order=1, mode="nearest").reshape(points.shape[:-1])
    rows, cols = visible.shape
    ix, iy = np.clip(np.rint(px).astype(int), 0, cols - 1), np.clip(np.rint(py).astype(int), 0, rows - 1)
    seen = (visible[iy, ix] & (px >= 0) & (py >= 0) & (px <= cols - 1) & (py <= rows - 1)).reshape(points.shape[:-1])
    total = (values * seen).sum(axis=(2, 3))
    count = seen.sum(axis=(2, 3))
    return total / np.maximum(count, 1), count


def _rim_scores(crop: np.ndarray, visible: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """``[C, R]``: how much brighter the visible ring just outside each circle is than just inside."""
    inner, inner_seen = _ring_means(crop, visible, centres, radii, INNER_RINGS)
    outer, outer_seen = _ring_means(crop, visible, centres, radii, OUTER_RINGS)
    enough = (inner_seen >= MIN_VISIBLE * ANGLES * len(INNER_RINGS)) & (outer_seen >= MIN_VISIBLE * ANGLES * len(OUTER_RINGS))
    return np.where(enough, outer - inner, -np.inf)


def _pupil_radius(crop: np.ndarray, visible: np.ndarray, cx: float, cy: float, iris_radius: float) -> float:
    """The radius (crop pixels) of the strongest dark-to-light step inside the iris, else the default fraction."""
    candidates = np.arange(PUPIL_RANGE[0], PUPIL_RANGE[1] + 1e-9, 0.025) * iris_radius
    inner, inner_seen = _ring_means(crop, visible, np.array([[cx, cy]]), candidates, (0.8,))
    outer, outer_seen = _ring_means(crop, visible, np.array([[cx, cy]]), candidates, (1.2,))
    step = np.where((inner_seen[0] >= MIN_VISIBLE * ANGLES) & (outer_seen[0] >= MIN_VISIBLE * ANGLES),
                    outer[0] - inner[0], -np.inf)
    best = int(np.argmax(step))
    return float(candidates[best]) if step[best] >= MIN_PUPIL_STEP else PUPIL_FRACTION * iris_radius


def locate_irises(image: np.ndarray, contours: dict[str, np.ndarray]) -> dict[str, Iris]:
    """The irises found in ``contours`` (side -> six eye points), by side; closed eyes are left out."""
    found = {}
    for side, contour in contours.items():
        iris = locate_iris(image, contour)
        if iris is not None:
            found[side] = iris
    return found


def iris_landmarks(irises: dict[str, Iris]) -> dict[str, tuple[float, float]]:
    """The landmarks a record carries for ``irises``: centre, a rim point and a pupil rim point each."""
    named = {}
    for side, iris in irises.items():
        x, y = iris.centre
        named[f"iris_{side}"] = (x, y)
        named[f"iris_{side}_edge"] = (x + iris.radius, y)
        named[f"pupil_{side}_edge"] = (x + iris.pupil_radius, y)
    return named


def irises_of(landmarks: dict[str, tuple[float, float]] | None) -> dict[str, Iris]:
    """The irises a record's landmarks carry (see :func:`iris_landmarks`), by side; empty where none."""
    found: dict[str, Iris] = {}
    for side in SIDES:
        keys = (f"iris_{side}", f"iris_{side}_edge", f"pupil_{side}_edge")
        if not landmarks or any(key not in landmarks for key in keys):
            continue
        centre, edge, pupil = (np.asarray(landmarks[key], dtype=np.float64) for key in keys)
        found[side] = Iris((float(centre[0]), float(centre[1])), float(np.hypot(*(edge - centre))),
                           float(np.hypot(*(pupil - centre))))
    return found
