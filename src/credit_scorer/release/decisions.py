"""A person's decision on a release paused at the gate, built and checked the same way for ``approve`` and the console.

The terminal channel (``release/terminal.py``) and the automated channel (``gate.automated_decision``)
build theirs with the same :func:`~credit_scorer.release.gate.make_decision`; the resumed
``approve_deployment`` step applies :func:`~credit_scorer.release.gate.validate_decision` again.
"""

from __future__ import annotations

from credit_scorer.adapters.tickets import TicketTracker
from credit_scorer.records.models import DecisionMode, iso_utc, utc_now
from credit_scorer.records.people_registry import PeopleInForce
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release.gate import DecisionRequest, GateDecision, make_decision, validate_decision
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

    Refuses a release already decided. The only thing it may record is a "Tester ✓" typed in the
    ticket (Jira) that was not yet a sign-off record: the decision needs it and names it.
    """
    ensure_undecided(store, candidate.release_id)
    signoff = signoff_from_tracker(
        store, tracker, roles.people, candidate,
        dev_mode=dev_mode, people_version=roles.version, people_source=roles.source,
    )  # fmt: skip
    decision = make_decision(request, mode, iso_utc(utc_now()), signoff)
    validate_decision(decision, candidate.checks, roles.people, candidate.submitter, dev_mode)
    return decision
