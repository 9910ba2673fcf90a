"""Test-split metrics against sklearn and against hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from credit_scorer.domain.evaluate import evaluate_predictions, expected_calibration_error


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    """200 applicants, ~30 % defaulting, with probabilities that carry some signal."""
    rng = np.random.default_rng(20240601)
    defaulted = (rng.random(200) < 0.3).astype(int)
    proba = np.clip(0.25 + 0.3 * defaulted + rng.normal(0, 0.2, 200), 0.0, 1.0)
    return defaulted, proba


def test_matches_sklearn_on_a_random_sample(sample: tuple[np.ndarray, np.ndarray]) -> None:
    defaulted, proba = sample
    threshold = 0.45
    predicted = (proba >= threshold).astype(int)

    result = evaluate_predictions(defaulted, proba, threshold)

    assert result.accuracy == pytest.approx(accuracy_score(defaulted, predicted))
    assert result.auc == pytest.approx(roc_auc_score(defaulted, proba))
    assert result.f1 == pytest.approx(f1_score(defaulted, predicted, pos_label=1))
    assert result.precision == pytest.approx(precision_score(defaulted, predicted, pos_label=1))
    assert result.recall == pytest.approx(recall_score(defaulted, predicted, pos_label=1))
    assert result.balanced_accuracy == pytest.approx(balanced_accuracy_score(defaulted, predicted))
    assert result.brier == pytest.approx(brier_score_loss(defaulted, proba))
    # F1 really uses default as the positive class (the non-default F1 differs on this sample).
    assert result.f1 != pytest.approx(f1_score(defaulted, predicted, pos_label=0))

    cm = result.confusion_matrix
    assert cm.true_positive == int(np.sum((predicted == 1) & (defaulted == 1)))
    assert cm.false_positive == int(np.sum((predicted == 1) & (defaulted == 0)))
    assert cm.false_negative == int(np.sum((predicted == 0) & (defaulted == 1)))
    assert cm.true_negative == int(np.sum((predicted == 0) & (defaulted == 0)))
    assert cm.true_positive + cm.false_positive + cm.false_negative + cm.true_negative == 200

    assert result.approval_rate == pytest.approx(np.mean(proba < threshold))
    assert result.approval_rate == pytest.approx((cm.true_negative + cm.false_negative) / 200)
    assert result.decision_threshold == threshold
    assert result.test_rows == 200
    assert result.expected_calibration_error == pytest.approx(expected_calibration_error(defaulted, proba))
    assert 0.0 <= result.ks <= 1.0


def test_hand_worked_case() -> None:
    # defaulted: 1 1 0 0 0 0 ; proba 0.9 0.1 0.8 0.2 0.1 0.1 ; threshold 0.5 -> predicted 1 0 1 0 0 0
    # TP=1 FN=1 FP=1 TN=3 -> accuracy 4/6, precision 1/2, recall 1/2, F1 (default positive) 1/2
    # (F1 with repaid as positive would be 2·3/(2·3+1+1) = 0.75), approval rate 4/6.
    # AUC: 8 (default, non-default) pairs; 0.9 beats all 4, 0.1 ties two 0.1s -> (4 + 0.5 + 0.5)/8 = 0.625
    defaulted = np.array([1, 1, 0, 0, 0, 0])
    proba = np.array([0.9, 0.1, 0.8, 0.2, 0.1, 0.1])

    result = evaluate_predictions(defaulted, proba, 0.5)

    assert result.accuracy == pytest.approx(4 / 6)
    assert result.precision == pytest.approx(0.5)
    assert result.recall == pytest.approx(0.5)
    assert result.f1 == pytest.approx(0.5)
    assert result.auc == pytest.approx(0.625)
    assert result.approval_rate == pytest.approx(4 / 6)
    cm = result.confusion_matrix
    assert (cm.true_negative, cm.false_positive, cm.false_negative, cm.true_positive) == (3, 1, 1, 1)


def test_probability_equal_to_threshold_is_a_decline() -> None:
    defaulted = np.array([0, 1, 0, 1])
    proba = np.array([0.2, 0.5, 0.5, 0.8])
    result = evaluate_predictions(defaulted, proba, 0.5)
    assert result.approval_rate == pytest.approx(0.25)
    assert result.confusion_matrix.false_positive == 1
    assert result.confusion_matrix.true_positive == 2


def test_no_predicted_defaults_gives_zero_f1_not_error() -> None:
    defaulted = np.array([0, 1, 0, 1])
    proba = np.array([0.1, 0.2, 0.3, 0.4])
    result = evaluate_predictions(defaulted, proba, 0.9)
    assert result.approval_rate == 1.0
    assert result.precision == 0.0
    assert result.f1 == 0.0
    assert result.auc == pytest.approx(0.75)


# ---------------------------------------------------------------------------
# Expected calibration error
# ---------------------------------------------------------------------------
def test_ece_zero_when_calibrated() -> None:
    # every probability 0.5, half default -> |0.5 - 0.5| = 0
    defaulted = np.array([0, 1] * 10)
    proba = np.full(20, 0.5)
    assert expected_calibration_error(defaulted, proba) == pytest.approx(0.0)


def test_ece_all_overconfident() -> None:
    # every probability 0.9, nobody defaults -> |0 - 0.9| = 0.9
    defaulted = np.zeros(10, dtype=int)
    proba = np.full(10, 0.9)
    assert expected_calibration_error(defaulted, proba) == pytest.approx(0.9)


def test_ece_weighted_over_bins() -> None:
    # bin [0.1, 0.2): 4 rows at 0.15, 1 default -> |0.25 - 0.15| = 0.10, weight 4
    # bin [0.8, 0.9): 6 rows at 0.85, 3 defaults -> |0.50 - 0.85| = 0.35, weight 6
    # ECE = (4 × 0.10 + 6 × 0.35) / 10 = 0.25
    defaulted = np.array([1, 0, 0, 0, 1, 1, 1, 0, 0, 0])
    proba = np.array([0.15] * 4 + [0.85] * 6)
    assert expected_calibration_error(defaulted, proba) == pytest.approx(0.25)


def test_ece_averages_within_a_bin() -> None:
    # 0.52 and 0.58 share the bin [0.5, 0.6), one default: |0.5 - 0.55| = 0.05, weight 2
    # 0.01 and 0.09 share the bin [0.0, 0.1), one default: |0.5 - 0.05| = 0.45, weight 2
    # (a per-row mean of |y - p| would differ: the bin compares averages, not rows)
    defaulted = np.array([1, 0, 1, 0])
    proba = np.array([0.52, 0.58, 0.01, 0.09])
    expected = (2 * 0.05 + 2 * 0.45) / 4
    assert expected_calibration_error(defaulted, proba) == pytest.approx(expected)


def test_ece_extremes_fall_in_the_end_bins() -> None:
    assert expected_calibration_error(np.array([1, 1]), np.array([1.0, 1.0])) == pytest.approx(0.0)
    assert expected_calibration_error(np.array([0, 0]), np.array([0.0, 0.0])) == pytest.approx(0.0)
    # 1.0 and 0.95 share the last bin: mean 0.975, observed 0.5
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.95])) == pytest.approx(0.475)
