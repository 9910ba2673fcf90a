"""A person's decision on a release paused at the gate, built and checked the same way for ``approve`` and the console.

The terminal channel (``release/terminal.py``) and the automated channel (``gate.automated_decision``)
build theirs with the same :func:`~credit_scorer.release.gate.make_decision`; the resumed
``approve_deployment`` step applies :func:`~credit_scorer.release.gate.validate_decision` again.
"""

from __future__ import annotations

from collections.abc import Callable

from credit_scorer.adapters.tickets import TicketTracker
from credit_scorer.records.models import DecisionMode, TesterSignoff, iso_utc, utc_now
from credit_scorer.records.people import People
from credit_scorer.records.people_registry import PeopleInForce
from credit_scorer.records.refusals import RefusedAction
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release.gate import DecisionRequest, GateDecision, check_decider, make_decision, validate_decision
from credit_scorer.release.refusals import refusals_recorded
from credit_scorer.release.signoffs import signoff_from_tracker
from credit_scorer.release.workflow import ReleaseCandidate, ensure_undecided


def prepare_decision(
    store: ComplianceStore,
    tracker: TicketTracker,
    roles: PeopleInForce,
    candidate: ReleaseCandidate,
    request: DecisionRequest,
    mode: DecisionMode,
    dev_mode: bool,
) -> GateDecision:
    """The decision ``request`` makes on ``candidate``, after the gate's rules; raises naming the rule broken.

    Refuses a release already decided. A refusal by the gate's rules is recorded (ledger, ticket); otherwise
    the only thing it may record is a "Tester ✓" typed in the ticket (Jira) that was not yet a sign-off
    record: the decision needs it and names it.
    """
    ensure_undecided(store, candidate.release_id)
    signoff = signoff_from_tracker(
        store, tracker, roles.people, candidate,
        dev_mode=dev_mode, people_version=roles.version, people_source=roles.source,
    )  # fmt: skip
    action: RefusedAction = "approve" if request.approve else "reject"
    with refusals_recorded(
        store, tracker, release_id=candidate.release_id, run_id=candidate.run_id,
        actor=request.approver, action=action, channel=mode,
    ):  # fmt: skip
        decision = make_decision(request, mode, iso_utc(utc_now()), signoff)
        validate_decision(decision, candidate.checks, roles.people, candidate.submitter, dev_mode)
    return decision


def name_check(
    store: ComplianceStore,
    tracker: TicketTracker,
    people: People,
    candidate: ReleaseCandidate,
    current_signoff: Callable[[], TesterSignoff | None],
    dev_mode: bool,
) -> Callable[[str], None]:
    """What the terminal applies to a typed approver name before asking anything else (refusals recorded)."""

    def vet(name: str) -> None:
        with refusals_recorded(
            store, tracker, release_id=candidate.release_id, run_id=candidate.run_id,
            actor=name, action="decide", channel="interactive",
        ):  # fmt: skip
            check_decider(people, candidate.submitter, current_signoff(), name, approving=False, dev_mode=dev_mode)

    return vet


def validate_recorded(
    store: ComplianceStore,
    tracker: TicketTracker,
    decision: GateDecision,
    candidate: ReleaseCandidate,
    people: People,
    dev_mode: bool,
) -> list[str]:
    """:func:`validate_decision` for a decision about to take effect; a refusal is recorded, then raised."""
    action: RefusedAction = "approve" if decision.approved else "reject"
    with refusals_recorded(
        store, tracker, release_id=candidate.release_id, run_id=candidate.run_id,
        actor=decision.approver, action=action, channel=decision.decision_mode,
    ):  # fmt: skip
        return validate_decision(decision, candidate.checks, people, candidate.submitter, dev_mode)
