"""Where the runner's heavy work runs: in this process (local) or on a Ray cluster.

An executor does two things for :func:`~facebench.harness.run.runner.run_suite`: generate a corpus
from a :class:`~facebench.harness.data.suite.GeneratorSpec` into a path, and score a split of a
corpus with a fitted detector under a perturbation. Everything else (fitting, calibration,
metrics, the task cache, the store) stays in the driver. Every executor gives the same corpus
digest and the same scores for the same suite.

The runner talks to every executor through :class:`Executor` only. Executors are found by name
(:func:`executor_class`); a module is imported only when its executor is asked for, so Ray stays
optional.
"""

from __future__ import annotations

import importlib.util
import inspect
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

from ..contracts.errors import FacebenchError
from ..data.corpus import Corpus
from ..data.suite import GeneratorSpec
from .corpora import generate_corpus
from .perturb import IDENTITY, Perturbation
from .scoring import score_split


class ExecutorError(FacebenchError):
    """An executor is unknown, or its runtime is missing or unreachable."""


class Executor(ABC):
    """What the runner asks of an executor. Both methods give what the in-process functions give
    (:func:`~facebench.harness.run.corpora.generate_corpus`,
    :func:`~facebench.harness.run.scoring.score_split`), wherever the work runs."""

    name: str

    @abstractmethod
    def generate_corpus(self, spec: GeneratorSpec, path: Path, progress: Progress | None = None, *,
                        overwrite: bool = False, generator: Any = None, reals: Any = None) -> tuple[Corpus, dict]:
        """Generate ``spec``'s corpus at ``path`` (``generator``/``reals``: sources already built,
        or None): (corpus, throughput)."""

    @abstractmethod
    def score_split(self, detector: Any, split: Corpus, batch_size: int, label: str,
                    perturbation: Perturbation = IDENTITY, progress: Progress | None = None,
                    description: str = "") -> tuple[list[dict], np.ndarray, dict]:
        """Score every image of ``split`` with the fitted ``detector``, ``batch_size`` images per
        call (:func:`~facebench.harness.run.scoring.batch_size_for`), backing off when out of
        memory: (rows, scores, throughput)."""

    def close(self) -> None:  # noqa: B027 (a no-op default that executors may override)
        """Release what the executor holds (nothing by default)."""


class LocalExecutor(Executor):
    """Everything in this process, one batch at a time."""

    name = "local"

    def generate_corpus(self, spec, path, progress=None, *, overwrite=False, generator=None, reals=None):
        return generate_corpus(spec, path, progress, overwrite=overwrite, generator=generator, reals=reals)

    def score_split(self, detector, split, batch_size, label, perturbation=IDENTITY, progress=None, description=""):
        return score_split(detector, split, batch_size, label, perturbation or IDENTITY, progress, description)


def executor_class(name: str) -> type[Executor]:
    """The executor class called ``name``; ExecutorError naming the known ones for another name."""
    from ..contracts import registry

    if name not in registry.names("executor"):
        raise ExecutorError(f"unknown executor {name!r}; expected one of {', '.join(registry.names('executor'))}")
    return registry.load("executor", name)


def get_executor(name: str = "local", address: str | None = None, **options: Any) -> Executor:
    """The executor plug-in called ``name`` (built-ins: ``"local"`` and ``"ray"``; ``address``, for
    executors that take one: None starts a local Ray runtime, ``"auto"`` or ``"ray://host:10001"``
    connects to a cluster)."""
    if name == "ray" and importlib.util.find_spec("ray") is None:
        raise ExecutorError("the ray executor needs Ray: pip install 'facebench[ray]' "
                            "(or pip install 'ray>=2.30')")
    cls = executor_class(name)
    if "address" in inspect.signature(cls).parameters:
        options["address"] = address
    elif address is not None:
        raise ExecutorError(f"--address is for the ray executor; add --executor ray (the {name} executor takes none)")
    return cls(**options)
