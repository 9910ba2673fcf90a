"""Putting a stored, approved model live: the steps a first deployment and a retried one share.

Called under the store's ``deploy`` lock after the operation's intent is ledgered (see
:mod:`credit_scorer.release.recovery`): start the endpoint inactive (registered first) → write the record that
makes it official, whose ledger entry carries the endpoint's activation token → the endpoint activates →
release-log row → stop the endpoints it replaces → ledger the outcome. A crash point sits between each step.
When the endpoint cannot be started, the failure is recorded, the outcome is ``failed`` and
:class:`NotStarted` is raised. Which record is written is the caller's: an approval record
(``workflow.deploy_release``) or a retry record (``deploy_retry.retry_deployment``).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol, TypeVar

from credit_scorer.core.faults import crash_point
from credit_scorer.core.ports import Activation, Deployer, Deployment, DeploymentError
from credit_scorer.records import ledger
from credit_scorer.records.models import iso_utc, utc_now
from credit_scorer.records.release_log import ReleaseLogRow, append_row, git_commit_log
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release import recovery

log = logging.getLogger(__name__)


class Official(Protocol):
    """A record that makes an endpoint official: it names the approval the release-log row cites."""

    @property
    def approval_id(self) -> str: ...


R = TypeVar("R", bound=Official)


@dataclass(frozen=True)
class LiveTarget:
    """What goes live: a release's stored model, on which port, and who (and why) the release-log row names."""

    release_id: str
    model_path: str
    model_sha256: str
    port: int | None
    by: str
    note: str = ""


class NotStarted(DeploymentError):
    """The endpoint could not be started; the failure is recorded (``record_id``) and nothing was left running."""

    def __init__(self, cause: str, record_id: str, release_id: str) -> None:
        self.cause = cause
        self.record_id = record_id
        super().__init__(
            f"{cause} (recorded in {record_id}); the approval stands: once the cause is fixed, an approver puts it "
            f"live with `credit-scorer deploy {release_id} --as NAME`"
        )


@contextlib.contextmanager
def local_model_file(store: ComplianceStore, relpath: str) -> Iterator[Path]:
    """A local path of a stored model file: the file itself in a local store, else a temporary copy."""
    if store.is_local:
        yield store.local_path(relpath)
        return
    with tempfile.TemporaryDirectory(prefix="credit-scorer-model-") as folder:
        path = Path(folder) / PurePosixPath(relpath).name
        path.write_bytes(store.read_bytes(relpath))
        yield path


def activation_for(store: ComplianceStore, token: str) -> Activation | None:
    """What the endpoint waits for: the token in the store's ledger file (local stores)."""
    return Activation(ledger_file=store.local_path(ledger.LEDGER_FILE), token=token) if store.is_local else None


def go_live(
    store: ComplianceStore,
    deployer: Deployer,
    target: LiveTarget,
    operation_id: str,
    *,
    record_failure: Callable[[str], str],
    record_start: Callable[[str, str], R],
    git_commit: bool,
) -> tuple[R, Deployment]:
    """Start the endpoint inactive, make it official, log it, replace what ran before (under the deploy lock).

    ``record_failure(error)`` writes the record of an endpoint that could not be started and returns its id;
    ``record_start(url, token)`` writes the record that makes the endpoint official, its ledger entry carrying
    ``token``. If that write fails the endpoint is stopped: no deployment without its record.
    """
    previous = [d for d in deployer.list() if d.deployment.release_id != target.release_id]
    token = secrets.token_hex(16)
    try:
        with local_model_file(store, target.model_path) as model_file:
            deployment = deployer.deploy(
                target.release_id, model_file, target.model_sha256, target.port, activation_for(store, token)
            )
    except DeploymentError as exc:
        record_id = record_failure(str(exc))
        recovery.finish(store, operation_id, "failed", f"the endpoint could not be started: {exc}")
        raise NotStarted(str(exc), record_id, target.release_id) from exc
    try:
        record = record_start(deployment.url, token)
    except BaseException:
        deployer.stop(target.release_id)  # no deployment without its record
        raise
    crash_point("deploy-approval-recorded")
    deployment = deployer.await_active(target.release_id)
    crash_point("deploy-activated")
    append_row(
        store,
        ReleaseLogRow(
            date=iso_utc(utc_now()),
            event="release",
            release_id=target.release_id,
            model_path=target.model_path,
            sha256=target.model_sha256,
            deployment_url=deployment.url,
            approval_id=record.approval_id,
            by=target.by,
            note=target.note,
        ),
    )
    crash_point("deploy-row-logged")
    if git_commit:
        log.info("release log: %s", git_commit_log(store, f"Release {target.release_id} ({record.approval_id})"))
    for old in previous:
        deployer.stop(old.deployment.release_id)
    crash_point("deploy-previous-stopped")
    recovery.finish(store, operation_id, "done", approval_id=record.approval_id, url=deployment.url)
    return record, deployment
