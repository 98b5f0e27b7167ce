"""The field's dataset layouts on disk, read into one list of labelled entries.

Layouts (``LAYOUTS``):

- ``cnndetection`` (CNNDetection / ForenSynths): ``<generator>/[<category>/]0_real|1_fake/``
- ``genimage``: ``<generator>/{train,val}/{ai,nature}/``
- ``synthbuster``: a folder of real photos (RAISE) beside one folder per generator
- ``list``: a CSV or JSONL file with ``path``, ``label`` and optional ``generator`` and ``group``
  columns; relative paths are resolved against the list file's folder
- ``parquet``: a Hugging Face dataset saved as Parquet (an image column of encoded bytes, a label
  column, optional ``generator`` and ``group`` columns); one file or a folder of them

Every layout yields :class:`Entry` rows: one image each, with its label, the subset
(generator) it belongs to and where its bytes are. Reals that belong to no generator (a
Synthbuster RAISE folder, list rows whose generator has no fakes) are *shared*: every subset
uses them. Only paths and a few numbers are held, never pixels.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from ...harness.contracts.errors import FacebenchError
from ...harness.contracts.types import FAKE, REAL
from ..folder import IMAGE_EXTENSIONS

LAYOUTS = ("cnndetection", "genimage", "synthbuster", "list", "parquet")
#: The subset that selects every image of the dataset.
ALL = "all"
#: The subset of reals that every generator's subset uses.
SHARED = ""
CNN_CLASSES = {"0_real": REAL, "1_fake": FAKE}
GENIMAGE_CLASSES = {"nature": REAL, "ai": FAKE}
GENIMAGE_SPLITS = ("train", "val")
#: Folder names (compared case-insensitively) taken as the real photos of a Synthbuster-style tree.
SYNTHBUSTER_REALS = ("raise", "raise-1k", "raise1k", "raise_1k", "real", "reals", "nature", "0_real")
#: Label values (compared case-insensitively) in list files and Parquet columns.
LABEL_WORDS = {**{w: REAL for w in ("0", "real", "nature", "human", "authentic", "false")},
               **{w: FAKE for w in ("1", "fake", "ai", "synthetic", "generated", "true")}}
LIST_SUFFIXES = (".csv", ".jsonl", ".json")


class DatasetError(FacebenchError, ValueError):
    """A dataset on disk cannot be read as asked: one line naming the input and the fix."""


@dataclass(frozen=True)
class Entry:
    """One image of a dataset: its label, subset and where its encoded bytes are."""

    subset: str  # the generator it belongs to; SHARED for reals every subset uses
    label: int
    path: str  # POSIX path relative to the dataset's root (a Parquet file for parquet entries)
    stamp: str  # "size:mtime_ns" of the file at scan time
    row: tuple[int, int] | None = None  # (row group, row in group) of a Parquet entry
    group: str | None = None  # source video, identity, ...: one pair for the whole group
    category: str = ""  # a CNNDetection category, a GenImage split, a shared real's own generator value


@dataclass
class Dataset:
    """A dataset read from disk: its layout, its entries, and what a Parquet reader needs."""

    root: Path  # relative entry paths are resolved against it
    layout: str
    entries: list[Entry]
    #: Class folders that hold no image: (subset, relative path).
    empty_folders: list[tuple[str, str]] = field(default_factory=list)
    #: The Parquet image column, when the layout is parquet.
    image_column: str = ""
    #: What the dataset was read from: its folder, list file or Parquet file (set by :func:`read_dataset`).
    source: Path | None = None

    def subsets(self) -> dict[str, tuple[int, int]]:
        """Each generator subset (sorted) with its (reals, fakes), shared reals counted in each."""
        names = sorted({e.subset for e in self.entries if e.subset != SHARED})
        return {name: count_labels(self.select(name, check=False)) for name in names}

    def select(self, subset: str, check: bool = True) -> list[Entry]:
        """The entries of ``subset`` (or of :data:`ALL`): its fakes and its own reals, else the shared reals.

        With ``check``, a subset that is unknown, has an empty class folder, or lacks a class is a
        :class:`DatasetError`.
        """
        if subset == ALL:
            chosen = list(self.entries)
        else:
            known = {e.subset for e in self.entries if e.subset != SHARED}
            if check and subset not in known:
                raise DatasetError(f"dataset {str(self.root)!r} ({self.layout}) has no subset {subset!r}; "
                                   f"pass subset= one of: {', '.join(sorted(known)) or 'none'}, or {ALL!r}")
            own = [e for e in self.entries if e.subset == subset]
            reals = [e for e in own if e.label == REAL] or [e for e in self.entries if e.subset == SHARED]
            chosen = reals + [e for e in own if e.label == FAKE]
        if check:
            empty = [where for owner, where in self.empty_folders if subset == ALL or owner in (subset, SHARED)]
            if empty:
                raise DatasetError(f"class folder {str(self.root / empty[0])!r} holds no images "
                                   f"({', '.join(IMAGE_EXTENSIONS)}); add its images or remove the folder")
            n_real, n_fake = count_labels(chosen)
            if not n_real or not n_fake:
                missing = "real" if not n_real else "fake"
                raise DatasetError(f"dataset {str(self.root)!r} ({self.layout}), subset {subset!r}: no {missing} "
                                   f"images, only {n_real + n_fake} {'fake' if not n_real else 'real'} ones; a benchmark "
                                   f"needs both classes: add the {missing} images or pick another subset")
        return chosen


def count_labels(entries: Iterable[Entry]) -> tuple[int, int]:
    """(reals, fakes) among ``entries``."""
    labels = [e.label for e in entries]
    return labels.count(REAL), labels.count(FAKE)


def digest_entries(entries: Iterable[Entry]) -> str:
    """sha256 over each entry's path, row and file stamp: a changed, added or removed file changes it."""
    hasher = hashlib.sha256()
    for e in entries:
        hasher.update(f"{e.path}\0{e.row}\0{e.stamp}\0{e.label}\0{e.group}\n".encode())
    return hasher.hexdigest()


# --------------------------------------------------------------------------- reading a dataset


def read_dataset(path: str | Path, layout: str = "", *, split: str = "val", reals: str = "",
                 image_column: str = "", label_column: str = "label") -> Dataset:
    """The dataset at ``path`` in ``layout`` (empty: recognised from the files)."""
    dataset = _read(Path(path).expanduser(), layout, split, reals, image_column, label_column)
    dataset.source = Path(path).expanduser().resolve()
    return dataset


def _read(root: Path, layout: str, split: str, reals: str, image_column: str, label_column: str) -> Dataset:
    if not root.exists():
        raise DatasetError(f"dataset {str(root)!r} does not exist; pass an existing folder or list file as path")
    root = root.resolve()
    if layout and layout not in LAYOUTS:
        raise DatasetError(f"layout must be one of {', '.join(LAYOUTS)} (or empty: recognised), got {layout!r}")
    if split not in (*GENIMAGE_SPLITS, ALL):
        raise DatasetError(f"split must be 'train', 'val' or 'all' (GenImage's folders), got {split!r}")
    if root.is_file():
        layout = layout or file_layout(root)
        if layout == "list":
            return read_list(root)
        if layout == "parquet":
            return read_parquet([root], root.parent, image_column, label_column, root.stem)
        raise DatasetError(f"{str(root)!r} is a file; layout {layout!r} reads a folder: pass the dataset's folder")
    files, folders = walk(root)
    layout = layout or folder_layout(root, files, folders)
    if layout == "cnndetection":
        return read_classed(root, files, folders, "cnndetection", CNN_CLASSES, None)
    if layout == "genimage":
        return read_classed(root, files, folders, "genimage", GENIMAGE_CLASSES, split)
    if layout == "synthbuster":
        return read_synthbuster(root, files, folders, reals)
    if layout == "parquet":
        parquets = sorted(root / f for f in parquet_files(root))
        if not parquets:
            raise DatasetError(f"folder {str(root)!r} holds no .parquet files; pass the folder of a dataset saved as Parquet")
        return read_parquet(parquets, root, image_column, label_column, root.name)
    raise DatasetError(f"layout 'list' reads a CSV or JSONL file, and {str(root)!r} is a folder; pass the list file")


def file_layout(path: Path) -> str:
    if path.suffix.lower() in LIST_SUFFIXES:
        return "list"
    if path.suffix.lower() == ".parquet":
        return "parquet"
    raise DatasetError(f"cannot tell the layout of {str(path)!r}: a file should be a .csv or .jsonl list or a "
                       ".parquet dataset; pass layout= one of list, parquet")


@dataclass(frozen=True)
class ImageFound:
    parts: tuple[str, ...]  # the path relative to the root, split
    stamp: str


def walk(root: Path) -> tuple[list[ImageFound], list[tuple[str, ...]]]:
    """Image files (sorted by path) and folders under ``root``; hidden ones skipped."""
    files, folders = [], []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(folder)
        relative = base.relative_to(root).parts
        folders.append(relative)
        for name in names:
            if name.startswith(".") or not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            try:
                stat = (base / name).stat()
            except OSError:
                continue  # a dangling link
            files.append(ImageFound((*relative, name), f"{stat.st_size}:{stat.st_mtime_ns}"))
    files.sort(key=lambda f: f.parts)
    return files, folders


def parquet_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.parquet")
                  if not any(part.startswith(".") for part in p.relative_to(root).parts))


def folder_layout(root: Path, files: list[ImageFound], folders: list[tuple[str, ...]]) -> str:
    """The layout a folder's sub-folders name; DatasetError when none fits."""
    names = {name for parts in folders for name in parts}
    if names & set(CNN_CLASSES):
        return "cnndetection"
    if any(len(p) >= 2 and p[-1] in GENIMAGE_CLASSES and p[-2] in GENIMAGE_SPLITS for p in folders):
        return "genimage"
    if synthbuster_reals_folder(folders, ""):
        return "synthbuster"
    if not files and parquet_files(root):
        return "parquet"
    raise DatasetError(
        f"cannot tell the layout of folder {str(root)!r}: no 0_real/1_fake folders (CNNDetection), no "
        "{train,val}/{ai,nature} folders (GenImage), no real-photo folder such as RAISE beside generator folders "
        "(Synthbuster) and no .parquet files; pass layout= one of " + ", ".join(LAYOUTS)
    )


def read_classed(root: Path, files: list[ImageFound], folders: list[tuple[str, ...]], layout: str,
                 classes: dict[str, int], split: str | None) -> Dataset:
    """CNNDetection or GenImage: the class folder's name labels an image, the first folder above
    it (above the split for GenImage) names its subset; folders between are its category."""

    def class_position(parts: tuple[str, ...]) -> int | None:
        for i, name in enumerate(parts):
            if name in classes and (split is None or (i >= 1 and parts[i - 1] in GENIMAGE_SPLITS)):
                return i
        return None

    def owner(parts: tuple[str, ...], at: int) -> tuple[str, str]:
        above = parts[: at - 1] if split is not None else parts[:at]
        return (above[0], "/".join(above[1:])) if above else (root.name, "")

    def wanted(parts: tuple[str, ...], at: int) -> bool:
        return split is None or split == ALL or parts[at - 1] == split

    entries: list[Entry] = []
    counts: dict[tuple[str, ...], int] = {}
    for found in files:
        at = class_position(found.parts[:-1])
        if at is None or not wanted(found.parts, at):
            continue
        subset, category = owner(found.parts, at)
        if split is not None:
            category = "/".join(filter(None, (category, found.parts[at - 1])))
        entries.append(Entry(subset, classes[found.parts[at]], "/".join(found.parts), found.stamp, category=category))
        counts[found.parts[: at + 1]] = counts.get(found.parts[: at + 1], 0) + 1
    empty = []
    for parts in folders:
        at = class_position(parts)
        if at is not None and at == len(parts) - 1 and wanted(parts, at) and not counts.get(parts):
            empty.append((owner(parts, at)[0], "/".join(parts)))
    return Dataset(root, layout, entries, empty)


def synthbuster_reals_folder(folders: list[tuple[str, ...]], reals: str) -> str:
    """The top folder holding the real photos: ``reals`` if given, else the one with a real-photo name."""
    top = sorted(parts[0] for parts in folders if len(parts) == 1)
    if reals:
        return reals if reals in top else ""
    matches = [name for name in top if name.lower() in SYNTHBUSTER_REALS]
    return matches[0] if matches else ""


def read_synthbuster(root: Path, files: list[ImageFound], folders: list[tuple[str, ...]], reals: str) -> Dataset:
    """Synthbuster: the real-photo folder's images are shared reals, each other top folder is a generator."""
    real_folder = synthbuster_reals_folder(folders, reals)
    if not real_folder:
        wanted = repr(reals) if reals else f"named one of {', '.join(SYNTHBUSTER_REALS)}"
        raise DatasetError(f"folder {str(root)!r} has no real-photo folder {wanted}; pass reals=NAME, the "
                           "sub-folder that holds the real photos (e.g. RAISE)")
    entries = []
    for found in files:
        if len(found.parts) < 2:
            continue  # an image at the top belongs to no generator
        top = found.parts[0]
        is_real = top == real_folder
        entries.append(Entry(SHARED if is_real else top, REAL if is_real else FAKE, "/".join(found.parts), found.stamp,
                             category="/".join(found.parts[1:-1])))
    held = {e.path.split("/", 1)[0] for e in entries}
    empty = [(parts[0] if parts[0] != real_folder else SHARED, parts[0]) for parts in folders
             if len(parts) == 1 and parts[0] not in held]
    return Dataset(root, "synthbuster", entries, empty)


# --------------------------------------------------------------------------- lists and Parquet


def label_of(value: Any, names: list[str] | None = None) -> int | None:
    """REAL or FAKE for a label cell (0/1, real/fake, ...; a class index through ``names``), None if unknown."""
    if names and isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        value = names[value]
    word = str(value).strip().lower() if value is not None else ""
    return LABEL_WORDS.get(word)


def share_reals(rows: list[tuple[int, str, dict[str, Any]]]) -> list[tuple[int, str, str]]:
    """(label, subset, category) per row from (label, generator value, extra): reals whose generator has
    no fakes are shared by every subset, their generator value kept as category."""
    with_fakes = {generator for label, generator, _ in rows if label == FAKE}
    out = []
    for label, generator, _ in rows:
        if label == REAL and generator not in with_fakes:
            out.append((label, SHARED, generator))
        else:
            out.append((label, generator, ""))
    return out


def read_list(path: Path) -> Dataset:
    """A CSV (with a header) or JSONL list of path, label[, generator][, group]."""
    rows = list_rows(path)
    if not rows:
        raise DatasetError(f"list {str(path)!r} names no images; add rows of path,label[,generator][,group]")
    base = path.parent
    parsed: list[tuple[int, str, dict[str, Any]]] = []
    for line, row in rows:
        where = f"list {str(path)!r} line {line}"
        image = row.get("path")
        if not isinstance(image, str) or not image.strip():
            raise DatasetError(f"{where}: no path; every row needs path and label (columns: {', '.join(row)})")
        label = label_of(row.get("label"))
        if label is None:
            raise DatasetError(f"{where}: label {row.get('label')!r} is neither real nor fake; use 0/1 or real/fake")
        target = (base / image.strip()).resolve()
        try:
            stat = target.stat()
        except OSError:
            raise DatasetError(f"{where} names {image.strip()!r}, which does not exist ({str(target)!r}); fix the path "
                               "(relative paths start at the list's folder) or drop the row") from None
        if not target.is_file():
            raise DatasetError(f"{where} names {image.strip()!r}, which is not a file; list image files")
        generator = str(row.get("generator") or path.stem).strip()
        group = row.get("group")
        parsed.append((label, generator, {"path": target, "stamp": f"{stat.st_size}:{stat.st_mtime_ns}",
                                          "group": None if group in (None, "") else str(group)}))
    entries = [Entry(subset, label, relative_or_absolute(extra["path"], base), extra["stamp"], group=extra["group"],
                     category=category)
               for (label, subset, category), (_, _, extra) in zip(share_reals(parsed), parsed)]
    return Dataset(base, "list", entries)


def relative_or_absolute(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix() if path.is_relative_to(base) else path.as_posix()


def list_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) of a CSV (header line first) or JSONL list."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"list {str(path)!r} cannot be read ({exc}); pass a UTF-8 CSV or JSONL file") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "path" not in reader.fieldnames or "label" not in reader.fieldnames:
            raise DatasetError(f"list {str(path)!r} has columns {reader.fieldnames}; it needs a header with path and "
                               "label (and optionally generator, group)")
        return [(i + 2, dict(row)) for i, row in enumerate(reader)]
    rows = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"list {str(path)!r} line {i} is not JSON ({exc}); write one object per line") from None
        if not isinstance(row, dict):
            raise DatasetError(f"list {str(path)!r} line {i} is not a JSON object with path and label")
        rows.append((i, row))
    return rows


def image_column_of(schema: pa.Schema, asked: str, where: str) -> str:
    """The column holding encoded images: ``asked``, else 'image'/'img', else the first binary or
    struct-with-bytes column; DatasetError naming the columns when there is none."""

    def holds_bytes(kind: pa.DataType) -> bool:
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            return True
        return pa.types.is_struct(kind) and any(kind.field(i).name == "bytes" for i in range(kind.num_fields))

    candidates = [name for name in schema.names if holds_bytes(schema.field(name).type)]
    if asked:
        if asked not in schema.names or asked not in candidates:
            raise DatasetError(f"{where}: column {asked!r} is not an image column (binary, or a struct with bytes); "
                               f"columns: {', '.join(schema.names)}")
        return asked
    for name in ("image", "img"):
        if name in candidates:
            return name
    if not candidates:
        raise DatasetError(f"{where} has no image column (binary, or a struct with bytes as Hugging Face saves "
                           f"images); its columns: {', '.join(schema.names)}; pass image_column=NAME if one holds images")
    return candidates[0]


def class_names(schema: pa.Schema, column: str) -> list[str] | None:
    """The ClassLabel names Hugging Face wrote for ``column`` into the schema's metadata, if any."""
    raw = (schema.metadata or {}).get(b"huggingface")
    try:
        features = json.loads(raw)["info"]["features"] if raw else {}
        names = features.get(column, {}).get("names")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return [str(n) for n in names] if isinstance(names, list) else None


def read_parquet(paths: list[Path], root: Path, image_column: str, label_column: str, name: str) -> Dataset:
    """Parquet files of one schema: images, labels and optional generator and group columns (without a
    generator column, one subset called ``name``)."""
    parsed: list[tuple[int, str, dict[str, Any]]] = []
    column = ""
    for path in paths:
        where = f"Parquet file {str(path)!r}"
        try:
            handle = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise DatasetError(f"{where} cannot be read ({str(exc).splitlines()[0]}); pass a Parquet dataset") from None
        schema = handle.schema_arrow
        column = image_column_of(schema, image_column, where)
        if label_column not in schema.names:
            raise DatasetError(f"{where} has no label column {label_column!r}; its columns: {', '.join(schema.names)}; "
                               "pass label_column=NAME")
        names = class_names(schema, label_column)
        extra = [c for c in ("generator", "group") if c in schema.names]
        stat = path.stat()
        stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
        relative = relative_or_absolute(path, root)
        for group_index in range(handle.num_row_groups):
            table = handle.read_row_group(group_index, columns=[label_column, *extra])
            labels = table.column(label_column).to_pylist()
            generators = table.column("generator").to_pylist() if "generator" in extra else [None] * len(labels)
            groups = table.column("group").to_pylist() if "group" in extra else [None] * len(labels)
            for i, (value, generator, group) in enumerate(zip(labels, generators, groups)):
                label = label_of(value, names)
                if label is None:
                    raise DatasetError(f"{where} row group {group_index} row {i}: label {value!r} is neither real nor "
                                       "fake; use 0/1 or real/fake (or Hugging Face ClassLabel names)")
                parsed.append((label, str(generator or name), {"path": relative, "stamp": stamp,
                                                                     "row": (group_index, i),
                                                                     "group": None if group in (None, "") else str(group)}))
    entries = [Entry(subset, label, extra["path"], extra["stamp"], extra["row"], extra["group"], category)
               for (label, subset, category), (_, _, extra) in zip(share_reals(parsed), parsed)]
    return Dataset(root, "parquet", entries, image_column=column)
