"""People's signing identities: one Ed25519 key pair per enrolled person, the private key sealed by their password.

Enrolment (``credit-scorer users add``) makes a key pair, seals the private key with AES-256-GCM under a
key derived from the person's password by argon2id, and keeps the sealed file outside the compliance
store (``CREDIT_SCORER_IDENTITIES``, default ``.credit-scorer/identities/``, mode 0600): the store never
holds a private key, and the file is useless without the password. The public key is entered in the
signed ledger (an ``identity`` event: enrol), and so is a revocation; :func:`key_history` reads them back
so that ``audit verify`` checks each signature against the key its signer held *when* they signed.

Sealed file: ``<sha256(name)[:16]>.json`` (names are untrusted text, never a path) with the name, key id,
public key, the argon2id parameters and salt, the AES-GCM nonce and the ciphertext (associated data: name
and key id, so a sealed key cannot be passed off as another person's).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, ValidationError

from credit_scorer.core.errors import ConfigError
from credit_scorer.core.files import write_atomic
from credit_scorer.core.settings import current_settings
from credit_scorer.records import ledger
from credit_scorer.records.people import IdentityError
from credit_scorer.records.signatures import PersonSignature, key_id_of, public_key_from, raw_public, sign
from credit_scorer.records.store import ComplianceStore

DEFAULT_IDENTITIES_DIR = ".credit-scorer/identities"
MIN_PASSWORD_LENGTH = 10
KDF_TIME_COST = 3
KDF_MEMORY_KIB = 64 * 1024
KDF_PARALLELISM = 1
"""argon2id for the sealing key: 3 passes over 64 MiB (RFC 9106's second recommended option), ~0.2 s here."""

Action = Literal["enrol", "revoke"]


class WrongPassword(IdentityError):
    """The password does not open the person's sealed key; nothing was signed or recorded."""


class SealedKey(BaseModel):
    """A person's private key, sealed under their password (the file in the identities folder)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    key_id: str
    public_key: str
    kdf: Literal["argon2id"] = "argon2id"
    time_cost: int
    memory_kib: int
    parallelism: int
    salt: str
    nonce: str
    ciphertext: str


@dataclass(frozen=True)
class KeyState:
    """One enrolled key as the ledger tells it: whose, which public key, from and until which ledger entry."""

    key_id: str
    name: str
    public_key: Ed25519PublicKey
    enrolled_seq: int
    revoked_seq: int | None = None

    def active_at(self, seq: int) -> bool:
        """Enrolled before ledger entry ``seq`` and not revoked before it."""
        return self.enrolled_seq < seq and (self.revoked_seq is None or seq < self.revoked_seq)


def identities_dir(given: Path | None = None) -> Path:
    """The sealed-keys folder: the option, else ``CREDIT_SCORER_IDENTITIES``, else ``.credit-scorer/identities``."""
    if given is not None:
        return given
    return Path(current_settings().identities or DEFAULT_IDENTITIES_DIR)


def _sealed_path(directory: Path, name: str) -> Path:
    return directory / f"{hashlib.sha256(name.encode('utf-8')).hexdigest()[:16]}.json"


def _sealing_key(password: str, salt: bytes, time_cost: int, memory_kib: int, parallelism: int) -> bytes:
    return hash_secret_raw(
        password.encode("utf-8"), salt, time_cost=time_cost, memory_cost=memory_kib,
        parallelism=parallelism, hash_len=32, type=Type.ID,
    )  # fmt: skip


def _associated(name: str, key_id: str) -> bytes:
    return json.dumps({"name": name, "key_id": key_id}, sort_keys=True).encode("utf-8")


def seal(name: str, password: str, key: Ed25519PrivateKey) -> SealedKey:
    """``key`` sealed under ``password`` for ``name`` (pure apart from randomness)."""
    if len(password) < MIN_PASSWORD_LENGTH or not password.strip():
        raise IdentityError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters, not only spaces")
    salt, nonce = os.urandom(16), os.urandom(12)
    key_id = key_id_of(key.public_key())
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    sealing = _sealing_key(password, salt, KDF_TIME_COST, KDF_MEMORY_KIB, KDF_PARALLELISM)
    ciphertext = AESGCM(sealing).encrypt(nonce, raw, _associated(name, key_id))
    b64 = base64.b64encode
    return SealedKey(
        name=name,
        key_id=key_id,
        public_key=b64(raw_public(key.public_key())).decode("ascii"),
        time_cost=KDF_TIME_COST,
        memory_kib=KDF_MEMORY_KIB,
        parallelism=KDF_PARALLELISM,
        salt=b64(salt).decode("ascii"),
        nonce=b64(nonce).decode("ascii"),
        ciphertext=b64(ciphertext).decode("ascii"),
    )


def open_sealed(sealed: SealedKey, password: str) -> Ed25519PrivateKey:
    """The private key in ``sealed``; :class:`WrongPassword` when the password does not open it."""
    sealing = _sealing_key(
        password, base64.b64decode(sealed.salt), sealed.time_cost, sealed.memory_kib, sealed.parallelism
    )
    try:
        raw = AESGCM(sealing).decrypt(
            base64.b64decode(sealed.nonce), base64.b64decode(sealed.ciphertext), _associated(sealed.name, sealed.key_id)
        )
    except InvalidTag:
        raise WrongPassword(f"refused: wrong password for {sealed.name!r}; nothing was signed") from None
    key = Ed25519PrivateKey.from_private_bytes(raw)
    if key_id_of(key.public_key()) != sealed.key_id:
        raise IdentityError(f"the sealed key of {sealed.name!r} does not match its key id {sealed.key_id}")
    return key


def has_sealed(name: str, directory: Path | None = None) -> bool:
    """Whether a sealed key of ``name`` is in the identities folder."""
    return _sealed_path(identities_dir(directory), name).exists()


def load_sealed(name: str, directory: Path | None = None) -> SealedKey:
    """The sealed key of ``name``; :class:`IdentityError` naming the fix when they are not enrolled here."""
    folder = identities_dir(directory)
    path = _sealed_path(folder, name)
    if not path.exists():
        raise IdentityError(
            f"refused: {name!r} has no signing identity in {folder}; enrol them with "
            f"`credit-scorer users add {json.dumps(name)} --role ROLE`"
        )
    try:
        sealed = SealedKey.model_validate_json(path.read_bytes())
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"{path} is not a sealed signing key: {exc}") from exc
    if sealed.name != name:
        raise IdentityError(f"{path} holds the key of {sealed.name!r}, not of {name!r}")
    return sealed


def _event(action: Action, name: str, key_id: str, public_key: str, by: str, reason: str) -> dict[str, object]:
    return {
        "action": action, "name": name, "key_id": key_id, "public_key": public_key,
        "by": by, "reason": reason, "at": ledger.now_utc(),
    }  # fmt: skip


def enrol(store: ComplianceStore, name: str, password: str, *, by: str, directory: Path | None = None) -> SealedKey:
    """Give ``name`` a new signing key sealed by ``password``; its public key enters the ledger.

    A key ``name`` already holds is revoked first (in the ledger), so each person has one active key.
    """
    key = Ed25519PrivateKey.generate()
    sealed = seal(name, password, key)
    enrol_key(store, name, key.public_key(), by=by)  # first: no key signs unenrolled
    save_sealed(sealed, directory)
    return sealed


def enrol_key(store: ComplianceStore, name: str, public_key: Ed25519PublicKey, *, by: str) -> str:
    """Enter ``public_key`` in the ledger as ``name``'s signing key (revoking the one they held); its key id."""
    current = active_key(current_keys(store), name)
    if current is not None:
        revoke_key(store, current, by=by, reason="replaced by a new enrolment")
    key_id = key_id_of(public_key)
    public = base64.b64encode(raw_public(public_key)).decode("ascii")
    ledger.append_event(store, "identity", f"{key_id}:enrol", _event("enrol", name, key_id, public, by, "enrolled"))
    return key_id


def save_sealed(sealed: SealedKey, directory: Path | None = None) -> Path:
    """Write a sealed key to the identities folder (mode 0600, atomically); no store is touched.

    A key saved but not enrolled signs nothing a store accepts until the store adopts it on first use
    (:func:`adopt_sealed`) or ``users add`` enrols it.
    """
    path = _sealed_path(identities_dir(directory), sealed.name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, sealed.model_dump_json(indent=2).encode("utf-8"), mode=0o600)
    return path


def revoke(store: ComplianceStore, name: str, *, by: str, reason: str, directory: Path | None = None) -> str:
    """Revoke ``name``'s active key (ledgered) and delete their sealed file; return the key id."""
    current = active_key(current_keys(store), name)
    if current is None:
        raise IdentityError(f"{name!r} has no active signing key to revoke")
    revoke_key(store, current, by=by, reason=reason)
    path = _sealed_path(identities_dir(directory), name)
    path.unlink(missing_ok=True)
    return current.key_id


def revoke_key(store: ComplianceStore, key: KeyState, *, by: str, reason: str) -> None:
    """Ledger the revocation of one key: signatures made with it after this entry are refused by verify."""
    public = base64.b64encode(raw_public(key.public_key)).decode("ascii")
    event = _event("revoke", key.name, key.key_id, public, by, reason)
    ledger.append_event(store, "identity", f"{key.key_id}:revoke", event)


def key_history(entries: Iterable[ledger.LedgerEntry]) -> dict[str, KeyState]:
    """Every key the ledger enrolled, with whose it is and when it was enrolled and revoked (pure)."""
    keys: dict[str, KeyState] = {}
    for entry in entries:
        if entry.kind != "identity":
            continue
        event = entry.event()
        key_id, name, action = event.get("key_id"), event.get("name"), event.get("action")
        public = public_key_from(str(event.get("public_key", "")))
        if not isinstance(key_id, str) or not isinstance(name, str) or public is None or key_id_of(public) != key_id:
            continue  # verify names malformed identity events; they enrol nothing
        if action == "enrol" and key_id not in keys:
            keys[key_id] = KeyState(key_id=key_id, name=name, public_key=public, enrolled_seq=entry.seq)
        elif action == "revoke" and key_id in keys and keys[key_id].revoked_seq is None:
            state = keys[key_id]
            keys[key_id] = KeyState(state.key_id, state.name, state.public_key, state.enrolled_seq, entry.seq)
    return keys


def current_keys(store: ComplianceStore) -> dict[str, KeyState]:
    """The keys the store's ledger enrols now (a torn last line is skipped: the next append cuts it off)."""
    if not store.exists(ledger.LEDGER_FILE):
        return {}
    parsed, _problems = ledger.parse_ledger(store.read_bytes(ledger.LEDGER_FILE))
    return key_history(parsed)


def active_key(keys: dict[str, KeyState], name: str, at_seq: int | None = None) -> KeyState | None:
    """The key ``name`` held at ledger entry ``at_seq`` (now, when None)."""
    for state in keys.values():
        if state.name != name:
            continue
        if at_seq is None and state.revoked_seq is None:
            return state
        if at_seq is not None and state.active_at(at_seq):
            return state
    return None


def read_password_file(path: Path) -> str:
    """The password on the first line of a file only its owner can read (a CI secret, a demo password)."""
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise IdentityError(f"password file {path} has mode {mode:04o}: others can read it; run `chmod 600 {path}`")
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise IdentityError(f"cannot read the password file {path}: {exc}") from None
    if not lines or not lines[0]:
        raise IdentityError(f"password file {path} is empty: its first line is the password")
    return lines[0]


def unlock(store: ComplianceStore, name: str, password: str, directory: Path | None = None) -> Signer:
    """``name``'s key, unlocked by ``password``, to sign records in ``store``.

    Refuses (:class:`IdentityError`) a person without a sealed key here, a key the store's ledger has not
    enrolled for them (or has revoked), and a wrong password (:class:`WrongPassword`).
    """
    sealed = load_sealed(name, directory)
    held = active_key(current_keys(store), name)
    if held is None or held.key_id != sealed.key_id:
        enrolled = f"their enrolled key is {held.key_id}" if held else "they have no enrolled key"
        raise IdentityError(
            f"refused: {name!r}'s signing key {sealed.key_id} is not enrolled in the store {store.url} "
            f"({enrolled}); enrol them with `credit-scorer users add`"
        )
    return Signer(name, open_sealed(sealed, password))


def adopt_sealed(store: ComplianceStore, names: Iterable[str], directory: Path | None = None) -> list[str]:
    """On the store's first use, enter the keys sealed here for ``names`` that the ledger does not know yet.

    Like the people file that becomes registry version 1, the identities folder is trusted on first use only;
    later keys need ``credit-scorer users add``. Returns the names enrolled.
    """
    folder = identities_dir(directory)
    keys = current_keys(store)
    enrolled: list[str] = []
    for name in names:
        if not _sealed_path(folder, name).exists() or active_key(keys, name) is not None:
            continue
        try:
            sealed = load_sealed(name, directory)
        except (IdentityError, ConfigError):
            continue
        if sealed.key_id in keys:
            continue
        event = _event("enrol", name, sealed.key_id, sealed.public_key, "first use", f"adopted from {folder}")
        ledger.append_event(store, "identity", f"{sealed.key_id}:enrol", event)
        enrolled.append(name)
    return enrolled


class Signer:
    """An unlocked personal key: signs record hashes as its person."""

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        self.name = name
        self._key = key

    def __call__(self, hash_hex: str) -> PersonSignature:
        return sign(self._key, self.name, hash_hex)
