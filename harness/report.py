"""Leaderboards from stored rows: one aggregation feeds the terminal table and the Markdown file."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from facebench.harness.metrics import METRICS


@dataclass(frozen=True)
class Leaderboard:
    run: dict[str, Any]
    accuracy_columns: tuple[str, ...]
    accuracy_rows: list[tuple]
    throughput_columns: tuple[str, ...]
    throughput_rows: list[tuple]
    errors: list[dict[str, Any]]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def build_leaderboard(
    run: dict[str, Any], metrics: list[dict[str, Any]], throughput: list[dict[str, Any]], errors: list[dict[str, Any]] = ()
) -> Leaderboard:
    """Rows per (corpus, artifact, detector), best AUC first within each corpus and artifact."""
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    for m in metrics:
        key = (m["corpus"], m["artifact"], m["detector"])
        cell = cells.setdefault(key, {"n_real": m["n_real"], "n_fake": m["n_fake"]})
        cell[m["metric"]] = m["value"]

    def order(item):
        (corpus, artifact, _), cell = item
        auc = cell.get("auc")
        return (corpus, artifact != "all", artifact, -(auc if auc is not None and not math.isnan(auc) else -1))

    accuracy_rows = [
        (corpus, artifact, detector, *(_fmt(cell.get(m)) for m in METRICS), f"{cell['n_real']}/{cell['n_fake']}")
        for (corpus, artifact, detector), cell in sorted(cells.items(), key=order)
    ]
    throughput_rows = [
        (t["kind"], t["name"], t["device"], t["batch_size"], _fmt(t["images_per_s"], 1),
         _fmt(t["latency_p50_ms"], 2), _fmt(t["latency_p95_ms"], 2), t["images"])
        for t in sorted(throughput, key=lambda t: (t["kind"] != "generator", -(t["images_per_s"] or 0)))
    ]
    return Leaderboard(
        run=run,
        accuracy_columns=("corpus", "artifact", "detector", *(m.upper() if m != "accuracy" else "Acc@0.5" for m in METRICS), "real/fake"),
        accuracy_rows=accuracy_rows,
        throughput_columns=("kind", "name", "device", "batch", "images/s", "p50 ms/img", "p95 ms/img", "images"),
        throughput_rows=throughput_rows,
        errors=list(errors),
    )


def print_leaderboard(board: Leaderboard, console: Console | None = None) -> None:
    console = console or Console()
    run = board.run
    accuracy = Table(title=f"facebench leaderboard - suite {run['suite']}, run {run['run_id']}")
    for column in board.accuracy_columns:
        accuracy.add_column(column, justify="right" if column not in ("corpus", "artifact", "detector") else "left")
    for row in board.accuracy_rows:
        accuracy.add_row(*map(str, row))
    console.print(accuracy)
    speed = Table(title="throughput")
    for column in board.throughput_columns:
        speed.add_column(column, justify="left" if column in ("kind", "name", "device") else "right")
    for row in board.throughput_rows:
        speed.add_row(*map(str, row))
    console.print(speed)
    for error in board.errors:
        console.print(f"[red]failed[/red] {error['task']}: {error['message']}")


def _markdown_table(columns: tuple[str, ...], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(board: Leaderboard) -> str:
    run = board.run
    parts = [
        f"# facebench leaderboard: suite `{run['suite']}`",
        "",
        f"Run `{run['run_id']}` ({run['status']}), facebench {run['facebench_version']}, "
        f"{run['started']} to {run['finished']}.",
        "",
        "## Detection (test split; fake is the positive class; artifact `all` = every test image)",
        "",
        _markdown_table(board.accuracy_columns, board.accuracy_rows),
        "",
        "## Throughput",
        "",
        _markdown_table(board.throughput_columns, board.throughput_rows),
        "",
    ]
    if board.errors:
        parts += ["## Failed tasks", ""] + [f"- {e['task']}: {e['message']}" for e in board.errors] + [""]
    return "\n".join(parts)


def write_markdown(board: Leaderboard, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_markdown(board))
    tmp.replace(path)
    return path
