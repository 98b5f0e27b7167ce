"""Perturbations applied to test images before scoring (the robustness protocol): the built-in kinds.

The spec grammar (``parse``, ``parse_grid``, ``DEFAULT_GRID``) lives in
:mod:`facebench.harness.contracts.perturbations` and is re-exported here; each kind below is a
plug-in of kind "perturbation" in the registry.

A spec string names one perturbation: ``"jpeg:75"``, ``"blur:2"``, ``"resize:0.5"``,
``"noise:5"``, ``"crop:10"``; steps joined with ``+`` run left to right
(``"jpeg:50+blur:2"``); ``"none"`` is the identity. Every step maps a uint8 RGB batch
``[N, H, W, 3]`` to a uint8 RGB batch of the same shape.

Kinds:

- ``jpeg:Q``   Pillow JPEG encode/decode in memory, integer quality 1..100, 4:2:0 chroma subsampling.
- ``blur:S``   Gaussian blur of each channel with ``scipy.ndimage.gaussian_filter``, sigma S > 0 px,
  ``mode="reflect"`` (edge pixel repeated: d c b a | a b c d), kernel truncated at 4 sigma.
- ``resize:F`` "resize then restore": Pillow bicubic resize to ``round(F*W) x round(F*H)`` (Pillow
  widens the kernel when shrinking, so downscaling is antialiased), then bicubic back to ``W x H``.
  0 < F <= 4; F = 1 is the identity.
- ``noise:S``  additive Gaussian noise, std S in 0..255 pixel units (0 < S <= 255), rounded and clipped.
- ``crop:P``   centre crop removing P percent of each side in total (0 < P < 100): the central
  ``(1 - P/100)`` fraction of the width and of the height is kept (sub-pixel exact box), then
  Lanczos-resized back to ``W x H``; content is magnified by ``1 / (1 - P/100)``.

Noise is the only random step. Its stream depends on the image's key (integers and strings
are hashed via ``str(key)`` with SHA-256, so keys 5 and "5" are the same key), on the step's
canonical name, and on how many identical steps came before it in the chain; never on batch
order or composition. So ``"jpeg:50+noise:5"`` adds exactly the noise ``"noise:5"`` would.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

from ..contracts.constants import CLEAN
from ..contracts.perturbations import (  # noqa: F401 - the spec grammar, re-exported
    DEFAULT_GRID,
    Perturbation,
    PerturbationError,
    Step,
    apply,
    describe_kinds,
    parse,
    parse_grid,
)
from ..contracts.seeding import purpose_key, rng_for

#: Clean images: no perturbation (named :data:`~facebench.harness.contracts.constants.CLEAN`).
IDENTITY = parse(CLEAN)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _per_image(images: np.ndarray, fn) -> np.ndarray:
    out = np.empty_like(images)
    for i, img in enumerate(images):
        out[i] = np.asarray(fn(Image.fromarray(img)))
    return out


class JpegPerturbation:
    """Pillow JPEG encode/decode in memory, 4:2:0 chroma subsampling."""

    name = "jpeg"
    value = "quality, integer 1..100"
    integer = True

    @staticmethod
    def accepts(value: float) -> bool:
        return 1 <= value <= 100

    @staticmethod
    def apply(images, quality, keys, purpose):
        def roundtrip(im: Image.Image) -> Image.Image:
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=int(quality), subsampling="4:2:0")
            return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")

        return _per_image(images, roundtrip)


class BlurPerturbation:
    """Gaussian blur of each channel (scipy), edges reflected, kernel truncated at 4 sigma."""

    name = "blur"
    value = "Gaussian sigma in pixels, > 0"
    integer = False

    @staticmethod
    def accepts(value: float) -> bool:
        return value > 0

    @staticmethod
    def apply(images, sigma, keys, purpose):
        out = np.empty_like(images)
        for i, img in enumerate(images):  # one image at a time keeps the float copy small
            out[i] = _to_uint8(ndimage.gaussian_filter(img, sigma=(sigma, sigma, 0), mode="reflect", output=np.float32))
        return out


class ResizePerturbation:
    """Bicubic resize by a factor, then bicubic back to the original size."""

    name = "resize"
    value = "scale factor, 0 < F <= 4"
    integer = False

    @staticmethod
    def accepts(value: float) -> bool:
        return 0 < value <= 4

    @staticmethod
    def apply(images, factor, keys, purpose):
        h, w = images.shape[1:3]
        small = (max(1, round(w * factor)), max(1, round(h * factor)))
        if small == (w, h):
            return images
        return _per_image(images, lambda im: im.resize(small, Image.BICUBIC).resize((w, h), Image.BICUBIC))


class NoisePerturbation:
    """Additive Gaussian noise seeded by each image's key, rounded and clipped."""

    name = "noise"
    value = "Gaussian std in 0..255 units, 0 < S <= 255"
    integer = False
    random = True

    @staticmethod
    def accepts(value: float) -> bool:
        return 0 < value <= 255

    @staticmethod
    def apply(images, std, keys, purpose):
        out = np.empty_like(images)
        for i, (img, key) in enumerate(zip(images, keys)):
            z = rng_for(purpose_key(str(key)), purpose).standard_normal(img.shape, dtype=np.float32)
            out[i] = _to_uint8(img + np.float32(std) * z)
        return out


class CropPerturbation:
    """Centre crop removing a percentage of each side in total, Lanczos-resized back."""

    name = "crop"
    value = "percent removed, 0 < P < 100"
    integer = False

    @staticmethod
    def accepts(value: float) -> bool:
        return 0 < value < 100

    @staticmethod
    def apply(images, percent, keys, purpose):
        h, w = images.shape[1:3]
        mx, my = w * percent / 200, h * percent / 200
        box = (mx, my, w - mx, h - my)
        return _per_image(images, lambda im: im.resize((w, h), Image.LANCZOS, box=box))
