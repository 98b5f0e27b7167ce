"""Eye detectors: where the eyes sit, the pupils' shape, the corneal highlights, the iris colours.

All four find the eyes with :mod:`facebench.detectors.localise` (parameter ``localiser``:
``"auto"``, ``"dlib"``, ``"opencv"`` or ``"builtin"``) and read pixels only: never records,
landmarks or masks. An image where no pair of eyes is found (or, for the pupil, corneal and
iris detectors, where the eye region cannot be measured) gets the neutral score 0.5; the
detector counts those images in ``misses`` (a running total over ``score`` calls, reset by
``fit``), and ``last_misses`` holds a boolean per image of the latest ``score`` call.

Eye geometry is measured in each eye's own iris units: patches are resampled (bicubic) on a
grid centred on the localiser's iris centre and scaled by its iris radius, so features do
not depend on the image size.

- ``eye_position`` (Farid 2023), fit-free: distance of the eye centres from the FFHQ
  canonical positions.
- ``pupil`` (Guo et al. ICASSP 2022): how far each pupil's outline is from an ellipse.
- ``corneal`` (Hu, Li, Lyu ICASSP 2021): whether the two corneal highlights sit at the same
  iris-relative spot.
- ``iris_colour`` (Matern et al. WACVW 2019): CIELAB distance between the two irises.

The last three classify their few (2..4) features with a standardised logistic regression
(``requires_fit = True``); images whose features are missing are left out of the fit and
score 0.5.

Resolution matters: the features need eyes that span enough pixels. On the parametric
faces at 256 px (iris radius ~4..8 px) eye position, corneal highlights and iris colour are
measurable; the pupils' outline (radius 1.5..3 px) is not, through the simulated camera,
until about 512 px (see tests/test_eye_detectors.py for measured AUCs).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..harness.contracts.constants import FFHQ_EYE_LEFT, FFHQ_EYE_RIGHT, LUMA
from ..harness.contracts.detector import DetectorBase, check_labels, number
from .localise import BACKENDS, EyeResult, LocaliserError, cache_bypassed, locate_eyes, resolve_backends
from ..harness.contracts.types import check_images

NEUTRAL = 0.5


# --------------------------------------------------------------------------------------------
# sampling eye patches in iris units


def eye_patch(image: np.ndarray, centre: tuple[float, float], radius: float, extent: float,
              samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """RGB float32 [S, S, 3] resampled around ``centre`` (pixels, centres at +0.5) out to
    ``extent`` iris radii, ``samples`` samples per radius, plus the grid's (u, v) in iris
    radii ([S, S] each). None if the patch leaves the image."""
    x, y = centre
    n = 2 * samples * extent
    half = int(round(n / 2))
    offsets = np.arange(-half, half + 1, dtype=np.float64) / samples
    reach = extent * radius + 2
    if x - reach < 0 or y - reach < 0 or x + reach > image.shape[1] or y + reach > image.shape[0]:
        return None
    x0, y0 = int(math.floor(x - reach)), int(math.floor(y - reach))
    x1, y1 = int(math.ceil(x + reach)) + 1, int(math.ceil(y + reach)) + 1
    crop = image[y0:y1, x0:x1].astype(np.float32)
    v, u = np.meshgrid(offsets, offsets, indexing="ij")
    rows = y - 0.5 - y0 + v * radius
    cols = x - 0.5 - x0 + u * radius
    out = np.stack(
        [ndimage.map_coordinates(crop[..., c], [rows, cols], order=3, mode="nearest") for c in range(3)], axis=-1
    )
    return np.clip(out, 0.0, 255.0), u.astype(np.float32), v.astype(np.float32)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB colours in 0..255, any leading shape [..., 3]."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


# --------------------------------------------------------------------------------------------
# features


def position_distance(result: EyeResult, height: int, width: int) -> float:
    """Root mean square distance of the two eye centres from the FFHQ positions, in image sides."""
    side = float(min(height, width))
    canon = np.array([[FFHQ_EYE_LEFT[0] * width, FFHQ_EYE_LEFT[1] * height],
                      [FFHQ_EYE_RIGHT[0] * width, FFHQ_EYE_RIGHT[1] * height]])
    return float(np.sqrt(((result.centres() - canon) ** 2).sum(axis=1).mean()) / side)


PUPIL_SAMPLES = 24  # per iris radius
PUPIL_RAYS = 64


def pupil_outline(image: np.ndarray, centre, radius: float) -> tuple[np.ndarray, np.ndarray, float] | None:
    """The dark pupil's outline in one eye: (angles, radii in iris radii, pupil contrast) or None.

    Inside 0.9 iris radii the luminance is smoothed a little; the pupil is the connected
    region darker than halfway between its darkest point and the iris (the median of
    0.6..0.9 radii). From the region's centroid, 64 rays find where the luminance first
    crosses that level (to a fraction of a sample); rays that never cross, or end on or
    within 0.2 iris radii of a corneal highlight (far brighter than the iris), are dropped,
    since a highlight overlapping the pupil would bite into its outline.
    """
    patch = eye_patch(image, centre, radius, 1.0, PUPIL_SAMPLES)
    if patch is None:
        return None
    rgb, u, v = patch
    raw = rgb @ LUMA
    lum = ndimage.gaussian_filter(raw, 0.04 * PUPIL_SAMPLES, mode="nearest")
    rho = np.hypot(u, v)
    ring = (rho >= 0.6) & (rho <= 0.9)
    iris = float(np.median(lum[ring]))
    inner = rho <= 0.55
    k = int(np.argmin(np.where(inner, lum, np.inf)))
    darkest = float(lum.flat[k])
    contrast = iris - darkest
    if contrast < 12.0:
        return None
    level = 0.5 * (iris + darkest)
    region, _ = ndimage.label((lum < level) & (rho <= 0.9))
    label = region.flat[k]
    mask = region == label
    if mask.sum() < 4:
        return None
    cy, cx = (float(c.mean()) for c in np.nonzero(mask))
    angles = np.linspace(0.0, 2 * np.pi, PUPIL_RAYS, endpoint=False)
    step = 0.25
    t = np.arange(0.0, 0.9 * PUPIL_SAMPLES, step)
    rows = cy + np.sin(angles)[:, None] * t[None, :]
    cols = cx + np.cos(angles)[:, None] * t[None, :]
    profile = ndimage.map_coordinates(lum, [rows, cols], order=1, mode="nearest")
    above = profile >= level
    first = np.argmax(above, axis=1)
    found = above[np.arange(PUPIL_RAYS), first] & (first > 0)
    j = np.maximum(first, 1)
    before, after = profile[np.arange(PUPIL_RAYS), j - 1], profile[np.arange(PUPIL_RAYS), j]
    frac = (level - before) / np.maximum(after - before, 1e-6)
    dist = (t[j - 1] + np.clip(frac, 0.0, 1.0) * step) / PUPIL_SAMPLES
    # drop rays that end on (or next to) a highlight: brighter than the iris by far
    glare = ndimage.binary_dilation(raw > iris + max(0.5 * (255.0 - iris), 30.0), iterations=max(int(round(0.2 * PUPIL_SAMPLES)), 1))
    ends_r = np.clip(np.rint(cy + np.sin(angles) * dist * PUPIL_SAMPLES), 0, lum.shape[0] - 1).astype(int)
    ends_c = np.clip(np.rint(cx + np.cos(angles) * dist * PUPIL_SAMPLES), 0, lum.shape[1] - 1).astype(int)
    keep = found & ~glare[ends_r, ends_c]
    if keep.sum() < PUPIL_RAYS // 3:
        return None
    return angles[keep], dist[keep], contrast


def fitted_ellipse_radii(angles: np.ndarray, dist: np.ndarray) -> np.ndarray | None:
    """Where each ray from the origin meets the least-squares ellipse through the outline points.

    The conic ``a x^2 + b xy + c y^2 + d x + e y = 1`` (any ellipse around the origin) is fitted
    to the points ``dist * (cos, sin)(angles)``; along a ray ``s (cos t, sin t)`` it is met where
    ``q_a s^2 + q_b s - 1 = 0``. None if the fit is not an ellipse around the origin.
    """
    c, s = np.cos(angles), np.sin(angles)
    x, y = dist * c, dist * s
    coef, *_ = np.linalg.lstsq(np.column_stack([x * x, x * y, y * y, x, y]), np.ones_like(x), rcond=None)
    qa = coef[0] * c * c + coef[1] * c * s + coef[2] * s * s
    qb = coef[3] * c + coef[4] * s
    if not np.all(qa > 1e-9) or coef[1] ** 2 >= 4 * coef[0] * coef[2]:
        return None
    return (-qb + np.sqrt(qb * qb + 4 * qa)) / (2 * qa)


def ellipse_residual(angles: np.ndarray, dist: np.ndarray) -> float:
    """RMS radial distance of the outline from its fitted ellipse, over the outline's mean radius (NaN: no ellipse)."""
    e = fitted_ellipse_radii(angles, dist)
    if e is None:
        return math.nan
    return float(np.sqrt(((e - dist) ** 2).mean()) / dist.mean())


def boundary_iou(angles: np.ndarray, dist: np.ndarray, band: float = 0.15) -> float:
    """Boundary IoU of the pupil outline and its fitted ellipse, bands ``band`` mean radii wide (NaN: no ellipse).

    Both shapes are star-shaped about the centroid: along each ray the outline's band spans
    ``[r - w, r]`` and the ellipse's ``[e - w, e]`` (w = band x mean radius); their overlap
    and union, weighted by area (``b^2 - a^2`` for a radial interval ``[a, b]`` of a thin
    wedge) and summed over the rays, give the boundary IoU (Cheng et al. 2021) that Guo et
    al. use with a band of about 2 px.
    """
    e = fitted_ellipse_radii(angles, dist)
    if e is None:
        return math.nan
    w = band * float(dist.mean())
    lo = np.maximum(dist - w, e - w)
    hi = np.minimum(dist, e)
    inter = np.where(hi > lo, hi**2 - lo**2, 0.0)
    union = (dist**2 - np.maximum(dist - w, 0) ** 2) + (e**2 - np.maximum(e - w, 0) ** 2) - inter
    return float(inter.sum() / max(union.sum(), 1e-12))


def pupil_features(image: np.ndarray, result: EyeResult) -> np.ndarray | None:
    """[rms max, rms mean, boundary IoU min, boundary IoU mean] over the measurable pupils, or None.

    rms: RMS distance of the outline from its fitted ellipse over the pupil's mean radius.
    """
    values = []
    for centre, radius in zip(result.centres(), result.radius):
        outline = pupil_outline(image, centre, radius)
        if outline is None:
            continue
        rms = ellipse_residual(outline[0], outline[1])
        biou = boundary_iou(outline[0], outline[1])
        if np.isfinite(rms) and np.isfinite(biou):
            values.append((rms, biou))
    if not values:
        return None
    v = np.array(values)
    return np.array([v[:, 0].max(), v[:, 0].mean(), v[:, 1].min(), v[:, 1].mean()])


HIGHLIGHT_SAMPLES = 16  # per iris radius
HIGHLIGHT_EXTENT = 0.92  # iris radii searched (the white of the eye starts at 1)


def _disk(radius: float) -> np.ndarray:
    n = int(math.floor(radius))
    yy, xx = np.mgrid[-n : n + 1, -n : n + 1]
    return xx * xx + yy * yy <= radius * radius


def highlight_map(image: np.ndarray, centre, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Top-hat whiteness of one iris: (map, u, v) on a grid in iris radii, or None off the image.

    Whiteness is the smallest of R, G, B (a highlight is bright and grey; skin and irises
    are not); a white top-hat with a disk of 0.4 iris radii keeps small bright spots and
    removes extended bright areas (the white of the eye, lid skin inside the iris circle).
    """
    patch = eye_patch(image, centre, radius, HIGHLIGHT_EXTENT + 0.45, HIGHLIGHT_SAMPLES)
    if patch is None:
        return None
    rgb, u, v = patch
    white = rgb.min(axis=-1)
    tophat = white - ndimage.grey_opening(white, footprint=_disk(0.4 * HIGHLIGHT_SAMPLES), mode="nearest")
    return tophat, u, v


def highlight(tophat: np.ndarray, u: np.ndarray, v: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(centroid (u, v) in iris radii, mask) of the highlight: the connected pixels within 0.92
    iris radii around the top-hat maximum above half of it; None if that maximum is below ``threshold``."""
    inside = np.hypot(u, v) <= HIGHLIGHT_EXTENT
    k = int(np.argmax(np.where(inside, tophat, -np.inf)))
    peak = float(tophat.flat[k])
    if peak < threshold:
        return None
    label, _ = ndimage.label(inside & (tophat > 0.5 * peak))
    mask = label == label.flat[k]
    weight = np.where(mask, tophat - 0.5 * peak, 0.0)
    total = float(weight.sum())
    centroid = np.array([(weight * u).sum() / total, (weight * v).sum() / total])
    return centroid, mask


#: A highlight is present where its top-hat peak reaches this many levels and this fraction
#: of the other eye's.
HIGHLIGHT_MIN = 25.0
HIGHLIGHT_RELATIVE = 0.4


def corneal_features(image: np.ndarray, result: EyeResult) -> np.ndarray | None:
    """[distance between the two highlights' centroids (iris radii), 1 - IoU of their masks].

    Highlights are compared in each eye's iris coordinates. One eye without a highlight
    while the other has one counts as distance 2 and IoU 0; no highlight in either eye (or an
    eye off the image) gives None.
    """
    all_maps = [highlight_map(image, c, r) for c, r in zip(result.centres(), result.radius)]
    maps = [m for m in all_maps if m is not None]
    if len(maps) < len(all_maps):
        return None
    peaks = [float(m[0][np.hypot(m[1], m[2]) <= HIGHLIGHT_EXTENT].max()) for m in maps]
    threshold = max(HIGHLIGHT_MIN, HIGHLIGHT_RELATIVE * max(peaks))
    found = [highlight(*m, threshold) for m in maps]
    if all(f is None for f in found):
        return None
    pair = [f for f in found if f is not None]
    if len(pair) < len(found):
        return np.array([2.0, 1.0])
    (c0, m0), (c1, m1) = pair
    iou = float((m0 & m1).sum()) / max(float((m0 | m1).sum()), 1.0)
    return np.array([float(np.hypot(*(c0 - c1))), 1.0 - iou])


IRIS_SAMPLES = 12  # per iris radius


def iris_colour(image: np.ndarray, centre, radius: float) -> np.ndarray | None:
    """Median CIELAB colour of one iris: the ring 0.55..0.85 iris radii, within 0.6 radii of the
    eye's horizontal axis (lids), without highlight (bright and grey) or pupil and lash (dark) pixels."""
    patch = eye_patch(image, centre, radius, 0.9, IRIS_SAMPLES)
    if patch is None:
        return None
    rgb, u, v = patch
    rho = np.hypot(u, v)
    ring = (rho >= 0.55) & (rho <= 0.85) & (np.abs(v) <= 0.6)
    lum = rgb @ LUMA
    white = rgb.min(axis=-1)
    pixels = ring & (white < np.median(white[ring]) + 40.0)
    lo, hi = np.percentile(lum[pixels], [15, 95]) if pixels.any() else (0.0, 0.0)
    pixels &= (lum >= lo) & (lum <= hi)
    if pixels.sum() < 8:
        return None
    return np.median(srgb_to_lab(rgb[pixels]), axis=0)


def iris_colour_features(image: np.ndarray, result: EyeResult) -> np.ndarray | None:
    """[chromatic distance (a*, b*), lightness distance |L1 - L2|] between the two irises."""
    all_labs = [iris_colour(image, c, r) for c, r in zip(result.centres(), result.radius)]
    labs = [lab for lab in all_labs if lab is not None]
    if len(labs) < len(all_labs):
        return None
    diff = labs[0] - labs[1]
    return np.array([float(np.hypot(diff[1], diff[2])), float(abs(diff[0]))])


# --------------------------------------------------------------------------------------------
# detectors


def _check_localiser(name: str, localiser) -> str:
    if not isinstance(localiser, str) or localiser not in ("auto",) + BACKENDS:
        raise ValueError(f"localiser must be 'auto' or one of {', '.join(BACKENDS)}, got {localiser!r}")
    try:
        resolve_backends(localiser)  # a backend that is not installed fails here, naming what to install
    except LocaliserError as exc:
        raise ValueError(str(exc)) from exc
    return localiser


class _EyeDetector(DetectorBase):
    """Shared plumbing: localisation, per-image features (None = not measurable), misses."""

    #: Scores are probabilities of "fake"; the runner checks it.
    score_range = (0.0, 1.0)

    name: str
    version = "0.1.0"
    #: What the detector reads: pixels, through the eye localiser (never records or ground truth).
    inputs = ("pixels", "eye localiser")

    checks = {"localiser": _check_localiser}
    localiser: str

    def __init__(self, **params):
        super().__init__(**params)
        self.misses = 0
        self.last_misses = np.zeros(0, dtype=bool)

    def uncached(self):
        """A block in which eye localisations are found again, not served from the localiser's cache:
        the runner times a detector inside it, so repeated rounds measure real work."""
        return cache_bypassed()

    def measure(self, image: np.ndarray, result: EyeResult) -> np.ndarray | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def features(self, images: np.ndarray) -> np.ndarray:
        """float64 [N, k]; a row of NaN where no eyes were found or they could not be measured."""
        return self.in_batches(self.batch_features, images)

    def batch_features(self, images: np.ndarray) -> np.ndarray:
        """:meth:`features` of one batch."""
        rows = [None if result is None else self.measure(image, result)
                for image, result in zip(images, locate_eyes(images, self.localiser))]
        width = self.n_features
        return np.array([row if row is not None else np.full(width, np.nan) for row in rows], dtype=np.float64).reshape(-1, width)

    n_features: int

    def _check_labels(self, images: np.ndarray, labels) -> np.ndarray:
        check_images(images)
        return check_labels(self.name, images, labels)

    def _neutral_where_missing(self, x: np.ndarray, scores: np.ndarray) -> np.ndarray:
        missing = np.isnan(x).any(axis=1)
        self.last_misses = missing
        self.misses += int(missing.sum())
        return np.where(missing, NEUTRAL, np.clip(scores, 0.0, 1.0)).astype(np.float64)


class EyePositionDetector(_EyeDetector):
    """Eyes at the FFHQ canonical position (Farid 2023; the StyleGAN alignment).

    Fit-free (``requires_fit = False``; ``fit`` only checks its input): the score is
    ``exp(-d / scale)``, where ``d`` is the root mean square distance of the two detected eye
    centres from ``(0.375 N, 0.475 N)`` and ``(0.625 N, 0.475 N)`` in an N x N image (in
    image sides). A face aligned like FFHQ scores near 1; one framed casually, near 0.
    An image without a pair of eyes scores 0.5 and counts in ``misses``.

    Parameters:
        scale: distance (fraction of the image side) at which the score falls to 1/e.
        localiser: eye localiser backend (see :mod:`facebench.detectors.localise`).
        batch_size: images per call the runner sends to ``score``; also the localisation chunk.
    """

    name = "eye_position"
    targets = ("eyes_fixed",)  # the artifacts it claims to respond to (the known-answer matrix)
    requires_fit = False
    n_features = 1

    checks = {"scale": number()}
    scale: float

    def __init__(self, scale: float = 0.02, localiser: str = "auto", batch_size: int = 64):
        super().__init__(scale=scale, localiser=localiser, batch_size=batch_size)

    def measure(self, image, result):
        return np.array([position_distance(result, *image.shape[:2])])

    def fit(self, images: np.ndarray, labels: np.ndarray) -> None:
        """Nothing to learn; checks the input like the fitted detectors do and resets ``misses``."""
        self._check_labels(images, labels)
        self.misses = 0

    def score(self, images: np.ndarray) -> np.ndarray:
        check_images(images)
        if len(images) == 0:
            self.last_misses = np.zeros(0, dtype=bool)
            return np.zeros(0)
        x = self.features(images)
        with np.errstate(invalid="ignore"):
            return self._neutral_where_missing(x, np.exp(-x[:, 0] / self.scale))


class _LogisticEyeDetector(_EyeDetector):
    """A standardised logistic regression on the detector's few features.

    Images whose features are missing are left out of the fit and score 0.5.
    """

    requires_fit = True

    checks = {"c": number()}
    c: float

    def __init__(self, c: float = 1.0, localiser: str = "auto", batch_size: int = 64):
        super().__init__(c=c, localiser=localiser, batch_size=batch_size)
        self.model: Pipeline | None = None

    def fit(self, images: np.ndarray, labels: np.ndarray) -> None:
        labels = self._check_labels(images, labels)
        x = self.features(images)
        ok = ~np.isnan(x).any(axis=1)
        if set(np.unique(labels[ok]).tolist()) != {0, 1}:
            raise ValueError(
                f"{self.name} detector: the eyes of too few images could be measured to fit "
                f"({int(ok.sum())} of {len(images)}); it needs real and fake images with visible eyes"
            )
        model = make_pipeline(StandardScaler(), LogisticRegression(C=self.c, max_iter=5000))
        model.fit(x[ok], labels[ok])
        self.model = model
        self.misses = 0

    def score(self, images: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"{self.name} detector is not fitted; call fit() first")
        check_images(images)
        if len(images) == 0:
            self.last_misses = np.zeros(0, dtype=bool)
            return np.zeros(0)
        x = self.features(images)
        ok = ~np.isnan(x).any(axis=1)
        scores = np.full(len(images), NEUTRAL)
        if ok.any():
            scores[ok] = self.model.predict_proba(x[ok])[:, 1]
        return self._neutral_where_missing(x, scores)


class PupilDetector(_LogisticEyeDetector):
    """Pupils that are not elliptical (Guo et al. ICASSP 2022, "Eyes tell all").

    In each iris (resampled at 24 samples per iris radius) the pupil is the dark region
    below halfway between its darkest point and the iris; its outline, traced along 64 rays
    from its centroid (rays ending at a corneal highlight dropped), is fitted with a conic
    by least squares. Features: the RMS distance of the outline from the fit over the mean
    pupil radius (max and mean over both eyes) and the boundary IoU of outline and fitted
    ellipse with bands 0.15 pupil radii wide (min and mean). A logistic regression learns
    the mapping (``requires_fit = True``).

    The pupil must span several pixels: at 256 px the parametric faces' pupils have radii
    of 1.5..3 px and the camera's demosaicking, noise and JPEG leave the outline hardly
    measurable (see tests/test_eye_detectors.py).

    Parameters:
        c: inverse regularisation strength of the logistic regression.
        localiser: eye localiser backend (see :mod:`facebench.detectors.localise`).
        batch_size: images per call the runner sends to ``score``; also the localisation chunk.
    """

    name = "pupil"
    targets = ("irregular_pupils",)  # the artifacts it claims to respond to (the known-answer matrix)
    n_features = 4

    def measure(self, image, result):
        return pupil_features(image, result)


class CornealDetector(_LogisticEyeDetector):
    """Corneal highlights that disagree between the eyes (Hu, Li, Lyu ICASSP 2021).

    One light puts its reflection at the same spot of both irises. In each iris (within
    0.92 radii, on whiteness = min(R, G, B)) the highlight is the pixels brighter than
    halfway from the iris level to the brightest pixel; features: the distance between the
    two highlights' centroids in iris radii and 1 - IoU of the two highlight masks on the
    common iris grid (one highlight missing: 2 and 1). A logistic regression learns the
    mapping (``requires_fit = True``). Eyes without any highlight score 0.5 and count in
    ``misses``.

    Parameters:
        c: inverse regularisation strength of the logistic regression.
        localiser: eye localiser backend (see :mod:`facebench.detectors.localise`).
        batch_size: images per call the runner sends to ``score``; also the localisation chunk.
    """

    name = "corneal"
    targets = ("highlight_mismatch",)  # the artifacts it claims to respond to (the known-answer matrix)
    n_features = 2

    def measure(self, image, result):
        return corneal_features(image, result)


class IrisColourDetector(_LogisticEyeDetector):
    """Irises of two colours (Matern et al. WACVW 2019).

    Each iris' colour is the median CIELAB colour of its ring 0.55..0.85 radii (lids,
    pupil, highlight and the darkest and brightest pixels left out). Features: the distance
    of the two colours in the (a*, b*) plane and the difference of their lightness. A
    logistic regression learns the mapping (``requires_fit = True``).

    Parameters:
        c: inverse regularisation strength of the logistic regression.
        localiser: eye localiser backend (see :mod:`facebench.detectors.localise`).
        batch_size: images per call the runner sends to ``score``; also the localisation chunk.
    """

    name = "iris_colour"
    targets = ("iris_mismatch",)  # the artifacts it claims to respond to (the known-answer matrix)
    n_features = 2

    def measure(self, image, result):
        return iris_colour_features(image, result)
