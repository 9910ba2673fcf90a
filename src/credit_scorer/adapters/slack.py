"""Slack messages for the release gate: approval requested, decision, deployment, rollback.

Off unless configured: ``CREDIT_SCORER_SLACK_WEBHOOK_URL`` (an incoming webhook), or
``CREDIT_SCORER_SLACK_TOKEN`` with ``CREDIT_SCORER_SLACK_CHANNEL`` (a bot token;
``CREDIT_SCORER_SLACK_API_URL`` points the Web API elsewhere, e.g. a test server). The
webhook URL and token are secrets: never printed, recorded or logged.

Messages follow the release ticket: :class:`NotifyingTracker` wraps the ticket tracker and
sends a message when the gate writes one of those events to the ticket, which it does only
after the record itself is written. A send is retried with backoff (3 attempts); a send
that still fails is logged as FAILED with the reason, never as sent, and never undoes or
holds up a record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, SecretStr

from credit_scorer.adapters.tickets import CommentKind, Ticket, TicketStatus, TicketTracker
from credit_scorer.core import settings
from credit_scorer.core.errors import ConfigError
from credit_scorer.core.settings import environ

log = logging.getLogger(__name__)

ENV_WEBHOOK = settings.SLACK_WEBHOOK_ENV
ENV_TOKEN = settings.SLACK_TOKEN_ENV
ENV_CHANNEL = settings.SLACK_CHANNEL_ENV
ENV_API_URL = settings.SLACK_API_URL_ENV
ATTEMPTS = 3
BACKOFF_SECONDS = 0.5
TIMEOUT_SECONDS = 5


class SlackSettings(BaseModel):
    """How to reach Slack."""

    model_config = ConfigDict(frozen=True)

    webhook_url: SecretStr | None = None
    token: SecretStr | None = None
    channel: str | None = None
    api_url: str | None = None


def slack_settings(env: Mapping[str, str] | None = None) -> SlackSettings | None:
    """Slack settings from the environment; None when Slack is off; ConfigError naming what is missing."""
    env = environ() if env is None else env
    webhook = env.get(ENV_WEBHOOK, "").strip()
    token = env.get(ENV_TOKEN, "").strip()
    if not webhook and not token:
        return None
    if webhook and token:
        raise ConfigError(f"set either {ENV_WEBHOOK} or {ENV_TOKEN}, not both")
    if webhook:
        if not webhook.startswith(("https://", "http://")):
            raise ConfigError(f"{ENV_WEBHOOK} must be an http(s) URL")
        return SlackSettings(webhook_url=SecretStr(webhook))
    channel = env.get(ENV_CHANNEL, "").strip()
    if not channel:
        raise ConfigError(f"{ENV_TOKEN} is set, so Slack is on, but {ENV_CHANNEL} is not set")
    api_url = env.get(ENV_API_URL, "").strip() or None
    return SlackSettings(token=SecretStr(token), channel=channel, api_url=api_url)


@dataclass(frozen=True)
class SendResult:
    """How a send ended."""

    sent: bool
    attempts: int
    error: str | None = None


class SlackNotifier:
    """Sends text messages through slack-sdk (webhook or Web API), with retries and backoff."""

    def __init__(self, settings: SlackSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.sleep = sleep

    def _secrets(self) -> list[str]:
        return [s.get_secret_value() for s in (self.settings.webhook_url, self.settings.token) if s is not None]

    def _clean(self, text: str) -> str:
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return text

    def _attempt(self, text: str) -> tuple[bool, bool, str | None]:
        """(sent, worth retrying, error)."""
        if self.settings.webhook_url is not None:
            from slack_sdk.webhook import WebhookClient

            response = WebhookClient(self.settings.webhook_url.get_secret_value(), timeout=TIMEOUT_SECONDS).send(
                text=text
            )
            if response.status_code == 200:
                return True, False, None
            retry = response.status_code == 429 or response.status_code >= 500
            return False, retry, f"HTTP {response.status_code}: {response.body}"
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError

        assert self.settings.token is not None
        base = (self.settings.api_url or "https://slack.com/api").rstrip("/") + "/"
        client = WebClient(token=self.settings.token.get_secret_value(), base_url=base, timeout=TIMEOUT_SECONDS)
        try:
            client.chat_postMessage(channel=self.settings.channel or "", text=text)
        except SlackApiError as exc:
            status = exc.response.status_code
            retry = status == 429 or status >= 500
            return False, retry, f"HTTP {status}: {exc.response.get('error', exc.response.data)}"
        return True, False, None

    def send(self, text: str) -> SendResult:
        """Send a message; retry 429, 5xx and connection errors with backoff; log the outcome."""
        error: str | None = None
        for attempt in range(1, ATTEMPTS + 1):
            try:
                sent, retry, error = self._attempt(text)
            except Exception as exc:  # connection refused, timeouts, DNS: slack-sdk raises urllib's errors
                sent, retry, error = False, True, f"{type(exc).__name__}: {exc}"
            if sent:
                log.info("Slack message sent (attempt %d)", attempt)
                return SendResult(True, attempt)
            if not retry or attempt == ATTEMPTS:
                break
            self.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
        error = self._clean(error or "unknown error")
        log.warning("Slack message FAILED after %d attempt(s): %s", attempt, error)
        return SendResult(False, attempt, error)


NOTIFIED: dict[CommentKind, str] = {
    "decision": "Decision",
    "refusal": "Refused",
    "deployment": "Deployed",
    "rollback": "Rollback",
}


class NotifyingTracker:
    """A ticket tracker that also tells Slack about the gate's events (see the module docstring)."""

    def __init__(self, inner: TicketTracker, notifier: SlackNotifier) -> None:
        self.inner = inner
        self.notifier = notifier
        self.results: list[SendResult] = []

    def open_ticket(self, key: str, run_id: str, summary: str, description: str) -> Ticket:
        """Open the ticket (no message: the run has not reached the gate yet)."""
        return self.inner.open_ticket(key, run_id, summary, description)

    def add_comment(self, key: str, author: str, kind: CommentKind, body: str) -> None:
        """Add the comment, then send the message for gate events."""
        self.inner.add_comment(key, author, kind, body)
        if kind == "note" and body.startswith("Waiting at the release gate"):
            run_id = self.inner.get(key).run_id
            text = (
                f":hourglass: Approval requested for *{key}* (run {run_id}). {body}. "
                f"Tester: `credit-scorer sign-off {run_id} --as NAME`; approver: `credit-scorer approve {run_id} "
                "--approve|--reject --rationale TEXT --as NAME`, or the approval console."
            )
        elif kind in NOTIFIED:
            text = f"*{key}* {NOTIFIED[kind]} by {author}: {body}"
        else:
            return
        self.results.append(self.notifier.send(text))

    def add_label(self, key: str, label: str) -> None:
        """Add a label."""
        self.inner.add_label(key, label)

    def set_status(self, key: str, status: TicketStatus) -> None:
        """Set the status."""
        self.inner.set_status(key, status)

    def get(self, key: str) -> Ticket:
        """The ticket."""
        return self.inner.get(key)
