"""Console sign-in credentials: one argon2 password hash per person, kept outside the compliance store.

The credentials file (``CREDIT_SCORER_USERS``, default ``.credit-scorer/console-users.json``)
holds for each person the role they sign in with and an argon2id hash of their password;
never the password. Who holds which role stays decided by the people/roles file: a
person can only get credentials for a role that file gives them, and a sign-in is
refused once the file no longer does. The file is written atomically with mode 0600.

A console session remembers a :func:`fingerprint` of the credential it was opened with; the
console checks it on every request (:class:`WatchedFile` re-reads the file only when it changed),
so removing a person, changing their role or their password ends their open sessions at once.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, ValidationError

from credit_scorer.core.errors import ConfigError, CreditScorerError
from credit_scorer.core.files import write_atomic
from credit_scorer.core.settings import current_settings
from credit_scorer.records.models import iso_utc, utc_now
from credit_scorer.records.people import People, Role, role_violation

T = TypeVar("T")

DEFAULT_USERS_FILE = ".credit-scorer/console-users.json"
MIN_PASSWORD_LENGTH = 10

_HASHER = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters
_DUMMY_HASH = _HASHER.hash("credit-scorer: equalises sign-in timing for unknown names")


class UserError(CreditScorerError, ValueError):
    """A credentials change was refused (unknown person, role not held, weak password)."""


class Credential(BaseModel):
    """One person's console credentials."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    password_hash: str
    updated_at: str


class CredentialsFile(BaseModel):
    """The whole credentials file."""

    model_config = ConfigDict(extra="forbid")

    users: dict[str, Credential] = {}


def users_file(given: Path | None = None) -> Path:
    """The credentials file: the option, else ``CREDIT_SCORER_USERS``, else ``.credit-scorer/console-users.json``."""
    if given is not None:
        return given
    return Path(current_settings().users or DEFAULT_USERS_FILE)


def load_credentials(path: Path) -> CredentialsFile:
    """Read the credentials file; a missing file means nobody can sign in yet."""
    if not path.exists():
        return CredentialsFile()
    try:
        return CredentialsFile.model_validate_json(path.read_bytes())
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"{path} is not a valid console credentials file: {exc}") from exc


def _save(path: Path, credentials: CredentialsFile) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(credentials.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    write_atomic(path, data.encode("utf-8"), mode=0o600)


def password_problem(password: str) -> str | None:
    """Why a password is not acceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a console password needs at least {MIN_PASSWORD_LENGTH} characters"
    if not password.strip():
        return "a console password cannot be only spaces"
    return None


def add_user(path: Path, people: People, name: str, role: Role, password: str) -> Credential:
    """Set (or replace) a person's password for signing in with ``role``."""
    violation = role_violation(people, name, role)
    if violation:
        raise UserError(f"{violation}; add the role in the people/roles file first")
    problem = password_problem(password)
    if problem:
        raise UserError(problem)
    credentials = load_credentials(path)
    credential = Credential(role=role, password_hash=_HASHER.hash(password), updated_at=iso_utc(utc_now()))
    credentials.users[name] = credential
    _save(path, credentials)
    return credential


def remove_user(path: Path, name: str) -> bool:
    """Remove a person's credentials; False when they had none."""
    credentials = load_credentials(path)
    if credentials.users.pop(name, None) is None:
        return False
    _save(path, credentials)
    return True


def verify(credentials: CredentialsFile, people: People, name: str, password: str) -> Credential | None:
    """The credential a person signs in with, or None for a wrong name, password or a role they no longer hold.

    Exactly one argon2 verification per call: unknown names are checked against a dummy hash,
    so timing does not tell which names exist.
    """
    credential = credentials.users.get(name)
    try:
        _HASHER.verify(credential.password_hash if credential else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if credential is None or role_violation(people, name, credential.role):
        return None
    return credential


def authenticate(path: Path, people: People, name: str, password: str) -> Role | None:
    """The role a person signs in with (see :func:`verify`), reading the credentials file now."""
    credential = verify(load_credentials(path), people, name, password)
    return credential.role if credential else None


def fingerprint(credential: Credential) -> str:
    """What a session remembers of the credential it was opened with: a new password or role changes it.

    A hash of the role and the stored argon2 hash (never the hash itself, never the password).
    """
    return hashlib.sha256(f"{credential.role}\0{credential.password_hash}".encode()).hexdigest()


class WatchedFile(Generic[T]):
    """A file's parsed contents, read again only when the file changes (inode, mtime or size).

    Checked on every request, so a change (``credentials.json`` replaced by ``users remove``,
    a role edited in the people file) takes effect at once, while unchanged files cost one ``stat``.
    """

    def __init__(self, path: Callable[[], Path], load: Callable[[Path], T]) -> None:
        self._path = path
        self._load = load
        self._lock = threading.Lock()
        self._key: tuple[str, int, int, int] | None = None
        self._value: T | None = None

    def get(self) -> T:
        """The current contents (raises what ``load`` raises, e.g. ConfigError; nothing is cached then)."""
        path = self._path()
        try:
            stat = path.stat()
            key: tuple[str, int, int, int] | None = (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            key = None
        with self._lock:
            if key is None or key != self._key or self._value is None:
                value = self._load(path)
                self._key, self._value = key, value
                return value
            return self._value
