"""A small camera model for the real pipeline.

Stages, in order: sensor pattern noise (PRNU, a per-camera ``1 + K``), shot and read noise,
a Bayer (RGGB) mosaic demosaicked bilinearly, and JPEG at a quality drawn per image from
the range phones and cameras use. Every draw is seeded by the image's seed, so a real image
and its fakes share the same camera, noise field and quality, and differ only by their
artifacts.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image

from ...harness.contracts.seeding import rng_for

N_CAMERAS = 4
#: JPEG qualities of the simulated cameras (inclusive range).
JPEG_QUALITY_RANGE = (75, 95)


@lru_cache(maxsize=32)
def prnu_pattern(camera: int, height: int, width: int) -> np.ndarray:
    """The sensor pattern ``K`` of one simulated camera, [H, W, 1] float32 (std 0.005..0.02)."""
    rng = rng_for(camera, "camera:prnu")
    strength = rng.uniform(0.005, 0.02)
    return rng.normal(0.0, strength, size=(height, width, 1)).astype(np.float32)


def camera_of(seed: int) -> tuple[int, int]:
    """(camera index, JPEG quality) used for the image made from ``seed``."""
    rng = rng_for(seed, "camera:choice")
    low, high = JPEG_QUALITY_RANGE
    return int(rng.integers(N_CAMERAS)), int(rng.integers(low, high + 1))


def capture(
    image: np.ndarray,
    seed: int,
    *,
    noise: float = 1.0,
    lossless: float = 0.0,
    read_noise: float = 1.5,
    shot_gain: float = 0.04,
) -> np.ndarray:
    """Simulate photographing ``image`` (uint8 [H, W, 3]) with the camera chosen by ``seed``.

    ``noise`` scales the sensor pattern and the shot/read noise (0 removes them: the
    "missing camera noise" artifact); ``lossless`` moves the JPEG quality towards 100 and at 1
    skips JPEG (the format shortcut).
    """
    camera, quality = camera_of(seed)
    x = image.astype(np.float32)
    x = x * (1.0 + noise * prnu_pattern(camera, image.shape[0], image.shape[1]))
    rng = rng_for(seed, "camera:capture")
    noise_std = np.sqrt(read_noise**2 + shot_gain * np.maximum(x, 0.0))
    x = x + (noise * noise_std) * rng.standard_normal(x.shape, dtype=np.float32)
    x = demosaic(mosaic(x))
    pixels = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if lossless >= 1.0:
        return pixels
    return jpeg_roundtrip(pixels, int(round(quality + (100 - quality) * lossless)))


def mosaic(image: np.ndarray) -> np.ndarray:
    """The RGGB Bayer raw frame of ``image``: one colour sample per pixel, [H, W] float32."""
    raw = image[..., 1].copy()
    raw[0::2, 0::2] = image[0::2, 0::2, 0]
    raw[1::2, 1::2] = image[1::2, 1::2, 2]
    return raw


def demosaic(raw: np.ndarray) -> np.ndarray:
    """Bilinear demosaicking of an RGGB frame back to [H, W, 3] float32.

    Red and blue: the separable tent kernel over their own sites; green: the mean of the four
    neighbours where green is missing. Reflect padding keeps the Bayer phase at the borders.
    """
    red, green, blue = (np.zeros_like(raw) for _ in range(3))
    red[0::2, 0::2] = raw[0::2, 0::2]
    blue[1::2, 1::2] = raw[1::2, 1::2]
    green[0::2, 1::2] = raw[0::2, 1::2]
    green[1::2, 0::2] = raw[1::2, 0::2]
    out = np.empty(raw.shape + (3,), np.float32)
    for channel, plane in ((0, red), (2, blue)):
        p = np.pad(plane, 1, mode="reflect")
        rows = 0.5 * (p[:-2] + p[2:]) + p[1:-1]
        out[..., channel] = 0.5 * (rows[:, :-2] + rows[:, 2:]) + rows[:, 1:-1]
    p = np.pad(green, 1, mode="reflect")
    out[..., 1] = green + 0.25 * (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:])
    return out


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` after saving as JPEG at ``quality`` (4:2:0 chroma, as cameras do) and decoding."""
    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, format="JPEG", quality=quality, subsampling="4:2:0")
    return np.asarray(Image.open(buffer).convert("RGB"))
