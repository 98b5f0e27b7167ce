"""The verdict of ``facebench speed-ab``: each row's paired rounds judged, and the summary printed.

A row fails when the current build's median round ratio (its images/s over the baseline's, in the
same round) fell by more than the tolerance *and* the paired rounds say the drop is real: a
one-sided sign test (the current build slower in more rounds than chance allows) gives p < alpha.
The sign test counts rounds rather than weighing their sizes, so one round that a busy machine
slowed on either side moves it by one round only.
Gains never fail. Too few rounds for the test to reach alpha: the tolerance alone decides, and the
reason says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from scipy.stats import binomtest

from ..run.ab_timing import ABRow
from ..run.timing import percentile

#: One-sided level of the paired test.
AB_ALPHA = 0.05
#: Fewest paired rounds for which a one-sided sign test can reach p < 0.05 (all alike: 0.5 ** 5).
MIN_TESTABLE_ROUNDS = 5


@dataclass(frozen=True)
class ABVerdict:
    """One row's figures and verdict: medians of each side's images/s, the median round ratio with
    its quartiles, the change (ratio - 1), the paired test's p-value and whether the row failed."""

    name: str
    rounds: int
    baseline: float
    current: float
    ratio: float
    ratio_q1: float
    ratio_q3: float
    p_value: float
    failed: bool
    reason: str

    @property
    def change(self) -> float:
        return self.ratio - 1.0


def judge_row(row: ABRow, tolerance: float, alpha: float = AB_ALPHA) -> ABVerdict:
    """The verdict of one row (see the module's rule)."""
    ratios = [r for r in row.ratios if r > 0 and math.isfinite(r)]
    if not ratios:
        raise ValueError(f"{row.name}: no timed rounds to judge")
    ratio = percentile(ratios, 50)
    p_value = math.nan
    unequal = [r for r in ratios if r != 1.0]
    if len(unequal) >= MIN_TESTABLE_ROUNDS:
        slower_rounds = sum(r < 1.0 for r in unequal)
        p_value = float(binomtest(slower_rounds, len(unequal), 0.5, alternative="greater").pvalue)
    change = ratio - 1.0
    rounds = f"{len(ratios)} paired rounds"
    if change >= -tolerance:
        failed = False
        if change > 0:
            reason = f"faster by {change:.1%}"
        else:
            reason = f"slower by {-change:.1%}, within {tolerance:.0%}" if change < 0 else "unchanged"
    elif math.isnan(p_value):
        failed = True
        reason = f"slower by {-change:.1%} (> {tolerance:.0%}); {rounds}, too few for the paired test: tolerance alone"
    elif p_value < alpha:
        failed = True
        reason = f"slower by {-change:.1%} (> {tolerance:.0%}); significant ({rounds}, sign test p = {p_value:.2g})"
    else:
        failed = False
        reason = f"slower by {-change:.1%} (> {tolerance:.0%}), but not significant ({rounds}, sign test p = {p_value:.2g})"
    return ABVerdict(row.name, len(ratios), percentile(row.baseline, 50), percentile(row.current, 50), ratio,
                     percentile(ratios, 25), percentile(ratios, 75), p_value, failed, reason)


def judge(rows: Sequence[ABRow], tolerance: float, alpha: float = AB_ALPHA) -> list[ABVerdict]:
    """Every row's verdict; ``tolerance`` is the largest tolerated relative drop, in [0, 1)."""
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
    return [judge_row(row, tolerance, alpha) for row in rows]


def lane_notes(rows: Sequence[ABRow]) -> list[str]:
    """Where the two builds did not time the same thing (device, batch size, images), one line each;
    first, when both workers ran the same file, that one build was timed against itself."""
    notes = []
    modules = {row.baseline_lane.get("module") for row in rows} | {row.current_lane.get("module") for row in rows}
    if len(modules) == 1 and None not in modules:
        notes.append(f"both builds ran {modules.pop()}: one build timed against itself (is --baseline-python the "
                     "base branch's interpreter?)")
    for row in rows:
        differ = [f"{key} {row.baseline_lane.get(key)} vs {row.current_lane.get(key)}"
                  for key in ("device", "batch_size", "images") if row.baseline_lane.get(key) != row.current_lane.get(key)]
        if differ:
            notes.append(f"{row.name}: the builds timed different work ({', '.join(differ)})")
    return notes


def markdown(verdicts: Sequence[ABVerdict], rows: Sequence[ABRow], tolerance: float, header: dict[str, Any]) -> str:
    """The summary: one line of settings, the table (baseline and current median images/s, median
    round ratio with its IQR, verdict) and notes where the builds timed different work."""
    failed = sum(v.failed for v in verdicts)
    sessions = len({session for row in rows for session in row.sessions})
    pairs = f", in {sessions} sessions of fresh workers" if sessions > 1 else ""
    lines = [
        f"## facebench speed-ab: {'FAIL' if failed else 'PASS'} ({failed} of {len(verdicts)} rows slower by more than "
        f"{tolerance:.0%}, significantly)",
        "",
        f"baseline: {header.get('baseline', '?')}; current: {header.get('current', '?')}; the two builds timed call by "
        f"call, alternating which goes first{pairs}; ratio = current images/s / baseline images/s of the same round "
        "(median [IQR] of the rounds)",
        "",
        "| row | rounds | baseline images/s | current images/s | ratio [IQR] | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        lines.append(f"| {v.name} | {v.rounds} | {v.baseline:,.1f} | {v.current:,.1f} | {v.ratio:.3f} "
                     f"[{v.ratio_q1:.3f}, {v.ratio_q3:.3f}] | {'**fail**' if v.failed else 'pass'}: {v.reason} |")
    notes = lane_notes(rows)
    if notes:
        lines += ["", *[f"- note: {note}" for note in notes]]
    return "\n".join(lines)
