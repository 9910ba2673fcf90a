"""What the console's pages show, gathered from the compliance store, the deployer and ZenML.

No web framework here: each function returns plain data that a template renders, so
the same facts can be checked in tests without a browser.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from pydantic import BaseModel

from credit_scorer.adapters.tickets import ROLLED_BACK, Ticket, TicketTracker
from credit_scorer.core.errors import NotFound
from credit_scorer.core.ids import is_release_id
from credit_scorer.core.ports import Deployer
from credit_scorer.domain.checks import ThresholdChecks
from credit_scorer.domain.evaluate import Evaluation
from credit_scorer.domain.fairness import FairnessReport
from credit_scorer.domain.risk import RiskAssessment
from credit_scorer.pipelines import run as runs
from credit_scorer.records.deploy_retries import DeploymentState, DeployRetryRecord, deployment_state, read_retries
from credit_scorer.records.layout import RELEASES_DIR
from credit_scorer.records.models import ApprovalRecord, SignoffRecord, decisions_for, read_approvals, signoffs_for
from credit_scorer.records.refusals import Refusal, refusals_for
from credit_scorer.records.release_log import ReleaseLogRow, read_rows
from credit_scorer.records.store import ComplianceStore, StoreError
from credit_scorer.records.submissions import read_submission
from credit_scorer.release.workflow import ReleaseCandidate, artefact_dir

M = TypeVar("M", bound=BaseModel)
ResumeState = Literal["running", "ended"]
ResumeLookup = Callable[[str], "ResumeState | None"]
"""How the console's background resume of a release stands: running, ended, or None (none known)."""

# status key -> (label, badge colour class)
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "waiting": ("Waiting at the gate", "amber"),
    "resuming": ("Decision submitted, resuming", "blue"),
    "running": ("Pipeline running", "blue"),
    "live": ("Deployed, live", "green"),
    "deployed": ("Deployed, since replaced", "grey"),
    "deploy-failed": ("Approved, deployment failed", "red"),
    "rolled-back": ("Rolled back", "red"),
    "rejected": ("Rejected", "red"),
    "refused": ("Refused", "red"),
    "failed": ("Run failed", "red"),
    "resume-failed": ("Decision recorded, resume failed", "red"),
    "unknown": ("Unknown", "grey"),
}


@dataclass(frozen=True)
class ReleaseRow:
    """One line of the releases page."""

    release_id: str
    run_id: str
    created: str
    status: str
    submitter: str = ""
    checks_passed: str = ""
    failed_checks: tuple[str, ...] = ()
    decided_by: str = ""
    decided_at: str = ""
    deployment_url: str = ""
    deploy_error: str = ""
    """Why an approved release is not live (its last deployment attempt failed); empty otherwise."""

    @property
    def status_label(self) -> str:
        """Human label of the status."""
        return STATUS_LABELS.get(self.status, STATUS_LABELS["unknown"])[0]

    @property
    def badge(self) -> str:
        """Colour class of the status badge."""
        return STATUS_LABELS.get(self.status, STATUS_LABELS["unknown"])[1]


@dataclass(frozen=True)
class ReleaseDetail:
    """Everything the page of one release shows."""

    row: ReleaseRow
    checks: ThresholdChecks | None
    evaluation: Evaluation | None
    fairness: FairnessReport | None
    risk: RiskAssessment | None
    candidate: ReleaseCandidate | None
    ticket: Ticket | None
    signoffs: list[SignoffRecord]
    decisions: list[ApprovalRecord]
    gate: runs.GateState | None
    steps: list[runs.StepProgress] = field(default_factory=list)
    has_annex_iv: bool = False
    retries: list[DeployRetryRecord] = field(default_factory=list)
    """Retried deployments of the approval, oldest first."""
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def failure(self) -> str:
        """Why the run failed: its failed step and that step's error (empty when none is known)."""
        failed = [s for s in self.steps if s.status == "failed"]
        if not failed:
            return ""
        return f"step {failed[0].name}: {failed[0].error}" if failed[0].error else f"step {failed[0].name}"

    @property
    def waiting(self) -> bool:
        """A decision can be submitted now."""
        return self.gate is not None and self.gate.waiting and not self.decisions


def status_of(
    decisions: list[ApprovalRecord],
    ticket: Ticket | None,
    run_status: str | None,
    condition_status: str | None,
    live_releases: set[str],
    release_id: str,
    resume: Literal["running", "failed"] | None = None,
    deployment: DeploymentState | None = None,
) -> str:
    """The status key of a release from its records, ticket, run and deployments.

    ``resume`` says how the resume of a submitted but not yet recorded decision stands
    (see :func:`resume_of`): still running, or failed (the decision waits for a retry).
    ``deployment``: where the approval's deployment stands by its records, retries included
    (:func:`deployment_of`); without it, the approval record alone says.
    """
    if decisions:
        first = decisions[0]
        if not first.approved:
            return "refused" if first.refusal_reason else "rejected"
        if ticket is not None and ROLLED_BACK in ticket.labels and release_id not in live_releases:
            return "rolled-back"
        if release_id in live_releases:
            return "live"
        if deployment is not None:
            return "deploy-failed" if deployment.deploy_failed else "deployed"
        if first.deployment_url is None:
            return "deploy-failed" if first.deployment_error else "resuming"
        return "deployed"
    if resume == "running":
        return "resuming"
    if resume == "failed":
        return "resume-failed"
    if run_status == "paused":
        return "waiting" if condition_status == "pending" else "resuming"
    if run_status in {"resuming", "running", "initializing", "provisioning"}:
        return "resuming" if condition_status == "resolved" else "running"
    if run_status == "failed":
        return "failed"
    return "unknown"


def _refusals(store: ComplianceStore, release_id: str) -> list[Refusal]:
    try:
        return refusals_for(store, release_id)
    except (StoreError, OSError):  # a damaged ledger: the page still shows the rest; audit verify names it
        return []


def deployment_of(
    decisions: list[ApprovalRecord], retries: list[DeployRetryRecord], rows: list[ReleaseLogRow]
) -> DeploymentState | None:
    """Where an approved release's deployment stands (its approval, retries and release-log rows); None otherwise."""
    first = decisions[0] if decisions else None
    return deployment_state(first, retries, rows) if first is not None and first.approved else None


def _model(store: ComplianceStore, path: str, cls: type[M]) -> M | None:
    try:
        return cls.model_validate_json(store.read_bytes(path))
    except (StoreError, OSError, ValueError):
        return None


def release_ids(store: ComplianceStore) -> list[str]:
    """Releases that reached the gate (their inputs are under ``releases/``)."""
    return [p.rsplit("/", 1)[-1] for p in store.list(RELEASES_DIR) if is_release_id(p.rsplit("/", 1)[-1])]


def ticket_of(tracker: TicketTracker, release_id: str) -> Ticket | None:
    try:
        return tracker.get(release_id)
    except (StoreError, OSError, ValueError, KeyError):
        return None


def live_release_ids(deployer: Deployer) -> set[str]:
    """Releases whose endpoint answers now."""
    return {s.deployment.release_id for s in deployer.list() if s.alive}


def list_releases(
    store: ComplianceStore, tracker: TicketTracker, deployer: Deployer, resumes: ResumeLookup | None = None
) -> tuple[list[ReleaseRow], list[ReleaseRow]]:
    """(waiting at the gate, oldest first; every other release, newest first)."""
    live = live_release_ids(deployer)
    by_release: dict[str, list[ApprovalRecord]] = {}
    for record in read_approvals(store):
        by_release.setdefault(record.release_id, []).append(record)
    retries, log_rows = read_retries(store), read_rows(store)
    waiting: list[ReleaseRow] = []
    history: list[ReleaseRow] = []
    for release_id in release_ids(store):
        ticket = ticket_of(tracker, release_id)
        decisions = by_release.get(release_id, [])
        run_id, submitter = origin_of(store, release_id, decisions)
        gate = _gate(run_id) if run_id and not decisions else None
        checks = _model(store, f"{artefact_dir(release_id)}/threshold_checks.json", ThresholdChecks)
        deployment = deployment_of(decisions, retries, log_rows)
        row = _row(release_id, run_id, ticket, decisions, gate, live, submitter, checks, resumes, deployment)
        (waiting if row.status == "waiting" else history).append(row)
    waiting.sort(key=lambda r: r.created)
    history.sort(key=lambda r: r.created, reverse=True)
    return waiting, history


def resume_of(
    release_id: str,
    decisions: list[ApprovalRecord],
    gate: runs.GateState | None,
    resumes: ResumeLookup | None,
) -> Literal["running", "failed"] | None:
    """How the resume of a submitted decision stands, when the run has not recorded it yet.

    Failed: the run failed after the gate was resolved, or its resume process ended while the
    run is still paused. The decision is kept in the resolved gate condition, so it can be resumed
    again; nobody is asked to decide twice.
    """
    if decisions or gate is None or gate.submitted is None or gate.condition_status != "resolved":
        return None
    state = resumes(release_id) if resumes else None
    if state == "running":
        return "running"
    if gate.run_status == "failed" or (gate.run_status == "paused" and state == "ended"):
        return "failed"
    return None


def _gate(run_id: str) -> runs.GateState | None:
    try:
        return runs.gate_state(run_id)
    except KeyError:
        return None


def _row(
    release_id: str,
    run_id: str,
    ticket: Ticket | None,
    decisions: list[ApprovalRecord],
    gate: runs.GateState | None,
    live: set[str],
    submitter: str,
    checks: ThresholdChecks | None,
    resumes: ResumeLookup | None = None,
    deployment: DeploymentState | None = None,
) -> ReleaseRow:
    first = decisions[0] if decisions else None
    status = status_of(
        decisions,
        ticket,
        gate.run_status if gate else None,
        gate.condition_status if gate else None,
        live,
        release_id,
        resume_of(release_id, decisions, gate, resumes),
        deployment,
    )
    url = (deployment.url if deployment else first.deployment_url if first else None) or ""
    return ReleaseRow(
        release_id=release_id,
        run_id=run_id,
        created=ticket.created_at if ticket else (first.timestamp if first else ""),
        status=status,
        submitter=first.submitter if first else submitter,
        checks_passed=f"{sum(c.passed for c in checks.all_checks)}/{len(checks.all_checks)}" if checks else "",
        failed_checks=tuple(checks.failed) if checks else (),
        decided_by=first.approver if first else "",
        decided_at=first.timestamp if first else "",
        deployment_url="" if status == "deploy-failed" else url,
        deploy_error=(deployment.reason or "") if deployment and status == "deploy-failed" else "",
    )


def origin_of(store: ComplianceStore, release_id: str, decisions: list[ApprovalRecord]) -> tuple[str, str]:
    """(run id, submitter) from the records: the submission record, else the first approval record, else empty.

    Never from the ticket: its text can be edited by anyone with access to the tracker.
    """
    try:
        submission = read_submission(store, release_id)
    except StoreError:
        submission = None  # a damaged record: no run to act on; `audit verify` names the file
    if submission is not None:
        return submission.run_id, submission.submitter
    first = decisions[0] if decisions else None
    return (first.run_id, first.submitter) if first else ("", "")


@dataclass(frozen=True)
class ReleaseStatus:
    """Where a release stands: its row, ticket, decisions, gate and run steps (what the progress poll needs)."""

    row: ReleaseRow
    ticket: Ticket | None
    decisions: list[ApprovalRecord]
    gate: runs.GateState | None
    steps: list[runs.StepProgress]
    checks: ThresholdChecks | None
    retries: list[DeployRetryRecord] = field(default_factory=list)


def release_status(
    store: ComplianceStore,
    tracker: TicketTracker,
    deployer: Deployer,
    release_id: str,
    resumes: ResumeLookup | None = None,
) -> ReleaseStatus:
    """The status of one release; KeyError when the store has no such release."""
    if release_id not in release_ids(store):
        raise NotFound(f"No release {release_id} in the store.")
    ticket = ticket_of(tracker, release_id)
    decisions = decisions_for(store, release_id)
    run_id, submitter = origin_of(store, release_id, decisions)
    gate = _gate(run_id) if run_id else None
    steps = runs.run_progress(run_id)[1] if gate is not None else []
    checks = _model(store, f"{artefact_dir(release_id)}/threshold_checks.json", ThresholdChecks)
    live = live_release_ids(deployer)
    retries = [r for r in read_retries(store) if r.release_id == release_id]
    deployment = deployment_of(decisions, retries, read_rows(store))
    row = _row(release_id, run_id, ticket, decisions, gate, live, submitter, checks, resumes, deployment)
    return ReleaseStatus(row, ticket, decisions, gate, steps, checks, retries)


def release_detail(
    store: ComplianceStore,
    tracker: TicketTracker,
    deployer: Deployer,
    release_id: str,
    resumes: ResumeLookup | None = None,
) -> ReleaseDetail:
    """The page of one release; KeyError when the store has no such release."""
    status = release_status(store, tracker, deployer, release_id, resumes)
    folder = artefact_dir(release_id)
    candidate: ReleaseCandidate | None = None
    if status.gate is not None:
        with contextlib.suppress(KeyError):
            candidate = runs.release_candidate(status.gate.run_id)
    return ReleaseDetail(
        row=status.row,
        checks=status.checks,
        evaluation=_model(store, f"{folder}/evaluation.json", Evaluation),
        fairness=_model(store, f"{folder}/fairness.json", FairnessReport),
        risk=_model(store, f"{folder}/risk.json", RiskAssessment),
        candidate=candidate,
        ticket=status.ticket,
        signoffs=signoffs_for(store, release_id),
        decisions=status.decisions,
        refusals=_refusals(store, release_id),
        gate=status.gate,
        steps=status.steps,
        has_annex_iv=store.exists(f"{folder}/annex_iv.pdf"),
        retries=status.retries,
    )
