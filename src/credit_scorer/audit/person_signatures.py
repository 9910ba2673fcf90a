"""``audit verify``: each sign-off and decision carries its maker's signature, with the key they held then.

For every sign-off record (made by its ``tester``) and approval record (made by its ``approver``):

- signed: the key must be one the ledger enrolled, *for that person*, before the record's ledger entry
  and not revoked before it, and the signature must verify over the record's hash (records/signatures.py);
  otherwise the record is named: signed by a key never enrolled, by the wrong person, with a revoked key,
  or edited/forged after signing;
- unsigned: an error when its maker held an enrolled key at the time ("signed by nobody": the signature
  was removed, or a channel let them act without it); a warning when they had none (records made before
  people were enrolled) or the record says dev mode, counted once; a "Tester ✓" typed in Jira is a warning
  of its own (the tracker's account attests it, not a personal key).

Sign-off records are signed over their whole JSON (:func:`record_hash`); approval records over the fields the
decision fixed (:func:`decision_hash`), because the approver signs before the record (its id, URL) exists.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from credit_scorer.records.identities import KeyState, active_key, key_history
from credit_scorer.records.layout import APPROVALS_DIR, SIGNOFFS_DIR
from credit_scorer.records.ledger import LedgerEntry, Problem
from credit_scorer.records.models import decision_hash
from credit_scorer.records.signatures import PersonSignature, record_hash, signature_valid
from credit_scorer.records.store import ComplianceStore, StoreError


def check_person_signatures(store: ComplianceStore, found: list[LedgerEntry]) -> list[Problem]:
    """Problems with the people's signatures on sign-offs and decisions (see the module docstring)."""
    keys = key_history(found)
    seq_of = {e.path: e.seq for e in found if e.kind in {"approval", "signoff"}}
    problems: list[Problem] = []
    unsigned: list[str] = []
    for directory, maker_field in ((SIGNOFFS_DIR, "tester"), (APPROVALS_DIR, "approver")):
        for path in store.list(directory, ".json"):
            seq = seq_of.get(path)
            raw = _read(store, path)
            if seq is None or raw is None:
                continue  # the ledger check names files without an entry; the record checks unreadable ones
            maker = raw.get(maker_field)
            if not isinstance(maker, str):
                continue
            digest = decision_hash(raw) if directory == APPROVALS_DIR else record_hash(raw)
            problem = _check_one(path, raw, maker, seq, keys, digest)
            if problem == "unsigned":
                unsigned.append(path)
            elif isinstance(problem, Problem):
                problems.append(problem)
    if unsigned:
        problems.append(
            Problem(
                unsigned[0],
                "signature",
                f"{len(unsigned)} sign-off and decision record(s) carry no person's signature: their makers had no "
                "enrolled signing key then (enrol people with `credit-scorer users enrol`)",
                severity="warning",
            )
        )
    return problems


def _read(store: ComplianceStore, path: str) -> dict[str, object] | None:
    try:
        value = json.loads(store.read_bytes(path))
    except (StoreError, OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _check_one(
    path: str, raw: dict[str, object], maker: str, seq: int, keys: dict[str, KeyState], digest: str
) -> Problem | str | None:
    held = active_key(keys, maker, seq)
    if raw.get("signature") is None:
        if raw.get("source") == "jira":
            return Problem(
                path, "signature",
                f"a \"Tester ✓\" typed in Jira by {maker!r}: attested by the tracker's account, not by a personal "
                "signature",
                severity="warning",
            )  # fmt: skip
        if raw.get("dev_mode") is True:
            return "unsigned"
        if held is not None:
            return Problem(
                path,
                "signature",
                f"signed by nobody: {maker!r} held the enrolled key {held.key_id} when this was recorded, "
                "but the record carries no signature",
            )
        return "unsigned"
    try:
        signature = PersonSignature.model_validate(raw["signature"])
    except ValidationError:
        return Problem(path, "signature", "the signature field is not a person's signature")
    state = keys.get(signature.key_id)
    if state is None:
        return Problem(path, "signature", f"signed with key {signature.key_id}, which the ledger never enrolled")
    if state.name != maker or signature.signer != maker:
        return Problem(
            path,
            "signature",
            f"signed by the wrong person: the record names {maker!r}, the key {state.key_id} is {state.name!r}'s",
        )
    if not state.active_at(seq):
        when = (
            f"revoked at ledger seq {state.revoked_seq}"
            if state.revoked_seq is not None and state.revoked_seq < seq
            else f"enrolled only at ledger seq {state.enrolled_seq}"
        )
        return Problem(path, "signature", f"signed with {maker!r}'s key {state.key_id}, {when}, before this record")
    if not signature_valid(state.public_key, digest, signature.signature):
        return Problem(path, "signature", f"{maker!r}'s signature does not match the record: edited after signing")
    return None
