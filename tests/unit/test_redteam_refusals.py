"""Red team: refusals at the gate must be recorded whatever the name, and no one's name may be borrowed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from credit_scorer.adapters import jira
from credit_scorer.adapters.tickets import Ticket, typed_signoffs
from credit_scorer.records.people import IdentityError
from credit_scorer.records.refusals import refusals_for
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release.refusals import refusals_recorded

TESTER = "Quinn Tester"


def test_a_refused_name_that_is_not_valid_utf8_is_still_recorded(tmp_path: Path) -> None:
    """`credit-scorer approve RUN --as $'\\xff' …` reaches the gate as '\\udcff' (surrogateescape argv).

    The ledger writes JSON with ensure_ascii=False, so encoding the refusal raised UnicodeEncodeError:
    the refusal was dropped and the person saw a traceback instead of the rule they broke.
    """
    store = ComplianceStore(str(tmp_path / "store"))
    tracker: Any = SimpleNamespace(add_comment=lambda *a: None)
    with (
        pytest.raises(IdentityError),
        refusals_recorded(
            store, tracker, release_id="AI-REL-0000abcd", run_id="r", actor="Mal\udcfflory", action="approve",
            channel="cli",
        ),
    ):  # fmt: skip
        raise IdentityError("refused: SoD-1 each actor must hold the role they act in: 'Mal\\udcfflory' is not in …")
    assert len(refusals_for(store, "AI-REL-0000abcd")) == 1


def _jira_comment(author: str, body: str) -> Any:
    return SimpleNamespace(
        body=body, created="2026-11-27T12:00:00.000+0000", author=SimpleNamespace(name=author, displayName=author)
    )


def test_a_jira_user_cannot_type_a_sign_off_in_the_testers_name() -> None:
    """Anyone who may comment in Jira types ``[note] Quinn Tester: Tester ✓``: the tracker read it as the
    gate's own comment format, so author became "Quinn Tester" and the next decision recorded a sign-off by
    Quinn (source jira) that Quinn never gave."""
    comment = jira._comment(_jira_comment("Mallory", f"[note] {TESTER}: Tester ✓"))
    ticket = Ticket(key="AI-REL-0000abcd", run_id="r", summary="s", description="d", created_at="x", comments=[comment])
    assert typed_signoffs(ticket, [TESTER]) == []


def test_a_jira_display_name_is_not_proof_of_being_the_tester() -> None:
    """A Jira user may set their own display name; "Quinn Tester" typed by account ``mallory`` is not Quinn."""
    comment = jira._comment(
        SimpleNamespace(
            body="Reviewed. Tester ✓",
            created="2026-11-27T12:00:00.000+0000",
            author=SimpleNamespace(name="mallory", displayName=TESTER),
        )
    )
    ticket = Ticket(key="AI-REL-0000abcd", run_id="r", summary="s", description="d", created_at="x", comments=[comment])
    assert typed_signoffs(ticket, [TESTER]) == []
