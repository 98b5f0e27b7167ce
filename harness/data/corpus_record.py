"""What a run records of each corpus it used: label, content digest, folder and cache key.

A corpus has two names: its ``digest`` (of its content: what compare matches runs by) and its
cache ``key`` (of the config that made it: the corpora cache keeps it in the folder
``LABEL-KEY``, :func:`cache_folder_name`). The store keeps both with the folder, so a report
finds a corpus's images without scanning folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CorpusRecord:
    """One corpus of a run."""

    #: The corpus's label in the suite (a generator entry's label).
    label: str
    #: The digest of its content (``corpus.json``'s ``digest``).
    digest: str
    #: The folder it was in when the run used it ("" when not recorded).
    path: str = ""
    #: The cache key of the config that made it ("" when not known).
    key: str = ""

    def cache_folder(self, corpora_dir: str | Path) -> Path | None:
        """Where a corpora cache ``corpora_dir`` keeps this corpus (None when its key is unknown)."""
        return Path(corpora_dir) / cache_folder_name(self.label, self.key) if self.key else None


def cache_folder_name(label: str, key: str) -> str:
    """The folder name under which the corpora cache keeps the corpus ``label`` made by config ``key``."""
    return f"{label}-{key}"


def cache_key_of(label: str, folder: str | Path) -> str:
    """The config key in a corpora-cache folder's name (:func:`cache_folder_name`); "" for another name."""
    name, prefix = Path(folder).name, f"{label}-"
    return name[len(prefix):] if name.startswith(prefix) and len(name) > len(prefix) else ""


def corpora_from_info(info: Any) -> list[CorpusRecord]:
    """The corpora a run record's ``info`` names (``corpora``: label -> digest, ``corpus_paths``:
    label -> folder), as runs before the store's corpora table (schema 4) recorded them; the key
    is read from a corpora-cache folder's name."""
    info = info if isinstance(info, dict) else {}
    digests = info.get("corpora") if isinstance(info.get("corpora"), dict) else {}
    paths = info.get("corpus_paths") if isinstance(info.get("corpus_paths"), dict) else {}
    records = []
    for label in sorted(set(digests) | set(paths)):
        path = str(paths.get(label) or "")
        records.append(CorpusRecord(str(label), str(digests.get(label) or ""), path,
                                    cache_key_of(str(label), path) if path else ""))
    return records
