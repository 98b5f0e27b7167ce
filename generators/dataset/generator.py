"""The ``dataset`` generator plug-in: one generator (subset) of a dataset you have on disk, as a corpus.

Reads CNNDetection/ForenSynths, GenImage and Synthbuster-style folders, CSV/JSONL path lists and
Hugging Face datasets saved as Parquet (:mod:`.layouts`). Labels come from the layout; each
image is checked as the ``folder`` generator checks it and recorded with what its file was
(:mod:`.facts`), so the run can warn when reals and fakes differ in format or size.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from .. import face_records
from ...harness.contracts.ids import pair_id, record_id
from ...harness.contracts.types import FAKE, REAL, Batch, Record
from ..folder import MAX_RESOLUTION, MIN_RESOLUTION, NATIVE, decode_image, square
from .facts import file_facts, jpeg_round_trip, parse_harmonise
from .layouts import ALL, Dataset, DatasetError, Entry, digest_entries, read_dataset

ROLES = {REAL: "real", FAKE: "fake"}
#: Parquet row groups kept decoded-from-disk (their image column only) while a corpus is written.
ROW_GROUP_CACHE = 4
#: ``faces`` values: the dataset source takes no artifacts, so it analyses every image or none.
FACES_MODES = ("off", "on")


def interleaved(entries: list[Entry]) -> list[Entry]:
    """Reals and fakes alternating (each in dataset order), the longer class's rest at the end:
    any first ``n`` seeds hold both classes."""
    reals = [e for e in entries if e.label == REAL]
    fakes = [e for e in entries if e.label == FAKE]
    out: list[Entry] = []
    for i in range(max(len(reals), len(fakes))):
        out += reals[i : i + 1] + fakes[i : i + 1]
    return out


class DatasetGenerator:
    """One subset (generator) of a dataset on disk; seed ``i`` is its ``i``-th image.

    Seeds alternate reals and fakes (:func:`interleaved`), so ``count`` below
    :meth:`count` still gives both classes; ``facebench dataset scan PATH`` prints each subset's
    count and a suite with one corpus per subset. Every image is its own pair (real datasets have
    no twins), except that images sharing a ``group`` (a list or Parquet column: source video,
    identity) share one pair, so the split never puts a group on both sides.

    Parameters:
        path: the dataset: a folder (cnndetection, genimage, synthbuster, parquet), a .csv/.jsonl list or a .parquet file.
        subset: the generator to read (a folder or generator column value); "all" pools every
            image; empty: the only subset there is.
        layout: cnndetection, genimage, synthbuster, list or parquet; empty: recognised from the files.
        resolution: side of the square output images in pixels (16..2048): centre crop, then resize;
            or "native": every image at its own size (each detector then sees it through its input policy).
        harmonise: "jpeg:Q" re-encodes every image (both classes) as JPEG at quality Q after resizing,
            so that file format cannot tell them apart (Q well below the originals' JPEG quality:
            the run's shortcut guard says when it is not); empty: pixels as decoded.
        split: GenImage's folder to read: "val", "train" or "all".
        reals: Synthbuster: the folder of real photos (default: a folder named like RAISE or real).
        image_column: Parquet: the column of encoded images (default: image, img, or the first binary column).
        label_column: Parquet: the column of labels (0/1, real/fake, or ClassLabel names).
        faces: "on" records every image's face landmarks, face/hair/background masks and
            ``meta["face"]`` (reals and fakes; :mod:`~facebench.generators.faces`, the ``faces``
            extra, whose absence is an error of one line); an image with no face found gets none.
            "off" (the default) analyses nothing.
    """

    name = "dataset"
    version = "0.1.0"

    def __init__(
        self,
        path: str,
        subset: str = "",
        layout: str = "",
        resolution: int | str = 256,
        harmonise: str = "",
        split: str = "val",
        reals: str = "",
        image_column: str = "",
        label_column: str = "label",
        faces: str = "off",
    ):
        if resolution != NATIVE and (isinstance(resolution, bool) or not isinstance(resolution, int)
                                     or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION):
            raise DatasetError(f"resolution must be an integer in {MIN_RESOLUTION}..{MAX_RESOLUTION} or {NATIVE!r}, "
                               f"got {resolution!r}")
        try:
            self.harmonise_quality = parse_harmonise(harmonise)
        except ValueError as exc:
            raise DatasetError(str(exc)) from None
        self.dataset: Dataset = read_dataset(path, layout, split=split, reals=reals, image_column=image_column,
                                             label_column=label_column)
        self.subset = subset or self.only_subset()
        self.entries = interleaved(self.dataset.select(self.subset))
        self.resolution = resolution
        self.harmonise = harmonise.strip().lower()
        self.faces = face_records.check_faces_mode(faces, FACES_MODES, DatasetError)
        self.params = {"layout": self.dataset.layout, "split": split, "reals": reals, "image_column": image_column,
                       "label_column": label_column}
        groups = sorted({e.group for e in self.entries if e.group is not None})
        self.group_index = {group: i for i, group in enumerate(groups)}
        self._row_groups: OrderedDict[tuple[str, int], Any] = OrderedDict()

    def only_subset(self) -> str:
        subsets = self.dataset.subsets()
        if len(subsets) == 1:
            return next(iter(subsets))
        raise DatasetError(
            f"dataset {str(self.dataset.root)!r} ({self.dataset.layout}) holds {len(subsets)} subsets "
            f"({', '.join(subsets) or 'none'}); pass subset=NAME (or {ALL!r}); `facebench dataset scan "
            f"{self.dataset.root}` writes a suite with one corpus per subset"
        )

    def count(self) -> int:
        """How many seeds the subset supplies: ``0 .. count() - 1``."""
        return len(self.entries)

    def content_digest(self) -> str:
        """sha256 over each image's path (and Parquet row), label, group and file size and mtime."""
        return digest_entries(self.entries)

    def config(self) -> dict:
        """The parameters plus ``content_digest``, so a changed dataset names a new cached corpus."""
        return {"path": str(self.dataset.source or self.dataset.root), "subset": self.subset, "resolution": self.resolution,
                "harmonise": self.harmonise, **self.params, "content_digest": self.content_digest(),
                **face_records.faces_config(self.faces, default="off")}  # only when on: earlier keys stay

    def generate(self, seeds: Sequence[int]) -> Batch:
        """The images of ``seeds`` with records labelled from the layout."""
        images, records = [], []
        for seed in seeds:
            seed = self._check_seed(seed)
            image, record = self.load(seed)
            images.append(image)
            records.append(record)
        if isinstance(self.resolution, str):  # NATIVE: a list, the images keep their own sizes
            return Batch(images, records)
        if not images:
            return Batch(np.zeros((0, self.resolution, self.resolution, 3), np.uint8), [])
        return Batch(np.stack(images), records)

    def load(self, seed: int) -> tuple[np.ndarray, Record]:
        """Seed ``seed``'s pixels (decoded, checked, fitted, harmonised) and its record (with the
        face's landmarks and masks when ``faces="on"``)."""
        entry = self.entries[seed]
        source, name = self._open(entry)
        image, mode, facts = decode_image(source, name, inspect=file_facts)
        pixels = self.fit(image)
        if self.harmonise_quality is not None:
            pixels = jpeg_round_trip(pixels, self.harmonise_quality)
        meta: dict[str, Any] = {
            "source_path": entry.path if entry.row is None else f"{entry.path}#{entry.row[0]}:{entry.row[1]}",
            "layout": self.dataset.layout,
            "subset": self.subset,
            "file": facts,
        }
        meta.update({key: value for key, value in (("category", entry.category), ("group", entry.group),
                                                   ("harmonised", self.harmonise)) if value})
        if mode != "RGB":
            meta["converted_from"] = mode
        pair = pair_id(self.name, seed) if entry.group is None else pair_id(f"{self.name}-group", self.group_index[entry.group])
        record = Record(id=record_id(self.name, seed, ROLES[entry.label]), label=entry.label, source=self.name,
                        source_version=self.version, seed=seed, pair=pair, meta=meta, format="png")
        if self.faces == "on":
            record = face_records.with_faces(pixels, record, name)
        return pixels, record

    def fit(self, image: Image.Image) -> np.ndarray:
        """The pixels a corpus holds of ``image``: the centred square at ``resolution``, or the
        whole image at its own size (``"native"``)."""
        if isinstance(self.resolution, str):  # NATIVE
            return np.asarray(image, dtype=np.uint8).copy()
        return square(image, self.resolution)

    def _check_seed(self, seed: int) -> int:
        seed = int(seed)
        if not 0 <= seed < len(self.entries):
            n = len(self.entries)
            raise DatasetError(f"seed {seed} is out of range: subset {self.subset!r} of dataset "
                               f"{str(self.dataset.root)!r} holds {n} images (seeds 0..{n - 1}); ask for at most {n}")
        return seed

    def _path(self, entry: Entry) -> Path:
        path = self.dataset.root / entry.path
        try:
            stat = path.stat()
        except OSError:
            raise DatasetError(f"image {str(path)!r} has disappeared since the dataset was scanned") from None
        if f"{stat.st_size}:{stat.st_mtime_ns}" != entry.stamp:
            raise DatasetError(f"file {str(path)!r} changed since the dataset was scanned; run again")
        return path

    def _open(self, entry: Entry) -> tuple[Any, str]:
        """What to decode for ``entry`` (a path, or the bytes of a Parquet cell) and its name in errors."""
        path = self._path(entry)
        if entry.row is None:
            return path, str(path)
        group, row = entry.row
        name = f"{path}, row group {group} row {row}"
        column = self._row_group(entry.path, group)
        cell = column[row].as_py()
        data = cell.get("bytes") if isinstance(cell, dict) else cell
        if not data:
            raise DatasetError(f"{name}: the image cell holds no bytes; save the dataset with images embedded "
                               "(datasets' embed_external_files)")
        return io.BytesIO(data), name

    def _row_group(self, relative: str, group: int) -> Any:
        key = (relative, group)
        if key not in self._row_groups:
            table = pq.ParquetFile(self.dataset.root / relative).read_row_group(group, columns=[self.dataset.image_column])
            self._row_groups[key] = table.column(0)
            while len(self._row_groups) > ROW_GROUP_CACHE:
                self._row_groups.popitem(last=False)
        self._row_groups.move_to_end(key)
        return self._row_groups[key]
