"""Risk assessment (EU AI Act Art. 9) from a risk register kept as data.

The register (YAML) lists hazards, each with a measurable trigger on this run,
a severity and a likelihood. See ``resources/risk_register.yaml`` for the scoring
rule. A hazard whose measurement the run did not produce is an error, never a
silent default.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from credit_scorer.core import constants
from credit_scorer.core.errors import ConfigError, RiskInputError
from credit_scorer.domain.config import Thresholds, bundled_resource, read_yaml
from credit_scorer.domain.data import DataQualityReport
from credit_scorer.domain.evaluate import Evaluation
from credit_scorer.domain.fairness import FairnessReport
from credit_scorer.domain.model import TrainedModel

RiskLevel = Literal["low", "medium", "high"]


class RiskLevels(BaseModel):
    """Cut-offs between low, medium and high."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    low_below: float = Field(ge=0, le=1)
    high_from: float = Field(ge=0, le=1)

    def level(self, score: float) -> RiskLevel:
        """Level of a score in [0, 1]."""
        if score >= self.high_from:
            return "high"
        return "low" if score < self.low_below else "medium"


class Hazard(BaseModel):
    """One entry of the risk register."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    measure: str
    above: float | None = None
    below: float | None = None
    severity: int = Field(ge=1, le=5)
    likelihood: int = Field(ge=1, le=5)
    mitigation: str = ""

    @model_validator(mode="after")
    def _one_trigger(self) -> Hazard:
        if (self.above is None) == (self.below is None):
            raise ValueError(f"hazard {self.id}: give exactly one of 'above' or 'below'")
        return self

    @property
    def trigger(self) -> str:
        """The trigger as text, e.g. ``evaluation.auc < 0.75``."""
        return f"{self.measure} > {self.above:g}" if self.above is not None else f"{self.measure} < {self.below:g}"

    def is_triggered(self, value: float) -> bool:
        """Whether the measured value meets the trigger."""
        return value > self.above if self.above is not None else value < self.below  # type: ignore[operator]


class RiskRegister(BaseModel):
    """The hazards and level cut-offs used to assess every run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    levels: RiskLevels
    hazards: list[Hazard]


class HazardResult(BaseModel):
    """A hazard evaluated on one run."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    trigger: str
    value: float
    triggered: bool
    severity: int
    likelihood: int
    score: float
    level: RiskLevel
    mitigation: str


class RiskAssessment(BaseModel):
    """Risk of releasing one model version."""

    model_config = ConfigDict(frozen=True)

    register_version: str
    hazards: list[HazardResult]
    overall_risk_score: float
    risk_level: RiskLevel
    high_risk_factors: list[str]
    low_below: float
    high_from: float


def load_risk_register(path: Path | None = None) -> RiskRegister:
    """Load a risk register; without a path, the bundled one."""
    source = path or bundled_resource(constants.DEFAULT_RISK_REGISTER)
    try:
        return RiskRegister.model_validate(read_yaml(source))
    except ValidationError as exc:
        raise ConfigError(f"{source} is not a valid risk register: {exc}") from exc


def risk_measurements(
    evaluation: Evaluation,
    fairness: FairnessReport,
    quality: DataQualityReport,
    model: TrainedModel,
    thresholds: Thresholds,
) -> dict[str, float]:
    """Every measurement a hazard may refer to, by name."""
    return {
        "evaluation.auc": evaluation.auc,
        "evaluation.accuracy": evaluation.accuracy,
        "evaluation.accuracy_margin": evaluation.accuracy - thresholds.accuracy_min,
        "evaluation.expected_calibration_error": evaluation.expected_calibration_error,
        "evaluation.brier": evaluation.brier,
        "evaluation.approval_rate": evaluation.approval_rate,
        "evaluation.recall": evaluation.recall,
        "fairness.bias_disparity": fairness.bias_disparity,
        "fairness.flag_count": float(len(fairness.fairness_flags)),
        "fairness.insufficient_sample_groups": float(len(fairness.insufficient_sample_groups)),
        "data.undocumented_code_columns": float(len({u.column for u in quality.undocumented_codes})),
        "data.minority_class_share": quality.minority_class_share,
        "data.missing_value_share": quality.missing_value_share,
        "model.overfit_gap": model.train_auc - model.validation_auc,
    }


def assess_risk(register: RiskRegister, measurements: dict[str, float]) -> RiskAssessment:
    """Evaluate every hazard and combine the triggered ones into an overall score."""
    results: list[HazardResult] = []
    for hazard in register.hazards:
        if hazard.measure not in measurements:
            known = ", ".join(sorted(measurements))
            raise RiskInputError(
                f"risk hazard {hazard.id} needs measurement {hazard.measure!r}, "
                f"which this run did not produce (available: {known})"
            )
        value = float(measurements[hazard.measure])
        if math.isnan(value):
            raise RiskInputError(f"risk hazard {hazard.id}: measurement {hazard.measure!r} is NaN")
        triggered = hazard.is_triggered(value)
        score = hazard.severity * hazard.likelihood / 25 if triggered else 0.0
        results.append(
            HazardResult(
                id=hazard.id,
                name=hazard.name,
                trigger=hazard.trigger,
                value=value,
                triggered=triggered,
                severity=hazard.severity,
                likelihood=hazard.likelihood,
                score=score,
                level=register.levels.level(score),
                mitigation=hazard.mitigation,
            )
        )
    # rounded so that one hazard scoring exactly a cut-off lands in the same level overall
    overall = round(1.0 - math.prod(1.0 - r.score for r in results), 12)
    return RiskAssessment(
        register_version=register.version,
        hazards=results,
        overall_risk_score=overall,
        risk_level=register.levels.level(overall),
        high_risk_factors=[r.name for r in results if r.triggered and r.level == "high"],
        low_below=register.levels.low_below,
        high_from=register.levels.high_from,
    )
