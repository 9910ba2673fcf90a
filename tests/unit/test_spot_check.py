"""The quarterly spot-check: seeded SOP violations are found, a clean sample has none, the draw is reproducible."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from credit_scorer.apps.cli.main import app
from credit_scorer.audit.spot_check import (
    SpotCheckError,
    SpotCheckReport,
    quarter_bounds,
    quarter_of,
    spot_check,
)
from credit_scorer.audit.verify import audit_verify
from credit_scorer.domain.config import Thresholds
from credit_scorer.records import ledger
from credit_scorer.records import models as records
from credit_scorer.records.people import load_people
from credit_scorer.records.store import ComplianceStore
from credit_scorer.records.thresholds import set_thresholds
from tests import audit_builders as build

REPO = Path(__file__).resolve().parents[2]
PEOPLE = REPO / "conf" / "people.yaml"
QUARTER = "2026Q4"
CLEAN = 6


@pytest.fixture
def clean(tmp_path: Path) -> ComplianceStore:
    """Six releases that follow the SOP, one a rejection."""
    store = ComplianceStore(str(tmp_path / "compliance"))
    for n in range(1, CLEAN):
        build.release(store, n)
    build.release(store, CLEAN, approved=False, deploy=False)
    return store


def _by_id(report: SpotCheckReport) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for finding in report.findings:
        found.setdefault(finding.approval_id, set()).add(finding.check)
    return found


def test_quarters() -> None:
    assert quarter_bounds("2026Q4") == ("2026-10-01T00:00:00Z", "2027-01-01T00:00:00Z")
    assert quarter_bounds("2026q1") == ("2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z")
    assert quarter_of(datetime(2026, 11, 27, tzinfo=UTC)) == "2026Q4"
    with pytest.raises(SpotCheckError, match="--quarter '2026Q5'"):
        quarter_bounds("2026Q5")


def test_a_clean_sample_has_no_findings(clean: ComplianceStore) -> None:
    report = spot_check(clean, CLEAN, seed=3, quarter=QUARTER)
    assert report.findings == []
    assert len(report.sample) == CLEAN
    assert report.population == CLEAN


def test_seeded_violations_are_found(clean: ComplianceStore) -> None:
    store = clean
    failing = build.release(store, 11, accuracy=0.70)  # Accuracy fails, approved without an override
    same_person = build.release(store, 12, approver=build.SUBMITTER)
    other_model = build.release(store, 13, row_sha256="f" * 64)  # the log deployed another model
    late_signoff = build.release(store, 14, signoff_after=True)
    no_reason = build.release(store, 15, accuracy=0.70, threshold_override=True, override_rationale=" ")
    misapplied = build.release(
        store,
        16,
        accuracy=0.70,
        threshold_override=True,
        override_rationale="reviewed",
        threshold_checks={"Accuracy": True, "Bias disparity": True, "Risk score": True, "Fairness flags": True},
    )
    report = spot_check(store, 100, seed=1, quarter=QUARTER)
    found = _by_id(report)
    assert found[failing.approval_id] == {"override"}
    assert found[same_person.approval_id] == {"separation of duties"}
    assert found[other_model.approval_id] == {"deployed = approved"}
    assert found[late_signoff.approval_id] == {"tester sign-off"}
    assert found[no_reason.approval_id] == {"override"}
    assert found[misapplied.approval_id] == {"thresholds"}
    assert len(found) == 6, found
    fields = {(f.approval_id, f.field) for f in report.findings}
    assert (failing.approval_id, "threshold_override") in fields
    assert (same_person.approval_id, "approver") in fields
    assert (late_signoff.approval_id, "tester_signoff.signed_at") in fields
    assert (misapplied.approval_id, "threshold_checks.Accuracy") in fields
    assert all(f.file == f"approvals/{f.approval_id}.json" for f in report.findings)
    md = store.read_text(report.md_path)
    assert other_model.approval_id in md and "deployed" in md


def test_missing_sop_field_and_thresholds_other_than_in_force_are_found(clean: ComplianceStore) -> None:
    store = clean
    set_thresholds(
        store, Thresholds(accuracy_min=0.75), build.SUBMITTER, "lower bar", load_people(PEOPLE), at=build.BASE_TIME
    )
    stale = build.release(store, 21)  # used the defaults (0.80) although version 1 (0.75) was in force
    payload = json.loads(store.read_bytes(f"approvals/{stale.approval_id}.json"))
    del payload["risk_summary"]
    payload["approval_id"] = "approval_2026-11-30T12-00-00"
    payload["timestamp"] = "2026-11-30T12:00:00Z"
    store.write_new("approvals/approval_2026-11-30T12-00-00.json", records.canonical_json(payload))
    report = spot_check(store, 100, seed=1, quarter=QUARTER)
    by_field = {(f.approval_id, f.field): f for f in report.findings}
    assert ("approval_2026-11-30T12-00-00", "risk_summary") in by_field
    assert by_field[(stale.approval_id, "thresholds.accuracy_min")].check == "thresholds"
    assert "threshold version 1" in by_field[(stale.approval_id, "thresholds.accuracy_min")].message


def test_same_seed_same_sample_and_only_the_quarters_records(clean: ComplianceStore) -> None:
    build.release(clean, 31, at=datetime(2026, 9, 30, 23, 0, tzinfo=UTC))  # 2026Q3
    first = spot_check(clean, 3, seed=42, quarter=QUARTER)
    again = spot_check(clean, 3, seed=42, quarter=QUARTER)
    assert first.sample == again.sample
    assert len(first.sample) == 3
    assert first.population == CLEAN
    draws = {tuple(spot_check(clean, 3, seed=s, quarter=QUARTER).sample) for s in range(8)}
    assert len(draws) > 1
    q3 = spot_check(clean, 5, seed=1, quarter="2026Q3")
    assert q3.population == 1
    assert q3.sample == ["approval_2026-09-30T23-00-00"]


def test_report_files_are_written_and_ledgered(clean: ComplianceStore) -> None:
    at = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    report = spot_check(clean, 4, seed=5, quarter=QUARTER, by="Avery Auditor", at=at)
    assert report.md_path == "audit/spot_check_2026Q4_2026-12-03.md"
    assert report.html_path == "audit/spot_check_2026Q4_2026-12-03.html"
    second = spot_check(clean, 4, seed=5, quarter=QUARTER, at=at)
    assert second.md_path == "audit/spot_check_2026Q4_2026-12-03_2.md"
    md = clean.read_text(report.md_path)
    assert "seed 5" in md and "Avery Auditor" in md and "--seed 5 --quarter 2026Q4" in md
    html = clean.read_text(report.html_path)
    assert html.startswith("<!DOCTYPE html>") and "no findings" in html
    spot_entries = [e for e in ledger.entries(clean) if e.kind == "spot_check"]
    assert [e.path for e in spot_entries] == [report.md_path, report.html_path, second.md_path, second.html_path]
    assert audit_verify(clean).problems == []


def test_spot_check_cli(clean: ComplianceStore) -> None:
    build.release(clean, 41, approver=build.SUBMITTER)
    args = ["audit", "spot-check", "--sample", "10", "--seed", "9", "--quarter", QUARTER, "--store", clean.url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    text = result.output.replace("\n", "")
    assert "separation of duties" in text
    assert "audit/spot_check_2026Q4_" in text
    assert "seed 9" in text


def test_a_record_edited_after_it_was_written_is_found(clean: ComplianceStore) -> None:
    path = clean.local_path("approvals/approval_2026-11-02T12-00-00.json")
    path.write_text(path.read_text().replace('"rationale": "Meets KPIs; risk acceptable"', '"rationale": "Fine"'))
    report = spot_check(clean, CLEAN, seed=3, quarter=QUARTER)
    assert [(f.approval_id, f.check, f.field) for f in report.findings] == [
        ("approval_2026-11-02T12-00-00", "integrity", "sha256")
    ]
