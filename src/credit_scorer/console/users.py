"""Console sign-in credentials: one argon2 password hash per person, kept outside the compliance store.

The credentials file (``CREDIT_SCORER_USERS``, default ``.credit-scorer/console-users.json``)
holds for each person the role they sign in with and an argon2id hash of their password;
never the password. Who holds which role stays decided by the people/roles file: a
person can only get credentials for a role that file gives them, and a sign-in is
refused once the file no longer does. The file is written atomically with mode 0600.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, ValidationError

from credit_scorer.errors import ConfigError, CreditScorerError
from credit_scorer.release.identity import People, Role, role_violation
from credit_scorer.release.records import iso_utc, utc_now

USERS_ENV = "CREDIT_SCORER_USERS"
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
    return Path(os.environ.get(USERS_ENV, DEFAULT_USERS_FILE))


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def authenticate(path: Path, people: People, name: str, password: str) -> Role | None:
    """The role a person signs in with, or None for a wrong name, password or a role they no longer hold.

    Unknown names are checked against a dummy hash, so timing does not tell which names exist.
    """
    credential = load_credentials(path).users.get(name)
    try:
        _HASHER.verify(credential.password_hash if credential else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if credential is None or role_violation(people, name, credential.role):
        return None
    return credential.role
