"""The four SOP §2 threshold checks, the release gate's input."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from credit_scorer.domain.config import Thresholds
from credit_scorer.domain.evaluate import Evaluation
from credit_scorer.domain.fairness import FairnessReport
from credit_scorer.domain.risk import RiskAssessment

CheckName = Literal["Accuracy", "Bias disparity", "Risk score", "Fairness flags"]


class ThresholdCheck(BaseModel):
    """One check: the measured value against its limit."""

    model_config = ConfigDict(frozen=True)

    name: CheckName
    value: float
    operator: Literal[">=", "<="]
    limit: float
    passed: bool

    @property
    def text(self) -> str:
        """E.g. ``Accuracy 0.8187 >= 0.8000: pass``."""
        verdict = "pass" if self.passed else "FAIL"
        return f"{self.name} {self.value:.4f} {self.operator} {self.limit:.4f}: {verdict}"


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
        """Names of the failed checks."""
        return [c.name for c in self.checks if not c.passed]

    def as_record(self) -> dict[str, bool]:
        """``{check name: passed}``, the SOP §3 ``threshold_checks`` field."""
        return {c.name: c.passed for c in self.checks}


def _check(name: CheckName, value: float, operator: Literal[">=", "<="], limit: float) -> ThresholdCheck:
    passed = value >= limit if operator == ">=" else value <= limit
    return ThresholdCheck(name=name, value=value, operator=operator, limit=limit, passed=passed)


def threshold_checks(
    evaluation: Evaluation, fairness: FairnessReport, risk: RiskAssessment, thresholds: Thresholds
) -> ThresholdChecks:
    """Compare a run's results with the Model Approval Thresholds."""
    return ThresholdChecks(
        thresholds=thresholds,
        checks=[
            _check("Accuracy", evaluation.accuracy, ">=", thresholds.accuracy_min),
            _check("Bias disparity", fairness.bias_disparity, "<=", thresholds.bias_disparity_max),
            _check("Risk score", risk.overall_risk_score, "<=", thresholds.risk_score_max),
            _check(
                "Fairness flags",
                float(len(fairness.fairness_flags)),
                "<=",
                float(thresholds.fairness_flags_max),
            ),
        ],
    )
