"""Leaderboards from stored rows.

:func:`build_leaderboard` is the one aggregation; every output reads its :class:`Leaderboard`:
the terminal (:func:`print_leaderboard`), Markdown (:func:`to_markdown`), CSV (:func:`to_csv`)
and JSON (:func:`to_json`). Terminal and Markdown show the same tables (:func:`tables`):

- ``detection``: clean (perturbation ``none``), within-generator (trained on the corpus it is
  tested on) rows per (corpus, artifact), best AUC first. Threshold metrics are class-balanced
  (each class weighs half) and AP stands beside its chance level, the fake share. With many
  artifacts, the per-artifact rows move to a compact ``per_artifact`` table (AUC with its CI only).
- ``cross_generator``: AUC per (train corpus, test corpus), when some detector was tested on a
  corpus other than the one it was trained on.
- ``robustness``: AUC per (detector, perturbation) on artifact ``all``, clean column first.
- ``sensitivity``: the counterfactual ``score_shift`` and ``flip_rate`` per detector and artifact.
- ``controls``: the ``null`` and ``none`` control rows (:func:`is_control`) with a verdict each,
  kept out of every table above that ranks detectors.
- ``throughput``: generators, then detectors (fastest first), then batch-size sweeps.

Rows of store schema 1 are accepted: a missing ``train_corpus`` means the test corpus, a missing
``perturbation`` means ``none``, missing intervals and latency figures mean unknown. A value that
is NaN (or None: SQLite stores NaN as NULL) shows as ``-``; a missing interval shows the value alone.

A row with fewer than :data:`~facebench.harness.run.metrics.MIN_IMAGES_PER_CLASS` test images in
either class is too small: its tables show ``(n<30)`` in place of an interval and ``small`` beside its
counts, it ranks after every other row, and CSV / JSON carry ``small_sample``. A row whose detector
scored every test image alike (:func:`is_degenerate`: AUC 0.5 with a zero-width interval) shows
``(degenerate)`` in place of its AUC interval, ranks last too, and JSON carries ``degenerate``.

Perturbations are ordered by kind, then strength (:func:`perturbation_sort_key`), in every report.
The terminal splits a table too wide for the console into several, each repeating the name columns.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from ..data.shortcuts import shortcut_lines
from ..contracts.constants import CLEAN, CONTROLS, NONE, NULL
from ..contracts.values import is_missing, json_safe
from ..data.environment import run_calibration, run_environment, with_current_names
from ..run.metrics import CALIBRATED_METRICS, MIN_IMAGES_PER_CLASS, METRICS, REFERENCE_METRICS, too_small

SENSITIVITY_METRICS = ("score_shift", "flip_rate")
#: More distinct artifacts than this: per-artifact rows go to their own compact table.
MAX_INLINE_ARTIFACTS = 3
#: The detection table's metric columns: (metric, header). Threshold metrics are class-balanced:
#: plain ``accuracy`` moves with the fake share (see :mod:`facebench.harness.run.metrics`).
DETECTION_COLUMNS = (
    ("ap", "AP"),
    ("ap_chance", "AP chance"),
    ("balanced_accuracy", "BalAcc@0.5"),
    ("balanced_accuracy_calibrated", "BalAcc@cal"),
    ("eer", "EER"),
    ("tpr_at_fpr_1", "TPR@1%FPR"),
)
#: How the detection table reads, for its caption (and the HTML report's "how to read this").
BALANCE_NOTE = (
    "BalAcc = (TPR + TNR) / 2, each class weighing half whatever the fake share; @0.5 at threshold 0.5, "
    "@cal at the threshold calibrated on the held-out split: the one maximising balanced accuracy on the "
    "calibration split (pairs held out of fitting; each class weighs half), picked per row on the same "
    "subset as the row (all images, or the reals plus one artifact's fakes); AP chance = the fake share, "
    "the AP of a detector with no skill"
)
#: Marks a figure of a row too small for an interval, in its place (parentheses: rich reads ``[n...]`` as markup).
SMALL_MARK = f"(n<{MIN_IMAGES_PER_CLASS})"
SMALL_NOTE = (f"small = fewer than {MIN_IMAGES_PER_CLASS} real or fake test images: {SMALL_MARK} in place of an "
              "interval, ranked last")
#: Marks the AUC of a row whose detector scored every test image alike, in place of its interval.
DEGENERATE_MARK = "(degenerate)"
DEGENERATE_NOTE = (f"{DEGENERATE_MARK} = every test image scored alike (AUC 0.5 with a zero-width interval): the "
                   "detector told nothing apart; ranked last")
#: Why a corpus has no sensitivity figures: its fakes are not edits of its reals.
NO_PAIRS_NOTE = ("no counterfactual pairs: its fakes are not edits of its reals (the reals come from another "
                 "source, `reals = ...` in the suite), so no score shift or flip rate")
#: Long-format CSV / JSON columns of a metric row, and of a throughput row.
METRIC_FIELDS = (
    "run_id", "corpus", "train_corpus", "corpus_digest", "generator", "detector", "artifact", "perturbation",
    "metric", "value", "ci_low", "ci_high", "n_real", "n_fake", "small_sample",
)
THROUGHPUT_FIELDS = (
    "run_id", "kind", "name", "device", "batch_size", "images", "seconds", "images_per_s", "latency_p50_ms",
    "latency_p95_ms", "latency_p99_ms", "peak_rss_mb", "decode_images_per_s", "error", "rounds", "images_per_s_q1",
    "images_per_s_q3", "round_images_per_s",
)
CSV_FILES = {"metrics": "leaderboard.csv", "throughput": "throughput.csv"}
_THROUGHPUT_KINDS = {"generator": 0, "detector": 1, "sweep": 2}


# --------------------------------------------------------------------------- values


def _float(value: Any) -> float:
    """A metric value as a float; None (NaN read back from SQLite) becomes NaN."""
    return math.nan if value is None else float(value)


def _optional(value: Any) -> float | None:
    """An optional figure (interval bound, latency): None when missing or NaN."""
    return None if is_missing(value) else float(value)


def fmt(value: Any, digits: int = 3) -> str:
    """A figure for a table: ``-`` for NaN or None."""
    if is_missing(value):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def fmt_ci(value: Any, low: Any = None, high: Any = None, small: bool = False) -> str:
    """``0.912 [0.88, 0.94]``; the value alone when the interval is missing or NaN;
    ``1.000 (n<30)`` for a row too small for an interval (``small``)."""
    if is_missing(value):
        return "-"
    if small:
        return f"{fmt(value)} {SMALL_MARK}"
    if is_missing(low) or is_missing(high):
        return fmt(value)
    return f"{value:.3f} {fmt_interval(low, high)}"


def fmt_interval(low: float, high: float, digits: int = 2) -> str:
    """``[0.88, 0.94]``, rounded outwards (low down, high up), so the printed interval never looks
    narrower than it is nor excludes a point it holds: an interval of [0.998, 1.0] reads [0.99, 1.00]."""
    scale = 10**digits
    down = math.floor(float(low) * scale + 1e-9) / scale
    up = math.ceil(float(high) * scale - 1e-9) / scale
    return f"[{down:.{digits}f}, {up:.{digits}f}]"


# --------------------------------------------------------------------------- aggregation


@dataclass
class Cell:
    """Every metric of one (test corpus, train corpus, detector, artifact, perturbation)."""

    corpus: str
    train_corpus: str
    detector: str
    artifact: str
    perturbation: str
    n_real: int
    n_fake: int
    values: dict[str, tuple[float, float | None, float | None]] = field(default_factory=dict)

    def value(self, metric: str) -> float:
        if metric == "ap_chance" and metric not in self.values and self.n_real + self.n_fake:
            return self.n_fake / (self.n_real + self.n_fake)  # runs stored before ap_chance rows
        return self.values.get(metric, (math.nan, None, None))[0]

    def ci(self, metric: str) -> str:
        if metric == "auc" and self.degenerate:
            return f"{fmt(self.value(metric))} {DEGENERATE_MARK}"
        return fmt_ci(*self.values[metric], small=self.small) if metric in self.values else "-"

    @property
    def small(self) -> bool:
        """Fewer than MIN_IMAGES_PER_CLASS test images in a class: no interval, ranked last."""
        return too_small(self.n_real, self.n_fake)

    @property
    def degenerate(self) -> bool:
        """Every test image scored alike (:func:`is_degenerate`): ranked last."""
        return is_degenerate(self)

    @property
    def ranks_last(self) -> bool:
        """Too small or degenerate: sorted after every row that can be judged."""
        return self.small or self.degenerate

    @property
    def counts(self) -> str:
        """``52/780``, with `` small`` after a row too small to judge."""
        return f"{self.n_real}/{self.n_fake}" + (" small" if self.small else "")

    @property
    def within(self) -> bool:
        return self.train_corpus == self.corpus


def is_degenerate(cell: Cell) -> bool:
    """Whether ``cell``'s detector scored every test image alike: AUC exactly 0.5 with a zero-width
    interval or, with no interval stored, AUC 0.5 and AP at its chance level (both hold when every
    score ties)."""
    value, low, high = cell.values.get("auc", (math.nan, None, None))
    if is_missing(value) or value != 0.5:
        return False
    if not is_missing(low) and not is_missing(high):
        return high == low
    ap, chance = cell.value("ap"), cell.value("ap_chance")
    return not is_missing(ap) and not is_missing(chance) and math.isclose(ap, chance, rel_tol=1e-9, abs_tol=1e-12)


@dataclass(frozen=True)
class Leaderboard:
    """A run's rows, normalised and in display order, plus the cells the tables are made of."""

    run: dict[str, Any]
    environment: dict[str, Any]
    metrics: list[dict[str, Any]]
    throughput: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    cells: list[Cell]


def normalise_metric(row: dict[str, Any]) -> dict[str, Any]:
    """A metric row with every schema-2 field (schema-1 defaults filled in)."""
    out = {f: row.get(f) for f in METRIC_FIELDS}
    out["train_corpus"] = row.get("train_corpus") or row["corpus"]
    out["perturbation"] = row.get("perturbation") or CLEAN
    out["value"] = _float(row.get("value"))
    out["ci_low"], out["ci_high"] = _optional(row.get("ci_low")), _optional(row.get("ci_high"))
    out["small_sample"] = too_small(row.get("n_real") or 0, row.get("n_fake") or 0)
    return out


def normalise_throughput(row: dict[str, Any]) -> dict[str, Any]:
    """A throughput row with every schema-2 field; unknown figures are None."""
    out: dict[str, Any] = {f: row.get(f) for f in THROUGHPUT_FIELDS}
    for name in ("seconds", "images_per_s", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "peak_rss_mb",
                 "decode_images_per_s", "images_per_s_q1", "images_per_s_q3"):
        out[name] = _optional(out[name])
    out["error"] = row.get("error") or None
    rounds = out["round_images_per_s"]
    if isinstance(rounds, str):  # as a CSV cell or a store's JSON text
        rounds = json.loads(rounds) if rounds.startswith("[") else [float(v) for v in rounds.split()]
    out["round_images_per_s"] = None if rounds is None else [float(v) for v in rounds]
    out["rounds"] = None if is_missing(out["rounds"]) else int(out["rounds"])
    return out


def fmt_iqr(q1: Any, q3: Any, digits: int = 1) -> str:
    """``[3650.1, 3720.9]``, the interquartile range of a throughput figure's rounds; ``-`` when unknown."""
    return "-" if is_missing(q1) or is_missing(q3) else f"[{q1:.{digits}f}, {q3:.{digits}f}]"


def perturbation_sort_key(name: str) -> tuple:
    """Sort key of a perturbation name: ``none`` first, then single steps by kind (jpeg, blur, resize,
    noise, crop) and strength (weakest first: ``jpeg:95`` before ``jpeg:30``, ``noise:2`` before
    ``noise:10``), then chains, then names that do not parse (as text)."""
    from ..contracts.perturbations import PerturbationError, describe_kinds, parse

    if name == CLEAN:
        return (0,)
    try:
        steps = parse(name).steps
    except PerturbationError:
        return (3, name)
    kinds = list(describe_kinds())
    keys = tuple((kinds.index(s.kind), _strength(s.kind, s.value)) for s in steps)
    return (1 if len(steps) == 1 else 2, keys, name)


def _strength(kind: str, value: float) -> float:
    """How strongly a step of ``kind`` at ``value`` changes an image, for ordering only."""
    if kind == "jpeg":
        return 100 - value  # lower quality: stronger
    if kind == "resize":
        return abs(math.log(value))  # further from 1 either way: stronger
    return value


def _auc_key(value: float) -> float:
    return -value if not math.isnan(value) else math.inf  # best first, NaN last


def _throughput_key(row: dict[str, Any]) -> tuple:
    kind = _THROUGHPUT_KINDS.get(row["kind"], 3)
    if row["kind"] == "sweep":
        return (kind, row["name"] or "", row["batch_size"] or 0)
    speed = row["images_per_s"]
    return (kind, row["kind"], -speed if speed is not None else math.inf, row["name"] or "")


def filter_perturbations(metrics: Iterable[dict[str, Any]], keep: Iterable[str]) -> list[dict[str, Any]]:
    """Metric rows that are clean or under one of the perturbations ``keep``."""
    keep = set(keep) | {CLEAN}
    return [m for m in metrics if (m.get("perturbation") or CLEAN) in keep]


def build_leaderboard(
    run: dict[str, Any],
    metrics: Iterable[dict[str, Any]],
    throughput: Iterable[dict[str, Any]] = (),
    errors: Iterable[dict[str, Any]] = (),
) -> Leaderboard:
    """Normalise and order a run's rows and gather the metrics of each cell."""
    rows = [normalise_metric(m) for m in metrics]
    for row in rows:
        row["run_id"] = row["run_id"] or run.get("run_id")
    def cell_key(m: dict[str, Any]) -> tuple[str, str, str, str, str]:
        return (m["corpus"], m["train_corpus"], m["detector"], m["artifact"], m["perturbation"])

    by_key: dict[tuple, Cell] = {}
    for m in rows:
        cell = by_key.get(cell_key(m))
        if cell is None:
            cell = by_key[cell_key(m)] = Cell(*cell_key(m), n_real=m["n_real"], n_fake=m["n_fake"])
        cell.values[m["metric"]] = (m["value"], m["ci_low"], m["ci_high"])

    def cell_order(c: Cell) -> tuple:
        return (c.corpus, c.train_corpus, perturbation_sort_key(c.perturbation), c.artifact != "all", c.artifact,
                c.ranks_last, _auc_key(c.value("auc")), c.detector)

    cells = sorted(by_key.values(), key=cell_order)
    position = {cell_key(vars(c)): i for i, c in enumerate(cells)}
    metric_order = {name: i for i, name in enumerate(METRICS + CALIBRATED_METRICS + REFERENCE_METRICS + SENSITIVITY_METRICS)}
    rows.sort(key=lambda m: (position[cell_key(m)], metric_order.get(m["metric"], len(metric_order)), m["metric"]))
    speed = [normalise_throughput(t) for t in throughput]
    for row in speed:
        row["run_id"] = row["run_id"] or run.get("run_id")
    speed.sort(key=_throughput_key)
    return Leaderboard(
        run=run,
        environment=run_environment(run),
        metrics=rows,
        throughput=speed,
        errors=[{"task": e["task"], "message": e["message"]} for e in errors],
        cells=cells,
    )


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class TableSpec:
    """One table as text cells; the first ``labels`` columns are names (left-aligned)."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    labels: int = 1
    caption: str = ""
    #: A label column the terminal splits the table by (one table per value, column dropped).
    group: int | None = None
    #: One-line remarks shown after the table (e.g. why some rows are missing).
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- controls


def is_control(artifact: str, corpus_artifacts: Iterable[str] = ()) -> bool:
    """Whether a row of ``artifact`` is a control row, kept out of the leaderboard.

    It is when ``artifact`` is a control (``none``, ``null``), or when it is ``all`` on a corpus
    whose fakes carry only controls: ``corpus_artifacts`` are the artifact names of that test
    corpus's rows (see :func:`corpus_artifacts`).
    """
    if artifact in CONTROLS:
        return True
    names = set(corpus_artifacts) - {"all"}
    return artifact == "all" and bool(names) and names <= set(CONTROLS)


def corpus_artifacts(cells: Iterable[Cell]) -> dict[str, set[str]]:
    """The artifact names of each test corpus's cells, for :func:`is_control`."""
    out: dict[str, set[str]] = {}
    for c in cells:
        out.setdefault(c.corpus, set()).add(c.artifact)
    return out


def split_controls(cells: Iterable[Cell]) -> tuple[list[Cell], list[Cell]]:
    """(leaderboard cells, control cells) of ``cells``, each in the order given."""
    cells = list(cells)
    names = corpus_artifacts(cells)
    leaderboard: list[Cell] = []
    controls: list[Cell] = []
    for c in cells:
        (controls if is_control(c.artifact, names[c.corpus]) else leaderboard).append(c)
    return leaderboard, controls


def control_verdict(cell: Cell) -> str:
    """What a ``null`` or ``none`` control row says: ``ok: ...``, ``FLAG: ...`` (look for a leak) or a caveat.

    ``null`` is flagged when its AUC interval excludes 0.5 (a 95% interval does so by chance
    for about one sound row in twenty; a leak is usually far out, and in every detector);
    ``none`` when the mean score shift between a real and its byte copy is not exactly 0.
    """
    if cell.artifact == NONE:
        shift = cell.values.get("score_shift", (math.nan, None, None))[0]
        if is_missing(shift):
            return "-"
        return "ok: exact copies, shift 0" if shift == 0 else f"FLAG: identical images scored {shift:+.3g} apart"
    if cell.artifact != NULL:
        return "-"
    value, low, high = cell.values.get("auc", (math.nan, None, None))
    if is_missing(value) or is_missing(low) or is_missing(high) or low is None or high is None:
        return "-" if is_missing(value) else "no interval"
    if high - low <= 0:
        return "no width: every image scored alike"
    if low <= 0.5 <= high:
        return "ok: CI covers 0.5"
    return f"FLAG: AUC {'above' if low > 0.5 else 'below'} 0.5, CI excludes it: a leak or shortcut?"


def _controls_table(board: Leaderboard) -> list[TableSpec]:
    """The ``null`` and ``none`` rows (clean), in a fixed order: never ranked by AUC."""
    _, controls = split_controls(board.cells)
    cells = [c for c in controls if c.artifact in CONTROLS and c.perturbation == CLEAN]
    if not cells:
        return []
    crossed = any(not c.within for c in cells)
    rows = []
    for c in sorted(cells, key=lambda c: (c.corpus, c.train_corpus, c.artifact, c.detector)):
        names = (c.corpus, *([c.train_corpus] if crossed else []), c.artifact, c.detector)
        rows.append((*names, c.ci("auc"), c.ci("score_shift"), f"{c.n_real}/{c.n_fake}", control_verdict(c)))
    labels = ("corpus", *(["train"] if crossed else []), "control", "detector")
    return [TableSpec(
        "controls", "controls", (*labels, "AUC [95% CI]", "score_shift", "real/fake", "verdict"), rows,
        labels=len(labels), group=0,
        caption="not ranked; null: each fake is another real image of the same generator and camera, so a sound "
                "pipeline's AUC interval covers 0.5 with real width; one that excludes 0.5 is flagged: look for a "
                "leak (pairs across the split, file format, size) or a shortcut (a 95% interval misses 0.5 by chance "
                "for about one sound row in twenty); none: each fake is a byte copy of its real, so the "
                "score shift must be exactly 0 (its AUC is 0.5 by construction and tests nothing)",
    )]


def _detection_tables(board: Leaderboard) -> list[TableSpec]:
    ranked, _ = split_controls(board.cells)
    cells = [c for c in ranked if c.within and c.perturbation == CLEAN]
    if not cells:
        return []
    artifacts = {c.artifact for c in cells} - {"all"}
    inline = len(artifacts) <= MAX_INLINE_ARTIFACTS
    present = {name for c in cells for name in c.values}
    present |= {"ap_chance"} if "ap" in present else set()
    shown = [(name, header) for name, header in DETECTION_COLUMNS if name in present]
    main = [
        (c.corpus, c.artifact, c.detector, c.ci("auc"), *(fmt(c.value(name)) for name, _ in shown), c.counts)
        for c in cells if inline or c.artifact == "all"
    ]
    caption = ("clean test split; each detector trained on the corpus it is tested on; fake is the positive class; "
               f"artifact all = every test image; {BALANCE_NOTE}; {SMALL_NOTE}; {DEGENERATE_NOTE}")
    out = [TableSpec(
        "detection", "detection",
        ("corpus", "artifact", "detector", "AUC [95% CI]", *(h for _, h in shown), "real/fake"),
        main, labels=3, caption=caption, group=0,
    )]
    if not inline:
        out.append(TableSpec(
            "per_artifact", "detection per artifact",
            ("corpus", "artifact", "detector", "AUC [95% CI]", "real/fake"),
            [(c.corpus, c.artifact, c.detector, c.ci("auc"), c.counts)
             for c in cells if c.artifact != "all"],
            labels=3, group=0,
            caption=f"clean test split; every real plus the fakes carrying the artifact; {SMALL_NOTE}; "
                    f"{DEGENERATE_NOTE}",
        ))
    return out


def _all_metric_tables(board: Leaderboard) -> list[TableSpec]:
    """Every metric, one table per (corpus, artifact): metrics down, detectors across."""
    groups: dict[tuple[str, str], list[Cell]] = {}
    for c in board.cells:
        if c.within and c.perturbation == CLEAN:
            groups.setdefault((c.corpus, c.artifact), []).append(c)
    order = {name: i for i, name in enumerate(METRICS + CALIBRATED_METRICS + REFERENCE_METRICS + SENSITIVITY_METRICS)}
    out = []
    for (corpus, artifact), cells in groups.items():
        names = sorted({n for c in cells for n in c.values}, key=lambda n: (order.get(n, len(order)), n))
        rows = [(name, *(c.ci(name) for c in cells)) for name in names]
        rows.append(("real/fake", *(c.counts for c in cells)))
        out.append(TableSpec("all_metrics", f"all metrics: corpus {corpus}, artifact {artifact}",
                             ("metric", *(c.detector for c in cells)), rows,
                             caption="accuracy and accuracy_calibrated are plain shares of images right and move "
                                     f"with the fake share; the balanced_* figures do not; {SMALL_NOTE}"))
    return out


def _auc_text(cell: Cell) -> str:
    """A cell's AUC for the grid tables (no interval, for width), marked when the row is too small to judge."""
    text = fmt(cell.value("auc"))
    return f"{text} {SMALL_MARK}" if cell.small and text != "-" else text


def _cross_generator_table(board: Leaderboard) -> list[TableSpec]:
    cells = [c for c in board.cells if c.artifact == "all" and c.perturbation == CLEAN]
    if all(c.within for c in cells):
        return []
    tests = sorted({c.corpus for c in cells})
    grid: dict[tuple[str, str], dict[str, str]] = {}
    for c in cells:
        grid.setdefault((c.detector, c.train_corpus), {})[c.corpus] = _auc_text(c)
    rows = [(detector, train, *(by_test.get(test, "") for test in tests))
            for (detector, train), by_test in sorted(grid.items())]
    return [TableSpec(
        "cross_generator", "cross-generator AUC", ("detector", "train \\ test", *tests), rows, labels=2,
        caption="rows: corpus trained on; columns: corpus tested on; clean test split, artifact all",
    )]


def _robustness_table(board: Leaderboard) -> list[TableSpec]:
    ranked, _ = split_controls(board.cells)
    perturbed = {c.corpus for c in ranked if c.within and c.artifact == "all" and c.perturbation != CLEAN}
    cells = [c for c in ranked if c.within and c.artifact == "all" and c.corpus in perturbed]
    perturbations = sorted({c.perturbation for c in cells} - {CLEAN}, key=perturbation_sort_key)
    if not perturbations:
        return []
    grid: dict[tuple[str, str], dict[str, Cell]] = {}
    for c in cells:
        grid.setdefault((c.corpus, c.detector), {})[c.perturbation] = c
    small = {(c.corpus, c.detector) for c in cells if c.perturbation == CLEAN and c.ranks_last}
    clean_auc = {k: by_p[CLEAN].value("auc") if CLEAN in by_p else math.nan for k, by_p in grid.items()}
    keys = sorted(grid, key=lambda k: (k[0], k in small, _auc_key(clean_auc[k]), k[1]))
    rows = [(corpus, detector, *(_auc_text(grid[corpus, detector][p]) if p in grid[corpus, detector] else ""
                                 for p in (CLEAN, *perturbations)))
            for corpus, detector in keys]
    return [TableSpec(
        "robustness", "robustness AUC", ("corpus", "detector", "clean", *perturbations), rows, labels=2, group=0,
        caption="AUC on the test split under each test-time perturbation, artifact all; perturbations by kind, "
                "then strength (weakest first)",
    )]


def sensitivity_not_applicable(run: dict[str, Any]) -> dict[str, str]:
    """Corpus label -> why it has no sensitivity figures (an unpaired corpus), as the run recorded it."""
    info = run.get("info") if isinstance(run.get("info"), dict) else {}
    reasons = info.get("sensitivity_not_applicable") if isinstance(info, dict) else None
    return {str(k): str(v) for k, v in reasons.items()} if isinstance(reasons, dict) else {}


def _sensitivity_table(board: Leaderboard) -> list[TableSpec]:
    ranked, _ = split_controls(board.cells)
    cells = [c for c in ranked if any(name in c.values for name in SENSITIVITY_METRICS)]
    unpaired = tuple(f"corpus {corpus}: sensitivity {reason}"
                     for corpus, reason in sorted(sensitivity_not_applicable(board.run).items()))
    if not cells:
        return [TableSpec("sensitivity", "counterfactual sensitivity", ("corpus",), [], labels=1,
                          notes=unpaired)] if unpaired else []
    measured = {c.corpus for c in cells if any(not is_missing(c.value(name)) for name in SENSITIVITY_METRICS)}
    notes = tuple(f"corpus {corpus}: {NO_PAIRS_NOTE}" for corpus in sorted({c.corpus for c in cells} - measured))
    notes += unpaired
    cells = [c for c in cells if c.corpus in measured]
    perturbed = any(c.perturbation != CLEAN for c in cells)
    crossed = any(not c.within for c in cells)
    rows = []
    for c in sorted(cells, key=lambda c: (c.corpus, c.detector, c.artifact != "all", c.artifact,
                                          perturbation_sort_key(c.perturbation))):
        names = (c.corpus, *([c.train_corpus] if crossed else []), c.detector, c.artifact,
                 *(["clean" if c.perturbation == CLEAN else c.perturbation] if perturbed else []))
        rows.append((*names, *(c.ci(name) for name in SENSITIVITY_METRICS)))
    labels = ("corpus", *(["train"] if crossed else []), "detector", "artifact",
              *(["perturbation"] if perturbed else []))
    return [TableSpec(
        "sensitivity", "counterfactual sensitivity", (*labels, *SENSITIVITY_METRICS), rows, labels=len(labels),
        caption="over real/fake pairs whose fake carries the artifact: score_shift = mean score(fake) - score(real); "
                "flip_rate = share of pairs with the real called real and the fake called fake",
        group=0, notes=notes,
    )]


def _throughput_table(board: Leaderboard) -> list[TableSpec]:
    if not board.throughput:
        return []
    optional = {
        "latency_p99_ms": "p99 ms/img", "peak_rss_mb": "peak RSS MB", "decode_images_per_s": "decode img/s",
        "error": "error",
    }
    shown = [name for name in optional if any(t[name] is not None for t in board.throughput)]
    spread = any(t["images_per_s_q1"] is not None or t["rounds"] is not None for t in board.throughput)
    columns = ["kind", "name", "device", "batch", "images/s"] + (["IQR", "rounds"] if spread else [])
    columns += ["p50 ms/img", "p95 ms/img"]
    columns += [optional[name] for name in shown if name != "error"]
    figures = {"latency_p99_ms": 2, "peak_rss_mb": 0, "decode_images_per_s": 1}
    rows = []
    for t in board.throughput:
        row = [t["kind"], t["name"], t["device"], fmt(t["batch_size"]), fmt(t["images_per_s"], 1)]
        row += [fmt_iqr(t["images_per_s_q1"], t["images_per_s_q3"]), fmt(t["rounds"])] if spread else []
        row += [fmt(t["latency_p50_ms"], 2), fmt(t["latency_p95_ms"], 2)]
        row += [fmt(t[name], figures[name]) for name in shown if name != "error"]
        if "error" in shown:
            row.append(_short(t["error"]))
        rows.append(tuple("-" if v is None else str(v) for v in row))
    if "error" in shown:
        columns.append("error")
    return [TableSpec(
        "throughput", "throughput", tuple(columns), rows, labels=3, group=0,
        caption="images/s: detectors and sweeps, the median of timed rounds over the test images held in memory "
                "(IQR: its rounds' quartiles); generators, the median batch of the corpus build (IQR "
                "over its batches; a reused corpus keeps its figures); latency p50/p95/p99 in milliseconds per image "
                "(batch time / batch size); peak RSS: the whole facebench process's resident memory, sampled "
                "while scoring, not the detector's alone; sweep rows: one per batch size",
    )]


def _short(text: str | None, limit: int = 40) -> str:
    if not text:
        return ""
    line = str(text).splitlines()[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def tables(board: Leaderboard, all_metrics: bool = False) -> list[TableSpec]:
    """The tables of the board, in the order they are shown (empty ones left out)."""
    out = _detection_tables(board)
    if all_metrics:
        out += _all_metric_tables(board)
    out += _cross_generator_table(board) + _robustness_table(board) + _sensitivity_table(board)
    out += _controls_table(board)
    return out + _throughput_table(board)


def environment_line(board: Leaderboard) -> str:
    """CPU model and cores, GPU or "no GPU", torch, facebench version and git commit, on one line."""
    env = with_current_names(board.environment)
    cpu = env.get("cpu_model") or "unknown CPU"
    cores = env.get("cpu_cores")
    gpu = env.get("gpu")
    parts = [f"{cpu} ({cores} cores)" if cores else cpu, gpu or "no GPU"]
    if env.get("torch"):
        cuda = env.get("cuda")
        parts.append(f"torch {env['torch']}" + (f" (CUDA {cuda})" if cuda and gpu else ""))
    parts.append(f"facebench {env.get('facebench') or board.run.get('facebench_version') or '?'}")
    if env.get("git_commit"):
        parts.append(f"commit {str(env['git_commit'])[:12]}")
    calibration = run_calibration(board.run).get("units_per_s")
    if calibration is not None and not is_missing(calibration):
        parts.append(f"calibration workload {float(calibration):.1f} units/s")
    return ", ".join(parts)


# --------------------------------------------------------------------------- terminal


def _visible_columns(spec: TableSpec, rows: list[tuple[str, ...]], drop: int | None) -> list[int]:
    """The columns shown: all but ``drop``; in a table split by ``drop``, only those with some cell filled."""
    return [i for i in range(len(spec.columns)) if i != drop and (drop is None or any(row[i] for row in rows))]


def _rich_table(spec: TableSpec, rows: list[tuple[str, ...]], keep: list[int]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    for i in keep:
        column = spec.columns[i]
        if i < spec.labels:
            table.add_column(column, justify="left", overflow="fold")
        elif column == "error":
            table.add_column(column, justify="left", overflow="fold", style="red")
        else:  # two-line header, e.g. "p50" over "ms/img", keeps figure columns narrow
            table.add_column(column.replace(" ", "\n", 1), justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    return table


def split_columns(spec: TableSpec, rows: list[tuple[str, ...]], keep: list[int], console: Console) -> list[list[int]]:
    """``keep`` as one or more column lists, each as wide as fits ``console``: every list holds the
    name columns (the first ``spec.labels``) and the next figure columns that fit beside them."""
    labels = [i for i in keep if i < spec.labels]
    figures = [i for i in keep if i >= spec.labels]
    unbounded = console.options.update_width(1_000_000)  # measure the natural width, not one clamped to the console

    def fits(columns: list[int]) -> bool:
        return Measurement.get(console, unbounded, _rich_table(spec, rows, labels + columns)).maximum <= console.width

    greedy: list[list[int]] = [[]]
    for i in figures:
        if greedy[-1] and not fits(greedy[-1] + [i]):
            greedy.append([])
        greedy[-1].append(i)
    size = math.ceil(len(figures) / len(greedy))  # the same number of parts, as even as fits
    even = [figures[start : start + size] for start in range(0, len(figures), size)] if figures else [[]]
    chosen = even if len(even) == len(greedy) and all(fits(part) for part in even) else greedy
    return [labels + part for part in chosen]


def _print_spec(spec: TableSpec, console: Console) -> None:
    """A title line and a table, or one per value of ``spec.group`` (column dropped), each split into
    several when too wide for the console; then the caption and the notes."""
    groups: dict[str, list[tuple[str, ...]]] = {}
    for row in spec.rows:
        groups.setdefault("" if spec.group is None else row[spec.group], []).append(row)
    if not groups and spec.notes:
        console.print(spec.title, style="bold", highlight=False)
    for value, rows in groups.items():
        title = spec.title if spec.group is None else f"{spec.title}, {spec.columns[spec.group]} {value}"
        parts = split_columns(spec, rows, _visible_columns(spec, rows, spec.group), console)
        for n, columns in enumerate(parts, 1):
            part = f" (part {n} of {len(parts)})" if len(parts) > 1 else ""
            console.print(title + part, style="bold", highlight=False)
            console.print(_rich_table(spec, rows, columns))
            console.print()
    if spec.caption and groups:
        console.print(spec.caption, style="dim", highlight=False)
    for note in spec.notes:
        console.print(note, highlight=False, markup=False)
    if (spec.caption and groups) or spec.notes:
        console.print()


def print_leaderboard(board: Leaderboard, console: Console | None = None, all_metrics: bool = False) -> None:
    """A header line, every table, the failed tasks and a one-line environment footer."""
    console = console or Console()
    run = board.run
    console.print(
        f"facebench leaderboard - suite {run.get('suite')}, run {run.get('run_id')} ({run.get('status')}, "
        f"finished {run.get('finished')})", style="bold", highlight=False,
    )
    console.print()
    specs = tables(board, all_metrics)
    if not specs:
        console.print("no rows stored for this run")
    for spec in specs:
        _print_spec(spec, console)
    for error in board.errors:
        console.print(f"[red]failed[/red] {error['task']}: {error['message']}", highlight=False)
    for line in shortcut_lines(run):
        console.print(f"shortcut warning: {line}", style="yellow", highlight=False, markup=False)
    console.print(f"environment: {environment_line(board)}", style="dim", highlight=False)


# --------------------------------------------------------------------------- Markdown


def _markdown_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown_table(columns: tuple[str, ...], rows: list[tuple], labels: int = 1) -> str:
    align = ["---" if i < labels or c == "error" else "---:" for i, c in enumerate(columns)]
    lines = ["| " + " | ".join(_markdown_cell(c) for c in columns) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(board: Leaderboard, all_metrics: bool = False) -> str:
    """The terminal's tables as GitHub Markdown, under a header naming suite, run, date and environment."""
    run = board.run
    parts = [
        f"# facebench leaderboard: suite `{run.get('suite')}`",
        "",
        f"Run `{run.get('run_id')}` ({run.get('status')}), facebench {run.get('facebench_version')}, "
        f"{run.get('started')} to {run.get('finished')}.",
        "",
        f"Environment: {environment_line(board)}.",
        "",
    ]
    for spec in tables(board, all_metrics):
        parts += [f"## {spec.title[0].upper()}{spec.title[1:]}", ""]
        if spec.rows:
            parts += [_markdown_table(spec.columns, spec.rows, spec.labels), ""]
            if spec.caption:
                parts += [f"_{spec.caption}._", ""]
        parts += [f"{_markdown_cell(note)}  " for note in spec.notes] + ([""] if spec.notes else [])
    if board.errors:
        parts += ["## Failed tasks", ""] + [f"- {e['task']}: {e['message']}" for e in board.errors] + [""]
    if shortcut_lines(run):
        parts += ["## Format shortcuts", ""] + [f"- {_markdown_cell(line)}" for line in shortcut_lines(run)] + [""]
    return "\n".join(parts)


render_markdown = to_markdown


def _write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def write_markdown(board: Leaderboard, path: str | Path, all_metrics: bool = False) -> Path:
    return _write_text(path, to_markdown(board, all_metrics))


# --------------------------------------------------------------------------- CSV and JSON


def _write_csv(path: Path, fields: tuple[str, ...], rows: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({f: "" if row.get(f) is None else row[f] for f in fields})
    tmp.replace(path)
    return path


def to_csv(source: Leaderboard | Iterable[dict[str, Any]], folder: str | Path) -> dict[str, Path]:
    """Long-format CSV files in ``folder``: ``leaderboard.csv`` (one line per metric row) and, for a
    board, ``throughput.csv`` (one line per throughput row). Returns {"metrics"|"throughput": path}.

    Columns are :data:`METRIC_FIELDS` / :data:`THROUGHPUT_FIELDS`; missing figures are empty, a
    NaN value is ``nan``. ``source`` may also be raw metric rows (store or runner), normalised here.
    """
    folder = Path(folder)
    if isinstance(source, Leaderboard):
        metrics, throughput = source.metrics, source.throughput
    else:
        metrics, throughput = [normalise_metric(m) for m in source], None
    out = {"metrics": _write_csv(folder / CSV_FILES["metrics"], METRIC_FIELDS, metrics)}
    if throughput is not None:
        rows = [{**t, "round_images_per_s": _joined(t.get("round_images_per_s"))} for t in throughput]
        out["throughput"] = _write_csv(folder / CSV_FILES["throughput"], THROUGHPUT_FIELDS, rows)
    return out


def _joined(values: Any) -> str | None:
    """Per-round figures as one CSV cell: space-separated numbers."""
    return None if values is None else " ".join(f"{float(v):.6g}" for v in values)


def board_dict(board: Leaderboard) -> dict[str, Any]:
    """The board as plain data: run, environment, one entry per cell (ranked), throughput, errors."""
    ranks: dict[int, int] = {}
    group, rank = None, 0
    for c in board.cells:
        key = (c.corpus, c.train_corpus, c.perturbation, c.artifact)
        rank = rank + 1 if key == group else 1
        group = key
        ranks[id(c)] = rank
    run = {k: board.run.get(k) for k in ("run_id", "suite", "started", "finished", "status", "facebench_version")}
    names = corpus_artifacts(board.cells)
    return json_safe({
        "format": "facebench-leaderboard",
        "version": 1,
        "run": run,
        "environment": dict(sorted(board.environment.items())),
        "calibration": run_calibration(board.run),
        "cells": [
            {"corpus": c.corpus, "train_corpus": c.train_corpus, "artifact": c.artifact,
             "perturbation": c.perturbation, "detector": c.detector, "rank": ranks[id(c)],
             "n_real": c.n_real, "n_fake": c.n_fake, "small_sample": c.small, "degenerate": c.degenerate,
             "control": is_control(c.artifact, names[c.corpus]),
             "metrics": {name: {"value": v, "ci_low": lo, "ci_high": hi} for name, (v, lo, hi) in c.values.items()}}
            for c in board.cells
        ],
        "throughput": [{k: v for k, v in t.items() if k != "run_id"} for t in board.throughput],
        "errors": board.errors,
    })


def to_json(board: Leaderboard, path: str | Path | None = None) -> str:
    """:func:`board_dict` as indented JSON (NaN -> null, stable order); also written to ``path`` if given.

    ``rank`` is the place by AUC among detectors of the same (corpus, train_corpus, perturbation,
    artifact), best first, rows too small to judge (``small_sample``) or scored all alike (``degenerate``,
    see :func:`is_degenerate`) after the others; ``control`` is
    :func:`is_control` (a control row, not a ranking).
    """
    text = json.dumps(board_dict(board), indent=2, allow_nan=False) + "\n"
    if path is not None:
        _write_text(path, text)
    return text
