"""Every ``CREDIT_SCORER_*`` environment variable, named once, and the one place the environment is read.

:class:`Settings` (pydantic-settings) holds every ``CREDIT_SCORER_*`` variable as one object; the
constants below spell each name once for messages and tests, and the README's configuration table
lists the same names. Values are kept as the strings the user typed: each module that uses a group
(Jira, Slack, Modal, the deployer) checks its own values and names the variable in its refusal.

No module outside this one touches ``os.environ`` (``tests/unit/test_settings.py`` greps for it):
they call :func:`current_settings` for the settings, :func:`environ` for variables owned by other programs
(``MODAL_TOKEN_ID``, ``ZENML_CONFIG_PATH``, the gate's ``DEPLOY_APPROVAL`` …) or to hand the
environment to a child process, and :func:`set_default` / :func:`temporarily` to set one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX: Final = "CREDIT_SCORER_"

STORE_ENV: Final = "CREDIT_SCORER_STORE"
PEOPLE_ENV: Final = "CREDIT_SCORER_PEOPLE"
USERS_ENV: Final = "CREDIT_SCORER_USERS"
IDENTITIES_ENV: Final = "CREDIT_SCORER_IDENTITIES"
KEY_ENV: Final = "CREDIT_SCORER_KEY"
TRUST_ENV: Final = "CREDIT_SCORER_LEDGER_TRUST"
CRASH_ENV: Final = "CREDIT_SCORER_CRASH_AT"
FACTS_ENV: Final = "CREDIT_SCORER_ANNEX_FACTS"
REASON_CODES_ENV: Final = "CREDIT_SCORER_REASON_CODES"
API_TOKEN_FILE_ENV: Final = "CREDIT_SCORER_API_TOKEN_FILE"
API_TOKENS_ENV: Final = "CREDIT_SCORER_API_TOKENS"
DEPLOYER_ENV: Final = "CREDIT_SCORER_DEPLOYER"

JIRA_URL_ENV: Final = "CREDIT_SCORER_JIRA_URL"
JIRA_PROJECT_ENV: Final = "CREDIT_SCORER_JIRA_PROJECT"
JIRA_USER_ENV: Final = "CREDIT_SCORER_JIRA_USER"
JIRA_TOKEN_ENV: Final = "CREDIT_SCORER_JIRA_TOKEN"
JIRA_ISSUE_TYPE_ENV: Final = "CREDIT_SCORER_JIRA_ISSUE_TYPE"

SLACK_WEBHOOK_ENV: Final = "CREDIT_SCORER_SLACK_WEBHOOK_URL"
SLACK_TOKEN_ENV: Final = "CREDIT_SCORER_SLACK_TOKEN"
SLACK_CHANNEL_ENV: Final = "CREDIT_SCORER_SLACK_CHANNEL"
SLACK_API_URL_ENV: Final = "CREDIT_SCORER_SLACK_API_URL"

MODAL_VOLUME_ENV: Final = "CREDIT_SCORER_MODAL_VOLUME"
MODAL_MIN_CONTAINERS_ENV: Final = "CREDIT_SCORER_MODAL_MIN_CONTAINERS"
MODAL_SCALEDOWN_WINDOW_ENV: Final = "CREDIT_SCORER_MODAL_SCALEDOWN_WINDOW"
MODAL_MAX_INPUTS_ENV: Final = "CREDIT_SCORER_MODAL_MAX_INPUTS"
MODAL_API_TOKEN_SECRET_ENV: Final = "CREDIT_SCORER_MODAL_API_TOKEN_SECRET"
MODAL_CLI_ENV: Final = "CREDIT_SCORER_MODAL_CLI"


class Settings(BaseSettings):
    """Every ``CREDIT_SCORER_*`` variable (field ``x`` is ``CREDIT_SCORER_X``); unset is ``""``."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    store: str = ""  # store URL or folder (default ./compliance)
    people: str = ""  # people-and-roles file (dev mode)
    users: str = ""  # console users file
    identities: str = ""  # folder of people's sealed signing keys
    key: str = ""  # ledger signing key file
    ledger_trust: str = ""  # trusted ledger public keys / anchor file
    crash_at: str = ""  # test hook: SIGKILL at this crash point
    annex_facts: str = ""  # Annex IV facts file
    reason_codes: str = ""  # reason-code table for the scoring service
    api_token_file: str = ""  # scoring API bearer tokens, one per line
    api_tokens: str = ""  # scoring API bearer tokens, one per line (inline)
    deployer: str = ""  # local (default) or modal

    jira_url: str = ""
    jira_project: str = ""
    jira_user: str = ""
    jira_token: str = ""
    jira_issue_type: str = ""

    slack_webhook_url: str = ""
    slack_token: str = ""
    slack_channel: str = ""
    slack_api_url: str = ""

    modal_volume: str = ""
    modal_min_containers: str = ""
    modal_scaledown_window: str = ""
    modal_max_inputs: str = ""
    modal_api_token_secret: str = ""
    modal_cli: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings in ``env`` (default: the process environment), names matched case-insensitively."""
        if env is None:
            return cls()
        upper = {name.upper(): value for name, value in env.items()}
        values: dict[str, Any] = {
            field: upper.get(PREFIX + field.upper(), info.default) for field, info in cls.model_fields.items()
        }
        return cls(**values)


def current_settings() -> Settings:
    """The settings in force now (read afresh: tests and ``--store`` options change the environment)."""
    return Settings()


def environ() -> Mapping[str, str]:
    """The process environment, for variables other programs own and for child processes."""
    return os.environ


def set_default(name: str, value: str) -> str:
    """Set ``name`` unless it is already set; the value in force."""
    return os.environ.setdefault(name, value)


@contextmanager
def temporarily(name: str, value: str) -> Iterator[None]:
    """Set ``name`` to ``value`` inside the block, then restore what was there (or unset it)."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous
