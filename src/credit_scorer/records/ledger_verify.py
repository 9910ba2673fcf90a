"""Verify a compliance store against its ledger: every problem named with its file and field.

Checked, in order:

1. **The chain**: each line a canonical entry; ``seq`` 1, 2, 3 …; each ``prev_hash`` the previous
   ``entry_hash``; each ``entry_hash`` recomputed; each inline ``row`` hashed as recorded.
2. **The keys**: every entry signed by the key in force — the key of the first entry, then each key a
   ``key_rotation`` entry (signed by the key before it) hands over to; ``ledger/public_key.pem`` is the key in
   force at the end. Against the trust anchor outside the store (:mod:`credit_scorer.records.anchor`): the
   first key must be a pinned one (else the ledger was re-signed), the first entry must be the pinned
   ``ledger_id`` (else the ledger was replaced), and the ledger must reach the witnessed checkpoint with
   the same head (else it was cut back or rewritten). A store without an anchor on this machine gets a
   warning: re-signing could not be told from the real thing here.
3. **Checkpoints** given by the caller (``audit verify --checkpoint FILE``): signed by a key of the chain,
   and extended by today's ledger.
4. **Files**: every ledgered file present with its sha256; mutable state files (tickets, the deployment
   registry) equal to their last ledgered version (or absent after a ledgered removal); the release log equal
   to its header plus the ledgered rows; and every file the ledger covers (:func:`ledger.kind_for_path`) has
   an entry.
5. **Interruptions**: a write or a release operation that a crash interrupted is a *warning* (it was
   recorded in the ledger as such, or will be by the next command), never an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from credit_scorer.records import anchor
from credit_scorer.records.ledger import (
    GENESIS_HASH,
    IN_PROGRESS_FILE,
    KEYS_DIR,
    LEDGER_FILE,
    LEDGERED_DIRS,
    PENDING_PREFIX,
    PUBLIC_KEY_FILE,
    RECORD_KINDS,
    REMOVED_ROW,
    ROW_KINDS,
    STATE_KINDS,
    Checkpoint,
    LedgerEntry,
    Problem,
    entry_hash,
    fingerprint_of,
    key_id_of,
    kind_for_path,
    parse_ledger,
    parse_public_pem,
    row_number,
    sha256_hex,
    signature_valid,
    store_anchor_key,
)
from credit_scorer.records.release_log import HEADER, LEGACY_HEADER, LOG_FILE, parse_rows, row_lines
from credit_scorer.records.store import ComplianceStore, StoreError


@dataclass(frozen=True)
class KeyChain:
    """The keys that signed a ledger, in order, and the one in force at its end."""

    keys: dict[str, Ed25519PublicKey]
    first_key_id: str | None
    final_key_id: str | None


def warning(file: str, field: str, message: str) -> Problem:
    """A problem that does not fail verification."""
    return Problem(file, field, message, "warning")


def verify(store: ComplianceStore, checkpoints: Iterable[Checkpoint] = ()) -> list[Problem]:
    """Every problem with the store's ledger and the files it covers (warnings included)."""
    problems, _ = verify_with_entries(store, checkpoints)
    return problems


def errors(problems: Iterable[Problem]) -> list[Problem]:
    """The problems that fail verification."""
    return [p for p in problems if p.severity == "error"]


def verify_with_entries(
    store: ComplianceStore, checkpoints: Iterable[Checkpoint] = ()
) -> tuple[list[Problem], list[LedgerEntry]]:
    """:func:`verify`, also returning the entries that parsed (for the audit)."""
    data = store.read_bytes(LEDGER_FILE) if store.exists(LEDGER_FILE) else b""
    found, problems = parse_ledger(data)
    problems += check_chain(found)
    chain, key_problems = check_keys(store, found)
    problems += key_problems
    problems += check_anchor(store, found, chain)
    for checkpoint in checkpoints:
        problems += check_checkpoint(found, checkpoint, chain)
    problems += check_files(store, found)
    problems += check_release_log(store, found)
    problems += check_interruptions(store, found)
    return problems, found


# ---------------------------------------------------------------------------
# 1. The chain
# ---------------------------------------------------------------------------
def check_chain(found: list[LedgerEntry]) -> list[Problem]:
    """Sequence numbers, hashes and chain links (pure)."""
    problems: list[Problem] = []
    previous_hash = GENESIS_HASH
    for number, entry in enumerate(found, start=1):
        where = f"line {number} (seq {entry.seq}, {entry.path})"
        if entry.seq != number:
            problems.append(Problem(LEDGER_FILE, f"{where}: seq", f"is {entry.seq}, expected {number}"))
        if entry.prev_hash != previous_hash:
            problems.append(
                Problem(LEDGER_FILE, f"{where}: prev_hash", "does not match the previous entry's entry_hash")
            )
        recomputed = entry_hash(entry.hashed_fields())
        if entry.entry_hash != recomputed:
            problems.append(
                Problem(LEDGER_FILE, f"{where}: entry_hash", f"is not the hash of the entry (recomputed {recomputed})")
            )
        if entry.kind == "decision_log_segment":  # the row is the seal of the segment the entry hashes
            if entry.event().get("sha256") != entry.record_sha256:
                problems.append(Problem(LEDGER_FILE, f"{where}: row", "the seal's sha256 is not the recorded one"))
        elif entry.row is not None and sha256_hex(entry.row.encode("utf-8")) != entry.record_sha256:
            problems.append(Problem(LEDGER_FILE, f"{where}: record_sha256", "is not the sha256 of the entry's row"))
        previous_hash = entry.entry_hash
    return problems


# ---------------------------------------------------------------------------
# 2. Keys and the trust anchor
# ---------------------------------------------------------------------------
def published_keys(store: ComplianceStore) -> tuple[dict[str, Ed25519PublicKey], list[Problem]]:
    """Public keys published in the store by key id (``ledger/keys/`` and ``public_key.pem``)."""
    keys: dict[str, Ed25519PublicKey] = {}
    problems: list[Problem] = []
    for path in store.list(KEYS_DIR, ".pem"):
        key = parse_public_pem(store.read_bytes(path))
        if key is None:
            problems.append(Problem(path, "key", "not a canonical Ed25519 public key (the file was edited)"))
            continue
        if path.rsplit("/", 1)[-1] != f"{key_id_of(key)}.pem":
            problems.append(Problem(path, "key", f"holds key {key_id_of(key)}, not the one its name says"))
            continue
        keys[key_id_of(key)] = key
    if store.exists(PUBLIC_KEY_FILE):
        key = parse_public_pem(store.read_bytes(PUBLIC_KEY_FILE))
        if key is None:
            problems.append(Problem(PUBLIC_KEY_FILE, "key", "not a canonical Ed25519 public key (the file was edited)"))
        else:
            keys.setdefault(key_id_of(key), key)
    return keys, problems


def check_keys(store: ComplianceStore, found: list[LedgerEntry]) -> tuple[KeyChain, list[Problem]]:
    """Every signature, by the key in force at each entry; rotations followed; the published key in force."""
    keys, problems = published_keys(store)
    current_key = parse_public_pem(store.read_bytes(PUBLIC_KEY_FILE)) if store.exists(PUBLIC_KEY_FILE) else None
    if not store.exists(PUBLIC_KEY_FILE):
        problems.append(Problem(PUBLIC_KEY_FILE, "file", "missing: signatures cannot be checked"))
    if not found:
        return KeyChain(keys, None, None), problems
    active = found[0].key_id
    first = active
    for number, entry in enumerate(found, start=1):
        where = f"line {number} (seq {entry.seq}, {entry.path})"
        if entry.key_id != active:
            problems.append(
                Problem(LEDGER_FILE, f"{where}: key_id", f"is {entry.key_id}, the key in force is {active}")
            )
            continue
        key = keys.get(active)
        if key is None:
            problems.append(Problem(LEDGER_FILE, f"{where}: key_id", f"key {active} is not published in the store"))
            continue
        if not signature_valid(key, entry.entry_hash, entry.signature):
            problems.append(Problem(LEDGER_FILE, f"{where}: signature", "is not a valid signature of entry_hash"))
            continue
        if entry.kind == "key_rotation":
            event = entry.event()
            new = parse_public_pem(str(event.get("public_key_pem", "")).encode("ascii", "replace"))
            if new is None or key_id_of(new) != event.get("new_key_id"):
                problems.append(Problem(LEDGER_FILE, f"{where}: row", "a key rotation without a valid new key"))
                continue
            keys.setdefault(key_id_of(new), new)
            active = key_id_of(new)
    if current_key is not None and key_id_of(current_key) != active:
        problems.append(
            Problem(
                PUBLIC_KEY_FILE,
                "key",
                f"is key {key_id_of(current_key)}, but the key in force after the last rotation is {active}",
            )
        )
    return KeyChain(keys, first, active), problems


def check_anchor(store: ComplianceStore, found: list[LedgerEntry], chain: KeyChain) -> list[Problem]:
    """The ledger against this machine's trust anchor for the store (pinned key, ledger id, witnessed head)."""
    source = anchor.trust_file()
    pinned = anchor.anchor_of(store_anchor_key(store))
    if pinned is None or not pinned.keys:
        if not found:
            return []
        return [
            warning(
                LEDGER_FILE,
                "trust anchor",
                f"this store's ledger key is not pinned in {source}: a ledger re-signed with another key could "
                "not be told apart here (pin it with `credit-scorer audit pin`, or verify with --checkpoint)",
            )
        ]
    problems: list[Problem] = []
    if not found:
        seen = pinned.witnessed.seq if pinned.witnessed else 0
        return [
            Problem(
                LEDGER_FILE,
                "file",
                f"the ledger is missing or empty, but {source} pins a key for this store"
                + (f" and saw its ledger at seq {seq_text(pinned)}" if seen else "")
                + ": records were deleted",
            )
        ]
    first_key = chain.keys.get(found[0].key_id)
    if first_key is None or fingerprint_of(first_key) not in pinned.keys:
        problems.append(
            Problem(
                LEDGER_FILE,
                "line 1: key_id",
                f"the ledger is signed by key {found[0].key_id}, which is not the key pinned for this store in "
                f"{source} ({', '.join(k[:16] for k in pinned.keys)}): the ledger was re-signed",
            )
        )
    if pinned.ledger_id is not None and found[0].entry_hash != pinned.ledger_id:
        problems.append(
            Problem(LEDGER_FILE, "line 1", f"is not the first entry pinned in {source}: the ledger was replaced")
        )
    if pinned.witnessed is not None:
        problems += _extends(
            found, pinned.witnessed.seq, pinned.witnessed.head, f"the checkpoint witnessed in {source}"
        )
    return problems


def seq_text(pinned: anchor.StoreAnchor) -> str:
    """``12 (head 3f9a…, 2026-12-02T09:00:00Z)`` of a witnessed checkpoint."""
    seen = pinned.witnessed
    return f"{seen.seq} (head {seen.head[:16]}, {seen.at})" if seen else "0"


def _extends(found: list[LedgerEntry], seq: int, head: str, what: str) -> list[Problem]:
    if seq > len(found):
        return [
            Problem(
                LEDGER_FILE,
                "length",
                f"has {len(found)} entries, but {what} is at seq {seq}: the ledger was cut back",
            )
        ]
    if found[seq - 1].entry_hash != head:
        return [Problem(LEDGER_FILE, f"seq {seq}", f"is not the entry of {what}: the ledger was rewritten")]
    return []


# ---------------------------------------------------------------------------
# 3. Checkpoints
# ---------------------------------------------------------------------------
def check_checkpoint(found: list[LedgerEntry], checkpoint: Checkpoint, chain: KeyChain) -> list[Problem]:
    """A checkpoint must be signed by a key of this ledger's chain and be extended by the ledger."""
    where = f"checkpoint seq {checkpoint.seq}"
    key = chain.keys.get(checkpoint.key_id)
    if key is None or not signature_valid(key, checkpoint.digest(), checkpoint.signature):
        return [Problem(where, "signature", f"not signed by a key of this ledger (key_id {checkpoint.key_id})")]
    if not found or found[0].entry_hash != checkpoint.ledger_id:
        return [Problem(where, "ledger_id", "this ledger is not the one the checkpoint was taken of (replaced)")]
    return _extends(found, checkpoint.seq, checkpoint.head, f"the checkpoint of {checkpoint.recorded_at}")


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint from its JSON (as ``audit checkpoint`` prints it); ValueError naming what is wrong."""
    try:
        return Checkpoint.model_validate(json.loads(text))
    except ValueError as exc:
        raise ValueError(f"not a ledger checkpoint: {str(exc).splitlines()[0]}") from exc


# ---------------------------------------------------------------------------
# 4. Files
# ---------------------------------------------------------------------------
def check_files(store: ComplianceStore, found: list[LedgerEntry]) -> list[Problem]:
    """Ledgered files present and unchanged; state files at their last version; no file without an entry."""
    problems: list[Problem] = []
    records: dict[str, LedgerEntry] = {}
    states: dict[str, LedgerEntry] = {}
    for entry in found:
        if entry.kind in ROW_KINDS or entry.kind not in RECORD_KINDS | STATE_KINDS:
            continue
        expected = kind_for_path(entry.path)
        if expected != entry.kind:
            problems.append(
                Problem(LEDGER_FILE, f"seq {entry.seq}: kind", f"{entry.kind} does not fit the file {entry.path}")
            )
            continue
        if entry.kind in STATE_KINDS:
            states[entry.path] = entry
            continue
        if entry.path in records:
            problems.append(
                Problem(
                    LEDGER_FILE,
                    f"seq {entry.seq}: path",
                    f"{entry.path} is recorded twice (first at seq {records[entry.path].seq})",
                )
            )
            continue
        records[entry.path] = entry
        problems += _file_matches(store, entry, "ledger entry")
    for path, entry in states.items():
        if entry.row == REMOVED_ROW:
            if store.exists(path):
                problems.append(Problem(path, "ledger", f"exists, but its removal was ledgered at seq {entry.seq}"))
        else:
            problems += _file_matches(store, entry, "last ledgered version")
    for path in files_covered(store):
        name = path.rsplit("/", 1)[-1]
        if name.startswith(PENDING_PREFIX):
            problems.append(warning(path, "write", "an interrupted write; the next credit-scorer command finishes it"))
            continue
        if kind_for_path(path) is None or path in records or path in states:
            continue
        if kind_for_path(path) == "decision_log_segment" and _sealed(store, path):
            problems.append(
                warning(path, "ledger", "sealed by its server, not ledgered yet (the next credit-scorer command will)")
            )
            continue
        problems.append(Problem(path, "ledger", "not in the ledger (added, or written without its ledger entry)"))
    return problems


def _sealed(store: ComplianceStore, segment: str) -> bool:
    """Whether a decision-log segment has a seal file that matches its bytes."""
    seal = f"{segment}.seal.json"
    try:
        recorded = json.loads(store.read_bytes(seal)).get("sha256")
        return bool(recorded == sha256_hex(store.read_bytes(segment)))
    except (StoreError, OSError, ValueError, AttributeError):
        return False


def _file_matches(store: ComplianceStore, entry: LedgerEntry, what: str) -> list[Problem]:
    try:
        content = store.read_bytes(entry.path)
    except (StoreError, OSError, ValueError):  # missing, or a path mangled by an edit
        return [Problem(entry.path, "file", f"missing: {what} seq {entry.seq} records it")]
    actual = sha256_hex(content)
    if actual != entry.record_sha256:
        return [
            Problem(
                entry.path,
                "sha256",
                f"content changed since it was recorded: sha256 {actual}, {what} seq {entry.seq} says "
                f"{entry.record_sha256}",
            )
        ]
    return []


def files_covered(store: ComplianceStore) -> list[str]:
    """Store-relative paths of every file in the folders the ledger covers (temporary files excluded)."""
    found: list[str] = []
    for folder in LEDGERED_DIRS:
        if store.is_local:
            base = store.local_path(folder)
            if not base.is_dir():
                continue
            found += [
                f"{folder}/{p.relative_to(base).as_posix()}"
                for p in base.rglob("*")
                if p.is_file() and not p.name.startswith(".tmp-")
            ]
        else:
            found += [p for p in _list_recursive(store, folder) if not p.rsplit("/", 1)[-1].startswith(".tmp-")]
    return sorted(found)


def _list_recursive(store: ComplianceStore, folder: str) -> list[str]:
    base = store.path(folder)
    if not store.fs.exists(base):
        return []
    prefix = store.root.rstrip("/") + "/"
    return [str(p)[len(prefix) :] if str(p).startswith(prefix) else str(p) for p in store.fs.find(base)]


def check_release_log(store: ComplianceStore, found: list[LedgerEntry]) -> list[Problem]:
    """The release log is its header plus exactly the ledgered rows, in order."""
    problems: list[Problem] = []
    ledgered: list[LedgerEntry] = []
    for entry in found:
        number = row_number(entry.path)
        if entry.kind not in ROW_KINDS:
            if number is not None:
                problems.append(Problem(LEDGER_FILE, f"seq {entry.seq}: kind", f"{entry.kind} for a release-log row"))
            continue
        if number is None or entry.row is None:
            problems.append(
                Problem(LEDGER_FILE, f"seq {entry.seq}: path", f"{entry.kind} entry without a release-log row")
            )
            continue
        if number != len(ledgered) + 1:
            problems.append(
                Problem(LEDGER_FILE, f"seq {entry.seq}: path", f"{entry.path}, expected row {len(ledgered) + 1}")
            )
        ledgered.append(entry)
    if not store.exists(LOG_FILE):
        if ledgered:
            problems.append(Problem(LOG_FILE, "file", f"missing: the ledger records {len(ledgered)} rows"))
        return problems
    text = store.read_bytes(LOG_FILE).decode("utf-8", errors="replace")
    lines = row_lines(text)
    for number, entry in enumerate(ledgered, start=1):
        if number > len(lines):
            problems.append(Problem(LOG_FILE, f"row {number}", f"missing: ledger entry seq {entry.seq} records it"))
        elif lines[number - 1] != entry.row:
            problems.append(
                Problem(LOG_FILE, f"row {number}", f"differs from the row recorded by ledger entry seq {entry.seq}")
            )
        elif [r.event for r in parse_rows(entry.row)] != [entry.kind]:
            problems.append(Problem(LOG_FILE, f"row {number}: event", f"ledger entry seq {entry.seq} is {entry.kind}"))
    for number in range(len(ledgered) + 1, len(lines) + 1):
        problems.append(Problem(LOG_FILE, f"row {number}", "not in the ledger (added, or written without its entry)"))
    if text not in (HEADER + "".join(lines), LEGACY_HEADER + "".join(lines)):
        problems.append(
            Problem(LOG_FILE, "header", "the file is not the release log's header followed by its rows (text edited)")
        )
    return problems


# ---------------------------------------------------------------------------
# 5. Interruptions
# ---------------------------------------------------------------------------
def check_interruptions(store: ComplianceStore, found: list[LedgerEntry]) -> list[Problem]:
    """Interrupted writes and operations, as warnings: recorded as interrupted, or not yet recovered."""
    problems: list[Problem] = []
    if store.exists(IN_PROGRESS_FILE):
        problems.append(
            warning(IN_PROGRESS_FILE, "write", "an interrupted write; the next credit-scorer command finishes it")
        )
    open_intents: dict[str, LedgerEntry] = {}
    for entry in found:
        event = entry.event()
        if entry.kind == "intent":
            open_intents[str(event.get("operation_id", entry.path))] = entry
        elif entry.kind == "outcome":
            operation = str(event.get("operation_id", ""))
            intent = open_intents.pop(operation, None)
            if intent is None:
                problems.append(
                    Problem(LEDGER_FILE, f"seq {entry.seq}", f"an outcome of unknown operation {operation}")
                )
            elif event.get("status") != "done":
                problems.append(
                    warning(
                        LEDGER_FILE,
                        f"seq {entry.seq}",
                        f"{intent.event().get('operation', 'operation')} {operation} "
                        f"({intent.event().get('release_id', '')}) was interrupted: {event.get('note', '')}",
                    )
                )
    for operation, intent in open_intents.items():
        problems.append(
            warning(
                LEDGER_FILE,
                f"seq {intent.seq}",
                f"{intent.event().get('operation', 'operation')} {operation} ({intent.event().get('release_id', '')}) "
                "has no outcome yet: still running, or interrupted (the next credit-scorer command records which)",
            )
        )
    return problems
