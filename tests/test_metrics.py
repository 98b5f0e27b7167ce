import math
import time

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from facebench.harness.run.metrics import (
    HIGHER_IS_BETTER,
    METRICS,
    _check_pairs,
    _interval,
    _resample_counts,
    _Weighted,
    bootstrap_ci,
    calibrated_threshold,
    compute_metrics,
    metrics_with_ci,
    oracle_accuracy,
    paired_bootstrap_drop,
)


def test_metrics_match_hand_computed_values():
    labels = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.6, 0.4, 0.9])
    m = compute_metrics(labels, scores)
    # pairs (fake, real): (0.4,0.1) ok, (0.4,0.6) wrong, (0.9,0.1) ok, (0.9,0.6) ok -> 3/4
    assert m["auc"] == pytest.approx(0.75)
    # ranking 0.9(F) 0.6(R) 0.4(F) 0.1(R): precision at each fake = 1/1, 2/3 -> AP = (1 + 2/3) / 2
    assert m["ap"] == pytest.approx((1 + 2 / 3) / 2)
    # at 0.5: 0.1 real ok, 0.6 real wrong, 0.4 fake wrong, 0.9 fake ok
    assert m["accuracy"] == pytest.approx(0.5)


def test_perfect_and_inverted_scores():
    labels = np.array([0, 0, 1, 1])
    assert compute_metrics(labels, np.array([0.0, 0.1, 0.8, 0.9]))["auc"] == 1.0
    assert compute_metrics(labels, np.array([0.9, 0.8, 0.1, 0.0]))["auc"] == 0.0


def test_single_class_gives_nan_auc_not_an_exception():
    m = compute_metrics(np.array([1, 1]), np.array([0.2, 0.7]))
    assert math.isnan(m["auc"]) and math.isnan(m["ap"])
    assert m["accuracy"] == 0.5


@pytest.mark.parametrize(
    "labels, scores",
    [([0, 1], [0.5]), ([], []), ([0, 1], [0.1, float("nan")]), ([0, 1], [0.1, float("inf")])],
)
def test_bad_inputs_are_refused(labels, scores):
    with pytest.raises(ValueError):
        compute_metrics(np.array(labels), np.array(scores))


# --------------------------------------------------------------------------- the other metrics by hand


def test_every_metric_is_reported_in_order():
    m = compute_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    assert tuple(m) == METRICS
    assert METRICS[:3] == ("auc", "ap", "accuracy")
    assert set(HIGHER_IS_BETTER) == set(METRICS) | {"accuracy_calibrated", "balanced_accuracy_calibrated"}
    assert [n for n, up in HIGHER_IS_BETTER.items() if not up] == ["eer", "ece", "brier"]


def test_class_rates_eer_tpr_ece_brier_by_hand():
    labels = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.6, 0.4, 0.9])
    m = compute_metrics(labels, scores)
    # at 0.5: reals 0.1 ok, 0.6 wrong -> TNR 1/2; fakes 0.4 wrong, 0.9 ok -> TPR 1/2
    assert m["real_accuracy"] == pytest.approx(0.5)
    assert m["fake_accuracy"] == pytest.approx(0.5)
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    # ROC (fpr, tpr): (0,0) (0,.5)@0.9 (.5,.5)@0.6 (.5,1)@0.4 (1,1)@0.1;
    # FNR - FPR: 1, .5, 0 -> exact crossing at (.5,.5): FNR = FPR = 0.5
    assert m["eer"] == pytest.approx(0.5)
    # points with FPR = 0: (0,0), (0,.5) -> 0.5 for both targets
    assert m["tpr_at_fpr_1"] == pytest.approx(0.5)
    assert m["tpr_at_fpr_0.1"] == pytest.approx(0.5)
    # one image per bin: ECE = mean |score - label| = (.1 + .6 + .6 + .1) / 4
    assert m["ece"] == pytest.approx(1.4 / 4)
    # Brier = (.1^2 + .6^2 + .6^2 + .1^2) / 4 = .74 / 4
    assert m["brier"] == pytest.approx(0.185)


def test_eer_crossing_exactly_at_a_roc_point():
    # fakes .9 .8 .3, reals .7 .2 .1; ROC: (0,0) (0,1/3) (0,2/3) (1/3,2/3) (1/3,1) (2/3,1) (1,1)
    # FNR - FPR: 1, 2/3, 1/3, 0 -> FNR = FPR = 1/3 at (1/3, 2/3)
    m = compute_metrics(np.array([1, 1, 1, 0, 0, 0]), np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1]))
    assert m["eer"] == pytest.approx(1 / 3)


def test_eer_interpolates_inside_a_segment():
    # tie at 0.5 (one real, one fake): ROC (0,0) (0,.5) (.5,1) (1,1); FNR - FPR: 1, .5, -.5
    # crossing halfway along (0,.5)-(.5,1): FPR = .25, TPR = .75, FNR = .25
    assert compute_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.5, 0.5, 0.9]))["eer"] == pytest.approx(0.25)
    # one fake .4, reals .6 .2 .1: ROC (0,0) (1/3,0) (1/3,1) (2/3,1) (1,1); FNR - FPR: 1, 2/3, -1/3
    # vertical segment at FPR 1/3, crossing 2/3 of the way up: TPR 2/3, FNR 1/3 = FPR
    assert compute_metrics(np.array([0, 0, 0, 1]), np.array([0.6, 0.2, 0.1, 0.4]))["eer"] == pytest.approx(1 / 3)


def test_tpr_at_fpr_takes_the_best_point_within_the_target():
    # 1000 reals: .95, .85, 8 x .75, .7, 989 x .1; 10 fakes: 3 x .99, 2 x .9, 3 x .8, .7, .05
    reals = np.r_[0.95, 0.85, [0.75] * 8, 0.7, [0.1] * 989]
    fakes = np.r_[[0.99] * 3, [0.9] * 2, [0.8] * 3, 0.7, 0.05]
    labels = np.r_[np.zeros(1000), np.ones(10)]
    m = compute_metrics(labels, np.r_[reals, fakes])
    # ROC: (0,.3)@.99 (.001,.3)@.95 (.001,.5)@.9 (.002,.5)@.85 (.002,.8)@.8 (.01,.8)@.75 (.011,.9)@.7 ...
    # FPR <= 0.1%: best (.001, .5); FPR <= 1%: best (.01, .8) - (.011, .9) is just past it
    assert m["tpr_at_fpr_0.1"] == pytest.approx(0.5)
    assert m["tpr_at_fpr_1"] == pytest.approx(0.8)


def test_ece_and_brier_by_hand_with_shared_bins():
    labels = np.array([0, 1, 1, 1, 0])
    scores = np.array([0.12, 0.18, 0.82, 0.88, 0.85])
    m = compute_metrics(labels, scores)
    # bin [.1,.2): .12 .18 -> mean .15, fake fraction 1/2, |.15 - .5| = .35, weight 2/5
    # bin [.8,.9): .82 .88 .85 -> mean .85, fake fraction 2/3, |.85 - 2/3| = 11/60, weight 3/5
    assert m["ece"] == pytest.approx(0.4 * 0.35 + 0.6 * (0.85 - 2 / 3))
    # (.12^2 + .82^2 + .18^2 + .12^2 + .85^2) / 5 = (.0144 + .6724 + .0324 + .0144 + .7225) / 5
    assert m["brier"] == pytest.approx(1.4561 / 5)


def test_ece_and_brier_clip_scores_to_the_unit_interval():
    # -0.5 -> 0 (real), 1.7 -> 1 (fake, in the last bin): perfectly calibrated, zero error
    m = compute_metrics(np.array([0, 1]), np.array([-0.5, 1.7]))
    assert m["ece"] == 0.0 and m["brier"] == 0.0
    # 2.0 clips to 1 for a real: Brier (1 - 0)^2 / 2, ECE bin [.9,1]: |1 - 0| * 1/2
    m = compute_metrics(np.array([0, 1]), np.array([2.0, 1.0]))
    assert m["brier"] == pytest.approx(0.5) and m["ece"] == pytest.approx(0.5)


def test_single_class_nans_follow_what_each_metric_needs():
    fakes_only = compute_metrics(np.array([1, 1]), np.array([0.2, 0.7]))
    for name in ("balanced_accuracy", "real_accuracy", "eer", "tpr_at_fpr_1", "tpr_at_fpr_0.1"):
        assert math.isnan(fakes_only[name]), name
    assert fakes_only["fake_accuracy"] == 0.5
    # (.8^2 + .3^2) / 2 = .365; ECE: bins .2 and .7, (|.2 - 1| + |.7 - 1|) / 2 = .55
    assert fakes_only["brier"] == pytest.approx(0.365) and fakes_only["ece"] == pytest.approx(0.55)
    reals_only = compute_metrics(np.array([0, 0]), np.array([0.2, 0.7]))
    assert reals_only["real_accuracy"] == 0.5 and math.isnan(reals_only["fake_accuracy"])


# --------------------------------------------------------------------------- thresholds


CAL_LABELS = np.array([0, 0, 0, 0, 1, 1, 1])
CAL_SCORES = np.array([0.1, 0.2, 0.3, 0.35, 0.32, 0.6, 0.7])


def test_calibrated_threshold_maximises_balanced_accuracy():
    # cuts (flag >= s): .7: (1/3 + 1)/2 = .667; .6: (2/3 + 1)/2 = .833; .35: (2/3 + 3/4)/2 = .708;
    # .32: (1 + 3/4)/2 = .875 (best); .3: (1 + 1/2)/2 = .75 -> midpoint of .32 and .3
    assert calibrated_threshold(CAL_LABELS, CAL_SCORES) == pytest.approx(0.31)


def test_calibrated_threshold_ties_take_the_lowest_cut():
    # .8F .6R .4F .2R: flag >= .8 -> (1/2 + 1)/2 = .75; flag >= .4 -> (1 + 1/2)/2 = .75; the lower wins
    assert calibrated_threshold(np.array([0, 1, 0, 1]), np.array([0.2, 0.4, 0.6, 0.8])) == pytest.approx(0.3)


def test_calibrated_threshold_degenerate_cuts_and_one_class():
    # inverted scores: every cut is at most 0.5, all-fake (-inf) ties all-real and is the lower
    assert calibrated_threshold(np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.1, 0.0])) == -math.inf
    with pytest.raises(ValueError, match="real and fake"):
        calibrated_threshold(np.array([1, 1]), np.array([0.1, 0.2]))


def test_calibrated_metrics_only_when_a_threshold_is_given():
    assert "accuracy_calibrated" not in compute_metrics(CAL_LABELS, CAL_SCORES)
    m = compute_metrics(CAL_LABELS, CAL_SCORES, calibrated_threshold=0.31)
    # at .31: only the real .35 is wrong -> 6/7; TPR 1, TNR 3/4 -> .875
    assert m["accuracy_calibrated"] == pytest.approx(6 / 7)
    assert m["balanced_accuracy_calibrated"] == pytest.approx(0.875)
    # at .5: the fake .32 is missed: TPR 2/3, TNR 1
    assert m["balanced_accuracy"] == pytest.approx(5 / 6)


def test_oracle_accuracy_is_the_best_cut_on_the_same_labels():
    # .8F .6R .4F .2R: flag >= .8 -> 3/4, >= .6 -> 2/4, >= .4 -> 3/4, none -> 2/4, all -> 2/4
    assert oracle_accuracy(np.array([0, 1, 0, 1]), np.array([0.2, 0.4, 0.6, 0.8])) == 0.75
    assert oracle_accuracy(np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.1, 0.0])) == 0.5
    assert oracle_accuracy(np.array([0, 0, 1, 1]), np.array([5.0, 6.0, 7.0, 8.0])) == 1.0


# --------------------------------------------------------------------------- bootstrap


def paired_data(n_pairs=300, shift=1.0, seed=0):
    """One real and one fake per pair id; scores squashed to (0, 1), some ties from rounding."""
    rng = np.random.default_rng(seed)
    labels = np.tile([0, 1], n_pairs)
    pairs = np.repeat(np.arange(n_pairs), 2)
    scores = np.round(1 / (1 + np.exp(-rng.normal(labels * shift, 1.0))), 2)
    return labels, scores, pairs


def test_weighted_path_equals_sklearn_with_unit_and_repeated_weights():
    labels, scores, pairs = paired_data(200, seed=3)
    pair_index, n_pairs = _check_pairs(pairs, len(labels))
    weighted = _Weighted(labels, scores, pair_index, n_pairs, 0.5, 0.4)
    names = METRICS + ("accuracy_calibrated", "balanced_accuracy_calibrated")
    counts = np.vstack([np.ones(n_pairs), np.random.default_rng(4).integers(0, 4, n_pairs)])
    got = weighted(counts, names)
    for row, count in enumerate(counts):
        repeat = np.repeat(np.arange(len(labels)), count[pair_index].astype(int))
        want = compute_metrics(labels[repeat], scores[repeat], calibrated_threshold=0.4)
        for name in names:
            assert got[name][row] == pytest.approx(want[name], abs=1e-12), (row, name)


def test_vectorised_auc_agrees_with_sklearn_on_random_weights():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 500)
    scores = rng.normal(labels * 0.5, 1.0)
    pairs = np.arange(500)
    counts = rng.integers(0, 3, size=(20, 500)).astype(float)
    got = _Weighted(labels, scores, pairs, 500, 0.5, None)(counts, ("auc", "ap"))
    for row in range(20):
        assert got["auc"][row] == pytest.approx(roc_auc_score(labels, scores, sample_weight=counts[row]), abs=1e-12)
        assert got["ap"][row] == pytest.approx(
            average_precision_score(labels, scores, sample_weight=counts[row]), abs=1e-12
        )


def test_bootstrap_is_deterministic_for_a_seed():
    labels, scores, pairs = paired_data(100)
    first = bootstrap_ci(labels, scores, pairs, n_resamples=200, seed=7)
    assert first == bootstrap_ci(labels, scores, pairs, n_resamples=200, seed=7)
    assert first != bootstrap_ci(labels, scores, pairs, n_resamples=200, seed=8)
    assert tuple(first) == METRICS


def test_bootstrap_ci_contains_the_point_estimate():
    labels, scores, pairs = paired_data(300)
    result = metrics_with_ci(labels, scores, pairs, n_resamples=500, calibrated_threshold=0.55)
    assert tuple(result) == METRICS + ("accuracy_calibrated", "balanced_accuracy_calibrated")
    for name, r in result.items():
        assert r["ci_low"] <= r["value"] <= r["ci_high"], name
        assert r["ci_low"] < r["ci_high"], name
    # 600 images: AUC interval roughly +-0.04 around the estimate, not degenerate, not huge
    assert 0.03 < result["auc"]["ci_high"] - result["auc"]["ci_low"] < 0.2


def test_bootstrap_resamples_whole_pairs():
    # every real is right and every fake wrong: accuracy = reals / images in the resample.
    # Drawing whole pairs (one real + one fake each) keeps it at exactly 1/2;
    # drawing images would not.
    n = 50
    labels = np.tile([0, 1], n)
    scores = np.tile([0.2, 0.3], n) + np.linspace(0, 0.1, 2 * n)
    pairs = np.repeat([f"seed{i}" for i in range(n)], 2)
    ci = bootstrap_ci(labels, scores, pairs, ["accuracy", "real_accuracy", "fake_accuracy"], n_resamples=300)
    assert ci == {"accuracy": (0.5, 0.5), "real_accuracy": (1.0, 1.0), "fake_accuracy": (0.0, 0.0)}
    # the same data with each image its own pair, drawn freely: the real fraction varies between resamples
    low, high = bootstrap_ci(labels, scores, np.arange(2 * n), ["accuracy"], n_resamples=300, stratified=False)["accuracy"]
    assert low < 0.45 and high > 0.55
    # by default such an unpaired set is drawn stratified (reals and fakes apart): the fraction stays 1/2
    assert bootstrap_ci(labels, scores, np.arange(2 * n), ["accuracy"], n_resamples=300)["accuracy"] == (0.5, 0.5)


def test_resample_counts_draw_n_pairs_each_time():
    (counts,) = list(_resample_counts(40, 100, seed=1))
    assert counts.shape == (100, 40)
    assert np.all(counts.sum(axis=1) == 40)
    assert np.array_equal(counts, next(_resample_counts(40, 100, seed=1)))


def test_resample_counts_come_in_bounded_chunks():
    chunks = list(_resample_counts(40, 100, seed=1, rows_per_chunk=30))
    assert [len(c) for c in chunks] == [30, 30, 30, 10]  # memory bounded by the chunk, not by resamples
    assert all(np.all(c.sum(axis=1) == 40) for c in chunks)


def test_bootstrap_ignores_nan_resamples_unless_most_are_nan():
    # one pair of three holds the only fake: a resample misses it with probability (2/3)^3 ~ 0.30,
    # where AUC is NaN and ignored; in the rest the fake (0.9) outranks every real -> AUC 1
    labels = np.array([0, 1, 0, 0])
    pairs = np.array([0, 0, 1, 2])
    ci = bootstrap_ci(labels, np.array([0.1, 0.9, 0.2, 0.3]), pairs, ["auc", "fake_accuracy"], n_resamples=200)
    assert ci == {"auc": (1.0, 1.0), "fake_accuracy": (1.0, 1.0)}
    # no fakes at all: every resample is NaN; accuracy still has an interval
    ci = bootstrap_ci(np.zeros(20), np.linspace(0, 1, 20), np.arange(20), ["auc", "accuracy"], n_resamples=100)
    assert all(math.isnan(v) for v in ci["auc"]) and not math.isnan(ci["accuracy"][0])
    # the rule itself: 6 of 10 NaN -> no interval; 5 of 10 -> percentiles of the other 5
    assert all(math.isnan(v) for v in _interval(np.r_[[np.nan] * 6, 1, 2, 3, 4], 0.9))
    assert _interval(np.r_[[np.nan] * 5, 1, 2, 3, 4, 5], 0.5) == (2.0, 4.0)


def test_bootstrap_is_fast_enough():
    labels, scores, pairs = paired_data(1000)  # 2,000 images
    start = time.perf_counter()
    bootstrap_ci(labels, scores, pairs, n_resamples=1000, calibrated_threshold=0.5)
    # well under 2 s in practice (~0.3 s on 2 CPU cores); the bound leaves room for a busy machine
    assert time.perf_counter() - start < 2.0


# --------------------------------------------------------------------------- paired bootstrap


def test_paired_bootstrap_detects_a_real_drop():
    labels, scores, pairs = paired_data(300, shift=2.0)
    noisy = scores + np.random.default_rng(1).normal(0, 0.5, len(scores))
    result = paired_bootstrap_drop(labels, scores, noisy, pairs, "auc", n_resamples=500)
    assert result["drop"] == pytest.approx(result["base"] - result["new"])
    assert result["drop"] > 0.05 and result["ci_low"] > 0 and result["p_worse"] < 0.01
    # lower-is-better metric: the drop is new - base, still positive when worse
    eer = paired_bootstrap_drop(labels, scores, noisy, pairs, "eer", n_resamples=500)
    assert eer["drop"] == pytest.approx(eer["new"] - eer["base"]) and eer["ci_low"] > 0
    # and swapping the roles turns it into an improvement
    better = paired_bootstrap_drop(labels, noisy, scores, pairs, "auc", n_resamples=500)
    assert better["ci_high"] < 0 and better["p_worse"] > 0.99


def test_paired_bootstrap_null_is_zero():
    labels, scores, pairs = paired_data(100)
    result = paired_bootstrap_drop(labels, scores, scores.copy(), pairs, "brier", n_resamples=200)
    assert result["drop"] == 0 and (result["ci_low"], result["ci_high"]) == (0.0, 0.0)
    assert result["p_worse"] == 1.0


def test_paired_bootstrap_uses_the_same_resamples_for_both():
    # new = base + constant: AUC unchanged in every resample only if both see the same images
    labels, scores, pairs = paired_data(100)
    result = paired_bootstrap_drop(labels, scores, scores + 3.0, pairs, "auc", n_resamples=200)
    assert (result["ci_low"], result["ci_high"]) == (0.0, 0.0)


# --------------------------------------------------------------------------- input checks


def test_bootstrap_inputs_are_checked():
    labels, scores, pairs = paired_data(10)
    with pytest.raises(ValueError, match="pairs"):
        bootstrap_ci(labels, scores, pairs[:-1])
    with pytest.raises(ValueError, match="unknown metric"):
        bootstrap_ci(labels, scores, pairs, ["auroc"])
    with pytest.raises(ValueError, match="calibrated_threshold"):
        bootstrap_ci(labels, scores, pairs, ["accuracy_calibrated"])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(labels, scores, pairs, confidence=95)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci(labels, scores, pairs, n_resamples=0)
    with pytest.raises(ValueError, match="scores_new"):
        paired_bootstrap_drop(labels, scores, scores[:-1], pairs)
    with pytest.raises(ValueError, match="NaN"):
        paired_bootstrap_drop(labels, scores, np.r_[scores[:-1], np.nan], pairs)
    with pytest.raises(ValueError, match="labels must be 0"):
        compute_metrics(np.array([0, 2]), np.array([0.1, 0.2]))
