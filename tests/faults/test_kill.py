"""Issue 9, item 5: ``kill -9`` at any stage costs no data and no control.

A tiny suite (64 px) runs in a subprocess through the facebench CLI, with plug-ins that pause
before each batch (``slow_plugins.py``) so the kill lands where it should: (a) while the
corpus is being generated, once the hidden partial folder holds images; (b) while scoring,
once the first task result is cached. Rerunning the same command then gives the corpus
digest and the metric values of an uninterrupted run made in another folder, no folder opens
as a corpus without being complete, and the store reads. (c) A store write killed midway
leaves the store as it was: a run and its rows are one SQLite transaction.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from facebench.harness.data.corpus import Corpus, CorpusError, verify
from facebench.harness.data.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")

HERE = Path(__file__).resolve().parent
PAUSE = "0.2"  # seconds before each batch of the stage a run is killed in

SUITE = """
name = "killed"
[bootstrap]
resamples = 50
[protocols]
perturbations = ["jpeg:50", "blur:1"]
[[generators]]
name = "slow_parametric"
label = "faces"
count = 12
batch_size = 2
[generators.params]
resolution = 64
artifacts = "upsampling:0.5"
camera = false
[[detectors]]
name = "slow_spectrum"
batch_size = 4
"""
TASKS = 3  # one detector x one corpus x (clean + 2 perturbations)


def start(root: Path, stage: str = "", pause: str = PAUSE) -> subprocess.Popen:
    (root / "suite.toml").write_text(SUITE)
    command = [sys.executable, str(HERE / "slow_plugins.py"), "run", str(root / "suite.toml"),
               "--results", str(root / "results"), "--no-progress", "--no-report"]
    env = {**os.environ, f"FACEBENCH_FAULTS_PAUSE_{stage}": pause} if stage else dict(os.environ)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)


def finish(process: subprocess.Popen, timeout: float = 120) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return output


def wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the run ended before {what}:\n{process.stdout.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def results_of(results: Path) -> tuple[dict[str, str], list[tuple]]:
    """(corpus digests, metric rows without run ids) of the one run stored under ``results``."""
    store = Store(results / "facebench.sqlite")
    (run,) = store.runs()
    assert run["status"] == "ok"
    import json

    digests = json.loads(run["info"])["corpora"]
    nan = lambda v: "nan" if isinstance(v, float) and math.isnan(v) else v  # noqa: E731
    rows = sorted((tuple(nan(v) for k, v in sorted(row.items()) if k != "run_id") for row in store.metrics(run["run_id"])),
                  key=repr)
    return digests, rows


def assert_no_half_corpus(corpora: Path) -> None:
    """Every folder under ``corpora`` (hidden ones too) is a complete, verified corpus or does not open."""
    for folder in corpora.iterdir():
        try:
            corpus = Corpus.open(folder)
        except CorpusError:
            assert folder.name.startswith("."), f"{folder} is visible but does not open as a corpus"
            continue
        assert verify(folder).ok and len(corpus) == corpus.meta["counts"]["images"] == 24


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[dict[str, str], list[tuple]]:
    """The uninterrupted run, in its own folder."""
    root = tmp_path_factory.mktemp("uninterrupted")
    finish(start(root))
    return results_of(root / "results")


def test_kill_during_corpus_generation_then_rerun(tmp_path, reference):
    corpora = tmp_path / "results" / "corpora"
    process = start(tmp_path, "GENERATE")
    wait_for(lambda: corpora.is_dir() and any(corpora.glob(".*partial*/images/*/*.png")), process, "the first images")
    kill(process)
    (partial,) = corpora.iterdir()
    assert partial.name.startswith(".") and ".partial-" in partial.name  # killed mid-way: only the hidden folder
    with pytest.raises(CorpusError, match="not a complete corpus"):
        Corpus.open(partial)
    assert not (tmp_path / "results" / "facebench.sqlite").exists() or Store(tmp_path / "results" / "facebench.sqlite").runs() == []

    finish(start(tmp_path))
    assert results_of(tmp_path / "results") == reference
    assert_no_half_corpus(corpora)
    assert not partial.exists()  # the killed writer's folder is cleared by the next writer of that corpus
    assert not [p for p in corpora.iterdir() if p.name.startswith(".")]


def test_kill_during_scoring_then_rerun_resumes(tmp_path, reference):
    tasks = tmp_path / "results" / "tasks"
    process = start(tmp_path, "SCORE")
    wait_for(lambda: tasks.is_dir() and any(tasks.glob("*.json")), process, "the first cached task")
    kill(process)
    done = list(tasks.glob("*.json"))
    assert 1 <= len(done) < TASKS  # killed while scoring, not after
    store = tmp_path / "results" / "facebench.sqlite"
    assert not store.exists() or Store(store).runs() == []  # a killed run stores nothing, not half a run

    output = finish(start(tmp_path))
    assert f"reused {len(done)} of {TASKS} tasks" in output  # resumed: what was measured is kept
    assert results_of(tmp_path / "results") == reference
    assert_no_half_corpus(tmp_path / "results" / "corpora")


WRITER = """
import sys, time
from pathlib import Path
from facebench.harness.data.store import Store

store, ready = Store(sys.argv[1]), Path(sys.argv[2])
run = {"run_id": "r2", "suite": "s", "started": "t", "finished": "t", "status": "ok", "facebench_version": "0",
       "info": {}}
metric = {"corpus": "c", "corpus_digest": "d", "generator": "g", "detector": "x", "artifact": "all", "metric": "auc",
          "value": 0.5, "n_real": 1, "n_fake": 1}

def metrics():
    for i in range(1000):
        if i == 500:  # half the rows handed to SQLite, inside the open transaction
            ready.write_text("now")
            time.sleep(60)
        yield metric

store.write_run(run, metrics(), [])
"""


def test_kill_during_a_store_write_leaves_the_store_as_it_was(tmp_path):
    path = tmp_path / "facebench.sqlite"
    first = {"run_id": "r1", "suite": "s", "started": "t", "finished": "t", "status": "ok", "facebench_version": "0", "info": {}}
    Store(path).write_run(first, [{"corpus": "c", "corpus_digest": "d", "generator": "g", "detector": "x",
                                   "artifact": "all", "metric": "auc", "value": 0.9, "n_real": 1, "n_fake": 1}], [])
    ready = tmp_path / "ready"
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(path), str(ready)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(ready.exists, process, "the write to be half done")
    kill(process)
    assert path.with_name(path.name + "-journal").exists()  # killed inside a write transaction: a hot journal
    store = Store(path)
    assert [r["run_id"] for r in store.runs()] == ["r1"]
    assert store.metrics("r2") == [] and [m["value"] for m in store.metrics("r1")] == [0.9]
    store.write_run({**first, "run_id": "r3"}, [], [])  # and it still takes writes
    assert [r["run_id"] for r in store.runs()] == ["r1", "r3"]
