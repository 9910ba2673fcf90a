"""Approval and sign-off records: SOP §3 fields, the committed JSON Schema, naming, refusal of bad records.

The gate inputs are real: a 20-tree model trained on a sample of the bundled data, with its
evaluation, fairness report, risk assessment and threshold checks, built once per module.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from credit_scorer.domain import checks, data, evaluate, fairness, risk, train
from credit_scorer.domain.config import load_dataset_spec, load_policy, training_config
from credit_scorer.records import models as records
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release import signoffs, workflow
from credit_scorer.release.gate import GateDecision

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "schemas" / "approval_record.schema.json"
SAMPLE_ROWS = 6000
DECIDED_AT = datetime(2026, 11, 27, 10, 3, 55, tzinfo=UTC)
SOP_CHECK_NAMES = {"Accuracy", "Bias disparity", "Risk score", "Fairness flags"}


@pytest.fixture(scope="module")
def candidate() -> workflow.ReleaseCandidate:
    """A release candidate built from the real pipeline pieces on a sample of the bundled data."""
    spec = load_dataset_spec()
    policy = load_policy()
    config = training_config(n_estimators=20)
    frame, info = data.load_dataset(spec)
    clean, quality = data.validate_dataset(frame, spec)
    sample = clean.sample(n=SAMPLE_ROWS, random_state=0).reset_index(drop=True)
    train_part, valid_part, test_part, _ = data.split_dataset(sample, spec, config)
    model = train.train_model(train_part, valid_part, spec, config)
    ev = evaluate.evaluate_model(model, test_part, spec)
    fr = fairness.assess_fairness(model, test_part, spec, policy.fairness)
    ra = risk.assess_risk(risk.load_risk_register(), risk.risk_measurements(ev, fr, quality, model, policy.thresholds))
    return workflow.ReleaseCandidate(
        run_id="951443cd-3153-4c1b-9a53-0d5a2b1c7e11",
        release_id="AI-REL-951443cd",
        submitter="Ada Lovelace",
        checks=checks.threshold_checks(ev, fr, ra, policy.thresholds),
        evaluation=ev,
        fairness=fr,
        risk=ra,
        model_sha256=model.sha256,
        dataset_sha256=info.sha256,
        decision_threshold=model.decision_threshold,
    )


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _decision(**overrides: Any) -> GateDecision:
    fields: dict[str, Any] = {
        "approved": True,
        "approver": "Jane Doe",
        "rationale": "Meets KPIs; risk acceptable",
        "decision_mode": "cli",
        "decided_at": records.iso_utc(DECIDED_AT),
        "threshold_override": True,
        "override_rationale": "Sample model for a records test",
        "tester_signoff": records.TesterSignoff(
            tester="Quinn Tester", signed_at="2026-11-27T09:00:00Z", source="cli", note="Annex IV reviewed"
        ),
    }
    return GateDecision(**(fields | overrides))


def _fields(candidate: workflow.ReleaseCandidate, **overrides: Any) -> dict[str, object]:
    base = workflow._record_fields(candidate, _decision(), [], False)
    return (
        base
        | {"deployment_url": "http://127.0.0.1:8123", "model_path": f"models/{candidate.model_sha256}.json"}
        | overrides
    )


def _written(store: ComplianceStore, record: records.ApprovalRecord) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(store.read_bytes(f"approvals/{record.approval_id}.json"))
    return payload


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ---------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------
def test_committed_schema_is_the_schema_of_the_record_model() -> None:
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == records.approval_schema(), "regenerate schemas/approval_record.schema.json"
    assert committed["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_written_approval_record_validates_against_the_committed_schema(
    tmp_path: Path, candidate: workflow.ReleaseCandidate, validator: Draft202012Validator
) -> None:
    store = ComplianceStore(str(tmp_path))
    record = records.write_approval(store, _fields(candidate), DECIDED_AT)
    payload = _written(store, record)
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.path))
    assert errors == [], [f"{list(e.path)}: {e.message}" for e in errors]


def test_rejection_without_deployment_also_validates(
    tmp_path: Path, candidate: workflow.ReleaseCandidate, validator: Draft202012Validator
) -> None:
    store = ComplianceStore(str(tmp_path))
    decision = _decision(approved=False, rationale="Risk score too high", threshold_override=False)
    decision = decision.model_copy(update={"override_rationale": None, "tester_signoff": None})
    record = records.write_approval(store, workflow._record_fields(candidate, decision, [], False), DECIDED_AT)
    payload = _written(store, record)
    assert validator.is_valid(payload)
    assert payload["approved"] is False
    assert payload["deployment_url"] is None
    assert payload["tester_signoff"] is None


# ---------------------------------------------------------------------------
# SOP §3 fields
# ---------------------------------------------------------------------------
def test_every_sop_field_is_present_with_the_sop_name_and_json_type(
    tmp_path: Path, candidate: workflow.ReleaseCandidate
) -> None:
    store = ComplianceStore(str(tmp_path))
    payload = _written(store, records.write_approval(store, _fields(candidate), DECIDED_AT))

    assert isinstance(payload["approval_id"], str)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", payload["timestamp"])
    assert payload["timestamp"] == "2026-11-27T10:03:55Z"
    assert payload["decision_mode"] == "cli"
    assert payload["approved"] is True
    assert payload["approver"] == "Jane Doe"
    assert payload["rationale"] == "Meets KPIs; risk acceptable"

    assert set(payload["threshold_checks"]) == SOP_CHECK_NAMES
    assert all(isinstance(v, bool) for v in payload["threshold_checks"].values())
    assert payload["threshold_checks"] == candidate.checks.as_record()

    summary = payload["evaluation_summary"]
    assert {"accuracy", "auc", "f1", "fairness_flags"} <= set(summary)
    assert all(_is_number(summary[k]) for k in ("accuracy", "auc", "f1"))
    assert summary["accuracy"] == candidate.evaluation.accuracy
    assert summary["auc"] == candidate.evaluation.auc
    assert summary["f1"] == candidate.evaluation.f1
    assert isinstance(summary["fairness_flags"], list)
    assert summary["fairness_flags"] == candidate.fairness.fairness_flags

    risk_summary = payload["risk_summary"]
    assert risk_summary["risk_level"] in {"low", "medium", "high"}
    assert risk_summary["risk_level"] == candidate.risk.risk_level
    assert isinstance(risk_summary["high_risk_factors"], list)
    assert all(isinstance(f, str) for f in risk_summary["high_risk_factors"])

    assert payload["deployment_url"] == "http://127.0.0.1:8123"


def test_record_keeps_what_an_auditor_needs(tmp_path: Path, candidate: workflow.ReleaseCandidate) -> None:
    store = ComplianceStore(str(tmp_path))
    payload = _written(store, records.write_approval(store, _fields(candidate), DECIDED_AT))
    assert payload["run_id"] == candidate.run_id
    assert payload["release_id"] == candidate.release_id
    assert payload["submitter"] == "Ada Lovelace"
    assert payload["tester_signoff"]["tester"] == "Quinn Tester"
    assert payload["model_sha256"] == candidate.model_sha256
    assert payload["dataset_sha256"] == candidate.dataset_sha256
    assert payload["threshold_override"] is True
    assert payload["override_rationale"] == "Sample model for a records test"
    assert set(payload["threshold_values"]) == SOP_CHECK_NAMES
    for name, detail in payload["threshold_values"].items():
        assert detail["passed"] == payload["threshold_checks"][name]


def test_record_bytes_are_canonical_json_and_read_back_equal(
    tmp_path: Path, candidate: workflow.ReleaseCandidate
) -> None:
    store = ComplianceStore(str(tmp_path))
    record = records.write_approval(store, _fields(candidate), DECIDED_AT)
    raw = store.read_bytes(f"approvals/{record.approval_id}.json")
    assert raw == record.to_json()
    assert raw.endswith(b"\n")
    assert list(json.loads(raw)) == sorted(json.loads(raw))
    assert records.read_approval(store, record.approval_id) == record
    assert records.decisions_for(store, candidate.release_id) == [record]
    assert records.decisions_for(store, "AI-REL-00000000") == []


# ---------------------------------------------------------------------------
# Naming
# ---------------------------------------------------------------------------
def test_approval_id_is_the_file_stem_named_after_the_decision_time(
    tmp_path: Path, candidate: workflow.ReleaseCandidate
) -> None:
    store = ComplianceStore(str(tmp_path))
    record = records.write_approval(store, _fields(candidate), DECIDED_AT)
    assert record.approval_id == "approval_2026-11-27T10-03-55"
    assert store.list("approvals") == [f"approvals/{record.approval_id}.json"]
    assert _written(store, record)["approval_id"] == record.approval_id


def test_two_decisions_in_the_same_second_get_distinct_files(
    tmp_path: Path, candidate: workflow.ReleaseCandidate
) -> None:
    store = ComplianceStore(str(tmp_path))
    first = records.write_approval(store, _fields(candidate), DECIDED_AT)
    second = records.write_approval(store, _fields(candidate, rationale="second"), DECIDED_AT)
    third = records.write_approval(store, _fields(candidate, rationale="third"), DECIDED_AT)
    assert [first.approval_id, second.approval_id, third.approval_id] == [
        "approval_2026-11-27T10-03-55",
        "approval_2026-11-27T10-03-55_2",
        "approval_2026-11-27T10-03-55_3",
    ]
    assert _written(store, first)["rationale"] == "Meets KPIs; risk acceptable"
    assert _written(store, second)["rationale"] == "second"
    assert [r.approval_id for r in records.read_approvals(store)] == [
        first.approval_id,
        second.approval_id,
        third.approval_id,
    ]


def test_a_decision_time_with_an_offset_is_named_in_utc(tmp_path: Path, candidate: workflow.ReleaseCandidate) -> None:
    store = ComplianceStore(str(tmp_path))
    in_cest = datetime(2026, 11, 27, 14, 3, 55, tzinfo=timezone(timedelta(hours=2)))
    record = records.write_approval(store, _fields(candidate), in_cest)
    assert record.approval_id == "approval_2026-11-27T12-03-55"


# ---------------------------------------------------------------------------
# Refused records
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("rationale", ""),
        ("model_sha256", "not-a-sha"),
        ("model_sha256", "A" * 64),
        ("dataset_sha256", "0" * 63),
        ("timestamp", "2026-11-27 10:03:55"),
        ("decision_mode", "email"),
    ],
)
def test_bad_fields_are_refused_by_the_schema_and_by_pydantic(
    tmp_path: Path, candidate: workflow.ReleaseCandidate, validator: Draft202012Validator, field: str, bad: str
) -> None:
    store = ComplianceStore(str(tmp_path))
    good = _written(store, records.write_approval(store, _fields(candidate), DECIDED_AT))
    assert validator.is_valid(good)
    assert not validator.is_valid(good | {field: bad})
    with pytest.raises(ValidationError, match=field):
        records.ApprovalRecord.model_validate(good | {field: bad})
    with pytest.raises(ValidationError, match=field):
        records.write_approval(store, _fields(candidate, **{field: bad}), DECIDED_AT)
    assert store.list("approvals") == [f"approvals/{good['approval_id']}.json"]  # nothing more written


def test_unknown_fields_and_missing_sop_checks_are_refused(
    tmp_path: Path, candidate: workflow.ReleaseCandidate, validator: Draft202012Validator
) -> None:
    store = ComplianceStore(str(tmp_path))
    good = _written(store, records.write_approval(store, _fields(candidate), DECIDED_AT))
    three_checks = {k: v for k, v in good["threshold_checks"].items() if k != "Fairness flags"}
    for bad in (good | {"extra": 1}, good | {"threshold_checks": three_checks}):
        assert not validator.is_valid(bad)
        with pytest.raises(ValidationError):
            records.ApprovalRecord.model_validate(bad)


def test_records_are_immutable_once_built(tmp_path: Path, candidate: workflow.ReleaseCandidate) -> None:
    store = ComplianceStore(str(tmp_path))
    record = records.write_approval(store, _fields(candidate), DECIDED_AT)
    with pytest.raises(ValidationError):
        record.approved = False  # type: ignore[misc]


# ---------------------------------------------------------------------------
# Sign-off records
# ---------------------------------------------------------------------------
def test_signoff_record_is_written_with_its_id_as_file_stem(tmp_path: Path) -> None:
    store = ComplianceStore(str(tmp_path))
    record = records.write_signoff(store, "run-1", "AI-REL-aaaa0001", "Quinn Tester", "looks good", "cli", DECIDED_AT)
    assert record.signoff_id == "signoff_AI-REL-aaaa0001_2026-11-27T10-03-55"
    payload = json.loads(store.read_bytes(f"signoffs/{record.signoff_id}.json"))
    assert payload == {
        "signoff_id": record.signoff_id,
        "timestamp": "2026-11-27T10:03:55Z",
        "run_id": "run-1",
        "release_id": "AI-REL-aaaa0001",
        "tester": "Quinn Tester",
        "note": "looks good",
        "source": "cli",
        "record_version": "1",
    }


def test_signoffs_for_returns_only_that_release_oldest_first(tmp_path: Path) -> None:
    store = ComplianceStore(str(tmp_path))
    later = DECIDED_AT + timedelta(minutes=5)
    earlier = DECIDED_AT - timedelta(minutes=5)
    records.write_signoff(store, "run-1", "AI-REL-aaaa0001", "Quinn Tester", "second look", "console", later)
    records.write_signoff(store, "run-1", "AI-REL-aaaa0001", "Quinn Tester", "first look", "cli", earlier)
    records.write_signoff(store, "run-1", "AI-REL-aaaa0001", "Quinn Tester", "same second", "env", later)
    records.write_signoff(store, "run-2", "AI-REL-bbbb0002", "Quinn Tester", "other release", "cli", DECIDED_AT)

    found = records.signoffs_for(store, "AI-REL-aaaa0001")
    assert [s.note for s in found] == ["first look", "second look", "same second"]
    assert found[2].signoff_id == "signoff_AI-REL-aaaa0001_2026-11-27T10-08-55_2"
    assert [s.note for s in records.signoffs_for(store, "AI-REL-bbbb0002")] == ["other release"]
    assert records.signoffs_for(store, "AI-REL-cccc0003") == []
    latest = signoffs.latest_signoff(store, "AI-REL-aaaa0001")
    assert latest is not None
    assert (latest.note, latest.source, latest.signoff_id) == ("same second", "env", found[2].signoff_id)
