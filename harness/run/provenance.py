"""What produced a result: digests of the code and the files behind a plug-in's figures.

The task and corpus cache keys (:func:`facebench.harness.run.tasks.task_key`,
:func:`~facebench.harness.run.corpora.corpus_key`) include :func:`provenance`, so a result is reused
only while everything below is unchanged:

- **facebench** (:func:`facebench_digest`): its version and every ``.py`` file of its
  ``harness``, ``generators`` and ``detectors`` packages, except the harness modules that only
  read, store or present figures already measured (:data:`PRESENTATION_MODULES`). This is the
  code of every built-in plug-in and of the harness path from generator to metric row.
- **the plug-in's code** (:func:`code_digest`): for a built-in, the facebench digest; for a
  module inside a package, every file under its top-level package's folder; for a loose
  module (one ``.py`` file on ``sys.path``), the file and, followed through its ``import``
  statements, the sibling modules and packages of the same folder it imports; for a plug-in
  installed into site-packages, also every file its distribution records
  (``importlib.metadata`` ``files``).
- **the files it loads** (:func:`param_files`): every string parameter (also inside lists and
  tables) that names an existing *file*, relative to the working directory, by size and
  sha256; and the files the plug-in class names itself through an optional classmethod
  ``provenance_files(params) -> list[path]`` (the ``command`` detector names its program and
  the arguments that are files). Folders are not walked: a plug-in that reads a folder names
  its contents in its ``config()`` (``folder``'s ``content_digest``, ``diffusion``'s
  ``config_sha256``) or through ``provenance_files``.

facebench's own digest is computed once per process; any other file is read once per process
while its size, times and inode stay the same, so a key costs well under a millisecond for a
built-in and a few milliseconds for a plug-in package after its first.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import inspect
import site
import sys
import sysconfig
from functools import cache
from pathlib import Path
from typing import Any, Iterable

from ..contracts.files import file_digest, file_sha256  # noqa: F401 - provenance's public names
from ..contracts.version import __version__

#: facebench's packages whose code makes the figures.
FACEBENCH_PACKAGES = ("facebench.harness", "facebench.generators", "facebench.detectors")
#: Harness files (paths under harness/; a path ending in "/" is a whole folder) that only read, store
#: or present figures already measured: a change in them never changes a figure, so it does not
#: invalidate the caches. Any other module counts.
PRESENTATION_MODULES = frozenset({
    "cli.py", "report/", "data/environment.py", "data/results.py", "data/store.py", "report/matrix.py",
})
def _digest_of(named_files: dict[str, Path], *extra: str) -> str:
    """One sha256 over ``extra`` and each file's name and sha256, in name order."""
    hasher = hashlib.sha256()
    for text in extra:
        hasher.update(text.encode() + b"\0")
    for name in sorted(named_files):
        hasher.update(f"{name}\0{file_sha256(named_files[name])}\n".encode())
    return hasher.hexdigest()


def _is_skipped(relative: Path) -> bool:
    return any(part == "__pycache__" or part.startswith(".") for part in relative.parts) or relative.suffix == ".pyc"


def _folder_files(folder: Path, prefix: str, pattern: str = "*") -> dict[str, Path]:
    """Every file under ``folder`` matching ``pattern`` (no caches, no hidden files), named ``prefix/relative``."""
    out = {}
    for path in folder.rglob(pattern):
        relative = path.relative_to(folder)
        if not _is_skipped(relative) and path.is_file():
            out[f"{prefix}/{relative.as_posix()}"] = path
    return out


@cache
def facebench_digest() -> str:
    """facebench's version and the code of its harness (bar :data:`PRESENTATION_MODULES`), generators and detectors.

    Computed once per process: the code a process runs is the code it loaded at its start."""
    files: dict[str, Path] = {}
    for package in FACEBENCH_PACKAGES:
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            files.update(_folder_files(Path(location), package, "*.py"))
    return _digest_of({name: path for name, path in files.items() if not is_presentation(name)}, __version__)


def is_presentation(name: str) -> bool:
    """Whether ``name`` (``facebench.harness/relative/path.py``) is one of :data:`PRESENTATION_MODULES`."""
    prefix = "facebench.harness/"
    if not name.startswith(prefix):
        return False
    relative = name[len(prefix):]
    return any(relative == entry or (entry.endswith("/") and relative.startswith(entry)) for entry in PRESENTATION_MODULES)


def code_digest(cls: Any) -> str:
    """Digest of the source files of plug-in class ``cls`` (see the module's docstring for which)."""
    module_name = getattr(cls, "__module__", "") or ""
    if module_name == "facebench" or module_name.startswith("facebench."):
        return facebench_digest()
    module = sys.modules.get(module_name)
    files = plugin_files(module) if module is not None else {}
    if files:
        return _digest_of(files, module_name)
    try:  # defined where there is no file to read, e.g. in an interactive session
        return hashlib.sha256(inspect.getsource(cls).encode()).hexdigest()
    except (OSError, TypeError):
        return hashlib.sha256(f"{module_name}:{getattr(cls, '__qualname__', cls)}".encode()).hexdigest()


def plugin_files(module: Any) -> dict[str, Path]:
    """The files whose code makes up ``module``'s plug-in, by name (see the module's docstring)."""
    file = getattr(module, "__file__", None)
    if not file:
        return {}
    path = Path(file).resolve()
    top = module.__name__.partition(".")[0]
    files: dict[str, Path] = {}
    if "." in module.__name__ or hasattr(module, "__path__"):
        for location in getattr(sys.modules.get(top), "__path__", None) or []:
            if Path(location).is_dir():
                files.update(_folder_files(Path(location), top))
    elif not _in_site_packages(path):
        files.update(_loose_module_files(path))
    if _in_site_packages(path):
        files.update(_distribution_files(top))
    return files or {path.name: path}


def _loose_module_files(path: Path) -> dict[str, Path]:
    """A loose module and the modules and packages of its own folder that it imports, transitively."""
    folder, files, todo = path.parent, {}, [path]
    while todo:
        current = todo.pop()
        if current.name in files:
            continue
        files[current.name] = current
        for name in _imported_top_names(current):
            sibling, package = folder / f"{name}.py", folder / name
            if sibling.is_file():
                todo.append(sibling)
            elif (package / "__init__.py").is_file():
                files.update(_folder_files(package, name))
    return files


def _imported_top_names(path: Path) -> set[str]:
    """The top-level names of every absolute import in a Python file (none if it does not parse)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


@cache
def _site_folders() -> tuple[Path, ...]:
    folders = {sysconfig.get_paths().get(key) for key in ("purelib", "platlib")}
    folders.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    folders.add(site.getusersitepackages() if hasattr(site, "getusersitepackages") else None)
    return tuple(Path(f).resolve() for f in folders if f)


def _in_site_packages(path: Path) -> bool:
    return any(path.is_relative_to(folder) for folder in _site_folders())


@cache
def _distributions_of(top: str) -> tuple[str, ...]:
    return tuple(sorted(set(importlib.metadata.packages_distributions().get(top, ()))))


def _distribution_files(top: str) -> dict[str, Path]:
    """Every existing file recorded by the installed distribution(s) that provide top-level module ``top``."""
    files = {}
    for name in _distributions_of(top):
        if name == "facebench":
            continue
        try:
            recorded = importlib.metadata.distribution(name).files or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for entry in recorded:
            located = Path(entry.locate())
            if not _is_skipped(Path(str(entry))) and located.is_file():
                files[f"{name}:{entry}"] = located
    return files


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _existing_file(text: str) -> Path | None:
    if not text or "\n" in text or "\0" in text or len(text) > 4096:
        return None
    try:
        path = Path(text).expanduser()
        return path.resolve() if path.is_file() else None
    except (OSError, ValueError):
        return None


def param_files(cls: Any, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Size and sha256 of each file the plug-in ``cls`` configured with ``params`` loads:
    string parameters that name an existing file, and the class's own ``provenance_files(params)``."""
    found = [path for path in map(_existing_file, _strings(params)) if path is not None]
    named = getattr(cls, "provenance_files", None)
    if callable(named):
        found += [Path(p).resolve() for p in named(params) if Path(p).is_file()]
    return {str(path): file_digest(path) for path in sorted(set(found))}


def provenance(cls: Any, params: dict[str, Any]) -> dict[str, Any]:
    """What a cache key must cover beyond names and parameters: facebench's code and version,
    the plug-in's code, and the files it loads."""
    return {"facebench": facebench_digest(), "code": code_digest(cls), "files": param_files(cls, params)}
