"""Release tickets (SOP §1 step 1: "open Jira ticket AI-REL-<run-id>").

The gate talks to a :class:`TicketTracker`; the local tracker keeps each ticket as JSON
in the compliance store (``tickets/AI-REL-<id>.json``), every version of it ledgered (kind
``ticket``), so an edited timeline is caught by ``audit verify``. A Jira tracker plugs in behind
the same protocol. Ticket updates never block a decision: callers record first, then
update the ticket, and report a failed update instead of losing the decision.
"""

from __future__ import annotations

import json
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from credit_scorer.records import ledger
from credit_scorer.records.layout import TICKETS_DIR
from credit_scorer.records.models import iso_utc, utc_now
from credit_scorer.records.store import ComplianceStore

ROLLED_BACK = "ROLLED BACK"

CommentKind = Literal["note", "signoff", "decision", "deployment", "rollback", "refusal"]
TicketStatus = Literal["open", "approved", "rejected", "deployed", "deploy failed", "rolled back"]
"""What the gate sets a ticket to (Jira: the workflow's transition of that name, else a comment)."""


class TicketComment(BaseModel):
    """One entry of a ticket's timeline."""

    model_config = ConfigDict(frozen=True)

    at: str
    author: str
    kind: CommentKind
    body: str


class Ticket(BaseModel):
    """A release ticket and its timeline."""

    key: str
    run_id: str
    summary: str
    description: str
    created_at: str
    status: str = "open"
    labels: list[str] = Field(default_factory=list)
    comments: list[TicketComment] = Field(default_factory=list)


class TicketTracker(Protocol):
    """What the release gate needs from a ticket system."""

    def open_ticket(self, key: str, run_id: str, summary: str, description: str) -> Ticket:
        """Create the ticket, or return it unchanged if it exists (idempotent)."""
        ...

    def add_comment(self, key: str, author: str, kind: CommentKind, body: str) -> None:
        """Append a comment to the ticket's timeline."""
        ...

    def add_label(self, key: str, label: str) -> None:
        """Add a label (e.g. "ROLLED BACK") once."""
        ...

    def set_status(self, key: str, status: TicketStatus) -> None:
        """Set the ticket status (open, approved, rejected, deployed, deploy failed, rolled back)."""
        ...

    def get(self, key: str) -> Ticket:
        """The ticket with its timeline."""
        ...


class LocalTicketTracker:
    """Tickets as JSON files in the compliance store."""

    def __init__(self, store: ComplianceStore) -> None:
        self.store = store

    def _path(self, key: str) -> str:
        return f"{TICKETS_DIR}/{key}.json"

    def _save(self, ticket: Ticket) -> None:
        data = json.dumps(ticket.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
        ledger.commit(self.store, "ticket", self._path(ticket.key), data.encode("utf-8"))

    def get(self, key: str) -> Ticket:
        """The ticket with its timeline; StoreError when there is none."""
        return Ticket.model_validate_json(self.store.read_bytes(self._path(key)))

    def exists(self, key: str) -> bool:
        """Whether a ticket with that key exists."""
        return self.store.exists(self._path(key))

    def open_ticket(self, key: str, run_id: str, summary: str, description: str) -> Ticket:
        """Create the ticket, or return the existing one."""
        with self.store.lock(f"ticket-{key}"):
            if self.exists(key):
                return self.get(key)
            ticket = Ticket(
                key=key,
                run_id=run_id,
                summary=summary,
                description=description,
                created_at=iso_utc(utc_now()),
            )
            self._save(ticket)
            return ticket

    def add_comment(self, key: str, author: str, kind: CommentKind, body: str) -> None:
        """Append a comment."""
        with self.store.lock(f"ticket-{key}"):
            ticket = self.get(key)
            ticket.comments.append(TicketComment(at=iso_utc(utc_now()), author=author, kind=kind, body=body))
            self._save(ticket)

    def add_label(self, key: str, label: str) -> None:
        """Add a label once."""
        with self.store.lock(f"ticket-{key}"):
            ticket = self.get(key)
            if label not in ticket.labels:
                ticket.labels.append(label)
                self._save(ticket)

    def set_status(self, key: str, status: TicketStatus) -> None:
        """Set the status."""
        with self.store.lock(f"ticket-{key}"):
            ticket = self.get(key)
            ticket.status = status
            self._save(ticket)


SIGNOFF_MARK = "Tester ✓"


def typed_signoffs(ticket: Ticket, testers: list[str]) -> list[TicketComment]:
    """Comments people typed into the ticket (e.g. in Jira) saying "Tester ✓", by a tester, oldest first.

    The gate's own comments have their own kinds (``signoff``, ``decision`` …), so only
    notes count; the local tracker has no typed comments, so it never finds one.
    """
    return [c for c in ticket.comments if c.kind == "note" and SIGNOFF_MARK in c.body and c.author in testers]
