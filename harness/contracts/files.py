"""Streamed sha256 of files, remembered while a file is unchanged."""

import hashlib
import os
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20
_sha256_by_signature: dict[tuple, str] = {}


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, read in 1 MiB chunks; remembered while its size, times and inode are the same."""
    path = Path(path)
    stat = path.stat()
    signature = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev)
    known = _sha256_by_signature.get(signature)
    if known is not None:
        return known
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            hasher.update(chunk)
    _sha256_by_signature[signature] = digest = hasher.hexdigest()
    return digest


def file_digest(path: str | Path) -> dict[str, Any]:
    """``{"size": bytes, "sha256": hex}`` of a file."""
    return {"size": Path(path).stat().st_size, "sha256": file_sha256(path)}
