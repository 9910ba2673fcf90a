"""Typed, frozen configuration: dataset spec, thresholds, fairness policy, training.

Files are read once, here, into pydantic models; nothing else parses YAML.
Every loader raises :class:`~credit_scorer.core.errors.ConfigError` naming the file
and the field to fix.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from credit_scorer.core import constants
from credit_scorer.core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

PACKAGE_PREFIX = "package:"
"""A ``file`` starting with this is read from the installed package's resources."""


class Frozen(BaseModel):
    """Base for configuration models: immutable, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------------------
# Dataset spec
# ---------------------------------------------------------------------------
class ColumnSpec(Frozen):
    """Valid values of one input column.

    ``codes`` lists the documented category codes; ``undocumented`` maps codes that
    occur in real data but are not documented to the code used instead (mapping a
    code to itself keeps it, and still counts it as a data-quality finding).
    """

    type: Literal["int", "float"] = "int"
    min: float | None = None
    max: float | None = None
    codes: dict[int, str] | None = None
    undocumented: dict[int, int] = Field(default_factory=dict)
    description: str = ""

    @model_validator(mode="after")
    def _undocumented_maps_to_valid(self) -> ColumnSpec:
        if self.codes is not None:
            bad = [v for v in self.undocumented.values() if v not in self.codes and v not in self.undocumented]
            if bad:
                raise ValueError(f"undocumented codes map to {bad}, which are not valid codes")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self

    def allowed_codes(self) -> set[int] | None:
        """Every code accepted on input, documented or not; None when any value in range is."""
        if self.codes is None:
            return None
        return set(self.codes) | set(self.undocumented)


class TargetSpec(Frozen):
    """The label column and which of its values means the applicant defaulted."""

    column: str
    default_value: int = 1
    non_default_value: int = 0


class ProtectedAttribute(Frozen):
    """A protected attribute measured for fairness (and kept out of features by default)."""

    name: str
    column: str
    bins: list[float] | None = None
    bin_labels: list[str] | None = None
    group_names: dict[int, str] | None = None

    @model_validator(mode="after")
    def _bins_match_labels(self) -> ProtectedAttribute:
        if self.bins is not None:
            if self.bin_labels is None or len(self.bin_labels) != len(self.bins) - 1:
                raise ValueError(f"protected attribute {self.name!r}: bin_labels must have len(bins) - 1 entries")
            if sorted(self.bins) != list(self.bins):
                raise ValueError(f"protected attribute {self.name!r}: bins must be increasing")
        return self


class RatioFeature(Frozen):
    """A derived feature ``numerator / max(denominator, 1)``, computed the same in training and serving."""

    name: str
    numerator: str
    denominator: str


class DataSource(Frozen):
    """Where the data comes from and how to cite it."""

    file: str
    sha256: str | None = None
    title: str = ""
    citation: str = ""
    licence: str = ""
    doi: str = ""
    url: str = ""


class DatasetSpec(Frozen):
    """Describes a credit dataset so that a new CSV trains with no code change."""

    name: str
    description: str = ""
    source: DataSource
    target: TargetSpec
    id_columns: list[str] = Field(default_factory=list)
    features: list[str]
    protected_attributes: list[ProtectedAttribute]
    protected_as_features: bool = False
    derived_features: list[RatioFeature] = Field(default_factory=list)
    columns: dict[str, ColumnSpec]
    base_dir: Path = Path(".")

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        problems: list[str] = []
        for col in self.features:
            if col not in self.columns:
                problems.append(f"feature {col!r} has no entry under 'columns'")
        for attr in self.protected_attributes:
            if attr.column not in self.columns:
                problems.append(f"protected attribute column {attr.column!r} has no entry under 'columns'")
            if attr.column in self.features and not self.protected_as_features:
                problems.append(
                    f"protected attribute column {attr.column!r} is listed in 'features'; "
                    "remove it or set protected_as_features: true"
                )
        for derived in self.derived_features:
            for col in (derived.numerator, derived.denominator):
                if col not in self.columns:
                    problems.append(f"derived feature {derived.name!r} uses unknown column {col!r}")
        if self.target.column in self.features:
            problems.append(f"target column {self.target.column!r} must not be a feature")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def protected_columns(self) -> list[str]:
        """Columns of the protected attributes."""
        return [a.column for a in self.protected_attributes]

    @property
    def model_inputs(self) -> list[str]:
        """Input columns the model reads: features, plus protected columns only when allowed."""
        cols = list(self.features)
        if self.protected_as_features:
            cols += [c for c in self.protected_columns if c not in cols]
        return cols

    @property
    def model_features(self) -> list[str]:
        """Features of a model trained on this spec, in order: its inputs, then each derived ratio."""
        return [*self.model_inputs, *(f.name for f in self.derived_features)]

    @property
    def required_columns(self) -> list[str]:
        """Every column the file must have."""
        cols = [*self.id_columns, *self.columns]
        if self.target.column not in cols:
            cols.append(self.target.column)
        return list(dict.fromkeys(cols))

    def data_location(self) -> str:
        """The data file as a path, or ``package:<name>`` for the bundled copy."""
        if self.source.file.startswith(PACKAGE_PREFIX):
            return self.source.file
        path = Path(self.source.file)
        return str(path if path.is_absolute() else (self.base_dir / path))


# ---------------------------------------------------------------------------
# Policies
# ---------------------------------------------------------------------------
class Thresholds(Frozen):
    """The SOP §2 Model Approval Thresholds in force for a run."""

    accuracy_min: float = Field(constants.ACCURACY_MIN, ge=0, le=1)
    bias_disparity_max: float = Field(constants.BIAS_DISPARITY_MAX, ge=0, le=1)
    risk_score_max: float = Field(constants.RISK_SCORE_MAX, ge=0, le=1)
    fairness_flags_max: int = Field(constants.FAIRNESS_FLAGS_MAX, ge=0)


class FairnessPolicy(Frozen):
    """What counts as a fairness flag and which groups are large enough to compare."""

    min_group_size: int = Field(constants.MIN_GROUP_SIZE, ge=1)
    disparate_impact_min: float = Field(constants.DISPARATE_IMPACT_MIN, ge=0, le=1)
    equal_opportunity_gap_max: float = Field(constants.EQUAL_OPPORTUNITY_GAP_MAX, ge=0, le=1)


class SamplePolicy(Frozen):
    """The smallest test split the gate accepts: too little data stops the run before anything is recorded."""

    min_test_rows: int = Field(constants.MIN_TEST_ROWS, ge=1)
    min_test_per_outcome: int = Field(constants.MIN_TEST_PER_OUTCOME, ge=1)


class BaselinePolicy(Frozen):
    """Floors and a band that stop degenerate models: beat the majority class, approve neither everyone nor no one."""

    balanced_accuracy_min: float = Field(constants.BALANCED_ACCURACY_MIN, gt=0.5, le=1)
    """Above 0.50, the majority class: a lower floor would pass a model that never beats it."""
    auc_min: float = Field(constants.AUC_MIN, gt=0.5, le=1)
    """Above 0.50, chance."""
    approval_rate_min: float = Field(constants.APPROVAL_RATE_MIN, gt=0, lt=1)
    """Above 0: a model declining everyone fails."""
    approval_rate_max: float = Field(constants.APPROVAL_RATE_MAX, gt=0, lt=1)
    """Below 1: a model approving everyone fails."""

    @model_validator(mode="after")
    def _band_is_a_band(self) -> BaselinePolicy:
        if self.approval_rate_min >= self.approval_rate_max:
            raise ValueError(
                f"approval_rate_min ({self.approval_rate_min}) must be below "
                f"approval_rate_max ({self.approval_rate_max})"
            )
        return self


class PolicyConfig(Frozen):
    """Contents of a thresholds file: gate thresholds, fairness policy, the smallest test split, model baselines."""

    thresholds: Thresholds = Thresholds()
    fairness: FairnessPolicy = FairnessPolicy()
    sample: SamplePolicy = SamplePolicy()
    baseline: BaselinePolicy = BaselinePolicy()


class TrainingConfig(Frozen):
    """How the model is trained and its decision threshold chosen."""

    seed: int = constants.RANDOM_SEED
    test_fraction: float = Field(constants.TEST_FRACTION, gt=0, lt=0.5)
    validation_fraction: float = Field(constants.VALIDATION_FRACTION, gt=0, lt=0.5)
    n_estimators: int = Field(1000, ge=1)
    learning_rate: float = Field(0.03, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    min_child_samples: int = Field(50, ge=1)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.7, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)
    early_stopping_rounds: int = Field(50, ge=0)
    threshold_rule: Literal["expected_cost", "approval_rate"] = "expected_cost"
    cost_ratio: float = Field(constants.COST_RATIO, gt=0)
    target_approval_rate: float = Field(0.80, gt=0, lt=1)
    shuffle_labels: bool = False
    """Deliberately destroys the signal (for demonstrating that the gate fails a weak model)."""


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------
def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must contain a YAML mapping at the top level")
    return data


def _validated(model: type[M], data: dict[str, Any], path: Path | str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {where}: {err['msg']}")
        raise ConfigError(f"{path} is invalid:\n" + "\n".join(lines)) from exc


def bundled_resource(name: str) -> Path:
    """Path of a file shipped in ``credit_scorer/resources``."""
    return Path(str(resources.files("credit_scorer").joinpath("resources", name)))


def load_dataset_spec(path: Path | None = None) -> DatasetSpec:
    """Load a dataset spec; without a path, the bundled Taiwan credit-default spec."""
    spec_path = path or bundled_resource(constants.DEFAULT_DATASET_SPEC)
    data = read_yaml(spec_path)
    data.setdefault("base_dir", str(spec_path.resolve().parent))
    return _validated(DatasetSpec, data, spec_path)


def load_policy(path: Path | None = None) -> PolicyConfig:
    """Load thresholds and fairness policy; without a path, the constants' defaults."""
    if path is None:
        return PolicyConfig()
    return _validated(PolicyConfig, read_yaml(path), path)


def training_config(**overrides: Any) -> TrainingConfig:
    """Training defaults with the given overrides (None values ignored)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return _validated(TrainingConfig, given, "training options")
