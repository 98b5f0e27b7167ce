"""Progress bars on stderr, and the two calls the run wing makes on them (which do nothing without bars)."""

from __future__ import annotations

from typing import Any, Literal, overload

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second (or seconds per item when slower than one a second), blank until measured."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed:
            return Text("", style="progress.data.speed")
        text = f"{speed:.1f}/s" if speed >= 1 else f"{1 / speed:.1f} s each"
        return Text(text, style="progress.data.speed")


@overload
def make_progress(enabled: Literal[True] = ...) -> Progress: ...
@overload
def make_progress(enabled: bool) -> Progress | None: ...


def make_progress(enabled: bool = True) -> Progress | None:
    """Progress bars on stderr: done/total, rate, elapsed and remaining time; silent when stderr is
    not a terminal (a log or a pipe would only get a stray blank line)."""
    if not enabled:
        return None
    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeElapsedColumn(),
        TextColumn("eta"), TimeRemainingColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )


def track(progress: Progress | None, description: str, total: int) -> Any:
    """A new bar of ``total`` items on ``progress``; None without bars."""
    return progress.add_task(description, total=total) if progress is not None else None


def advance(progress: Progress | None, task: Any, amount: int = 1) -> None:
    """Move ``task``'s bar on by ``amount`` items (nothing without bars)."""
    if progress is not None:
        progress.advance(task, amount)
