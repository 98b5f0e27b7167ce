import math

import numpy as np
import pytest

from facebench.harness.metrics import compute_metrics


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
