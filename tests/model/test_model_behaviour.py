"""Model behaviour on the real data: protected attributes do not move scores; weak models fail the gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from credit_scorer.domain import checks, data, evaluate, fairness, risk, train
from credit_scorer.domain.config import load_dataset_spec, load_policy, training_config
from credit_scorer.domain.model import TrainedModel


@pytest.fixture(scope="module")
def splits() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, data.DataQualityReport]:
    spec = load_dataset_spec()
    frame, _info = data.load_dataset(spec)
    clean, quality = data.validate_dataset(frame, spec)
    train_part, valid_part, test_part, _sizes = data.split_dataset(clean, spec, training_config())
    return train_part, valid_part, test_part, quality


def _gate(model: TrainedModel, test: pd.DataFrame, quality: data.DataQualityReport) -> checks.ThresholdChecks:
    spec = load_dataset_spec()
    policy = load_policy()
    ev = evaluate.evaluate_model(model, test, spec)
    fr = fairness.assess_fairness(model, test, spec, policy.fairness)
    measurements = risk.risk_measurements(ev, fr, quality, model, policy.thresholds)
    ra = risk.assess_risk(risk.load_risk_register(), measurements)
    return checks.threshold_checks(ev, fr, ra, policy.thresholds)


def test_protected_attributes_are_not_model_inputs(splits) -> None:
    spec = load_dataset_spec()
    model = train.train_model(splits[0], splits[1], spec, training_config(n_estimators=30))
    for column in ("SEX", "AGE", "MARRIAGE", "EDUCATION"):
        assert column not in model.feature_names


@pytest.mark.parametrize(
    ("column", "values"),
    [("SEX", [1, 2]), ("MARRIAGE", [1, 2, 3]), ("EDUCATION", [1, 2, 3, 4]), ("AGE", [22, 40, 70])],
)
def test_changing_a_protected_attribute_does_not_change_the_score(splits, column: str, values: list[int]) -> None:
    spec = load_dataset_spec()
    model = train.train_model(splits[0], splits[1], spec, training_config(n_estimators=30))
    applicant = splits[2].iloc[[0]]
    scores = []
    for value in values:
        changed = applicant.copy()
        changed[column] = value
        scores.append(float(model.predict_default_proba(changed)[0]))
    assert len(set(scores)) == 1, f"score moved with {column}: {scores}"


def test_default_configuration_reaches_auc_and_passes_all_checks(splits) -> None:
    spec = load_dataset_spec()
    model = train.train_model(splits[0], splits[1], spec, training_config())
    ev = evaluate.evaluate_model(model, splits[2], spec)
    assert ev.auc >= 0.77
    gate = _gate(model, splits[2], splits[3])
    assert gate.all_passed, [c.text for c in gate.checks]


def test_shuffled_labels_fail_the_gate(splits) -> None:
    spec = load_dataset_spec()
    model = train.train_model(splits[0], splits[1], spec, training_config(shuffle_labels=True))
    ev = evaluate.evaluate_model(model, splits[2], spec)
    assert ev.auc < 0.6
    gate = _gate(model, splits[2], splits[3])
    assert not gate.all_passed
    assert {"Accuracy", "Risk score"} <= set(gate.failed)


def test_threshold_is_chosen_on_validation_not_test(splits) -> None:
    """Changing the test split must not change the model or its threshold."""
    spec = load_dataset_spec()
    config = training_config(n_estimators=30)
    first = train.train_model(splits[0], splits[1], spec, config)
    second = train.train_model(splits[0], splits[1], spec, config)
    assert first.sha256 == second.sha256  # deterministic given train + validation only
    proba = first.predict_default_proba(splits[1])
    defaulted = data.default_labels(splits[1], spec)
    threshold, _text = train.choose_threshold(proba, defaulted, config)
    assert threshold == first.decision_threshold


def test_expected_cost_rule_minimises_cost_on_validation() -> None:
    rng = np.random.default_rng(0)
    proba = rng.uniform(size=2000)
    defaulted = (rng.uniform(size=2000) < proba).astype(int)
    config = training_config(cost_ratio=3.0)
    threshold, _ = train.choose_threshold(proba, defaulted, config)

    def cost(t: float) -> float:
        declined = proba >= t
        return 3.0 * float(((~declined) & (defaulted == 1)).sum()) + float((declined & (defaulted == 0)).sum())

    best = min(cost(float(t)) for t in train.THRESHOLD_GRID)
    assert cost(threshold) == best
    # a higher cost of approving defaulters lowers the threshold (declines more)
    assert threshold < train.choose_threshold(proba, defaulted, training_config(cost_ratio=1.0))[0]


def test_approval_rate_rule_reaches_the_target() -> None:
    rng = np.random.default_rng(1)
    proba = rng.uniform(size=5000)
    defaulted = (rng.uniform(size=5000) < proba).astype(int)
    config = training_config(threshold_rule="approval_rate", target_approval_rate=0.7)
    threshold, text = train.choose_threshold(proba, defaulted, config)
    assert (proba < threshold).mean() >= 0.7
    assert (proba < threshold - 0.005).mean() < 0.7
    assert "70%" in text
