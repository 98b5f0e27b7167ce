"""Corpus format v1: ``corpus.json`` + ``manifest.parquet`` + ``images/`` (+ ``masks/``).

A corpus is written into a hidden temporary folder beside its destination and renamed
into place only when complete, so an interrupted write never leaves a folder that opens
as a corpus. The manifest is plain Parquet, readable without facebench.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from ..contracts.images import BACKGROUND, CONVERTIBLE_MODES, to_rgb  # noqa: F401 - corpus's readers' names
from ..contracts.errors import FacebenchError, UsageError
from ..contracts.filemodes import as_if_created_plainly
from ..contracts.version import __version__
from ..contracts.seeding import purpose_key
from ..contracts.types import IMAGE_FORMATS, Batch, Record

FORMAT_NAME = "facebench-corpus"
FORMAT_VERSION = 1
CORPUS_JSON = "corpus.json"
MANIFEST = "manifest.parquet"
PNG_COMPRESS_LEVEL = 1  # fast; the corpus is a working set, not an archive
JPEG_QUALITY = 90

MANIFEST_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("label", pa.int8()),
        ("source", pa.string()),
        ("source_version", pa.string()),
        ("seed", pa.int64()),
        ("pair", pa.string()),
        ("artifacts", pa.string()),  # JSON: name -> parameters (with "strength")
        ("artifact_names", pa.list_(pa.string())),
        ("landmarks", pa.string()),  # JSON: name -> [x, y], or null
        ("masks", pa.string()),  # JSON: artifact -> {"path": ..., "sha256": ...}
        ("meta", pa.string()),  # JSON: how the generator made the image (e.g. truncation); may be absent in old corpora
        ("path", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("format", pa.string()),
        ("sha256", pa.string()),
    ]
)


class CorpusError(FacebenchError):
    """A corpus is missing, incomplete, corrupt or of an unknown format."""


class CorpusPathError(CorpusError, UsageError):
    """The path names no corpus (or, as an output, an existing one): exit code 2, nothing ran."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _shard(record_id: str) -> str:
    return hashlib.sha1(record_id.encode("utf-8")).hexdigest()[:2]


def _encode_image(image: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "png":
        Image.fromarray(image, "RGB").save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    else:
        Image.fromarray(image, "RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _encode_mask(mask: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255, "L").save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def safe_relative(corpus_root: Path, relative: str) -> Path:
    """``corpus_root / relative``, refusing absolute paths and paths that leave the corpus."""
    if not isinstance(relative, str) or not relative or "\\" in relative or "\0" in relative:
        raise CorpusError(f"{corpus_root / MANIFEST}: path {relative!r} is not a relative path inside the corpus")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise CorpusError(f"{corpus_root / MANIFEST}: path {relative!r} is not a relative path inside the corpus")
    return corpus_root.joinpath(*pure.parts)


def _contained(corpus_root: Path, path: Path) -> Path:
    """``path`` (from :func:`safe_relative`), refused when a symbolic link takes it out of the corpus."""
    if path.is_symlink() or any(parent.is_symlink() for parent in path.parents if parent != corpus_root and
                                parent.is_relative_to(corpus_root)):
        if not path.resolve().is_relative_to(corpus_root.resolve()):
            raise CorpusError(f"{path}: a symbolic link that leads out of the corpus; a corpus holds its own files")
    return path


def digest_rows(rows: Sequence[dict[str, Any]]) -> str:
    """A content digest of a manifest: the same images and records give the same digest."""
    hasher = hashlib.sha256()
    for row in sorted(rows, key=lambda r: r["id"]):
        hasher.update(json.dumps(row, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    return hasher.hexdigest()


def _partial_prefix(path: Path) -> str:
    """Hidden folders being written for ``path`` on this host start with this (then the writer's pid)."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "host"
    return f".{path.name}.partial-{host}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def remove_stale_partials(path: str | Path) -> list[Path]:
    """Delete the hidden partial folders of ``path`` left by writers on this host that are no
    longer running (e.g. killed); a live writer's folder, or another host's, is left alone."""
    path = Path(path)
    prefix = _partial_prefix(path)
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    for candidate in path.parent.iterdir():
        pid_text = candidate.name[len(prefix):].split("-", 1)[0] if candidate.name.startswith(prefix) else ""
        if pid_text.isdigit() and candidate.is_dir() and not _alive(int(pid_text)):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def write_record(folder: str | Path, image: np.ndarray, record: Record) -> dict[str, Any]:
    """Write one image (and its masks) into a corpus folder being built; returns its manifest row.

    Files are named by the record's id, so writing the same record again rewrites the same
    bytes: a retried writer (e.g. a Ray task) leaves no duplicates.
    """
    folder = Path(folder)
    shard = _shard(record.id)
    relative = f"images/{shard}/{record.id}.{record.format}"
    data = _encode_image(image, record.format)
    _write_file(folder / relative, data)
    masks = {}
    for name, mask in sorted(record.masks.items()):
        mask_relative = f"masks/{name}/{shard}/{record.id}.png"
        mask_data = _encode_mask(mask)
        _write_file(folder / mask_relative, mask_data)
        masks[name] = {"path": mask_relative, "sha256": _sha256(mask_data)}
    landmarks = None
    if record.landmarks is not None:
        landmarks = {k: [round(float(v[0]), 3), round(float(v[1]), 3)] for k, v in sorted(record.landmarks.items())}
    return {
        "id": record.id,
        "label": int(record.label),
        "source": record.source,
        "source_version": record.source_version,
        "seed": int(record.seed),
        "pair": record.pair,
        "artifacts": json.dumps(record.artifacts, sort_keys=True),
        "artifact_names": sorted(record.artifacts),
        "landmarks": None if landmarks is None else json.dumps(landmarks, sort_keys=True),
        "masks": json.dumps(masks, sort_keys=True),
        "meta": json.dumps(record.meta, sort_keys=True),
        "path": relative,
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "format": record.format,
        "sha256": _sha256(data),
    }


class CorpusWriter:
    """Writes batches into a new corpus; :meth:`close` makes it visible at ``path``.

    Use as a context manager: on an exception nothing appears at ``path``.
    """

    def __init__(self, path: str | Path, generators: Sequence[dict[str, Any]], *, overwrite: bool = False):
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise CorpusPathError(f"{self.path} already exists; choose another --out or pass --overwrite")
        self.overwrite = overwrite
        self.generators = list(generators)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(self.path)
        self._tmp = Path(tempfile.mkdtemp(prefix=f"{_partial_prefix(self.path)}{os.getpid()}-", dir=self.path.parent))
        as_if_created_plainly(self._tmp)  # mkdtemp makes it 0700; the corpus is renamed from it
        self._rows: list[dict[str, Any]] = []
        self._ids: set[str] = set()

    def write(self, batch: Batch) -> None:
        try:
            for image, record in zip(batch.images, batch.records):
                self._write_one(image, record)
        except OSError as exc:
            raise self.write_error(exc) from exc

    def write_error(self, exc: OSError) -> CorpusError:
        """A failed write (e.g. the disk is full) as one line; the caller's ``with`` removes the partial folder."""
        where = f" ({exc.filename})" if exc.filename else ""
        return CorpusError(f"{self.path}: cannot write the corpus: {exc.strerror or exc}{where}; nothing of it was kept "
                           "and nothing written before was touched: free some space and run again")

    @property
    def partial(self) -> Path:
        """The hidden folder the corpus is written into until :meth:`close` renames it."""
        return self._tmp

    def add_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        """Add manifest rows whose files are already in :attr:`partial` (see :func:`write_record`),
        e.g. written there by other processes; in the order given, as :meth:`write` would."""
        for row in rows:
            if row["id"] in self._ids:
                raise CorpusError(f"duplicate image id {row['id']!r}")
            self._ids.add(row["id"])
            self._rows.append(row)

    def _write_one(self, image: np.ndarray, record: Record) -> None:
        if record.id in self._ids:
            raise CorpusError(f"duplicate image id {record.id!r}")
        self._ids.add(record.id)
        self._rows.append(write_record(self._tmp, image, record))

    def close(self, extra_meta: dict[str, Any] | None = None) -> "Corpus":
        """Write the manifest and corpus.json, then move the corpus into place.

        ``extra_meta`` (e.g. generation throughput) goes into corpus.json, outside the digest.
        With ``overwrite``, the old corpus stays in place until the new one is complete.
        """
        try:
            self._finish(extra_meta)
        except OSError as exc:
            raise self.write_error(exc) from exc
        return Corpus.open(self.path)

    def _finish(self, extra_meta: dict[str, Any] | None) -> None:
        table = pa.Table.from_pylist(self._rows, schema=MANIFEST_SCHEMA)
        pq.write_table(table, self._tmp / MANIFEST)
        labels = [row["label"] for row in self._rows]
        meta = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "facebench_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "generators": self.generators,
            "counts": {"images": len(labels), "real": labels.count(0), "fake": labels.count(1)},
            "digest": digest_rows(self._rows),
            **(extra_meta or {}),
        }
        # corpus.json is written last: a folder without it never opens as a corpus.
        (self._tmp / CORPUS_JSON).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if self.path.exists() and self.overwrite:
            # moved aside, not deleted, until the new corpus is in place: a kill in between loses neither
            old = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.replaced-", dir=self.path.parent))
            os.replace(self.path, old / self.path.name)
            try:
                os.replace(self._tmp, self.path)
            except OSError:
                os.replace(old / self.path.name, self.path)  # the old corpus goes back
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self._tmp, self.path)

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "CorpusWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def write_corpus(
    path: str | Path,
    batches: Iterable[Batch],
    generators: Sequence[dict[str, Any]],
    *,
    overwrite: bool = False,
) -> "Corpus":
    """Write ``batches`` as a corpus at ``path`` atomically and open it."""
    with CorpusWriter(path, generators, overwrite=overwrite) as writer:
        for batch in batches:
            writer.write(batch)
        return writer.close()


@dataclass
class Corpus:
    """An opened corpus, or a filtered view of one. Images load lazily, batch by batch."""

    root: Path
    meta: dict[str, Any]
    manifest: pa.Table

    @classmethod
    def open(cls, path: str | Path) -> "Corpus":
        root = Path(path)
        meta_path = root / CORPUS_JSON
        if not root.is_dir():
            raise CorpusPathError(f"{root}: no such corpus folder")
        if not meta_path.is_file():
            hint = " (an interrupted write?)" if (root / MANIFEST).exists() else ""
            raise CorpusPathError(f"{root}: not a complete corpus, {CORPUS_JSON} is missing{hint}")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise CorpusError(f"{meta_path}: unreadable: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
            raise CorpusError(f"{meta_path}: not a facebench corpus")
        version = meta.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise CorpusError(f"{meta_path}: format_version {version!r} is not a corpus format version (an integer >= 1)")
        if version > FORMAT_VERSION:
            raise CorpusError(
                f"{meta_path}: corpus format version {version!r} is newer than this facebench reads "
                f"({FORMAT_VERSION}); upgrade facebench"
            )
        for key, kind in (("digest", str), ("counts", dict)):
            if not isinstance(meta.get(key), kind):
                raise CorpusError(f"{meta_path}: {key!r} is missing or not a {kind.__name__}; the corpus.json is damaged")
        try:
            manifest = pq.read_table(root / MANIFEST)
        except (OSError, pa.ArrowException) as exc:
            raise CorpusError(f"{root / MANIFEST}: unreadable: {_first_line(exc)}") from exc
        return cls(root=root, meta=meta, manifest=_checked_manifest(root, manifest))

    def __len__(self) -> int:
        return self.manifest.num_rows

    @property
    def digest(self) -> str:
        return self.meta["digest"]

    @property
    def labels(self) -> np.ndarray:
        return self.manifest.column("label").to_numpy().astype(np.int64)

    @property
    def ids(self) -> list[str]:
        return self.manifest.column("id").to_pylist()

    def _view(self, manifest: pa.Table) -> "Corpus":
        return Corpus(root=self.root, meta=self.meta, manifest=manifest)

    def select(
        self,
        *,
        label: int | None = None,
        source: str | None = None,
        artifact: str | None = None,
        ids: Iterable[str] | None = None,
    ) -> "Corpus":
        """A view with only the rows that match every given filter.

        ``artifact`` keeps fakes carrying that artifact and all reals, which is the set on
        which a per-artifact metric is computed; use ``label=1`` too for fakes only.
        """
        table = self.manifest
        if label is not None:
            table = table.filter(pc.equal(table["label"], label))
        if source is not None:
            table = table.filter(pc.equal(table["source"], source))
        if artifact is not None:
            carries = pa.array([artifact in names for names in table["artifact_names"].to_pylist()], pa.bool_())
            table = table.filter(pc.or_(carries, pc.equal(table["label"], 0)))
        if ids is not None:
            table = table.filter(pc.is_in(table["id"], value_set=pa.array(list(ids), pa.string())))
        return self._view(table)

    def split(self, test_fraction: float = 0.5, seed: int = 0) -> tuple["Corpus", "Corpus"]:
        """(train, test) by ``pair``: counterparts never straddle the split.

        A pair's side depends only on its name and ``seed``, never on row order or corpus size.
        """
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        pairs = self.manifest.column("pair").to_pylist()
        in_test = np.array([pair_in_test(pair, test_fraction, seed) for pair in pairs], dtype=bool)
        mask = pa.array(in_test)
        return self._view(self.manifest.filter(pc.invert(mask))), self._view(self.manifest.filter(mask))

    def records(self) -> list[Record]:
        return [row_to_record(row, self.root / MANIFEST) for row in self.manifest.to_pylist()]

    def rows(self) -> list[dict[str, Any]]:
        return self.manifest.to_pylist()

    def load_images(self, rows: Sequence[dict[str, Any]] | None = None) -> np.ndarray:
        """Decode the images of ``rows`` (default: all rows of this view) into one array; CorpusError
        when they differ in size (read those with :meth:`load_image_list`)."""
        rows = self.rows() if rows is None else rows
        if not rows:
            return np.zeros((0, 0, 0, 3), np.uint8)
        sizes = {(row["height"], row["width"]) for row in rows}
        if len(sizes) > 1:
            shown = ", ".join(f"{w}x{h}" for h, w in sorted(sizes)[:4]) + (", ..." if len(sizes) > 4 else "")
            raise CorpusError(f"{self.root}: these {len(rows)} images are of {len(sizes)} sizes ({shown}) and do not "
                              "stack into one array; read them with load_image_list, or group them by size")
        return np.stack([self._load_one(row) for row in rows])

    def load_image_list(self, rows: Sequence[dict[str, Any]] | None = None) -> list[np.ndarray]:
        """Decode the images of ``rows`` (default: all rows of this view), each uint8 ``[H, W, 3]`` at its own size."""
        rows = self.rows() if rows is None else rows
        return [self._load_one(row) for row in rows]

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """(height, width) of every image of this view, from the manifest (nothing decoded)."""
        return list(zip(self.manifest.column("height").to_pylist(), self.manifest.column("width").to_pylist()))

    @property
    def paired(self) -> bool:
        """Whether some pair id holds both a real and a fake (a counterfactual corpus). A corpus
        with no such pair (e.g. a dataset of independent images) is unpaired: its bootstrap
        resamples reals and fakes apart, and it has no counterfactual sensitivity."""
        return is_paired(self.labels, self.manifest.column("pair").to_pylist())

    def _load_one(self, row: dict[str, Any]) -> np.ndarray:
        path = _contained(self.root, safe_relative(self.root, row["path"]))
        try:
            with Image.open(path) as image:
                # the header's size is checked before any pixel is decoded: a file claiming a huge
                # size (a decompression bomb) is refused without allocating it
                if image.size != (row["width"], row["height"]):
                    raise CorpusError(
                        f"{path}: image is {image.size[0]}x{image.size[1]}, manifest says {row['width']}x{row['height']}; "
                        f"run `facebench corpus verify {self.root}`"
                    )
                image.load()
                array = np.asarray(image if image.mode == "RGB" else to_rgb(image))
        except CorpusError:
            raise
        except FileNotFoundError as exc:
            raise CorpusError(f"{path}: image {row['id']!r} is missing; run `facebench corpus verify {self.root}`") from exc
        except Exception as exc:  # noqa: BLE001 - decoders raise OSError, SyntaxError, ValueError, DecompressionBombError, ...
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise CorpusError(
                f"{path}: image {row['id']!r} cannot be decoded ({type(exc).__name__}: {detail}); "
                f"run `facebench corpus verify {self.root}`"
            ) from exc
        if array.shape[:2] != (row["height"], row["width"]):
            raise CorpusError(
                f"{path}: image is {array.shape[1]}x{array.shape[0]}, manifest says {row['width']}x{row['height']}"
            )
        return array

    def load_mask(self, row: dict[str, Any], artifact: str) -> np.ndarray:
        masks = _mask_files(row, self.root / MANIFEST)
        if artifact not in masks:
            raise CorpusError(f"image {row['id']!r} has no mask for {artifact!r}")
        path = _contained(self.root, safe_relative(self.root, masks[artifact][0]))
        try:
            with Image.open(path) as image:
                if image.size != (row["width"], row["height"]):
                    raise CorpusError(f"{path}: mask is {image.size[0]}x{image.size[1]}, its image {row['width']}x{row['height']}")
                return np.asarray(image.convert("L")) > 127
        except CorpusError:
            raise
        except Exception as exc:  # noqa: BLE001 - as in _load_one
            raise CorpusError(f"{path}: mask {artifact!r} of image {row['id']!r} cannot be read ({_first_line(exc)}); "
                              f"run `facebench corpus verify {self.root}`") from exc

    def iter_batches(self, batch_size: int = 64) -> Iterator[tuple[list[dict[str, Any]], np.ndarray]]:
        """(rows, images) in batches of at most ``batch_size``; memory stays bounded by one batch.
        Consecutive rows stacked: a batch of images of several sizes is a CorpusError (the runner
        batches by size, :mod:`facebench.harness.run.inputs`)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for start in range(0, len(self), batch_size):
            rows = self.manifest.slice(start, batch_size).to_pylist()
            yield rows, self.load_images(rows)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: Manifest columns that may hold nulls (a record without landmarks; meta absent in old corpora).
_NULLABLE = frozenset({"landmarks", "meta"})


def _checked_manifest(root: Path, manifest: pa.Table) -> pa.Table:
    """``manifest`` with the columns of :data:`MANIFEST_SCHEMA` in its types, once every value the
    readers rely on is checked; CorpusError naming the column (and row) otherwise. JSON columns
    are parsed lazily, by :func:`row_to_record` and :meth:`Corpus.load_mask`."""
    where = root / MANIFEST
    if "meta" not in manifest.column_names:  # corpora written before records carried meta
        manifest = manifest.append_column("meta", pa.array(["{}"] * manifest.num_rows, pa.string()))
    missing = [name for name in MANIFEST_SCHEMA.names if name not in manifest.column_names]
    if missing:
        raise CorpusError(f"{where}: missing columns {', '.join(missing)}")
    if len(set(manifest.column_names)) != len(manifest.column_names):
        raise CorpusError(f"{where}: a column name appears twice")
    columns = []
    for target in MANIFEST_SCHEMA:
        column = manifest.column(target.name)
        if column.type != target.type:
            try:
                column = column.cast(target.type, safe=True)
            except (pa.ArrowException, ValueError, TypeError) as exc:
                raise CorpusError(
                    f"{where}: column {target.name!r} is {column.type}, expected {target.type} ({_first_line(exc)})"
                ) from None
        if target.name not in _NULLABLE and column.null_count:
            row = pc.index(pc.is_null(column), True).as_py()
            raise CorpusError(f"{where}: column {target.name!r} is empty (null) in row {row}")
        columns.append(column)
    manifest = pa.Table.from_arrays(columns, schema=MANIFEST_SCHEMA)

    def first_bad(ok: pa.ChunkedArray, what: str) -> None:
        if not pc.all(ok).as_py():
            row = pc.index(ok, False).as_py()
            raise CorpusError(f"{where}: row {row} (id {manifest.column('id')[row].as_py()!r}): {what}")

    if manifest.num_rows:
        first_bad(pc.is_in(manifest.column("label"), value_set=pa.array([0, 1], pa.int8())), "label must be 0 (real) or 1 (fake)")
        first_bad(pc.is_in(manifest.column("format"), value_set=pa.array(list(IMAGE_FORMATS))), f"format must be one of {IMAGE_FORMATS}")
        first_bad(pc.and_(pc.greater(manifest.column("width"), 0), pc.greater(manifest.column("height"), 0)),
                  "width and height must be positive")
        first_bad(pc.greater(pc.utf8_length(manifest.column("id")), 0), "the id is empty")
    if pc.count_distinct(manifest.column("id")).as_py() != manifest.num_rows:
        counts = pc.value_counts(manifest.column("id"))
        twice = next(item["values"] for item in counts.to_pylist() if item["counts"] > 1)
        raise CorpusError(f"{where}: image id {twice!r} appears more than once")
    for path_value in manifest.column("path").to_pylist():
        safe_relative(root, path_value)
    return manifest


def _mask_files(row: dict[str, Any], source: str | Path) -> dict[str, tuple[str, str]]:
    """artifact -> (relative path, sha256) of a row's masks; CorpusError naming the row when malformed."""
    try:
        masks = json.loads(row["masks"])
        return {str(name): (str(entry["path"]), str(entry["sha256"])) for name, entry in masks.items()}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CorpusError(f"{source}: row with id {row.get('id')!r}: masks is malformed: {_first_line(exc)}") from None


def is_paired(labels: Sequence[int] | np.ndarray, pairs: Sequence[str] | np.ndarray) -> bool:
    """Whether some pair id among ``pairs`` holds both a real (0) and a fake (1) of ``labels``."""
    reals = {pair for pair, label in zip(pairs, labels) if int(label) == 0}
    return any(int(label) == 1 and pair in reals for pair, label in zip(pairs, labels))


def pair_in_test(pair: str, test_fraction: float, seed: int) -> bool:
    """Whether ``pair`` falls in the test side of a split seeded with ``seed``."""
    u = (purpose_key(f"split:{seed}:{pair}") >> 11) / float(1 << 53)
    return u < test_fraction


def row_to_record(row: dict[str, Any], source: str | Path = MANIFEST) -> Record:
    """The :class:`Record` of a manifest row; CorpusError naming ``source`` and the row when a field is malformed."""
    try:
        landmarks = json.loads(row["landmarks"]) if row["landmarks"] else None
        artifacts = json.loads(row["artifacts"])
        meta = json.loads(row.get("meta") or "{}")
        if not isinstance(artifacts, dict) or not all(isinstance(p, dict) for p in artifacts.values()):
            raise ValueError("artifacts must map each artifact name to its parameters")
        if not isinstance(meta, dict):
            raise ValueError("meta must be a JSON object")
        return Record(
            id=row["id"],
            label=int(row["label"]),
            source=row["source"],
            source_version=row["source_version"],
            seed=int(row["seed"]),
            pair=row["pair"],
            artifacts=artifacts,
            landmarks=None if landmarks is None else {str(k): (float(v[0]), float(v[1])) for k, v in landmarks.items()},
            meta=meta,
            format=row["format"],
        )
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise CorpusError(f"{source}: row with id {row.get('id')!r} is malformed: {_first_line(exc)}") from None


@dataclass
class VerifyReport:
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.extra)


def verify(path: str | Path) -> VerifyReport:
    """Re-hash every image and mask of the corpus at ``path`` against its manifest."""
    corpus = Corpus.open(path)
    report = VerifyReport()
    expected: set[str] = set()
    for row in corpus.rows():
        files = [(row["path"], row["sha256"])]
        files += list(_mask_files(row, corpus.root / MANIFEST).values())
        for relative, sha in files:
            expected.add(relative)
            report.checked += 1
            file_path = _contained(corpus.root, safe_relative(corpus.root, relative))
            try:
                data = file_path.read_bytes()
            except FileNotFoundError:
                report.missing.append(relative)
                continue
            except OSError:  # e.g. a folder where the file should be
                report.corrupt.append(relative)
                continue
            if _sha256(data) != sha:
                report.corrupt.append(relative)
    for folder in ("images", "masks"):
        base = corpus.root / folder
        if base.is_dir():
            for file_path in sorted(base.rglob("*")):
                relative = file_path.relative_to(corpus.root).as_posix()
                if file_path.is_file() and relative not in expected:
                    report.extra.append(relative)
    return report
