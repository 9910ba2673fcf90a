"""How the console labels a release, from its records, run and deployments (no browser needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from credit_scorer.adapters.tickets import ROLLED_BACK, LocalTicketTracker, Ticket
from credit_scorer.apps.console.views import list_releases, release_status, status_of
from credit_scorer.apps.console.web import safe_next as _safe_next
from credit_scorer.core.ports import DeploymentError
from credit_scorer.records import people_registry
from credit_scorer.records.models import ApprovalRecord
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release.deploy_retry import retry_deployment
from tests import audit_builders as build
from tests.memory_deployer import MemoryDeployer

PEOPLE = Path(__file__).resolve().parents[2] / "conf" / "people.yaml"


def _record(approved: bool, url: str | None = "http://127.0.0.1:9000", **extra: object) -> ApprovalRecord:
    return ApprovalRecord.model_construct(approved=approved, deployment_url=url, refusal_reason=None, **extra)


TICKET = Ticket(key="AI-REL-0000abcd", run_id="r", summary="s", description="d", created_at="2026-01-01T00:00:00Z")
ROLLED = TICKET.model_copy(update={"labels": [ROLLED_BACK]})


@pytest.mark.parametrize(
    ("decisions", "ticket", "run_status", "condition", "live", "expected"),
    [
        ([], TICKET, "paused", "pending", set(), "waiting"),
        ([], TICKET, "paused", "resolved", set(), "resuming"),  # decided, resume not started yet
        ([], TICKET, "running", "resolved", set(), "resuming"),
        ([], TICKET, "running", None, set(), "running"),  # not at the gate yet
        ([], TICKET, "failed", "resolved", set(), "failed"),
        ([_record(True)], TICKET, "completed", "resolved", {"AI-REL-0000abcd"}, "live"),
        ([_record(True)], TICKET, "completed", "resolved", set(), "deployed"),
        ([_record(True)], ROLLED, "completed", "resolved", set(), "rolled-back"),
        ([_record(True)], ROLLED, "completed", "resolved", {"AI-REL-0000abcd"}, "live"),  # restored later
        ([_record(True, None, deployment_error="port busy")], TICKET, "failed", "resolved", set(), "deploy-failed"),
        ([_record(False, None)], TICKET, "failed", "resolved", set(), "rejected"),
        (
            [ApprovalRecord.model_construct(approved=False, deployment_url=None, refusal_reason="automated")],
            TICKET,
            "failed",
            None,
            set(),
            "refused",
        ),
    ],
)
def test_release_status(
    decisions: list[ApprovalRecord],
    ticket: Ticket,
    run_status: str,
    condition: str | None,
    live: set[str],
    expected: str,
) -> None:
    assert status_of(decisions, ticket, run_status, condition, live, "AI-REL-0000abcd") == expected


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/releases/AI-REL-0000abcd", "/releases/AI-REL-0000abcd"),
        ("https://evil.example/", "/releases"),
        ("//evil.example/", "/releases"),
        ("/\\evil.example", "/releases"),
        ("", "/releases"),
    ],
)
def test_sign_in_only_redirects_within_the_console(target: str, expected: str) -> None:
    assert _safe_next(target) == expected


def test_a_failed_deployment_shows_its_reason_until_a_retry_puts_it_live(tmp_path: Path) -> None:
    """The releases page and the release's status say "deploy failed" with the last attempt's reason."""
    store = ComplianceStore(str(tmp_path / "compliance"))
    people = people_registry.people_in_force(store, PEOPLE, False, explicit=False)
    approval = build.failed_deployment(store)
    tracker, release_id = LocalTicketTracker(store), approval.release_id

    def shown(deployer: MemoryDeployer) -> tuple[str, str, str]:
        _, [row] = list_releases(store, tracker, deployer)
        assert release_status(store, tracker, deployer, release_id).row == row
        return row.status, row.deploy_error, row.deployment_url

    assert shown(MemoryDeployer()) == ("deploy-failed", build.PORT_TAKEN, "")
    with pytest.raises(DeploymentError):
        retry_deployment(store, tracker, MemoryDeployer(fail="disk full"), people, release_id, "Jane Doe")
    assert shown(MemoryDeployer()) == ("deploy-failed", "disk full", "")
    deployer = MemoryDeployer()
    _, deployment = retry_deployment(store, tracker, deployer, people, release_id, "Jane Doe")
    assert shown(deployer) == ("live", "", deployment.url)
    assert [r.deployment_error for r in release_status(store, tracker, deployer, release_id).retries] == [
        "disk full",
        None,
    ]
    deployer.stop(release_id)
    assert shown(deployer) == ("deployed", "", deployment.url)
