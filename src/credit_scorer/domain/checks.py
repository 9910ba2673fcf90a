"""The four SOP §2 threshold checks, the release gate's input.

A check fails closed: when its value cannot be computed (fairness with nothing to compare) its
status is ``not_evaluable`` with the reason, and it does not pass. Automated approval refuses it;
a person may approve only with the override and its own rationale, as for a failed check.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from credit_scorer.domain.config import Thresholds
from credit_scorer.domain.evaluate import Evaluation
from credit_scorer.domain.fairness import FairnessReport
from credit_scorer.domain.risk import RiskAssessment

CheckName = Literal["Accuracy", "Bias disparity", "Risk score", "Fairness flags"]
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
    """All four checks, with the thresholds they used."""

    model_config = ConfigDict(frozen=True)

    thresholds: Thresholds
    checks: list[ThresholdCheck]

    @property
    def all_passed(self) -> bool:
        """True when every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[str]:
        """Names of the checks that did not pass (failed or not evaluable)."""
        return [c.name for c in self.checks if not c.passed]

    @property
    def failed_text(self) -> str:
        """The checks that did not pass, e.g. ``Accuracy, Bias disparity (not evaluable)``."""
        return ", ".join(
            f"{c.name} (not evaluable)" if c.outcome == "not_evaluable" else c.name for c in self.checks if not c.passed
        )

    @property
    def not_evaluable(self) -> list[str]:
        """Names of the checks whose value could not be computed."""
        return [c.name for c in self.checks if c.outcome == "not_evaluable"]

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
    evaluation: Evaluation, fairness: FairnessReport, risk: RiskAssessment, thresholds: Thresholds
) -> ThresholdChecks:
    """Compare a run's results with the Model Approval Thresholds; fairness fails closed when nothing was compared."""
    unmeasured = fairness.not_evaluable
    return ThresholdChecks(
        thresholds=thresholds,
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
