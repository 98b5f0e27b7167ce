"""What an image file is, beyond its pixels: format, JPEG quality and chroma subsampling, size, EXIF.

These facts go into each record's ``meta["file"]``; the shortcut guard
(:mod:`facebench.harness.data.shortcuts`) compares them between the real and fake classes.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, JpegImagePlugin

#: The luminance quantisation table of the JPEG standard (Annex K), at quality 50.
STANDARD_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
])
SUBSAMPLING_NAMES = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
HARMONISE_SUBSAMPLING = 2  # 4:2:0, libjpeg's default


def scaled_table(quality: int) -> np.ndarray:
    """The luminance table libjpeg writes at ``quality`` (1..100)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((STANDARD_LUMINANCE * scale + 50) // 100, 1, 255)


_SORTED_TABLES = {q: np.sort(scaled_table(q)) for q in range(1, 101)}


def estimate_quality(luminance: Any) -> int:
    """The libjpeg quality whose luminance table is nearest ``luminance`` (64 values, any order).

    Order-free (sorted values are compared), so zigzag and natural orders give the same answer.
    Files written with custom tables get the nearest standard quality: an estimate.
    """
    table = np.sort(np.asarray(list(luminance), dtype=np.int64))
    if table.size != 64:
        raise ValueError(f"a JPEG quantisation table has 64 values, got {table.size}")
    return min(range(100, 0, -1), key=lambda q: int(np.abs(_SORTED_TABLES[q] - table).sum()))


def file_facts(opened: Image.Image) -> dict[str, Any]:
    """The facts of an opened (loaded) image file: format, width, height, exif, and for JPEG its
    quality estimate and chroma subsampling."""
    facts: dict[str, Any] = {
        "format": (opened.format or "unknown").lower(),
        "width": int(opened.size[0]),
        "height": int(opened.size[1]),
        "exif": bool(opened.info.get("exif")),
    }
    if isinstance(opened, JpegImagePlugin.JpegImageFile):
        tables = getattr(opened, "quantization", None) or {}
        facts["quality"] = estimate_quality(tables[0]) if 0 in tables else None
        facts["subsampling"] = SUBSAMPLING_NAMES.get(JpegImagePlugin.get_sampling(opened), "other")
    return facts


def parse_harmonise(spec: str) -> int | None:
    """The JPEG quality of a ``harmonise`` spec ("jpeg:95"); None for "" (no harmonising)."""
    text = spec.strip().lower()
    if not text:
        return None
    kind, _, value = text.partition(":")
    if kind != "jpeg" or not value.isdigit() or not 1 <= int(value) <= 100:
        raise ValueError(f"harmonise must be 'jpeg:Q' with a quality Q in 1..100 (e.g. 'jpeg:95'), or empty; got {spec!r}")
    return int(value)


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` (uint8 [H, W, 3]) encoded as JPEG at ``quality`` (4:2:0) and decoded again."""
    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, format="JPEG", quality=quality, subsampling=HARMONISE_SUBSAMPLING)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.uint8).copy()
