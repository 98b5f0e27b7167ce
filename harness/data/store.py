"""The results store: one SQLite file; a run and all its rows land in one transaction."""

from __future__ import annotations

import json
import math
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, Sequence

from ..contracts.errors import FacebenchError, UsageError
from .corpus_record import CorpusRecord, corpora_from_info

SCHEMA_VERSION = 5

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    suite TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    status TEXT NOT NULL,
    facebench_version TEXT NOT NULL,
    info TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    corpus TEXT NOT NULL,
    corpus_digest TEXT NOT NULL,
    generator TEXT NOT NULL,
    detector TEXT NOT NULL,
    artifact TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    n_real INTEGER NOT NULL,
    n_fake INTEGER NOT NULL,
    train_corpus TEXT NOT NULL DEFAULT '',
    perturbation TEXT NOT NULL DEFAULT 'none',
    ci_low REAL,
    ci_high REAL
);
CREATE TABLE IF NOT EXISTS throughput (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    device TEXT NOT NULL,
    batch_size INTEGER NOT NULL,
    images INTEGER NOT NULL,
    seconds REAL NOT NULL,
    images_per_s REAL,
    latency_p50_ms REAL,
    latency_p95_ms REAL,
    latency_p99_ms REAL,
    peak_rss_mb REAL,
    decode_images_per_s REAL,
    error TEXT,
    rounds INTEGER,
    images_per_s_q1 REAL,
    images_per_s_q3 REAL,
    round_images_per_s TEXT,
    round_images_per_unit TEXT
);
CREATE TABLE IF NOT EXISTS errors (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    task TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS corpora (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    label TEXT NOT NULL,
    digest TEXT NOT NULL,
    path TEXT NOT NULL,
    corpus_key TEXT NOT NULL
);
"""

METRIC_COLUMNS = (
    "corpus", "corpus_digest", "generator", "detector", "artifact", "metric", "value", "n_real", "n_fake",
    "train_corpus", "perturbation", "ci_low", "ci_high",
)
THROUGHPUT_COLUMNS = (
    "kind", "name", "device", "batch_size", "images", "seconds", "images_per_s", "latency_p50_ms", "latency_p95_ms",
    "latency_p99_ms", "peak_rss_mb", "decode_images_per_s", "error", "rounds", "images_per_s_q1", "images_per_s_q3",
    "round_images_per_s", "round_images_per_unit",
)

#: Columns added in schema 2 (with their SQL types); rows may leave them out.
_ADDED_IN_2 = {
    "metrics": {"train_corpus": "TEXT NOT NULL DEFAULT ''", "perturbation": "TEXT NOT NULL DEFAULT 'none'",
                "ci_low": "REAL", "ci_high": "REAL"},
    "throughput": {"latency_p99_ms": "REAL", "peak_rss_mb": "REAL", "decode_images_per_s": "REAL", "error": "TEXT"},
}
#: Columns added in schema 3: the spread of every throughput figure (rows of older runs hold NULL).
_ADDED_IN_3 = {
    "throughput": {"rounds": "INTEGER", "images_per_s_q1": "REAL", "images_per_s_q3": "REAL",
                   "round_images_per_s": "TEXT"},
}
#: Column added in schema 5: each round's images/s over the calibration workload's units/s in that round.
_ADDED_IN_5 = {"throughput": {"round_images_per_unit": "TEXT"}}
#: Throughput columns that hold a list of per-round figures, stored as JSON text.
ROUND_COLUMNS = ("round_images_per_s", "round_images_per_unit")
_OPTIONAL = {"images_per_s": None, "latency_p50_ms": None, "latency_p95_ms": None, "train_corpus": None, "perturbation": "none",
             "ci_low": None, "ci_high": None,
             "latency_p99_ms": None, "peak_rss_mb": None, "decode_images_per_s": None, "error": None,
             "rounds": None, "images_per_s_q1": None, "images_per_s_q3": None, "round_images_per_s": None,
             "round_images_per_unit": None}


def _value(row: dict[str, Any], column: str) -> Any:
    if column in ROUND_COLUMNS:  # a list of per-round figures, stored as JSON text
        rounds = row.get(column)
        return None if rounds is None else json.dumps([float(v) for v in rounds])
    if column in row:
        return row[column]
    if column == "train_corpus":
        return row["corpus"]  # within-generator: trained where tested
    if column in _OPTIONAL:
        return _OPTIONAL[column]
    raise KeyError(column)


def _column_types(schema: str) -> dict[str, dict[str, str]]:
    """Each table's columns with their SQL types, read from ``schema``."""
    tables = re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\);", schema, re.S)
    return {name: dict(re.findall(r"^\s*(\w+) (TEXT|REAL|INTEGER)", body, re.M)) for name, body in tables}


_TYPES = _column_types(SCHEMA)


def _as_sql_type(value: Any, sql_type: str) -> Any:
    """``value`` as SQLite hands it back from a column of ``sql_type`` (NaN is stored as NULL)."""
    if value is None or isinstance(value, str):
        return value
    if sql_type == "REAL":
        value = float(value)
        return None if math.isnan(value) else value
    if sql_type == "INTEGER" and isinstance(value, float) and value.is_integer():
        return int(value)
    if sql_type == "INTEGER" and isinstance(value, bool):
        return int(value)
    return value


def as_stored(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A ``metrics``, ``throughput`` or ``errors`` row as the store's readers return it once written
    (without ``run_id``): every column, left-out ones at their defaults, values in their column's
    SQL type, NaN as None, ``round_images_per_s`` and ``round_images_per_unit`` lists."""
    columns = {"metrics": METRIC_COLUMNS, "throughput": THROUGHPUT_COLUMNS, "errors": ("task", "message")}[table]
    out = {}
    for column in columns:
        if column in ROUND_COLUMNS:
            rounds = row.get(column)
            out[column] = None if rounds is None else [float(v) for v in rounds]
        else:
            out[column] = _as_sql_type(_value(row, column), _TYPES[table][column])
    return out


class StoreError(FacebenchError):
    """The store file is unreadable or of an unknown version."""


class UnknownRunError(StoreError, UsageError):
    """No run of that id (or no run at all) in the store: exit code 2."""


#: How many run ids an "unknown run" message lists.
RECENT_RUNS = 5


def recent_runs_text(runs: list[dict[str, Any]], count: int = RECENT_RUNS) -> str:
    """"most recent: ID (suite, started), ...; `facebench runs` lists them all", newest first."""
    recent = ", ".join(f"{r['run_id']} ({r['suite']}, {str(r['started'])[:16]})" for r in reversed(runs[-count:]))
    return f"most recent: {recent}; `facebench runs` lists them all"


def run_summary(run: dict[str, Any]) -> dict[str, str]:
    """A stored run in words for ``facebench runs``: id, suite, date, status, duration, commit."""
    try:
        info = json.loads(run["info"]) if isinstance(run.get("info"), str) else (run.get("info") or {})
    except ValueError:
        info = {}
    commit = ((info.get("environment") or {}).get("git_commit") if isinstance(info, dict) else None) or "-"
    return {
        "run_id": str(run["run_id"]),
        "suite": str(run["suite"]),
        "date": str(run["started"])[:19].replace("T", " "),
        "status": str(run["status"]),
        "duration": _duration(str(run["started"]), str(run["finished"])),
        "commit": commit[:12] + ("+dirty" if commit.endswith("+dirty") else "") if commit != "-" else "-",
    }


def _duration(started: str, finished: str) -> str:
    from datetime import datetime

    try:
        seconds = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    except ValueError:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{secs:02d}s" if minutes else f"{secs}s")


class Store:
    """Runs, metrics, throughput and errors in ``path`` (created on first write)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = sqlite3.connect(self.path)
            connection.row_factory = sqlite3.Row
            connection.executescript(SCHEMA)
            row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                connection.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                connection.commit()
            elif int(row["value"]) > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: store schema {row['value']} is newer than this facebench reads")
            elif int(row["value"]) < SCHEMA_VERSION:
                _upgrade(connection, int(row["value"]))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a readable facebench store: {exc}") from exc
        return connection

    def write_run(
        self,
        run: dict[str, Any],
        metrics: list[dict[str, Any]],
        throughput: list[dict[str, Any]],
        errors: Sequence[dict[str, str]] = (),
        corpora: Sequence[CorpusRecord] = (),
    ) -> None:
        """Insert a run with its rows and the corpora it used atomically: either all of it is stored or none.

        A write that fails in SQLite (the disk is full, the file is read-only or locked) is a
        StoreError; the store keeps what it held before.
        """
        try:
            self._write_run(run, metrics, throughput, errors, corpora)
        except StoreError:
            raise
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: run {run['run_id']} was not stored ({exc}); the runs stored before are "
                             "unchanged: fix the cause (e.g. free disk space) and run again") from exc

    def _write_run(self, run, metrics, throughput, errors, corpora) -> None:
        with closing(self._connect()) as connection, connection:
            connection.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run["run_id"], run["suite"], run["started"], run["finished"], run["status"],
                    run["facebench_version"], json.dumps(run.get("info", {}), sort_keys=True),
                ),
            )
            connection.executemany(
                f"INSERT INTO metrics VALUES (?, {', '.join('?' * len(METRIC_COLUMNS))})",
                [(run["run_id"], *(_value(m, c) for c in METRIC_COLUMNS)) for m in metrics],
            )
            connection.executemany(
                f"INSERT INTO throughput VALUES (?, {', '.join('?' * len(THROUGHPUT_COLUMNS))})",
                [(run["run_id"], *(_value(t, c) for c in THROUGHPUT_COLUMNS)) for t in throughput],
            )
            connection.executemany(
                "INSERT INTO errors VALUES (?, ?, ?)", [(run["run_id"], e["task"], e["message"]) for e in errors]
            )
            _insert_corpora(connection, run["run_id"], corpora)

    def _query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with closing(self._connect()) as connection:
            return [dict(row) for row in connection.execute(sql, params)]

    def runs(self) -> list[dict[str, Any]]:
        return self._query("SELECT * FROM runs ORDER BY started, run_id")

    def run(self, run_id: str | None = None) -> dict[str, Any]:
        """One run by id, or the latest when ``run_id`` is None."""
        runs = self.runs()
        if not runs:
            raise UnknownRunError(f"{self.path}: no runs stored yet; run `facebench run` first")
        if run_id is None:
            return runs[-1]
        for run in runs:
            if run["run_id"] == run_id:
                return run
        raise UnknownRunError(f"{self.path}: no run {run_id!r}; {recent_runs_text(runs)}")

    def metrics(self, run_id: str) -> list[dict[str, Any]]:
        return self._query("SELECT * FROM metrics WHERE run_id = ?", (run_id,))

    def throughput(self, run_id: str) -> list[dict[str, Any]]:
        """The run's throughput rows; ``round_images_per_s`` and ``round_images_per_unit`` as lists
        (None for rows stored before schema 3 and 5, and for rows timed without the calibration workload)."""
        rows = self._query("SELECT * FROM throughput WHERE run_id = ?", (run_id,))
        for row in rows:
            for column in ROUND_COLUMNS:
                text = row.get(column)
                row[column] = None if text is None else json.loads(text)
        return rows

    def errors(self, run_id: str) -> list[dict[str, Any]]:
        return self._query("SELECT * FROM errors WHERE run_id = ?", (run_id,))

    def corpora(self, run_id: str) -> list[CorpusRecord]:
        """The corpora the run used, in the order it recorded them (for a run stored before schema 4:
        as its record's ``info`` names them, filled in when the store was upgraded)."""
        rows = self._query("SELECT * FROM corpora WHERE run_id = ? ORDER BY rowid", (run_id,))
        return [CorpusRecord(r["label"], r["digest"], r["path"], r["corpus_key"]) for r in rows]


def _insert_corpora(connection: sqlite3.Connection, run_id: str, corpora: Sequence[CorpusRecord]) -> None:
    connection.executemany("INSERT INTO corpora VALUES (?, ?, ?, ?, ?)",
                           [(run_id, c.label, c.digest, c.path, c.key) for c in corpora])


def _upgrade(connection: sqlite3.Connection, version: int) -> None:
    """Bring a schema-1, -2, -3 or -4 store to the current schema: add the new columns (in the order the
    schema lists them, so positional inserts still fit); old rows keep their values. Before schema 4
    a run's corpora were only in its record's ``info``: they are copied into the corpora table."""
    with connection:
        if version < 4:
            for run_id, info in connection.execute("SELECT run_id, info FROM runs").fetchall():
                try:
                    decoded = json.loads(info)
                except ValueError:
                    decoded = {}
                _insert_corpora(connection, run_id, corpora_from_info(decoded))
        for added in (_ADDED_IN_2, _ADDED_IN_3, _ADDED_IN_5):
            for table, columns in added.items():
                present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
                for column, sql_type in columns.items():
                    if column not in present:
                        connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
        connection.execute("UPDATE metrics SET train_corpus = corpus WHERE train_corpus = ''")
        connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
