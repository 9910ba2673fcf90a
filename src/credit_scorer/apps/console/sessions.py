"""Console sessions: random server-side session ids, a CSRF token per session, sign-in throttling.

Sessions live in the server's memory: restarting the console signs everybody out,
which is what a compliance tool on one machine should do. The session cookie carries
only a random id (HttpOnly, SameSite=Strict); the CSRF token is a second random value
that every form posts back and the server compares in constant time.

Sign-in throttling is per name: a sign-in first reserves an attempt (under this store's lock),
then verifies the password, then settles the attempt. Failures and attempts still being checked
both count towards :data:`MAX_FAILED_SIGNINS`, so however many sign-ins arrive at once, at most
that many passwords are verified before the name is locked.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from credit_scorer.records.people import Role

SESSION_COOKIE = "cs_session"
LOGIN_COOKIE = "cs_login"  # CSRF token of the sign-in form, before there is a session
IDLE_TIMEOUT_SECONDS = 30 * 60
ABSOLUTE_TIMEOUT_SECONDS = 8 * 60 * 60
MAX_FAILED_SIGNINS = 5
LOCKOUT_SECONDS = 60


@dataclass
class Session:
    """A signed-in person."""

    session_id: str
    name: str
    role: Role
    csrf_token: str
    created: float
    last_seen: float
    fingerprint: str = ""  # of the credential signed in with (users.fingerprint): a change ends the session
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, message) shown on the next page


MAX_VERIFYING = 2
"""Password verifications at once, across all names (each argon2 check takes ~64 MiB and ~0.1 s of a core):
a flood of sign-ins waits its turn (429) instead of exhausting the machine."""
MAX_TRACKED_NAMES = 10_000
"""Names whose recent failures are remembered; the oldest are forgotten first, so memory stays bounded."""
BUSY = -1.0
"""What :meth:`SessionStore.begin_attempt` returns when every verification slot is taken."""


class SessionStore:
    """Thread-safe in-memory sessions with idle and absolute expiry."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, list[float]] = {}
        self._checking: dict[str, int] = {}  # sign-ins reserved and being verified now, per name
        self._lock = threading.Lock()

    def create(self, name: str, role: Role, fingerprint: str = "") -> Session:
        """Start a session (a fresh id, so a session id known before sign-in is useless)."""
        now = time.monotonic()
        session = Session(secrets.token_urlsafe(32), name, role, secrets.token_urlsafe(32), now, now, fingerprint)
        with self._lock:
            self._sessions[session.session_id] = session
            self._failures.pop(name, None)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session for a cookie value, or None (unknown or expired)."""
        if not session_id:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.last_seen > IDLE_TIMEOUT_SECONDS or now - session.created > ABSOLUTE_TIMEOUT_SECONDS:
                del self._sessions[session_id]
                return None
            session.last_seen = now
            return session

    def end(self, session_id: str | None) -> None:
        """Sign out."""
        if session_id:
            with self._lock:
                self._sessions.pop(session_id, None)

    def _wait(self, name: str, now: float) -> float:
        """Seconds until ``name`` may try again (0 when allowed); the caller holds the lock."""
        recent = [t for t in self._failures.get(name, []) if now - t < LOCKOUT_SECONDS]
        if recent:
            self._failures[name] = recent
        else:
            self._failures.pop(name, None)
        if len(recent) + self._checking.get(name, 0) < MAX_FAILED_SIGNINS:
            return 0.0
        return LOCKOUT_SECONDS - (now - recent[0]) if recent else float(LOCKOUT_SECONDS)

    def locked_out(self, name: str) -> float:
        """Seconds until ``name`` may try to sign in again (0 when allowed)."""
        with self._lock:
            return self._wait(name, time.monotonic())

    def begin_attempt(self, name: str) -> float:
        """Reserve a sign-in attempt for ``name`` before its password is verified.

        Returns 0 when reserved (the caller must then call :meth:`end_attempt`), :data:`BUSY` when
        :data:`MAX_VERIFYING` checks are running, else the seconds to wait; failures and attempts being
        verified now both count.
        """
        with self._lock:
            wait = self._wait(name, time.monotonic())
            if wait == 0 and sum(self._checking.values()) >= MAX_VERIFYING:
                return BUSY
            if wait == 0:
                self._checking[name] = self._checking.get(name, 0) + 1
            return wait

    def end_attempt(self, name: str, succeeded: bool) -> None:
        """Settle a reserved attempt: a failure is counted, a success clears the name's failures."""
        with self._lock:
            left = self._checking.get(name, 0) - 1
            if left > 0:
                self._checking[name] = left
            else:
                self._checking.pop(name, None)
            if succeeded:
                self._failures.pop(name, None)
            else:
                self._failures.setdefault(name, []).append(time.monotonic())
                while len(self._failures) > MAX_TRACKED_NAMES:
                    del self._failures[next(iter(self._failures))]

    def failed(self, name: str) -> None:
        """Count a failed sign-in."""
        with self._lock:
            self._failures.setdefault(name, []).append(time.monotonic())


def tokens_match(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token."""
    return bool(given) and secrets.compare_digest(expected.encode(), (given or "").encode())
