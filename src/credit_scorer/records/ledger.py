"""The compliance ledger: a signed hash chain over everything the product writes and trusts.

``ledger/ledger.jsonl`` in the compliance store holds one JSON line per write. Each entry carries

- ``seq`` (1, 2, 3 …), ``kind`` (see :data:`Kind`), ``path`` (the store-relative file, or for an entry
  whose content lives in the ledger itself a name such as ``model_release_log.md#row-3`` or ``intent:<id>``),
- ``row``: that inline content when there is one (a release-log row, an intent, a key rotation …),
- ``record_sha256``: sha256 of the file's bytes (or of ``row``),
- ``prev_hash``: the ``entry_hash`` of the entry before (``"0" * 64`` for the first),
- ``entry_hash``: sha256 of the canonical JSON of the entry without ``entry_hash`` and ``signature``
  (sorted keys, no spaces, UTF-8; optional fields that are unset are left out, so ledgers written before
  they existed verify unchanged),
- ``activates``: for the record that makes a deployment official, the token its scoring server waits for,
- ``recorded_at`` (UTC, ``Z``), ``key_id`` and ``signature``: Ed25519 over the ASCII hex ``entry_hash``.

**Writes are crash-atomic** (:func:`commit`): the bytes go to ``.pending-<name>`` beside the target, the entry
is appended (fsync), then the file is linked into place; a marker (``ledger/.in-progress``) names the write
until it is done. A process killed at any point leaves either nothing (no entry: the pending file is
removed) or a ledgered write that :func:`recover_pending` finishes from the pending bytes, whose hash the
entry holds. So a crash never looks like forgery, and a record never exists without its entry.

**Keys.** The signing key lives outside the store (``$CREDIT_SCORER_KEY``, default
``~/.config/credit-scorer/ledger_ed25519.pem``, mode 0600); its public key is published in the store
(``ledger/public_key.pem``, and every key ever used in ``ledger/keys/<key_id>.pem``) and pinned outside it
(:mod:`credit_scorer.records.anchor`). A new key takes over only through a ``key_rotation`` entry signed by
the key before it (:func:`rotate_key`).

**Checkpoints** (:func:`make_checkpoint`) are signed statements "this ledger, identified by its first entry,
had ``seq`` entries ending in ``head``"; a later ledger must extend every checkpoint ever issued.

Appends hold the store's ``ledger`` lock (local stores), so processes appending at once keep one chain. On
other fsspec stores the whole file is rewritten with the backend's atomic put and there is no lock.
Store-wide verification lives in :mod:`credit_scorer.records.ledger_verify`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal, get_args

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from credit_scorer.core.faults import crash_point
from credit_scorer.core.settings import KEY_ENV, current_settings
from credit_scorer.records import anchor
from credit_scorer.records.layout import LEDGER_DIR
from credit_scorer.records.store import ComplianceStore, RecordExistsError, StoreError

log = logging.getLogger(__name__)

LEDGER_FILE = f"{LEDGER_DIR}/ledger.jsonl"
PUBLIC_KEY_FILE = f"{LEDGER_DIR}/public_key.pem"
KEYS_DIR = f"{LEDGER_DIR}/keys"
IN_PROGRESS_FILE = f"{LEDGER_DIR}/.in-progress"
LEDGER_LOCK = "ledger"
DEFAULT_KEY_FILE = "~/.config/credit-scorer/ledger_ed25519.pem"
GENESIS_HASH = "0" * 64
ROW_PATH_PREFIX = "model_release_log.md#row-"
PENDING_PREFIX = ".pending-"
REMOVED_ROW = '{"removed":true}'
"""``row`` of a state entry that records the removal of its file (a stopped deployment's registry entry)."""

Kind = Literal[
    # files written once and never changed
    "approval",
    "deploy_retry",
    "signoff",
    "threshold_change",
    "spot_check",
    "model",
    "release_file",
    "people_version",
    "decision_log_segment",
    # mutable state files: the file must equal the last snapshot ledgered for it
    "ticket",
    "deployment",
    # release-log rows (the row in the entry; model_release_log.md is their projection)
    "release",
    "rollback",
    # protocol events, content inline
    "intent",
    "outcome",
    "key_rotation",
    "refusal",  # a refused sign-off or decision (records/refusals.py)
    "identity",  # a person's signing key enrolled or revoked (records/identities.py)
]
KINDS: tuple[str, ...] = get_args(Kind)
STATE_KINDS: frozenset[str] = frozenset({"ticket", "deployment"})
ROW_KINDS: frozenset[str] = frozenset({"release", "rollback"})
EVENT_KINDS: frozenset[str] = frozenset({"intent", "outcome", "key_rotation", "refusal", "identity"})
RECORD_KINDS: frozenset[str] = frozenset(KINDS) - STATE_KINDS - ROW_KINDS - EVENT_KINDS

_OPTIONAL_FIELDS = ("activates",)
"""Fields added after the first ledgers were written: left out of the hash and the line when unset."""
_HEX64 = r"^[0-9a-f]{64}$"
_ROW_PATH = re.compile(r"^model_release_log\.md#row-([1-9][0-9]*)$")


def kind_for_path(path: str) -> Kind | None:
    """The kind of ledger entry a store file must have, or None for files the ledger does not cover.

    Covered: records (approvals, deployment retries, sign-offs, threshold versions, spot checks, people registry
    versions), stored models, everything under ``releases/`` (gate inputs and outputs, Annex IV), tickets, the
    deployment registry (``deployments/*.json``, ``deployments/modal/*.json``) and sealed decision-log segments. Not
    covered: the ledger folder, locks, server logs, pending and temporary files, the live decision log.
    """
    parts = PurePosixPath(path).parts
    if not parts or parts[-1].startswith((".tmp-", PENDING_PREFIX, ".")):
        return None
    head, name = parts[0], parts[-1]
    simple: dict[str, Kind] = {
        "approvals": "approval",
        "deploy_retries": "deploy_retry",
        "signoffs": "signoff",
        "thresholds": "threshold_change",
        "audit": "spot_check",
        "models": "model",
        "people": "people_version",
        "tickets": "ticket",
    }
    if head in simple and len(parts) == 2:
        return simple[head]
    if head == "audit" and len(parts) > 2:
        return "spot_check"
    if head == "releases" and len(parts) >= 3:
        return "release_file"
    if (
        head == "deployments"
        and name.endswith(".json")
        and (len(parts) == 2 or (len(parts) == 3 and parts[1] == "modal"))
    ):
        return "deployment"
    if head == "decision_logs" and len(parts) == 3 and name.startswith("decisions-") and name.endswith(".jsonl"):
        return "decision_log_segment"
    return None


LEDGERED_DIRS: tuple[str, ...] = (
    "approvals", "deploy_retries", "signoffs", "thresholds", "audit", "models", "releases", "people", "tickets",
    "deployments", "decision_logs",
)  # fmt: skip
"""Top-level folders searched for files that must have a ledger entry (see :func:`kind_for_path`)."""


class LedgerError(StoreError):
    """The ledger cannot be appended to (unreadable last entry, wrong key for this store)."""


class LedgerDamaged(LedgerError):
    """The ledger does not extend the head this machine witnessed (cut back or rewritten); nothing is appended."""


class LedgerKeyError(LedgerError, PermissionError):
    """The signing key file is unsafe or unusable; the message names the file and the fix."""


class LedgerEntry(BaseModel):
    """One line of ``ledger/ledger.jsonl``."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    seq: int = Field(ge=1)
    kind: Kind
    path: str = Field(min_length=1)
    row: str | None = None
    record_sha256: str = Field(pattern=_HEX64)
    prev_hash: str = Field(pattern=_HEX64)
    entry_hash: str = Field(pattern=_HEX64)
    recorded_at: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
    signature: str
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    activates: str | None = None

    def _unset_optional(self) -> set[str]:
        return {name for name in _OPTIONAL_FIELDS if getattr(self, name) is None}

    def hashed_fields(self) -> dict[str, object]:
        """What ``entry_hash`` covers: every field but ``entry_hash``, ``signature`` and unset optional ones."""
        return self.model_dump(exclude={"entry_hash", "signature", *self._unset_optional()})

    def line(self) -> str:
        """The entry's line in the ledger (canonical JSON, no newline)."""
        return _canonical(self.model_dump(exclude=self._unset_optional()))

    def event(self) -> dict[str, object]:
        """The inline JSON object of an intent, outcome or key rotation ({} when there is none)."""
        if self.row is None:
            return {}
        try:
            value = json.loads(self.row)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or, as a warning, worth knowing) in the store: which file, which field, what."""

    file: str
    field: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        tag = "warning: " if self.severity == "warning" else ""
        return f"{tag}{self.file}: {self.field}: {self.message}"


@dataclass(frozen=True)
class Signer:
    """The system key, checked against the store's published public key."""

    private_key: Ed25519PrivateKey
    key_id: str
    key_file: Path

    def sign(self, entry_hash: str) -> str:
        """Base64 Ed25519 signature of the ASCII hex ``entry_hash``."""
        return base64.b64encode(self.private_key.sign(entry_hash.encode("ascii"))).decode("ascii")


# ---------------------------------------------------------------------------
# Hashing (pure)
# ---------------------------------------------------------------------------
def _canonical(payload: Mapping[str, object]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_event(payload: Mapping[str, object]) -> str:
    """The ``row`` text of an inline event (canonical JSON)."""
    return _canonical(payload)


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def entry_hash(hashed_fields: dict[str, object]) -> str:
    """sha256 of the canonical JSON of an entry without ``entry_hash`` and ``signature``."""
    return sha256_hex(_canonical(hashed_fields).encode("utf-8"))


def raw_public_bytes(public_key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint_of(public_key: Ed25519PublicKey) -> str:
    """Full sha256 (64 hex) of the raw public key: what the trust file pins."""
    return sha256_hex(raw_public_bytes(public_key))


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of the key's fingerprint (as every entry names its key)."""
    return fingerprint_of(public_key)[:16]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    """The public key as the store publishes it (SubjectPublicKeyInfo PEM)."""
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def parse_public_pem(data: bytes) -> Ed25519PublicKey | None:
    """An Ed25519 public key from canonical PEM bytes, else None."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # An edited PEM can decode to a key of an unknown algorithm: that is a bad key, not a crash.
        return None
    if not isinstance(key, Ed25519PublicKey) or public_pem(key) != data:
        return None
    return key


def now_utc() -> str:
    """Current UTC time as ledger entries record it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def row_path(row_number: int) -> str:
    """Ledger path of the n-th (1-based) row of the release log."""
    return f"{ROW_PATH_PREFIX}{row_number}"


def row_number(path: str) -> int | None:
    """The row number of a release-log row path, else None."""
    match = _ROW_PATH.match(path)
    return int(match.group(1)) if match else None


def signature_valid(public_key: Ed25519PublicKey, entry_hash_hex: str, signature: str) -> bool:
    """Whether ``signature`` (canonical base64) is the key's signature of the ASCII hex hash."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    if base64.b64encode(raw).decode("ascii") != signature:
        return False  # a non-canonical encoding of the same bytes is an edit too
    try:
        public_key.verify(raw, entry_hash_hex.encode("ascii"))
    except InvalidSignature:
        return False
    return True


# ---------------------------------------------------------------------------
# The signing key
# ---------------------------------------------------------------------------
def key_file() -> Path:
    """Where the private key lives: ``$CREDIT_SCORER_KEY``, else ``~/.config/credit-scorer/ledger_ed25519.pem``."""
    return Path(current_settings().key or DEFAULT_KEY_FILE).expanduser()


def load_or_create_key(path: Path | None = None) -> Ed25519PrivateKey:
    """Load the private key (mode must be 0600 or stricter), creating it with mode 0600 on first use."""
    source = path or key_file()
    if not source.exists():
        _create_key(source)
    mode = source.stat().st_mode & 0o777
    if mode & 0o077:
        raise LedgerKeyError(
            f"ledger signing key {source} has mode {mode:04o}: others can read it; "
            f"run `chmod 600 {source}` (or point {KEY_ENV} at a private key file)"
        )
    try:
        key = serialization.load_pem_private_key(source.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise LedgerKeyError(f"ledger signing key {source} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerKeyError(f"ledger signing key {source} is not an Ed25519 key")
    return key


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _create_key(path: Path, key: Ed25519PrivateKey | None = None, *, replace: bool = False) -> None:
    """Write a key atomically with mode 0600; if another process created one meanwhile, keep theirs."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = _private_pem(key or Ed25519PrivateKey.generate())
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-key-")  # mkstemp creates with mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
            log.info("created the ledger signing key %s", path)
        except FileExistsError:
            pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def store_anchor_key(store: ComplianceStore) -> str:
    """The store's name in the trust file."""
    return anchor.store_key(store.url, store.root, store.is_local)


def signer_for(store: ComplianceStore, path: Path | None = None) -> Signer:
    """The system key, after checking it is the one whose public key the store publishes (published on first use).

    Publishing the first key also pins its fingerprint in the trust file outside the store. Call before writing
    a record, so a bad key stops the write rather than leaving an unledgered record.
    """
    source = path or key_file()
    if any(source.parent.glob(f"{source.name}.*.pending")):  # a rotation was interrupted: settle it first
        _settle_rotation(store, source)
    private_key = load_or_create_key(source)
    public = private_key.public_key()
    pem = public_pem(public)
    key_id = key_id_of(public)
    pinned = anchor.anchor_of(store_anchor_key(store))
    if pinned is not None and pinned.keys and fingerprint_of(public) not in pinned.keys:
        raise LedgerKeyError(
            f"the ledger signing key {source} (key_id {key_id}) is not a key pinned for {store.url} in "
            f"{anchor.trust_file()}; set {KEY_ENV} to this store's key (nothing was written)"
        )
    with store.lock(LEDGER_LOCK):
        if not store.exists(PUBLIC_KEY_FILE):
            if store.exists(LEDGER_FILE) and store.read_bytes(LEDGER_FILE).strip():
                raise LedgerKeyError(
                    f"{store.url} has a ledger but no {PUBLIC_KEY_FILE}: the published key was removed; "
                    "run `credit-scorer audit verify` (nothing was written)"
                )
            if pinned is None or not pinned.keys:  # trust on first use
                anchor.pin(store_anchor_key(store), fingerprint_of(public))
            with contextlib.suppress(RecordExistsError):  # another writer published it (non-local stores)
                store.write_new(PUBLIC_KEY_FILE, pem)
            with contextlib.suppress(RecordExistsError):
                store.write_new(f"{KEYS_DIR}/{key_id}.pem", pem)
        published = store.read_bytes(PUBLIC_KEY_FILE)
    if published != pem and _settle_rotation(store, source):  # switched, not yet published: finish, then sign
        return signer_for(store, path)
    if published != pem:
        raise LedgerKeyError(
            f"the ledger signing key {source} (key_id {key_id}) is not the key of {store.url}: "
            f"{PUBLIC_KEY_FILE} holds another public key; set {KEY_ENV} to this store's private key"
        )
    return Signer(private_key=private_key, key_id=key_id, key_file=source)


def pin_store(store: ComplianceStore) -> anchor.StoreAnchor:
    """Pin the key that signed the store's first entry, and its ledger id, in this machine's trust file.

    What ``credit-scorer audit pin`` does for a store met for the first time (an auditor's copy, a store
    created before pinning existed). Pinning trusts what the store holds now: do it from a known-good state.
    """
    found = entries(store)
    pem_path = f"{KEYS_DIR}/{found[0].key_id}.pem" if found else PUBLIC_KEY_FILE
    source = pem_path if store.exists(pem_path) else PUBLIC_KEY_FILE
    if not store.exists(source):
        raise LedgerError(f"{store.url} publishes no ledger key ({PUBLIC_KEY_FILE}); nothing to pin")
    key = parse_public_pem(store.read_bytes(source))
    if key is None or (found and key_id_of(key) != found[0].key_id):
        raise LedgerError(f"{source} is not the key that signed the first ledger entry; refusing to pin it")
    pinned = anchor.pin(store_anchor_key(store), fingerprint_of(key), found[0].entry_hash if found else None)
    if found:  # the head as it is now: from here on the ledger may only grow from it
        last = found[-1]
        anchor.witness(store_anchor_key(store), last.seq, last.entry_hash, last.recorded_at, found[0].entry_hash)
        return anchor.anchor_of(store_anchor_key(store)) or pinned
    return pinned


# ---------------------------------------------------------------------------
# Appending
# ---------------------------------------------------------------------------
def build_entry(
    previous: LedgerEntry | None,
    kind: Kind,
    path: str,
    data: bytes,
    recorded_at: str,
    signer: Signer,
    row: str | None = None,
    activates: str | None = None,
) -> LedgerEntry:
    """The entry that follows ``previous`` (pure apart from signing)."""
    fields: dict[str, object] = {
        "seq": previous.seq + 1 if previous else 1,
        "kind": kind,
        "path": path,
        "row": row,
        "record_sha256": sha256_hex(data),
        "prev_hash": previous.entry_hash if previous else GENESIS_HASH,
        "recorded_at": recorded_at,
        "key_id": signer.key_id,
    }
    if activates is not None:
        fields["activates"] = activates
    digest = entry_hash(fields)
    return LedgerEntry.model_validate(fields | {"entry_hash": digest, "signature": signer.sign(digest)})


def append(
    store: ComplianceStore,
    kind: Kind,
    path: str,
    data_bytes: bytes,
    *,
    row: str | None = None,
    signer: Signer | None = None,
    activates: str | None = None,
) -> LedgerEntry:
    """Append the entry of one write (its store path and the bytes written, or inline ``row``)."""
    if kind not in KINDS:
        raise ValueError(f"ledger kind {kind!r} is not one of {', '.join(KINDS)}")
    key = signer or signer_for(store)
    with store.lock(LEDGER_LOCK):
        return _append_locked(store, kind, path, data_bytes, key, row, activates)


def append_event(
    store: ComplianceStore, kind: Kind, name: str, event: Mapping[str, object], *, signer: Signer | None = None
) -> LedgerEntry:
    """Append an inline event (intent, outcome, key rotation): ``path`` is ``<kind>:<name>``, ``row`` its JSON."""
    text = canonical_event(event)
    return append(store, kind, f"{kind}:{name}", text.encode("utf-8"), row=text, signer=signer)


def _append_locked(
    store: ComplianceStore,
    kind: Kind,
    path: str,
    data_bytes: bytes,
    key: Signer,
    row: str | None,
    activates: str | None,
) -> LedgerEntry:
    """Append under the ledger lock (held by the caller); witness the new head outside the store."""
    if store.is_local:
        file = store.local_path(LEDGER_FILE)
        file.parent.mkdir(parents=True, exist_ok=True)
        with open(file, "a+b") as handle:
            previous = _last_entry_local(handle, file)
            _refuse_unless_extends_witness(store, previous, lambda: file.read_bytes())
            entry = build_entry(previous, kind, path, data_bytes, now_utc(), key, row, activates)
            handle.write((entry.line() + "\n").encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        first = _first_line_hash(file) if entry.seq > 1 else entry.entry_hash
    else:
        current = store.read_bytes(LEDGER_FILE) if store.exists(LEDGER_FILE) else b""
        if current and not current.endswith(b"\n"):
            current = current[: current.rfind(b"\n") + 1]
        last_line = current.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        previous = _parse_last(last_line) if last_line else None
        _refuse_unless_extends_witness(store, previous, lambda: current)
        entry = build_entry(previous, kind, path, data_bytes, now_utc(), key, row, activates)
        store.replace(LEDGER_FILE, current + (entry.line() + "\n").encode("utf-8"))
        first = _parse_last(current.split(b"\n", 1)[0]).entry_hash if current else entry.entry_hash
    anchor.witness(store_anchor_key(store), entry.seq, entry.entry_hash, entry.recorded_at, first)
    return entry


def _refuse_unless_extends_witness(
    store: ComplianceStore, previous: LedgerEntry | None, ledger_bytes: Callable[[], bytes]
) -> None:
    """Refuse to append to a ledger that does not extend the head this machine last witnessed.

    Appending to a cut-back or rewritten ledger would sign the damage into a new, clean-looking chain and move
    the witness along with it. The whole ledger is read only when another machine has appended since.
    """
    witnessed = anchor.anchor_of(store_anchor_key(store))
    if witnessed is None or witnessed.witnessed is None:
        return
    seen = witnessed.witnessed
    if previous is not None and previous.seq == seen.seq and previous.entry_hash == seen.head:
        return
    if previous is not None and previous.seq > seen.seq:
        lines = ledger_bytes().split(b"\n")
        if len(lines) >= seen.seq and _parse_last(lines[seen.seq - 1]).entry_hash == seen.head:
            return
    state = "cut back" if previous is None or previous.seq < seen.seq else "rewritten"
    raise LedgerDamaged(
        f"refused: the ledger of {store.url} was {state}: this machine witnessed entry {seen.seq} with head "
        f"{seen.head[:16]}… at {seen.at}, and the ledger now "
        + (f"ends at entry {previous.seq}" if previous is not None else "is empty")
        + " without it; nothing is appended to a damaged ledger. Run `credit-scorer audit verify` and restore "
        "the store from a backup (or a checkpoint kept outside)"
    )


def refuse_if_damaged(store: ComplianceStore) -> None:
    """LedgerDamaged when the ledger does not extend the head this machine witnessed: checked before a command
    writes anything, so a cut-back or rewritten ledger stops it at the start rather than mid-way."""
    with store.lock(LEDGER_LOCK):
        if store.is_local:
            file = store.local_path(LEDGER_FILE)
            if not file.exists():
                _refuse_unless_extends_witness(store, None, lambda: b"")
                return
            with open(file, "a+b") as handle:
                previous = _last_entry_local(handle, file)
            _refuse_unless_extends_witness(store, previous, file.read_bytes)
        else:
            current = store.read_bytes(LEDGER_FILE) if store.exists(LEDGER_FILE) else b""
            lines = [line for line in current.split(b"\n") if line.strip()]
            _refuse_unless_extends_witness(store, _parse_last(lines[-1]) if lines else None, lambda: current)


def _first_line_hash(file: Path) -> str:
    with open(file, "rb") as handle:
        return _parse_last(handle.readline().rstrip(b"\n")).entry_hash


def _rfind_newline(handle: BinaryIO, end: int) -> int:
    """Offset of the last newline before ``end``, or -1."""
    pos = end
    while pos > 0:
        start = max(0, pos - 65536)
        handle.seek(start)
        found = handle.read(pos - start).rfind(b"\n")
        if found >= 0:
            return start + found
        pos = start
    return -1


def _last_entry_local(handle: BinaryIO, file: Path) -> LedgerEntry | None:
    """The last complete entry of the open ledger file; cuts off a line torn by a crash first."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return None
    handle.seek(size - 1)
    if handle.read(1) != b"\n":
        keep = _rfind_newline(handle, size) + 1
        log.warning("%s: cutting off a torn last line of %d bytes (an interrupted append)", file, size - keep)
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
        size = keep
        if size == 0:
            return None
    begin = _rfind_newline(handle, size - 1) + 1
    handle.seek(begin)
    return _parse_last(handle.read(size - 1 - begin))


def _parse_last(line: bytes) -> LedgerEntry:
    try:
        return LedgerEntry.model_validate(json.loads(line.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, ValidationError) as exc:
        raise LedgerError(
            f"the last line of {LEDGER_FILE} is not a ledger entry, so nothing can be chained to it; "
            f"run `credit-scorer audit verify` ({exc.__class__.__name__})"
        ) from exc


# ---------------------------------------------------------------------------
# Crash-atomic writes
# ---------------------------------------------------------------------------
def commit(
    store: ComplianceStore,
    kind: Kind,
    path: str,
    data: bytes,
    *,
    signer: Signer | None = None,
    activates: str | None = None,
) -> LedgerEntry:
    """Write a file and its ledger entry so that no crash leaves one without the other.

    Record kinds are written once (RecordExistsError when the name is taken); state kinds (tickets, the
    deployment registry) replace the file, each version ledgered. On local stores the order is: marker →
    ``.pending-<name>`` (fsync) → ledger entry (fsync) → link or rename into place → marker removed;
    :func:`recover_pending` finishes or discards what a crash interrupted. Other stores write, then ledger.
    """
    if kind not in RECORD_KINDS and kind not in STATE_KINDS:
        raise ValueError(f"commit writes record or state files, not {kind!r} entries")
    replace = kind in STATE_KINDS
    key = signer or signer_for(store)
    if not store.is_local:
        if replace:
            store.replace(path, data)
        else:
            store.write_new(path, data)
        return append(store, kind, path, data, signer=key, activates=activates)
    final = store.local_path(path)
    pending = final.with_name(PENDING_PREFIX + final.name)
    stage = "state" if replace else "record"
    with store.lock(LEDGER_LOCK):
        _resolve_in_progress(store)
        if not replace and final.exists():
            raise RecordExistsError(f"{path} already exists in {store.url}; records are never overwritten")
        _write_marker(store, {"path": path, "kind": kind})
        final.parent.mkdir(parents=True, exist_ok=True)
        _write_durable(pending, data)
        crash_point(f"{stage}-pending-written")
        try:
            entry = _append_locked(store, kind, path, data, key, None, activates)
        except LedgerDamaged:  # refused before anything was appended: leave nothing half written
            pending.unlink(missing_ok=True)
            store.delete(IN_PROGRESS_FILE)
            raise
        crash_point(f"{stage}-ledgered")
        _move_into_place(pending, final, replace)
        store.delete(IN_PROGRESS_FILE)
    return entry


def commit_removal(store: ComplianceStore, kind: Kind, path: str, *, signer: Signer | None = None) -> LedgerEntry:
    """Remove a state file (e.g. a stopped deployment's registry entry), the removal ledgered first."""
    if kind not in STATE_KINDS:
        raise ValueError(f"only state files are removed, not {kind!r}")
    key = signer or signer_for(store)
    with store.lock(LEDGER_LOCK):
        if store.is_local:
            _resolve_in_progress(store)
            _write_marker(store, {"path": path, "kind": kind, "remove": True})
        entry = _append_locked(store, kind, path, REMOVED_ROW.encode("utf-8"), key, REMOVED_ROW, None)
        store.delete(path)
        if store.is_local:
            store.delete(IN_PROGRESS_FILE)
    return entry


def recover_pending(store: ComplianceStore) -> str | None:
    """Finish or discard a write a crash interrupted; a sentence saying what was done, or None."""
    if not store.is_local or not store.exists(IN_PROGRESS_FILE):
        return None
    with store.lock(LEDGER_LOCK):
        return _resolve_in_progress(store)


def _write_marker(store: ComplianceStore, payload: dict[str, object]) -> None:
    target = store.local_path(IN_PROGRESS_FILE)
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_durable(target, json.dumps(payload).encode("utf-8"))


def _write_durable(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def _move_into_place(pending: Path, final: Path, replace: bool) -> None:
    if replace:
        os.replace(pending, final)
    else:
        os.link(pending, final)
        os.unlink(pending)
    _fsync_dir(final.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _resolve_in_progress(store: ComplianceStore) -> str | None:
    """Under the ledger lock: complete or roll back the write the marker names."""
    if not store.exists(IN_PROGRESS_FILE):
        return None
    try:
        marker = json.loads(store.read_bytes(IN_PROGRESS_FILE))
        path = str(marker["path"])
        if PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts or kind_for_path(path) is None:
            raise ValueError(f"{path!r} is not a path inside the store")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        store.delete(IN_PROGRESS_FILE)
        return "removed an unreadable write marker"
    final = store.local_path(path)
    pending = final.with_name(PENDING_PREFIX + final.name)
    last = _last_entry_for(store, path)
    done: str
    if marker.get("remove"):
        if last is not None and last.row == REMOVED_ROW and final.exists():
            final.unlink()
            done = f"finished removing {path} (its removal was ledgered at seq {last.seq})"
        else:
            done = f"nothing to finish for the removal of {path}"
    elif pending.exists():
        data = pending.read_bytes()
        if last is not None and last.record_sha256 == sha256_hex(data) and last.row is None:
            exists = final.exists()
            if exists and sha256_hex(final.read_bytes()) == last.record_sha256:
                pending.unlink()
            else:
                _move_into_place(pending, final, replace=exists or marker.get("kind") in STATE_KINDS)
            done = f"finished writing {path} (ledgered at seq {last.seq} before the interruption)"
        else:
            pending.unlink()
            done = f"discarded an unfinished write of {path} (it never reached the ledger)"
    else:
        done = f"nothing to finish for {path}"
    store.delete(IN_PROGRESS_FILE)
    log.warning("recovered an interrupted write: %s", done)
    return done


def _last_entry_for(store: ComplianceStore, path: str) -> LedgerEntry | None:
    if not store.exists(LEDGER_FILE):
        return None
    found, _ = parse_ledger(store.read_bytes(LEDGER_FILE))
    for entry in reversed(found):
        if entry.path == path:
            return entry
    return None


# ---------------------------------------------------------------------------
# Key rotation
# ---------------------------------------------------------------------------
def rotate_key(store: ComplianceStore, by: str, reason: str, path: Path | None = None) -> LedgerEntry:
    """Replace the store's signing key: the old key signs a ``key_rotation`` entry naming the new one.

    The old private key file is kept beside the new one as ``<file>.<old key_id>.retired``; the new public
    key is published in ``ledger/keys/`` and as ``ledger/public_key.pem``. Verifiers that pinned the old key
    follow the rotation; a new key without such an entry is refused.
    """
    if not reason.strip():
        raise LedgerError("a key rotation needs a reason")
    old = signer_for(store, path)
    new_key = Ed25519PrivateKey.generate()
    new_public = new_key.public_key()
    new_pem = public_pem(new_public)
    new_id = key_id_of(new_public)
    event = {
        "new_key_id": new_id,
        "new_fingerprint": fingerprint_of(new_public),
        "public_key_pem": new_pem.decode("ascii"),
        "by": by,
        "reason": reason.strip(),
    }
    with store.lock(LEDGER_LOCK):
        # crash-safe order: the new private key is kept (pending) and pinned before the ledger names it; the
        # switch after the entry is finished by the next signer_for() when a crash interrupts it
        _create_key(_pending_key(old.key_file, new_id), new_key, replace=True)
        crash_point("rotation-key-saved")
        anchor.pin(store_anchor_key(store), fingerprint_of(new_public))
        with contextlib.suppress(RecordExistsError):
            store.write_new(f"{KEYS_DIR}/{new_id}.pem", new_pem)
        text = canonical_event(event)
        entry = _append_locked(store, "key_rotation", f"key_rotation:{new_id}", text.encode("utf-8"), old, text, None)
        crash_point("rotation-ledgered")
        _switch_key(store, old.key_file, old.key_id, new_id, new_pem)
    return entry


def _pending_key(key_path: Path, new_id: str) -> Path:
    return key_path.with_name(f"{key_path.name}.{new_id}.pending")


def _switch_key(store: ComplianceStore, key_path: Path, old_id: str, new_id: str, new_pem: bytes) -> None:
    """Retire the old private key, move the pending new one into place, publish its public key (each idempotent)."""
    retired = key_path.with_name(f"{key_path.name}.{old_id}.retired")
    pending = _pending_key(key_path, new_id)
    if pending.exists():
        if not retired.exists():
            os.link(key_path, retired)
        os.replace(pending, key_path)
    crash_point("rotation-switched")
    if not store.exists(PUBLIC_KEY_FILE) or store.read_bytes(PUBLIC_KEY_FILE) != new_pem:
        store.replace(PUBLIC_KEY_FILE, new_pem)


def _settle_rotation(store: ComplianceStore, key_path: Path) -> bool:
    """:func:`_finish_rotation` under the ledger lock, logged; whether anything was done."""
    with store.lock(LEDGER_LOCK):
        note = _finish_rotation(store, key_path)
    if note:
        log.warning("%s", note)
    return note is not None


def _finish_rotation(store: ComplianceStore, key_path: Path) -> str | None:
    """Finish or discard a key rotation a crash interrupted (under the ledger lock); what was done, or None.

    A pending new key whose rotation is in the ledger is switched to; one whose rotation never reached the ledger
    is deleted (the old key stays in force). A key file already switched gets its public key published.
    """
    pendings = sorted(key_path.parent.glob(f"{key_path.name}.*.pending"))
    current = load_or_create_key(key_path)
    current_pem = public_pem(current.public_key())
    published = store.read_bytes(PUBLIC_KEY_FILE) if store.exists(PUBLIC_KEY_FILE) else None
    if not pendings and (published is None or published == current_pem):
        return None
    rotated = {e.path.split(":", 1)[1] for e in entries(store) if e.kind == "key_rotation"}
    done = None
    for pending in pendings:
        new_id = pending.name[len(key_path.name) + 1 : -len(".pending")]
        if new_id in rotated:
            new_key = load_or_create_key(pending)
            _switch_key(store, key_path, key_id_of(current.public_key()), new_id, public_pem(new_key.public_key()))
            done = f"finished the key rotation to {new_id} (ledgered before the interruption)"
        else:
            pending.unlink()
            done = f"discarded the key {new_id} of a rotation that never reached the ledger"
    current = load_or_create_key(key_path)
    if key_id_of(current.public_key()) in rotated and published != public_pem(current.public_key()):
        store.replace(PUBLIC_KEY_FILE, public_pem(current.public_key()))
        done = done or f"published the key {key_id_of(current.public_key())} of a finished rotation"
    return done


# ---------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------
class Checkpoint(BaseModel):
    """A signed statement: ledger ``ledger_id`` had ``seq`` entries, the last with hash ``head``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ledger_id: str = Field(pattern=_HEX64)
    seq: int = Field(ge=1)
    head: str = Field(pattern=_HEX64)
    recorded_at: str
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    signature: str

    def signed_fields(self) -> dict[str, object]:
        """What the signature covers."""
        return self.model_dump(exclude={"signature"})

    def digest(self) -> str:
        """sha256 of the canonical JSON of the signed fields."""
        return entry_hash(self.signed_fields())

    def short(self) -> str:
        """``seq 12 · head 3f9a0c1d2b4e5f60`` for rows and ticket comments."""
        return f"ledger seq {self.seq} · head {self.head[:16]}"


def make_checkpoint(store: ComplianceStore, signer: Signer | None = None) -> Checkpoint:
    """A signed checkpoint of the ledger as it is now; LedgerError on an empty ledger."""
    key = signer or signer_for(store)
    found = entries(store)
    if not found:
        raise LedgerError(f"{store.url} has no ledger entries yet; nothing to checkpoint")
    fields: dict[str, object] = {
        "ledger_id": found[0].entry_hash,
        "seq": found[-1].seq,
        "head": found[-1].entry_hash,
        "recorded_at": now_utc(),
        "key_id": key.key_id,
    }
    return Checkpoint.model_validate(fields | {"signature": key.sign(entry_hash(fields))})


def head_note(store: ComplianceStore) -> str:
    """``ledger seq N · head …`` of the ledger now (for rows and ticket comments), or "" when it is empty."""
    if not store.exists(LEDGER_FILE):
        return ""
    data = store.read_bytes(LEDGER_FILE)
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    if not last:
        return ""
    try:
        entry = _parse_last(last)
    except LedgerError:
        return ""
    return f"ledger seq {entry.seq} · head {entry.entry_hash[:16]}"


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------
def trusted_file_hashes(store: ComplianceStore, kinds: frozenset[str]) -> dict[str, str]:
    """path -> sha256 of the newest entry of ``kinds`` that is genuine: its hash recomputes and its signature checks
    out with a key of the store that is pinned on this machine (any published key of the store before pinning).

    What a file the product acts on (a people or thresholds version) must match: a file written by hand, or an
    entry an insider added without the key, is not in force.
    """
    pinned = anchor.anchor_of(store_anchor_key(store))
    fingerprints = set(pinned.keys) if pinned is not None else set()
    keys: dict[str, Ed25519PublicKey | None] = {}
    trusted: dict[str, str] = {}
    for entry in entries(store):
        if entry.kind not in kinds:
            continue
        if entry.key_id not in keys:
            pem = f"{KEYS_DIR}/{entry.key_id}.pem"
            pem = pem if store.exists(pem) else PUBLIC_KEY_FILE  # stores from before the key archive
            published = parse_public_pem(store.read_bytes(pem)) if store.exists(pem) else None
            if published is not None and (
                key_id_of(published) != entry.key_id or (fingerprints and fingerprint_of(published) not in fingerprints)
            ):
                published = None
            keys[entry.key_id] = published
        key = keys[entry.key_id]
        if key is None or entry_hash(entry.hashed_fields()) != entry.entry_hash:
            continue
        if signature_valid(key, entry.entry_hash, entry.signature):
            trusted[entry.path] = entry.record_sha256
    return trusted


def entries(store: ComplianceStore) -> list[LedgerEntry]:
    """Every entry of the ledger, in order; LedgerError naming the line when one does not parse."""
    if not store.exists(LEDGER_FILE):
        return []
    parsed, problems = parse_ledger(store.read_bytes(LEDGER_FILE))
    if problems:
        raise LedgerError(f"{problems[0]}; run `credit-scorer audit verify`")
    return parsed


def parse_ledger(data: bytes) -> tuple[list[LedgerEntry], list[Problem]]:
    """Entries of a ledger file, and a problem for each line that is not a canonical entry (pure)."""
    found: list[LedgerEntry] = []
    problems: list[Problem] = []
    if not data:
        return found, problems
    if not data.endswith(b"\n"):
        problems.append(Problem(LEDGER_FILE, "end of file", "the last line has no newline (torn or edited)"))
    for number, raw in enumerate(data.rstrip(b"\n").split(b"\n") if data.strip(b"\n") else [], start=1):
        where = f"line {number}"
        try:
            text = raw.decode("utf-8")
            entry = LedgerEntry.model_validate(json.loads(text))
        except (UnicodeDecodeError, ValueError, ValidationError) as exc:
            problems.append(Problem(LEDGER_FILE, where, f"not a ledger entry: {_short(exc)}"))
            continue
        if text != entry.line():
            problems.append(Problem(LEDGER_FILE, where, "not in canonical form (the line was edited)"))
        found.append(entry)
    if data.endswith(b"\n\n"):
        problems.append(Problem(LEDGER_FILE, "end of file", "blank line after the last entry"))
    return found, problems


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:160]
