"""A person's decision on a release paused at the gate, built and checked the same way for ``approve`` and the console.

The terminal channel (``release/terminal.py``) and the automated channel (``gate.automated_decision``)
build theirs with the same :func:`~credit_scorer.release.gate.make_decision`; the resumed
``approve_deployment`` step applies :func:`~credit_scorer.release.gate.validate_decision` again.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable, Mapping

from credit_scorer.adapters.tickets import TicketTracker
from credit_scorer.records import identities
from credit_scorer.records.identities import Signer
from credit_scorer.records.models import DecisionMode, TesterSignoff, decision_hash, iso_utc, utc_now
from credit_scorer.records.people import RULE_SIGNATURE, IdentityError, People
from credit_scorer.records.people_registry import PeopleInForce
from credit_scorer.records.refusals import RefusedAction
from credit_scorer.records.signatures import signature_valid
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release.gate import (
    ENV_APPROVER_PASSWORD_FILE,
    ENV_JOB,
    DecisionRequest,
    GateDecision,
    check_decider,
    decision_values,
    make_decision,
    sign_decision,
    validate_decision,
)
from credit_scorer.release.refusals import refusals_recorded, unlock_recorded
from credit_scorer.release.signoffs import signer_from_env, signoff_from_tracker
from credit_scorer.release.terminal import prompt_decision, terminal_console
from credit_scorer.release.workflow import ReleaseCandidate, ensure_undecided


def prepare_decision(
    store: ComplianceStore,
    tracker: TicketTracker,
    roles: PeopleInForce,
    candidate: ReleaseCandidate,
    request: DecisionRequest,
    mode: DecisionMode,
    dev_mode: bool,
    signer: Signer | None = None,
) -> GateDecision:
    """The decision ``request`` makes on ``candidate``, signed by ``signer`` (the approver's unlocked key), after
    the gate's rules; raises naming the rule broken.

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
        if signer is not None:
            decision = signed(decision, candidate, signer)
        validate_decision(decision, candidate.checks, roles.people, candidate.submitter, dev_mode)
        check_signature(store, decision, candidate)
    return decision


def signed(decision: GateDecision, candidate: ReleaseCandidate, signer: Signer) -> GateDecision:
    """The decision signed by ``signer``, who must be its approver."""
    if signer.name != decision.approver:
        raise IdentityError(f"refused: {RULE_SIGNATURE}: {signer.name!r} cannot sign {decision.approver!r}'s decision")
    return sign_decision(decision, candidate.release_id, candidate.run_id, candidate.model_sha256, signer)


def check_signature(store: ComplianceStore, decision: GateDecision, candidate: ReleaseCandidate) -> None:
    """A signature the decision carries is its approver's, with the key the store's ledger holds for them now.

    (An unsigned decision is for the rules to judge: SIG-1, waived in dev mode.) Catches a decision resolved
    into a paused run by hand with a signature that is not the approver's.
    """
    signature = decision.signature
    if signature is None:
        return
    held = identities.active_key(identities.current_keys(store), decision.approver)
    digest = decision_hash(decision_values(decision, candidate.release_id, candidate.run_id, candidate.model_sha256))
    if (
        held is None
        or signature.key_id != held.key_id
        or signature.signer != decision.approver
        or not signature_valid(held.public_key, digest, signature.signature)
    ):
        raise IdentityError(
            f"refused: {RULE_SIGNATURE}: the decision is not signed with {decision.approver!r}'s enrolled key"
        )


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
        waivers = validate_decision(decision, candidate.checks, people, candidate.submitter, dev_mode)
        check_signature(store, decision, candidate)
    return waivers


def terminal_unlock(
    store: ComplianceStore, tracker: TicketTracker, candidate: ReleaseCandidate, dev_mode: bool
) -> Callable[[str, str], Signer | None]:
    """How the terminal unlocks the approver's key with the typed password (refusals recorded).

    In dev mode an empty password leaves the decision unsigned (the record says dev mode).
    """

    def unlock(name: str, password: str) -> Signer | None:
        return unlock_recorded(
            store, tracker, release_id=candidate.release_id, run_id=candidate.run_id, actor=name,
            action="decide", channel="interactive", password=password, dev_mode=dev_mode,
        )  # fmt: skip

    return unlock


def signed_by_env(
    store: ComplianceStore,
    tracker: TicketTracker,
    decision: GateDecision,
    candidate: ReleaseCandidate,
    env: Mapping[str, str],
    dev_mode: bool,
) -> GateDecision:
    """The automated decision signed by ``APPROVER``'s key, unlocked from ``APPROVER_PASSWORD_FILE`` (the job's
    secret), naming the job (``DEPLOY_JOB``, else user@host); unsigned when the variable is unset (SIG-1 judges).
    """
    job = env.get(ENV_JOB, "").strip() or f"{getpass.getuser()}@{socket.gethostname()}"
    decision = decision.model_copy(update={"job": job})
    action: RefusedAction = "approve" if decision.approved else "reject"
    with refusals_recorded(
        store, tracker, release_id=candidate.release_id, run_id=candidate.run_id,
        actor=decision.approver, action=action, channel="automated",
    ):  # fmt: skip
        person = signer_from_env(store, decision.approver, env, ENV_APPROVER_PASSWORD_FILE, dev_mode)
        return signed(decision, candidate, person) if person else decision


def ask_at_terminal(
    store: ComplianceStore,
    tracker: TicketTracker,
    people: People,
    candidate: ReleaseCandidate,
    current_signoff: Callable[[], TesterSignoff | None],
    dev_mode: bool,
) -> GateDecision:
    """The interactive channel: name (checked first), password (unlocks the key), decision; signed."""
    vet = name_check(store, tracker, people, candidate, current_signoff, dev_mode)
    unlock = terminal_unlock(store, tracker, candidate, dev_mode)
    decision, signer = prompt_decision(terminal_console(), candidate.checks, current_signoff, vet, unlock)
    return signed(decision, candidate, signer) if signer else decision
