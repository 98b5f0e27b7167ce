"""Procedural frontal face portraits rendered from signed distance fields.

Every shape is an implicit function evaluated on a pixel grid (only inside the shape's bounding
box), turned into anti-aliased coverage and composited back to front. Geometry lives in *face
coordinates* ``(u, v)``: fractions of the image size at ``scale == 1``, ``v`` pointing down, with
the image centre at the origin before framing. Framing (translation, scale, roll) maps face
coordinates to pixels, so any resolution renders the same picture.

The renderer runs in stages, one module each: ``params`` (what a seed samples), ``layout`` (where
the features sit), ``canvas`` (signed distance fields and the image they are painted on) and
``painters`` (the layers back to front; the background's and the features' painters have modules
of their own). This module puts them together: ``render_faces``.

Colours are RGB tuples in ``[0, 1]``; angles are in degrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .canvas import LABEL_BACKGROUND, LABEL_FACE, LABEL_HAIR, Canvas
from .layout import face_landmarks, face_layout
from .painters import paint_portrait
from .params import (
    BACKGROUND_STYLES,
    EARRINGS,
    GLASSES,
    HAIR_STYLES,
    LANDMARKS,
    MASKS,
    NECKLINES,
    OUTDOOR_SCENES,
    WALL_PATTERNS,
    Color,
    FaceParams,
    sample_face_params,
)

__all__ = [
    "BACKGROUND_STYLES", "EARRINGS", "GLASSES", "HAIR_STYLES", "LANDMARKS", "MASKS", "NECKLINES", "OUTDOOR_SCENES",
    "WALL_PATTERNS", "Color", "FaceParams", "Render", "face_landmarks", "render_faces", "sample_face_params",
]


@dataclass
class Render:
    """A batch of rendered portraits with landmarks (pixels, x right, y down) and region masks."""

    images: np.ndarray  # uint8 [N, H, W, 3]
    landmarks: dict[str, np.ndarray]  # name -> float32 [N, 2]
    masks: dict[str, np.ndarray]  # name -> bool [N, H, W]


def _render_one(p: FaceParams, res: int) -> tuple[np.ndarray, np.ndarray]:
    """Render one portrait: (uint8 [H, W, 3] image, uint8 [H, W] label map)."""
    lay = face_layout(p)
    cv = Canvas(p, res)
    paint_portrait(cv, p, lay)
    image = np.clip(cv.rgb * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8).transpose(1, 2, 0)
    return image, cv.label


def render_faces(params: Sequence[FaceParams], resolution: int = 256) -> Render:
    """Render portraits for ``params`` at ``resolution`` x ``resolution`` pixels.

    Each image depends only on its own parameters, so batching never changes the output.
    """
    if resolution < 16:
        raise ValueError(f"resolution must be >= 16, got {resolution}")
    params = list(params)
    n = len(params)
    images = np.empty((n, resolution, resolution, 3), dtype=np.uint8)
    labels = np.empty((n, resolution, resolution), dtype=np.uint8)

    for i, p in enumerate(params):
        images[i], labels[i] = _render_one(p, resolution)
    landmarks = {name: np.empty((n, 2), dtype=np.float32) for name in LANDMARKS}
    for i, p in enumerate(params):
        for name, xy in face_landmarks(p, resolution).items():
            landmarks[name][i] = xy
    masks = {"face": labels == LABEL_FACE, "hair": labels == LABEL_HAIR,
             "background": labels == LABEL_BACKGROUND}
    return Render(images=images, landmarks=landmarks, masks=masks)
