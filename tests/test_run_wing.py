"""Issue 16: the run wing in pieces. Its modules import no one's private names and form no import
cycle (lazy imports included); the runner reaches generation and scoring only through an
:class:`Executor`; the batch size is decided by one function and the out-of-memory back-off
returns the new size; the timing phase bypasses a detector's caches through its ``uncached()``."""

from __future__ import annotations

import ast
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from facebench.harness.data.suite import DetectorSpec, parse_suite
from facebench.harness.contracts import registry
from facebench.harness.run.executors import Executor, ExecutorError, LocalExecutor, executor_class
from facebench.harness.run.runner import run_suite
from facebench.harness.run.scoring import Backoff, batch_size_for, score_images
from facebench.harness.run.throughput import time_detector, uncached
from facebench.harness.run.timing import ThroughputMeter

RUN = Path(__file__).resolve().parents[1] / "harness" / "run"


def own_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module below facebench.harness.run or another facebench module, names) of every import in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            target = "." * node.level + (node.module or "")
            out.append((target, [alias.name for alias in node.names]))
    return out


def run_module(target: str) -> str | None:
    """The run-wing module a relative import made from ``harness/run/x.py`` names, or None outside the wing."""
    if target.startswith("..") or target == ".":
        return None
    return target[1:].split(".")[0]


def test_no_run_module_imports_a_private_name():
    wrong = [f"{path.name}: from {target} import {name}"
             for path in sorted(RUN.glob("*.py")) for target, names in own_imports(path)
             for name in names if name.startswith("_") and not name.startswith("__")]
    assert not wrong, wrong


def test_the_run_wing_has_no_import_cycle():
    graph = {path.stem: {run_module(t) for t, _ in own_imports(path)} - {None, path.stem}
             for path in RUN.glob("*.py")}

    def reaches(start: str, goal: str, seen: set) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(module for module in graph if reaches(module, module, set()))
    assert not cycles, f"modules on an import cycle: {cycles}"
    assert "runner" not in graph["executors"] and "ray_executor" not in graph["executors"]


def test_every_executor_implements_the_interface():
    for name in registry.names("executor"):
        if name == "ray":
            pytest.importorskip("ray")
        cls = executor_class(name)
        assert issubclass(cls, Executor) and cls.name == name
    with pytest.raises(ExecutorError, match="unknown executor 'dask'; expected one of local, ray"):
        executor_class("dask")


SUITE = {
    "name": "wing",
    "bootstrap": {"resamples": 0},
    "throughput": {"measure": False},
    "generators": [{"name": "parametric", "count": 8, "batch_size": 8,
                    "params": {"resolution": 64, "artifacts": "upsampling:0.5", "camera": False}}],
    "detectors": [{"name": "spectrum", "batch_size": 3}],
}


class Recording(LocalExecutor):
    """The local executor, noting what the runner asked of it."""

    def __init__(self):
        self.calls = []

    def generate_corpus(self, spec, path, *args, **kwargs):
        self.calls.append(("generate", spec.label))
        return super().generate_corpus(spec, path, *args, **kwargs)

    def score_split(self, detector, split, batch_size, label, *args, **kwargs):
        self.calls.append(("score", label, batch_size))
        return super().score_split(detector, split, batch_size, label, *args, **kwargs)


def test_the_runner_generates_and_scores_through_its_executor(tmp_path):
    executor = Recording()
    result = run_suite(parse_suite(SUITE, "wing.toml"), tmp_path, show_progress=False, executor=executor)
    assert result.errors == [] and result.metrics
    assert executor.calls == [("generate", "parametric"), ("score", "spectrum", 3)]


class Chunked:
    batch_size = 16


def test_the_batch_size_is_the_suites_else_the_detectors_else_32():
    assert batch_size_for(DetectorSpec("d", "d", batch_size=5), Chunked()) == 5
    assert batch_size_for(DetectorSpec("d", "d"), Chunked()) == 16
    assert batch_size_for(DetectorSpec("d", "d"), object()) == 32


class RunsOutAbove:
    """Runs out of memory on calls of more than ``limit`` images."""

    def __init__(self, limit: int):
        self.limit, self.sizes = limit, []

    def score(self, images):
        self.sizes.append(len(images))
        if len(images) > self.limit:
            raise RuntimeError("CUDA out of memory. Tried to allocate 1 GiB")
        return np.zeros(len(images))


def test_the_back_off_returns_the_new_size_and_what_happened():
    detector = RunsOutAbove(limit=3)
    images = np.zeros((10, 4, 4, 3), np.uint8)
    scores, size, backoff = score_images(detector, images, 8, ThroughputMeter(), "d")
    assert size == 2 and detector.sizes == [8, 4, 2, 2, 2, 2, 2]
    assert sum(len(s) for s in scores) == 10
    assert backoff == Backoff(8, "RuntimeError: CUDA out of memory. Tried to allocate 1 GiB")
    assert backoff.warning(size) == ("out of memory at batch size 8 (RuntimeError: CUDA out of memory. "
                                     "Tried to allocate 1 GiB); backed off to batch size 2")
    _, again, none = score_images(detector, images[:4], size, ThroughputMeter(), "d")
    assert again == 2 and none is None  # the caller goes on at the smaller size, with nothing new to say


class Cached:
    """A detector with a cache that its ``uncached()`` block turns off."""

    device = "cpu"

    def __init__(self):
        self.bypassing = 0
        self.calls_outside = 0

    @contextmanager
    def uncached(self):
        self.bypassing += 1
        try:
            yield
        finally:
            self.bypassing -= 1

    def score(self, images):
        self.calls_outside += not self.bypassing
        return np.zeros(len(images))


def test_the_timing_phase_calls_inside_the_detectors_uncached_block(tmp_path):
    from facebench.harness.run.corpora import generate_corpus

    spec = parse_suite(SUITE, "wing.toml").generators[0]
    corpus, _ = generate_corpus(spec, tmp_path / "corpus")
    detector = Cached()
    figures = time_detector(detector, corpus, 4)
    assert figures["rounds"] >= 1 and detector.calls_outside == 0 and detector.bypassing == 0
    with uncached(object()):  # a detector without the hook: nothing happens
        pass


def test_the_eye_detectors_uncached_block_bypasses_the_localiser_cache(monkeypatch):
    from facebench.detectors import localise
    from facebench.harness.contracts import registry

    calls = []
    monkeypatch.setattr(localise, "locate_one", lambda image, names: calls.append(1))
    monkeypatch.setattr(localise, "resolve_backends", lambda backend: ["builtin"])
    localise.clear_cache()
    detector = registry.create("detector", "eye_position")
    image = np.zeros((1, 64, 64, 3), np.uint8)
    localise.locate_eyes(image)
    with uncached(detector):
        localise.locate_eyes(image)
    localise.locate_eyes(image)
    assert len(calls) == 2  # the block found it again; after it, the cache serves it
    localise.clear_cache()


def test_a_run_id_carries_the_time_the_run_started_as_facebench_runs_shows_it():
    from facebench.harness.data.store import run_summary
    from facebench.harness.run.runner import run_record

    run = run_record("s", "2026-03-01T09:00:05+00:00", "ok", {})  # runs record UTC times
    assert run["run_id"].startswith("20260301T090005Z-") and run["finished"] > run["started"]
    assert run_summary({**run, "info": {}})["date"] == "2026-03-01 09:00:05"
    assert run_record("s", "2026-03-01T10:00:05+01:00", "ok", {})["run_id"].startswith("20260301T090005Z-")
