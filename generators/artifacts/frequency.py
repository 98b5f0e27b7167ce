"""Frequency artifacts: what a generator's upsampling and smoothing leave in the spectrum."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from facebench.generators.artifacts.base import ArtifactError, PixelArtifact, convolve_separable, to_float, to_uint8


class UpsamplingArtifact(PixelArtifact):
    """The fingerprint of a generator's upsampling layers (Durall et al. 2020; Frank et al. 2020).

    Downsample by ``factor`` (area), upsample back with ``kind`` ("transposed": zero insertion and
    an uneven 3-tap kernel, which leaves a checkerboard; "nearest"; "bilinear"), and blend
    ``(1 - strength) * x + strength * up``.
    """

    name = "upsampling"
    summary = "GAN upsampling fingerprint: spectral peaks at k/factor (nearest, bilinear, transposed)"
    KINDS = ("transposed", "nearest", "bilinear")
    # An uneven transposed-convolution kernel: the two output phases get different gains,
    # which puts energy at multiples of 1/factor cycles per pixel.
    TRANSPOSED_KERNEL = np.array([0.35, 1.0, 0.55], np.float32)

    def __init__(self, kind: str = "transposed", factor: int = 2):
        if kind not in self.KINDS:
            raise ArtifactError(f"upsampling kind must be one of {', '.join(self.KINDS)}, got {kind!r}")
        if factor not in (2, 4) or (kind == "transposed" and factor != 2):
            raise ArtifactError(f"upsampling factor must be 2 or 4 (2 for 'transposed'), got {factor}")
        self.kind = kind
        self.factor = factor

    def params(self) -> dict[str, Any]:
        return {"kind": self.kind, "factor": self.factor}

    def upsample(self, image: np.ndarray) -> np.ndarray:
        """Down then up by ``factor``; the result has the input's shape."""
        s = self.factor
        height, width = image.shape[:2]
        padded = np.pad(image, ((0, -height % s), (0, -width % s), (0, 0)), mode="edge")
        h, w = padded.shape[0] // s, padded.shape[1] // s
        small = padded.reshape(h, s, w, s, 3).mean(axis=(1, 3))
        if self.kind == "nearest":
            up = small.repeat(s, axis=0).repeat(s, axis=1)
        elif self.kind == "bilinear":
            up = np.asarray(
                np.stack(
                    [np.asarray(Image.fromarray(small[..., c]).resize((w * s, h * s), Image.BILINEAR)) for c in range(3)],
                    axis=-1,
                )
            )
        else:
            up = np.zeros_like(padded)
            up[::s, ::s] = small  # zero insertion
            kernel = self.TRANSPOSED_KERNEL * (s / self.TRANSPOSED_KERNEL.sum())  # keeps the mean brightness
            up = convolve_separable(up, kernel)
        return up[:height, :width]

    def apply_one(self, image, record, strength, rng):
        x = to_float(image)
        return to_uint8((1.0 - strength) * x + strength * self.upsample(x)), record


ARTIFACT_CLASSES = (UpsamplingArtifact,)
