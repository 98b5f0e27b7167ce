"""Detection metrics from labels and scores (fake is the positive class, label 1).

Point estimates (:func:`compute_metrics`) come from scikit-learn. Bootstrap intervals
(:func:`bootstrap_ci`, :func:`paired_bootstrap_drop`) resample *pairs* (a real and the fake
made from the same seed share a pair id) and evaluate every resample at once: a resample is a
vector of per-pair multiplicities, so each metric becomes a weighted metric computed with
array operations over all resamples (AUC by the rank formula, the ROC from cumulative sums).
An *unpaired* set (no pair id holds both a real and a fake, e.g. a dataset of independent
images, one pair id per image or per group of near-duplicates) is resampled stratified: the
real units and the fake units each drawn with replacement, as many as there are of each, so
every resample keeps the class counts (:func:`unpaired`).
``tests/test_metrics.py`` checks that this weighted path agrees with scikit-learn.

Definitions (``scores >= threshold`` predicts fake):

- ``auc``, ``ap``: ROC AUC and average precision (ties count half in AUC; AP as scikit-learn).
  AUC does not depend on the fake share; AP does: a detector with no skill has an AP equal to
  the fake share, :func:`ap_chance`, which reports show beside AP.
- ``balanced_accuracy`` = (TPR + TNR) / 2 at ``threshold`` (0.5): each class weighs half, so a
  detector that calls everything fake (or real) reads 0.5 whatever the fake share. Reports
  show threshold metrics class-balanced. ``accuracy`` is the plain share of images right: it
  moves with the fake share (with 15 fakes per real, calling everything fake reads 0.938), so
  it is kept for the record, not shown by default. ``real_accuracy`` = TNR; ``fake_accuracy`` = TPR.
- ``eer``: the equal error rate, where FNR = FPR on the ROC curve drawn as straight segments
  between its points (one point per distinct score, plus (0, 0)). On the first segment where
  FNR - FPR turns non-positive, both rates are linear in the position along the segment, so
  the crossing is found by linear interpolation and there FNR = FPR exactly.
- ``tpr_at_fpr_1``, ``tpr_at_fpr_0.1``: the largest TPR among ROC points whose FPR is at most
  1 % / 0.1 % (conservative: no interpolation between points). With few reals this is the TPR
  at zero false positives.
- ``ece``: expected calibration error with 10 equal-width bins over [0, 1] (bin k holds
  ``k/10 <= s < (k+1)/10``; 1.0 falls in the last), scores first clipped to [0, 1]:
  sum over bins of (bin count / n) * |mean score - fraction fake|.
- ``brier``: mean of (clipped score - label) ** 2.

``auc``, ``ap``, ``balanced_accuracy``, ``eer`` and the ``tpr_at_fpr_*`` need both classes and
are NaN otherwise; ``real_accuracy`` is NaN without reals, ``fake_accuracy`` without fakes.
``ece`` and ``brier`` only make sense for probability-like scores.

A row with fewer than :data:`MIN_IMAGES_PER_CLASS` images in either class is too small to judge
(:func:`too_small`): reports mark it, show no interval and rank it last. A bootstrap over
fewer than two pairs has no interval at all (every resample is the same data).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    roc_auc_score,
    roc_curve,
)

from ..contracts.constants import MIN_IMAGES_PER_CLASS, too_small  # noqa: F401 - metrics' public names

#: Metric names in the order reports show them (the ones computed by default).
METRICS = (
    "auc", "ap", "accuracy", "balanced_accuracy", "real_accuracy", "fake_accuracy",
    "eer", "tpr_at_fpr_1", "tpr_at_fpr_0.1", "ece", "brier",
)
#: Added by :func:`compute_metrics` when a calibrated threshold is given.
CALIBRATED_METRICS = ("accuracy_calibrated", "balanced_accuracy_calibrated")
#: Reference levels stored beside the metrics: figures of the labels, not of the detector.
REFERENCE_METRICS = ("ap_chance",)
#: Whether a larger value is better, for every metric name above.
HIGHER_IS_BETTER: dict[str, bool] = {
    name: name not in ("eer", "ece", "brier") for name in METRICS + CALIBRATED_METRICS
}
#: FPR targets of the ``tpr_at_fpr_*`` metrics.
TPR_AT_FPR = {"tpr_at_fpr_1": 0.01, "tpr_at_fpr_0.1": 0.001}
ECE_BINS = 10


_RANK_METRICS = {"auc", "ap", "eer", *TPR_AT_FPR}
# Slack on FPR <= target against rounding; FPRs are k / n_real, far coarser than this.
_FPR_TOL = 1e-12
# Resamples x images held in memory at once by the bootstrap.
_CHUNK_ELEMENTS = 1_000_000


# --------------------------------------------------------------------------- validation


def _check(labels, scores, name: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=float)
    if labels.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"labels and {name} must be 1-D of one length, got {labels.shape} and {scores.shape}")
    if len(labels) == 0:
        raise ValueError(f"no {name} to evaluate")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{name} contain NaN or infinity")
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
        raise ValueError("labels contain NaN or infinity")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError(f"labels must be 0 (real) or 1 (fake), got values {np.unique(labels)[:5].tolist()}")
    return labels.astype(int), scores


def _check_pairs(pairs, n: int) -> tuple[np.ndarray, int]:
    """Pair ids as indices 0..n_pairs-1, and n_pairs."""
    pairs = np.asarray(pairs)
    if pairs.shape != (n,):
        raise ValueError(f"pairs must be 1-D with one id per image, got {pairs.shape} for {n} images")
    if pairs.dtype.kind == "f" and not np.all(np.isfinite(pairs)):
        raise ValueError("pairs contain NaN or infinity")
    uniques, index = np.unique(pairs, return_inverse=True)
    return index.reshape(-1), len(uniques)


def _unit_labels(labels: np.ndarray, pair_index: np.ndarray, n_pairs: int) -> np.ndarray | None:
    """The label of every pair (unit) when none holds both classes (an unpaired set), else None."""
    has_real = np.zeros(n_pairs, bool)
    has_fake = np.zeros(n_pairs, bool)
    has_real[pair_index[labels == 0]] = True
    has_fake[pair_index[labels == 1]] = True
    if (has_real & has_fake).any():
        return None
    return has_fake.astype(int)


def unpaired(labels, pairs) -> bool:
    """Whether no pair id of ``pairs`` holds both a real and a fake of ``labels``: then the
    bootstrap resamples reals and fakes apart (stratified) and counterfactual sensitivity does
    not apply."""
    labels, _ = _check(labels, np.zeros(len(np.asarray(labels))))
    pair_index, n_pairs = _check_pairs(pairs, len(labels))
    return _unit_labels(labels, pair_index, n_pairs) is not None


def _check_threshold(value: float, name: str) -> float:
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} is NaN")
    return value


def _metric_names(metric_names: Iterable[str] | None, calibrated_threshold: float | None) -> tuple[str, ...]:
    if metric_names is None:
        return METRICS + (CALIBRATED_METRICS if calibrated_threshold is not None else ())
    names = (metric_names,) if isinstance(metric_names, str) else tuple(metric_names)
    unknown = [n for n in names if n not in HIGHER_IS_BETTER]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(HIGHER_IS_BETTER)}")
    if calibrated_threshold is None and any(n in CALIBRATED_METRICS for n in names):
        raise ValueError(f"{', '.join(CALIBRATED_METRICS)} need a calibrated_threshold")
    if not names:
        raise ValueError("no metric names given")
    return names


# --------------------------------------------------------------------------- ROC helpers


def _eer(fpr: np.ndarray, tpr: np.ndarray) -> np.ndarray:
    """EER per row of ROC points (rows: curves, columns: points from (0, 0) to (1, 1))."""
    gap = 1.0 - tpr - fpr  # FNR - FPR: 1 at (0, 0), -1 at (1, 1), never increasing
    i = np.argmax(gap <= 0, axis=1)  # first point at or past the crossing (>= 1)
    rows = np.arange(len(fpr))
    g0, g1 = gap[rows, i - 1], gap[rows, i]
    f0, f1 = fpr[rows, i - 1], fpr[rows, i]
    t = g0 / (g0 - g1)  # g0 > 0 >= g1
    return f0 + t * (f1 - f0)


def _tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> np.ndarray:
    """Largest TPR among the points with FPR <= target, per row (FPR and TPR never decrease)."""
    last = (fpr <= target + _FPR_TOL).sum(axis=1) - 1  # (0, 0) always qualifies
    return tpr[np.arange(len(fpr)), last]


def _ece(labels: np.ndarray, scores: np.ndarray) -> float:
    clipped = np.clip(scores, 0.0, 1.0)
    bins = np.minimum((clipped * ECE_BINS).astype(int), ECE_BINS - 1)
    gap = np.bincount(bins, weights=clipped - labels, minlength=ECE_BINS)  # per bin: sum(score) - sum(fake)
    return float(np.abs(gap).sum() / len(labels))


# --------------------------------------------------------------------------- point estimates


def compute_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float = 0.5,
    calibrated_threshold: float | None = None,
) -> dict[str, float]:
    """Every metric of ``METRICS`` (see the module docstring), name -> value.

    With ``calibrated_threshold`` (picked on held-out data, e.g. by :func:`calibrated_threshold`)
    also ``accuracy_calibrated`` and ``balanced_accuracy_calibrated`` at that threshold.
    """
    labels, scores = _check(labels, scores)
    threshold = _check_threshold(threshold, "threshold")
    has_real, has_fake = bool((labels == 0).any()), bool((labels == 1).any())
    both = has_real and has_fake
    nan = math.nan

    def at(cut: float) -> tuple[float, float, float, float]:
        predicted = (scores >= cut).astype(int)
        tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
        return (
            float(accuracy_score(labels, predicted)),
            float(balanced_accuracy_score(labels, predicted)) if both else nan,
            tn / (tn + fp) if has_real else nan,
            tp / (tp + fn) if has_fake else nan,
        )

    accuracy, balanced, real_acc, fake_acc = at(threshold)
    values = {
        "auc": float(roc_auc_score(labels, scores)) if both else nan,
        "ap": float(average_precision_score(labels, scores)) if both else nan,
        "accuracy": accuracy,
        "balanced_accuracy": balanced,
        "real_accuracy": float(real_acc),
        "fake_accuracy": float(fake_acc),
    }
    if both:
        fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
        values["eer"] = float(_eer(fpr[None], tpr[None])[0])
        for name, target in TPR_AT_FPR.items():
            values[name] = float(_tpr_at_fpr(fpr[None], tpr[None], target)[0])
    else:
        values.update({"eer": nan, **{name: nan for name in TPR_AT_FPR}})
    values["ece"] = _ece(labels, scores)
    values["brier"] = float(brier_score_loss(labels, np.clip(scores, 0.0, 1.0), pos_label=1, labels=[0, 1]))
    if calibrated_threshold is not None:
        cut = _check_threshold(calibrated_threshold, "calibrated_threshold")
        accuracy, balanced, _, _ = at(cut)
        values["accuracy_calibrated"] = accuracy
        values["balanced_accuracy_calibrated"] = balanced
    return values


def ap_chance(labels: np.ndarray) -> float:
    """AP's chance level: the fake share of ``labels``, the expected AP of a detector whose
    scores carry no information (0.5 on a row with one fake per real, 0.938 with 15)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        raise ValueError("no labels to evaluate")
    return float(np.mean(labels == 1))


def _cuts(labels: np.ndarray, scores: np.ndarray):
    """Distinct scores (descending) and fakes/reals flagged by each cut k = 0..U (top k scores)."""
    distinct, inverse = np.unique(-scores, return_inverse=True)
    fakes = np.concatenate([[0], np.cumsum(np.bincount(inverse, weights=labels, minlength=len(distinct)))])
    reals = np.concatenate([[0], np.cumsum(np.bincount(inverse, weights=1 - labels, minlength=len(distinct)))])
    return -distinct, fakes, reals


def calibrated_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold maximising balanced accuracy on a (held-out) calibration set.

    It is the midpoint between the lowest score flagged fake and the highest score kept real;
    ``-inf`` if flagging everything is best, ``+inf`` if flagging nothing is. When several cuts
    tie, the lowest threshold wins (flag more fakes). Needs both classes.
    """
    labels, scores = _check(labels, scores)
    distinct, fakes, reals = _cuts(labels, scores)
    if fakes[-1] == 0 or reals[-1] == 0:
        raise ValueError("calibrating a threshold needs real and fake images")
    balanced = (fakes / fakes[-1] + 1.0 - reals / reals[-1]) / 2
    k = len(balanced) - 1 - int(np.argmax(balanced[::-1]))  # last (lowest-threshold) maximum
    if k == 0:
        return math.inf
    if k == len(distinct):
        return -math.inf
    high, low = distinct[k - 1], distinct[k]
    middle = low + (high - low) / 2
    return float(middle if middle > low else high)  # adjacent floats: keep ``low`` real


def oracle_accuracy(labels: np.ndarray, scores: np.ndarray) -> float:
    """ORACLE: the best accuracy over all thresholds, chosen on these same labels.

    Optimistic by construction (the threshold sees the test labels); report it only as an
    upper bound, never in place of ``accuracy`` or ``accuracy_calibrated``.
    """
    labels, scores = _check(labels, scores)
    _, fakes, reals = _cuts(labels, scores)
    correct = fakes + (reals[-1] - reals)  # fakes flagged + reals not flagged
    return float(correct.max() / len(labels))


# --------------------------------------------------------------------------- weighted (bootstrap) path


class _Weighted:
    """Metrics of one data set under many weightings, each a multiplicity per pair."""

    def __init__(self, labels, scores, pair_index, n_pairs, threshold, calibrated_threshold):
        self.n_pairs = n_pairs
        order = np.argsort(-scores, kind="stable")
        self.sorted_pair = pair_index[order]
        self.sorted_fake = labels[order].astype(float)
        ends = np.flatnonzero(np.diff(scores[order]) != 0)
        self.group_ends = np.append(ends, len(scores) - 1)  # last image of each distinct score
        # Per-pair sums, so threshold metrics, ECE and Brier are one matrix product.
        clipped = np.clip(scores, 0.0, 1.0)
        bins = np.minimum((clipped * ECE_BINS).astype(int), ECE_BINS - 1)
        fake = labels.astype(float)
        columns = {"n": np.ones_like(fake), "fake": fake, "sq": (clipped - fake) ** 2}
        cuts = {"": threshold} if calibrated_threshold is None else {"": threshold, "_cal": calibrated_threshold}
        for suffix, cut in cuts.items():
            flagged = scores >= cut
            columns["tp" + suffix] = fake * flagged
            columns["tn" + suffix] = (1 - fake) * ~flagged
        for b in range(ECE_BINS):
            columns[f"gap{b}"] = (clipped - fake) * (bins == b)
        self.keys = {key: i for i, key in enumerate(columns)}
        table = np.zeros((n_pairs, len(columns)))
        np.add.at(table, pair_index, np.stack(list(columns.values()), axis=1))
        self.table = table

    def __call__(self, counts: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Each metric of ``names`` for each row of ``counts`` (resamples x pairs)."""
        out: dict[str, np.ndarray] = {}
        step = self.rows_per_chunk()
        for start in range(0, len(counts), step):
            part = self._chunk(counts[start : start + step], names)
            for name in names:
                out.setdefault(name, []).append(part[name])
        return {name: np.concatenate(values) for name, values in out.items()}

    def rows_per_chunk(self) -> int:
        """Resamples per chunk so that one chunk's working arrays stay near _CHUNK_ELEMENTS."""
        return max(1, _CHUNK_ELEMENTS // max(len(self.sorted_pair), self.n_pairs, 1))

    def _chunk(self, counts: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        sums = counts @ self.table
        col = lambda key: sums[:, self.keys[key]]  # noqa: E731
        n, fakes = col("n"), col("fake")
        reals = n - fakes
        out: dict[str, np.ndarray] = {}
        with np.errstate(divide="ignore", invalid="ignore"):
            for suffix, name in (("", ""), ("_cal", "_calibrated")):
                if "tp" + suffix not in self.keys:
                    continue
                tpr = np.where(fakes > 0, col("tp" + suffix) / fakes, np.nan)
                tnr = np.where(reals > 0, col("tn" + suffix) / reals, np.nan)
                out["accuracy" + name] = (col("tp" + suffix) + col("tn" + suffix)) / n
                out["balanced_accuracy" + name] = (tpr + tnr) / 2
                if not suffix:
                    out["real_accuracy"], out["fake_accuracy"] = tnr, tpr
            gaps = sums[:, [self.keys[f"gap{b}"] for b in range(ECE_BINS)]]
            out["ece"] = np.abs(gaps).sum(axis=1) / n
            out["brier"] = col("sq") / n
            if _RANK_METRICS & set(names):
                out.update(self._rank_metrics(counts))
            both = (fakes > 0) & (reals > 0)
            for name in _RANK_METRICS:
                if name in out:
                    out[name] = np.where(both, out[name], np.nan)
        return out

    def _rank_metrics(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        weight = counts[:, self.sorted_pair]  # resamples x images, by descending score
        tp = np.cumsum(weight * self.sorted_fake, axis=1)[:, self.group_ends]
        fp = np.cumsum(weight * (1 - self.sorted_fake), axis=1)[:, self.group_ends]
        del weight
        zero = np.zeros((len(counts), 1))
        tp, fp = np.hstack([zero, tp]), np.hstack([zero, fp])  # prepend the (0, 0) point
        p, n = tp[:, -1:], fp[:, -1:]
        d_tp, d_fp = np.diff(tp, axis=1), np.diff(fp, axis=1)  # fakes / reals at each distinct score
        out = {
            # Mann-Whitney: each real scores below the fakes above it, ties count half.
            "auc": (d_fp * (tp[:, 1:] - d_tp / 2)).sum(axis=1) / (p * n)[:, 0],
            # AP = sum over distinct scores of (recall step) * precision there.
            "ap": (d_tp * np.where(tp[:, 1:] > 0, tp[:, 1:] / (tp[:, 1:] + fp[:, 1:]), 0)).sum(axis=1) / p[:, 0],
        }
        fpr, tpr = fp / n, tp / p
        ok = (p[:, 0] > 0) & (n[:, 0] > 0)
        fpr[~ok], tpr[~ok] = np.linspace(0, 1, fpr.shape[1]), np.linspace(0, 1, fpr.shape[1])  # placeholders
        out["eer"] = _eer(fpr, tpr)
        for name, target in TPR_AT_FPR.items():
            out[name] = _tpr_at_fpr(fpr, tpr, target)
        return out


def _resample_counts(n_pairs: int, n_resamples: int, seed: int, rows_per_chunk: int | None = None):
    """How often each pair is drawn in each resample (n_pairs draws with replacement each), as
    float arrays of at most ``rows_per_chunk`` resamples, so memory does not grow with
    resamples x pairs."""
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    step = int(n_resamples) if rows_per_chunk is None else max(1, int(rows_per_chunk))
    for start in range(0, int(n_resamples), step):
        rows = min(step, int(n_resamples) - start)
        draws = rng.integers(0, n_pairs, size=(rows, n_pairs))
        draws += np.arange(rows)[:, None] * n_pairs
        yield np.bincount(draws.ravel(), minlength=rows * n_pairs).reshape(-1, n_pairs).astype(float)


def _stratified_counts(strata: np.ndarray, n_resamples: int, seed: int, rows_per_chunk: int | None = None):
    """As :func:`_resample_counts`, drawing the units of each stratum (0: real, 1: fake) from
    that stratum alone, as many as it holds, so every resample keeps the class counts."""
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(strata == stratum) for stratum in (0, 1)]
    step = int(n_resamples) if rows_per_chunk is None else max(1, int(rows_per_chunk))
    for start in range(0, int(n_resamples), step):
        rows = min(step, int(n_resamples) - start)
        counts = np.zeros((rows, len(strata)))
        for units in members:
            if len(units) == 0:
                continue
            draws = rng.integers(0, len(units), size=(rows, len(units)))
            draws += np.arange(rows)[:, None] * len(units)
            counts[:, units] = np.bincount(draws.ravel(), minlength=rows * len(units)).reshape(rows, len(units))
        yield counts


def _counts(labels: np.ndarray, pair_index: np.ndarray, n_pairs: int, n_resamples: int, seed: int,
            rows_per_chunk: int | None, stratified: bool | None):
    """The resamples' multiplicities: by pair, or stratified by class for an unpaired set
    (``stratified`` None: decided by the data, :func:`unpaired`)."""
    strata = _unit_labels(labels, pair_index, n_pairs)
    if stratified and strata is None:
        raise ValueError("a stratified bootstrap needs each pair id to hold one class; some hold a real and a fake")
    if strata is not None and stratified is not False:
        return _stratified_counts(strata, n_resamples, seed, rows_per_chunk)
    return _resample_counts(n_pairs, n_resamples, seed, rows_per_chunk)


def _over_chunks(weighted: "_Weighted", chunks, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    parts = [weighted(counts, names) for counts in chunks]
    return {name: np.concatenate([part[name] for part in parts]) for name in names}


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    valid = values[~np.isnan(values)]
    if len(valid) == 0 or np.isnan(values).sum() > len(values) / 2:
        return (math.nan, math.nan)
    alpha = (1 - confidence) / 2
    low, high = np.percentile(valid, [100 * alpha, 100 * (1 - alpha)])
    return (float(low), float(high))


def _check_confidence(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return float(confidence)


def bootstrap_ci(
    labels: np.ndarray,
    scores: np.ndarray,
    pairs: np.ndarray,
    metric_names: Iterable[str] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    threshold: float = 0.5,
    calibrated_threshold: float | None = None,
    stratified: bool | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals, name -> (low, high), resampling pairs with replacement.

    Each resample draws as many pair ids as there are (with replacement) and keeps every image
    of each drawn pair. When no pair holds both a real and a fake (:func:`unpaired`; or with
    ``stratified=True``), the real pairs and the fake pairs are drawn apart, as many of each as
    there are; ``stratified=False`` forces the plain draw. Resamples where a metric is NaN are
    ignored; if more than half are NaN, its interval is (nan, nan). With a single pair every
    resample is the data itself, so every interval is (nan, nan) rather than a zero-width one.
    ``metric_names`` defaults to ``METRICS`` (plus the calibrated ones when ``calibrated_threshold``
    is given).
    """
    labels, scores = _check(labels, scores)
    names = _metric_names(metric_names, calibrated_threshold)
    confidence = _check_confidence(confidence)
    pair_index, n_pairs = _check_pairs(pairs, len(labels))
    if n_pairs < 2:
        return {name: (math.nan, math.nan) for name in names}
    cal = None if calibrated_threshold is None else _check_threshold(calibrated_threshold, "calibrated_threshold")
    weighted = _Weighted(labels, scores, pair_index, n_pairs, _check_threshold(threshold, "threshold"), cal)
    chunks = _counts(labels, pair_index, n_pairs, n_resamples, seed, weighted.rows_per_chunk(), stratified)
    values = _over_chunks(weighted, chunks, names)
    return {name: _interval(values[name], confidence) for name in names}


def metrics_with_ci(
    labels: np.ndarray,
    scores: np.ndarray,
    pairs: np.ndarray,
    metric_names: Iterable[str] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    threshold: float = 0.5,
    calibrated_threshold: float | None = None,
    stratified: bool | None = None,
) -> dict[str, dict[str, float]]:
    """{name: {"value", "ci_low", "ci_high"}}: :func:`compute_metrics` plus :func:`bootstrap_ci`."""
    intervals = bootstrap_ci(
        labels, scores, pairs, metric_names, n_resamples, seed, confidence, threshold, calibrated_threshold, stratified
    )
    values = compute_metrics(labels, scores, threshold, calibrated_threshold)
    return {name: {"value": values[name], "ci_low": low, "ci_high": high} for name, (low, high) in intervals.items()}


def paired_bootstrap_drop(
    labels: np.ndarray,
    scores_base: np.ndarray,
    scores_new: np.ndarray,
    pairs: np.ndarray,
    metric: str = "auc",
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    threshold: float = 0.5,
) -> dict[str, float]:
    """How much worse ``scores_new`` is than ``scores_base`` on one metric, with a paired bootstrap.

    ``drop`` is base - new where higher is better and new - base where lower is better (``eer``,
    ``ece``, ``brier``), so a positive drop always means worse. Both score sets are evaluated on
    the same resampled pairs (an unpaired set: drawn stratified by class, as :func:`bootstrap_ci`);
    ``ci_low``/``ci_high`` bound the drop, and ``p_worse`` is the fraction of resamples with
    drop <= 0 (a one-sided p-value against "new is worse").
    """
    labels, scores_base = _check(labels, scores_base, "scores_base")
    _, scores_new = _check(labels, scores_new, "scores_new")
    (metric,) = _metric_names([metric], None)
    confidence = _check_confidence(confidence)
    pair_index, n_pairs = _check_pairs(pairs, len(labels))
    threshold = _check_threshold(threshold, "threshold")
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    base = compute_metrics(labels, scores_base, threshold)[metric]
    new = compute_metrics(labels, scores_new, threshold)[metric]
    weighted_base = _Weighted(labels, scores_base, pair_index, n_pairs, threshold, None)
    weighted_new = _Weighted(labels, scores_new, pair_index, n_pairs, threshold, None)
    drops = sign * np.concatenate([
        weighted_base(counts, (metric,))[metric] - weighted_new(counts, (metric,))[metric]
        for counts in _counts(labels, pair_index, n_pairs, n_resamples, seed, weighted_base.rows_per_chunk(), None)
    ])
    low, high = _interval(drops, confidence)
    valid = drops[~np.isnan(drops)]
    p_worse = math.nan if math.isnan(low) else float(np.mean(valid <= 0))
    return {"base": base, "new": new, "drop": sign * (base - new), "ci_low": low, "ci_high": high, "p_worse": p_worse}
