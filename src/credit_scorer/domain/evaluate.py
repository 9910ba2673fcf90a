"""Test-split evaluation of a trained model.

Positive class for precision, recall and F1 is *default* (the event the model
predicts); accuracy and balanced accuracy do not depend on that choice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from credit_scorer.domain.config import DatasetSpec
from credit_scorer.domain.data import default_labels
from credit_scorer.domain.model import TrainedModel

CALIBRATION_BINS = 10


class ConfusionMatrix(BaseModel):
    """Counts on the test split; "positive" means default."""

    model_config = ConfigDict(frozen=True)

    true_negative: int
    false_positive: int
    false_negative: int
    true_positive: int


class Evaluation(BaseModel):
    """Test-split metrics of one model version."""

    model_config = ConfigDict(frozen=True)

    accuracy: float
    auc: float
    f1: float
    precision: float
    recall: float
    balanced_accuracy: float
    ks: float
    brier: float
    expected_calibration_error: float
    approval_rate: float
    decision_threshold: float
    test_rows: int
    confusion_matrix: ConfusionMatrix


def expected_calibration_error(defaulted: np.ndarray, proba: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Mean |observed default rate − mean predicted probability| over equal-width bins, weighted by size."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(proba, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(defaulted[mask].mean() - proba[mask].mean())
    return float(total / len(proba))


def evaluate_predictions(defaulted: np.ndarray, proba: np.ndarray, threshold: float) -> Evaluation:
    """Metrics of default probabilities ``proba`` against outcomes, at a decision threshold."""
    # imported here: the result types of this module are used by code that never computes metrics
    from scipy.stats import ks_2samp
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        brier_score_loss,
        confusion_matrix,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    predicted = (proba >= threshold).astype(np.int8)
    tn, fp, fn, tp = confusion_matrix(defaulted, predicted, labels=[0, 1]).ravel()
    ks = ks_2samp(proba[defaulted == 1], proba[defaulted == 0]).statistic
    return Evaluation(
        accuracy=float(accuracy_score(defaulted, predicted)),
        auc=float(roc_auc_score(defaulted, proba)),
        f1=float(f1_score(defaulted, predicted, zero_division=0)),
        precision=float(precision_score(defaulted, predicted, zero_division=0)),
        recall=float(recall_score(defaulted, predicted, zero_division=0)),
        balanced_accuracy=float(balanced_accuracy_score(defaulted, predicted)),
        ks=float(ks),
        brier=float(brier_score_loss(defaulted, proba)),
        expected_calibration_error=expected_calibration_error(defaulted, proba),
        approval_rate=float(1 - predicted.mean()),
        decision_threshold=threshold,
        test_rows=len(defaulted),
        confusion_matrix=ConfusionMatrix(
            true_negative=int(tn), false_positive=int(fp), false_negative=int(fn), true_positive=int(tp)
        ),
    )


def evaluate_model(model: TrainedModel, test: pd.DataFrame, spec: DatasetSpec) -> Evaluation:
    """Score the test split and compute every reported metric."""
    return evaluate_predictions(default_labels(test, spec), model.predict_default_proba(test), model.decision_threshold)
