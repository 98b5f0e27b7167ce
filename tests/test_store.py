import sqlite3

import pytest

from facebench.harness.data.store import SCHEMA_VERSION, Store, StoreError

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


def test_schema_1_store_is_upgraded_in_place(tmp_path):
    path = tmp_path / "fb.sqlite"
    with sqlite3.connect(path) as connection:  # the schema-1 tables, as facebench 0.1 wrote them
        connection.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('schema_version', '1');"
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, suite TEXT NOT NULL, started TEXT NOT NULL,"
            " finished TEXT NOT NULL, status TEXT NOT NULL, facebench_version TEXT NOT NULL, info TEXT NOT NULL);"
            "CREATE TABLE metrics (run_id TEXT NOT NULL, corpus TEXT NOT NULL, corpus_digest TEXT NOT NULL,"
            " generator TEXT NOT NULL, detector TEXT NOT NULL, artifact TEXT NOT NULL, metric TEXT NOT NULL,"
            " value REAL, n_real INTEGER NOT NULL, n_fake INTEGER NOT NULL);"
            "CREATE TABLE throughput (run_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,"
            " device TEXT NOT NULL, batch_size INTEGER NOT NULL, images INTEGER NOT NULL, seconds REAL NOT NULL,"
            " images_per_s REAL, latency_p50_ms REAL, latency_p95_ms REAL);"
            "INSERT INTO runs VALUES ('old', 's', 'a', 'b', 'ok', '0.1.0', '{}');"
            "INSERT INTO metrics VALUES ('old', 'c', 'd', 'g', 'spectrum', 'all', 'auc', 0.7, 5, 5);"
        )
    store = Store(path)
    (old,) = store.metrics("old")
    assert (old["value"], old["train_corpus"], old["perturbation"], old["ci_low"]) == (0.7, "c", "none", None)
    store.write_run({**RUN, "run_id": "new"}, [{**METRIC, "ci_low": 0.8, "ci_high": 0.95, "perturbation": "jpeg:75"}],
                    [{**THROUGHPUT, "latency_p99_ms": 40.0}])
    (new,) = store.metrics("new")
    assert (new["ci_low"], new["perturbation"], new["train_corpus"]) == (0.8, "jpeg:75", "c")
    assert store.throughput("new")[0]["latency_p99_ms"] == 40.0
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


def test_throughput_spread_round_trips(tmp_path):
    store = Store(tmp_path / "fb.sqlite")
    spread = {"rounds": 3, "images_per_s_q1": 38.0, "images_per_s_q3": 41.5, "round_images_per_s": [37.0, 40.0, 42.0]}
    store.write_run(RUN, [METRIC], [{**THROUGHPUT, **spread}, {**THROUGHPUT, "name": "old-style"}])
    with_spread, without = store.throughput("r1")
    assert {k: with_spread[k] for k in spread} == spread
    assert (without["rounds"], without["images_per_s_q1"], without["round_images_per_s"]) == (None, None, None)


def test_schema_2_store_is_upgraded_and_its_rows_stay_readable(tmp_path):
    path = tmp_path / "fb.sqlite"
    schema_2 = ("run_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, device TEXT NOT NULL,"
                " batch_size INTEGER NOT NULL, images INTEGER NOT NULL, seconds REAL NOT NULL, images_per_s REAL,"
                " latency_p50_ms REAL, latency_p95_ms REAL, latency_p99_ms REAL, peak_rss_mb REAL,"
                " decode_images_per_s REAL, error TEXT")
    with sqlite3.connect(path) as connection:  # the throughput table as schema 2 wrote it
        connection.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('schema_version', '2');"
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, suite TEXT NOT NULL, started TEXT NOT NULL,"
            " finished TEXT NOT NULL, status TEXT NOT NULL, facebench_version TEXT NOT NULL, info TEXT NOT NULL);"
            f"CREATE TABLE throughput ({schema_2});"
            "INSERT INTO runs VALUES ('old', 's', 'a', 'b', 'ok', '0.1.0', '{}');"
            "INSERT INTO throughput VALUES ('old', 'detector', 'dct @ c', 'cpu', 32, 64, 0.1, 640.0, 1.5, 1.6, 1.7,"
            " 500.0, 900.0, NULL);"
        )
    store = Store(path)
    (old,) = store.throughput("old")
    assert (old["images_per_s"], old["decode_images_per_s"], old["rounds"], old["round_images_per_s"]) == (
        640.0, 900.0, None, None)
    store.write_run({**RUN, "run_id": "new"}, [], [{**THROUGHPUT, "rounds": 2, "images_per_s_q1": 39.0,
                                                   "images_per_s_q3": 41.0, "round_images_per_s": [39.0, 41.0]}])
    (new,) = store.throughput("new")
    assert (new["images_per_s"], new["rounds"], new["images_per_s_q3"], new["round_images_per_s"]) == (
        40.0, 2, 41.0, [39.0, 41.0])
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
