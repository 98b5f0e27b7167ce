"""Where the runner's heavy work runs: in this process (local) or on a Ray cluster.

An executor does two things for :func:`~facebench.harness.run.runner.run_suite`: generate a corpus
from a :class:`~facebench.harness.data.suite.GeneratorSpec` into a path, and score a split of a
corpus with a fitted detector under a perturbation. Everything else (fitting, calibration,
metrics, the task cache, the store) stays in the driver. Every executor gives the same corpus
digest and the same scores for the same suite.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..contracts.errors import FacebenchError


class ExecutorError(FacebenchError):
    """An executor is unknown, or its runtime is missing or unreachable."""


class Executor(Protocol):
    name: str

    def generate_corpus(self, spec: Any, path: Path, progress: Any = None, *, overwrite: bool = False,
                        generator: Any = None, reals: Any = None) -> tuple[Any, dict]:
        """As :func:`facebench.harness.run.runner.generate_corpus`: (corpus, throughput)."""

    def score_split(self, detector: Any, split: Any, batch_size: int, label: str, perturbation: Any = None,
                    progress: Any = None, description: str = "") -> tuple[list[dict], np.ndarray, dict]:
        """As :func:`facebench.harness.run.runner.score_split`: (rows, scores, throughput)."""

    def close(self) -> None:
        """Release what the executor holds (nothing for local)."""


class LocalExecutor:
    """Today's behaviour: everything in this process, one batch at a time."""

    name = "local"

    def generate_corpus(self, spec, path, progress=None, *, overwrite=False, generator=None, reals=None):
        from .runner import generate_corpus

        return generate_corpus(spec, path, progress, overwrite=overwrite, generator=generator, reals=reals)

    def score_split(self, detector, split, batch_size, label, perturbation=None, progress=None, description=""):
        from .runner import CLEAN, score_split

        return score_split(detector, split, batch_size, label, perturbation or CLEAN, progress, description)

    def close(self) -> None:
        pass


def get_executor(name: str = "local", address: str | None = None, **options: Any) -> Executor:
    """The executor plug-in called ``name`` (built-ins: ``"local"`` and ``"ray"``; ``address``, for
    executors that take one: None starts a local Ray runtime, ``"auto"`` or ``"ray://host:10001"``
    connects to a cluster)."""
    from ..contracts import registry

    if name not in registry.names("executor"):
        raise ExecutorError(f"unknown executor {name!r}; expected one of {', '.join(registry.names('executor'))}")
    if name == "ray" and importlib.util.find_spec("ray") is None:
        raise ExecutorError("the ray executor needs Ray: pip install 'facebench[ray]' "
                            "(or pip install 'ray[data]>=2.9')")
    cls = registry.load("executor", name)
    if "address" in inspect.signature(cls).parameters:
        options["address"] = address
    elif address is not None:
        raise ExecutorError(f"--address is for the ray executor; add --executor ray (the {name} executor takes none)")
    return cls(**options)
