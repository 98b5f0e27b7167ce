"""Regenerate the README figures: ``python docs/make_figures.py`` (about 15 s).

- docs/faces.png: parametric seeds 0-15, clean renders at 256 px, in a 4x4 grid;
- docs/gallery.png: `facebench gallery` of a 16-seed corpus with every built-in artifact.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from facebench.generators.parametric import ParametricGenerator
from facebench.generators.parametric.face import render_faces, sample_face_params
from facebench.harness.corpus import Corpus, CorpusWriter
from facebench.harness.gallery import contact_sheet

DOCS = Path(__file__).resolve().parent


def faces_grid(path: Path, seeds=range(16), resolution: int = 256, columns: int = 4) -> None:
    images = render_faces([sample_face_params(seed) for seed in seeds], resolution).images
    rows = [np.concatenate(list(images[i : i + columns]), axis=1) for i in range(0, len(images), columns)]
    Image.fromarray(np.concatenate(rows, axis=0)).save(path, optimize=True)


def artifact_gallery(path: Path, seeds: int = 16, resolution: int = 256, tile: int = 128) -> None:
    generator = ParametricGenerator(resolution=resolution, artifacts="all")
    with tempfile.TemporaryDirectory() as tmp:
        writer = CorpusWriter(Path(tmp) / "corpus", [generator.config()])
        for start in range(0, seeds, 4):
            writer.write(generator.generate(range(start, min(start + 4, seeds))))
        writer.close()
        contact_sheet(Corpus.open(Path(tmp) / "corpus"), pairs=seeds, tile=tile).save(path, optimize=True)


if __name__ == "__main__":
    faces_grid(DOCS / "faces.png")
    artifact_gallery(DOCS / "gallery.png")
    print("wrote", DOCS / "faces.png", "and", DOCS / "gallery.png")
