"""The four SOP §2 threshold checks, the release gate's input.

A check fails closed: when its value cannot be computed (fairness with nothing to compare) its
status is ``not_evaluable`` with the reason, and it does not pass. Automated approval refuses it;
a person may approve only with the override and its own rationale, as for a failed check.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from credit_scorer.domain.config import BaselinePolicy, Thresholds
from credit_scorer.domain.evaluate import Evaluation
from credit_scorer.domain.fairness import FairnessReport
from credit_scorer.domain.risk import RiskAssessment

CheckName = Literal[
    "Accuracy",
    "Bias disparity",
    "Risk score",
    "Fairness flags",
    "Balanced accuracy",
    "AUC",
    "Approval rate (lowest)",
    "Approval rate (highest)",
]
CheckStatus = Literal["pass", "fail", "not_evaluable"]
VERDICTS: dict[str, str] = {"pass": "pass", "fail": "FAIL", "not_evaluable": "NOT EVALUABLE"}


class ThresholdCheck(BaseModel):
    """One check: the measured value against its limit."""

    model_config = ConfigDict(frozen=True)

    name: CheckName
    value: float
    operator: Literal[">=", "<="]
    limit: float
    passed: bool
    status: CheckStatus | None = None
    """None in checks stored before statuses existed: read as pass or fail from ``passed``."""
    reason: str | None = None
    """Why the check is not evaluable."""

    @property
    def outcome(self) -> CheckStatus:
        """``pass``, ``fail`` or ``not_evaluable``."""
        return self.status or ("pass" if self.passed else "fail")

    @property
    def verdict(self) -> str:
        """``pass``, ``FAIL`` or ``NOT EVALUABLE``, as every screen and document shows it."""
        return VERDICTS[self.outcome]

    @property
    def text(self) -> str:
        """E.g. ``Accuracy 0.8187 >= 0.8000: pass`` or ``Bias disparity: NOT EVALUABLE (reason)``."""
        if self.outcome == "not_evaluable":
            return f"{self.name}: NOT EVALUABLE ({self.reason})"
        return f"{self.name} {self.value:.4f} {self.operator} {self.limit:.4f}: {self.verdict}"


class ThresholdChecks(BaseModel):
    """The four SOP checks and the baseline checks, with the thresholds they used."""

    model_config = ConfigDict(frozen=True)

    thresholds: Thresholds
    checks: list[ThresholdCheck]
    """The SOP §2 four (the approval record's ``threshold_checks``)."""
    baseline: BaselinePolicy | None = None
    baseline_checks: list[ThresholdCheck] = []
    """What the four cannot see: beating the majority class, an approval rate inside the band (issue 16)."""

    @property
    def all_checks(self) -> list[ThresholdCheck]:
        """Every check the gate applies: the four, then the baseline checks."""
        return [*self.checks, *self.baseline_checks]

    @property
    def all_passed(self) -> bool:
        """True when every check passed."""
        return all(c.passed for c in self.all_checks)

    @property
    def failed(self) -> list[str]:
        """Names of the checks that did not pass (failed or not evaluable)."""
        return [c.name for c in self.all_checks if not c.passed]

    @property
    def failed_text(self) -> str:
        """The checks that did not pass, e.g. ``Accuracy, Bias disparity (not evaluable)``."""
        return ", ".join(
            f"{c.name} (not evaluable)" if c.outcome == "not_evaluable" else c.name
            for c in self.all_checks
            if not c.passed
        )

    @property
    def not_evaluable(self) -> list[str]:
        """Names of the checks whose value could not be computed."""
        return [c.name for c in self.all_checks if c.outcome == "not_evaluable"]

    def as_record(self) -> dict[str, bool]:
        """``{check name: passed}``, the SOP §3 ``threshold_checks`` field."""
        return {c.name: c.passed for c in self.checks}


def _check(
    name: CheckName, value: float, operator: Literal[">=", "<="], limit: float, not_evaluable: list[str] | None = None
) -> ThresholdCheck:
    if not_evaluable:
        reason = "; ".join(not_evaluable)
        return ThresholdCheck(
            name=name, value=value, operator=operator, limit=limit, passed=False, status="not_evaluable", reason=reason
        )
    passed = value >= limit if operator == ">=" else value <= limit
    status: CheckStatus = "pass" if passed else "fail"
    return ThresholdCheck(name=name, value=value, operator=operator, limit=limit, passed=passed, status=status)


def threshold_checks(
    evaluation: Evaluation,
    fairness: FairnessReport,
    risk: RiskAssessment,
    thresholds: Thresholds,
    baseline: BaselinePolicy | None = None,
) -> ThresholdChecks:
    """Compare a run's results with the Model Approval Thresholds; fairness fails closed when nothing was compared."""
    unmeasured = fairness.not_evaluable
    floors = baseline or BaselinePolicy()
    return ThresholdChecks(
        thresholds=thresholds,
        baseline=floors,
        baseline_checks=[
            _check("Balanced accuracy", evaluation.balanced_accuracy, ">=", floors.balanced_accuracy_min),
            _check("AUC", evaluation.auc, ">=", floors.auc_min),
            _check("Approval rate (lowest)", evaluation.approval_rate, ">=", floors.approval_rate_min),
            _check("Approval rate (highest)", evaluation.approval_rate, "<=", floors.approval_rate_max),
        ],
        checks=[
            _check("Accuracy", evaluation.accuracy, ">=", thresholds.accuracy_min),
            _check("Bias disparity", fairness.bias_disparity, "<=", thresholds.bias_disparity_max, unmeasured),
            _check("Risk score", risk.overall_risk_score, "<=", thresholds.risk_score_max),
            _check(
                "Fairness flags",
                float(len(fairness.fairness_flags)),
                "<=",
                float(thresholds.fairness_flags_max),
                unmeasured,
            ),
        ],
    )
