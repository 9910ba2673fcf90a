"""Versioned thresholds: who set which version and why, role check, changes noticed at run start."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from credit_scorer.apps.cli.main import app
from credit_scorer.audit.verify import audit_verify
from credit_scorer.domain.config import FairnessPolicy, PolicyConfig, Thresholds
from credit_scorer.records import ledger
from credit_scorer.records.people import IdentityError, People, load_people
from credit_scorer.records.store import ComplianceStore
from credit_scorer.records.thresholds import (
    REASON_FIRST_RUN,
    REASON_RUN_START,
    current,
    history,
    note_config_at_run_start,
    set_thresholds,
)
from tests import audit_builders as build

REPO = Path(__file__).resolve().parents[2]
PEOPLE = REPO / "conf" / "people.yaml"


@pytest.fixture
def store(tmp_path: Path) -> ComplianceStore:
    return ComplianceStore(str(tmp_path / "compliance"))


@pytest.fixture(scope="module")
def people() -> People:
    return load_people(PEOPLE)


def test_set_then_history_lists_versions_with_who_and_why(store: ComplianceStore, people: People) -> None:
    assert history(store) == [] and current(store) is None
    first = set_thresholds(store, Thresholds(), "Ada Lovelace", "SOP §2 defaults", people, at=build.BASE_TIME)
    later = build.BASE_TIME + timedelta(days=90)
    second = set_thresholds(
        store, Thresholds(accuracy_min=0.82), "Grace Hopper", "Q1 review: raise the accuracy bar", people, at=later
    )
    versions = history(store)
    assert [(v.version, v.set_by, v.reason) for v in versions] == [
        (1, "Ada Lovelace", "SOP §2 defaults"),
        (2, "Grace Hopper", "Q1 review: raise the accuracy bar"),
    ]
    assert versions[1].thresholds.accuracy_min == 0.82
    assert versions[1].fairness == FairnessPolicy()
    assert current(store) == second
    assert store.exists("thresholds/threshold_v1.json") and first.path == "thresholds/threshold_v1.json"
    entries = [e for e in ledger.entries(store) if e.kind == "threshold_change"]
    assert [e.path for e in entries] == ["thresholds/threshold_v1.json", "thresholds/threshold_v2.json"]
    assert audit_verify(store).problems == []


def test_a_non_submitter_is_refused_and_nothing_is_written(store: ComplianceStore, people: People) -> None:
    for who in ("Quinn Tester", "Jane Doe", "Nobody Known"):
        with pytest.raises(IdentityError, match="SoD-1"):
            set_thresholds(store, Thresholds(accuracy_min=0.5), who, "cheaper releases", people)
    assert history(store) == []
    assert not store.exists(ledger.LEDGER_FILE)


def test_a_change_needs_a_reason(store: ComplianceStore, people: People) -> None:
    with pytest.raises(ValueError, match="--reason"):
        set_thresholds(store, Thresholds(), "Ada Lovelace", "  ", people)


def test_note_config_at_run_start_records_only_when_changed(store: ComplianceStore) -> None:
    policy = PolicyConfig()
    first = note_config_at_run_start(store, policy, "Ada Lovelace")
    assert (first.version, first.reason, first.set_by) == (1, REASON_FIRST_RUN, "Ada Lovelace")
    assert note_config_at_run_start(store, policy, "Grace Hopper") == first
    assert len(history(store)) == 1
    changed = PolicyConfig(thresholds=Thresholds(risk_score_max=0.35))
    second = note_config_at_run_start(store, changed, "Grace Hopper")
    assert (second.version, second.reason, second.set_by) == (2, REASON_RUN_START, "Grace Hopper")
    fairness_only = PolicyConfig(thresholds=Thresholds(risk_score_max=0.35), fairness=FairnessPolicy(min_group_size=50))
    assert note_config_at_run_start(store, fairness_only, "Ada Lovelace").version == 3
    assert note_config_at_run_start(store, fairness_only, "Ada Lovelace").version == 3
    assert [v.version for v in history(store)] == [1, 2, 3]


def test_an_approval_naming_a_version_must_use_its_thresholds(store: ComplianceStore, people: People) -> None:
    set_thresholds(store, Thresholds(accuracy_min=0.75), "Ada Lovelace", "lower bar", people, at=build.BASE_TIME)
    good = build.release(store, 1, thresholds=Thresholds(accuracy_min=0.75), thresholds_version=1)
    assert good.thresholds_version == 1
    assert audit_verify(store).problems == []
    bad = build.release(store, 2, thresholds_version=1)  # default 0.80 while naming version 1 (0.75)
    problems = audit_verify(store).problems
    assert [(p.file, p.field) for p in problems] == [(f"approvals/{bad.approval_id}.json", "thresholds")]


def test_thresholds_cli_set_and_history(store: ComplianceStore) -> None:
    runner = CliRunner()
    base = ["--store", store.url, "--people", str(PEOPLE)]
    values = ["--accuracy-min", "0.81", "--bias-disparity-max", "0.15", "--risk-score-max", "0.4"]
    who = ["--fairness-flags-max", "0", "--as", "Ada Lovelace", "--reason", "quarterly review"]
    result = runner.invoke(app, ["thresholds", "set", *values, *who, *base])
    assert result.exit_code == 0, result.output
    assert "thresholds version 1 set by Ada Lovelace" in result.output.replace("\n", " ")
    result = runner.invoke(
        app, ["thresholds", "set", "--risk-score-max", "0.3", "--as", "Grace Hopper", "--reason", "tighter", *base]
    )
    assert result.exit_code == 0, result.output
    latest = current(store)
    assert latest is not None and latest.thresholds.accuracy_min == 0.81 and latest.thresholds.risk_score_max == 0.3
    refused = runner.invoke(
        app, ["thresholds", "set", "--accuracy-min", "0.5", "--as", "Jane Doe", "--reason", "x", *base]
    )
    assert refused.exit_code == 2
    assert "SoD-1" in refused.output
    invalid = runner.invoke(
        app, ["thresholds", "set", "--accuracy-min", "1.5", "--as", "Ada Lovelace", "--reason", "x", *base]
    )
    assert invalid.exit_code == 2
    assert "--accuracy-min" in invalid.output
    shown = runner.invoke(app, ["thresholds", "history", "--store", store.url])
    assert shown.exit_code == 0, shown.output
    assert "quarterly review" in shown.output and "Grace Hopper" in shown.output
