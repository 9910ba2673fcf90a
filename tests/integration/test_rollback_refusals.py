"""Releases and rollbacks with the real local deployer, real stored models and real records.

Two tiny models (different seeds and tree counts, so different sha256) are released one
after the other through ``workflow.deploy_release`` with a tester sign-off and a ``cli``
decision by the demo people of ``conf/people.yaml``. A rollback must bring the earlier
release back, and every refused rollback must leave the release log and the running
endpoints exactly as they were. Every endpoint started here is stopped by a finalizer.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from credit_scorer.adapters.local_deployer import LocalDeployer
from credit_scorer.adapters.tickets import ROLLED_BACK, LocalTicketTracker
from credit_scorer.core.ids import release_key
from credit_scorer.core.ports import Deployment
from credit_scorer.domain.model import TrainedModel
from credit_scorer.records import layout, release_log
from credit_scorer.records import models as records
from credit_scorer.records.models import iso_utc, utc_now
from credit_scorer.records.people import IdentityError, People, load_people
from credit_scorer.records.release_log import ReleaseLogRow
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release import gate, signoffs, workflow

from .conftest import approved_decision, built_candidate, person

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SUBMITTER = "Ada Lovelace"
TESTER = "Quinn Tester"
APPROVER = "Jane Doe"
RUN_A = "a1a1a1a1-0000-4000-8000-000000000001"
RUN_B = "b2b2b2b2-0000-4000-8000-000000000002"

SAMPLE_ROWS = 6000
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Built:
    """A trained model and the release candidate the gate sees for it."""

    model: TrainedModel
    candidate: workflow.ReleaseCandidate


@dataclass
class Released:
    """A store in which release A was deployed, then release B replaced it."""

    store: ComplianceStore
    tracker: LocalTicketTracker
    deployer: LocalDeployer
    people: People
    a: Built
    b: Built
    record_a: records.ApprovalRecord
    record_b: records.ApprovalRecord
    url_a: str
    url_b: str


# ---------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models() -> tuple[Built, Built]:
    """Two different tiny models on a sample of the bundled data, with their real gate inputs."""
    built = [
        Built(*built_candidate(RUN_A, n_estimators=20, sample_rows=SAMPLE_ROWS)),
        Built(*built_candidate(RUN_B, n_estimators=25, seed=7, sample_rows=SAMPLE_ROWS)),
    ]
    a, b = built
    assert a.model.sha256 != b.model.sha256
    return a, b


def _stop_all(deployer: LocalDeployer) -> None:
    for status in deployer.list():
        deployer.stop(status.deployment.release_id)


def _release(
    store: ComplianceStore,
    tracker: LocalTicketTracker,
    deployer: LocalDeployer,
    people: People,
    built: Built,
) -> tuple[records.ApprovalRecord, Deployment]:
    """Open the ticket, sign off as the tester, approve on the CLI as the approver, and deploy."""
    candidate = built.candidate
    tracker.open_ticket(candidate.release_id, candidate.run_id, f"Release {candidate.release_id}", "test release")
    tester = person(store, TESTER)
    signoffs.sign_off(
        store, tracker, people, candidate, TESTER, "Annex IV ok", source="cli", dev_mode=False, person=tester
    )
    decision = approved_decision(store, candidate)
    waivers = gate.validate_decision(decision, candidate.checks, people, SUBMITTER, dev_mode=False)
    record, deployment = workflow.deploy_release(
        store, tracker, deployer, candidate, decision, built.model.to_bytes(), waivers, False, None, False
    )
    assert deployment is not None
    return record, deployment


def _released(root: Path, models: tuple[Built, Built]) -> Iterator[Released]:
    store = ComplianceStore(str(root))
    deployer = LocalDeployer(store.local_path(layout.DEPLOYMENTS_DIR), store=store)
    tracker = LocalTicketTracker(store)
    people = load_people(REPO / "conf" / "people.yaml")
    try:
        record_a, deployment_a = _release(store, tracker, deployer, people, models[0])
        record_b, deployment_b = _release(store, tracker, deployer, people, models[1])
        yield Released(
            store=store,
            tracker=tracker,
            deployer=deployer,
            people=people,
            a=models[0],
            b=models[1],
            record_a=record_a,
            record_b=record_b,
            url_a=deployment_a.url,
            url_b=deployment_b.url,
        )
    finally:
        _stop_all(deployer)


@pytest.fixture
def fresh(tmp_path: Path, models: tuple[Built, Built]) -> Iterator[Released]:
    """A new store with A released then B released (for tests that change what is live)."""
    yield from _released(tmp_path / "compliance", models)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, models: tuple[Built, Built]) -> Iterator[Released]:
    """One store with A then B released, for refusals (each must leave it unchanged, and restores files it alters)."""
    yield from _released(tmp_path_factory.mktemp("shared") / "compliance", models)


def _model_info(url: str) -> dict[str, Any]:
    with NO_PROXY.open(f"{url}/model", timeout=5.0) as response:
        info: dict[str, Any] = json.loads(response.read())
    return info


def _answers(url: str) -> bool:
    try:
        with NO_PROXY.open(f"{url}/health", timeout=2.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _live(deployer: LocalDeployer) -> list[tuple[str, str, int, str, bool]]:
    return [
        (s.deployment.release_id, s.deployment.url, s.deployment.pid, s.deployment.model_sha256, s.alive)
        for s in deployer.list()
    ]


def _log_text(store: ComplianceStore) -> str:
    return store.read_text(release_log.LOG_FILE)


def _model_path(store: ComplianceStore, sha256: str) -> Path:
    return store.local_path(f"{layout.MODELS_DIR}/{sha256}.json")


class _Unchanged:
    """Snapshot of the release log, the running endpoints, the records and the tickets; compare later."""

    def __init__(self, r: Released) -> None:
        self.r = r
        self.log = _log_text(r.store)
        self.live = _live(r.deployer)
        self.approvals = r.store.list(layout.APPROVALS_DIR)
        self.tickets = {p: r.store.read_bytes(p) for p in r.store.list("tickets")}

    def check(self) -> None:
        assert _log_text(self.r.store) == self.log, "a refused rollback changed the release log"
        assert _live(self.r.deployer) == self.live, "a refused rollback changed the running endpoints"
        assert self.r.store.list(layout.APPROVALS_DIR) == self.approvals
        assert {p: self.r.store.read_bytes(p) for p in self.r.store.list("tickets")} == self.tickets
        assert _model_info(self.r.url_b)["model_sha256"] == self.r.b.model.sha256


def _rollback(r: Released, url: str, reason: str = "B misbehaves in production", actor: str = SUBMITTER) -> Any:
    return workflow.rollback(r.store, r.tracker, r.deployer, r.people, url, reason, actor)


# ---------------------------------------------------------------------------
# Release, then roll back
# ---------------------------------------------------------------------------
def test_second_release_replaces_the_first_and_logs_both(fresh: Released) -> None:
    r = fresh
    live = {s.deployment.release_id: s for s in r.deployer.list()}
    assert list(live) == [r.b.candidate.release_id]
    assert live[r.b.candidate.release_id].alive
    assert r.deployer.get(r.a.candidate.release_id) is None
    assert not _answers(r.url_a)
    assert _model_info(r.url_b)["model_sha256"] == r.b.model.sha256

    rows = release_log.read_rows(r.store)
    assert [(row.event, row.release_id, row.sha256, row.deployment_url, row.approval_id, row.by) for row in rows] == [
        ("release", r.a.candidate.release_id, r.a.model.sha256, r.url_a, r.record_a.approval_id, APPROVER),
        ("release", r.b.candidate.release_id, r.b.model.sha256, r.url_b, r.record_b.approval_id, APPROVER),
    ]
    assert r.record_a.deployment_url == r.url_a
    assert r.record_a.tester_signoff is not None and r.record_a.tester_signoff.tester == TESTER
    assert r.record_a.decision_mode == "cli"
    assert r.tracker.get(r.b.candidate.release_id).status == "deployed"


def test_rollback_restores_the_earlier_release_and_marks_the_replaced_one(fresh: Released) -> None:
    r = fresh
    reason = "B declines too many good applicants | incident INC-42"
    row, deployment = _rollback(r, r.url_a, reason)

    assert _model_info(deployment.url)["model_sha256"] == r.a.model.sha256
    assert _model_info(deployment.url)["release_id"] == r.a.candidate.release_id
    assert deployment.url == r.url_a  # served again where it was, when that port is free
    assert [s.deployment.release_id for s in r.deployer.list()] == [r.a.candidate.release_id]
    assert r.deployer.get(r.b.candidate.release_id) is None
    assert not _answers(r.url_b)

    rows = release_log.read_rows(r.store)
    assert [x.event for x in rows] == ["release", "release", "rollback"]
    assert rows[-1] == row
    assert (row.release_id, row.sha256, row.deployment_url, row.by, row.note) == (
        r.a.candidate.release_id,
        r.a.model.sha256,
        deployment.url,
        SUBMITTER,
        reason,
    )
    assert row.approval_id == r.record_a.approval_id

    ticket_b = r.tracker.get(r.b.candidate.release_id)
    assert ROLLED_BACK in ticket_b.labels
    assert ticket_b.status == "rolled back"
    rollback_comments = [c for c in ticket_b.comments if c.kind == "rollback"]
    assert len(rollback_comments) == 1
    assert reason in rollback_comments[0].body
    assert rollback_comments[0].author == SUBMITTER
    ticket_a = r.tracker.get(r.a.candidate.release_id)
    assert ROLLED_BACK not in ticket_a.labels
    assert any(c.kind == "rollback" and reason in c.body for c in ticket_a.comments)


# ---------------------------------------------------------------------------
# Refused rollbacks change nothing
# ---------------------------------------------------------------------------
def test_rollback_to_an_unknown_url_is_refused(shared: Released) -> None:
    before = _Unchanged(shared)
    with pytest.raises(workflow.ReleaseRefused, match=r"no release .* was deployed at http://127\.0\.0\.1:1$"):
        _rollback(shared, "http://127.0.0.1:1")
    before.check()


def test_rollback_with_the_model_file_missing_is_refused(shared: Released) -> None:
    path = _model_path(shared.store, shared.a.model.sha256)
    aside = path.with_name(".aside")
    before = _Unchanged(shared)
    path.rename(aside)
    try:
        with pytest.raises(workflow.ReleaseRefused, match="is missing from the store"):
            _rollback(shared, shared.url_a)
        before.check()
    finally:
        aside.rename(path)


def test_rollback_with_an_altered_model_file_is_refused(shared: Released) -> None:
    path = _model_path(shared.store, shared.a.model.sha256)
    original = path.read_bytes()
    before = _Unchanged(shared)
    path.write_bytes(original + b" ")
    try:
        with pytest.raises(workflow.ReleaseRefused, match="was changed"):
            _rollback(shared, shared.url_a)
        before.check()
    finally:
        path.write_bytes(original)


def _fake_row(r: Released, release_id: str, sha256: str, url: str) -> ReleaseLogRow:
    return ReleaseLogRow(
        date=iso_utc(utc_now()),
        event="release",
        release_id=release_id,
        model_path=f"{layout.MODELS_DIR}/{sha256}.json",
        sha256=sha256,
        deployment_url=url,
        approval_id="approval_1999-01-01T00-00-00",
        by=APPROVER,
    )


def test_rollback_to_a_release_without_an_approval_record_is_refused(shared: Released) -> None:
    url = "http://127.0.0.1:2"
    release_log.append_row(shared.store, _fake_row(shared, "AI-REL-feed0001", shared.a.model.sha256, url))
    before = _Unchanged(shared)
    with pytest.raises(workflow.ReleaseRefused, match="AI-REL-feed0001 has no approval record"):
        _rollback(shared, url)
    before.check()


def test_rollback_to_a_release_approved_for_another_model_is_refused(shared: Released) -> None:
    """The log says release A served model B: A's approval covers model A only."""
    url = "http://127.0.0.1:3"
    release_log.append_row(shared.store, _fake_row(shared, shared.a.candidate.release_id, shared.b.model.sha256, url))
    before = _Unchanged(shared)
    with pytest.raises(workflow.ReleaseRefused, match="has no approval record for model"):
        _rollback(shared, url)
    before.check()


def test_rollback_to_a_rejected_release_is_refused(shared: Released) -> None:
    run_id = "c3c3c3c3-0000-4000-8000-000000000003"
    rejected = shared.a.candidate.model_copy(update={"run_id": run_id, "release_id": release_key(run_id)})
    decision = gate.GateDecision(
        approved=False,
        approver=APPROVER,
        rationale="Risk score too high",
        decision_mode="cli",
        decided_at=iso_utc(utc_now()),
    )
    record = workflow.record_rejection(shared.store, shared.tracker, rejected, decision, [], False)
    assert record.approved is False
    url = "http://127.0.0.1:4"
    release_log.append_row(shared.store, _fake_row(shared, rejected.release_id, shared.a.model.sha256, url))
    before = _Unchanged(shared)
    with pytest.raises(workflow.ReleaseRefused, match=f"{rejected.release_id} has no approval record"):
        _rollback(shared, url)
    before.check()


@pytest.mark.parametrize("reason", ["", "   "])
def test_rollback_without_a_reason_is_refused(shared: Released, reason: str) -> None:
    before = _Unchanged(shared)
    with pytest.raises(workflow.ReleaseRefused, match="needs a reason"):
        _rollback(shared, shared.url_a, reason=reason)
    before.check()


@pytest.mark.parametrize("actor", [TESTER, "Avery Auditor", "Somebody Else"])
def test_rollback_by_someone_neither_submitter_nor_approver_is_refused(shared: Released, actor: str) -> None:
    before = _Unchanged(shared)
    with pytest.raises(IdentityError, match="SoD-1"):
        _rollback(shared, shared.url_a, actor=actor)
    before.check()


def test_a_second_decision_on_a_release_is_refused(shared: Released) -> None:
    release_id = shared.a.candidate.release_id
    before = _Unchanged(shared)
    with pytest.raises(workflow.ReleaseRefused, match=f"{release_id} was already approved by {APPROVER}"):
        workflow.ensure_undecided(shared.store, release_id)
    decision = gate.GateDecision(
        approved=True,
        approver="Sam Compliance",
        rationale="Approve again",
        decision_mode="cli",
        decided_at=iso_utc(utc_now()),
        threshold_override=True,
        override_rationale="again",
        tester_signoff=signoffs.latest_signoff(shared.store, release_id),
    )
    with pytest.raises(workflow.ReleaseRefused, match="one decision per release"):
        workflow.deploy_release(
            shared.store,
            shared.tracker,
            shared.deployer,
            shared.a.candidate,
            decision,
            shared.a.model.to_bytes(),
            [],
            False,
            None,
            False,
        )
    with pytest.raises(workflow.ReleaseRefused, match="one decision per release"):
        workflow.record_rejection(shared.store, shared.tracker, shared.a.candidate, decision, [], False)
    with pytest.raises(workflow.ReleaseRefused, match="already has a decision"):
        signoffs.sign_off(
            shared.store,
            shared.tracker,
            shared.people,
            shared.a.candidate,
            TESTER,
            "late",
            source="cli",
            dev_mode=False,
        )
    before.check()


def test_rollback_to_the_release_already_live_is_refused_and_marks_nothing(fresh: Released) -> None:
    """Regression: this used to label the older release A as ROLLED BACK."""
    r = fresh
    log_before = r.store.read_text(release_log.LOG_FILE)
    with pytest.raises(workflow.ReleaseRefused, match="already live"):
        _rollback(r, r.url_b, reason="re-affirm B after a false alarm")
    assert r.store.read_text(release_log.LOG_FILE) == log_before
    assert _model_info(r.url_b)["model_sha256"] == r.b.model.sha256  # B keeps serving
    ticket_a = r.tracker.get(r.a.candidate.release_id)
    assert ROLLED_BACK not in ticket_a.labels
    assert not [c for c in ticket_a.comments if c.kind == "rollback"]


def test_rollback_to_a_release_added_by_hand_without_ledger_entries_is_refused(fresh: Released) -> None:
    """Red team: an approval file and a release-log row written by hand (no ledger entries) were restored."""
    store, root = fresh.store, Path(fresh.store.root)
    forged = json.loads((root / "approvals" / f"{fresh.record_a.approval_id}.json").read_text())
    forged.update(
        approval_id="approval_2026-12-31T23-59-59", release_id="AI-REL-f0f0f0f0", deployment_url="http://127.0.0.1:5"
    )
    (root / "approvals" / "approval_2026-12-31T23-59-59.json").write_text(json.dumps(forged, indent=2, sort_keys=True))
    row = _fake_row(fresh, "AI-REL-f0f0f0f0", fresh.a.model.sha256, "http://127.0.0.1:5").model_copy(
        update={"approval_id": "approval_2026-12-31T23-59-59"}
    )
    with (root / "model_release_log.md").open("a") as log:
        log.write(row.as_markdown())
    live_before = _live(fresh.deployer)
    with pytest.raises(
        workflow.ReleaseRefused, match=r"no release in the ledger of .* was deployed at http://127\.0\.0\.1:5"
    ):
        _rollback(fresh, "http://127.0.0.1:5")
    # and a row that is in the ledger is not restored from a store that does not verify
    with pytest.raises(workflow.ReleaseRefused, match="the compliance store does not verify"):
        _rollback(fresh, fresh.url_a)
    assert _live(fresh.deployer) == live_before
    assert not any(r.event == "rollback" for r in release_log.read_rows(store))
