"""Score image files with a detector that needs no fit, with no corpus: ``facebench score``.

Images are read as RGB (an alpha channel dropped, a palette expanded), brought to the detector's
input policy (:mod:`~facebench.harness.contracts.input_policy`; nothing else resizes them) and
grouped by the size it gives, so that each group goes through the detector as one batch (the
detector's own ``batch_size`` splits it further).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..contracts import registry
from ..contracts.errors import UsageError
from ..contracts.images import to_rgb
from .inputs import detector_inputs, policy_of
from .provenance import param_files

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass(frozen=True)
class ImageScore:
    path: str
    score: float
    height: int
    width: int


def image_files(paths: list[Path]) -> list[Path]:
    """The image files among ``paths``, folders searched recursively, in name order (no hidden files)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                      and not any(part.startswith(".") for part in p.relative_to(path).parts)]
            if not inside:
                raise UsageError(f"folder {str(path)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"image {str(path)!r}: no such file or folder")
    return found


def read_rgb(path: Path) -> np.ndarray:
    """uint8 ``[H, W, 3]`` pixels of ``path``; UsageError naming the file when it is not an image."""
    try:
        with Image.open(path) as image:
            return np.array(to_rgb(image), dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise UsageError(f"image {str(path)!r} cannot be read ({type(exc).__name__}: {exc})") from None


def make_scorer(detector: str, params: dict[str, Any]) -> Any:
    """The detector ``detector`` configured with ``params``; UsageError when it must be fitted first."""
    cls = registry.load("detector", detector)
    if getattr(cls, "requires_fit", True):
        raise UsageError(f"detector {detector!r} learns from a corpus (requires_fit); score files only with a "
                         "pretrained detector such as npr, cnndetection, univfd, checkpoint, or use 'facebench detect'")
    return registry.create("detector", detector, **params)


def score_paths(detector: Any, files: list[Path]) -> list[ImageScore]:
    """Each file's score under ``detector`` (an instance), in the order of ``files``."""
    pixels = [read_rgb(path) for path in files]
    scores = np.zeros(len(files))
    for indices, batch in detector_inputs(pixels, policy_of(detector), names=[str(path) for path in files]):
        scores[indices] = np.asarray(detector.score(batch), dtype=np.float64)
    return [ImageScore(str(path), float(score), *pixels[i].shape[:2]) for i, (path, score) in enumerate(zip(files, scores))]


def check_output(path: Path | None) -> None:
    """UsageError unless ``path`` is None or names a .csv or .json file (checked before any scoring)."""
    if path is not None and path.suffix.lower() not in (".csv", ".json"):
        raise UsageError(f"output {str(path)!r}: name a .csv or .json file")


def write_scores(rows: list[ImageScore], path: Path, detector: str, params: dict[str, Any]) -> None:
    """``rows`` to ``path``: CSV (``.csv``) or JSON (``.json``, with the detector and its parameters)."""
    check_output(path)
    if path.suffix.lower() == ".csv":
        with path.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["path", "score", "height", "width"])
            for row in rows:
                writer.writerow([row.path, repr(row.score), row.height, row.width])
    elif path.suffix.lower() == ".json":
        record = {"detector": detector, "params": {k: str(v) for k, v in params.items()},
                  "files": param_files(registry.load("detector", detector), params),  # each weight file's size and sha256
                  "scores": [row.__dict__ for row in rows]}
        path.write_text(json.dumps(record, indent=2) + "\n")
