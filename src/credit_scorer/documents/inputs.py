"""What an Annex IV document is made from: facts of one run, and facts only a person can supply.

Everything here is data; :mod:`credit_scorer.documents.annex_iv` renders it. The same
inputs always give the same document, apart from ``generated_at``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from credit_scorer.core.errors import ConfigError
from credit_scorer.core.settings import current_settings
from credit_scorer.domain.checks import ThresholdChecks
from credit_scorer.domain.config import DatasetSpec, TrainingConfig, read_yaml
from credit_scorer.domain.data import DataQualityReport, DatasetInfo, SplitSizes
from credit_scorer.domain.evaluate import Evaluation
from credit_scorer.domain.fairness import FairnessReport
from credit_scorer.domain.risk import RiskAssessment
from credit_scorer.records.release_log import ReleaseLogRow

DEFAULT_FACTS_FILE = "conf/annex_iv_facts.yaml"


class ProviderFacts(BaseModel):
    """Facts only the provider can supply (Annex IV §1, 2, 4, 7, 8). Missing ones are marked, never invented."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str | None = None
    contact: str | None = None
    intended_purpose: str | None = None
    deployer_instructions: str | None = None
    hardware_and_forms_of_release: str | None = None
    metric_rationale: str | None = None
    standards_applied: str | None = None
    declaration_of_conformity: str | None = None
    post_market_monitoring: str | None = None
    cybersecurity_measures: str | None = None


class TestPredictions(BaseModel):
    """Test-split outcomes and scores, for the charts."""

    model_config = ConfigDict(frozen=True)

    default_probability: list[float]
    defaulted: list[int]
    groups: dict[str, list[str]] = Field(description="protected attribute → group label per test row")
    group_order: dict[str, list[str]] = Field(default_factory=dict)


class AnnexIvInputs(BaseModel):
    """Every fact the Annex IV document, the model card and the SBOM show."""

    model_config = ConfigDict(frozen=True)

    release_id: str
    run_id: str
    generated_at: str
    approval_status: str
    submitter: str
    model_sha256: str
    parent_release: str | None
    packages: dict[str, str]
    python_version: str
    platform: str
    spec: DatasetSpec
    dataset: DatasetInfo
    data_quality: DataQualityReport
    split_sizes: SplitSizes
    training: TrainingConfig
    lightgbm_params: dict[str, object]
    best_iteration: int
    feature_names: list[str]
    decision_threshold: float
    threshold_rule: str
    evaluation: Evaluation
    fairness: FairnessReport
    risk: RiskAssessment
    checks: ThresholdChecks
    release_history: list[ReleaseLogRow]
    people_by_role: dict[str, list[str]]
    require_tester_signoff: bool
    predictions: TestPredictions
    facts: ProviderFacts


def facts_file(given: Path | None = None) -> Path:
    """The provider-facts file: the option, else ``CREDIT_SCORER_ANNEX_FACTS``, else ``conf/annex_iv_facts.yaml``."""
    return given or Path(current_settings().annex_facts or DEFAULT_FACTS_FILE)


def load_provider_facts(path: Path | None = None) -> ProviderFacts:
    """Load provider facts; a missing file means every fact is "to be completed"."""
    source = facts_file(path)
    if not source.exists():
        return ProviderFacts()
    try:
        return ProviderFacts.model_validate(read_yaml(source))
    except ValidationError as exc:
        raise ConfigError(f"{source} is not a valid provider-facts file: {exc}") from exc
