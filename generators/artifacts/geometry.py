"""Geometry artifacts: where the face sits in the frame."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from .base import ArtifactError, PixelArtifact
from ...harness.contracts.constants import FFHQ_EYE_LEFT, FFHQ_EYE_RIGHT  # noqa: F401 - re-exported



class EyesFixedArtifact(PixelArtifact):
    """Eyes at the fixed FFHQ position (the alignment every StyleGAN face shares; Farid 2023).

    A similarity transform (scale, rotation, shift) moves the recorded eye centres onto the
    canonical FFHQ positions, plus a shift of standard deviation ``(1 - strength) * jitter``
    image sides. Needs eye landmarks; updates all landmarks.
    """

    name = "eyes_fixed"
    summary = "eyes at the fixed FFHQ position (StyleGAN alignment)"
    needs = ("landmarks",)

    def __init__(self, jitter: float = 0.04):
        if jitter < 0:
            raise ArtifactError(f"eyes_fixed jitter must be >= 0, got {jitter}")
        self.jitter = jitter

    def params(self) -> dict[str, Any]:
        return {"jitter": self.jitter}

    def targets(self, width: int, height: int, strength: float, rng: np.random.Generator) -> tuple[complex, complex]:
        """Where the left and right eye centres go (x + iy, pixels): FFHQ plus a jitter."""
        side = float(min(height, width))
        shift = rng.normal(0.0, (1.0 - strength) * self.jitter * side, size=2)
        return (
            complex(FFHQ_EYE_LEFT[0] * width + shift[0], FFHQ_EYE_LEFT[1] * height + shift[1]),
            complex(FFHQ_EYE_RIGHT[0] * width + shift[0], FFHQ_EYE_RIGHT[1] * height + shift[1]),
        )

    def apply_one(self, image, record, strength, rng):
        target_left, target_right = self.targets(image.shape[1], image.shape[0], strength, rng)
        eye_left = complex(*record.landmarks["eye_left"])
        eye_right = complex(*record.landmarks["eye_right"])
        if abs(eye_right - eye_left) < 1e-6:
            raise ArtifactError(f"image {record.id!r}: eye landmarks coincide")
        scale_rot = (target_right - target_left) / (eye_right - eye_left)  # z' = a z + b
        offset = target_left - scale_rot * eye_left
        warped = warp_similarity(image, scale_rot, offset)
        landmarks = {}
        for key, (x, y) in record.landmarks.items():
            moved = scale_rot * complex(x, y) + offset
            landmarks[key] = (float(moved.real), float(moved.imag))
        masks = {k: warp_similarity(m.astype(np.uint8) * 255, scale_rot, offset, nearest=True) > 127 for k, m in record.masks.items()}
        return warped, record.with_changes(landmarks=landmarks, masks=masks)


def warp_similarity(image: np.ndarray, scale_rot: complex, offset: complex, *, nearest: bool = False) -> np.ndarray:
    """Warp ``image`` by ``z' = scale_rot * z + offset`` (pixel coordinates as complex x + iy).

    Pixels that come from outside the image are filled by mirroring its border, so no
    black corners betray the warp.
    """
    height, width = image.shape[:2]
    pad = max(height, width) // 2
    pad_spec = ((pad, pad), (pad, pad)) + ((0, 0),) * (image.ndim - 2)
    padded = np.pad(image, pad_spec, mode="symmetric")
    # PIL wants the inverse map: source = inv * (dest) + c, in padded coordinates.
    inv = 1.0 / scale_rot
    a, b = inv.real, -inv.imag
    d, e = inv.imag, inv.real
    src0 = -inv * offset  # where destination (0, 0) comes from
    coefficients = (a, b, src0.real + pad, d, e, src0.imag + pad)
    resample = Image.NEAREST if nearest else Image.BILINEAR
    mode = "RGB" if image.ndim == 3 else "L"
    warped = Image.fromarray(padded, mode).transform((width, height), Image.AFFINE, coefficients, resample=resample)
    return np.asarray(warped)
