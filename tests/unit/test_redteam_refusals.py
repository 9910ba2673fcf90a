"""Red team: refusals at the gate must be recorded whatever the name, and no one's name may be borrowed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from credit_scorer.adapters import jira
from credit_scorer.adapters.tickets import LocalTicketTracker, Ticket, typed_signoffs
from credit_scorer.records import identities
from credit_scorer.records.people import IdentityError
from credit_scorer.records.people_registry import PeopleInForce
from credit_scorer.records.refusals import refusals_for
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release import gate
from credit_scorer.release.decisions import prepare_decision
from credit_scorer.release.refusals import refusals_recorded
from credit_scorer.release.signoffs import sign_off
from credit_scorer.release.workflow import save_gate_inputs
from tests.integration.conftest import built_candidate
from tests.unit.test_refusals import PEOPLE, RUN_ID

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


def test_the_cli_refuses_an_override_when_every_check_passed(tmp_path: Path) -> None:
    """`approve --approve --override` on a release whose checks all passed was accepted: the approval record
    then says ``threshold_override: true`` with no override rationale (the console refuses the same request)."""
    _model, built = built_candidate(RUN_ID, n_estimators=20)
    passing = built.checks.model_copy(
        update={
            name: [c.model_copy(update={"passed": True, "status": "pass"}) for c in getattr(built.checks, name)]
            for name in ("checks", "baseline_checks")
        }
    )
    cand = built.model_copy(update={"checks": passing})
    store = ComplianceStore(str(tmp_path / "store"))
    tracker = LocalTicketTracker(store)
    tracker.open_ticket(cand.release_id, cand.run_id, "release", "test")
    save_gate_inputs(store, cand)
    keys = tmp_path / "identities"
    identities.enrol(store, "Quinn Tester", "a password, tests only", by="test", directory=keys)
    tester = identities.unlock(store, "Quinn Tester", "a password, tests only", keys)
    sign_off(store, tracker, PEOPLE, cand, "Quinn Tester", "", source="cli", dev_mode=False, person=tester)
    request = gate.DecisionRequest(approve=True, approver="Jane Doe", rationale="ok", override=True)
    roles = PeopleInForce(people=PEOPLE, version=None, source="test")
    with pytest.raises(gate.GateInputError, match="nothing to override"):
        prepare_decision(store, tracker, roles, cand, request, "cli", dev_mode=False)
