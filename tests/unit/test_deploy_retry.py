"""Retrying a failed deployment (``credit-scorer deploy RELEASE --as NAME``): real records, an in-memory deployer.

An approved release whose endpoint could not be started has an approval record with ``deployment_error`` and
no URL. A retry by an approver puts the approved, unchanged model live through the release protocol and leaves
its own ledgered record; every refusal names the fix and writes nothing.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from credit_scorer.adapters.tickets import LocalTicketTracker
from credit_scorer.apps.cli.main import app
from credit_scorer.audit.spot_check import spot_check
from credit_scorer.audit.verify import audit_verify
from credit_scorer.core.ports import Deployment
from credit_scorer.records import ledger, people_registry
from credit_scorer.records import models as records
from credit_scorer.records.deploy_retries import RETRY_ROW_NOTE, DeployRetryRecord, write_retry
from credit_scorer.records.layout import DEPLOY_RETRIES_DIR
from credit_scorer.records.people import IdentityError
from credit_scorer.records.release_log import ReleaseLogRow, append_row, read_rows
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release import workflow
from credit_scorer.release.deploy_retry import NotRetryable, failed_deployments, retry_deployment
from credit_scorer.release.go_live import NotStarted
from tests import audit_builders as build
from tests.memory_deployer import MemoryDeployer

REPO = Path(__file__).resolve().parents[2]
PEOPLE = REPO / "conf" / "people.yaml"
APPROVER = "Jane Doe"
PORT_TAKEN = build.PORT_TAKEN


@pytest.fixture
def store(tmp_path: Path) -> ComplianceStore:
    return ComplianceStore(str(tmp_path / "compliance"))


@pytest.fixture
def people(store: ComplianceStore) -> people_registry.PeopleInForce:
    """conf/people.yaml, adopted as the store's people registry (version 1)."""
    return people_registry.people_in_force(store, PEOPLE, False, explicit=False)


def retry(
    store: ComplianceStore,
    deployer: MemoryDeployer,
    people: people_registry.PeopleInForce,
    release_id: str,
    actor: str = APPROVER,
) -> tuple[DeployRetryRecord, Deployment]:
    return retry_deployment(store, LocalTicketTracker(store), deployer, people, release_id, actor)


def _ledger_bytes(store: ComplianceStore) -> bytes:
    return store.read_bytes(ledger.LEDGER_FILE) if store.exists(ledger.LEDGER_FILE) else b""


# ---------------------------------------------------------------------------
# What a retry does
# ---------------------------------------------------------------------------
def test_a_failed_deployment_goes_live_on_retry_without_a_new_decision(
    store: ComplianceStore, people: people_registry.PeopleInForce
) -> None:
    approval = build.failed_deployment(store)
    approval_file = store.read_bytes(f"approvals/{approval.approval_id}.json")
    assert [f.reason for f in failed_deployments(store, set())] == [PORT_TAKEN]
    deployer = MemoryDeployer()

    record, deployment = retry(store, deployer, people, approval.release_id)

    assert (record.approval_id, record.retried_by, record.retried_after) == (approval.approval_id, APPROVER, PORT_TAKEN)
    assert (record.deployment_url, record.deployment_error) == (deployment.url, None)
    assert (record.model_sha256, record.people_version) == (approval.model_sha256, 1)
    assert deployer.live[approval.release_id].active
    [row] = read_rows(store)
    assert (row.event, row.release_id, row.approval_id, row.deployment_url, row.by, row.note) == (
        "release",
        approval.release_id,
        approval.approval_id,
        deployment.url,
        APPROVER,
        RETRY_ROW_NOTE,
    )
    entry = next(e for e in ledger.entries(store) if e.path == f"{DEPLOY_RETRIES_DIR}/{record.retry_id}.json")
    assert (entry.kind, entry.activates is not None) == ("deploy_retry", True)  # its ledger entry activates it
    assert store.read_bytes(f"approvals/{approval.approval_id}.json") == approval_file  # written once
    assert len(records.read_approvals(store)) == 1
    ticket = LocalTicketTracker(store).get(approval.release_id)
    assert ticket.status == "deployed"
    assert f"Deployed at {deployment.url}" in ticket.comments[-1].body and record.retry_id in ticket.comments[-1].body
    assert failed_deployments(store, set()) == []
    report = audit_verify(store)
    assert report.errors == [], [str(p) for p in report.errors]


def test_a_retry_that_fails_again_is_recorded_and_the_release_stays_deploy_failed(
    store: ComplianceStore, people: people_registry.PeopleInForce
) -> None:
    approval = build.failed_deployment(store)

    disk_full = "the scoring server exited: no space left on device"
    with pytest.raises(NotStarted, match=f"credit-scorer deploy {approval.release_id} --as NAME") as failed:
        retry(store, MemoryDeployer(fail=disk_full), people, approval.release_id)

    [record] = [DeployRetryRecord.model_validate_json(store.read_bytes(p)) for p in store.list(DEPLOY_RETRIES_DIR)]
    assert failed.value.record_id == record.retry_id
    assert (record.deployment_url, record.deployment_error) == (None, disk_full)
    [state] = failed_deployments(store, set())
    assert (state.reason, state.record_id, state.by) == (record.deployment_error, record.retry_id, APPROVER)
    outcomes = [e.event() for e in ledger.entries(store) if e.kind == "outcome"]
    assert [o["status"] for o in outcomes] == ["failed"]
    ticket = LocalTicketTracker(store).get(approval.release_id)
    assert ticket.status == "deploy failed"
    assert "no space left on device" in ticket.comments[-1].body
    assert read_rows(store) == []
    assert audit_verify(store).errors == []

    again, deployment = retry(store, MemoryDeployer(), people, approval.release_id)  # the cause fixed: it goes live
    assert again.deployment_url == deployment.url and again.retried_after == record.deployment_error
    assert failed_deployments(store, set()) == [] and audit_verify(store).errors == []


# ---------------------------------------------------------------------------
# Refusals: each names the fix and writes nothing
# ---------------------------------------------------------------------------
def test_refusals_name_the_fix_and_write_nothing(store: ComplianceStore, people: people_registry.PeopleInForce) -> None:
    failed = build.failed_deployment(store, 1)
    rejected = build.failed_deployment(store, 2, approved=False)
    deployer = MemoryDeployer()
    cases: list[tuple[str, str, type[Exception], str]] = [
        ("AI-REL-0000abcd", APPROVER, NotRetryable, "has no approval in the ledger"),
        (rejected.release_id, APPROVER, NotRetryable, "was rejected by Jane Doe"),
        (failed.release_id, "Quinn Tester", IdentityError, "'Quinn Tester' is not an approver"),
        (failed.release_id, "Mallory", IdentityError, "'Mallory' is not in the people/roles file"),
        ("AI-REL-../../x", APPROVER, workflow.ReleaseRefused, "is not a release id"),
        ("ai-rel-00000001", APPROVER, workflow.ReleaseRefused, "is not a release id"),
    ]
    for release_id, actor, error, message in cases:
        before = _ledger_bytes(store)
        with pytest.raises(error, match=message):
            retry(store, deployer, people, release_id, actor)
        assert _ledger_bytes(store) == before, release_id
        assert deployer.started == 0 and not store.exists(DEPLOY_RETRIES_DIR)


def test_a_live_release_is_not_retried_and_one_that_went_live_is_rolled_back_instead(
    store: ComplianceStore, people: people_registry.PeopleInForce
) -> None:
    approval = build.failed_deployment(store)
    deployer = MemoryDeployer()
    _, deployment = retry(store, deployer, people, approval.release_id)
    before = _ledger_bytes(store)
    with pytest.raises(NotRetryable, match=f"is already live at {deployment.url}"):
        retry(store, deployer, people, approval.release_id, "Sam Compliance")
    deployer.stop(approval.release_id)
    with pytest.raises(NotRetryable, match=f"roll back with `credit-scorer redeploy --url {deployment.url}"):
        retry(store, deployer, people, approval.release_id, "Sam Compliance")
    assert _ledger_bytes(store) == before and deployer.started == 1


def test_a_changed_model_file_is_not_deployed(store: ComplianceStore, people: people_registry.PeopleInForce) -> None:
    approval = build.failed_deployment(store)
    model = store.local_path(f"models/{approval.model_sha256}.json")
    model.write_bytes(model.read_bytes().replace(b'"trees": 1', b'"trees": 9'))
    before = _ledger_bytes(store)
    deployer = MemoryDeployer()
    with pytest.raises(workflow.ReleaseRefused, match=f"models/{approval.model_sha256}.json was changed: its sha256"):
        retry(store, deployer, people, approval.release_id)
    model.unlink()
    with pytest.raises(workflow.ReleaseRefused, match="is missing from the store"):
        retry(store, deployer, people, approval.release_id)
    assert _ledger_bytes(store) == before and deployer.started == 0


def test_the_submitter_does_not_retry_their_own_release(store: ComplianceStore, tmp_path: Path) -> None:
    both = tmp_path / "people.yaml"
    both.write_text(PEOPLE.read_text().replace("Sam Compliance: [approver]", "Sam Compliance: [submitter, approver]"))
    roles = people_registry.people_in_force(store, both, False, explicit=False)
    approval = build.failed_deployment(store, submitter="Sam Compliance")
    with pytest.raises(IdentityError, match="'Sam Compliance' submitted AI-REL-00000001"):
        retry(store, MemoryDeployer(), roles, approval.release_id, "Sam Compliance")


def test_the_cli_refuses_with_exit_2_and_prints_names_as_text(store: ComplianceStore) -> None:
    env = {"CREDIT_SCORER_PEOPLE": str(PEOPLE)}
    runner = CliRunner()
    done = runner.invoke(app, ["deploy", "AI-REL-[red]x[/]", "--as", APPROVER, "--store", store.root], env=env)
    assert done.exit_code == 2
    assert "'AI-REL-[red]x[/]' is not a release id" in " ".join(done.output.split())
    done = runner.invoke(app, ["deploy", "AI-REL-0000abcd", "--as", "[bold]Eve[/]", "--store", store.root], env=env)
    assert done.exit_code == 2
    assert "'[bold]Eve[/]' is not in the people/roles file" in " ".join(done.output.split())
    assert not store.exists(DEPLOY_RETRIES_DIR) and not store.exists(ledger.LEDGER_FILE)


# ---------------------------------------------------------------------------
# audit verify and the spot check read the retry records
# ---------------------------------------------------------------------------
def forged_retry(approval: records.ApprovalRecord, **fields: object) -> dict[str, object]:
    """Fields of a retry record of ``approval`` written by hand (then ledgered as the product would)."""
    return {
        "release_id": approval.release_id,
        "approval_id": approval.approval_id,
        "model_sha256": approval.model_sha256,
        "model_path": approval.model_path,
        "retried_after": PORT_TAKEN,
        **fields,
    }


def stray_row(store: ComplianceStore, approval: records.ApprovalRecord, url: str) -> None:
    """A ledgered release-log row deploying ``approval`` at a URL no record names."""
    append_row(
        store,
        ReleaseLogRow(
            date=build.stamp(build.BASE_TIME + timedelta(days=1)),
            event="release",
            release_id=approval.release_id,
            model_path=approval.model_path or "",
            sha256=approval.model_sha256,
            deployment_url=url,
            approval_id=approval.approval_id,
            by=APPROVER,
        ),
    )


def test_audit_verify_checks_what_a_retry_record_claims(
    store: ComplianceStore, people: people_registry.PeopleInForce
) -> None:
    live = build.release(store, 1, people_version=1)  # went live with its approval: nothing to retry
    failed = build.failed_deployment(store, 2)
    not_an_approver = forged_retry(
        live, retried_by="Quinn Tester", deployment_url="http://127.0.0.1:9999", people_version=1
    )
    forged = write_retry(store, not_an_approver, build.BASE_TIME + timedelta(days=1))
    stray_row(store, failed, "http://127.0.0.1:9998")
    problems = {(p.file, p.field): p.message for p in audit_verify(store).errors}
    path = f"{DEPLOY_RETRIES_DIR}/{forged.retry_id}.json"
    assert "nothing to retry" in problems[(path, "approval_id")]
    assert "'Quinn Tester' is not an approver" in problems[(path, "retried_by")]
    [row_problem] = [m for (f, field), m in problems.items() if f == "model_release_log.md"]
    assert "http://127.0.0.1:9998 is neither the deployment_url" in row_problem
    assert len(problems) == 3, problems


def test_the_spot_check_finds_a_release_row_no_retry_vouches_for_and_a_retry_by_the_submitter(
    store: ComplianceStore, people: people_registry.PeopleInForce
) -> None:
    ok = build.failed_deployment(store, 1)
    retry(store, MemoryDeployer(), people, ok.release_id)
    bad = build.failed_deployment(store, 2)
    by_submitter = forged_retry(bad, retried_by=build.SUBMITTER, deployment_url=None, deployment_error="still taken")
    write_retry(store, by_submitter, build.BASE_TIME + timedelta(days=1))
    stray_row(store, bad, "http://127.0.0.1:9998")
    report = spot_check(store, sample=10, seed=1, quarter="2026Q4")
    found = {(f.approval_id, f.check, f.field) for f in report.findings}
    assert found == {
        (bad.approval_id, "separation of duties", "submitter"),
        (bad.approval_id, "deployed = approved", "deployment_url"),
    }, report.findings
    assert json.loads(store.read_bytes(f"approvals/{ok.approval_id}.json"))["deployment_url"] is None


def test_deployments_lists_a_failed_deployment_with_its_reason_as_text(
    store: ComplianceStore, people: people_registry.PeopleInForce
) -> None:
    approval = build.failed_deployment(store)
    with pytest.raises(NotStarted):
        retry(store, MemoryDeployer(fail="[bold red]disk[/] full"), people, approval.release_id)
    env = {"CREDIT_SCORER_PEOPLE": str(PEOPLE), "COLUMNS": "400"}
    done = CliRunner().invoke(app, ["deployments", "--store", store.root], env=env)
    assert done.exit_code == 0, done.output
    [line] = [line for line in done.output.splitlines() if approval.release_id in line and "deploy failed:" in line]
    assert "deploy failed: [bold red]disk[/] full (retry_AI-REL-00000001_" in line and f"by {APPROVER})" in line
    assert "credit-scorer deploy RELEASE --as NAME" in done.output


def test_a_second_decision_after_a_failed_deployment_is_refused_naming_the_retry(store: ComplianceStore) -> None:
    approval = build.failed_deployment(store)
    with pytest.raises(workflow.AlreadyDecided, match=f"`credit-scorer deploy {approval.release_id} --as NAME`"):
        workflow.ensure_undecided(store, approval.release_id)
