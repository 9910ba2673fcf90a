"""The console's state, one per app: its settings, store, tracker, deployer, sessions and background resumes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from credit_scorer.adapters.factory import deployer_for, tracker_for
from credit_scorer.adapters.tickets import TicketTracker
from credit_scorer.apps.console import actions, users
from credit_scorer.apps.console.sessions import Session, SessionStore
from credit_scorer.core.errors import CreditScorerError
from credit_scorer.core.settings import PEOPLE_ENV, STORE_ENV, USERS_ENV
from credit_scorer.records.layout import PEOPLE_DIR
from credit_scorer.records.people import People, people_file, role_violation
from credit_scorer.records.people_registry import people_in_force
from credit_scorer.records.store import ComplianceStore


class Refused(Exception):
    """A request the console turns down before calling any service: HTTP status and the message shown."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ConsoleSettings:
    """Where the console reads and writes."""

    store_url: str
    people_file: Path | None
    users_file: Path
    log_dir: Path
    dev_mode: bool = False


class Console:
    """The console's state: store, tracker, deployer, sessions, background resumes."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.store = ComplianceStore(settings.store_url)
        self.tracker: TicketTracker = tracker_for(self.store)
        self.deployer = deployer_for(self.store)
        self.sessions = SessionStore()
        self.resumer = actions.Resumer(settings.log_dir, self.store.url, self.resume_environment())
        self._credentials = users.WatchedFile(lambda: settings.users_file, users.load_credentials)
        # the store's people registry in force (or, in dev mode, the --people file): re-read when a version is added
        self._people = users.WatchedFile(self._people_folder, lambda _folder: self._registry())
        self._zenml = threading.RLock()  # ZenML's client is used from one request thread at a time
        self._deciding: dict[str, threading.Lock] = {}
        self._deciding_guard = threading.Lock()

    def _people_folder(self) -> Path:
        return self.store.local_path(PEOPLE_DIR) if self.store.is_local else Path("/nonexistent/remote-store")

    def _registry(self) -> People:
        explicit = self.settings.people_file is not None
        return people_in_force(self.store, self.settings.people_file, self.settings.dev_mode, explicit).people

    def people(self) -> People:
        """The people/roles file, checked per request (re-read when changed): a role change takes effect at once."""
        return self._people.get()

    def credentials(self) -> users.CredentialsFile:
        """The console credentials file, checked per request (re-read when it changed)."""
        return self._credentials.get()

    def resume_environment(self) -> dict[str, str]:
        """The console's own settings for the ``credit-scorer resume`` it starts (absolute paths)."""
        return {
            STORE_ENV: self.store.url,
            PEOPLE_ENV: str(people_file(self.settings.people_file).resolve()),
            USERS_ENV: str(self.settings.users_file.resolve()),
        }

    def still_valid(self, session: Session) -> bool:
        """Whether the session's person still has the credential and role they signed in with."""
        try:
            credential = self.credentials().users.get(session.name)
            people = self.people()
        except (CreditScorerError, OSError):
            return False  # an unreadable file signs everybody out rather than trusting old sessions
        return (
            credential is not None
            and credential.role == session.role
            and users.fingerprint(credential) == session.fingerprint
            and role_violation(people, session.name, session.role) is None
        )

    @contextmanager
    def zenml(self) -> Iterator[None]:
        """Serialise ZenML client calls across request threads."""
        with self._zenml:
            yield

    @contextmanager
    def deciding(self, release_id: str) -> Iterator[None]:
        """One decision or sign-off at a time per release, in this process and across processes."""
        with self._deciding_guard:
            lock = self._deciding.setdefault(release_id, threading.Lock())
        if not lock.acquire(blocking=False):
            raise Refused(409, f"another decision on {release_id} is being recorded right now; reload the page")
        try:
            with self.store.lock(f"gate-{release_id}"):
                yield
        finally:
            lock.release()
