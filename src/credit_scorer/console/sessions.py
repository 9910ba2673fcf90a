"""Console sessions: random server-side session ids, a CSRF token per session, sign-in throttling.

Sessions live in the server's memory: restarting the console signs everybody out,
which is what a compliance tool on one machine should do. The session cookie carries
only a random id (HttpOnly, SameSite=Strict); the CSRF token is a second random value
that every form posts back and the server compares in constant time.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from credit_scorer.release.identity import Role

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
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, message) shown on the next page


class SessionStore:
    """Thread-safe in-memory sessions with idle and absolute expiry."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def create(self, name: str, role: Role) -> Session:
        """Start a session (a fresh id, so a session id known before sign-in is useless)."""
        now = time.monotonic()
        session = Session(secrets.token_urlsafe(32), name, role, secrets.token_urlsafe(32), now, now)
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

    def locked_out(self, name: str) -> float:
        """Seconds until ``name`` may try to sign in again (0 when allowed)."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(name, []) if now - t < LOCKOUT_SECONDS]
            self._failures[name] = recent
            if len(recent) < MAX_FAILED_SIGNINS:
                return 0.0
            return LOCKOUT_SECONDS - (now - recent[0])

    def failed(self, name: str) -> None:
        """Count a failed sign-in."""
        with self._lock:
            self._failures.setdefault(name, []).append(time.monotonic())


def tokens_match(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token."""
    return bool(given) and secrets.compare_digest(expected.encode(), (given or "").encode())
