"""File modes that respect the umask, for files and folders made by ``tempfile``.

``tempfile.mkstemp`` and ``mkdtemp`` create 0600 files and 0700 folders whatever the umask;
what facebench renames into place (corpora, exported JSON, converted networks) gets the mode
that a plain ``open``/``mkdir`` would have given it, so shared results folders stay shared.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _LOCK:  # elsewhere the only way to read it is to set it and set it back
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0666 less the umask."""
    return 0o666 & ~current_umask()


def default_dir_mode() -> int:
    """The mode ``mkdir`` gives a new folder: 0777 less the umask."""
    return 0o777 & ~current_umask()


def as_if_created_plainly(path: str | Path) -> None:
    """Give ``path`` (made by ``tempfile``) the mode a plain ``open``/``mkdir`` would have."""
    path = Path(path)
    os.chmod(path, default_dir_mode() if path.is_dir() else default_file_mode())
