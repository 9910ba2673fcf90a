"""Slack messages through slack-sdk, against a local receiver speaking Slack's webhook and Web API protocols.

The receiver records every payload and can fail on purpose (500s, then success; or a
permanent 404). End to end, an automated run and a rollback through the CLI send the
approval request, the decision, the deployment and the rollback (tested together with
Jira in test_jira.py), and the webhook's secret path never appears in output or in the store.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from credit_scorer.adapters import slack as slack_mod
from credit_scorer.adapters.slack import SlackNotifier, slack_settings
from credit_scorer.core.errors import ConfigError

from ..fake_slack import BOT_TOKEN, HOOK_PATH, Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def webhook_env(receiver: Receiver) -> dict[str, str]:
    return {slack_mod.ENV_WEBHOOK: receiver.url + HOOK_PATH}


def test_settings_are_off_by_default_and_name_what_is_missing() -> None:
    assert slack_settings({}) is None
    with pytest.raises(ConfigError, match=slack_mod.ENV_CHANNEL):
        slack_settings({slack_mod.ENV_TOKEN: BOT_TOKEN})
    with pytest.raises(ConfigError, match="not both"):
        slack_settings({slack_mod.ENV_TOKEN: BOT_TOKEN, slack_mod.ENV_WEBHOOK: "https://hooks.slack.com/x"})
    settings = slack_settings({slack_mod.ENV_TOKEN: BOT_TOKEN, slack_mod.ENV_CHANNEL: "#releases"})
    assert settings is not None and BOT_TOKEN not in repr(settings)


def test_a_failed_send_is_retried_with_backoff_then_sent(receiver: Receiver) -> None:
    waits: list[float] = []
    settings = slack_settings(webhook_env(receiver))
    assert settings is not None
    receiver.failures = [500, 503]
    result = SlackNotifier(settings, sleep=waits.append).send("hello")
    assert result.sent and result.attempts == 3
    assert waits == [0.5, 1.0]
    assert [m["text"] for m in receiver.messages] == ["hello"]


def test_a_send_that_keeps_failing_is_reported_failed_never_sent(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    settings = slack_settings(webhook_env(receiver))
    assert settings is not None
    receiver.failures = [500, 500, 500]
    with caplog.at_level(logging.INFO, logger="credit_scorer.adapters.slack"):
        result = SlackNotifier(settings, sleep=lambda _: None).send("hello")
    assert not result.sent and result.attempts == 3 and "HTTP 500" in (result.error or "")
    assert "FAILED after 3 attempt(s)" in caplog.text and "sent" not in caplog.text.replace("FAILED", "")
    assert HOOK_PATH not in caplog.text
    receiver.failures = [404]  # a wrong webhook is not retried
    result = SlackNotifier(settings, sleep=lambda _: pytest.fail("no retry on 404")).send("hello")
    assert not result.sent and result.attempts == 1
    assert receiver.messages == []


def test_unreachable_slack_fails_without_leaking_the_secret() -> None:
    settings = slack_settings({slack_mod.ENV_WEBHOOK: f"http://127.0.0.1:9{HOOK_PATH}"})
    assert settings is not None
    result = SlackNotifier(settings, sleep=lambda _: None).send("hello")
    assert not result.sent and result.attempts == 3
    assert "secret" not in (result.error or "")


def test_bot_token_posts_to_the_channel(receiver: Receiver) -> None:
    env = {
        slack_mod.ENV_TOKEN: BOT_TOKEN,
        slack_mod.ENV_CHANNEL: "#releases",
        slack_mod.ENV_API_URL: receiver.url + "/api",
    }
    settings = slack_settings(env)
    assert settings is not None
    assert SlackNotifier(settings).send("approval requested").sent
    [message] = receiver.messages
    assert message["via"] == "api" and message["channel"] == "#releases" and message["text"] == "approval requested"
