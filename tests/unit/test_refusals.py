"""Every refusal at the gate is recorded (issue 16, case 5), and the terminal checks the approver before asking.

A refusal is a signed ``refusal`` event in the ledger plus a ``refusal`` comment on the ticket; the
refused act itself writes nothing (no sign-off, no approval record). The terminal asks for the name
first and applies the identity rules to it before the approve/reject question.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from credit_scorer.adapters.tickets import LocalTicketTracker
from credit_scorer.records import ledger, ledger_verify
from credit_scorer.records.models import read_approvals, signoffs_for
from credit_scorer.records.people import IdentityError, People, ReleasePolicy
from credit_scorer.records.people_registry import PeopleInForce
from credit_scorer.records.refusals import refusals_for, rule_of
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release import gate, terminal
from credit_scorer.release.decisions import prepare_decision
from credit_scorer.release.gate import GateInputError
from credit_scorer.release.refusals import RECORDED_NOTE, refusals_recorded
from credit_scorer.release.signoffs import sign_off
from credit_scorer.release.workflow import ReleaseCandidate, save_gate_inputs
from tests.integration.conftest import built_candidate

SUBMITTER, TESTER, APPROVER = "Ada Lovelace", "Quinn Tester", "Jane Doe"
PEOPLE = People(
    people={SUBMITTER: ["submitter"], TESTER: ["tester"], APPROVER: ["approver"]},
    policy=ReleasePolicy(require_tester_signoff=True),
)
RUN_ID = "7f0c3a52-1111-4222-8333-944455556666"


@pytest.fixture(scope="module")
def candidate() -> ReleaseCandidate:
    _model, built = built_candidate(RUN_ID, n_estimators=20)
    return built  # type: ignore[no-any-return]


@pytest.fixture
def store(tmp_path: Path, candidate: ReleaseCandidate) -> Iterator[tuple[ComplianceStore, LocalTicketTracker]]:
    compliance = ComplianceStore(str(tmp_path / "store"))
    tracker = LocalTicketTracker(compliance)
    tracker.open_ticket(candidate.release_id, candidate.run_id, "release", "test")
    save_gate_inputs(compliance, candidate)
    yield compliance, tracker


def _refusal_comments(tracker: LocalTicketTracker, release_id: str) -> list[Any]:
    return [c for c in tracker.get(release_id).comments if c.kind == "refusal"]


# ---------------------------------------------------------------------------
# The recorder
# ---------------------------------------------------------------------------
def test_a_refusal_is_ledgered_commented_and_reraised_saying_so(store: Any, candidate: ReleaseCandidate) -> None:
    compliance, tracker = store
    with (
        pytest.raises(IdentityError) as raised,
        refusals_recorded(
            compliance, tracker, release_id=candidate.release_id, run_id=RUN_ID,
            actor="Mallory", action="approve", channel="cli",
        ),
    ):  # fmt: skip
        raise IdentityError("refused: SoD-1 each actor must hold the role they act in: 'Mallory' is not in the file")
    assert RECORDED_NOTE in str(raised.value)
    [refusal] = refusals_for(compliance, candidate.release_id)
    assert (refusal.actor, refusal.action, refusal.channel, refusal.rule) == ("Mallory", "approve", "cli", "SoD-1")
    assert "'Mallory' is not in the file" in refusal.reason
    [comment] = _refusal_comments(tracker, candidate.release_id)
    assert comment.author == "Mallory" and "SoD-1" in comment.body
    assert ledger_verify.verify(compliance) == []


def test_nested_recorders_record_a_refusal_once(store: Any, candidate: ReleaseCandidate) -> None:
    compliance, tracker = store
    where = {"release_id": candidate.release_id, "run_id": RUN_ID, "actor": "X", "action": "approve"}
    with (
        pytest.raises(GateInputError),
        refusals_recorded(compliance, tracker, channel="console", **where),
        refusals_recorded(compliance, tracker, channel="console", **where),
    ):
        raise GateInputError("an override of failed threshold checks needs its own rationale")
    assert [r.rule for r in refusals_for(compliance, candidate.release_id)] == ["override"]


def test_errors_that_are_not_refusals_are_not_recorded(store: Any, candidate: ReleaseCandidate) -> None:
    compliance, tracker = store
    with (
        pytest.raises(RuntimeError),
        refusals_recorded(
            compliance, tracker, release_id=candidate.release_id, run_id=RUN_ID, actor="X", action="approve",
            channel="cli",
        ),
    ):  # fmt: skip
        raise RuntimeError("disk full")
    assert refusals_for(compliance, candidate.release_id) == []


def test_an_edited_refusal_is_named_by_verify(store: Any, candidate: ReleaseCandidate) -> None:
    compliance, tracker = store
    with pytest.raises(IdentityError), refusals_recorded(
        compliance, tracker, release_id=candidate.release_id, run_id=RUN_ID, actor="Mallory", action="approve",
        channel="cli",
    ):  # fmt: skip
        raise IdentityError("refused: SoD-1 …")
    path = compliance.local_path(ledger.LEDGER_FILE)
    path.write_text(path.read_text().replace("Mallory", "Jane Doe"))
    assert any(p.file == ledger.LEDGER_FILE for p in ledger_verify.verify(compliance))


@pytest.mark.parametrize(
    ("message", "rule"),
    [
        ("refused: SoD-3 an approval needs the tester's sign-off first: none", "SoD-3"),
        ("refused: SoD-1 x is not a tester; SoD-2 x submitted; SoD-1 again", "SoD-1, SoD-2"),
        ("an override of failed threshold checks needs its own rationale", "override"),
        ("a decision needs a non-empty rationale", "decision input"),
    ],
)
def test_the_rule_is_read_from_the_refusal(message: str, rule: str) -> None:
    assert rule_of(message) == rule


# ---------------------------------------------------------------------------
# Where refusals happen: sign-off and decision (CLI and console share these)
# ---------------------------------------------------------------------------
def test_a_refused_sign_off_leaves_only_the_refusal(store: Any, candidate: ReleaseCandidate) -> None:
    compliance, tracker = store
    with pytest.raises(IdentityError, match="SoD-2"):
        sign_off(compliance, tracker, PEOPLE, candidate, SUBMITTER, "", source="cli", dev_mode=False)
    assert signoffs_for(compliance, candidate.release_id) == []
    [refusal] = refusals_for(compliance, candidate.release_id)
    assert (refusal.actor, refusal.action, refusal.rule) == (SUBMITTER, "sign-off", "SoD-1, SoD-2, SIG-1")


def test_an_approval_before_the_sign_off_is_refused_and_recorded(store: Any, candidate: ReleaseCandidate) -> None:
    compliance, tracker = store
    request = gate.DecisionRequest(approve=True, approver=APPROVER, rationale="ok", override=True,
                                   override_rationale="test")  # fmt: skip
    roles = PeopleInForce(people=PEOPLE, version=None, source="test")
    with pytest.raises(IdentityError, match="SoD-3"):
        prepare_decision(compliance, tracker, roles, candidate, request, "cli", dev_mode=False)
    assert read_approvals(compliance) == []
    [refusal] = refusals_for(compliance, candidate.release_id)
    assert (refusal.actor, refusal.action, refusal.channel, refusal.rule) == (APPROVER, "approve", "cli", "SoD-3")
    assert _refusal_comments(tracker, candidate.release_id)


# ---------------------------------------------------------------------------
# The terminal: the name first, checked before anything else is asked
# ---------------------------------------------------------------------------
def _script(*lines: str) -> Callable[[], str]:
    queue = [f"{line}\n" for line in lines]
    return lambda: queue.pop(0) if queue else ""


def _vet_approver(seen: list[str]) -> Callable[[str], None]:
    def vet(name: str) -> None:
        seen.append(name)
        gate.check_decider(PEOPLE, SUBMITTER, None, name, approving=False, dev_mode=False)

    return vet


def _secrets(*typed: str) -> Callable[[str], str]:
    queue = list(typed)
    return lambda prompt: queue.pop(0)


def _unlock_as(seen: list[str]) -> Callable[[str, str], Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from credit_scorer.records.identities import Signer, WrongPassword

    def unlock(name: str, password: str) -> Signer:
        seen.append(password)
        if password != "the right one":
            raise WrongPassword(f"refused: wrong password for {name!r}; nothing was signed")
        return Signer(name, Ed25519PrivateKey.generate())

    return unlock


def test_the_terminal_checks_the_name_before_asking_approve_or_reject(candidate: ReleaseCandidate) -> None:
    out = io.StringIO()
    seen: list[str] = []
    passwords: list[str] = []
    decision, signer = terminal.prompt_decision(
        Console(file=out, width=200), candidate.checks, lambda: None, _vet_approver(seen),
        _unlock_as(passwords), _script("Quinn Tester", "Jane Doe", "n", "Not this quarter"),
        _secrets("wrong one", "the right one"),
    )  # fmt: skip
    text = out.getvalue()
    assert seen == ["Quinn Tester", "Jane Doe"]
    assert text.index("is not an approver") < text.index("Approve this release")
    assert text.count("Your name (approver)") == 2
    assert (decision.approved, decision.approver, decision.decision_mode) == (False, APPROVER, "interactive")
    assert passwords == ["wrong one", "the right one"] and signer is not None and signer.name == APPROVER
    assert text.index("wrong password") < text.index("Approve this release")  # the password, before anything else
    assert "the right one" not in text


def test_after_three_refused_names_the_terminal_stops_without_asking_more(candidate: ReleaseCandidate) -> None:
    out = io.StringIO()
    with pytest.raises(IdentityError, match="SoD-1"):
        terminal.prompt_decision(
            Console(file=out, width=200), candidate.checks, lambda: None, _vet_approver([]),
            _unlock_as([]), _script("Mallory", SUBMITTER, TESTER, "y"), _secrets(),
        )  # fmt: skip
    assert "Approve this release" not in out.getvalue()
    assert out.getvalue().count("Your name (approver)") == terminal.NAME_ATTEMPTS
