import sqlite3

import pytest

from facebench.harness.store import Store, StoreError

RUN = {
    "run_id": "r1", "suite": "s", "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:01:00+00:00",
    "status": "ok", "facebench_version": "0.1.0", "info": {"k": "v"},
}
METRIC = {
    "corpus": "c", "corpus_digest": "d", "generator": "g", "detector": "spectrum", "artifact": "all",
    "metric": "auc", "value": 0.9, "n_real": 10, "n_fake": 10,
}
THROUGHPUT = {
    "kind": "detector", "name": "spectrum", "device": "cpu", "batch_size": 8, "images": 20, "seconds": 0.5,
    "images_per_s": 40.0, "latency_p50_ms": 25.0, "latency_p95_ms": 30.0,
}


def test_round_trip(tmp_path):
    store = Store(tmp_path / "results" / "fb.sqlite")
    store.write_run(RUN, [METRIC], [THROUGHPUT], [{"task": "t", "message": "m"}])
    assert store.run()["run_id"] == "r1"
    assert store.metrics("r1")[0]["value"] == 0.9
    assert store.throughput("r1")[0]["images_per_s"] == 40.0
    assert store.errors("r1") == [{"run_id": "r1", "task": "t", "message": "m"}]


def test_a_failing_write_stores_nothing(tmp_path):
    store = Store(tmp_path / "fb.sqlite")
    broken = dict(METRIC)
    del broken["value"]
    with pytest.raises(KeyError):
        store.write_run(RUN, [METRIC, broken], [THROUGHPUT])
    assert store.runs() == []
    assert store.metrics("r1") == []


def test_no_store_yet_and_unknown_run(tmp_path):
    store = Store(tmp_path / "fb.sqlite")
    with pytest.raises(StoreError, match="no runs stored yet"):
        store.run()
    store.write_run(RUN, [], [])
    with pytest.raises(StoreError, match="no run 'zz'"):
        store.run("zz")


def test_garbage_file_is_a_clear_error(tmp_path):
    path = tmp_path / "fb.sqlite"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a readable facebench store"):
        Store(path).write_run(RUN, [], [])


def test_newer_schema_is_refused(tmp_path):
    store = Store(tmp_path / "fb.sqlite")
    store.write_run(RUN, [], [])
    with sqlite3.connect(store.path) as connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="newer"):
        store.runs()
