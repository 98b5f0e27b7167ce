"""Where figures were measured: CPU, memory, GPU, library versions and the facebench commit."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

#: The facebench.harness package's folder; its git checkout is the source tree measured.
PACKAGE_DIR = Path(__file__).resolve().parent.parent
GIT_TIMEOUT_S = 3.0


def environment() -> dict[str, Any]:
    """cpu_model, cpu_cores, cpu_cores_usable, memory_gb, gpu, gpu_count, gpu_memory_gb, torch,
    torch_threads, cuda, python, platform, machine, numpy, facebench, git_commit.

    Never raises: a field that cannot be read is None. Collected once per process (cached);
    each call returns a fresh copy, so callers may change it.
    """
    return dict(_collect())


@lru_cache(maxsize=1)
def _collect() -> dict[str, Any]:
    torch = _safe(_import_torch)
    cuda_ok = bool(torch is not None and _safe(torch.cuda.is_available))
    return {
        "cpu_model": _safe(cpu_model),
        "cpu_cores": _safe(os.cpu_count),
        "cpu_cores_usable": _safe(lambda: len(os.sched_getaffinity(0))),
        "memory_gb": _safe(memory_gb),
        "gpu": _safe(lambda: torch.cuda.get_device_name(0)) if cuda_ok else None,
        "gpu_count": _safe(torch.cuda.device_count) if cuda_ok else 0,
        "gpu_memory_gb": _safe(lambda: round(torch.cuda.get_device_properties(0).total_memory / 2**30, 2))
        if cuda_ok else None,
        "torch": _safe(lambda: torch.__version__),
        "torch_threads": _safe(lambda: torch.get_num_threads()),
        "cuda": _safe(lambda: torch.version.cuda),
        "python": _safe(platform.python_version),
        "platform": _safe(platform.platform),
        "machine": _safe(platform.machine) or None,
        "numpy": _safe(_numpy_version),
        "facebench": _safe(_facebench_version),
        "git_commit": _safe(git_commit),
    }


environment.cache_clear = _collect.cache_clear  # type: ignore[attr-defined]


def cpu_model() -> str | None:
    """The CPU's marketing name ("model name" in /proc/cpuinfo on Linux), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def memory_gb() -> float | None:
    """Physical memory in GiB (the host's; a container's cgroup limit may be lower)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) * 1024 / 2**30, 2)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 2)
    except (AttributeError, ValueError, OSError):
        return None


def git_commit(directory: Path | str = PACKAGE_DIR) -> str | None:
    """HEAD of the git checkout holding ``directory``, with "+dirty" if ``git status --porcelain``
    lists anything (untracked files included); None if it is not a checkout, git is missing or slow."""
    directory = Path(directory)
    # An installed copy may sit inside someone else's repository (a venv in a project);
    # only a checkout that tracks the package's own files names the facebench source.
    if not _git(directory, "ls-files", "--", "__init__.py"):
        return None
    head = _git(directory, "rev-parse", "HEAD")
    if not head:
        return None
    status = _git(directory, "status", "--porcelain")
    if status is None:
        return head
    return head + ("+dirty" if status else "")


def _git(directory: Path, *args: str) -> str | None:
    """Stripped stdout of ``git -C directory args``; None on any failure."""
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},  # never take the index lock of a live checkout
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:
        return None


def _import_torch():
    import torch

    return torch


def _numpy_version() -> str:
    import numpy

    return numpy.__version__


def _facebench_version() -> str:
    from ..contracts.version import __version__

    return __version__


def run_environment(run: dict[str, Any]) -> dict[str, Any]:
    """The environment a stored run recorded (``run["info"]["environment"]``; ``info`` may be the
    store's JSON text), as recorded; empty if there is none."""
    return _info_entry(run, "environment")


def run_calibration(run: dict[str, Any]) -> dict[str, Any]:
    """The calibration-workload figures a stored run recorded (``run["info"]["calibration"]``, see
    :func:`facebench.harness.run.timing.calibrate_machine`); empty for runs that have none."""
    return _info_entry(run, "calibration")


def with_current_names(env: dict[str, Any]) -> dict[str, Any]:
    """``env`` with schema-1 names mapped to today's: runs made before this module recorded
    ``processor``, ``cpu_count`` and the GPU's name in ``cuda``."""
    if "gpu" in env or "cpu_model" in env:
        return dict(env)
    return {**env, "cpu_model": env.get("processor"), "cpu_cores": env.get("cpu_count"), "gpu": env.get("cuda"),
            "cuda": None}


def _info_entry(run: dict[str, Any], key: str) -> dict[str, Any]:
    """``run["info"][key]`` as a dict (``info`` may be the store's JSON text); empty if absent."""
    info = run.get("info") or {}
    if isinstance(info, str):
        try:
            info = json.loads(info)
        except ValueError:
            info = {}
    return dict(info.get(key) or {}) if isinstance(info, dict) else {}
