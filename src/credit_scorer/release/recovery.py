"""Intent before effect, and recovery after a crash.

A deployment or a rollback changes several things that must agree: a scoring endpoint, an approval record,
a release-log row, the endpoints it replaces. Each such operation is an **intent** in the ledger before
anything happens (what is about to be done, by whom, for which release) and an **outcome** after
(``done``, ``failed``, or ``interrupted``). In between, the endpoint waits inactive until the record that
makes it official is ledgered (see :mod:`credit_scorer.core.ports`).

:func:`recover` runs at the start of every command that deploys or lists deployments (``run``, ``approve``,
``resume``, ``redeploy``, ``deployments``), under the store's ``deploy`` lock, so no operation is in
progress while it looks. It

1. finishes or discards a record write a crash interrupted (:func:`ledger.recover_pending`) and completes a
   release log that lags behind its ledgered rows;
2. settles every intent without an outcome: an operation that got as far as a live, active endpoint with
   its ledgered record is completed (its release-log row written, the endpoints it replaces stopped) and
   recorded ``done``; anything less is stopped and recorded ``interrupted``, saying how far it got;
3. stops every endpoint that no ledgered approval or rollback row vouches for.

``audit verify`` reports interrupted operations as warnings, not as forgery.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from credit_scorer.core.ports import Deployer, DeploymentStatus
from credit_scorer.records import layout, ledger
from credit_scorer.records.models import ApprovalRecord, iso_utc, utc_now
from credit_scorer.records.release_log import ReleaseLogRow, append_row, parse_rows, rebuild
from credit_scorer.records.store import ComplianceStore

log = logging.getLogger(__name__)

DEPLOY_LOCK = "deploy"


@dataclass(frozen=True)
class Operation:
    """An intent without an outcome yet."""

    operation_id: str
    operation: str
    release_id: str
    seq: int
    facts: dict[str, object]


def begin(store: ComplianceStore, operation: str, release_id: str, **facts: object) -> str:
    """Ledger the intent of an operation; return its id (call under the deploy lock)."""
    operation_id = f"{operation}-{utc_now().strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"
    event = {
        "operation_id": operation_id,
        "operation": operation,
        "release_id": release_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "at": iso_utc(utc_now()),
        **facts,
    }
    ledger.append_event(store, "intent", operation_id, event)
    return operation_id


def finish(store: ComplianceStore, operation_id: str, status: str, note: str = "", **facts: object) -> None:
    """Ledger the outcome of an operation: ``done``, ``failed`` or ``interrupted``."""
    event = {"operation_id": operation_id, "status": status, "note": note, "at": iso_utc(utc_now()), **facts}
    ledger.append_event(store, "outcome", f"{operation_id}:{status}", event)


def open_operations(found: list[ledger.LedgerEntry]) -> list[Operation]:
    """Intents without an outcome, oldest first (pure)."""
    pending: dict[str, Operation] = {}
    for entry in found:
        event = entry.event()
        operation_id = str(event.get("operation_id", ""))
        if entry.kind == "intent" and operation_id:
            pending[operation_id] = Operation(
                operation_id, str(event.get("operation", "")), str(event.get("release_id", "")), entry.seq, event
            )
        elif entry.kind == "outcome":
            pending.pop(operation_id, None)
    return list(pending.values())


def ledgered_approvals(store: ComplianceStore, found: list[ledger.LedgerEntry]) -> list[ApprovalRecord]:
    """Approval records whose file is ledgered with its exact bytes, oldest first."""
    recorded = {e.path: e.record_sha256 for e in found if e.kind == "approval"}
    approvals: list[ApprovalRecord] = []
    for path in store.list(layout.APPROVALS_DIR, ".json"):
        data = store.read_bytes(path)
        if recorded.get(path) == ledger.sha256_hex(data):
            approvals.append(ApprovalRecord.model_validate_json(data))
    return approvals


def ledgered_rows(found: list[ledger.LedgerEntry]) -> list[ReleaseLogRow]:
    """Release-log rows as the ledger records them (pure)."""
    rows: list[ReleaseLogRow] = []
    for entry in found:
        if entry.kind in ledger.ROW_KINDS and entry.row is not None:
            rows += parse_rows(entry.row)
    return rows


def vouched(store: ComplianceStore, found: list[ledger.LedgerEntry]) -> set[tuple[str, str]]:
    """(release id, URL) of every endpoint a ledgered approval or rollback row made official."""
    pairs = {
        (r.release_id, _norm(r.deployment_url))
        for r in ledgered_approvals(store, found)
        if r.approved and r.deployment_url
    }
    pairs |= {(r.release_id, _norm(r.deployment_url)) for r in ledgered_rows(found)}
    return pairs


def _norm(url: str) -> str:
    return url.strip().rstrip("/").replace("://localhost:", "://127.0.0.1:")


def recover_at_start(store: ComplianceStore, deployer: Deployer) -> list[str]:
    """:func:`recover` under the store's ``deploy`` lock: what every deploying or listing command runs first.

    A local store that does not exist yet has nothing to recover, and is not created here.
    """
    if store.is_local and not Path(store.root).exists():
        return []
    ledger.refuse_if_damaged(store)
    with store.lock(DEPLOY_LOCK):
        return recover(store, deployer)


def recover(store: ComplianceStore, deployer: Deployer) -> list[str]:
    """Settle what a crash left behind (call under the ``deploy`` lock); one sentence per action taken."""
    done: list[str] = []
    note = ledger.recover_pending(store)
    if note:
        done.append(note)
    if rebuild(store):
        done.append("completed model_release_log.md from the ledger's rows")
    found = ledger.entries(store)
    statuses = {s.deployment.release_id: s for s in deployer.list()}
    for operation in open_operations(found):
        done.append(_settle(store, deployer, operation, found, statuses))
        found = ledger.entries(store)
        statuses = {s.deployment.release_id: s for s in deployer.list()}
    official = vouched(store, found)
    for status in statuses.values():
        d = status.deployment
        if (d.release_id, _norm(d.url)) not in official:
            deployer.stop(d.release_id)
            done.append(f"stopped {d.release_id} at {d.url}: no ledgered approval or rollback vouches for it")
    done += deployer.seal_logs()
    for sentence in done:
        log.warning("recovery: %s", sentence)
    return done


def _settle(
    store: ComplianceStore,
    deployer: Deployer,
    operation: Operation,
    found: list[ledger.LedgerEntry],
    statuses: dict[str, DeploymentStatus],
) -> str:
    release_id = operation.release_id
    status = statuses.get(release_id)
    live = status is not None and status.alive and status.active
    url = _norm(status.deployment.url) if status is not None else ""
    rows = ledgered_rows(found)
    if operation.operation == "deploy":
        approval = next(
            (
                a
                for a in reversed(ledgered_approvals(store, found))
                if a.release_id == release_id and a.approved and a.deployment_url
            ),
            None,
        )
        if live and approval is not None and _norm(approval.deployment_url or "") == url:
            deployer.await_active(release_id, timeout=5.0)  # registers it active, as the interrupted run would have
            if not any(r.approval_id == approval.approval_id and r.event == "release" for r in rows):
                append_row(
                    store,
                    ReleaseLogRow(
                        date=iso_utc(utc_now()),
                        event="release",
                        release_id=release_id,
                        model_path=approval.model_path or f"models/{approval.model_sha256}.json",
                        sha256=approval.model_sha256,
                        deployment_url=approval.deployment_url or "",
                        approval_id=approval.approval_id,
                        by=approval.approver,
                        note="logged on recovery after an interrupted deployment",
                    ),
                )
            replaced = _stop_others(deployer, release_id, statuses)
            finish(store, operation.operation_id, "done", "completed after an interruption", replaced=replaced)
            return f"completed the interrupted deployment of {release_id} ({approval.approval_id}, {url})"
        how_far = (
            f"the approval {approval.approval_id} was recorded but its endpoint is not live"
            if approval is not None
            else "interrupted before its approval was recorded: nothing was approved or served"
        )
    else:
        row = next((r for r in reversed(rows) if r.release_id == release_id and r.event == "rollback"), None)
        if live and row is not None and _norm(row.deployment_url) == url:
            deployer.await_active(release_id, timeout=5.0)
            replaced = _stop_others(deployer, release_id, statuses)
            finish(store, operation.operation_id, "done", "completed after an interruption", replaced=replaced)
            return f"completed the interrupted rollback to {release_id} ({url})"
        how_far = "interrupted before the rollback was logged: nothing was restored"
    if status is not None:
        deployer.stop(release_id)
        how_far += f"; its endpoint {status.deployment.url} was stopped"
    finish(store, operation.operation_id, "interrupted", how_far)
    return f"{operation.operation} {operation.operation_id} of {release_id}: {how_far}"


def _stop_others(deployer: Deployer, release_id: str, statuses: dict[str, DeploymentStatus]) -> list[str]:
    stopped = []
    for other in statuses:
        if other != release_id:
            deployer.stop(other)
            stopped.append(other)
    return stopped
