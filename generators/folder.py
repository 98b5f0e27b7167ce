"""The ``folder`` generator plug-in: a folder of image files imported as a corpus.

Real photos (or fakes made elsewhere) become a corpus whose seeds index the files, so
pixel artifacts can be applied to real photos::

    facebench generate folder --n 50 -p path=photos --artifacts upsampling:0.5 --out corpora/photos
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Sequence

import numpy as np
from PIL import Image, ImageOps

from . import face_records
from .artifacts import FakeSpec, make_fakes, null_fakes, parse_fake_specs
from ..harness.contracts.images import BACKGROUND, to_rgb  # noqa: F401 - BACKGROUND: this module's name for it
from ..harness.contracts.errors import FacebenchError
from ..harness.contracts.ids import pair_id, record_id
from ..harness.contracts.types import FAKE, REAL, Batch, Record

#: File name endings read as images (compared case-insensitively).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
LABELS = {"real": REAL, "fake": FAKE}
MIN_RESOLUTION, MAX_RESOLUTION = 16, 2048
#: ``resolution`` value that keeps every image at its own size.
NATIVE = "native"


class FolderError(FacebenchError, ValueError):
    """The image folder, or a file in it, cannot be used."""


@dataclass(frozen=True)
class ImageFile:
    """One image found in the folder, with the metadata its content digest covers."""

    relative: str  # POSIX-style path relative to the folder
    size: int
    mtime_ns: int


class FolderGenerator:
    """Images from a folder, centre-cropped to a square of ``resolution`` pixels, or kept at
    their own sizes with ``resolution="native"``.

    Seed ``i`` is the ``i``-th image in the sorted list of relative paths (hidden files and
    folders skipped). Every image is labelled ``label``; with ``label="real"`` an artifact
    spec makes one fake per spec from each photo, sharing its pair (as ``parametric`` does).
    Where an artifact needs landmarks or the face/hair/background masks (``eyes_fixed``,
    ``background_blur``, ``hair_bleed``), every photo is analysed first
    (:mod:`~facebench.generators.faces`, the ``faces`` extra) and its records carry the
    landmarks and region masks, as ``parametric``'s do; a photo with no face found, or a
    machine without the extra, gets an :class:`~facebench.generators.artifacts.ArtifactError`
    of one line.

    The ``null`` control's fakes are photos of the folder that are never seeds: with ``null``
    in ``artifacts`` only the first half of the sorted files are seeds (:meth:`count`), and
    the null fake of seed ``i`` is file ``i + count()``, so no photo appears twice in a corpus.

    Parameters:
        path: the folder of images (.png .jpg .jpeg .webp .bmp).
        label: "real" or "fake": what the images in the folder are.
        resolution: side of the square output images in pixels (16..2048), or "native": every
            image as it is (upright, RGB), no crop and no resize, so a corpus holds many sizes
            (each detector's input policy then decides what it sees). Native takes no artifacts:
            they work on images of one size.
        artifacts: fakes to make per real photo, e.g. ``"upsampling:0.5"``; "" makes none.
            Only allowed with ``label="real"``.
        recursive: also read images in sub-folders.
        faces: "auto" (analyse faces where an artifact needs landmarks or regions), "on" (record
            them on every image; a photo with no face gets none) or "off" (never: such artifacts fail).
    """

    name = "folder"
    version = "0.3.0"  # 0.2.0: records of files that were not 8-bit RGB carry meta["converted_from"]; 0.3.0: null control

    def __init__(
        self,
        path: str,
        label: str = "real",
        resolution: int | str = 256,
        artifacts: str = "",
        recursive: bool = True,
        faces: str = "auto",
    ):
        if not isinstance(path, (str, os.PathLike)):
            raise FolderError(f"path must be a folder path, got {path!r}; quote it, e.g. -p 'path=\"{path}\"'")
        root = Path(path).expanduser()
        if not root.exists():
            raise FolderError(f"image folder {str(root)!r} does not exist; pass an existing folder as path")
        if not root.is_dir():
            raise FolderError(f"image folder {str(root)!r} is not a folder; pass the folder that holds the images")
        if label not in LABELS:
            raise FolderError(f"label must be 'real' or 'fake', got {label!r}")
        if resolution != NATIVE and (isinstance(resolution, bool) or not isinstance(resolution, int)
                                     or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION):
            raise FolderError(f"resolution must be an integer in {MIN_RESOLUTION}..{MAX_RESOLUTION} or "
                              f"{NATIVE!r}, got {resolution!r}")
        if not isinstance(artifacts, str):
            raise FolderError(f"artifacts must be a spec string such as 'upsampling:0.5', got {artifacts!r}")
        if resolution == NATIVE and artifacts.strip():
            raise FolderError(f"resolution='native' takes no artifacts (got {artifacts!r}): artifacts work on images "
                              "of one size; give resolution a number of pixels, or drop artifacts")
        face_records.check_faces_mode(faces, error=FolderError)
        if not isinstance(recursive, bool):
            raise FolderError(f"recursive must be true or false, got {recursive!r}")
        if artifacts.strip() and label != "real":
            raise FolderError(
                f"artifacts={artifacts!r} needs label='real': artifacts turn real photos into fakes; "
                "drop artifacts to import a folder of fakes"
            )
        self.root = root.resolve()
        self.label = label
        self.resolution = resolution
        self.artifacts = artifacts
        self.recursive = recursive
        self.faces = faces
        self.fake_specs: list[FakeSpec] = parse_fake_specs(artifacts) if artifacts.strip() else []
        self.files = scan(self.root, recursive)
        if not self.files:
            where = "or its sub-folders " if recursive else ""
            raise FolderError(
                f"image folder {str(self.root)!r} {where}holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                "point path at a folder of images"
            )
        if self.has_null and self.count() == 0:
            raise FolderError(
                f"the null control needs at least 2 images (a seed and its null fake), and image folder "
                f"{str(self.root)!r} holds 1; add photos or drop null from artifacts"
            )

    @property
    def has_null(self) -> bool:
        """Whether the artifacts ask for the null control (half the folder then supplies its fakes)."""
        return any(spec.control == "null" for spec in self.fake_specs)

    def count(self) -> int:
        """How many seeds the folder supplies: the valid seeds are ``0 .. count() - 1``.

        Every image, or half of them (rounded down) when the null control takes the rest.
        """
        return len(self.files) // 2 if self.has_null else len(self.files)

    def count_explained(self) -> str:
        """Why :meth:`count` is what it is, in words for an error message."""
        n = len(self.files)
        holds = f"image folder {str(self.root)!r} holds {n} image{'s' * (n != 1)}"
        if self.has_null:
            seeds = self.count()
            return f"{holds}; the null control takes the second half for its fakes, leaving {seeds} seed{'s' * (seeds != 1)}"
        return holds

    def content_digest(self) -> str:
        """sha256 over each image's relative path, size and modification time (ns).

        Metadata rather than file bytes: it costs one ``stat`` per file however large the
        photos are, and any rewrite, addition, removal or rename of an image changes it.
        (A file replaced with identical size and a restored mtime would go unnoticed.)
        """
        digest = hashlib.sha256()
        for f in self.files:
            digest.update(f"{f.relative}\0{f.size}\0{f.mtime_ns}\n".encode())
        return digest.hexdigest()

    def config(self) -> dict:
        """The parameters plus ``content_digest``, so a changed folder names a new cached corpus."""
        return {
            "path": str(self.root),
            "label": self.label,
            "resolution": self.resolution,
            "artifacts": self.artifacts,
            "recursive": self.recursive,
            "content_digest": self.content_digest(),
            # only when set, so the cache keys of corpora made before the option stay as they were
            **face_records.faces_config(self.faces),
        }

    def artifacts_needing_faces(self) -> list[str]:
        """The artifacts of the specs that need landmarks or region masks, in spec order."""
        return face_records.artifacts_needing_faces(self.fake_specs)

    @property
    def analyses_faces(self) -> bool:
        """Whether :meth:`generate` analyses every photo's face (see ``faces``)."""
        return face_records.analyses_faces(self.faces, self.fake_specs)

    def with_faces(self, image: np.ndarray, record: Record, path: str) -> Record:
        """``record`` with the landmarks and face/hair/background masks of ``image``'s face.

        Raises :class:`ArtifactError` (one line) without the ``faces`` extra, or where no face is
        found and an artifact needs one.
        """
        return face_records.with_faces(image, record, path, self.artifacts_needing_faces(), images="photographs",
                                       fix="remove it from the folder, or drop the artifact")

    def generate(self, seeds: Sequence[int]) -> Batch:
        """The images of ``seeds`` (file indices), then one fake per artifact spec for each."""
        seeds = [self._check_seed(s) for s in seeds]
        loaded = [self._load(self.files[s]) for s in seeds]
        images = [image for image, _ in loaded]
        label = LABELS[self.label]
        records = [
            Record(
                id=record_id(self.name, seed, self.label),
                label=label,
                source=self.name,
                source_version=self.version,
                seed=seed,
                pair=pair_id(self.name, seed),
                # a file that was not 8-bit RGB says what it was (RGBA, P, L, I;16, CMYK, ...)
                meta={} if mode == "RGB" else {"converted_from": mode},
                format="png",
            )
            for seed, (_, mode) in zip(seeds, loaded)
        ]
        if self.analyses_faces:
            records = [self.with_faces(image, record, str(self.root / self.files[seed].relative))
                       for image, record, seed in zip(images, records, seeds)]
        if isinstance(self.resolution, str):  # NATIVE
            return Batch(images, records)  # a list: the images keep their own sizes
        if not seeds:
            return Batch(np.zeros((0, self.resolution, self.resolution, 3), np.uint8), [])
        base = Batch(np.stack(images), records)
        fakes = [self.null_fakes(base) if spec.control == "null" else make_fakes(base, spec) for spec in self.fake_specs]
        return Batch.concat([base, *fakes])

    def null_fakes(self, reals: Batch) -> Batch:
        """The null control's fakes of ``reals``: the photo of seed ``i + count()`` stands as the fake of ``i``."""
        offset = self.count()
        images, records = [], []
        for real in reals.records:
            image, mode = self._load(self.files[real.seed + offset])
            images.append(image)
            record = real.with_changes(seed=real.seed + offset, meta={} if mode == "RGB" else {"converted_from": mode},
                                       landmarks=None, masks={})
            if self.analyses_faces:
                record = self.with_faces(image, record, str(self.root / self.files[real.seed + offset].relative))
            records.append(record)
        sources = Batch(np.stack(images), records)
        return null_fakes(reals, sources)

    def _check_seed(self, seed: int) -> int:
        seed = int(seed)
        n = len(self.files)
        if self.has_null and not 0 <= seed < self.count():
            raise FolderError(
                f"seed {seed} is out of range: with the null control, the second half of image folder "
                f"{str(self.root)!r} ({n} image{'s' * (n != 1)}) supplies the null fakes, so the seeds are "
                f"0..{self.count() - 1}; ask for at most {self.count()}, or put more photos in the folder"
            )
        if not 0 <= seed < n:
            raise FolderError(
                f"seed {seed} is out of range: image folder {str(self.root)!r} holds {n} image{'s' * (n != 1)} "
                f"(seeds 0..{n - 1}); ask for at most that many, e.g. --n {n} --seed-start 0"
            )
        return seed

    def load(self, file: ImageFile) -> np.ndarray:
        """One image decoded, upright (EXIF), RGB, centre-cropped and resized: uint8 ``[R, R, 3]``
        (with ``resolution="native"``: at its own size)."""
        return self._load(file)[0]

    def _load(self, file: ImageFile) -> tuple[np.ndarray, str]:
        """:meth:`load`'s image and the file's colour mode before it was made RGB.

        A file whose header claims more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (a possible
        decompression bomb) is refused before its pixels are decoded.
        """
        path = self.root / file.relative
        try:
            stat = path.stat()
        except OSError:
            raise FolderError(f"image {str(path)!r} has disappeared since the folder was scanned") from None
        if (stat.st_size, stat.st_mtime_ns) != (file.size, file.mtime_ns):
            raise FolderError(f"image {str(path)!r} changed since the folder was scanned; run again")
        image, mode, _ = decode_image(path, str(path))
        if isinstance(self.resolution, str):  # NATIVE, checked in __init__
            return np.asarray(image, dtype=np.uint8).copy(), mode
        return square(image, self.resolution), mode


def scan(root: Path, recursive: bool) -> list[ImageFile]:
    """Image files under ``root`` sorted by relative POSIX path; hidden files and folders skipped."""
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in names:
            if name.startswith(".") or not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            path = Path(folder) / name
            try:
                stat = path.stat()
            except OSError:
                continue  # a dangling link
            if not path.is_file():
                continue
            found.append(ImageFile(path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns))
    return sorted(found, key=lambda f: f.relative)


def decode_image(source: str | Path | IO[bytes], name: str,
                 inspect: Callable[[Image.Image], Any] | None = None) -> tuple[Image.Image, str, Any]:
    """An image file decoded, upright (EXIF orientation) and 8-bit RGB; its colour mode before
    conversion; and ``inspect(opened)`` of the file as opened (None without ``inspect``).

    ``source`` is a path or a binary file object; ``name`` says which file in errors. A file whose
    header claims more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (a possible decompression bomb)
    is refused before its pixels are decoded. Every failure is a :class:`FolderError` of one line.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as opened:
                mode = opened.mode
                opened.load()
                described = inspect(opened) if inspect is not None else None
                image = to_rgb(ImageOps.exif_transpose(opened))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise FolderError(
            f"image {name!r} is too large to decode safely ({exc}); shrink the file, or raise "
            "PIL.Image.MAX_IMAGE_PIXELS if you trust it"
        ) from None
    except Exception as exc:  # noqa: BLE001 - decoders raise OSError, SyntaxError, ValueError, struct.error, ...
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FolderError(f"image {name!r} cannot be read ({detail}); fix or remove the file") from None
    return image, mode, described


def square(image: Image.Image, resolution: int) -> np.ndarray:
    """The centred square crop of ``image`` resized to ``resolution`` (Lanczos, antialiased when shrinking)."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    # crop first: resize(box=...) would let the filter reach pixels outside the square
    cropped = image.crop((left, top, left + side, top + side))
    resized = cropped.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8).copy()
