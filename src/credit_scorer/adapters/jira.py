"""Release tickets in Jira, behind the same :class:`~credit_scorer.adapters.tickets.TicketTracker` interface.

Off unless ``CREDIT_SCORER_JIRA_URL`` is set; then ``CREDIT_SCORER_JIRA_PROJECT``,
``CREDIT_SCORER_JIRA_USER`` and ``CREDIT_SCORER_JIRA_TOKEN`` (an API token) are required,
and a missing one stops the command at start, naming it. The token is held as a secret:
it never appears in messages, records or logs.

Jira chooses its own issue keys (``PROJ-123``), so each release ticket carries the release
id ``AI-REL-<8 hex>`` as its label and at the start of its summary, and the compliance
store keeps the mapping (``tickets/AI-REL-….jira.json``). Comments are written as
``[kind] author: text``; comments typed by people in Jira are read back as notes, and a
comment containing "Tester ✓" counts as a sign-off when its author holds the tester role
(see :func:`credit_scorer.adapters.tickets.typed_signoffs`). Jira labels cannot contain spaces, so "ROLLED BACK" is
``ROLLED_BACK`` there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from credit_scorer.adapters.tickets import ROLLED_BACK, CommentKind, Ticket, TicketComment, TicketStatus
from credit_scorer.core import settings
from credit_scorer.core.errors import ConfigError, IntegrationError
from credit_scorer.core.settings import environ
from credit_scorer.records import ledger
from credit_scorer.records.layout import TICKETS_DIR
from credit_scorer.records.models import iso_utc, utc_now
from credit_scorer.records.store import ComplianceStore

ENV_URL = settings.JIRA_URL_ENV
ENV_PROJECT = settings.JIRA_PROJECT_ENV
ENV_USER = settings.JIRA_USER_ENV
ENV_TOKEN = settings.JIRA_TOKEN_ENV
ENV_ISSUE_TYPE = settings.JIRA_ISSUE_TYPE_ENV
_OURS = re.compile(r"^\[(note|signoff|decision|deployment|rollback|refusal)\] (.+?): (.*)$", re.S)


class JiraError(IntegrationError):
    """Jira refused or could not be reached; the message names the call, never the token."""


class JiraSettings(BaseModel):
    """Where and as whom to reach Jira."""

    model_config = ConfigDict(frozen=True)

    url: str
    project: str
    user: str
    token: SecretStr
    issue_type: str = "Task"


def jira_settings(env: Mapping[str, str] | None = None) -> JiraSettings | None:
    """Jira settings from the environment; None when Jira is off; ConfigError naming what is missing."""
    env = environ() if env is None else env
    url = env.get(ENV_URL, "").strip()
    if not url:
        return None
    missing = [name for name in (ENV_PROJECT, ENV_USER, ENV_TOKEN) if not env.get(name, "").strip()]
    if missing:
        raise ConfigError(f"{ENV_URL} is set, so Jira is on, but {' and '.join(missing)} is not set")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{ENV_URL} must be an http(s) URL, not {url!r}")
    return JiraSettings(
        url=url.rstrip("/"),
        project=env[ENV_PROJECT].strip(),
        user=env[ENV_USER].strip(),
        token=SecretStr(env[ENV_TOKEN].strip()),
        issue_type=env.get(ENV_ISSUE_TYPE, "").strip() or "Task",
    )


class JiraTicketTracker:
    """Release tickets as Jira issues (``jira`` package, REST API v2, basic auth with an API token)."""

    def __init__(self, settings: JiraSettings, store: ComplianceStore, client: Any = None) -> None:
        self.settings = settings
        self.store = store
        if client is None:
            from jira import JIRA

            client = JIRA(
                server=settings.url,
                basic_auth=(settings.user, settings.token.get_secret_value()),
                get_server_info=False,
                max_retries=1,
                timeout=20,
            )
        self.client = client

    # -- mapping release id -> Jira key ------------------------------------------------
    def _map_path(self, key: str) -> str:
        return f"{TICKETS_DIR}/{key}.jira.json"

    def jira_key(self, key: str) -> str:
        """The Jira issue key of a release ticket; StoreError when none was opened."""
        return str(json.loads(self.store.read_bytes(self._map_path(key)))["jira_key"])

    def _call(self, what: str, action: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return action(*args, **kwargs)
        except Exception as exc:  # the jira package raises JIRAError, requests errors, ...
            status = getattr(exc, "status_code", None)
            text = getattr(exc, "text", None) or type(exc).__name__
            message = f"Jira {what} failed" + (f" (HTTP {status})" if status else "") + f": {text}"
            raise JiraError(message.replace(self.settings.token.get_secret_value(), "***")) from None

    # -- TicketTracker -----------------------------------------------------------------
    def open_ticket(self, key: str, run_id: str, summary: str, description: str) -> Ticket:
        """Create the Jira issue labelled with the release id, or return the existing one."""
        with self.store.lock(f"ticket-{key}"):
            if self.store.exists(self._map_path(key)):
                return self.get(key)
            fields = {
                "project": {"key": self.settings.project},
                "issuetype": {"name": self.settings.issue_type},
                "summary": f"{key}: {summary}"[:250],
                "description": f"{description}\n\nRelease {key}, training_pipeline run {run_id}.",
                "labels": [key],
            }
            issue = self._call("create issue", self.client.create_issue, fields=fields)
            mapping = {"release_id": key, "jira_key": issue.key, "run_id": run_id, "created_at": iso_utc(utc_now())}
            ledger.commit(self.store, "ticket", self._map_path(key), (json.dumps(mapping, indent=2) + "\n").encode())
        return self.get(key)

    def add_comment(self, key: str, author: str, kind: CommentKind, body: str) -> None:
        """Add ``[kind] author: body`` as a Jira comment."""
        self._call("add comment", self.client.add_comment, self.jira_key(key), f"[{kind}] {author}: {body}")

    def add_label(self, key: str, label: str) -> None:
        """Add a label (e.g. "ROLLED BACK") once."""
        jira_key = self.jira_key(key)
        issue = self._call("read issue", self.client.issue, jira_key)
        labels = list(issue.fields.labels or [])
        if to_jira_label(label) not in labels:
            self._call("add label", issue.update, fields={"labels": [*labels, to_jira_label(label)]})

    def set_status(self, key: str, status: TicketStatus) -> None:
        """Move the issue with the transition of that name when the workflow has one; else comment."""
        jira_key = self.jira_key(key)
        transitions = self._call("list transitions", self.client.transitions, jira_key)
        for transition in transitions:
            if str(transition.get("name", "")).lower() == status.lower():
                self._call("transition", self.client.transition_issue, jira_key, transition["id"])
                return
        self.add_comment(key, "credit-scorer", "note", f"Status: {status}")

    def get(self, key: str) -> Ticket:
        """The ticket with its timeline, read from Jira."""
        mapping = json.loads(self.store.read_bytes(self._map_path(key)))
        issue = self._call("read issue", self.client.issue, mapping["jira_key"])
        comments = self._call("read comments", self.client.comments, mapping["jira_key"])
        status = getattr(getattr(issue.fields, "status", None), "name", None) or "open"
        return Ticket(
            key=key,
            run_id=mapping["run_id"],
            summary=str(issue.fields.summary),
            description=str(issue.fields.description or ""),
            created_at=mapping["created_at"],
            status=str(status).lower(),
            labels=[from_jira_label(label) for label in (issue.fields.labels or []) if label != key],
            comments=[_comment(c, self.settings.user) for c in comments],
        )


def to_jira_label(label: str) -> str:
    """Jira labels cannot contain spaces: "ROLLED BACK" is "ROLLED_BACK" in Jira."""
    return label.replace(" ", "_")


def from_jira_label(label: str) -> str:
    """The product's label for a Jira label."""
    return ROLLED_BACK if label == to_jira_label(ROLLED_BACK) else label


def _comment(comment: Any, own_account: str | None = None) -> TicketComment:
    """A Jira comment as the tracker's timeline holds it.

    Its author is the Jira *account* (``accountId``, else the user name), never the display name, which every
    Jira user sets for themselves. Only comments posted by ``own_account`` (this integration) are read as the
    gate's own ``[kind] author: text`` format: anyone else typing that format is just a note by them.
    """
    body = str(comment.body)
    created = str(getattr(comment, "created", "") or "")
    at = created[:19] + "Z" if len(created) >= 19 else iso_utc(utc_now())
    writer = getattr(comment, "author", None)
    account = str(getattr(writer, "accountId", None) or getattr(writer, "name", None) or "someone")
    ours = _OURS.match(body) if own_account is not None and account == own_account else None
    if ours:
        kind, author, text = ours.groups()
        return TicketComment(at=at, author=author, kind=kind, body=text)
    return TicketComment(at=at, author=account, kind="note", body=body)
