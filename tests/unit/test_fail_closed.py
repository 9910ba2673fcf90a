"""Checks that cannot be computed do not pass: fairness with nothing to compare is `not evaluable` (issue 16, case 1).

Red team: on a 1,000-row dataset (200 test rows, min_group_size 100) every age bin and the female group were
"insufficient sample", and "Bias disparity 0.0000" and "Fairness flags: 0" passed. Group sizes below are made
by hand; the expected reasons and statuses are written out, not computed by the code under test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from credit_scorer.domain.checks import ThresholdChecks, threshold_checks
from credit_scorer.domain.config import FairnessPolicy, Thresholds
from credit_scorer.domain.evaluate import ConfusionMatrix, Evaluation
from credit_scorer.domain.fairness import assess_decisions
from credit_scorer.domain.risk import RiskAssessment
from credit_scorer.records import models as records
from credit_scorer.release import gate
from credit_scorer.release.gate import GateInputError

POLICY = FairnessPolicy(min_group_size=100, disparate_impact_min=0.8, equal_opportunity_gap_max=0.1)
NOW = "2026-12-02T10:00:00Z"


def _outcomes(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    repaid = (rng.random(n) < 0.8).astype(int)
    approved = (rng.random(n) < 0.7).astype(int)
    return repaid, approved


def _labels(sizes: dict[str, int]) -> pd.Series:
    return pd.Series([group for group, size in sizes.items() for _ in range(size)])


def _evaluation() -> Evaluation:
    return Evaluation(
        accuracy=0.85,
        auc=0.8,
        f1=0.9,
        precision=0.9,
        recall=0.9,
        balanced_accuracy=0.7,
        ks=0.4,
        brier=0.1,
        expected_calibration_error=0.01,
        approval_rate=0.7,
        decision_threshold=0.5,
        test_rows=200,
        confusion_matrix=ConfusionMatrix(true_negative=20, false_positive=10, false_negative=20, true_positive=150),
    )


def _risk() -> RiskAssessment:
    return RiskAssessment.model_construct(overall_risk_score=0.1, risk_level="low", high_risk_factors=[], hazards=[])


def _checks(sizes: dict[str, dict[str, int]]) -> ThresholdChecks:
    n = sum(next(iter(sizes.values())).values())
    repaid, approved = _outcomes(n)
    report = assess_decisions(repaid, approved, {name: _labels(groups) for name, groups in sizes.items()}, POLICY)
    return threshold_checks(_evaluation(), report, _risk(), Thresholds())


def test_groups_all_too_small_make_both_fairness_checks_not_evaluable() -> None:
    checks = _checks(
        {
            "AGE_BIN": {"21-30": 60, "31-40": 70, "41-50": 40, "51+": 30},
            "SEX": {"male": 130, "female": 70},
        }
    )
    by_name = {c.name: c for c in checks.checks}
    for name in ("Bias disparity", "Fairness flags"):
        check = by_name[name]
        assert (check.outcome, check.passed, check.verdict) == ("not_evaluable", False, "NOT EVALUABLE")
        assert check.reason is not None
        assert "AGE_BIN: fewer than two groups have at least 100 test rows (compared: none;" in check.reason
        assert "SEX: fewer than two groups have at least 100 test rows (compared: male; too small: female n=70)" in (
            check.reason
        )
    assert (by_name["Accuracy"].outcome, by_name["Risk score"].outcome) == ("pass", "pass")
    assert not checks.all_passed
    assert checks.not_evaluable == ["Bias disparity", "Fairness flags"]
    assert checks.failed_text == "Bias disparity (not evaluable), Fairness flags (not evaluable)"
    assert "NOT EVALUABLE" in by_name["Bias disparity"].text


def test_a_single_group_attribute_is_not_evaluable() -> None:
    checks = _checks({"SEX": {"male": 300}})
    reason = next(c for c in checks.checks if c.name == "Bias disparity").reason
    assert reason == "SEX: the test split has one group only (male, n=300); there is nothing to compare"


def test_no_protected_attribute_is_not_evaluable() -> None:
    repaid, approved = _outcomes(300)
    report = assess_decisions(repaid, approved, {}, POLICY)
    assert report.not_evaluable == ["the dataset spec names no protected attribute: there is nothing to compare"]


def test_comparable_groups_are_evaluated_as_before() -> None:
    checks = _checks({"SEX": {"male": 300, "female": 200}})
    assert checks.not_evaluable == []
    assert all(c.outcome in {"pass", "fail"} and c.reason is None for c in checks.checks)


def test_automated_approval_of_a_not_evaluable_check_is_refused() -> None:
    checks = _checks({"SEX": {"male": 130, "female": 70}})
    env = {"DEPLOY_APPROVAL": "y", "APPROVER": "Jane Doe", "APPROVAL_RATIONALE": "ok"}
    decision = gate.automated_decision(env, checks, None, NOW)
    assert decision.approved is False
    assert decision.refusal_reason is not None
    assert "Bias disparity (not evaluable)" in decision.refusal_reason


def test_a_person_approves_a_not_evaluable_check_only_with_an_override_and_its_rationale() -> None:
    from credit_scorer.records.people import People, ReleasePolicy
    from credit_scorer.records.signatures import PersonSignature

    people = People(
        people={"Ada Lovelace": ["submitter"], "Quinn Tester": ["tester"], "Jane Doe": ["approver"]},
        policy=ReleasePolicy(require_tester_signoff=False),
    )
    checks = _checks({"SEX": {"male": 130, "female": 70}})
    plain = gate.make_decision(
        gate.DecisionRequest(approve=True, approver="Jane Doe", rationale="ok"), "cli", NOW, None
    )
    with pytest.raises(GateInputError, match=r"Bias disparity \(not evaluable\).*override"):
        gate.validate_decision(plain, checks, people, "Ada Lovelace", dev_mode=False)
    request = gate.DecisionRequest(
        approve=True, approver="Jane Doe", rationale="ok", override=True, override_rationale="small pilot, reviewed"
    )
    signature = PersonSignature(signer="Jane Doe", key_id="0" * 16, signature="c2ln")  # the store checks the key
    overridden = gate.make_decision(request, "cli", NOW, None).model_copy(update={"signature": signature})
    gate.validate_decision(overridden, checks, people, "Ada Lovelace", dev_mode=False)


def test_the_approval_record_says_not_evaluable_with_the_reason() -> None:
    repaid, approved = _outcomes(200)
    report = assess_decisions(repaid, approved, {"SEX": _labels({"male": 130, "female": 70})}, POLICY)
    checks = threshold_checks(_evaluation(), report, _risk(), Thresholds())
    record_checks, details, _, _ = records.summarise(checks, _evaluation(), report, _risk())
    assert record_checks.model_dump(by_alias=True)["Bias disparity"] is False
    detail = details["Bias disparity"]
    assert (detail.status, detail.passed) == ("not_evaluable", False)
    assert detail.reason is not None and detail.reason.startswith("SEX: fewer than two groups")
