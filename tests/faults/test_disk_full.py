"""Issue 9, item 6: a full disk is one clear error, and what was written before stays intact.

The corpus writer's file writes raise ``OSError(ENOSPC)`` after writing part of a file; the
store is capped with SQLite's ``max_page_count``, which makes SQLite itself answer
SQLITE_FULL ("database or disk is full"), as it does on a full disk; the task cache's writes
raise ENOSPC.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facebench.harness.data import corpus as corpus_module
from facebench.harness.cli import app
from facebench.harness.data.corpus import Corpus, CorpusError, verify, write_corpus
from facebench.harness.run.runner import run_suite
from facebench.harness.data.store import Store, StoreError
from facebench.harness.data.suite import parse_suite

from conftest import synthetic_batch

GEN = [{"name": "synthetic"}]


def disk_full_after(monkeypatch, files: int) -> None:
    """The corpus writer's ``files + 1``-th file write stops half way with ENOSPC, and so does every later one."""
    real = corpus_module._write_file
    written = []

    def write_file(path: Path, data: bytes) -> None:
        if len(written) >= files:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        written.append(path)
        real(path, data)

    monkeypatch.setattr(corpus_module, "_write_file", write_file)


@pytest.mark.parametrize("files", [0, 3])
def test_a_full_disk_while_writing_a_corpus_keeps_nothing_of_it_and_touches_nothing_else(tmp_path, monkeypatch, files):
    before = write_corpus(tmp_path / "before", [synthetic_batch(range(3), with_mask=True)], GEN)
    disk_full_after(monkeypatch, files)
    with pytest.raises(CorpusError) as info:
        write_corpus(tmp_path / "new", [synthetic_batch(range(3), with_mask=True)], GEN)
    text = str(info.value)
    assert str(tmp_path / "new") in text and "No space left on device" in text and "\n" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["before"]  # no corpus, no hidden partial folder
    assert verify(before.root).ok and Corpus.open(before.root).digest == before.digest


def test_a_full_disk_while_overwriting_a_corpus_keeps_the_old_one(tmp_path, monkeypatch):
    old = write_corpus(tmp_path / "c", [synthetic_batch(range(2))], GEN)
    disk_full_after(monkeypatch, 2)
    with pytest.raises(CorpusError, match="No space left on device"):
        write_corpus(tmp_path / "c", [synthetic_batch(range(5))], GEN, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]
    assert verify(old.root).ok and Corpus.open(old.root).digest == old.digest


def test_a_failed_swap_while_overwriting_puts_the_old_corpus_back(tmp_path, monkeypatch):
    import os

    old = write_corpus(tmp_path / "c", [synthetic_batch(range(2))], GEN)
    real, calls = os.replace, []

    def replace(source, target):
        calls.append(source)
        if len(calls) == 2:  # the old corpus was moved aside; the new one cannot take its place
            raise OSError(errno.EIO, "Input/output error")
        real(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(CorpusError, match="Input/output error"):
        write_corpus(tmp_path / "c", [synthetic_batch(range(5))], GEN, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]
    assert verify(old.root).ok and Corpus.open(old.root).digest == old.digest


def test_a_full_disk_while_writing_the_manifest(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(CorpusError, match="cannot write the corpus: No space left on device"):
        write_corpus(tmp_path / "c", [synthetic_batch(range(2))], GEN)
    assert list(tmp_path.iterdir()) == []


def test_cli_generate_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    disk_full_after(monkeypatch, 1)
    result = CliRunner().invoke(app, ["generate", "parametric", "--n", "2", "-p", "resolution=64", "--out", str(tmp_path / "c")])
    assert result.exit_code == 1 and "No space left on device" in result.stderr and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def full_store(monkeypatch):
    """Every store connection from now on may not grow the file by a single page."""
    real = sqlite3.connect

    def connect(*args, **kwargs):
        connection = real(*args, **kwargs)
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {max(pages, 1)}")
        return connection

    monkeypatch.setattr("facebench.harness.data.store.sqlite3.connect", connect)


RUN = {"run_id": "r1", "suite": "s", "started": "t", "finished": "t", "status": "ok", "facebench_version": "0", "info": {}}
METRIC = {"corpus": "c", "corpus_digest": "d", "generator": "g", "detector": "x", "artifact": "all", "metric": "auc",
          "value": 0.5, "n_real": 1, "n_fake": 1}


def test_a_full_disk_while_writing_the_store_keeps_the_runs_before(tmp_path, request):
    store = Store(tmp_path / "facebench.sqlite")
    store.write_run(RUN, [METRIC] * 3, [])
    request.getfixturevalue("full_store")
    with pytest.raises(StoreError) as info:
        store.write_run({**RUN, "run_id": "r2"}, [METRIC] * 2000, [])
    text = str(info.value)
    assert "database or disk is full" in text and "run r2 was not stored" in text and str(store.path) in text
    assert [r["run_id"] for r in store.runs()] == ["r1"]
    assert len(store.metrics("r1")) == 3 and store.metrics("r2") == []


SUITE = {
    "name": "full",
    "bootstrap": {"resamples": 0},
    "generators": [{"name": "parametric", "count": 8, "batch_size": 8,
                    "params": {"resolution": 64, "artifacts": "upsampling:0.5", "camera": False}}],
    "detectors": [{"name": "spectrum"}],
}


def test_a_run_whose_store_is_full_loses_nothing_a_rerun_cannot_reuse(tmp_path, request):
    suite = parse_suite(SUITE, "full.toml")
    first = run_suite(suite, tmp_path, show_progress=False)
    request.getfixturevalue("full_store")
    with pytest.raises(StoreError, match="database or disk is full"):
        run_suite(suite, tmp_path, show_progress=False)
    request.getfixturevalue("monkeypatch").undo()  # space is freed
    store = Store(tmp_path / "facebench.sqlite")
    assert [r["run_id"] for r in store.runs()] == [first.run["run_id"]]
    again = run_suite(suite, tmp_path, show_progress=False)
    assert again.cached_tasks == 1 and again.errors == []  # the measured task came back from the cache
    assert len(store.runs()) == 2
    values = lambda result: sorted((m["metric"], m["artifact"], repr(m["value"])) for m in result.metrics)  # noqa: E731
    assert values(again) == values(first)


def test_a_task_cache_on_a_full_disk_is_a_warning_and_the_run_completes(tmp_path, monkeypatch):
    real = Path.write_text

    def write_text(self, *args, **kwargs):
        if self.parent.name == "tasks":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    result = run_suite(parse_suite(SUITE, "full.toml"), tmp_path, show_progress=False)
    assert result.errors == [] and result.run["status"] == "ok" and result.metrics
    (warning,) = result.warnings
    assert "result not cached" in warning["message"] and "No space left on device" in warning["message"]
    assert list((tmp_path / "tasks").iterdir()) == []  # no temporary file left behind


def test_stale_partial_folders_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    import subprocess
    import sys

    from facebench.harness.data.corpus import _partial_prefix, remove_stale_partials

    target = tmp_path / "corpus"
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)  # that process has exited
    dead = tmp_path / f"{_partial_prefix(target)}{dead_pid}-abc"
    live = tmp_path / f"{_partial_prefix(target)}{os.getpid()}-def"
    other_host = tmp_path / f".corpus.partial-elsewhere-{dead_pid}-ghi"
    for folder in (dead, live, other_host):
        (folder / "images").mkdir(parents=True)
    assert remove_stale_partials(target) == [dead]
    assert not dead.exists() and live.exists() and other_host.exists()
