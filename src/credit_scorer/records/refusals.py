"""Refusals at the release gate: who was refused, when, at which channel, under which rule.

A refused sign-off or decision changes nothing about the release, but it is evidence (someone without
the role tried to approve; an approver tried to approve before the tester signed off). Each refusal is
an inline ``refusal`` event in the signed ledger, so it can be neither dropped nor edited afterwards;
:func:`refusals_for` reads a release's refusals back for the console, ``show`` and the auditor.
"""

from __future__ import annotations

import re
import secrets
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from credit_scorer.records import ledger
from credit_scorer.records.store import ComplianceStore

RefusedAction = Literal["sign-off", "approve", "reject", "decide"]
"""``decide``: a name refused at the terminal before the approver said approve or reject."""

_RULE = re.compile(r"\b((?:SoD|SIG)-[0-9]+)\b")
MAX_TEXT = 2000
"""Longest actor/reason kept (characters); a hostile name cannot bloat the ledger."""


class Refusal(BaseModel):
    """One refused sign-off or decision (the ``row`` of its ledger event)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    release_id: str
    run_id: str
    actor: str
    action: RefusedAction
    channel: str  # interactive, automated, cli, console (decisions); cli, console, env, jira (sign-offs)
    rule: str
    reason: str
    at: str


def _storable(text: str) -> str:
    """``text`` cut to :data:`MAX_TEXT`, with what UTF-8 cannot hold (lone surrogates from argv/env bytes) escaped."""
    return text[:MAX_TEXT].encode("utf-8", "backslashreplace").decode("utf-8")


def rule_of(message: str) -> str:
    """The rules a refusal message names (``SoD-1, SoD-2``), else the gate's input rule it broke."""
    found = list(dict.fromkeys(_RULE.findall(message)))
    if found:
        return ", ".join(found)
    if "override" in message:
        return "override"
    if "password" in message:
        return "password"
    if "signing key" in message or "signing identity" in message:
        return "identity"
    return "decision input"


def record_refusal(
    store: ComplianceStore,
    *,
    release_id: str,
    run_id: str,
    actor: str,
    action: RefusedAction,
    channel: str,
    reason: str,
) -> Refusal:
    """Ledger one refusal (signed, append-only) and return it."""
    refusal = Refusal(
        release_id=release_id,
        run_id=run_id,
        actor=_storable(actor),
        action=action,
        channel=channel,
        rule=rule_of(reason),
        reason=_storable(reason),
        at=ledger.now_utc(),
    )
    ledger.append_event(store, "refusal", f"{release_id}:{secrets.token_hex(6)}", refusal.model_dump())
    return refusal


def refusals_for(store: ComplianceStore, release_id: str) -> list[Refusal]:
    """A release's refusals, oldest first (from the ledger; unreadable events are skipped: verify names them)."""
    found: list[Refusal] = []
    for entry in ledger.entries(store):
        if entry.kind != "refusal" or not entry.path.startswith(f"refusal:{release_id}:"):
            continue
        try:
            found.append(Refusal.model_validate(entry.event()))
        except ValidationError:
            continue
    return found
