"""Retried deployments: the record of each new attempt to put an approved, unchanged model live.

An approval record is written once, with ``deployment_url`` or, when the endpoint could not be started,
``deployment_error``. ``credit-scorer deploy RELEASE --as NAME`` tries again without a new decision; each
attempt is its own record, ``deploy_retries/retry_<release>_<timestamp>.json`` (ledger kind
``deploy_retry``), naming the approval it deploys, the model, who retried and what came of it. A successful
attempt's ledger entry carries the activation token of its endpoint, as an approval's does.

:func:`deployment_state` says where an approved release's deployment stands by these records (pure).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import Field

from credit_scorer.core.ids import RELEASE_ID_PATTERN
from credit_scorer.records import ledger
from credit_scorer.records.layout import DEPLOY_RETRIES_DIR
from credit_scorer.records.models import (
    RECORD_VERSION,
    ApprovalRecord,
    Frozen,
    canonical_json,
    file_stamp,
    free_record_id,
    iso_utc,
)
from credit_scorer.records.release_log import ReleaseLogRow, normal_url
from credit_scorer.records.store import ComplianceStore

RETRY_ROW_NOTE = "deployment retried after a failure"
"""The note of the release-log row a retried deployment writes (the row cites the approval it deploys)."""

AttemptStatus = Literal["deployed", "failed", "interrupted"]
"""``deployed``: its endpoint went live (a release-log row); ``failed``: the endpoint could not be started;
``interrupted``: a URL was recorded but the deployment stopped before it went live (a crash)."""


class DeployRetryRecord(Frozen):
    """``deploy_retries/retry_<release>_<timestamp>.json``: one retried deployment of an approved release."""

    retry_id: str
    timestamp: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
    release_id: str = Field(pattern=f"^{RELEASE_ID_PATTERN.pattern}$")
    approval_id: str = Field(min_length=1)
    """The approval record whose model this deploys (unchanged: it is not a new decision)."""
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    model_path: str
    retried_by: str = Field(min_length=1)
    retried_after: str
    """Why the release was not live: the failure this attempt retries."""
    deployment_url: str | None
    deployment_error: str | None = None
    people_version: int | None = None
    """The people registry version ``retried_by`` was checked against (holds the approver role)."""
    people_source: str | None = None
    record_version: str = RECORD_VERSION

    def to_json(self) -> bytes:
        """The bytes written to the store."""
        return canonical_json(self.model_dump(mode="json"))


def retry_path(retry_id: str) -> str:
    """Store path of a retry record."""
    return f"{DEPLOY_RETRIES_DIR}/{retry_id}.json"


def write_retry(
    store: ComplianceStore, fields: dict[str, object], at: datetime, *, activates: str | None = None
) -> DeployRetryRecord:
    """Write and ledger a retry record named after its release and time; ``activates``: its endpoint's token."""
    draft = DeployRetryRecord.model_validate({**fields, "retry_id": "draft", "timestamp": iso_utc(at)})
    with store.lock(DEPLOY_RETRIES_DIR):
        signer = ledger.signer_for(store)
        retry_id = free_record_id(store, DEPLOY_RETRIES_DIR, f"retry_{draft.release_id}_{file_stamp(at)}")
        record = draft.model_copy(update={"retry_id": retry_id})
        ledger.commit(store, "deploy_retry", retry_path(retry_id), record.to_json(), signer=signer, activates=activates)
    return record


def read_retries(store: ComplianceStore) -> list[DeployRetryRecord]:
    """Every retry record in the store, oldest first."""
    paths = store.list(DEPLOY_RETRIES_DIR, ".json")
    return sorted((DeployRetryRecord.model_validate_json(store.read_bytes(p)) for p in paths), key=attempt_order)


def attempt_order(record: DeployRetryRecord) -> tuple[str, int, str]:
    """Sort key of retries: by time, then ``retry_…`` before ``retry_…_2`` before ``retry_…_10`` (same second)."""
    return record.timestamp, len(record.retry_id), record.retry_id


@dataclass(frozen=True)
class DeploymentState:
    """Where an approved release's deployment stands by its records (not whether its endpoint answers now)."""

    release_id: str
    approval_id: str
    model_sha256: str
    status: AttemptStatus
    url: str | None
    reason: str | None
    """Why it is not deployed (failed or interrupted); None when deployed."""
    at: str
    by: str
    record_id: str
    """The record of the last attempt: the approval id, or a retry id."""

    @property
    def deploy_failed(self) -> bool:
        """Approved but never live since its last attempt: a retry may put it live."""
        return self.status != "deployed"


def deployment_state(
    approval: ApprovalRecord, retries: list[DeployRetryRecord], rows: list[ReleaseLogRow]
) -> DeploymentState:
    """The state after the last attempt: the approval's own deployment, or the newest retry of it (pure).

    ``retries`` and ``rows`` may hold other releases' records; only this approval's count. An attempt with a
    URL counts as deployed only when a release-log row of this approval logs that URL.
    """
    own = sorted((r for r in retries if r.approval_id == approval.approval_id), key=attempt_order)
    last = own[-1] if own else None
    url = last.deployment_url if last else approval.deployment_url
    error = last.deployment_error if last else approval.deployment_error
    status: AttemptStatus = "deployed"
    reason = None
    if error is not None or url is None:
        status, reason = "failed", error or "no deployment was recorded"
    elif not any(
        (r.event, r.approval_id, normal_url(r.deployment_url)) == ("release", approval.approval_id, normal_url(url))
        for r in rows
    ):
        status, reason = "interrupted", f"the deployment at {url} was interrupted before it went live"
    return DeploymentState(
        release_id=approval.release_id,
        approval_id=approval.approval_id,
        model_sha256=approval.model_sha256,
        status=status,
        url=url,
        reason=reason,
        at=last.timestamp if last else approval.timestamp,
        by=last.retried_by if last else approval.approver,
        record_id=last.retry_id if last else approval.approval_id,
    )
