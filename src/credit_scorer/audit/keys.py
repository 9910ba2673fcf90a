"""Who may replace the ledger signing key: an approver (AI compliance officer), never anyone else."""

from __future__ import annotations

from credit_scorer.records.ledger import LedgerEntry, rotate_key
from credit_scorer.records.people import IdentityError, People, role_violation
from credit_scorer.records.store import ComplianceStore


def rotate_key_as(store: ComplianceStore, people: People, actor: str, reason: str) -> LedgerEntry:
    """Rotate the store's signing key on ``actor``'s behalf; IdentityError (nothing written) unless an approver."""
    violation = role_violation(people, actor, "approver")
    if violation:
        raise IdentityError(f"refused: {violation}; the ledger key is rotated by an AI compliance officer")
    return rotate_key(store, actor, reason)
