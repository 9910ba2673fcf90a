"""The compliance ledger: a signed hash chain over every record the product writes.

``ledger/ledger.jsonl`` in the compliance store holds one JSON line per record:
approvals, tester sign-offs, release-log rows (releases and rollbacks), threshold
versions and spot-check reports. Each entry carries

- ``seq`` (1, 2, 3 …), ``kind``, ``path`` (the store-relative record file; for a
  release-log row ``model_release_log.md#row-<n>``, with the row's text in ``row``),
- ``record_sha256``: sha256 of the record's bytes (of the row's Markdown line),
- ``prev_hash``: the ``entry_hash`` of the entry before (``"0" * 64`` for the first),
- ``entry_hash``: sha256 of the canonical JSON of the entry without ``entry_hash`` and
  ``signature`` (sorted keys, no spaces, UTF-8),
- ``recorded_at`` (UTC, ``Z``), ``key_id`` and ``signature``: Ed25519 over the ASCII
  hex ``entry_hash``, base64.

The key pair is created on first use. The private key lives outside the store
(``$CREDIT_SCORER_KEY``, default ``~/.config/credit-scorer/ledger_ed25519.pem``, mode
0600; a key file others can read is refused); the public key is published in the store
as ``ledger/public_key.pem``, and ``key_id`` is the first 16 hex digits of the sha256 of
the raw public key.

Appends hold the store's ``ledger`` lock, read the last entry, append one line and
fsync, so two processes appending at once keep one chain. A line torn by a crash
(no trailing newline) is cut off before the next append. On non-local stores the
whole file is rewritten with the backend's atomic put (no cross-process lock there).

:func:`verify` recomputes everything and reports each problem with the file and field.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal, get_args

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from credit_scorer.release.store import ComplianceStore, RecordExistsError, StoreError

log = logging.getLogger(__name__)

LEDGER_DIR = "ledger"
LEDGER_FILE = f"{LEDGER_DIR}/ledger.jsonl"
PUBLIC_KEY_FILE = f"{LEDGER_DIR}/public_key.pem"
LEDGER_LOCK = "ledger"
KEY_ENV = "CREDIT_SCORER_KEY"
DEFAULT_KEY_FILE = "~/.config/credit-scorer/ledger_ed25519.pem"
GENESIS_HASH = "0" * 64
ROW_PATH_PREFIX = "model_release_log.md#row-"

Kind = Literal["approval", "signoff", "release", "rollback", "threshold_change", "spot_check"]
KINDS: tuple[str, ...] = get_args(Kind)

LEDGERED_DIRS: dict[str, Kind] = {
    "approvals": "approval",
    "signoffs": "signoff",
    "thresholds": "threshold_change",
    "audit": "spot_check",
}
"""Folders whose every file must have a ledger entry, and the kind of that entry."""

_HEX64 = r"^[0-9a-f]{64}$"
_ROW_PATH = re.compile(r"^model_release_log\.md#row-([1-9][0-9]*)$")


class LedgerError(StoreError):
    """The ledger cannot be appended to (unreadable last entry, wrong key for this store)."""


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

    def hashed_fields(self) -> dict[str, object]:
        """What ``entry_hash`` covers: every field but ``entry_hash`` and ``signature``."""
        return self.model_dump(exclude={"entry_hash", "signature"})

    def line(self) -> str:
        """The entry's line in the ledger (canonical JSON, no newline)."""
        return _canonical(self.model_dump())


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the store: which file, which field, what."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


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
def _canonical(payload: dict[str, object]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def entry_hash(hashed_fields: dict[str, object]) -> str:
    """sha256 of the canonical JSON of an entry without ``entry_hash`` and ``signature``."""
    return sha256_hex(_canonical(hashed_fields).encode("utf-8"))


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of the sha256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256_hex(raw)[:16]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    """The public key as the store publishes it (SubjectPublicKeyInfo PEM)."""
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def row_path(row_number: int) -> str:
    """Ledger path of the n-th (1-based) row of the release log."""
    return f"{ROW_PATH_PREFIX}{row_number}"


# ---------------------------------------------------------------------------
# The signing key
# ---------------------------------------------------------------------------
def key_file() -> Path:
    """Where the private key lives: ``$CREDIT_SCORER_KEY``, else ``~/.config/credit-scorer/ledger_ed25519.pem``."""
    return Path(os.environ.get(KEY_ENV) or DEFAULT_KEY_FILE).expanduser()


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
    except (ValueError, TypeError) as exc:
        raise LedgerKeyError(f"ledger signing key {source} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerKeyError(f"ledger signing key {source} is not an Ed25519 key")
    return key


def _create_key(path: Path) -> None:
    """Write a new key atomically with mode 0600; if another process won the race, keep theirs."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-key-")  # mkstemp creates with mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
            log.info("created the ledger signing key %s", path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)


def signer_for(store: ComplianceStore, path: Path | None = None) -> Signer:
    """The system key, after checking it is the one whose public key the store publishes (published on first use).

    Call before writing a record, so a bad key stops the write rather than leaving an unledgered record.
    """
    source = path or key_file()
    private_key = load_or_create_key(source)
    pem = public_pem(private_key.public_key())
    with store.lock(LEDGER_LOCK):
        if not store.exists(PUBLIC_KEY_FILE):
            with contextlib.suppress(RecordExistsError):  # another writer published it (non-local stores)
                store.write_new(PUBLIC_KEY_FILE, pem)
        published = store.read_bytes(PUBLIC_KEY_FILE)
    key_id = key_id_of(private_key.public_key())
    if published != pem:
        raise LedgerKeyError(
            f"the ledger signing key {source} (key_id {key_id}) is not the key of {store.url}: "
            f"{PUBLIC_KEY_FILE} holds another public key; set {KEY_ENV} to this store's private key"
        )
    return Signer(private_key=private_key, key_id=key_id, key_file=source)


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
) -> LedgerEntry:
    """Append the entry of one record (its store path and the bytes written) to the ledger."""
    if kind not in KINDS:
        raise ValueError(f"ledger kind {kind!r} is not one of {', '.join(KINDS)}")
    key = signer or signer_for(store)
    with store.lock(LEDGER_LOCK):
        if store.is_local:
            file = store.local_path(LEDGER_FILE)
            file.parent.mkdir(parents=True, exist_ok=True)
            with open(file, "a+b") as handle:
                previous = _last_entry_local(handle, file)
                entry = build_entry(previous, kind, path, data_bytes, _now(), key, row)
                handle.write((entry.line() + "\n").encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
        else:
            current = store.read_bytes(LEDGER_FILE) if store.exists(LEDGER_FILE) else b""
            if current and not current.endswith(b"\n"):
                current = current[: current.rfind(b"\n") + 1]
            last_line = current.rstrip(b"\n").rsplit(b"\n", 1)[-1]
            previous = _parse_last(last_line) if last_line else None
            entry = build_entry(previous, kind, path, data_bytes, _now(), key, row)
            store.replace(LEDGER_FILE, current + (entry.line() + "\n").encode("utf-8"))
    return entry


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
# Reading and verifying
# ---------------------------------------------------------------------------
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


def check_chain(found: list[LedgerEntry], public_key: Ed25519PublicKey | None) -> list[Problem]:
    """Sequence numbers, hashes, chain links, key ids and signatures of the entries (pure)."""
    problems: list[Problem] = []
    expected_key = key_id_of(public_key) if public_key else None
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
        if entry.row is not None and sha256_hex(entry.row.encode("utf-8")) != entry.record_sha256:
            problems.append(Problem(LEDGER_FILE, f"{where}: record_sha256", "is not the sha256 of the entry's row"))
        if expected_key is not None and entry.key_id != expected_key:
            problems.append(
                Problem(LEDGER_FILE, f"{where}: key_id", f"is {entry.key_id}, the store's key is {expected_key}")
            )
        if public_key is not None and not _signature_valid(public_key, entry):
            problems.append(Problem(LEDGER_FILE, f"{where}: signature", "is not a valid signature of entry_hash"))
        previous_hash = entry.entry_hash
    return problems


def _signature_valid(public_key: Ed25519PublicKey, entry: LedgerEntry) -> bool:
    try:
        signature = base64.b64decode(entry.signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    if base64.b64encode(signature).decode("ascii") != entry.signature:
        return False  # a non-canonical encoding of the same bytes is an edit too
    try:
        public_key.verify(signature, entry.entry_hash.encode("ascii"))
    except InvalidSignature:
        return False
    return True


def load_public_key(store: ComplianceStore) -> tuple[Ed25519PublicKey | None, list[Problem]]:
    """The store's published public key, or the problem with it."""
    if not store.exists(PUBLIC_KEY_FILE):
        return None, [Problem(PUBLIC_KEY_FILE, "file", "missing: signatures cannot be checked")]
    data = store.read_bytes(PUBLIC_KEY_FILE)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        return None, [Problem(PUBLIC_KEY_FILE, "key", f"not a PEM public key: {_short(exc)}")]
    if not isinstance(key, Ed25519PublicKey):
        return None, [Problem(PUBLIC_KEY_FILE, "key", "not an Ed25519 public key")]
    if public_pem(key) != data:
        return key, [Problem(PUBLIC_KEY_FILE, "key", "not in canonical PEM form (the file was edited)")]
    return key, []


def verify(store: ComplianceStore) -> list[Problem]:
    """Every problem with the ledger: chain, hashes, signatures, and record files against their entries."""
    problems, _ = verify_with_entries(store)
    return problems


def verify_with_entries(store: ComplianceStore) -> tuple[list[Problem], list[LedgerEntry]]:
    """:func:`verify`, also returning the entries that parsed (for the audit)."""
    public_key, problems = load_public_key(store)
    data = store.read_bytes(LEDGER_FILE) if store.exists(LEDGER_FILE) else b""
    found, parse_problems = parse_ledger(data)
    problems += parse_problems
    if public_key is not None and found:
        key_id = key_id_of(public_key)
        signed_by = sorted({e.key_id for e in found})
        if key_id not in signed_by:
            problems.append(
                Problem(
                    PUBLIC_KEY_FILE,
                    "key",
                    f"key_id {key_id} signed none of the {len(found)} entries (signed by {', '.join(signed_by)})",
                )
            )
    problems += check_chain(found, public_key)
    problems += check_record_files(store, found)
    problems += check_release_log(store, found)
    return problems, found


def check_record_files(store: ComplianceStore, found: list[LedgerEntry]) -> list[Problem]:
    """Each ledgered file exists with its recorded sha256; each file in a ledgered folder has an entry."""
    problems: list[Problem] = []
    by_path: dict[str, LedgerEntry] = {}
    for entry in found:
        if _ROW_PATH.match(entry.path):
            continue
        if entry.path in by_path:
            problems.append(
                Problem(
                    LEDGER_FILE,
                    f"seq {entry.seq}: path",
                    f"{entry.path} is recorded twice (first at seq {by_path[entry.path].seq})",
                )
            )
            continue
        by_path[entry.path] = entry
        folder = entry.path.split("/", 1)[0]
        if LEDGERED_DIRS.get(folder) != entry.kind:
            problems.append(
                Problem(LEDGER_FILE, f"seq {entry.seq}: kind", f"{entry.kind} does not fit the file {entry.path}")
            )
        try:
            content = store.read_bytes(entry.path)
        except (StoreError, OSError, ValueError):  # missing, or a path mangled by an edit
            problems.append(Problem(entry.path, "file", f"missing: ledger entry seq {entry.seq} records it"))
            continue
        actual = sha256_hex(content)
        if actual != entry.record_sha256:
            problems.append(
                Problem(
                    entry.path,
                    "sha256",
                    f"content changed since it was recorded: sha256 {actual}, "
                    f"ledger entry seq {entry.seq} says {entry.record_sha256}",
                )
            )
    for folder in LEDGERED_DIRS:
        for path in _files_under(store, folder):
            if path not in by_path:
                problems.append(
                    Problem(path, "ledger", "not in the ledger (added, or written without its ledger entry)")
                )
    return problems


def _files_under(store: ComplianceStore, folder: str) -> list[str]:
    """Store-relative paths of every file below a folder (temporary files excluded)."""
    if store.is_local:
        base = store.local_path(folder)
        if not base.is_dir():
            return []
        return sorted(
            f"{folder}/{p.relative_to(base).as_posix()}"
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )
    return [p for p in store.list(folder) if not p.rsplit("/", 1)[-1].startswith(".tmp-")]


def check_release_log(store: ComplianceStore, found: list[LedgerEntry]) -> list[Problem]:
    """The release log is its header plus exactly the ledgered rows, in order."""
    from credit_scorer.release.release_log import HEADER, LOG_FILE, parse_rows, row_lines

    problems: list[Problem] = []
    ledgered: list[LedgerEntry] = []
    for entry in found:
        match = _ROW_PATH.match(entry.path)
        if entry.kind not in ("release", "rollback"):
            if match:
                problems.append(Problem(LEDGER_FILE, f"seq {entry.seq}: kind", f"{entry.kind} for a release-log row"))
            continue
        if not match or entry.row is None:
            problems.append(
                Problem(LEDGER_FILE, f"seq {entry.seq}: path", f"{entry.kind} entry without a release-log row")
            )
            continue
        if int(match.group(1)) != len(ledgered) + 1:
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
    if text != HEADER + "".join(lines):
        problems.append(
            Problem(LOG_FILE, "header", "the file is not the release log's header followed by its rows (text edited)")
        )
    return problems


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:160]
