"""Running a list of named checks and naming the one that fails."""

from __future__ import annotations

from typing import Any, Callable, Sequence


def run_checks(label: str, checks: Sequence[tuple[str, Callable[[Any], None]]], case: Any) -> None:
    """Each check on ``case`` in turn; the first failure (an AssertionError or any other error) is
    an AssertionError ``"{label}: check '{name}' failed: ..."``."""
    for name, check in checks:
        try:
            check(case)
        except AssertionError as exc:
            raise AssertionError(f"{label}: check {name!r} failed: {exc}") from exc
        except Exception as exc:
            raise AssertionError(f"{label}: check {name!r} failed: {type(exc).__name__}: {exc}") from exc
