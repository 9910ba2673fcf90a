"""Compliance records: the approval record (SOP §3) and the tester sign-off.

Records are plain JSON, written once (``ComplianceStore.write_new``) and never
rewritten. The approval record keeps every SOP §3 field with the SOP's names and
types, plus what an auditor needs to check the decision: run and release ids, the
submitter, the tester sign-off, the thresholds used with each check's value, the model
and dataset sha256, and whether a threshold failure was overridden.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from credit_scorer.domain.checks import ThresholdCheck, ThresholdChecks
from credit_scorer.domain.evaluate import Evaluation
from credit_scorer.domain.fairness import FairnessReport
from credit_scorer.domain.risk import RiskAssessment
from credit_scorer.records import ledger
from credit_scorer.records.layout import APPROVALS_DIR, SIGNOFFS_DIR
from credit_scorer.records.signatures import PersonSignature, record_hash
from credit_scorer.records.store import ComplianceStore

RECORD_VERSION = "1"

DecisionMode = Literal["interactive", "automated", "cli", "console"]


def utc_now() -> datetime:
    """Current time in UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def iso_utc(moment: datetime) -> str:
    """``2026-11-27T10:03:55Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_stamp(moment: datetime) -> str:
    """``2026-11-27T10-03-55`` (no colons, safe in file names)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H-%M-%S")


def canonical_json(payload: dict[str, object]) -> bytes:
    """Stable, readable JSON bytes (sorted keys, two-space indent, trailing newline)."""
    return (json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


class Frozen(BaseModel):
    """Records are immutable once built; unknown fields are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ThresholdChecksRecord(Frozen):
    """SOP §3 ``threshold_checks``: pass/fail of each check, by the SOP's names."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    accuracy: bool = Field(alias="Accuracy")
    bias_disparity: bool = Field(alias="Bias disparity")
    risk_score: bool = Field(alias="Risk score")
    fairness_flags: bool = Field(alias="Fairness flags")


class CheckDetail(Frozen):
    """One check's measured value against its limit."""

    value: float
    operator: Literal[">=", "<="]
    limit: float
    passed: bool
    status: Literal["pass", "fail", "not_evaluable"] | None = None
    """pass, fail, or not_evaluable (the value could not be computed; never a pass). None in older records."""
    reason: str | None = None
    """Why the check is not evaluable."""


class EvaluationSummary(Frozen):
    """SOP §3 ``evaluation_summary``."""

    accuracy: float
    auc: float
    f1: float
    fairness_flags: list[str]
    bias_disparity: float


class RiskSummary(Frozen):
    """SOP §3 ``risk_summary``."""

    risk_level: Literal["low", "medium", "high"]
    high_risk_factors: list[str]
    overall_risk_score: float


class TesterSignoff(Frozen):
    """The QA lead's "Tester ✓": who, when, how it was given."""

    tester: str
    signed_at: str
    source: Literal["cli", "env", "console", "jira"]
    note: str = ""
    signoff_id: str | None = None


class ApprovalRecord(Frozen):
    """``approvals/approval_<timestamp>.json``: one gate decision (SOP §3 and more)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    # SOP §3 fields, same names and types
    approval_id: str
    timestamp: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
    decision_mode: DecisionMode
    approved: bool
    approver: str
    rationale: str = Field(min_length=1)
    threshold_checks: ThresholdChecksRecord
    evaluation_summary: EvaluationSummary
    risk_summary: RiskSummary
    deployment_url: str | None
    # what an auditor also needs
    record_version: str = RECORD_VERSION
    run_id: str
    release_id: str
    submitter: str
    tester_signoff: TesterSignoff | None
    thresholds: dict[str, float]
    threshold_values: dict[str, CheckDetail]
    baseline_checks: dict[str, CheckDetail] = Field(default_factory=dict)
    """Checks beyond the SOP's four (beat the majority class, approval-rate band); empty in older records."""
    threshold_override: bool
    override_rationale: str | None = None
    refusal_reason: str | None = None
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    model_path: str | None = None
    dataset_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    decision_threshold: float
    dev_mode: bool
    duty_waivers: list[str] = Field(default_factory=list)
    deployment_error: str | None = None
    annex_iv_path: str | None = None
    annex_iv_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    annex_iv_missing_facts: int | None = None
    thresholds_version: int | None = None
    people_version: int | None = None
    """The version of the store's people registry the roles were checked against (None: a dev-mode file)."""
    people_source: str | None = None
    """Where the roles came from, e.g. ``people registry v2`` or ``dev mode: people file …``."""
    job: str | None = None
    """The CI job that made an automated decision (``DEPLOY_JOB``, else user@host); absent otherwise."""
    signature: PersonSignature | None = None
    """The approver's own signature over the decision's fields (:data:`DECISION_SIGNED_FIELDS`); absent when
    unsigned."""

    def to_json(self) -> bytes:
        """The bytes written to the store (an absent signature left out, as in records written before it)."""
        payload = self.model_dump(mode="json", by_alias=True)
        for optional in ("signature", "job"):
            if payload.get(optional) is None:
                payload.pop(optional, None)
        return canonical_json(payload)


class SignoffRecord(Frozen):
    """``signoffs/signoff_<release>_<timestamp>.json``: a tester sign-off."""

    signoff_id: str
    timestamp: str
    run_id: str
    release_id: str
    tester: str
    note: str
    source: Literal["cli", "env", "console", "jira"]
    record_version: str = RECORD_VERSION
    people_version: int | None = None
    people_source: str | None = None
    dev_mode: bool | None = None
    """True when made in dev mode (duties and signatures waived); absent otherwise."""
    signature: PersonSignature | None = None
    """The tester's own signature over this record; absent when unsigned."""

    def to_json(self) -> bytes:
        """The bytes written to the store (unset people fields left out, as in records written before them)."""
        return canonical_json(self.model_dump(mode="json", exclude_none=True))


def approval_schema() -> dict[str, object]:
    """JSON Schema of the approval record (committed as ``schemas/approval_record.schema.json``)."""
    schema = ApprovalRecord.model_json_schema(by_alias=True, mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://credit-scorer.local/schemas/approval_record.schema.json"
    return schema


def check_details(checks: list[ThresholdCheck]) -> dict[str, CheckDetail]:
    """Each check's value, limit, status and reason, as the approval record keeps them."""
    return {
        c.name: CheckDetail(
            value=c.value, operator=c.operator, limit=c.limit, passed=c.passed, status=c.outcome, reason=c.reason
        )
        for c in checks
    }


def summarise(
    checks: ThresholdChecks, evaluation: Evaluation, fairness: FairnessReport, risk: RiskAssessment
) -> tuple[ThresholdChecksRecord, dict[str, CheckDetail], EvaluationSummary, RiskSummary]:
    """The SOP §3 summaries of a run's gate inputs."""
    details = check_details(checks.checks)
    return (
        ThresholdChecksRecord.model_validate(checks.as_record()),
        details,
        EvaluationSummary(
            accuracy=evaluation.accuracy,
            auc=evaluation.auc,
            f1=evaluation.f1,
            fairness_flags=list(fairness.fairness_flags),
            bias_disparity=fairness.bias_disparity,
        ),
        RiskSummary(
            risk_level=risk.risk_level,
            high_risk_factors=list(risk.high_risk_factors),
            overall_risk_score=risk.overall_risk_score,
        ),
    )


def free_record_id(store: ComplianceStore, directory: str, stem: str) -> str:
    """``stem``, or ``stem_2``, ``stem_3``… when taken (call under the directory's lock).

    Probes only the candidate names instead of listing the folder, so writing stays
    constant-time as the store grows.
    """
    record_id, n = stem, 2
    while store.exists(f"{directory}/{record_id}.json"):
        record_id, n = f"{stem}_{n}", n + 1
    return record_id


DECISION_SIGNED_FIELDS = (
    "release_id", "run_id", "model_sha256", "timestamp", "decision_mode", "approved", "approver", "rationale",
    "threshold_override", "override_rationale", "refusal_reason", "tester_signoff", "job",
)  # fmt: skip
"""What an approver signs when they decide: known before the record exists (its id, URL and the rest come later,
possibly in another process: the resumed run)."""


def decision_hash(values: Mapping[str, object]) -> str:
    """The hash an approver signs: :func:`record_hash` of the :data:`DECISION_SIGNED_FIELDS` of a record or decision."""
    return record_hash({name: values.get(name) for name in DECISION_SIGNED_FIELDS})


R = TypeVar("R", "ApprovalRecord", "SignoffRecord")
PersonSigner = Callable[[str], PersonSignature]
"""Signs a record hash as the person who made the record (an unlocked key: records/identities.py)."""


def _signed(record: R, person: PersonSigner | None) -> R:
    """``record`` with its maker's signature over :func:`record_hash` of its JSON (unchanged without a signer)."""
    if person is None:
        return record
    return record.model_copy(update={"signature": person(record_hash(json.loads(record.to_json())))})


def write_approval(
    store: ComplianceStore,
    record_fields: dict[str, object],
    decided_at: datetime,
    *,
    activates: str | None = None,
    person: PersonSigner | None = None,
) -> ApprovalRecord:
    """Write a new approval record named after its decision time; distinct files for the same second.

    ``activates``: the token of the endpoint this approval makes official, carried by its ledger entry.
    ``person``: the approver's unlocked key, which signs the record.
    """
    with store.lock(APPROVALS_DIR):
        signer = ledger.signer_for(store)
        approval_id = free_record_id(store, APPROVALS_DIR, f"approval_{file_stamp(decided_at)}")
        record = _signed(ApprovalRecord.model_validate({**record_fields, "approval_id": approval_id}), person)
        path = f"{APPROVALS_DIR}/{approval_id}.json"
        ledger.commit(store, "approval", path, record.to_json(), signer=signer, activates=activates)
    return record


def write_signoff(
    store: ComplianceStore,
    run_id: str,
    release_id: str,
    tester: str,
    note: str,
    source: Literal["cli", "env", "console", "jira"],
    at: datetime,
    people_version: int | None = None,
    people_source: str | None = None,
    person: PersonSigner | None = None,
    dev_mode: bool = False,
) -> SignoffRecord:
    """Write a tester sign-off record (signed by the tester's unlocked key ``person``, when given)."""
    with store.lock(SIGNOFFS_DIR):
        signer = ledger.signer_for(store)
        signoff_id = free_record_id(store, SIGNOFFS_DIR, f"signoff_{release_id}_{file_stamp(at)}")
        record = SignoffRecord(
            signoff_id=signoff_id,
            timestamp=iso_utc(at),
            run_id=run_id,
            release_id=release_id,
            tester=tester,
            note=note,
            source=source,
            people_version=people_version,
            people_source=people_source,
            dev_mode=True if dev_mode else None,
        )
        record = _signed(record, person)
        ledger.commit(store, "signoff", f"{SIGNOFFS_DIR}/{signoff_id}.json", record.to_json(), signer=signer)
    return record


def read_approvals(store: ComplianceStore) -> list[ApprovalRecord]:
    """Every approval record in the store, oldest first."""
    return [ApprovalRecord.model_validate_json(store.read_bytes(p)) for p in store.list(APPROVALS_DIR, ".json")]


def read_approval(store: ComplianceStore, approval_id: str) -> ApprovalRecord:
    """One approval record by id."""
    return ApprovalRecord.model_validate_json(store.read_bytes(f"{APPROVALS_DIR}/{approval_id}.json"))


def signoffs_for(store: ComplianceStore, release_id: str) -> list[SignoffRecord]:
    """Tester sign-offs of a release, oldest first."""
    records = [
        SignoffRecord.model_validate_json(store.read_bytes(p))
        for p in store.list(SIGNOFFS_DIR, ".json")
        if p.rsplit("/", 1)[-1].startswith(f"signoff_{release_id}_")
    ]
    return sorted(records, key=lambda r: r.timestamp)


def decisions_for(store: ComplianceStore, release_id: str) -> list[ApprovalRecord]:
    """Approval records (approvals, rejections, refusals) of a release."""
    return [r for r in read_approvals(store) if r.release_id == release_id]
