"""Configuration files: invalid ones raise ConfigError naming the file and the field to fix."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from credit_scorer.core import constants
from credit_scorer.core.errors import ConfigError
from credit_scorer.domain.config import PolicyConfig, bundled_resource, load_dataset_spec, load_policy, training_config

Spec = dict[str, Any]


@pytest.fixture(scope="module")
def bundled_spec() -> Spec:
    """The bundled dataset spec as plain YAML data."""
    data: Spec = yaml.safe_load(bundled_resource(constants.DEFAULT_DATASET_SPEC).read_text(encoding="utf-8"))
    return data


def spec_error(tmp_path: Path, bundled_spec: Spec, edit: Callable[[Spec], None]) -> str:
    """The ConfigError message for the bundled spec after edit, naming the file."""
    data = copy.deepcopy(bundled_spec)
    edit(data)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_dataset_spec(path)
    message = str(caught.value)
    assert str(path) in message
    return message


def write_thresholds(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "thresholds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# Dataset spec
# ---------------------------------------------------------------------------
def test_bundled_spec_loads() -> None:
    spec = load_dataset_spec()

    assert spec.target.column == "default payment next month"
    assert not set(spec.protected_columns) & set(spec.model_inputs)


def test_feature_without_column_entry_is_named(tmp_path: Path, bundled_spec: Spec) -> None:
    message = spec_error(tmp_path, bundled_spec, lambda d: d["features"].append("INCOME"))

    assert "feature 'INCOME'" in message
    assert "'columns'" in message


def test_protected_column_as_feature_needs_explicit_opt_in(tmp_path: Path, bundled_spec: Spec) -> None:
    message = spec_error(tmp_path, bundled_spec, lambda d: d["features"].append("SEX"))

    assert "'SEX'" in message
    assert "protected_as_features" in message


def test_protected_column_as_feature_allowed_with_opt_in(tmp_path: Path, bundled_spec: Spec) -> None:
    data = copy.deepcopy(bundled_spec)
    data["features"].append("SEX")
    data["protected_as_features"] = True
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")

    spec = load_dataset_spec(path)

    assert spec.model_inputs.count("SEX") == 1
    assert set(spec.protected_columns) <= set(spec.model_inputs)


def test_bins_and_labels_mismatch_is_named(tmp_path: Path, bundled_spec: Spec) -> None:
    def drop_a_label(data: Spec) -> None:
        age = next(a for a in data["protected_attributes"] if a["name"] == "AGE")
        age["bin_labels"].pop()

    message = spec_error(tmp_path, bundled_spec, drop_a_label)

    assert "protected_attributes" in message
    assert "'AGE'" in message
    assert "bin_labels" in message


def test_unknown_top_level_key_is_named(tmp_path: Path, bundled_spec: Spec) -> None:
    message = spec_error(tmp_path, bundled_spec, lambda d: d.update(featurez=["AGE"]))

    assert "featurez" in message
    assert "not permitted" in message


def test_unknown_nested_key_is_named_with_its_path(tmp_path: Path, bundled_spec: Spec) -> None:
    message = spec_error(tmp_path, bundled_spec, lambda d: d["columns"]["AGE"].update(maximum=99))

    assert "columns.AGE.maximum" in message


def test_target_as_feature_is_refused(tmp_path: Path, bundled_spec: Spec) -> None:
    message = spec_error(tmp_path, bundled_spec, lambda d: d["features"].append(d["target"]["column"]))

    assert "'default payment next month'" in message
    assert "must not be a feature" in message


def test_spec_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="mapping") as caught:
        load_dataset_spec(path)

    assert str(path) in str(caught.value)


def test_missing_spec_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"

    with pytest.raises(ConfigError, match="cannot read") as caught:
        load_dataset_spec(path)

    assert str(path) in str(caught.value)


# ---------------------------------------------------------------------------
# Thresholds and fairness policy
# ---------------------------------------------------------------------------
def test_out_of_range_threshold_is_named(tmp_path: Path) -> None:
    path = write_thresholds(tmp_path, "thresholds:\n  accuracy_min: 1.5\n")

    with pytest.raises(ConfigError) as caught:
        load_policy(path)

    message = str(caught.value)
    assert str(path) in message
    assert "thresholds.accuracy_min" in message


def test_unknown_threshold_key_is_named(tmp_path: Path) -> None:
    path = write_thresholds(tmp_path, "thresholds:\n  accuracy_minimum: 0.9\n")

    with pytest.raises(ConfigError) as caught:
        load_policy(path)

    message = str(caught.value)
    assert str(path) in message
    assert "thresholds.accuracy_minimum" in message
    assert "not permitted" in message


def test_negative_group_size_is_named(tmp_path: Path) -> None:
    path = write_thresholds(tmp_path, "fairness:\n  min_group_size: 0\n")

    with pytest.raises(ConfigError, match=r"fairness\.min_group_size"):
        load_policy(path)


def test_partial_thresholds_file_keeps_other_defaults(tmp_path: Path) -> None:
    path = write_thresholds(tmp_path, "thresholds:\n  accuracy_min: 0.9\n")

    policy = load_policy(path)

    assert policy.thresholds.accuracy_min == 0.9
    assert policy.thresholds.bias_disparity_max == constants.BIAS_DISPARITY_MAX
    assert policy.fairness == PolicyConfig().fairness


def test_default_policy_equals_constants() -> None:
    policy = load_policy(None)

    assert policy.thresholds.accuracy_min == constants.ACCURACY_MIN
    assert policy.thresholds.bias_disparity_max == constants.BIAS_DISPARITY_MAX
    assert policy.thresholds.risk_score_max == constants.RISK_SCORE_MAX
    assert policy.thresholds.fairness_flags_max == constants.FAIRNESS_FLAGS_MAX
    assert policy.fairness.min_group_size == constants.MIN_GROUP_SIZE
    assert policy.fairness.disparate_impact_min == constants.DISPARATE_IMPACT_MIN
    assert policy.fairness.equal_opportunity_gap_max == constants.EQUAL_OPPORTUNITY_GAP_MAX


# ---------------------------------------------------------------------------
# Training options
# ---------------------------------------------------------------------------
def test_training_defaults_equal_constants() -> None:
    config = training_config(seed=None)

    assert config.seed == constants.RANDOM_SEED
    assert config.test_fraction == constants.TEST_FRACTION
    assert config.validation_fraction == constants.VALIDATION_FRACTION


def test_invalid_training_option_is_named() -> None:
    with pytest.raises(ConfigError, match="test_fraction"):
        training_config(test_fraction=0.9)
