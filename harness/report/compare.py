"""The CI gate: compare a current run with a baseline run, metric by metric and in throughput.

A metric row is compared only with the row of the other run that has the same corpus digest,
detector, artifact, perturbation, train corpus (its digest too, where both runs record it) and
split (where both record it); the others are listed as not comparable, with the reason. Rows
missing in the current run fail; when no row is comparable, :func:`compare` raises. The paired
bootstrap below pairs images by corpus digest and id; it runs for a change beyond the tolerance
in either direction, and the verdict follows the interval of the drop (above 0: worse, below 0:
better, else not significant).

A metric row fails when it got worse by more than its tolerance *and* the drop is real: a
paired bootstrap over the test images both runs scored (resampling pairs) puts the whole
confidence interval of the drop above zero. Without per-image scores for either run the rule
falls back to "the two runs' confidence intervals do not overlap", and without intervals to
the tolerance alone. Gains never fail.

Detector throughput (:func:`judge_speed`) fails when the median images/s fell by more than a
relative tolerance *and* the drop stands out of the measured spread: the per-round figures of
the two runs differ in a one-sided Mann-Whitney U test (p < :data:`SPEED_ALPHA`); with too few
rounds for that test to reach the level, the interquartile ranges must not overlap; runs
without rounds (stored before schema 3) fall back to the tolerance alone. A detector that errors
now and did not before fails too. When both runs timed the calibration workload beside the
detector round by round (``round_images_per_unit``, schema 5), the gate judges those per-round
images per calibration unit instead of images/s: the machine's drift in speed cancels out of
them, a slower detector does not (the workload does not slow down with it); the row and the
summary say so. Otherwise, when the two runs come from different CPUs (``cpu_model``) and both
recorded the calibration workload, CPU figures are compared as images per calibration unit
(images/s divided by the run's calibration units/s), and the summary says so.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import mannwhitneyu

from ..contracts.errors import FacebenchError
from ..data.environment import run_calibration, with_current_names
from ..run.metrics import CALIBRATED_METRICS, HIGHER_IS_BETTER, METRICS, paired_bootstrap_drop
from ..data.results import Results

#: Metrics gated by default, with the largest tolerated worsening (absolute).
DEFAULT_TOLERANCES: dict[str, float] = {
    "auc": 0.02, "ap": 0.02, "balanced_accuracy": 0.03, "tpr_at_fpr_1": 0.05, "eer": 0.02,
}
#: Robustness metrics of perturbed runs: lower is better (``score_shift`` by its magnitude).
EXTRA_METRICS = ("score_shift", "flip_rate")
KNOWN_METRICS = METRICS + CALIBRATED_METRICS + EXTRA_METRICS
METRIC_KEY = ("corpus", "train_corpus", "detector", "artifact", "perturbation", "metric")
SCORE_KEY = ("corpus", "train_corpus", "perturbation", "detector")
THROUGHPUT_KEY = ("name", "device", "batch_size")
CONFIDENCE = 0.95
#: Environment fields shown side by side; the first three must match for throughput to compare.
ENVIRONMENT_FIELDS = ("cpu_model", "gpu", "torch", "git_commit")
MACHINE_FIELDS = ("cpu_model", "gpu", "torch")

#: One-sided level of the speed gate's Mann-Whitney U test on per-round images/s.
SPEED_ALPHA = 0.05
#: On one CPU, a calibration workload this much faster or slower in one run gets a caution in the summary.
MACHINE_DRIFT = 0.1

#: Under a throughput failure: two stored runs carry the machine's drift between them; speed-ab does not.
SPEED_AB_HINT = ("two runs made at different times also differ by the machine's drift between them: to tell a slower "
                 "build from a slower machine, time both builds side by side with `facebench speed-ab` "
                 "(README, Speed)")
PAIRED = "paired bootstrap"
OVERLAP = "CI overlap"
#: Added to a throughput row's reason when it was judged on per-round images per calibration unit.
PER_ROUND_UNITS_NOTE = "judged on images per calibration unit, round by round"
TOLERANCE_ONLY = "no scores: tolerance only"

#: Why a metric row was not compared (``MetricRow.not_comparable``).
DIFFERENT_CORPUS = "different corpus"
DIFFERENT_TRAIN_CORPUS = "different train corpus"
DIFFERENT_SPLIT = "different split"
NO_DIGEST = "no corpus digest"
MISSING_IN_BASELINE = "missing in baseline"
MISSING_IN_CURRENT = "missing in current"
#: Added to a lost throughput row's reason when the current run timed no detector at all.
NO_THROUGHPUT_IN_CURRENT = ("; the current run measured no detector throughput (run --no-throughput or [throughput] "
                            "measure = false): `facebench compare --no-throughput` compares quality alone")
#: Leading characters of a digest shown in reasons.
DIGEST_CHARS = 12


class CompareError(FacebenchError):
    """Bad comparison settings (an unknown metric, a negative tolerance)."""


@dataclass
class MetricRow:
    """One gated metric of one (test corpus, train corpus, detector, artifact, perturbation)."""

    corpus: str
    train_corpus: str
    detector: str
    artifact: str
    perturbation: str
    metric: str
    base: float
    new: float
    tolerance: float
    worse_by: float = math.nan
    drop_ci: tuple[float, float] | None = None
    test: str = ""  # which rule decided: PAIRED, OVERLAP, TOLERANCE_ONLY, or "" (not needed)
    status: str = "pass"  # "pass", "fail" or "new"
    reason: str = ""
    #: The test corpus's digest (the baseline's; the current run's for a row only there).
    corpus_digest: str = ""
    #: Why the row was not compared (DIFFERENT_CORPUS, MISSING_IN_CURRENT, ...); "" when it was.
    not_comparable: str = ""
    kind: str = field(default="metric", init=False)

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    @property
    def compared(self) -> bool:
        return not self.not_comparable

    @property
    def delta(self) -> float:
        return self.new - self.base

    @property
    def label(self) -> str:
        where = f"{self.detector} @ {self.corpus}"
        extras = []
        if self.train_corpus and self.train_corpus != self.corpus:
            extras.append(f"trained on {self.train_corpus}")
        if self.artifact != "all":
            extras.append(f"artifact {self.artifact}")
        if self.perturbation != "none":
            extras.append(self.perturbation)
        return where + (f" ({', '.join(extras)})" if extras else "")


@dataclass
class ThroughputRow:
    """Detector images/s of one (name, device, batch size) in both runs."""

    name: str
    device: str
    batch_size: int
    base: float
    new: float
    base_error: str | None = None
    new_error: str | None = None
    status: str = "pass"
    reason: str = ""
    #: The rounds' interquartile ranges (NaN when a run has none) and the rank test's p-value.
    base_iqr: tuple[float, float] = (math.nan, math.nan)
    new_iqr: tuple[float, float] = (math.nan, math.nan)
    p_value: float = math.nan
    #: Figures are images per calibration unit, not images/s (the runs come from different CPUs).
    normalised: bool = False
    #: Figures are images per calibration unit round by round (the workload timed beside each round).
    per_round_units: bool = False
    kind: str = field(default="throughput", init=False)

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    @property
    def change(self) -> float:
        """Relative change of images/s (new / base - 1); NaN when either is missing."""
        if not (_finite(self.base) and _finite(self.new)) or self.base <= 0:
            return math.nan
        return self.new / self.base - 1.0

    @property
    def label(self) -> str:
        return f"{self.name} [{self.device}, batch {self.batch_size}]"


@dataclass
class Comparison:
    """The outcome of :func:`compare`: rows, the verdict and a Markdown summary."""

    baseline: Results
    current: Results
    metric_rows: list[MetricRow]
    throughput_rows: list[ThroughputRow]
    tolerances: dict[str, float]
    throughput_tolerance: float | None
    n_resamples: int

    @property
    def rows(self) -> list[MetricRow | ThroughputRow]:
        return [*self.metric_rows, *self.throughput_rows]

    @property
    def failures(self) -> list[MetricRow | ThroughputRow]:
        return [r for r in self.rows if r.failed]

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    @property
    def compared_rows(self) -> list[MetricRow]:
        """Metric rows that had a like-for-like counterpart in the other run."""
        return [r for r in self.metric_rows if r.compared]

    @property
    def not_comparable_rows(self) -> list[MetricRow]:
        """Metric rows listed but not compared (see ``MetricRow.not_comparable``)."""
        return [r for r in self.metric_rows if not r.compared]

    def calibration_note(self) -> str | None:
        """How throughput was normalised by the calibration workload; or, on one CPU, a caution when
        the workload itself ran at different speeds (the machine was busier in one run); else None."""
        base, new = (_as_float(run_calibration(r.run).get("units_per_s")) for r in (self.baseline, self.current))
        paired = [r for r in self.throughput_rows if r.per_round_units]
        if self.throughput_rows and not _same_workload(self.baseline, self.current):
            names = [run_calibration(r.run).get("workload") for r in (self.baseline, self.current)]
            return (f"the runs timed different calibration workloads (baseline {names[0]}, current {names[1]}), whose "
                    "units do not compare: throughput is judged on raw images/s")
        if paired:
            return (f"{len(paired)} of {len(self.throughput_rows)} throughput rows were judged on images per "
                    "calibration unit: each timed round's images/s divided by the calibration workload's units/s "
                    "timed in the same round, so a machine that drifts in speed during or between the runs "
                    "cancels out, while a slower detector does not")
        if any(r.normalised for r in self.throughput_rows):
            return (f"the runs come from different CPUs: CPU throughput is compared as images per calibration unit "
                    f"(images/s divided by the calibration workload's units/s: baseline {base:.1f}, current {new:.1f})")
        if self.throughput_rows and _finite(base) and _finite(new) and base > 0 and abs(new / base - 1) > MACHINE_DRIFT:
            return (f"the calibration workload's speed changed by {new / base - 1:+.0%} between the runs on this CPU "
                    f"(baseline {base:.1f}, current {new:.1f} units/s): the machine itself was busier or freer in "
                    "one run, so a throughput change may be the machine's, not the build's")
        return None

    def environment_warning(self) -> str | None:
        """A warning when the runs come from different machines or torch versions, else None."""
        base, new = _environment(self.baseline), _environment(self.current)
        differ = [f for f in MACHINE_FIELDS if base.get(f) != new.get(f)]
        if not differ:
            return None
        return (f"the runs differ in {', '.join(differ)}: throughput measured on different machines or "
                "software is not comparable")

    def markdown(self, every_row: bool = True) -> str:
        """A summary for a CI job page: verdict, failures, compared rows, throughput, environments.
        Without ``every_row`` the metric rows that passed are counted, not listed."""
        return _markdown(self, every_row)


def compare(
    baseline: Results,
    current: Results,
    tolerances: dict[str, float] | None = None,
    throughput_tolerance: float | None = 0.2,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Compare ``current`` with ``baseline``; see the module docstring for the rules.

    ``tolerances`` (metric -> largest tolerated worsening) are added to :data:`DEFAULT_TOLERANCES`
    (a given name overrides its default; ``inf`` shows a metric without gating it). Only metrics
    named there are compared. ``throughput_tolerance`` is the largest tolerated relative drop
    of detector images/s; None skips throughput.

    Raises :class:`CompareError` when the runs have metric rows but none is comparable.
    """
    gates = check_tolerances({**DEFAULT_TOLERANCES, **(tolerances or {})})
    if throughput_tolerance is not None and not 0 <= throughput_tolerance < 1:
        raise CompareError(f"throughput tolerance must be in [0, 1), got {throughput_tolerance}")
    runs = (RunCorpora.of(baseline), RunCorpora.of(current))
    scores = _ScorePairs(baseline.scores, current.scores, runs)
    base_rows = _index(baseline.metrics, METRIC_KEY, lambda r: r.get("metric") in gates)
    new_rows = _index(current.metrics, METRIC_KEY, lambda r: r.get("metric") in gates)
    metric_rows = [
        _compare_metric(key, base_rows.get(key), new_rows.get(key), gates[key[-1]], scores, n_resamples, seed, runs)
        for key in _ordered(base_rows, new_rows)
    ]
    if metric_rows and not any(r.compared for r in metric_rows):
        raise CompareError(nothing_comparable(baseline, current, metric_rows))
    throughput_rows = [] if throughput_tolerance is None else _compare_throughput(
        baseline.throughput, current.throughput, throughput_tolerance, _calibration_scale(baseline, current),
        per_unit=_same_workload(baseline, current),
    )
    return Comparison(baseline, current, metric_rows, throughput_rows, gates, throughput_tolerance, n_resamples)


def check_tolerances(tolerances: dict[str, float]) -> dict[str, float]:
    unknown = [name for name in tolerances if name not in KNOWN_METRICS]
    if unknown:
        raise CompareError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(KNOWN_METRICS)}")
    out = {}
    for name, value in tolerances.items():
        value = float(value)
        if math.isnan(value) or value < 0:
            raise CompareError(f"tolerance of {name} must be a number >= 0, got {value}")
        out[name] = value
    return out


def parse_tolerances(items: Iterable[str] | None) -> dict[str, float]:
    """``["auc=0.01", "eer=0.02"]`` -> ``{"auc": 0.01, "eer": 0.02}`` (checked)."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or not name.strip() or number is None:
            raise CompareError(f"--tolerance {item!r} is not METRIC=NUMBER, e.g. auc=0.02")
        out[name.strip()] = number
    return check_tolerances(out)


# --------------------------------------------------------------------------- metrics


def _higher_is_better(metric: str) -> bool:
    return HIGHER_IS_BETTER.get(metric, False)


def _worse_by(metric: str, base: float, new: float) -> float:
    if metric == "score_shift":  # closer to zero is better
        return abs(new) - abs(base)
    return base - new if _higher_is_better(metric) else new - base


@dataclass
class RunCorpora:
    """What one run's metric rows were measured on: corpus label -> digest, and the split
    (``None`` for a run that did not record it)."""

    digests: dict[str, str]
    split: dict[str, Any] | None

    @classmethod
    def of(cls, results: Results) -> "RunCorpora":
        """From the run's corpora, its record's ``split`` and the metric rows' ``corpus_digest``."""
        info = results.info
        digests = {c.label: c.digest for c in results.corpora if c.digest}
        for r in results.metrics:
            if r.get("corpus") is not None and r.get("corpus_digest"):
                digests[str(r["corpus"])] = str(r["corpus_digest"])
        split = info.get("split")
        return cls(digests, dict(split) if isinstance(split, dict) else None)

    def digest_of(self, row: dict[str, Any]) -> str | None:
        """The digest of the corpus a metric or score row was measured on (None: not recorded)."""
        return row.get("corpus_digest") or self.digests.get(str(row.get("corpus")))


def nothing_comparable(baseline: Results, current: Results, rows: list[MetricRow]) -> str:
    """One line saying why no metric row of the two runs could be compared."""
    parts = []
    for why, n in Counter(r.not_comparable for r in rows).most_common():
        first = next(r.reason for r in rows if r.not_comparable == why)
        detail = first.partition(": ")[2]  # e.g. "faces is 1a2b... in baseline, 3c4d... in current"
        parts.append(f"{n} {why}" + (f" ({detail})" if detail else ""))
    return (f"nothing to compare: no metric row of baseline run {baseline.run_id!r} has a like-for-like row in "
            f"current run {current.run_id!r}: {'; '.join(parts)}; compare runs that scored the same corpora "
            "(same digests) with the same split")


def _short(digest: str) -> str:
    return digest[:DIGEST_CHARS]


def _split_text(split: dict[str, Any]) -> str:
    return ", ".join(f"{name} {value}" for name, value in split.items())


def _difference(row: MetricRow, base_row: dict, new_row: dict, runs: tuple[RunCorpora, RunCorpora]) -> tuple[str, str] | None:
    """(why, reason) when the two rows were not measured alike, else None."""
    base_run, new_run = runs
    base_digest, new_digest = base_run.digest_of(base_row), new_run.digest_of(new_row)
    if not base_digest or not new_digest:
        side = "baseline" if not base_digest else "current"
        return NO_DIGEST, f"{NO_DIGEST}: the {side} run does not record which {row.corpus} it scored"
    if base_digest != new_digest:
        return DIFFERENT_CORPUS, (f"{DIFFERENT_CORPUS}: {row.corpus} is {_short(base_digest)} in baseline, "
                                  f"{_short(new_digest)} in current")
    if row.train_corpus != row.corpus:
        base_train, new_train = base_run.digests.get(row.train_corpus), new_run.digests.get(row.train_corpus)
        if base_train and new_train and base_train != new_train:
            return DIFFERENT_TRAIN_CORPUS, (f"{DIFFERENT_TRAIN_CORPUS}: {row.train_corpus} is {_short(base_train)} "
                                            f"in baseline, {_short(new_train)} in current")
    if base_run.split is not None and new_run.split is not None and base_run.split != new_run.split:
        return DIFFERENT_SPLIT, (f"{DIFFERENT_SPLIT}: {_split_text(base_run.split)} in baseline; "
                                 f"{_split_text(new_run.split)} in current")
    return None


def _not_comparable(row: MetricRow, why: str, reason: str, status: str = "not comparable") -> MetricRow:
    row.not_comparable, row.reason, row.status = why, reason, status
    return row


def _compare_metric(key: tuple[str, str, str, str, str, str], base_row, new_row, tolerance, scores, n_resamples, seed,
                    runs) -> MetricRow:
    base = _number(base_row, "value")
    new = _number(new_row, "value")
    row = MetricRow(*key, base=base, new=new, tolerance=tolerance)
    if base_row is None:
        row.corpus_digest = runs[1].digest_of(new_row) or ""
        return _not_comparable(row, MISSING_IN_BASELINE, MISSING_IN_BASELINE, status="new")
    row.corpus_digest = runs[0].digest_of(base_row) or ""
    if new_row is None:  # a row the current run lost fails the gate
        return _not_comparable(row, MISSING_IN_CURRENT, MISSING_IN_CURRENT, status="fail")
    difference = _difference(row, base_row, new_row, runs)
    if difference is not None:
        return _not_comparable(row, *difference)
    if not _finite(base):
        row.reason = "no baseline value" if _finite(new) else "no value in either run"
        return row
    if not _finite(new):
        row.status, row.reason = "fail", "no value in current (baseline had one)"
        return row
    row.worse_by = _worse_by(row.metric, base, new)
    if abs(row.worse_by) <= tolerance:
        row.reason = "unchanged" if row.worse_by == 0 else "within tolerance"  # a gain this small is not judged
        return row
    drop = scores.drop(row, n_resamples, seed)
    if drop is not None:
        return _paired_verdict(row, drop)
    if row.worse_by < 0:
        row.reason = "better"
        return row
    beyond = f"worse by {row.worse_by:.4g} > {tolerance:g}"
    intervals = [(_number(r, "ci_low"), _number(r, "ci_high")) for r in (base_row, new_row)]
    if all(_finite(low) and _finite(high) for low, high in intervals):
        row.test = OVERLAP
        (b_low, b_high), (n_low, n_high) = intervals
        if max(b_low, n_low) > min(b_high, n_high):
            row.status, row.reason = "fail", f"{beyond}; the runs' CIs do not overlap (no paired scores)"
        else:
            row.reason = f"{beyond}, but the runs' CIs overlap (no paired scores)"
        return row
    row.test = TOLERANCE_ONLY
    row.status, row.reason = "fail", f"{beyond} ({TOLERANCE_ONLY})"
    return row


def _paired_verdict(row: MetricRow, drop: dict[str, float]) -> MetricRow:
    """Judge a row by the paired bootstrap: its drop (positive: worse) and the interval of it.

    The words follow the interval: above 0 is worse, below 0 is better, else not significant;
    the row fails only when the drop is beyond the tolerance and its interval lies above 0.
    """
    stored = row.worse_by
    row.test, row.worse_by = PAIRED, drop["drop"]
    low, high = row.drop_ci = (drop["ci_low"], drop["ci_high"])
    worse_by, tolerance = row.worse_by, row.tolerance
    if low > 0:
        interval = "paired bootstrap CI of the drop above 0"
        if worse_by > tolerance:
            row.status, row.reason = "fail", f"worse by {worse_by:.4g} > {tolerance:g}; significant ({interval})"
        else:
            row.reason = f"worse by {worse_by:.4g}, within tolerance {tolerance:g} ({interval})"
    elif high < 0:
        row.reason = f"better by {-worse_by:.4g}; significant (paired bootstrap CI of the drop below 0)"
    else:
        interval = "paired bootstrap CI of the drop includes 0"
        if worse_by > tolerance:
            row.reason = f"worse by {worse_by:.4g} > {tolerance:g}, but not significant ({interval})"
        elif worse_by < 0:
            row.reason = f"better by {-worse_by:.4g}, but not significant ({interval})"
        else:
            row.reason = f"no significant change ({interval})"
    if not math.isclose(stored, worse_by, abs_tol=1e-9):
        row.reason += (f"; from the per-image scores of {drop['n_images']} images, while the stored metric rows "
                       f"give a drop of {stored:.4g}")
    return row


class _ScorePairs:
    """Per-image scores of both runs, matched by (corpus digest, train corpus, perturbation,
    detector) and image id: never by id alone, so images of different corpora never pair."""

    def __init__(self, base: list[dict[str, Any]], new: list[dict[str, Any]], runs: tuple[RunCorpora, RunCorpora]):
        self.base, self.new = _group_scores(base, runs[0]), _group_scores(new, runs[1])

    def drop(self, row: MetricRow, n_resamples: int, seed: int) -> dict[str, float] | None:
        """The paired bootstrap drop of a compared metric row, or None without usable matched scores."""
        if row.metric not in HIGHER_IS_BETTER or not row.corpus_digest:
            return None
        group = (row.corpus_digest, row.train_corpus, row.perturbation, row.detector)
        base, new = self.base.get(group), self.new.get(group)
        if not base or not new:
            return None
        labels, pairs, s_base, s_new = [], [], [], []
        for image_id, (label, pair, names, score) in base.items():
            other = new.get(image_id)
            if other is None or other[0] != label:
                continue
            if row.artifact != "all" and label == 1 and not (row.artifact in names and row.artifact in other[2]):
                continue
            labels.append(label)
            pairs.append(pair)
            s_base.append(score)
            s_new.append(other[3])
        labels = np.array(labels, dtype=int)
        if len(labels) == 0 or labels.min() == labels.max():
            return None
        s_base, s_new = np.array(s_base, dtype=float), np.array(s_new, dtype=float)
        if not (np.all(np.isfinite(s_base)) and np.all(np.isfinite(s_new))):
            return None
        result = paired_bootstrap_drop(
            labels, s_base, s_new, np.array(pairs, dtype=object).astype(str), row.metric, n_resamples, seed, CONFIDENCE
        )
        return None if math.isnan(result["ci_low"]) else {**result, "n_images": len(labels)}


def _group_scores(rows: list[dict[str, Any]], run: RunCorpora) -> dict[tuple, dict[str, tuple]]:
    groups: dict[tuple, dict[str, tuple]] = {}
    for r in rows:
        digest = run.digest_of(r)
        if not digest:  # a score of an unknown corpus can pair with nothing
            continue
        corpus = r.get("corpus")
        key = (digest, r.get("train_corpus") or corpus, r.get("perturbation") or "none", r.get("detector"))
        score = r.get("score")
        groups.setdefault(key, {})[str(r.get("id"))] = (
            int(r["label"]), str(r.get("pair", r.get("id"))), set(r.get("artifact_names") or ()),
            math.nan if score is None else float(score),
        )
    return groups


# --------------------------------------------------------------------------- throughput


def _compare_throughput(base_rows, new_rows, tolerance: float,
                        scale: tuple[float, float] | None = None, per_unit: bool = True) -> list[ThroughputRow]:
    """``scale``: (baseline, current) calibration units/s that CPU figures are divided by, or None;
    ``per_unit``: whether images per calibration unit may be judged (False: the runs timed
    different calibration workloads, whose units do not compare)."""
    detectors = lambda r: r.get("kind") == "detector"  # noqa: E731
    base, new = _index(base_rows, THROUGHPUT_KEY, detectors), _index(new_rows, THROUGHPUT_KEY, detectors)
    out = []
    for key in _ordered(base, new):
        b, n = base.get(key), new.get(key)
        divide = scale if scale is not None and str(key[1]).startswith("cpu") else (1.0, 1.0)
        base_speed, new_speed = _speed(b, divide[0]), _speed(n, divide[1])
        base_units, new_units = (_per_unit_speed(b), _per_unit_speed(n)) if per_unit else (None, None)
        per_round_units = base_units is not None and new_units is not None
        if base_units is not None and new_units is not None:  # drift-free figures: they take precedence
            (base_speed, new_speed), divide = (base_units, new_units), (1.0, 1.0)
        row = ThroughputRow(key[0], key[1], key[2], base=base_speed["median"], new=new_speed["median"],
                            base_error=(b or {}).get("error") or None, new_error=(n or {}).get("error") or None,
                            base_iqr=base_speed["iqr"], new_iqr=new_speed["iqr"],
                            normalised=divide != (1.0, 1.0), per_round_units=per_round_units)
        if b is None:
            row.status, row.reason = "new", "new in current (not in baseline)"
        elif n is None:
            row.status, row.reason = "fail", "missing in current" + ("" if new else NO_THROUGHPUT_IN_CURRENT)
        elif row.new_error:
            if row.base_error:
                row.reason = "errors in both runs"
            else:
                row.status, row.reason = "fail", f"error in current: {row.new_error}"
        elif row.base_error or not _finite(row.base) or row.base <= 0:
            row.reason = "no baseline figure"
        elif not _finite(row.new):
            row.status, row.reason = "fail", "no images/s in current"
        else:
            verdict = judge_speed(base_speed, new_speed, tolerance)
            row.p_value = verdict["p_value"]
            row.status, row.reason = ("fail" if verdict["failed"] else "pass"), verdict["reason"]
            if row.per_round_units:
                row.reason += f" ({PER_ROUND_UNITS_NOTE})"
        out.append(row)
    return out


def _speed(row: dict[str, Any] | None, divide: float = 1.0) -> dict[str, Any]:
    """A throughput row's median, IQR and per-round figures, each divided by ``divide``."""
    rounds = [float(v) / divide for v in (row or {}).get("round_images_per_s") or () if _finite(_as_float(v))]
    return {"median": _number(row, "images_per_s") / divide, "rounds": rounds,
            "iqr": (_number(row, "images_per_s_q1") / divide, _number(row, "images_per_s_q3") / divide)}


def _per_unit_speed(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """A throughput row's per-round images per calibration unit as :func:`_speed` gives images/s;
    None when the row has none (stored before schema 5, timed on CUDA, or without the workload)."""
    rounds = [float(v) for v in (row or {}).get("round_images_per_unit") or () if _finite(_as_float(v))]
    if not rounds:
        return None
    return {"median": float(np.median(rounds)), "rounds": rounds,
            "iqr": (float(np.percentile(rounds, 25)), float(np.percentile(rounds, 75)))}


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def judge_speed(base: dict[str, Any], new: dict[str, Any], tolerance: float,
                alpha: float = SPEED_ALPHA) -> dict[str, Any]:
    """The speed gate on one detector: ``base`` and ``new`` hold ``median`` (images/s), ``rounds``
    (per-round images/s, may be empty) and ``iqr`` ((q1, q3), may be NaN).

    Fails when the median fell by more than ``tolerance`` (relative) and the drop is significant:
    a one-sided Mann-Whitney U test of the rounds (baseline faster) gives p < ``alpha``; where
    the two runs have too few rounds for any outcome of that test to reach ``alpha``, the IQRs
    must not overlap (current q3 below baseline q1); with neither, the tolerance alone decides.
    Returns {"failed", "reason", "p_value", "test"}.
    """
    change = new["median"] / base["median"] - 1.0
    out = {"failed": False, "p_value": math.nan, "test": ""}
    if change >= -tolerance:
        faster = f"faster by {change:.0%} (> {tolerance:.0%})" if change > tolerance else "within tolerance"
        return {**out, "reason": faster}
    beyond = f"slower by {-change:.0%} (> {tolerance:.0%})"
    b_rounds, n_rounds = base["rounds"], new["rounds"]
    if len(b_rounds) >= 2 and len(n_rounds) >= 2 and _smallest_p(len(b_rounds), len(n_rounds)) < alpha:
        p = float(mannwhitneyu(b_rounds, n_rounds, alternative="greater").pvalue)
        rounds = f"{len(b_rounds)} vs {len(n_rounds)} rounds, Mann-Whitney p = {p:.2g}"
        if p < alpha:
            return {**out, "failed": True, "p_value": p, "test": "mann-whitney",
                    "reason": f"{beyond}; the rounds differ ({rounds} < {alpha:g})"}
        return {**out, "p_value": p, "test": "mann-whitney",
                "reason": f"{beyond}, but within the measured spread ({rounds} >= {alpha:g})"}
    (b_q1, _), (_, n_q3) = base["iqr"], new["iqr"]
    if _finite(b_q1) and _finite(n_q3):
        if n_q3 < b_q1:
            return {**out, "failed": True, "test": "iqr", "reason": f"{beyond}; the rounds' IQRs do not overlap"}
        return {**out, "test": "iqr", "reason": f"{beyond}, but the rounds' IQRs overlap"}
    return {**out, "failed": True, "test": "tolerance", "reason": f"{beyond} (no rounds: tolerance only)"}


def _smallest_p(n1: int, n2: int) -> float:
    """The smallest one-sided p-value an exact Mann-Whitney U test of samples of n1 and n2 can give."""
    return 1.0 / math.comb(n1 + n2, n1)


def _same_workload(baseline: Results, current: Results) -> bool:
    """Whether the two runs' calibration units are the same unit: False only when both runs name
    their calibration workload and the names (with versions) differ."""
    names = run_calibration(baseline.run).get("workload"), run_calibration(current.run).get("workload")
    return None in names or names[0] == names[1]


def _calibration_scale(baseline: Results, current: Results) -> tuple[float, float] | None:
    """(baseline, current) calibration units/s when the runs come from different CPUs and both
    recorded the calibration workload (the same workload); else None (no normalisation)."""
    if _environment(baseline).get("cpu_model") == _environment(current).get("cpu_model"):
        return None
    base, new = run_calibration(baseline.run), run_calibration(current.run)
    speeds = (_as_float(base.get("units_per_s")), _as_float(new.get("units_per_s")))
    if base.get("workload") != new.get("workload") or not all(_finite(v) and v > 0 for v in speeds):
        return None
    return speeds


# --------------------------------------------------------------------------- helpers


def _index(rows: list[dict[str, Any]], key: tuple[str, ...], keep) -> dict[tuple, dict[str, Any]]:
    out: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        if not keep(r):
            continue
        values = dict(r)
        if "train_corpus" in key and not values.get("train_corpus"):
            values["train_corpus"] = values.get("corpus")
        values.setdefault("perturbation", "none")
        values.setdefault("artifact", "all")
        k = tuple(values.get(name) for name in key)
        out.setdefault(k, r)  # a duplicate row (should not happen) keeps the first
    return out


def _ordered(base: dict, new: dict) -> list[tuple]:
    """Baseline keys in baseline order, then keys only in current."""
    return [*base, *(k for k in new if k not in base)]


def _number(row: dict[str, Any] | None, column: str) -> float:
    if row is None or row.get(column) is None:
        return math.nan
    try:
        return float(row[column])
    except (TypeError, ValueError):
        return math.nan


def _finite(value: float) -> bool:
    return value is not None and math.isfinite(value)


def _environment(results: Results) -> dict[str, Any]:
    return with_current_names(results.environment)


# --------------------------------------------------------------------------- Markdown


def _fmt(value: float, digits: int = 4) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _metric_cells(r: MetricRow) -> list[Any]:
    ci = "-" if r.drop_ci is None else f"[{_fmt(r.drop_ci[0])}, {_fmt(r.drop_ci[1])}]"
    delta = "-" if not (_finite(r.base) and _finite(r.new)) else f"{r.delta:+.4f}"
    verdict = {"fail": "**FAIL**", "pass": "pass", "new": "new", "not comparable": "not comparable"}[r.status]
    return [r.metric, r.label, _fmt(r.base), _fmt(r.new), delta, f"{r.tolerance:g}", ci, f"{verdict}: {r.reason}"]


def _throughput_cells(r: ThroughputRow) -> list[Any]:
    change = "-" if math.isnan(r.change) else f"{r.change:+.1%}"
    verdict = {"fail": "**FAIL**", "pass": "pass", "new": "new"}[r.status]
    digits = 4 if r.normalised or r.per_round_units else 1
    return [r.label, _fmt(r.base, digits), _iqr(r.base_iqr, digits), _fmt(r.new, digits), _iqr(r.new_iqr, digits),
            change, f"{verdict}: {r.reason}"]


def _iqr(iqr: tuple[float, float], digits: int) -> str:
    return "-" if not all(_finite(v) for v in iqr) else f"[{_fmt(iqr[0], digits)}, {_fmt(iqr[1], digits)}]"


METRIC_HEADER = ["metric", "detector @ test corpus", "base", "new", "delta", "tolerance", "drop CI", "verdict"]
NOT_COMPARABLE_HEADER = ["detector @ test corpus", "metrics", "test corpus digest", "why not compared"]


def _not_comparable_lines(rows: list[MetricRow]) -> list[str]:
    """One table line per (row label, reason): the metrics of a row share why they were not compared."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for r in rows:
        groups.setdefault((r.label, _short(r.corpus_digest) or "-", r.reason), []).append(r.metric)
    return _table(NOT_COMPARABLE_HEADER, [[label, ", ".join(metrics), digest, reason]
                                          for (label, digest, reason), metrics in groups.items()])


def _comparable_summary(c: Comparison) -> str:
    counts = Counter(r.not_comparable for r in c.not_comparable_rows)
    why = "".join(f", {n} {reason}" for reason, n in counts.most_common())
    return (f"Metric rows: {len(c.compared_rows)} compared, {len(c.not_comparable_rows)} not comparable"
            + (f" ({why[2:]})" if why else "") + ".")
THROUGHPUT_HEADER = ["detector @ corpus [device, batch]", "base images/s", "new images/s", "change", "verdict"]

THROUGHPUT_HEADER = ["detector @ corpus [device, batch]", "base images/s", "base IQR", "new images/s", "new IQR",
                     "change", "verdict"]


def _describe(results: Results) -> str:
    run = results.run
    where = f" from `{results.source}`" if results.source else ""
    return f"run `{run.get('run_id', '?')}` (suite {run.get('suite', '?')}, finished {run.get('finished', '?')}){where}"


def _markdown(c: Comparison, every_row: bool = True) -> str:
    failures = c.failures
    metric_fail = [r for r in c.metric_rows if r.failed]
    tp_fail = [r for r in c.throughput_rows if r.failed]
    checked = len(c.rows)
    verdict = "FAIL" if failures else "PASS"
    lines = [
        f"## facebench compare: {verdict}",
        "",
        f"**{verdict}**: {len(failures)} of {checked} checks failed "
        f"({len(metric_fail)} of {len(c.metric_rows)} metric rows, {len(tp_fail)} of {len(c.throughput_rows)} throughput rows).",
        "",
        _comparable_summary(c),
        "",
        f"- baseline: {_describe(c.baseline)}",
        f"- current: {_describe(c.current)}",
        "- tolerances (largest tolerated worsening): "
        + ", ".join(f"{name} {value:g}" for name, value in c.tolerances.items())
        + ("" if c.throughput_tolerance is None else f"; detector images/s -{c.throughput_tolerance:.0%}"),
        f"- rule: a metric fails when it is worse by more than its tolerance and a paired bootstrap "
        f"({c.n_resamples} resamples of pairs, {CONFIDENCE:.0%}) over the test images both runs scored puts the "
        "whole CI of the drop above 0. Without per-image scores for either run: worse by more than the "
        "tolerance and the two runs' CIs do not overlap; without CIs either: the tolerance alone "
        f"(\"{TOLERANCE_ONLY}\"). Gains never fail; rows missing in current fail.",
        "- comparable: a row is compared only with the row of the same corpus digest, detector, artifact, "
        "perturbation, train corpus and split; the paired bootstrap pairs images by corpus digest and id, and "
        "the verdict follows its interval of the drop (above 0: worse, below 0: better, else not significant).",
        "- speed rule: a detector's throughput fails when its median images/s fell by more than the tolerance and "
        f"its timed rounds differ from the baseline's (one-sided Mann-Whitney U, p < {SPEED_ALPHA:g}; with too few "
        "rounds for that test: IQRs that do not overlap; runs without rounds: the tolerance alone). Where both "
        "runs timed the calibration workload beside every round, the figures judged are images per calibration "
        "unit round by round, so the machine's drift cancels out.",
    ]
    if failures:
        lines += ["", "### Failures", ""]
        if metric_fail:
            lines += _table(METRIC_HEADER, [_metric_cells(r) for r in metric_fail])
        if tp_fail:
            lines += [""] if metric_fail else []
            lines += _table(THROUGHPUT_HEADER, [_throughput_cells(r) for r in tp_fail])
            lines += ["", SPEED_AB_HINT]
    others = [r for r in c.compared_rows if not r.failed]
    lines += ["", f"### Metrics ({len(others)} other compared rows)", ""]
    if others and not every_row:
        lines += [f"{len(others)} rows within their tolerances (listed with --all, and in --markdown-out)"]
    else:
        lines += _table(METRIC_HEADER, [_metric_cells(r) for r in others]) if others else ["(none)"]
    if c.not_comparable_rows:
        lines += ["", f"### Not comparable ({len(c.not_comparable_rows)} metric rows)", ""]
        lines += _not_comparable_lines(c.not_comparable_rows)
    if c.throughput_rows:
        lines += ["", "### Detector throughput", ""]
        lines += _table(THROUGHPUT_HEADER, [_throughput_cells(r) for r in c.throughput_rows])
    elif c.throughput_tolerance is None:
        lines += ["", "### Detector throughput", "", "(not checked: --no-throughput)"]
    if c.current.errors:
        lines += ["", "### Errors in the current run", ""]
        lines += [f"- {_cell(e.get('task', '?'))}: {_cell(e.get('message', ''))}" for e in c.current.errors]
    base_env, new_env = _environment(c.baseline), _environment(c.current)
    lines += ["", "### Environment", ""]
    lines += _table(["", "baseline", "current"],
                    [[name, base_env.get(name) or "-", new_env.get(name) or "-"] for name in ENVIRONMENT_FIELDS])
    warning = c.environment_warning()
    if warning:
        lines += ["", f"> **Warning:** {warning}."]
    note = c.calibration_note()
    if note:
        lines += ["", f"> **Note:** {note}."]
    return "\n".join(lines) + "\n"
