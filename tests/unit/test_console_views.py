"""How the console labels a release, from its records, run and deployments (no browser needed)."""

from __future__ import annotations

import pytest

from credit_scorer.adapters.tickets import ROLLED_BACK, Ticket
from credit_scorer.apps.console.views import status_of
from credit_scorer.apps.console.web import safe_next as _safe_next
from credit_scorer.records.models import ApprovalRecord


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
