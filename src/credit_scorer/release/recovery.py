"""Intent before effect, and recovery after a crash.

A deployment (first, or retried) or a rollback changes several things that must agree: a scoring endpoint, an
approval (or retry) record, a release-log row, the endpoints it replaces. Each such operation is an **intent**
in the ledger before anything happens (what is about to be done, by whom, for which release) and an **outcome** after
(``done``, ``failed``, or ``interrupted``). In between, the endpoint waits inactive until the record that
makes it official is ledgered (see :mod:`credit_scorer.core.ports`).

:func:`recover` runs at the start of every command that deploys or lists deployments (``run``, ``approve``,
``resume``, ``deploy``, ``redeploy``, ``deployments``), under the store's ``deploy`` lock, so no operation is in
progress while it looks. It

1. finishes or discards a record write a crash interrupted (:func:`ledger.recover_pending`) and completes a
   release log that lags behind its ledgered rows;
2. settles every intent without an outcome: an operation that got as far as a live, active endpoint with
   its ledgered record is completed (its release-log row written, the endpoints it replaces stopped) and
   recorded ``done``; anything less is stopped and recorded ``interrupted``, saying how far it got;
3. stops every endpoint that no ledgered approval, retry record (``deploy_retries/``) or rollback row vouches
   for.

``audit verify`` reports interrupted operations as warnings, not as forgery.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from credit_scorer.core.ports import Deployer, DeploymentStatus
from credit_scorer.records import layout, ledger
from credit_scorer.records.deploy_retries import RETRY_ROW_NOTE, DeployRetryRecord, attempt_order, retry_path
from credit_scorer.records.models import ApprovalRecord, iso_utc, utc_now
from credit_scorer.records.release_log import ReleaseLogRow, append_row, normal_url, parse_rows, rebuild
from credit_scorer.records.store import ComplianceStore

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

DEPLOY_LOCK = "deploy"
DEPLOY_OPERATIONS = ("deploy", "deploy-retry")
"""Operations that put an approved release live (its first deployment, a retry); the rest are rollbacks."""


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


def _ledgered(
    store: ComplianceStore, found: list[ledger.LedgerEntry], kind: str, folder: str, model: type[M]
) -> list[M]:
    """The records in ``folder`` whose file is ledgered (as ``kind``) with its exact bytes, in file order."""
    recorded = {e.path: e.record_sha256 for e in found if e.kind == kind}
    made: list[M] = []
    for path in store.list(folder, ".json"):
        data = store.read_bytes(path)
        if recorded.get(path) == ledger.sha256_hex(data):
            made.append(model.model_validate_json(data))
    return made


def ledgered_approvals(store: ComplianceStore, found: list[ledger.LedgerEntry]) -> list[ApprovalRecord]:
    """Approval records whose file is ledgered with its exact bytes, oldest first."""
    return _ledgered(store, found, "approval", layout.APPROVALS_DIR, ApprovalRecord)


def ledgered_retries(store: ComplianceStore, found: list[ledger.LedgerEntry]) -> list[DeployRetryRecord]:
    """Retry records whose file is ledgered with its exact bytes, oldest first."""
    return sorted(
        _ledgered(store, found, "deploy_retry", layout.DEPLOY_RETRIES_DIR, DeployRetryRecord), key=attempt_order
    )


def ledgered_rows(found: list[ledger.LedgerEntry]) -> list[ReleaseLogRow]:
    """Release-log rows as the ledger records them (pure)."""
    rows: list[ReleaseLogRow] = []
    for entry in found:
        if entry.kind in ledger.ROW_KINDS and entry.row is not None:
            rows += parse_rows(entry.row)
    return rows


@dataclass(frozen=True)
class Voucher:
    """A ledgered record that made an endpoint official: an approval with its URL, or a retry that started one."""

    release_id: str
    url: str
    record_id: str
    approval_id: str
    model_path: str
    model_sha256: str
    by: str
    note: str
    seq: int
    """The record's ledger entry."""


def vouchers(store: ComplianceStore, found: list[ledger.LedgerEntry]) -> list[Voucher]:
    """Every approval or retry record in the ledger that names a deployment URL, in ledger order."""
    seqs = {e.path: e.seq for e in found if e.kind in ("approval", "deploy_retry")}
    made = [
        Voucher(
            release_id=a.release_id,
            url=a.deployment_url,
            record_id=a.approval_id,
            approval_id=a.approval_id,
            model_path=a.model_path or f"{layout.MODELS_DIR}/{a.model_sha256}.json",
            model_sha256=a.model_sha256,
            by=a.approver,
            note="",
            seq=seqs.get(f"{layout.APPROVALS_DIR}/{a.approval_id}.json", 0),
        )
        for a in ledgered_approvals(store, found)
        if a.approved and a.deployment_url
    ]
    made += [
        Voucher(
            release_id=r.release_id,
            url=r.deployment_url,
            record_id=r.retry_id,
            approval_id=r.approval_id,
            model_path=r.model_path,
            model_sha256=r.model_sha256,
            by=r.retried_by,
            note=RETRY_ROW_NOTE,
            seq=seqs.get(retry_path(r.retry_id), 0),
        )
        for r in ledgered_retries(store, found)
        if r.deployment_url
    ]
    return sorted(made, key=lambda v: v.seq)


def vouched(store: ComplianceStore, found: list[ledger.LedgerEntry]) -> set[tuple[str, str]]:
    """(release id, URL) of every endpoint a ledgered approval, retry or rollback row made official."""
    pairs = {(v.release_id, normal_url(v.url)) for v in vouchers(store, found)}
    pairs |= {(r.release_id, normal_url(r.deployment_url)) for r in ledgered_rows(found)}
    return pairs


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
        if (d.release_id, normal_url(d.url)) not in official:
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
    url = normal_url(status.deployment.url) if status is not None else ""
    rows = ledgered_rows(found)
    if operation.operation in DEPLOY_OPERATIONS:
        since = [v for v in vouchers(store, found) if v.release_id == release_id and v.seq > operation.seq]
        voucher = next((v for v in reversed(since) if normal_url(v.url) == url), None)
        if live and voucher is not None:
            deployer.await_active(release_id, timeout=5.0)  # registers it active, as the interrupted run would have
            logged = (voucher.approval_id, "release", url)
            if not any((r.approval_id, r.event, normal_url(r.deployment_url)) == logged for r in rows):
                note = "logged on recovery after an interrupted deployment"
                append_row(
                    store,
                    ReleaseLogRow(
                        date=iso_utc(utc_now()),
                        event="release",
                        release_id=release_id,
                        model_path=voucher.model_path,
                        sha256=voucher.model_sha256,
                        deployment_url=voucher.url,
                        approval_id=voucher.approval_id,
                        by=voucher.by,
                        note=f"{voucher.note}; {note}" if voucher.note else note,
                    ),
                )
            replaced = _stop_others(deployer, release_id, statuses)
            finish(store, operation.operation_id, "done", "completed after an interruption", replaced=replaced)
            return f"completed the interrupted deployment of {release_id} ({voucher.record_id}, {url})"
        if since:
            how_far = f"{since[-1].record_id} was recorded but its endpoint is not live"
        elif operation.operation == "deploy":
            how_far = "interrupted before its approval was recorded: nothing was approved or served"
        else:
            how_far = "interrupted before its retry was recorded: nothing was served"
    else:
        row = next((r for r in reversed(rows) if r.release_id == release_id and r.event == "rollback"), None)
        if live and row is not None and normal_url(row.deployment_url) == url:
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
