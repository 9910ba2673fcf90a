"""Record every refusal at the gate, whatever the channel: a ledger event and a ticket comment.

Wrap the code that applies the gate's rules in :func:`refusals_recorded`; an :class:`IdentityError` or
:class:`GateInputError` leaving it is ledgered once (records/refusals.py), commented on the ticket, and
re-raised saying it was recorded. Conflicts (already decided, not waiting) are not refusals of a person.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from credit_scorer.adapters.tickets import TicketTracker
from credit_scorer.records import identities
from credit_scorer.records.identities import Signer
from credit_scorer.records.people import IdentityError
from credit_scorer.records.refusals import RefusedAction, record_refusal
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release.gate import GateInputError
from credit_scorer.release.workflow import comment_with_checkpoint

RECORDED_NOTE = "this refusal is recorded in the ledger and on the ticket"


class RecordedIdentityError(IdentityError):
    """An identity refusal that has been recorded."""


class RecordedGateInputError(GateInputError):
    """A decision-input refusal that has been recorded."""


@contextmanager
def refusals_recorded(
    store: ComplianceStore,
    tracker: TicketTracker,
    *,
    release_id: str,
    run_id: str,
    actor: str,
    action: RefusedAction,
    channel: str,
) -> Iterator[None]:
    """Ledger and comment a refusal raised inside the block, then re-raise it (once, however deeply nested)."""
    try:
        yield
    except (RecordedIdentityError, RecordedGateInputError):
        raise
    except (IdentityError, GateInputError) as exc:
        refusal = record_refusal(
            store, release_id=release_id, run_id=run_id, actor=actor, action=action, channel=channel, reason=str(exc)
        )
        comment_with_checkpoint(
            store,
            tracker,
            release_id,
            refusal.actor or "(no name)",
            "refusal",
            f"Refused {action} by {refusal.actor or '(no name)'} ({channel}, {refusal.rule}): {refusal.reason}",
        )
        recorded = RecordedIdentityError if isinstance(exc, IdentityError) else RecordedGateInputError
        raise recorded(f"{exc}; {RECORDED_NOTE}") from None


def unlock_recorded(
    store: ComplianceStore,
    tracker: TicketTracker,
    *,
    release_id: str,
    run_id: str,
    actor: str,
    action: RefusedAction,
    channel: str,
    password: str,
    dev_mode: bool,
) -> Signer | None:
    """``actor``'s key unlocked by ``password``; a wrong password or missing key is a recorded refusal.

    In dev mode no password means unsigned (None): the rules waive the signature and the record says dev mode.
    """
    if dev_mode and not password:
        return None
    with refusals_recorded(
        store, tracker, release_id=release_id, run_id=run_id, actor=actor, action=action, channel=channel
    ):
        return identities.unlock(store, actor, password)
