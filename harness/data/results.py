"""One run's results in one object, from the run to every report: :func:`save_results` stores
what :func:`~facebench.harness.run.runner.run_suite` returns; load them from the store or a JSON
export; write them as JSON.

A results JSON file (``facebench-results``, version 1) holds the run record and its metric,
throughput, error and per-image score rows, so a baseline can live in a repository or a CI
artifact without the SQLite store and the run folders next to it. Each metric row of the file
also says ``small_sample``: whether its row has fewer than ``MIN_IMAGES_PER_CLASS`` test images in
a class (derived from ``n_real`` / ``n_fake``, so it is dropped again on loading).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..contracts.errors import UsageError
from .environment import run_environment
from ..contracts.filemodes import as_if_created_plainly
from ..contracts.constants import too_small
from ..contracts.values import json_safe
from .corpus_record import CorpusRecord, corpora_from_info
from .store import Store, StoreError, as_stored, recent_runs_text

FORMAT = "facebench-results"
VERSION = 1
DEFAULT_STORE = Path("results/facebench.sqlite")
#: How many run ids an "unknown run" message lists.
RECENT_RUNS = 5

# Numeric columns that may be NaN (stored as NULL in SQLite and as null in JSON).
_FLOATS = {
    "metrics": ("value", "ci_low", "ci_high"),
    "throughput": ("seconds", "images_per_s", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
                   "peak_rss_mb", "decode_images_per_s", "images_per_s_q1", "images_per_s_q3"),
    "scores": ("score",),
}
_SQLITE_MAGIC = b"SQLite format 3\x00"
_STORE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


class ResultsError(UsageError):
    """A results reference (file, store, run id) that cannot be read (exit code 2: nothing ran)."""


@dataclass
class Results:
    """A run record with its metric, throughput, error and per-image score rows and the corpora it used."""

    run: dict[str, Any]
    metrics: list[dict[str, Any]]
    throughput: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    scores: list[dict[str, Any]] = field(default_factory=list, repr=False)
    #: Where the results were loaded from or stored to (for reports); not exported.
    source: str = ""
    #: The corpora the run used; when none are given, those the run record's ``info`` names
    #: (as runs stored before the store recorded corpora name them).
    corpora: list[CorpusRecord] = field(default_factory=list)
    #: The run's folder (its ``scores.parquet``), where known.
    run_dir: Path | None = None
    #: Tasks the run measured or reused, failed ones included (known only to the process that ran it).
    task_count: int = 0

    def __post_init__(self) -> None:
        if not self.corpora:
            self.corpora = corpora_from_info(self.run.get("info"))

    @property
    def run_id(self) -> str:
        return str(self.run.get("run_id", ""))

    @property
    def info(self) -> dict[str, Any]:
        """``run["info"]`` (empty if the run has none)."""
        info = self.run.get("info")
        return info if isinstance(info, dict) else {}

    @property
    def cached_tasks(self) -> int:
        """How many tasks the run reused from the task cache."""
        return int(self.info.get("cached_tasks") or 0)

    @property
    def warnings(self) -> list[dict[str, str]]:
        """Problems the run recovered from (e.g. a batch size backed off): ``{"task", "message"}``."""
        return list(self.info.get("warnings") or [])

    @property
    def reused_corpora(self) -> list[str]:
        """Labels of the corpora served from the corpora cache: their generator throughput rows are
        the figures of the run that built them."""
        return list(self.info.get("reused_corpora") or [])

    @property
    def environment(self) -> dict[str, Any]:
        """``run["info"]["environment"]`` (empty if the run has none)."""
        return run_environment(self.run)


# --------------------------------------------------------------------------- export


def results_to_dict(results: Results) -> dict[str, Any]:
    """The JSON-ready form: NaN and infinities become None (null)."""
    return json_safe({
        "format": FORMAT,
        "version": VERSION,
        "run": results.run,
        "metrics": [_with_small_sample(m) for m in results.metrics],
        "throughput": results.throughput,
        "errors": results.errors,
        "scores": results.scores,
        "corpora": [asdict(c) for c in results.corpora],
    })


def _with_small_sample(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "small_sample": too_small(row.get("n_real") or 0, row.get("n_fake") or 0)}


def export_json(results: Results, path: str | Path) -> Path:
    """Write ``results`` to ``path`` as JSON, atomically (a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results_to_dict(results), allow_nan=False, indent=1, sort_keys=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        as_if_created_plainly(tmp)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------- loading


def load_results(ref: str | Path, default_store: str | Path = DEFAULT_STORE) -> Results:
    """Results named by ``ref``.

    ``ref`` is a results JSON file; ``STORE.sqlite:RUN_ID`` (``:latest`` or no ``:RUN_ID`` for the
    latest run); or a bare run id or ``latest``, looked up in ``default_store``. Per-image scores
    come from the JSON or from ``<store folder>/runs/<run_id>/scores.parquet`` (empty if absent).
    """
    text = str(ref)
    if not text.strip():
        raise ResultsError("empty results reference; pass a results .json, STORE.sqlite[:RUN_ID] or a run id")
    path = Path(text)
    if path.is_file():
        if _is_sqlite(path):
            return _from_store(path, None)
        return _from_json(path)
    if path.is_dir():
        raise ResultsError(f"{path} is a folder; pass a results .json, STORE.sqlite[:RUN_ID] or a run id")
    if path.suffix.lower() == ".json":
        raise ResultsError(f"{path}: no such results file")
    if path.suffix.lower() in _STORE_SUFFIXES:
        raise ResultsError(f"{path}: no such results store")
    store_part, sep, run_part = text.rpartition(":")
    if sep and store_part and (Path(store_part).suffix.lower() in _STORE_SUFFIXES or Path(store_part).is_file()):
        if not Path(store_part).is_file():
            raise ResultsError(f"{store_part}: no such results store")
        return _from_store(Path(store_part), run_part)
    if "/" in text or os.sep in text:
        raise ResultsError(f"{text}: no such file")
    store = Path(default_store)
    if not store.is_file():
        raise ResultsError(
            f"no results store at {store} to look up run {text!r}; run `facebench run` first, or point at one: "
            f"--results DIR (the folder holding facebench.sqlite) or STORE.sqlite:{text}"
        )
    return _from_store(store, text)


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc}") from exc


def _from_store(path: Path, run_id: str | None) -> Results:
    store = Store(path)
    try:
        runs = store.runs()
    except StoreError as exc:
        raise ResultsError(str(exc)) from exc
    if not runs:
        raise ResultsError(f"{path}: no runs stored yet")
    if run_id in (None, "", "latest"):
        run = runs[-1]
    else:
        matches = [r for r in runs if r["run_id"] == run_id]
        if not matches:
            raise ResultsError(f"{path}: no run {run_id!r}; {recent_runs_text(runs, RECENT_RUNS)}")
        run = matches[0]
    run = dict(run)
    if isinstance(run.get("info"), str):
        try:
            run["info"] = json.loads(run["info"])
        except json.JSONDecodeError:
            run["info"] = {}
    rid = run["run_id"]

    def rows(items: list[dict[str, Any]], kind: str | None) -> list[dict[str, Any]]:
        out = [{k: v for k, v in item.items() if k != "run_id"} for item in items]
        return [_floats(r, _FLOATS[kind]) for r in out] if kind else out

    return Results(
        run=run,
        metrics=rows(store.metrics(rid), "metrics"),
        throughput=rows(store.throughput(rid), "throughput"),
        errors=rows(store.errors(rid), None),
        scores=_read_scores(path.parent / "runs" / rid / "scores.parquet"),
        source=f"{path}:{rid}",
        corpora=store.corpora(rid),
        run_dir=path.parent / "runs" / rid,
    )


def _read_scores(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise ResultsError(f"{path}: unreadable scores file: {exc}") from exc
    return [_score_row(r) for r in table.to_pylist()]


def _score_row(row: dict[str, Any]) -> dict[str, Any]:
    """Fill the score columns older runs lack (trained where tested, no perturbation)."""
    row = dict(row)
    row.setdefault("train_corpus", row.get("corpus"))
    if not row.get("train_corpus"):
        row["train_corpus"] = row.get("corpus")
    row.setdefault("perturbation", "none")
    row["artifact_names"] = list(row.get("artifact_names") or [])
    return _floats(row, _FLOATS["scores"])


def _floats(row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    for column in columns:
        if column in row and row[column] is None:
            row[column] = math.nan
    return row


def _from_json(path: Path) -> Results:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path}: not a results JSON file (not text: {exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ResultsError(f"{path}: not a facebench results file (format {found!r}, expected {FORMAT!r})")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ResultsError(f"{path}: results format version {version!r} is not one this facebench reads (<= {VERSION})")
    run = data.get("run")
    if not isinstance(run, dict) or "run_id" not in run:
        raise ResultsError(f"{path}: the results file has no run record with a run_id")
    lists = {}
    for key in ("metrics", "throughput", "errors", "scores", "corpora"):
        items = data.get(key) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ResultsError(f"{path}: {key!r} must be a list of objects")
        lists[key] = items
    return Results(
        run=run,
        metrics=[_floats({k: v for k, v in r.items() if k != "small_sample"}, _FLOATS["metrics"])
                 for r in lists["metrics"]],
        throughput=[_floats(dict(r), _FLOATS["throughput"]) for r in lists["throughput"]],
        errors=[dict(r) for r in lists["errors"]],
        scores=[_score_row(r) for r in lists["scores"]],
        source=str(path),
        corpora=_corpus_records(path, lists["corpora"]) if "corpora" in data else [],
    )


def _corpus_records(path: Path, items: list[dict[str, Any]]) -> list[CorpusRecord]:
    try:
        return [CorpusRecord(**item) for item in items]
    except TypeError as exc:
        raise ResultsError(f"{path}: a 'corpora' entry is not a corpus record ({exc})") from None


# --------------------------------------------------------------------------- saving


def save_results(results: Results, store: Store) -> Results:
    """Store a run's results: the per-image scores as ``results.run_dir/scores.parquet`` (written
    whole, so a kill leaves no torn file), then the run, its rows and its corpora in ``store`` in
    one transaction. Returns the results as :func:`load_results` reads them back from there."""
    scores = results.scores
    if scores:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if results.run_dir is None:
            raise ValueError("results with per-image scores need a run_dir to be saved")
        results.run_dir.mkdir(parents=True, exist_ok=True)
        partial = results.run_dir / ".scores.parquet.partial"
        table = pa.Table.from_pylist(scores)
        pq.write_table(table, partial)
        os.replace(partial, results.run_dir / "scores.parquet")
        scores = [_score_row(r) for r in table.to_pylist()]
    store.write_run(results.run, results.metrics, results.throughput, results.errors, results.corpora)
    run = {**results.run, "info": json.loads(json.dumps(results.run.get("info", {}), sort_keys=True))}
    return Results(
        run=run,
        metrics=[_floats(as_stored("metrics", r), _FLOATS["metrics"]) for r in results.metrics],
        throughput=[_floats(as_stored("throughput", r), _FLOATS["throughput"]) for r in results.throughput],
        errors=[as_stored("errors", r) for r in results.errors],
        scores=scores,
        source=f"{store.path}:{results.run_id}",
        corpora=list(results.corpora),
        run_dir=results.run_dir,
        task_count=results.task_count,
    )
