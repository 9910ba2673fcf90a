"""Hand-made compliance records for the ledger, audit and spot-check tests and the audit benchmark.

Everything is written through the real functions (``records.write_signoff``,
``records.write_approval``, ``workflow.store_model``, ``release_log.append_row``), so
every record is ledgered exactly as the product does it; only the gate inputs are made
up (valid values, consistent with the thresholds unless a test says otherwise).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from credit_scorer.core.settings import TRUST_ENV
from credit_scorer.domain.config import Thresholds
from credit_scorer.records import identities
from credit_scorer.records import models as records
from credit_scorer.records.release_log import ReleaseLogRow, append_row
from credit_scorer.records.signatures import key_id_of
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release import workflow

SUBMITTER = "Ada Lovelace"
TESTER = "Quinn Tester"
APPROVER = "Jane Doe"
DATASET_SHA256 = hashlib.sha256(b"the bundled dataset").hexdigest()
BASE_TIME = datetime(2026, 11, 2, 9, 0, 0, tzinfo=UTC)

CHECKS = (
    ("Accuracy", "accuracy_min", ">="),
    ("Bias disparity", "bias_disparity_max", "<="),
    ("Risk score", "risk_score_max", "<="),
    ("Fairness flags", "fairness_flags_max", "<="),
)


KEYS = {name: Ed25519PrivateKey.generate() for name in (TESTER, APPROVER, "Sam Compliance")}
"""The personal signing keys of the people who sign in these stores (enrolled in each store on first use)."""


def signer(store: ComplianceStore, name: str) -> identities.Signer | None:
    """``name``'s key, enrolled in ``store`` (once); None for people without one here."""
    if name not in KEYS:
        return None
    public = KEYS[name].public_key()
    held = identities.active_key(identities.current_keys(store), name)
    if held is None or held.key_id != key_id_of(public):
        identities.enrol_key(store, name, public, by="audit builder")
    return identities.Signer(name, KEYS[name])


def signed_approval(
    store: ComplianceStore, fields: dict[str, object], decided: datetime, *, sign: bool = True
) -> records.ApprovalRecord:
    """Write an approval record signed by its approver over the decision's fields (unsigned: ``sign=False``)."""
    person = signer(store, str(fields["approver"])) if sign else None
    if person is not None:
        draft = json.loads(records.ApprovalRecord.model_validate({**fields, "approval_id": "draft"}).to_json())
        fields = fields | {"signature": person(records.decision_hash(draft)).model_dump()}
    return records.write_approval(store, fields, decided)


def model_bytes(n: int) -> bytes:
    """A small stand-in model file, different for each n."""
    return f'{{"model": "lightgbm", "trees": {n}}}\n'.encode()


def approval_fields(
    *,
    release_id: str,
    run_id: str,
    timestamp: str,
    model_sha256: str,
    submitter: str = SUBMITTER,
    tester: str | None = TESTER,
    approver: str = APPROVER,
    signed_at: str | None = None,
    signoff_id: str | None = None,
    approved: bool = True,
    accuracy: float = 0.82,
    bias_disparity: float = 0.05,
    risk_score: float = 0.12,
    fairness_flags: list[str] | None = None,
    thresholds: Thresholds | None = None,
    threshold_override: bool = False,
    override_rationale: str | None = None,
    deployment_url: str | None = "http://127.0.0.1:8123",
    model_path: str | None = None,
    thresholds_version: int | None = None,
    **overrides: Any,
) -> dict[str, object]:
    """Field dict of a valid approval record whose checks follow from the values and thresholds."""
    limits = (thresholds or Thresholds()).model_dump()
    flags = fairness_flags or []
    values = {
        "Accuracy": accuracy,
        "Bias disparity": bias_disparity,
        "Risk score": risk_score,
        "Fairness flags": float(len(flags)),
    }
    details: dict[str, dict[str, object]] = {}
    passed: dict[str, bool] = {}
    for name, key, operator in CHECKS:
        value, limit = values[name], float(limits[key])
        ok = value >= limit if operator == ">=" else value <= limit
        details[name] = {"value": value, "operator": operator, "limit": limit, "passed": ok}
        passed[name] = ok
    fields: dict[str, object] = {
        "timestamp": timestamp,
        "decision_mode": "cli",
        "approved": approved,
        "approver": approver,
        "rationale": "Meets KPIs; risk acceptable" if approved else "Not this quarter",
        "threshold_checks": passed,
        "evaluation_summary": {
            "accuracy": accuracy,
            "auc": 0.78,
            "f1": 0.47,
            "fairness_flags": flags,
            "bias_disparity": bias_disparity,
        },
        "risk_summary": {
            "risk_level": "low" if risk_score < 0.2 else "medium" if risk_score < 0.4 else "high",
            "high_risk_factors": [],
            "overall_risk_score": risk_score,
        },
        "deployment_url": deployment_url if approved else None,
        "run_id": run_id,
        "release_id": release_id,
        "submitter": submitter,
        "tester_signoff": (
            {"tester": tester, "signed_at": signed_at or timestamp, "source": "cli", "signoff_id": signoff_id}
            if tester
            else None
        ),
        "thresholds": limits,
        "threshold_values": details,
        "threshold_override": threshold_override,
        "override_rationale": override_rationale,
        "model_sha256": model_sha256,
        "model_path": model_path,
        "dataset_sha256": DATASET_SHA256,
        "decision_threshold": 0.5,
        "dev_mode": False,
        "thresholds_version": thresholds_version,
    }
    return fields | overrides


def stamp(moment: datetime) -> str:
    """``2026-11-02T09:00:00Z``."""
    return records.iso_utc(moment)


def release(
    store: ComplianceStore,
    n: int,
    at: datetime | None = None,
    *,
    deploy: bool = True,
    row_sha256: str | None = None,
    signoff_after: bool = False,
    **field_overrides: Any,
) -> records.ApprovalRecord:
    """Release number n: tester sign-off, model file, approval record and (when deployed) a release-log row.

    ``row_sha256`` logs another model hash than the approved one; ``signoff_after`` dates the
    sign-off after the decision.
    """
    decided = at or BASE_TIME + timedelta(hours=n)
    release_id = f"AI-REL-{n:08x}"
    run_id = f"{n:08x}-0000-4000-8000-000000000000"
    signed = decided + (timedelta(minutes=5) if signoff_after else -timedelta(minutes=30))
    signoff = records.write_signoff(
        store, run_id, release_id, TESTER, "Annex IV and metrics reviewed", "cli", signed, person=signer(store, TESTER)
    )
    if deploy:
        path, digest = workflow.store_model(store, model_bytes(n))
    else:  # an undeployed model is never stored
        digest = hashlib.sha256(model_bytes(n)).hexdigest()
        path = f"models/{digest}.json"
    fields = approval_fields(
        release_id=release_id,
        run_id=run_id,
        timestamp=stamp(decided),
        model_sha256=digest,
        model_path=path if deploy else None,
        signed_at=signoff.timestamp,
        signoff_id=signoff.signoff_id,
        deployment_url=f"http://127.0.0.1:{8000 + n % 1000}" if deploy else None,
        **field_overrides,
    )
    record = signed_approval(store, fields, decided, sign="signature" not in field_overrides)
    if deploy and record.approved:
        append_row(
            store,
            ReleaseLogRow(
                date=stamp(decided + timedelta(seconds=30)),
                event="release",
                release_id=release_id,
                model_path=path,
                sha256=row_sha256 or digest,
                deployment_url=record.deployment_url or "",
                approval_id=record.approval_id,
                by=record.approver,
            ),
        )
    return record


PORT_TAKEN = "port 8123 on 127.0.0.1 is already in use; pass another port, or none to pick a free one"


def failed_deployment(
    store: ComplianceStore, n: int = 1, *, approved: bool = True, submitter: str = SUBMITTER
) -> records.ApprovalRecord:
    """Release n decided (approved unless told otherwise), its model stored, its ticket open, its endpoint never
    started: the approval says ``deployment_url: null`` and ``deployment_error`` (:data:`PORT_TAKEN`)."""
    from credit_scorer.adapters.tickets import LocalTicketTracker
    from credit_scorer.records.submissions import Submission, record_submission

    decided = BASE_TIME + timedelta(hours=n)
    release_id = f"AI-REL-{n:08x}"
    run_id = f"{n:08x}-0000-4000-8000-000000000000"
    signoff = records.write_signoff(
        store, run_id, release_id, TESTER, "reviewed", "cli", decided, person=signer(store, TESTER)
    )
    path, digest = workflow.store_model(store, model_bytes(n))
    LocalTicketTracker(store).open_ticket(release_id, run_id, f"Release {release_id}", "test release")
    record_submission(
        store, Submission(release_id=release_id, run_id=run_id, submitter=submitter,
                          submitted_at=stamp(decided), dataset_sha256=DATASET_SHA256, dataset_rows=30000),
    )  # fmt: skip
    fields = approval_fields(
        release_id=release_id,
        run_id=run_id,
        timestamp=stamp(decided),
        model_sha256=digest,
        model_path=path,
        submitter=submitter,
        signed_at=signoff.timestamp,
        signoff_id=signoff.signoff_id,
        approved=approved,
        deployment_url=None,
        deployment_error=PORT_TAKEN if approved else None,
        people_version=1,
    )
    return signed_approval(store, fields, decided)


@contextmanager
def attackers_machine(folder: Path) -> Iterator[None]:
    """Run the product's own writers as an attacker would: on another machine, with a trust file of its own."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv(TRUST_ENV, str(folder / "attackers-trust.yaml"))
        yield
