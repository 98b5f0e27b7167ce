"""Regenerate the README figures: ``python docs/make_figures.py [faces] [gallery] [photos] [report]`` (all by default).

- docs/faces.png: parametric seeds 0-15, clean renders at 256 px, in a 4x4 grid (seconds);
- docs/gallery.png: `facebench gallery` of a 16-seed corpus with every built-in artifact (seconds);
- docs/photos-gallery.png, docs/photos-regions.png, docs/photos-eyes.png: `facebench gallery` of
  eyes_fixed, background_blur, hair_bleed and the three eye artifacts on the face photographs that
  installed packages ship (matplotlib's Grace Hopper, scikit-image's astronaut where installed),
  made by the folder source at 512 px, the face analysis behind them (landmarks and
  face/hair/background masks, irises circled), and the eyes of the eye artifacts' fakes close up. Needs ``pip
  install 'facebench[faces]'`` (skipped without it);
- docs/report-desktop.png, docs/report-narrow.png: the HTML report of a real `facebench run` of the
  default suite (about a minute), shot by headless Chromium at 1280 and 400 px wide, the top 2000 px
  of the page. Needs a Chromium binary (Debian: ``apt-get install -y chromium``; or set CHROMIUM).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from facebench.generators.parametric import ParametricGenerator
from facebench.generators.parametric.face import render_faces, sample_face_params
from facebench.harness.data.corpus import Corpus, CorpusWriter
from facebench.harness.report.gallery import contact_sheet

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


#: The photo gallery's fakes, one row per photo (real first).
PHOTO_ARTIFACTS = ("eyes_fixed,background_blur,hair_bleed,eyes_fixed+background_blur,"
                   "iris_mismatch,irregular_pupils,highlight_mismatch")
#: The fakes docs/photos-eyes.png shows close up, after each photo's real.
EYE_ARTIFACTS = ("iris_mismatch", "irregular_pupils", "highlight_mismatch")


def shipped_photos(folder: Path) -> list[Path]:
    """The face photographs installed packages ship, written into ``folder`` as PNG."""
    import matplotlib

    photos = {"grace_hopper": Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")}
    try:
        from skimage import data
    except ImportError:
        pass
    else:
        photos["astronaut"] = Image.fromarray(data.astronaut())
    written = []
    for name, photo in photos.items():
        written.append(folder / f"{name}.png")
        photo.convert("RGB").save(written[-1])
    return written


def photo_gallery(path: Path, regions_path: Path, eyes_path: Path, resolution: int = 512, tile: int = 256) -> None:
    from facebench.generators.folder import FolderGenerator

    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        shipped_photos(photos)
        generator = FolderGenerator(str(photos), resolution=resolution, artifacts=PHOTO_ARTIFACTS)
        batch = generator.generate(range(generator.count()))
        writer = CorpusWriter(Path(tmp) / "corpus", [generator.config()])
        writer.write(batch)
        writer.close()
        contact_sheet(Corpus.open(Path(tmp) / "corpus"), pairs=generator.count(), tile=tile).save(path, optimize=True)
    reals = [(image, record) for image, record in zip(batch.images, batch.records) if record.label == 0]
    Image.fromarray(np.concatenate([regions_tile(image, record) for image, record in reals], axis=1)).save(
        regions_path, optimize=True)
    eye_closeups(batch, eyes_path)


def eye_closeups(batch, path: Path, width: int = 720) -> None:
    """One column per photo: both eyes of its real, then of each :data:`EYE_ARTIFACTS` fake, enlarged
    (nearest neighbour, so every pixel shows)."""
    columns = []
    for real in (r for r in batch.records if r.label == 0):
        by_artifact = {tuple(r.artifacts): i for i, r in enumerate(batch.records) if r.seed == real.seed}
        (left_x, left_y), (right_x, right_y) = real.landmarks["iris_left"], real.landmarks["iris_right"]
        apart = right_x - left_x
        x0, x1 = int(left_x - 0.4 * apart), int(np.ceil(right_x + 0.4 * apart))
        y0 = int((left_y + right_y) / 2 - 0.25 * apart)
        y1 = y0 + int(0.5 * apart)
        tiles = []
        for key in [()] + [(name,) for name in EYE_ARTIFACTS]:
            crop = Image.fromarray(batch.images[by_artifact[key]][y0:y1, x0:x1])
            crop = crop.resize((width, round(width * (y1 - y0) / (x1 - x0))), Image.Resampling.NEAREST)
            tiles.append(np.pad(np.asarray(crop), ((0, 4), (0, 4), (0, 0)), constant_values=255))
        columns.append(np.concatenate(tiles, axis=0))
    height = max(c.shape[0] for c in columns)
    Image.fromarray(np.concatenate([np.pad(c, ((0, height - c.shape[0]), (0, 0), (0, 0)), constant_values=255)
                                    for c in columns], axis=1)).save(path, optimize=True)


#: Tints of the region masks in docs/photos-regions.png.
REGION_TINTS = {"face": (255, 190, 120), "hair": (150, 60, 200), "background": (40, 110, 255)}


def regions_tile(image: np.ndarray, record) -> np.ndarray:
    """``image`` with its region masks tinted, its landmarks dotted (white: eyes and mouth) and its
    located irises and pupils circled (yellow)."""
    out = image.astype(np.float32)
    for name, tint in REGION_TINTS.items():
        mask = record.masks[name]
        out[mask] = 0.55 * out[mask] + 0.45 * np.array(tint, np.float32)
    out = out.astype(np.uint8)
    size = max(1, image.shape[0] // 200)
    for name, (x, y) in record.landmarks.items():
        if name.startswith(("iris_", "pupil_")):
            continue  # circled below
        colour = (255, 255, 255) if name in ("eye_left", "eye_right", "mouth_left", "mouth_right") else (255, 40, 40)
        out[max(int(y) - size, 0) : int(y) + size + 1, max(int(x) - size, 0) : int(x) + size + 1] = colour
    from PIL import ImageDraw

    from facebench.generators.irises import irises_of

    canvas = Image.fromarray(out)
    draw = ImageDraw.Draw(canvas)
    for iris in irises_of(record.landmarks).values():
        x, y = iris.centre[0] - 0.5, iris.centre[1] - 0.5
        for radius in (iris.radius, iris.pupil_radius):
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=(255, 230, 0))
    return np.asarray(canvas)


#: Screenshot widths of the HTML report, and the height shot from the top of the page.
REPORT_SHOTS = {"report-desktop.png": 1280, "report-narrow.png": 400}
SHOT_HEIGHT = 2000


def _chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise SystemExit("no Chromium found: apt-get install -y chromium, or set CHROMIUM=/path/to/chromium")


def report_screenshots(folder: Path) -> list[Path]:
    """Run the default suite with the `facebench` command in a temporary results folder and shoot its
    report.html at each width of REPORT_SHOTS (offline: the page loads nothing)."""
    chromium = _chromium()
    facebench = Path(sys.executable).with_name("facebench")
    if not facebench.is_file():
        raise SystemExit(f"no facebench command beside {sys.executable}: pip install -e . first")
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        subprocess.run([str(facebench), "run", "default", "--results", str(results), "--no-progress"], check=True,
                       stdout=subprocess.DEVNULL)
        page = (results / "report.html").resolve().as_uri()
        for name, width in REPORT_SHOTS.items():
            subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                 f"--user-data-dir={Path(tmp) / 'profile'}", f"--screenshot={folder / name}",
                 f"--window-size={width},{SHOT_HEIGHT}", page],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            Image.open(folder / name).save(folder / name, optimize=True)
            written.append(folder / name)
    return written


if __name__ == "__main__":
    wanted = set(sys.argv[1:]) or {"faces", "gallery", "photos", "report"}
    if "faces" in wanted:
        faces_grid(DOCS / "faces.png")
        print("wrote", DOCS / "faces.png")
    if "gallery" in wanted:
        artifact_gallery(DOCS / "gallery.png")
        print("wrote", DOCS / "gallery.png")
    if "photos" in wanted:
        from facebench.generators import faces

        if faces.available():
            photo_gallery(DOCS / "photos-gallery.png", DOCS / "photos-regions.png", DOCS / "photos-eyes.png")
            print("wrote", DOCS / "photos-gallery.png", DOCS / "photos-regions.png", DOCS / "photos-eyes.png")
        else:
            print(f"skipped the photo gallery: {faces.FACES_EXTRA}")
    if "report" in wanted:
        print("wrote", *report_screenshots(DOCS))
