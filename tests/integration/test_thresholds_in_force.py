"""A run uses the store's current threshold version, and a changed config becomes a new recorded version."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from credit_scorer.apps.cli.main import app
from credit_scorer.records.store import ComplianceStore
from credit_scorer.records.thresholds import history
from credit_scorer.release.inputs import policy_in_force as _policy_in_force
from tests.integration.conftest import PEOPLE

pytestmark = pytest.mark.integration


def test_a_run_uses_the_version_set_with_thresholds_set(tmp_path: Path) -> None:
    store = tmp_path / "compliance"
    result = CliRunner().invoke(
        app,
        [
            "thresholds",
            "set",
            "--accuracy-min",
            "0.83",
            "--as",
            "Ada Lovelace",
            "--reason",
            "Q1 review",
            "--people",
            str(PEOPLE),
            "--store",
            str(store),
        ],
    )
    assert result.exit_code == 0, result.output
    assert _policy_in_force(None, str(store)).thresholds.accuracy_min == 0.83

    override = tmp_path / "thresholds.yaml"
    override.write_text(yaml.safe_dump({"thresholds": {"accuracy_min": 0.79}}))
    assert _policy_in_force(override, str(store)).thresholds.accuracy_min == 0.79
    versions = history(ComplianceStore(str(store)))
    assert [v.thresholds.accuracy_min for v in versions][-1] == 0.83
