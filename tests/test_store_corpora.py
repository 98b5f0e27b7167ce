"""The store records each corpus of a run (label, digest, folder, cache key); older stores and
exports are read as their runs' ``info`` named the corpora."""

from __future__ import annotations

import json
import math
import sqlite3

from facebench.harness.data.corpus_record import CorpusRecord, cache_folder_name, cache_key_of, corpora_from_info
from facebench.harness.data.results import Results, export_json, load_results
from facebench.harness.data.store import SCHEMA_VERSION, Store, as_stored
from tests.test_store import METRIC, RUN, THROUGHPUT

CORPORA = [CorpusRecord("faces", "d1" * 32, "/data/corpora/faces-0123456789ab", "0123456789ab"),
           CorpusRecord("control", "d2" * 32, "/data/corpora/control-ba9876543210", "ba9876543210")]
SCHEMA_3_INFO = {"corpora": {"faces": "d1" * 32, "control": "d2" * 32},
                 "corpus_paths": {"faces": "/data/corpora/faces-0123456789ab", "control": "/elsewhere/control"}}


def test_a_run_s_corpora_round_trip_in_the_order_recorded(tmp_path):
    store = Store(tmp_path / "fb.sqlite")
    store.write_run(RUN, [METRIC], [THROUGHPUT], [], CORPORA)
    store.write_run({**RUN, "run_id": "r2"}, [], [])
    assert store.corpora("r1") == CORPORA
    assert store.corpora("r2") == []
    assert SCHEMA_VERSION == 5


def test_a_schema_3_store_gets_its_runs_corpora_from_their_info(tmp_path):
    path = tmp_path / "fb.sqlite"
    store = Store(path)
    store.write_run({**RUN, "run_id": "old", "info": SCHEMA_3_INFO}, [METRIC], [THROUGHPUT])
    with sqlite3.connect(path) as connection:  # back to schema 3: no corpora table
        connection.executescript("DROP TABLE corpora; UPDATE meta SET value = '3' WHERE key = 'schema_version';")
    upgraded = Store(path)
    assert upgraded.corpora("old") == [
        CorpusRecord("control", "d2" * 32, "/elsewhere/control", ""),  # not a corpora-cache folder name: no key
        CorpusRecord("faces", "d1" * 32, "/data/corpora/faces-0123456789ab", "0123456789ab"),
    ]
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    upgraded.write_run({**RUN, "run_id": "new"}, [], [], [], CORPORA[:1])
    assert upgraded.corpora("new") == CORPORA[:1] and len(upgraded.corpora("old")) == 2
    assert load_results(f"{path}:old").corpora == upgraded.corpora("old")


def test_cache_folder_names_and_keys():
    assert cache_folder_name("up-x", "0a1b") == "up-x-0a1b"
    assert cache_key_of("up-x", "/c/up-x-0a1b") == "0a1b"
    assert cache_key_of("up", "/c/other-0a1b") == "" and cache_key_of("up", "/c/up-") == ""
    assert CORPORA[0].cache_folder("/r/corpora").as_posix() == "/r/corpora/faces-0123456789ab"
    assert CorpusRecord("x", "d").cache_folder("/r") is None
    assert corpora_from_info({}) == [] and corpora_from_info("not a dict") == []


def test_results_without_recorded_corpora_read_them_from_the_run_info():
    results = Results({**RUN, "info": SCHEMA_3_INFO}, [], [], [])
    assert [c.label for c in results.corpora] == ["control", "faces"]
    assert results.corpora[1].key == "0123456789ab"


def test_the_json_export_keeps_the_corpora_and_an_older_export_falls_back_to_info(tmp_path):
    results = Results({**RUN, "info": {}}, [], [], [], corpora=CORPORA)
    path = export_json(results, tmp_path / "r.json")
    assert load_results(path).corpora == CORPORA
    data = json.loads(path.read_text())
    del data["corpora"]
    data["run"]["info"] = SCHEMA_3_INFO
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert [c.label for c in load_results(tmp_path / "old.json").corpora] == ["control", "faces"]


def test_as_stored_gives_rows_as_the_store_reads_them_back(tmp_path):
    store = Store(tmp_path / "fb.sqlite")
    metric = {**METRIC, "value": 1, "n_real": 10.0, "ci_low": math.nan, "extra": "dropped"}
    speed = {**THROUGHPUT, "seconds": 2, "images_per_s": math.nan, "round_images_per_s": (39, 41.5)}
    store.write_run(RUN, [metric], [speed], [{"task": "t", "message": "m"}])
    strip = lambda row: {k: v for k, v in row.items() if k != "run_id"}  # noqa: E731
    (stored_metric,) = store.metrics("r1")
    (stored_speed,) = store.throughput("r1")
    assert as_stored("metrics", metric) == strip(stored_metric)
    assert as_stored("throughput", speed) == strip(stored_speed)
    assert as_stored("errors", {"task": "t", "message": "m"}) == strip(store.errors("r1")[0])
    for row, stored in ((as_stored("metrics", metric), stored_metric), (as_stored("throughput", speed), stored_speed)):
        assert list(row) == list(strip(stored))
        assert all(type(v) is type(stored[k]) for k, v in row.items())  # noqa: E721
