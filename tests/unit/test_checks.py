"""The four SOP §2 threshold checks, at and around their limits."""

from __future__ import annotations

import math

import pytest

from credit_scorer.domain.checks import threshold_checks
from credit_scorer.domain.config import Thresholds
from credit_scorer.domain.evaluate import ConfusionMatrix, Evaluation
from credit_scorer.domain.fairness import FAVOURABLE_OUTCOME, AttributeFairness, FairnessReport
from credit_scorer.domain.risk import RiskAssessment

DEFAULTS = Thresholds()
NAMES = ["Accuracy", "Bias disparity", "Risk score", "Fairness flags"]


def _evaluation(accuracy: float) -> Evaluation:
    return Evaluation(
        accuracy=accuracy,
        auc=0.8,
        f1=0.5,
        precision=0.5,
        recall=0.5,
        balanced_accuracy=0.7,
        ks=0.4,
        brier=0.1,
        expected_calibration_error=0.01,
        approval_rate=0.8,
        decision_threshold=0.5,
        test_rows=10,
        confusion_matrix=ConfusionMatrix(true_negative=6, false_positive=1, false_negative=1, true_positive=2),
    )


COMPARED_SEX = AttributeFairness(
    attribute="SEX",
    groups=[],
    compared_groups=["male", "female"],
    insufficient_sample_groups=[],
    demographic_parity_difference=0.02,
    demographic_parity_ratio=0.97,
    equal_opportunity_difference=0.01,
    equalized_odds_difference=0.02,
)


def _fairness(bias_disparity: float, flags: list[str] | None = None) -> FairnessReport:
    return FairnessReport(
        favourable_outcome=FAVOURABLE_OUTCOME,
        min_group_size=100,
        disparate_impact_min=0.8,
        equal_opportunity_gap_max=0.1,
        attributes=[COMPARED_SEX],  # both groups large enough: the fairness checks can be evaluated
        bias_disparity=bias_disparity,
        bias_disparity_attribute="SEX",
        fairness_flags=flags or [],
    )


def _risk(score: float) -> RiskAssessment:
    return RiskAssessment(
        register_version="test",
        hazards=[],
        overall_risk_score=score,
        risk_level="low",
        high_risk_factors=[],
        low_below=0.2,
        high_from=0.4,
    )


def _checks(
    accuracy: float = 0.9,
    bias: float = 0.0,
    risk: float = 0.0,
    flags: list[str] | None = None,
    thresholds: Thresholds = DEFAULTS,
):
    return threshold_checks(_evaluation(accuracy), _fairness(bias, flags), _risk(risk), thresholds)


def _passed(checks, name: str) -> bool:
    return checks.as_record()[name]


def test_defaults_are_the_sop_values() -> None:
    assert (DEFAULTS.accuracy_min, DEFAULTS.bias_disparity_max) == (0.80, 0.20)
    assert (DEFAULTS.risk_score_max, DEFAULTS.fairness_flags_max) == (0.40, 0)


def test_all_pass_on_a_good_run() -> None:
    checks = _checks()
    assert checks.all_passed is True
    assert checks.failed == []
    assert [c.name for c in checks.checks] == NAMES
    assert checks.thresholds == DEFAULTS


def test_accuracy_exactly_at_limit_passes() -> None:
    checks = _checks(accuracy=0.80)
    assert _passed(checks, "Accuracy") is True
    assert checks.checks[0].text == "Accuracy 0.8000 >= 0.8000: pass"


def test_accuracy_just_below_limit_fails() -> None:
    checks = _checks(accuracy=math.nextafter(0.80, 0.0))
    assert _passed(checks, "Accuracy") is False
    assert checks.failed == ["Accuracy"]
    assert checks.all_passed is False
    assert checks.checks[0].text.endswith(": FAIL")
    assert _passed(_checks(accuracy=0.7999), "Accuracy") is False


def test_bias_disparity_exactly_at_limit_passes() -> None:
    assert _passed(_checks(bias=0.20), "Bias disparity") is True


def test_bias_disparity_just_above_limit_fails() -> None:
    checks = _checks(bias=math.nextafter(0.20, 1.0))
    assert _passed(checks, "Bias disparity") is False
    assert checks.failed == ["Bias disparity"]


def test_risk_score_at_limit_passes_and_above_fails() -> None:
    assert _passed(_checks(risk=0.40), "Risk score") is True
    checks = _checks(risk=0.41)
    assert _passed(checks, "Risk score") is False
    assert checks.failed == ["Risk score"]
    assert _passed(_checks(risk=math.nextafter(0.40, 1.0)), "Risk score") is False


def test_one_fairness_flag_fails_with_default_thresholds() -> None:
    checks = _checks(flags=["SEX: disparate-impact ratio 0.62 < 0.80"])
    assert _passed(checks, "Fairness flags") is False
    assert checks.failed == ["Fairness flags"]
    flag_check = checks.checks[3]
    assert (flag_check.value, flag_check.operator, flag_check.limit) == (1.0, "<=", 0.0)


def test_as_record_keys_and_values() -> None:
    record = _checks().as_record()
    assert set(record) == set(NAMES)
    assert len(record) == 4
    assert all(value is True for value in record.values())


def test_failed_lists_every_failed_check_in_order() -> None:
    checks = _checks(accuracy=0.5, bias=0.5, risk=0.9, flags=["a", "b"])
    assert checks.failed == NAMES
    assert checks.as_record() == dict.fromkeys(NAMES, False)
    checks = _checks(accuracy=0.5, risk=0.9)
    assert checks.failed == ["Accuracy", "Risk score"]
    assert checks.as_record() == {
        "Accuracy": False,
        "Bias disparity": True,
        "Risk score": False,
        "Fairness flags": True,
    }


def test_custom_thresholds_are_honoured() -> None:
    lenient = Thresholds(accuracy_min=0.70, bias_disparity_max=0.30, risk_score_max=0.60, fairness_flags_max=2)
    # Would fail every default threshold; passes the lenient ones, exactly at each limit.
    checks = _checks(accuracy=0.70, bias=0.30, risk=0.60, flags=["a", "b"], thresholds=lenient)
    assert checks.all_passed is True
    assert checks.thresholds == lenient
    assert [c.limit for c in checks.checks] == [0.70, 0.30, 0.60, 2.0]
    assert [c.operator for c in checks.checks] == [">=", "<=", "<=", "<="]
    # One step beyond each lenient limit fails.
    checks = _checks(accuracy=0.69, bias=0.31, risk=0.61, flags=["a", "b", "c"], thresholds=lenient)
    assert checks.failed == NAMES


def test_custom_strict_thresholds_fail_a_default_pass() -> None:
    strict = Thresholds(accuracy_min=0.95, bias_disparity_max=0.05, risk_score_max=0.10)
    checks = _checks(accuracy=0.90, bias=0.10, risk=0.20, thresholds=strict)
    assert checks.failed == ["Accuracy", "Bias disparity", "Risk score"]
    assert _checks(accuracy=0.90, bias=0.10, risk=0.20).all_passed is True


def test_check_values_are_the_measured_ones() -> None:
    checks = _checks(accuracy=0.8123, bias=0.0456, risk=0.1234, flags=["x"])
    assert [c.value for c in checks.checks] == pytest.approx([0.8123, 0.0456, 0.1234, 1.0])
