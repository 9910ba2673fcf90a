"""A model that approves (or declines) everyone cannot pass the gate (issue 16, case 2).

Red team: on data with 7.9 % defaults a model approving 100 % of applicants (F1 = 0) scored accuracy 0.921
and passed the accuracy check. The numbers below are that model's, written out by hand.
"""

from __future__ import annotations

from credit_scorer.domain.checks import threshold_checks
from credit_scorer.domain.config import BaselinePolicy, PolicyConfig, Thresholds
from credit_scorer.domain.evaluate import ConfusionMatrix, Evaluation
from credit_scorer.domain.fairness import FAVOURABLE_OUTCOME, AttributeFairness, FairnessReport
from credit_scorer.domain.risk import RiskAssessment
from credit_scorer.records import models as records
from credit_scorer.release import gate

NOW = "2026-12-02T10:00:00Z"
SEX = AttributeFairness(
    attribute="SEX", groups=[], compared_groups=["male", "female"], insufficient_sample_groups=[],
    demographic_parity_difference=0.0, demographic_parity_ratio=1.0, equal_opportunity_difference=0.0,
    equalized_odds_difference=0.0,
)  # fmt: skip
FAIR = FairnessReport(
    favourable_outcome=FAVOURABLE_OUTCOME, min_group_size=100, disparate_impact_min=0.8,
    equal_opportunity_gap_max=0.1, attributes=[SEX], bias_disparity=0.0, bias_disparity_attribute="SEX",
    fairness_flags=[],
)  # fmt: skip
RISK = RiskAssessment.model_construct(overall_risk_score=0.1, risk_level="low", high_risk_factors=[], hazards=[])


def _evaluation(accuracy: float, auc: float, balanced: float, approval: float) -> Evaluation:
    return Evaluation(
        accuracy=accuracy, auc=auc, f1=0.0, precision=0.0, recall=0.0, balanced_accuracy=balanced, ks=0.0,
        brier=0.07, expected_calibration_error=0.0, approval_rate=approval, decision_threshold=0.5, test_rows=1000,
        confusion_matrix=ConfusionMatrix(true_negative=0, false_positive=79, false_negative=0, true_positive=921),
    )  # fmt: skip


def test_approving_everyone_passes_the_sops_four_but_not_the_gate() -> None:
    checks = threshold_checks(_evaluation(0.921, 0.5, 0.5, 1.0), FAIR, RISK, Thresholds())
    assert all(c.passed for c in checks.checks)  # the SOP's four alone would let it through
    assert {c.name: c.passed for c in checks.baseline_checks} == {
        "Balanced accuracy": False,  # 0.5 < 0.55
        "AUC": False,  # 0.5 < 0.60
        "Approval rate (lowest)": True,  # 1.0 >= 0.10
        "Approval rate (highest)": False,  # 1.0 > 0.97
    }
    assert not checks.all_passed
    env = {"DEPLOY_APPROVAL": "y", "APPROVER": "Jane Doe", "APPROVAL_RATIONALE": "ok"}
    decision = gate.automated_decision(env, checks, None, NOW)
    assert decision.approved is False
    assert decision.refusal_reason is not None
    assert "Balanced accuracy, AUC, Approval rate (highest)" in decision.refusal_reason


def test_declining_everyone_fails_the_lowest_approval_rate() -> None:
    checks = threshold_checks(_evaluation(0.079, 0.5, 0.5, 0.0), FAIR, RISK, Thresholds())
    failed = {c.name for c in checks.baseline_checks if not c.passed}
    assert failed == {"Balanced accuracy", "AUC", "Approval rate (lowest)"}


def test_the_bundled_default_model_passes_with_margin() -> None:
    # the default model on the bundled data: accuracy 0.819, AUC 0.779, balanced accuracy 0.647, approves 89.0 %
    checks = threshold_checks(_evaluation(0.819, 0.779, 0.647, 0.890), FAIR, RISK, Thresholds())
    assert [c.passed for c in checks.baseline_checks] == [True, True, True, True]


def test_a_thresholds_file_sets_the_baseline_and_the_record_keeps_it() -> None:
    policy = PolicyConfig.model_validate({"baseline": {"auc_min": 0.7, "approval_rate_max": 0.95}})
    assert policy.baseline == BaselinePolicy(auc_min=0.7, approval_rate_max=0.95)
    checks = threshold_checks(_evaluation(0.819, 0.68, 0.647, 0.96), FAIR, RISK, Thresholds(), policy.baseline)
    details = records.check_details(checks.baseline_checks)
    assert (details["AUC"].limit, details["AUC"].status) == (0.7, "fail")
    assert (details["Approval rate (highest)"].value, details["Approval rate (highest)"].status) == (0.96, "fail")
    assert details["Balanced accuracy"].status == "pass"
