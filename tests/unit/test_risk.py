"""Risk scoring with small hand-built registers, and the bundled register."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from credit_scorer.core.errors import ConfigError, RiskInputError
from credit_scorer.domain.config import Thresholds
from credit_scorer.domain.data import DataQualityReport, UndocumentedCode
from credit_scorer.domain.evaluate import ConfusionMatrix, Evaluation
from credit_scorer.domain.fairness import FAVOURABLE_OUTCOME, AttributeFairness, FairnessReport
from credit_scorer.domain.risk import (
    Hazard,
    RiskLevels,
    RiskRegister,
    assess_risk,
    load_risk_register,
    risk_measurements,
)
from credit_scorer.domain.train import TrainedModel

LEVELS = RiskLevels(low_below=0.20, high_from=0.40)


def _hazard(
    hazard_id: str,
    measure: str,
    *,
    above: float | None = None,
    below: float | None = None,
    severity: int = 1,
    likelihood: int = 1,
) -> Hazard:
    return Hazard(
        id=hazard_id,
        name=f"Hazard {hazard_id}",
        measure=measure,
        above=above,
        below=below,
        severity=severity,
        likelihood=likelihood,
        mitigation=f"Mitigate {hazard_id}",
    )


def _register(*hazards: Hazard, levels: RiskLevels = LEVELS) -> RiskRegister:
    return RiskRegister(version="test", levels=levels, hazards=list(hazards))


# ---------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------
def test_nothing_triggered_scores_zero() -> None:
    register = _register(
        _hazard("R1", "a", below=0.5, severity=5, likelihood=5),
        _hazard("R2", "b", above=0.5, severity=5, likelihood=5),
    )
    result = assess_risk(register, {"a": 0.9, "b": 0.1})
    assert result.overall_risk_score == 0.0
    assert result.risk_level == "low"
    assert result.high_risk_factors == []
    assert [h.triggered for h in result.hazards] == [False, False]
    assert [h.score for h in result.hazards] == [0.0, 0.0]
    assert [h.level for h in result.hazards] == ["low", "low"]
    assert result.register_version == "test"
    assert (result.low_below, result.high_from) == (0.20, 0.40)


def test_empty_register_scores_zero() -> None:
    result = assess_risk(_register(), {})
    assert result.overall_risk_score == 0.0
    assert result.risk_level == "low"
    assert result.hazards == []


def test_one_severe_hazard_is_high() -> None:
    # severity 4 × likelihood 4 / 25 = 0.64
    register = _register(
        _hazard("R1", "auc", below=0.75, severity=4, likelihood=4),
        _hazard("R2", "gap", above=0.1, severity=5, likelihood=5),
    )
    result = assess_risk(register, {"auc": 0.6, "gap": 0.0})
    r1, r2 = result.hazards
    assert r1.triggered is True
    assert r1.score == pytest.approx(0.64)
    assert r1.level == "high"
    assert r1.value == 0.6
    assert r1.trigger == "auc < 0.75"
    assert r1.mitigation == "Mitigate R1"
    assert r2.triggered is False
    assert result.overall_risk_score == pytest.approx(0.64)
    assert result.risk_level == "high"
    assert result.high_risk_factors == ["Hazard R1"]


def test_two_hazards_combine_as_one_minus_product() -> None:
    # Scores must be severity × likelihood / 25 with integer factors, so 0.5 is not reachable;
    # use 0.2 (1×5) and 0.4 (2×5): overall = 1 − (1 − 0.2)(1 − 0.4) = 1 − 0.8 × 0.6 = 0.52.
    register = _register(
        _hazard("R1", "x", above=0, severity=1, likelihood=5),
        _hazard("R2", "y", above=0, severity=2, likelihood=5),
    )
    result = assess_risk(register, {"x": 1.0, "y": 1.0})
    assert [h.score for h in result.hazards] == pytest.approx([0.2, 0.4])
    assert result.overall_risk_score == pytest.approx(0.52)
    assert result.risk_level == "high"
    # Only the hazard whose own level is high is a high-risk factor (0.2 is medium).
    assert [h.level for h in result.hazards] == ["medium", "high"]
    assert result.high_risk_factors == ["Hazard R2"]


def test_three_hazards_combine() -> None:
    # 0.12 (3×1), 0.16 (4×1), 0.2 (5×1): 1 − 0.88 × 0.84 × 0.8 = 0.40864
    register = _register(
        _hazard("R1", "x", above=0, severity=3),
        _hazard("R2", "x", above=0, severity=4),
        _hazard("R3", "x", above=0, severity=5),
    )
    result = assess_risk(register, {"x": 1})
    assert result.overall_risk_score == pytest.approx(1 - 0.88 * 0.84 * 0.8)
    assert result.risk_level == "high"
    assert result.high_risk_factors == []  # no single hazard is high


def test_adding_a_hazard_never_lowers_the_score() -> None:
    base = [_hazard("R1", "x", above=0, severity=3, likelihood=3)]
    extra = _hazard("R2", "x", above=0, severity=1, likelihood=1)
    one = assess_risk(_register(*base), {"x": 1}).overall_risk_score
    two = assess_risk(_register(*base, extra), {"x": 1}).overall_risk_score
    assert two > one


@pytest.mark.parametrize(
    ("above", "below", "value", "triggered"),
    [
        (0.10, None, 0.10, False),
        (0.10, None, 0.1000001, True),
        (0.10, None, 0.0999999, False),
        (0.0, None, 0.0, False),
        (0.0, None, 1e-12, True),
        (None, 0.75, 0.75, False),
        (None, 0.75, 0.7499999, True),
        (None, 0.75, 0.7500001, False),
        (None, 0.0, 0.0, False),
        (None, 0.0, -1e-12, True),
    ],
)
def test_triggers_are_strict(above: float | None, below: float | None, value: float, triggered: bool) -> None:
    hazard = _hazard("R1", "m", above=above, below=below, severity=5, likelihood=5)
    assert hazard.is_triggered(value) is triggered
    result = assess_risk(_register(hazard), {"m": value})
    assert result.hazards[0].triggered is triggered
    assert result.overall_risk_score == (1.0 if triggered else 0.0)


def test_trigger_text() -> None:
    assert _hazard("R1", "evaluation.auc", below=0.75).trigger == "evaluation.auc < 0.75"
    assert _hazard("R2", "fairness.flag_count", above=0).trigger == "fairness.flag_count > 0"


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0.0, "low"),
        (0.19999999, "low"),
        (0.20, "medium"),
        (0.39999999, "medium"),
        (0.40, "high"),
        (1.0, "high"),
    ],
)
def test_level_cut_offs(score: float, level: str) -> None:
    assert LEVELS.level(score) == level


@pytest.mark.parametrize(
    ("severity", "likelihood", "level"),
    [(1, 4, "low"), (1, 5, "medium"), (3, 3, "medium"), (2, 5, "high")],  # 0.16, 0.20, 0.36, 0.40
)
def test_hazard_level_exactly_at_cut_offs(severity: int, likelihood: int, level: str) -> None:
    register = _register(_hazard("R1", "x", above=0, severity=severity, likelihood=likelihood))
    result = assess_risk(register, {"x": 1})
    assert result.hazards[0].level == level
    assert result.high_risk_factors == (["Hazard R1"] if level == "high" else [])


@pytest.mark.parametrize(
    ("severity", "likelihood"),
    [
        (1, 4),
        (1, 5),  # regression: 1 - (1 - 0.2) used to fall just below the 0.20 cut-off
        (3, 3),
        (2, 5),
        (4, 4),
    ],
)
def test_single_hazard_overall_level_equals_its_level(severity: int, likelihood: int) -> None:
    register = _register(_hazard("R1", "x", above=0, severity=severity, likelihood=likelihood))
    result = assess_risk(register, {"x": 1})
    assert result.overall_risk_score == pytest.approx(result.hazards[0].score)
    assert result.risk_level == result.hazards[0].level


def test_custom_level_cut_offs() -> None:
    levels = RiskLevels(low_below=0.5, high_from=0.9)
    register = _register(_hazard("R1", "x", above=0, severity=4, likelihood=4), levels=levels)
    result = assess_risk(register, {"x": 1})
    assert result.risk_level == "medium"  # 0.64 is between 0.5 and 0.9 here
    assert result.high_risk_factors == []
    assert (result.low_below, result.high_from) == (0.5, 0.9)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------
def test_missing_measurement_raises_naming_hazard_and_measure() -> None:
    register = _register(_hazard("R1", "present", above=0), _hazard("R77", "evaluation.nonexistent", above=0))
    with pytest.raises(RiskInputError) as info:
        assess_risk(register, {"present": 0.0, "other": 1.0})
    message = str(info.value)
    assert "R77" in message
    assert "'evaluation.nonexistent'" in message
    assert "available: other, present" in message
    assert not message.startswith('"')  # not quoted like a plain KeyError
    assert isinstance(info.value, KeyError)


@pytest.mark.parametrize("value", [math.nan, float("nan")])
def test_nan_measurement_raises(value: float) -> None:
    register = _register(_hazard("R3", "evaluation.auc", below=0.75))
    with pytest.raises(RiskInputError, match=r"R3.*'evaluation\.auc'.*NaN"):
        assess_risk(register, {"evaluation.auc": value})


def test_nan_is_refused_even_when_another_hazard_is_fine() -> None:
    register = _register(_hazard("R1", "a", above=0), _hazard("R2", "b", above=0))
    with pytest.raises(RiskInputError, match="R2"):
        assess_risk(register, {"a": 1.0, "b": math.nan})


@pytest.mark.parametrize("triggers", [{"above": 0.1, "below": 0.2}, {}])
def test_hazard_needs_exactly_one_trigger(triggers: dict[str, float]) -> None:
    with pytest.raises(ValidationError, match="exactly one of 'above' or 'below'"):
        Hazard(id="R9", name="n", measure="m", severity=1, likelihood=1, **triggers)


@pytest.mark.parametrize(("severity", "likelihood"), [(0, 1), (6, 1), (1, 0), (1, 6)])
def test_severity_and_likelihood_between_one_and_five(severity: int, likelihood: int) -> None:
    with pytest.raises(ValidationError):
        Hazard(id="R9", name="n", measure="m", above=0, severity=severity, likelihood=likelihood)


def test_hazard_refuses_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        Hazard.model_validate(
            {"id": "R9", "name": "n", "measure": "m", "above": 0, "severity": 1, "likelihood": 1, "x": 1}
        )


# ---------------------------------------------------------------------------
# Bundled register and measurements
# ---------------------------------------------------------------------------
def _evaluation(accuracy: float = 0.82) -> Evaluation:
    return Evaluation(
        accuracy=accuracy,
        auc=0.78,
        f1=0.5,
        precision=0.6,
        recall=0.45,
        balanced_accuracy=0.7,
        ks=0.4,
        brier=0.14,
        expected_calibration_error=0.02,
        approval_rate=0.8,
        decision_threshold=0.5,
        test_rows=100,
        confusion_matrix=ConfusionMatrix(true_negative=70, false_positive=8, false_negative=12, true_positive=10),
    )


def _fairness() -> FairnessReport:
    attribute = AttributeFairness(
        attribute="AGE",
        groups=[],
        compared_groups=["a", "b"],
        insufficient_sample_groups=["c", "d"],
        demographic_parity_difference=0.05,
        demographic_parity_ratio=0.9,
        equal_opportunity_difference=0.03,
        equalized_odds_difference=0.04,
    )
    return FairnessReport(
        favourable_outcome=FAVOURABLE_OUTCOME,
        min_group_size=100,
        disparate_impact_min=0.8,
        equal_opportunity_gap_max=0.1,
        attributes=[attribute],
        bias_disparity=0.05,
        bias_disparity_attribute="AGE",
        fairness_flags=["AGE: something"],
    )


def _quality() -> DataQualityReport:
    return DataQualityReport(
        rows=1000,
        default_rate=0.22,
        minority_class_share=0.22,
        missing_values={},
        missing_value_share=0.0,
        undocumented_codes=[
            UndocumentedCode(column="EDUCATION", code=0, rows=10, mapped_to=4),
            UndocumentedCode(column="EDUCATION", code=5, rows=3, mapped_to=4),
            UndocumentedCode(column="MARRIAGE", code=0, rows=5, mapped_to=3),
        ],
    )


def _model() -> TrainedModel:
    return TrainedModel(
        booster="",
        input_columns=[],
        derived_features=[],
        feature_names=[],
        decision_threshold=0.5,
        threshold_rule="expected_cost",
        threshold_rule_description="",
        params={},
        best_iteration=1,
        train_auc=0.85,
        validation_auc=0.78,
    )


def test_risk_measurements_values() -> None:
    thresholds = Thresholds(accuracy_min=0.80)
    m = risk_measurements(_evaluation(accuracy=0.82), _fairness(), _quality(), _model(), thresholds)
    assert m["evaluation.accuracy_margin"] == pytest.approx(0.02)
    assert m["fairness.flag_count"] == 1.0
    assert m["fairness.insufficient_sample_groups"] == 2.0
    assert m["data.undocumented_code_columns"] == 2.0  # EDUCATION and MARRIAGE, not 3 codes
    assert m["model.overfit_gap"] == pytest.approx(0.07)
    assert m["evaluation.auc"] == 0.78
    assert all(isinstance(v, float) for v in m.values())


def test_bundled_register_loads_and_its_measures_exist() -> None:
    register = load_risk_register()
    assert register.hazards
    ids = [h.id for h in register.hazards]
    assert len(ids) == len(set(ids))
    assert register.levels.low_below <= register.levels.high_from
    measurements = risk_measurements(_evaluation(), _fairness(), _quality(), _model(), Thresholds())
    missing = {h.measure for h in register.hazards} - set(measurements)
    assert missing == set()
    result = assess_risk(register, measurements)  # must not raise
    assert len(result.hazards) == len(register.hazards)
    assert 0.0 <= result.overall_risk_score <= 1.0


def test_load_risk_register_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "register.yaml"
    path.write_text(
        "version: '1'\n"
        "levels: {low_below: 0.1, high_from: 0.5}\n"
        "hazards:\n"
        "  - {id: H1, name: n, measure: m, above: 0.5, severity: 2, likelihood: 3}\n",
        encoding="utf-8",
    )
    register = load_risk_register(path)
    assert register.version == "1"
    assert register.hazards[0].above == 0.5
    assert register.hazards[0].mitigation == ""


def test_load_risk_register_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("version: [unclosed\nlevels: {\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_risk_register(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        # both triggers
        "version: '1'\nlevels: {low_below: 0.2, high_from: 0.4}\nhazards:\n"
        "  - {id: H1, name: n, measure: m, above: 0, below: 1, severity: 1, likelihood: 1}\n",
        # severity out of range
        "version: '1'\nlevels: {low_below: 0.2, high_from: 0.4}\nhazards:\n"
        "  - {id: H1, name: n, measure: m, above: 0, severity: 9, likelihood: 1}\n",
        # unknown key
        "version: '1'\nlevels: {low_below: 0.2, high_from: 0.4}\nhazards: []\nextra: 1\n",
        # not a mapping
        "- just\n- a list\n",
    ],
)
def test_load_risk_register_invalid_content_names_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad_register.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_risk_register(path)
    assert str(path) in str(info.value)


def test_load_risk_register_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml"):
        load_risk_register(path)
