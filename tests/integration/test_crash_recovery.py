"""SIGKILL at every write of the release protocol: no unapproved endpoint scores, and the store recovers.

A real deployment (or rollback) runs in a child process (``tests/crash_driver.py``) that kills itself at one
named crash point (:mod:`credit_scorer.core.faults`). Then, as a user would meet it:

- right after the crash, no process scores applicants unless the approval that vouches for it is in the
  ledger (an endpoint whose approval never got there shuts itself down when its deploying process dies);
- the next command's recovery (:func:`recovery.recover_at_start`) completes what got as far as a ledgered
  approval and a live endpoint, and records everything else as interrupted;
- ``audit verify`` then has no errors: an interruption is a warning, never forgery.

The red team's crashes: killed after the server started but before its state was written (an unapproved
model kept answering); after the approval file but before its ledger entry (verify failed forever, two
endpoints live); between the release-log rewrite and its entry (every later release added verify errors).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from credit_scorer.adapters.factory import deployer_for
from credit_scorer.adapters.tickets import LocalTicketTracker
from credit_scorer.audit.verify import audit_verify
from credit_scorer.core.ports import DeploymentError
from credit_scorer.core.settings import CRASH_ENV
from credit_scorer.records import ledger, ledger_verify, people_registry
from credit_scorer.records.models import read_approvals
from credit_scorer.records.release_log import read_rows
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release import recovery, signoffs, workflow
from credit_scorer.release.deploy_retry import failed_deployments, retry_deployment

from .conftest import REPO, approved_decision, built_candidate, person, stop_all

pytestmark = pytest.mark.integration

RUN_A = "c0ffee0a-0000-4000-8000-00000000000a"
RUN_B = "c0ffee0b-0000-4000-8000-00000000000b"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# Every write of a deployment, in order (``@N``: the N-th record or registry write of the process).
BEFORE_APPROVAL = (
    "deploy-intent",
    "record-pending-written@1",  # the model file, not ledgered yet
    "record-ledgered@1",  # the model's entry, file not linked yet
    "deploy-model-stored",
    "deploy-server-spawned",  # the server exists, not registered yet
    "state-pending-written@1",
    "state-ledgered@1",
    "deploy-server-registered",
    "deploy-server-ready",
    "record-pending-written@2",  # the approval's bytes, no entry yet
)
AFTER_APPROVAL = (
    "record-ledgered@2",  # the approval's entry (with the activation token), file not linked yet
    "deploy-approval-recorded",
    "state-ledgered@2",  # the registry says active
    "deploy-activated",
    "release-row-ledgered",
    "deploy-row-logged",
    "deploy-previous-stopped",
)


@dataclass(frozen=True)
class Built:
    model: Any
    candidate: workflow.ReleaseCandidate
    model_file: Path
    candidate_file: Path


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Built, Built]:
    folder = tmp_path_factory.mktemp("crash-models")
    built = []
    for run_id, trees in ((RUN_A, 15), (RUN_B, 18)):
        model, candidate = built_candidate(run_id, n_estimators=trees, sample_rows=4000)
        model_file = folder / f"{model.sha256}.json"
        model_file.write_bytes(model.to_bytes())
        candidate_file = folder / f"{run_id}.json"
        candidate_file.write_text(candidate.model_dump_json())
        built.append(Built(model, candidate, model_file, candidate_file))
    return built[0], built[1]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ComplianceStore]:
    root = tmp_path / "compliance"
    yield ComplianceStore(str(root))
    stop_all(root)
    for pid in _servers(str(root)):
        _kill(pid)


def _prepare(store: ComplianceStore, built: Built) -> None:
    """The ticket and the tester's sign-off, as before any decision (in this process, not the crashing one)."""
    people = people_registry.people_in_force(store, None, False, explicit=False).people
    tracker = LocalTicketTracker(store)
    c = built.candidate
    tracker.open_ticket(c.release_id, c.run_id, f"Release {c.release_id}", "crash test")
    tester = person(store, "Quinn Tester")
    signoffs.sign_off(store, tracker, people, c, "Quinn Tester", "ok", source="cli", dev_mode=False, person=tester)


def _driver(args: list[str], crash_at: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "tests.crash_driver", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _deploy(store: ComplianceStore, built: Built, crash_at: str | None) -> subprocess.CompletedProcess[str]:
    return _driver(["deploy", store.root, str(built.candidate_file), str(built.model_file)], crash_at)


def _deploy_here(store: ComplianceStore, built: Built) -> None:
    """A deployment that does not crash, in this process (set-up for the crash after it)."""
    decision = approved_decision(store, built.candidate, "set-up release")
    workflow.deploy_release(
        store, LocalTicketTracker(store), deployer_for(store), built.candidate, decision, built.model.to_bytes(),
        [], False, None, False,
    )  # fmt: skip


def _servers(store_root: str, release_id: str = "") -> list[int]:
    """PIDs of scoring servers started for this store (by the model path or decision-log folder in their argv)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        text = [a.decode(errors="replace") for a in argv]
        ours = "credit_scorer.serving" in text and any(store_root in a for a in text)
        if state != "Z" and ours and (not release_id or release_id in text):
            found.append(int(entry.name))
    return found


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 9)


def _ports_scoring(store: ComplianceStore, release_id: str) -> list[str]:
    """URLs of this release's servers that score applicants: /predict checks the request (200 or 422), not 503."""
    scoring = []
    for pid in _servers(store.root, release_id):
        port = _port_of(pid)
        if port is None:
            continue  # exited since it was listed
        url = f"http://127.0.0.1:{port}"
        request = urllib.request.Request(f"{url}/predict", data=b"{}", headers={"Content-Type": "application/json"})
        try:
            with NO_PROXY.open(request, timeout=2) as response:
                code = response.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        except OSError:
            continue
        if code != 503:
            scoring.append(url)
    return scoring


def _settle_servers(store: ComplianceStore, release_id: str, timeout: float = 15.0) -> list[int]:
    """Wait until servers that will shut themselves down have done so; the ones still running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = _servers(store.root, release_id)
        if all(_active(pid) for pid in running):
            return running
        time.sleep(0.1)
    return _servers(store.root, release_id)


def _port_of(pid: int) -> str | None:
    """The server's --port, or None once the process is gone (an exiting process's cmdline is empty)."""
    try:
        argv = (Path(f"/proc/{pid}") / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return argv[argv.index(b"--port") + 1].decode() if b"--port" in argv else None


def _active(pid: int) -> bool:
    port = _port_of(pid)
    if port is None:
        return False  # shutting down: _settle_servers waits until it is gone from the list
    try:
        with NO_PROXY.open(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return bool(json.loads(response.read()).get("active", True))
    except (OSError, ValueError):
        return False


def _verified(store: ComplianceStore) -> list[ledger.Problem]:
    problems = ledger_verify.verify(store)
    assert ledger_verify.errors(problems) == [], [str(p) for p in problems]
    return problems


def _approval_ledgered(store: ComplianceStore, release_id: str) -> bool:
    found = ledger.entries(store)
    return any(a.release_id == release_id and a.approved for a in recovery.ledgered_approvals(store, found)) or any(
        e.kind == "approval" and e.activates for e in found
    )


@pytest.mark.parametrize("point", BEFORE_APPROVAL)
def test_a_crash_before_the_approval_is_ledgered_leaves_nothing_scoring(
    store: ComplianceStore, releases: tuple[Built, Built], point: str
) -> None:
    a, _ = releases
    _prepare(store, a)
    done = _deploy(store, a, point)
    assert done.returncode == -9, done.stderr[-2000:]
    release_id = a.candidate.release_id
    assert _settle_servers(store, release_id) == []  # the gated server saw its parent die and shut down
    assert _ports_scoring(store, release_id) == []
    actions = recovery.recover_at_start(store, deployer_for(store))
    assert any("interrupted" in a or "nothing was approved" in a for a in actions), actions
    problems = _verified(store)
    assert any(p.severity == "warning" and "interrupted" in p.message for p in problems), [str(p) for p in problems]
    assert [r for r in read_approvals(store) if r.release_id == release_id] == []
    assert read_rows(store) == []
    assert deployer_for(store).list() == []


def test_after_an_interrupted_deployment_the_same_release_deploys_and_verifies_clean(
    store: ComplianceStore, releases: tuple[Built, Built]
) -> None:
    a, _ = releases
    _prepare(store, a)
    assert _deploy(store, a, "deploy-server-registered").returncode == -9
    _deploy_here(store, a)  # recovers first, then deploys
    assert len(_ports_scoring(store, a.candidate.release_id)) == 1
    assert [r.release_id for r in read_rows(store)] == [a.candidate.release_id]
    assert ledger_verify.errors(ledger_verify.verify(store)) == []


@pytest.mark.parametrize("point", AFTER_APPROVAL)
def test_a_crash_after_the_approval_is_ledgered_is_completed_by_the_next_command(
    store: ComplianceStore, releases: tuple[Built, Built], point: str
) -> None:
    a, b = releases
    replacing = point in ("deploy-activated", "deploy-row-logged", "deploy-previous-stopped")
    if replacing:  # A is live and B is deployed over it
        _prepare(store, a)
        _deploy_here(store, a)
    _prepare(store, b)
    done = _deploy(store, b, point)
    assert done.returncode == -9, done.stderr[-2000:]
    release_b = b.candidate.release_id
    assert _approval_ledgered(store, release_b)
    assert len(_settle_servers(store, release_b)) == 1  # its approval is ledgered: it is active and stays
    recovery.recover_at_start(store, deployer_for(store))
    _verified(store)
    approvals = [r for r in read_approvals(store) if r.release_id == release_b and r.approved]
    assert len(approvals) == 1 and approvals[0].deployment_url
    assert _ports_scoring(store, release_b) == [approvals[0].deployment_url]
    earlier = [("release", a.candidate.release_id)] if replacing else []
    assert [(r.event, r.release_id) for r in read_rows(store)] == [*earlier, ("release", release_b)]
    assert _ports_scoring(store, a.candidate.release_id) == []  # the release it replaces is stopped
    assert [s.deployment.release_id for s in deployer_for(store).list()] == [release_b]


def test_an_unwritable_ledger_at_deploy_time_deploys_nothing_and_records_nothing(
    store: ComplianceStore, releases: tuple[Built, Built], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The red team made the ledger folder read-only: the endpoint stopped, but an unledgered approval stayed."""
    a, _ = releases
    _prepare(store, a)
    real = ledger._append_locked

    def refuse_approvals(*args: Any, **kwargs: Any) -> ledger.LedgerEntry:
        if args[1] == "approval":
            raise PermissionError(13, "Permission denied", store.local_path(ledger.LEDGER_FILE))
        return real(*args, **kwargs)

    monkeypatch.setattr(ledger, "_append_locked", refuse_approvals)
    decision = approved_decision(store, a.candidate)
    with pytest.raises(PermissionError):
        workflow.deploy_release(
            store, LocalTicketTracker(store), deployer_for(store), a.candidate, decision, a.model.to_bytes(), [], False,
            None, False,
        )  # fmt: skip
    monkeypatch.undo()
    release_id = a.candidate.release_id
    assert _settle_servers(store, release_id) == []
    assert read_approvals(store) == []
    recovery.recover_at_start(store, deployer_for(store))
    _verified(store)


ROLLBACK_POINTS = ("rollback-intent", "rollback-server-ready", "release-row-ledgered", "rollback-row-logged")


@pytest.mark.parametrize("point", ROLLBACK_POINTS)
def test_a_crash_during_a_rollback_leaves_one_vouched_endpoint(
    store: ComplianceStore, releases: tuple[Built, Built], point: str
) -> None:
    a, b = releases
    for built in (a, b):
        _prepare(store, built)
        _deploy_here(store, built)
    url_a = next(r.deployment_url for r in read_rows(store) if r.release_id == a.candidate.release_id)
    done = _driver(["rollback", store.root, url_a], point)
    assert done.returncode == -9, done.stderr[-2000:]
    _settle_servers(store, a.candidate.release_id)
    recovery.recover_at_start(store, deployer_for(store))
    _verified(store)
    live = [s.deployment.release_id for s in deployer_for(store).list() if s.alive]
    rolled_back = any(r.event == "rollback" for r in read_rows(store))
    assert live == ([a.candidate.release_id] if rolled_back else [b.candidate.release_id])
    expected_live = a.candidate.release_id if rolled_back else b.candidate.release_id
    other = b.candidate.release_id if rolled_back else a.candidate.release_id
    assert len(_ports_scoring(store, expected_live)) == 1
    assert _ports_scoring(store, other) == []


# A retried deployment (``credit-scorer deploy``) after the first one failed: its own writes, in order.
RETRY_BEFORE_RECORD = (
    "deploy-intent",
    "deploy-server-registered",
    "deploy-server-ready",
    "record-pending-written@1",  # the retry record's bytes, no entry yet
)
RETRY_AFTER_RECORD = (
    "record-ledgered@1",  # the retry record's entry (with the activation token), file not linked yet
    "deploy-approval-recorded",
    "deploy-activated",
    "deploy-row-logged",
)


def _failed_deploy_here(store: ComplianceStore, built: Built) -> None:
    """A first deployment whose port is taken, in this process: the approval is recorded with the error."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        decision = approved_decision(store, built.candidate, "set-up release")
        with pytest.raises(DeploymentError, match="already in use"):
            workflow.deploy_release(
                store, LocalTicketTracker(store), deployer_for(store), built.candidate, decision,
                built.model.to_bytes(), [], False, taken.getsockname()[1], False,
            )  # fmt: skip


@pytest.mark.parametrize("point", RETRY_BEFORE_RECORD + RETRY_AFTER_RECORD)
def test_a_crash_during_a_retried_deployment_leaves_it_live_with_its_record_or_failed_and_retryable(
    store: ComplianceStore, releases: tuple[Built, Built], point: str
) -> None:
    a, _ = releases
    _prepare(store, a)
    _failed_deploy_here(store, a)
    release_id = a.candidate.release_id
    done = _driver(["retry", store.root, release_id], point)
    assert done.returncode == -9, done.stderr[-2000:]
    recorded = point in RETRY_AFTER_RECORD
    assert len(_settle_servers(store, release_id)) == (1 if recorded else 0)  # no scoring without its record
    actions = recovery.recover_at_start(store, deployer_for(store))
    _verified(store)
    if recorded:
        assert any("completed the interrupted deployment" in x for x in actions), actions
        [url] = _ports_scoring(store, release_id)
        assert [(r.event, r.release_id, r.deployment_url) for r in read_rows(store)] == [("release", release_id, url)]
        assert failed_deployments(store, set()) == []
    else:
        assert any("interrupted" in x for x in actions), actions
        assert _ports_scoring(store, release_id) == [] and read_rows(store) == []
        assert [f.release_id for f in failed_deployments(store, set())] == [release_id]  # still deploy failed
        people = people_registry.people_in_force(store, None, False, explicit=False)
        retry_deployment(store, LocalTicketTracker(store), deployer_for(store), people, release_id, "Jane Doe")
        assert len(_ports_scoring(store, release_id)) == 1
    report = audit_verify(store)
    assert report.errors == [], [str(p) for p in report.errors]
