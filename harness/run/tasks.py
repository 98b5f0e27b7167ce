"""Tasks (one detector, trained on one corpus, tested on one corpus under one perturbation):
what one yields, the key naming its cached result, and the task cache on disk."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Collection

import numpy as np

from ..data.corpus import Corpus
from ..data.suite import DetectorSpec, Suite
from .provenance import provenance

#: Bumped when task results change meaning, so cached tasks of an older harness are measured again.
TASK_FORMAT = 2  # 2: thresholds calibrated per row (all, each artifact); an ap_chance row


@dataclass
class Evaluation:
    """What one detector, trained on one corpus, did on one test corpus under one perturbation."""

    metrics: list[dict[str, Any]]
    throughput: dict[str, Any] | None
    scores: list[dict[str, Any]] = field(repr=False)
    cached: bool = False
    #: What went wrong but was recovered from, e.g. the batch size backed off after running out of memory.
    warnings: list[str] = field(default_factory=list)


def task_name(detector: str, train: str, test: str, perturbation: str) -> str:
    """How a run names a task in its errors and warnings."""
    name = f"detect {detector} on {test}"
    if train != test:
        name += f" (trained on {train})"
    return name if perturbation == "none" else f"{name} under {perturbation}"


def task_key(spec: DetectorSpec, detector_cls: Any, train: Corpus, test: Corpus, perturbation: str, suite: Suite,
             labels: tuple[str, str]) -> str:
    """Content hash naming one cached task result: the detector's name, version, parameters,
    code and the files it loads (:func:`~facebench.harness.run.provenance.provenance`), facebench's
    code and version, the corpora's content and the protocol settings."""
    content = {
        "detector": spec.name, "label": spec.label, "version": str(getattr(detector_cls, "version", "?")),
        "params": spec.params, "batch_size": spec.batch_size, "train": train.digest, "test": test.digest,
        "corpus_labels": labels, "perturbation": perturbation, "split": asdict(suite.split),
        "bootstrap": asdict(suite.bootstrap), "sensitivity": suite.protocols.sensitivity, "harness": TASK_FORMAT,
        "provenance": provenance(detector_cls, spec.params),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


class TaskCache:
    """Finished task results as JSON files under ``root``, written atomically, so a killed run
    resumes where it stopped and a re-run reuses what it already measured."""

    def __init__(self, root: Path, enabled: bool = True, fresh_detectors: Collection[str] = ()):
        self.root = root
        self.enabled = enabled
        #: Labels of detectors whose tasks are measured again (and cached anew) even when cached.
        self.fresh_detectors = frozenset(fresh_detectors)

    def load(self, key: str, detector: str | None = None) -> Evaluation | None:
        """The cached result named ``key``; None when there is none, it is damaged, or the
        cache is off for every detector or for ``detector`` (a label)."""
        path = self.root / f"{key}.json"
        if not self.enabled or detector in self.fresh_detectors or not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            return Evaluation(data["metrics"], data["throughput"], data["scores"], cached=True,
                              warnings=list(data.get("warnings", [])))
        except (OSError, ValueError, KeyError):
            return None  # a damaged entry is measured again

    def save(self, key: str, evaluation: Evaluation) -> str | None:
        """Cache ``evaluation``; returns why it could not be cached (e.g. the disk is full), or None.

        A failure to cache loses nothing of this run: the result is still used, only not reused later.
        """
        if not self.enabled:
            return None
        data = {"metrics": evaluation.metrics, "throughput": evaluation.throughput, "scores": evaluation.scores,
                "warnings": evaluation.warnings}
        temporary = self.root / f".{key}.{os.getpid()}.tmp"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(data, default=_json_default))
            os.replace(temporary, self.root / f"{key}.json")
        except OSError as exc:
            try:
                temporary.unlink(missing_ok=True)
            except OSError:
                pass
            return f"result not cached in {self.root} ({exc.strerror or exc}); a rerun measures it again"
        return None


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
