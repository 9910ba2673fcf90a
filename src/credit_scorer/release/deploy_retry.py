"""A retried deployment: put an approved release live after its endpoint could not be started, without a new decision.

The approval record stands (it is written once); the retry is its own ledgered record
(:mod:`credit_scorer.records.deploy_retries`) and goes through the same protocol as the first deployment
(:mod:`credit_scorer.release.go_live`): under the store's ``deploy`` lock, recovery first, an intent
(operation ``deploy-retry``), the endpoint started inactive, the retry record whose ledger entry activates it,
the release-log row (citing the approval), the endpoints it replaces stopped, the outcome. A retry that fails
again is recorded too, and the release stays ``deploy failed`` with the new reason.
"""

from __future__ import annotations

import hashlib

from credit_scorer.adapters.tickets import TicketTracker
from credit_scorer.core.errors import Conflict
from credit_scorer.core.faults import crash_point
from credit_scorer.core.ids import is_release_id
from credit_scorer.core.ports import Deployer, Deployment
from credit_scorer.records import ledger
from credit_scorer.records.deploy_retries import (
    RETRY_ROW_NOTE,
    DeploymentState,
    DeployRetryRecord,
    deployment_state,
    read_retries,
    write_retry,
)
from credit_scorer.records.layout import MODELS_DIR
from credit_scorer.records.models import ApprovalRecord, decisions_for, read_approvals, utc_now
from credit_scorer.records.people import RULE_DISTINCT, IdentityError, role_violation
from credit_scorer.records.people_registry import PeopleInForce
from credit_scorer.records.release_log import read_rows
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release import recovery
from credit_scorer.release.go_live import LiveTarget, NotStarted, go_live
from credit_scorer.release.workflow import ReleaseRefused, deploy_failed, deployed, trusted_entries


class NotRetryable(Conflict, ReleaseRefused):
    """The release's deployment did not fail: it has no approval, was rejected, or is (or was) live."""


def failed_deployments(store: ComplianceStore, live: set[str]) -> list[DeploymentState]:
    """Approved releases not in ``live`` whose last deployment attempt failed, oldest first (what the records say)."""
    retries, rows = read_retries(store), read_rows(store)
    states = [deployment_state(a, retries, rows) for a in read_approvals(store) if a.approved]
    return [s for s in states if s.deploy_failed and s.release_id not in live]


def retry_deployment(
    store: ComplianceStore,
    tracker: TicketTracker,
    deployer: Deployer,
    people: PeopleInForce,
    release_id: str,
    actor: str,
    port: int | None = None,
    git_commit: bool = False,
) -> tuple[DeployRetryRecord, Deployment]:
    """Deploy the approved, unchanged model of a release whose deployment failed; ``actor`` must be an approver.

    Refuses, writing nothing, a malformed release id, an actor who is not an approver in ``people`` or who
    submitted the release, a release with no ledgered approval, a rejected or refused one, one that is live or
    went live since, a model file that is missing or no longer has the approved sha256, and a store that does
    not verify. When the endpoint cannot be started the failed retry is recorded and :class:`go_live.NotStarted`
    is raised.
    """
    check_request(people, release_id, actor)
    with store.lock(recovery.DEPLOY_LOCK):
        recovery.recover(store, deployer)
        approval, state = _failed_deployment(store, deployer, release_id, actor)
        operation = recovery.begin(
            store,
            "deploy-retry",
            release_id,
            model_sha256=approval.model_sha256,
            approval_id=approval.approval_id,
            retried_by=actor,
        )
        crash_point("deploy-intent")
        model_path = f"{MODELS_DIR}/{approval.model_sha256}.json"
        fields: dict[str, object] = {
            "release_id": release_id,
            "approval_id": approval.approval_id,
            "model_sha256": approval.model_sha256,
            "model_path": model_path,
            "retried_by": actor,
            "retried_after": state.reason or "",
            "people_version": people.version,
            "people_source": people.source,
        }

        def record_failure(error: str) -> str:
            failed = fields | {"deployment_url": None, "deployment_error": error}
            return write_retry(store, failed, utc_now()).retry_id

        def record_start(url: str, token: str) -> DeployRetryRecord:
            return write_retry(store, fields | {"deployment_url": url}, utc_now(), activates=token)

        target = LiveTarget(release_id, model_path, approval.model_sha256, port, by=actor, note=RETRY_ROW_NOTE)
        try:
            record, deployment = go_live(
                store,
                deployer,
                target,
                operation,
                record_failure=record_failure,
                record_start=record_start,
                git_commit=git_commit,
            )
        except NotStarted as exc:
            body = f"Deployment retried by {actor} failed again: {exc.cause} ({exc.record_id})"
            deploy_failed(store, tracker, release_id, actor, "deployment", body)
            raise
    deployed(
        store,
        tracker,
        release_id,
        f"Deployed at {deployment.url}: deployment of {approval.approval_id} retried by {actor} ({record.retry_id})",
    )
    return record, deployment


def check_request(people: PeopleInForce, release_id: str, actor: str) -> None:
    """A well-formed release id, asked for by an approver; a refusal naming the rule otherwise (nothing read)."""
    if not is_release_id(release_id):
        raise ReleaseRefused(
            f"{release_id!r} is not a release id (AI-REL- and 8 lowercase hex digits, as `credit-scorer deployments` "
            "lists them)"
        )
    violation = role_violation(people.people, actor, "approver")
    if violation:
        raise IdentityError(f"refused: {violation}; a failed deployment is retried by an approver")


def _failed_deployment(
    store: ComplianceStore, deployer: Deployer, release_id: str, actor: str
) -> tuple[ApprovalRecord, DeploymentState]:
    """The release's ledgered approval and its failed deployment; a refusal naming the fix for anything else."""
    found = ledger.entries(store)  # read first, for precise refusals; verified in full before acting
    approvals = [a for a in recovery.ledgered_approvals(store, found) if a.release_id == release_id]
    if not approvals:
        if decisions_for(store, release_id):
            trusted_entries(store)  # an approval file without its ledger entry: the verification names it
        raise NotRetryable(
            f"{release_id} has no approval in the ledger of {store.url}; nothing is deployed without one "
            "(`credit-scorer pending` lists the runs waiting for a decision)"
        )
    approval = approvals[0]
    if not approval.approved:
        verdict = "refused" if approval.refusal_reason else "rejected"
        raise NotRetryable(
            f"{release_id} was {verdict} by {approval.approver} at {approval.timestamp} ({approval.approval_id}); "
            "only an approved release is deployed: train and submit a new run"
        )
    if not approval.dev_mode and actor.strip().casefold() == approval.submitter.strip().casefold():
        raise IdentityError(
            f"refused: {RULE_DISTINCT}: {actor!r} submitted {release_id}; another approver retries its deployment"
        )
    live = [s.deployment.url for s in deployer.list() if s.deployment.release_id == release_id and s.alive]
    if live:
        raise NotRetryable(f"{release_id} is already live at {live[0]}; there is no failed deployment to retry")
    state = deployment_state(approval, recovery.ledgered_retries(store, found), recovery.ledgered_rows(found))
    if not state.deploy_failed:
        raise NotRetryable(
            f"{release_id} went live at {state.url} ({state.record_id}) and was replaced or stopped since; only a "
            f"failed deployment is retried: to serve it again, roll back with `credit-scorer redeploy --url "
            f"{state.url} --reason TEXT --as NAME`"
        )
    _check_model(store, approval)
    trusted_entries(store)
    return approval, state


def _check_model(store: ComplianceStore, approval: ApprovalRecord) -> None:
    """The stored model file is the one the approval approved (same sha256), else a refusal naming the fix."""
    path = f"{MODELS_DIR}/{approval.model_sha256}.json"
    if approval.model_path not in (None, path):
        raise ReleaseRefused(
            f"{approval.approval_id} names the model file {approval.model_path}, not {path}; not deploying it: "
            "run `credit-scorer audit verify`"
        )
    if not store.exists(path):
        raise ReleaseRefused(
            f"the model file {path} approved in {approval.approval_id} is missing from the store {store.url}; "
            "restore it from a backup, or train and approve a new run"
        )
    actual = hashlib.sha256(store.read_bytes(path)).hexdigest()
    if actual != approval.model_sha256:
        raise ReleaseRefused(
            f"the model file {path} was changed: its sha256 is {actual}, but {approval.approval_id} approved "
            f"{approval.model_sha256}; not deploying it: restore the approved file from a backup (then "
            "`credit-scorer audit verify`), or train and approve a new run"
        )
