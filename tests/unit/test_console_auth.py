"""Console credentials (argon2 hashes, roles from the people file) and sessions (expiry, CSRF, lockout)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner

from credit_scorer.apps.cli.main import app
from credit_scorer.apps.console import sessions as sessions_mod
from credit_scorer.apps.console.sessions import SessionStore, tokens_match
from credit_scorer.apps.console.users import UserError, add_user, authenticate, load_credentials, remove_user
from credit_scorer.core.settings import IDENTITIES_ENV
from credit_scorer.records import ledger
from credit_scorer.records.people import People
from credit_scorer.records.store import ComplianceStore

PEOPLE = People(people={"Quinn Tester": ["tester"], "Jane Doe": ["approver"], "Ada Lovelace": ["submitter"]})
PASSWORD = "correct-horse-battery"


def test_password_is_stored_as_an_argon2id_hash_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    add_user(path, PEOPLE, "Jane Doe", "approver", PASSWORD)
    raw = path.read_text()
    assert PASSWORD not in raw
    stored = json.loads(raw)["users"]["Jane Doe"]
    assert stored["role"] == "approver"
    assert stored["password_hash"].startswith("$argon2id$")
    assert PasswordHasher().verify(stored["password_hash"], PASSWORD)  # a standard argon2 hash, checked independently
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_sign_in_needs_the_right_password_and_a_role_the_people_file_still_gives(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    add_user(path, PEOPLE, "Quinn Tester", "tester", PASSWORD)
    assert authenticate(path, PEOPLE, "Quinn Tester", PASSWORD) == "tester"
    assert authenticate(path, PEOPLE, "Quinn Tester", PASSWORD + "x") is None
    assert authenticate(path, PEOPLE, "Nobody", PASSWORD) is None
    demoted = People(people={"Quinn Tester": ["auditor"]})
    assert authenticate(path, demoted, "Quinn Tester", PASSWORD) is None


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        ("Quinn Tester", "approver", PASSWORD, "is not an approver"),
        ("Mallory", "approver", PASSWORD, "is not in the people/roles file"),
        ("Jane Doe", "approver", "short", "at least 10 characters"),
    ],
)
def test_credentials_are_refused_for_a_role_not_held_or_a_weak_password(
    tmp_path: Path, name: str, role: str, password: str, message: str
) -> None:
    path = tmp_path / "users.json"
    with pytest.raises(UserError, match=message):
        add_user(path, PEOPLE, name, role, password)  # type: ignore[arg-type]
    assert not path.exists()


def test_replacing_and_removing_a_password(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    add_user(path, PEOPLE, "Jane Doe", "approver", PASSWORD)
    add_user(path, PEOPLE, "Jane Doe", "approver", "another-long-password")
    assert authenticate(path, PEOPLE, "Jane Doe", PASSWORD) is None
    assert authenticate(path, PEOPLE, "Jane Doe", "another-long-password") == "approver"
    assert remove_user(path, "Jane Doe")
    assert not remove_user(path, "Jane Doe")
    assert load_credentials(path).users == {}


def test_users_add_command_reads_the_password_from_stdin_and_never_prints_it(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    people = tmp_path / "people.yaml"
    people.write_text("people:\n  Jane Doe: [approver]\n")
    store = ["--store", str(tmp_path / "compliance")]
    args = ["users", "add", "Jane Doe", "--role", "approver", "--password-stdin", "--people", str(people), *store]
    keys = {IDENTITIES_ENV: str(tmp_path / "identities")}  # never the session's demo keys
    result = CliRunner().invoke(app, [*args, "--users", str(path)], input=PASSWORD + "\n", env=keys)
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    [sealed] = (tmp_path / "identities").iterdir()  # enrolled: a signing key sealed by the password ...
    assert PASSWORD not in sealed.read_text()
    enrolled = [
        e.event() for e in ledger.entries(ComplianceStore(str(tmp_path / "compliance"))) if e.kind == "identity"
    ]
    assert [(e["action"], e["name"]) for e in enrolled] == [("enrol", "Jane Doe")]  # ... its public key ledgered
    assert authenticate(path, People(people={"Jane Doe": ["approver"]}), "Jane Doe", PASSWORD) == "approver"
    listed = CliRunner().invoke(app, ["users", "list", "--users", str(path)])
    assert "Jane Doe" in listed.output and "approver" in listed.output and "argon2" not in listed.output
    bad_role = CliRunner().invoke(
        app, [*args[:3], "--role", "boss", *args[5:], "--users", str(path)], input="x\n", env=keys
    )
    assert bad_role.exit_code == 2
    assert "--role must be submitter, tester, approver or auditor" in bad_role.output


def test_sessions_expire_when_idle_and_end_on_sign_out(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(sessions_mod.time, "monotonic", lambda: now[0])
    store = SessionStore()
    session = store.create("Jane Doe", "approver")
    assert store.get(session.session_id) is session
    now[0] += sessions_mod.IDLE_TIMEOUT_SECONDS - 1
    assert store.get(session.session_id) is session  # activity renews the idle timer
    now[0] += sessions_mod.IDLE_TIMEOUT_SECONDS + 1
    assert store.get(session.session_id) is None
    other = store.create("Jane Doe", "approver")
    store.end(other.session_id)
    assert store.get(other.session_id) is None
    assert store.get(None) is None and store.get("made-up") is None


def test_repeated_failed_sign_ins_lock_the_name_out_for_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(sessions_mod.time, "monotonic", lambda: now[0])
    store = SessionStore()
    for _ in range(sessions_mod.MAX_FAILED_SIGNINS):
        assert store.locked_out("Jane Doe") == 0
        store.failed("Jane Doe")
    assert store.locked_out("Jane Doe") == pytest.approx(sessions_mod.LOCKOUT_SECONDS)
    assert store.locked_out("Quinn Tester") == 0
    now[0] += sessions_mod.LOCKOUT_SECONDS + 1
    assert store.locked_out("Jane Doe") == 0


def test_csrf_tokens_are_compared_exactly() -> None:
    store = SessionStore()
    session = store.create("Jane Doe", "approver")
    assert tokens_match(session.csrf_token, session.csrf_token)
    assert not tokens_match(session.csrf_token, None)
    assert not tokens_match(session.csrf_token, "")
    assert not tokens_match(session.csrf_token, session.csrf_token[:-1])
    assert session.csrf_token != session.session_id


def test_sign_in_attempts_are_reserved_atomically_before_any_password_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """40 attempts at once: 5 get to verify a password, the rest are locked out; failures then keep the lock."""
    import threading

    monkeypatch.setattr(sessions_mod, "MAX_VERIFYING", 40)  # the per-name lockout alone (the global cap: elsewhere)

    store = SessionStore()
    start = threading.Barrier(40)
    waits: list[float] = []
    guard = threading.Lock()

    def attempt() -> None:
        start.wait()
        wait = store.begin_attempt("Jane Doe")
        with guard:
            waits.append(wait)

    threads = [threading.Thread(target=attempt) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reserved = [w for w in waits if w == 0]
    assert len(reserved) == sessions_mod.MAX_FAILED_SIGNINS
    for _ in reserved:
        store.end_attempt("Jane Doe", succeeded=False)
    assert store.begin_attempt("Jane Doe") == pytest.approx(sessions_mod.LOCKOUT_SECONDS, abs=5)
    assert store.begin_attempt("Quinn Tester") == 0  # other names are not affected
    store.end_attempt("Quinn Tester", succeeded=True)
