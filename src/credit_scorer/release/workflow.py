"""Release workflow: what the gate writes, in which order, so nothing is lost or half done.

Order of writes for an approval: the model file (content-addressed) → the endpoint
started and answering → the approval record with its ``deployment_url`` → the
release-log row → the ticket. A rejection or refusal writes its approval record first,
then the ticket. Records never depend on a ticket update succeeding; a failed ticket
update is reported, never hidden.

Used by the pipeline steps and by the CLI (sign-off, approve, redeploy). The steps that put a stored model
live are shared with a retried deployment (``deploy_retry.py``) in ``go_live.py``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from credit_scorer.adapters.tickets import ROLLED_BACK, CommentKind, TicketTracker
from credit_scorer.core.errors import Conflict, CreditScorerError
from credit_scorer.core.faults import crash_point
from credit_scorer.core.ports import Deployer, Deployment, DeploymentError
from credit_scorer.documents.build import FILE_NAMES, DocumentBundle
from credit_scorer.documents.collect import AnnexIvDocument
from credit_scorer.domain.checks import ThresholdChecks
from credit_scorer.domain.evaluate import Evaluation
from credit_scorer.domain.fairness import FairnessReport
from credit_scorer.domain.risk import RiskAssessment
from credit_scorer.records import ledger, ledger_verify
from credit_scorer.records import models as records
from credit_scorer.records.layout import MODELS_DIR, RELEASES_DIR
from credit_scorer.records.models import ApprovalRecord, iso_utc, utc_now
from credit_scorer.records.people import IdentityError, People, role_violation
from credit_scorer.records.release_log import ReleaseLogRow, append_row, normal_url
from credit_scorer.records.store import ComplianceStore, StoreError
from credit_scorer.release import recovery
from credit_scorer.release.gate import GateDecision
from credit_scorer.release.go_live import LiveTarget, NotStarted, activation_for, go_live, local_model_file

log = logging.getLogger(__name__)

SignoffSource = Literal["cli", "env", "console", "jira"]


class ReleaseRefused(CreditScorerError, RuntimeError):
    """A rollback or sign-off was refused; nothing was changed."""


class AlreadyDecided(Conflict, ReleaseRefused):
    """The release already has its decision (or is already live): one decision per release."""


class ReleaseCandidate(BaseModel):
    """Everything the gate knows about the model version being released."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    release_id: str
    submitter: str
    checks: ThresholdChecks
    evaluation: Evaluation
    fairness: FairnessReport
    risk: RiskAssessment
    model_sha256: str
    dataset_sha256: str
    decision_threshold: float
    annex_iv: AnnexIvDocument | None = None
    thresholds_version: int | None = None
    people_version: int | None = None
    people_source: str | None = None


def artefact_dir(release_id: str) -> str:
    """Store folder of a release's gate inputs and documents."""
    return f"{RELEASES_DIR}/{release_id}"


def save_gate_inputs(store: ComplianceStore, candidate: ReleaseCandidate) -> str:
    """Write evaluation, fairness, risk and checks JSON under ``releases/<id>/`` (once)."""
    folder = artefact_dir(candidate.release_id)
    for name, model in (
        ("evaluation", candidate.evaluation),
        ("fairness", candidate.fairness),
        ("risk", candidate.risk),
        ("threshold_checks", candidate.checks),
    ):
        data = records.canonical_json(model.model_dump(mode="json"))
        path = f"{folder}/{name}.json"
        if store.exists(path):
            if store.read_bytes(path) != data:
                raise StoreError(f"{path} exists with other content; release ids must not be reused")
            continue
        ledger.commit(store, "release_file", path, data)
    return f"{store.url}/{folder}"


def save_annex_iv(store: ComplianceStore, release_id: str, bundle: DocumentBundle) -> AnnexIvDocument:
    """Write the Annex IV HTML and PDF, the model card and the SBOM under ``releases/<id>/`` (once)."""
    folder = artefact_dir(release_id)
    files = bundle.files()
    signer = ledger.signer_for(store)
    for name, data in files.items():
        ledger.commit(store, "release_file", f"{folder}/{name}", data, signer=signer)
    return AnnexIvDocument(
        pdf_path=f"{folder}/{FILE_NAMES['pdf']}",
        pdf_sha256=hashlib.sha256(bundle.pdf).hexdigest(),
        html_path=f"{folder}/{FILE_NAMES['html']}",
        html_sha256=hashlib.sha256(files[FILE_NAMES["html"]]).hexdigest(),
        model_card_path=f"{folder}/{FILE_NAMES['model_card']}",
        sbom_path=f"{folder}/{FILE_NAMES['sbom']}",
        missing_facts=bundle.missing_facts,
        generated_at=bundle.generated_at,
    )


def store_model(store: ComplianceStore, model_bytes: bytes) -> tuple[str, str]:
    """Store a model file content-addressed; return (store path, sha256)."""
    digest = hashlib.sha256(model_bytes).hexdigest()
    path = f"{MODELS_DIR}/{digest}.json"
    if store.exists(path):
        if hashlib.sha256(store.read_bytes(path)).hexdigest() != digest:
            raise StoreError(f"{path} in the store does not match its sha256; the model file was changed")
    else:
        ledger.commit(store, "model", path, model_bytes)
    return path, digest


def _record_fields(
    candidate: ReleaseCandidate, decision: GateDecision, waivers: list[str], dev_mode: bool
) -> dict[str, object]:
    checks_record, details, evaluation, risk = records.summarise(
        candidate.checks, candidate.evaluation, candidate.fairness, candidate.risk
    )
    return {
        "timestamp": decision.decided_at,
        "decision_mode": decision.decision_mode,
        "approved": decision.approved,
        "approver": decision.approver,
        "rationale": decision.rationale,
        "threshold_checks": checks_record,
        "evaluation_summary": evaluation,
        "risk_summary": risk,
        "deployment_url": None,
        "run_id": candidate.run_id,
        "release_id": candidate.release_id,
        "submitter": candidate.submitter,
        "tester_signoff": decision.tester_signoff,
        "thresholds": candidate.checks.thresholds.model_dump(),
        "threshold_values": details,
        "baseline_checks": records.check_details(candidate.checks.baseline_checks),
        "threshold_override": decision.threshold_override,
        "override_rationale": decision.override_rationale,
        "refusal_reason": decision.refusal_reason,
        "model_sha256": candidate.model_sha256,
        "dataset_sha256": candidate.dataset_sha256,
        "decision_threshold": candidate.decision_threshold,
        "dev_mode": dev_mode,
        "duty_waivers": waivers,
        "thresholds_version": candidate.thresholds_version,
        "annex_iv_path": candidate.annex_iv.pdf_path if candidate.annex_iv else None,
        "annex_iv_sha256": candidate.annex_iv.pdf_sha256 if candidate.annex_iv else None,
        "annex_iv_missing_facts": len(candidate.annex_iv.missing_facts) if candidate.annex_iv else None,
        "people_version": candidate.people_version,
        "people_source": candidate.people_source,
        "job": decision.job,
        "signature": decision.signature,
    }


def _decided_at(decision: GateDecision) -> datetime:
    return datetime.strptime(decision.decided_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=utc_now().tzinfo)


def ensure_undecided(store: ComplianceStore, release_id: str) -> None:
    """Refuse a second decision on a release."""
    earlier = records.decisions_for(store, release_id)
    if earlier:
        first = earlier[0]
        verdict = "approved" if first.approved else "rejected"
        retry = (
            f"; its deployment failed, and an approver retries it with `credit-scorer deploy {release_id} --as NAME`"
            if first.approved and first.deployment_error
            else ""
        )
        raise AlreadyDecided(
            f"{release_id} was already {verdict} by {first.approver} at {first.timestamp} "
            f"({first.approval_id}); one decision per release{retry}"
        )


def record_rejection(
    store: ComplianceStore,
    tracker: TicketTracker,
    candidate: ReleaseCandidate,
    decision: GateDecision,
    waivers: list[str],
    dev_mode: bool,
) -> ApprovalRecord:
    """Write the record of a rejection or refusal, then tell the ticket."""
    ensure_undecided(store, candidate.release_id)
    record = records.write_approval(
        store, _record_fields(candidate, decision, waivers, dev_mode), _decided_at(decision)
    )
    kind: CommentKind = "refusal" if decision.refusal_reason else "decision"
    body = decision.refusal_reason or f"Rejected: {decision.rationale}"
    comment_with_checkpoint(
        store, tracker, candidate.release_id, decision.approver, kind, f"{body} ({record.approval_id})"
    )
    _ticket(tracker.set_status, candidate.release_id, "rejected")
    return record


def deploy_release(
    store: ComplianceStore,
    tracker: TicketTracker,
    deployer: Deployer,
    candidate: ReleaseCandidate,
    decision: GateDecision,
    model_bytes: bytes,
    waivers: list[str],
    dev_mode: bool,
    port: int | None,
    git_commit: bool,
) -> tuple[ApprovalRecord, Deployment | None]:
    """Put an approved model live so that no crash leaves it half done.

    Under the store's ``deploy`` lock: recover what an earlier crash left → ledger the intent → store the model
    → :func:`go_live.go_live` with the approval record as the record that makes the endpoint official. When the
    endpoint cannot be started the approval is still recorded (with ``deployment_url: null`` and the error), the
    ticket says ``deploy failed`` and :class:`go_live.NotStarted` is raised; ``credit-scorer deploy`` retries.
    """
    ensure_undecided(store, candidate.release_id)
    release_id, decided_at = candidate.release_id, _decided_at(decision)
    with store.lock(recovery.DEPLOY_LOCK):  # one release goes live at a time, so "replace the previous one" holds
        recovery.recover(store, deployer)
        operation = recovery.begin(
            store,
            "deploy",
            release_id,
            model_sha256=candidate.model_sha256,
            approver=decision.approver,
            decision_mode=decision.decision_mode,
        )
        crash_point("deploy-intent")
        model_path, digest = store_model(store, model_bytes)
        if digest != candidate.model_sha256:
            raise StoreError(f"model bytes hash to {digest}, but the run's model is {candidate.model_sha256}")
        crash_point("deploy-model-stored")
        fields = _record_fields(candidate, decision, waivers, dev_mode) | {"model_path": model_path}

        def record_failure(error: str) -> str:
            return records.write_approval(store, fields | {"deployment_error": error}, decided_at).approval_id

        def record_start(url: str, token: str) -> ApprovalRecord:
            return records.write_approval(store, fields | {"deployment_url": url}, decided_at, activates=token)

        target = LiveTarget(release_id, model_path, digest, port, by=decision.approver)
        try:
            record, deployment = go_live(
                store, deployer, target, operation,
                record_failure=record_failure, record_start=record_start, git_commit=git_commit,
            )  # fmt: skip
        except NotStarted as exc:
            deploy_failed(
                store, tracker, release_id, decision.approver, "decision",
                f"Approved ({exc.record_id}) but deployment failed: {exc.cause}",
            )  # fmt: skip
            raise
    approved = f"Approved: {decision.rationale} ({record.approval_id})"
    comment_with_checkpoint(store, tracker, release_id, decision.approver, "decision", approved)
    deployed(store, tracker, release_id, f"Deployed at {deployment.url}")
    return record, deployment


def deploy_failed(
    store: ComplianceStore, tracker: TicketTracker, release_id: str, author: str, kind: CommentKind, body: str
) -> None:
    """Tell the ticket a deployment failed: a comment with the reason, status ``deploy failed``."""
    comment_with_checkpoint(store, tracker, release_id, author, kind, body)
    _ticket(tracker.set_status, release_id, "deploy failed")


def deployed(store: ComplianceStore, tracker: TicketTracker, release_id: str, body: str) -> None:
    """Tell the ticket the release is live: the deployer's comment, status ``deployed``."""
    comment_with_checkpoint(store, tracker, release_id, "credit-scorer", "deployment", body)
    _ticket(tracker.set_status, release_id, "deployed")


def rollback(
    store: ComplianceStore,
    tracker: TicketTracker,
    deployer: Deployer,
    people: People,
    url: str,
    reason: str,
    actor: str,
    port: int | None = None,
) -> tuple[ReleaseLogRow, Deployment]:
    """Serve the release that was at ``url`` again, after checking its model file and approval.

    Only ledgered, signature-checked records count: refuses (changing nothing) for an unknown URL, a row
    or approval not in the ledger, a missing or altered model file, or a release that was never approved.
    """
    with store.lock(recovery.DEPLOY_LOCK):
        recovery.recover(store, deployer)
        return _rollback(store, tracker, deployer, people, url, reason, actor, port)


def _rollback(
    store: ComplianceStore,
    tracker: TicketTracker,
    deployer: Deployer,
    people: People,
    url: str,
    reason: str,
    actor: str,
    port: int | None,
) -> tuple[ReleaseLogRow, Deployment]:
    if not reason.strip():
        raise ReleaseRefused("a rollback needs a reason (--reason)")
    violation = role_violation(people, actor, "submitter")
    if violation and role_violation(people, actor, "approver"):
        raise IdentityError(f"refused: {violation}; rollbacks are done by an ML engineer or an approver")
    found = ledger.entries(store)  # read first, for precise refusals; verified in full before acting
    rows = [r for r in recovery.ledgered_rows(found) if normal_url(r.deployment_url) == normal_url(url)]
    if not rows:
        raise ReleaseRefused(f"no release in the ledger of {store.url} was deployed at {url}")
    target = rows[-1]
    path = f"{MODELS_DIR}/{target.sha256}.json"
    if not store.exists(path):
        raise ReleaseRefused(f"model file {path} of {target.release_id} is missing from the store")
    actual = hashlib.sha256(store.read_bytes(path)).hexdigest()
    if actual != target.sha256:
        raise ReleaseRefused(f"model file {path} was changed: its sha256 is {actual}, the log says {target.sha256}")
    approvals = [
        r
        for r in recovery.ledgered_approvals(store, found)
        if r.release_id == target.release_id and r.approved and r.model_sha256 == target.sha256
    ]
    if not approvals:
        raise ReleaseRefused(
            f"{target.release_id} has no approval record for model {target.sha256} in the ledger; not restoring it"
        )
    found = trusted_entries(store)
    statuses = deployer.list()
    already = [d for d in statuses if d.deployment.release_id == target.release_id and d.alive]
    if already:
        raise ReleaseRefused(
            f"{target.release_id} is already live at {already[0].deployment.url}; nothing to roll back"
        )
    live = [d for d in statuses if d.deployment.release_id != target.release_id]
    wanted = port or _port_of(url)
    operation = recovery.begin(store, "rollback", target.release_id, url=url, by=actor, reason=reason)
    crash_point("rollback-intent")
    token = secrets.token_hex(16)
    activation = activation_for(store, token)
    with local_model_file(store, path) as model_file:
        try:
            deployment = deployer.deploy(target.release_id, model_file, target.sha256, wanted, activation)
        except DeploymentError as exc:
            if port is not None:
                recovery.finish(store, operation, "failed", f"the endpoint could not be started: {exc}")
                raise
            try:
                deployment = deployer.deploy(target.release_id, model_file, target.sha256, None, activation)
            except DeploymentError as again:
                recovery.finish(store, operation, "failed", f"the endpoint could not be started: {again}")
                raise
    crash_point("rollback-server-ready")
    row = append_row(
        store,
        ReleaseLogRow(
            date=iso_utc(utc_now()),
            event="rollback",
            release_id=target.release_id,
            model_path=path,
            sha256=target.sha256,
            deployment_url=deployment.url,
            approval_id=approvals[-1].approval_id,
            by=actor,
            note=reason,
        ),
        activates=token,
    )
    crash_point("rollback-row-logged")
    deployment = deployer.await_active(target.release_id)
    earlier = [r for r in recovery.ledgered_rows(found) if r.event == "release"]
    releases = [r.release_id for r in earlier if r.release_id != target.release_id]
    rolled_back = [d.deployment.release_id for d in live] or releases[-1:]
    for old in live:
        deployer.stop(old.deployment.release_id)
    recovery.finish(store, operation, "done", url=deployment.url, replaced=[d.deployment.release_id for d in live])
    for release_id in rolled_back:
        _ticket(tracker.add_label, release_id, ROLLED_BACK)
        comment_with_checkpoint(
            store,
            tracker,
            release_id,
            actor,
            "rollback",
            f"ROLLED BACK to {target.release_id} at {deployment.url}: {reason}",
        )
        _ticket(tracker.set_status, release_id, "rolled back")
    comment_with_checkpoint(
        store, tracker, target.release_id, actor, "rollback", f"Restored at {deployment.url}: {reason}"
    )
    return row, deployment


def trusted_entries(store: ComplianceStore) -> list[ledger.LedgerEntry]:
    """The ledger's entries, only when the ledger verifies without errors; ReleaseRefused naming the first."""
    problems, found = ledger_verify.verify_with_entries(store)
    bad = ledger_verify.errors(problems)
    if bad:
        raise ReleaseRefused(
            f"the compliance store does not verify ({len(bad)} problem(s), first: {bad[0]}); "
            "nothing is restored from it; run `credit-scorer audit verify`"
        )
    return found


def _port_of(url: str) -> int | None:
    tail = url.rstrip("/").rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def comment_with_checkpoint(
    store: ComplianceStore, tracker: TicketTracker, release_id: str, author: str, kind: CommentKind, body: str
) -> None:
    """Add a comment to the ticket, ending with the ledger checkpoint at this moment (``[ledger seq N · head …]``).

    A copy of the ticket outside the store (Jira) then proves how far the ledger had come.
    """
    note = ledger.head_note(store)
    _ticket(tracker.add_comment, release_id, author, kind, f"{body} [{note}]" if note else body)


def _ticket(action: Callable[..., object], *args: object) -> None:
    """Update the ticket; a failure is logged as a warning and never undoes a record."""
    try:
        action(*args)
    except (StoreError, OSError, ValueError) as exc:
        log.warning("ticket update failed (the record is safe): %s", exc)
