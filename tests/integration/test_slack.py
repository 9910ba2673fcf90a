"""Slack messages through slack-sdk, against a local receiver speaking Slack's webhook and Web API protocols.

The receiver records every payload and can fail on purpose (500s, then success; or a
permanent 404). End to end, an automated run and a rollback through the CLI send the
approval request, the decision, the deployment and the rollback, and the webhook's secret
path never appears in output or in the compliance store.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from credit_scorer.errors import ConfigError
from credit_scorer.integrations import slack as slack_mod
from credit_scorer.integrations.slack import SlackNotifier, slack_settings

from .conftest import gate_env

CLI = str(Path(sys.executable).with_name("credit-scorer"))
HOOK_PATH = "/services/T000/B000/XXXXsecretXXXX"
BOT_TOKEN = "xoxb-1234-secret-token"


@dataclass
class Receiver:
    """Records webhook posts and chat.postMessage calls; ``failures`` answers the next N with that status."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if receiver.failures:
                    status = receiver.failures.pop(0)
                    self._reply(status, "text/plain", "internal_error" if status >= 500 else "no_service")
                    return
                if self.path == HOOK_PATH:
                    receiver.messages.append({"via": "webhook", **json.loads(raw)})
                    self._reply(200, "text/plain", "ok")
                elif self.path == "/api/chat.postMessage":
                    if self.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
                        self._reply(200, "application/json", json.dumps({"ok": False, "error": "invalid_auth"}))
                        return
                    body = json.loads(raw) if raw.startswith("{") else {k: v[0] for k, v in parse_qs(raw).items()}
                    receiver.messages.append({"via": "api", **body})
                    self._reply(200, "application/json", json.dumps({"ok": True, "ts": "1.0"}))
                else:
                    self._reply(404, "text/plain", "no_service")

            def _reply(self, status: int, kind: str, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    assert server.server is not None
    server.server.shutdown()
    server.server.server_close()


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
    with caplog.at_level(logging.INFO, logger="credit_scorer.integrations.slack"):
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


def test_run_and_rollback_send_the_gate_messages(receiver: Receiver, store: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", **gate_env(store, "y"), **webhook_env(receiver)}
    first = subprocess.run([CLI, "run"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    [record] = [json.loads(p.read_text()) for p in (store / "approvals").glob("*.json")]
    second = subprocess.run(
        [CLI, "run", "--seed", "7"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300
    )
    assert second.returncode == 0, second.stdout + second.stderr
    rollback = subprocess.run(
        [CLI, "redeploy", "--url", record["deployment_url"], "--reason", "drift", "--as", "Ada Lovelace"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    texts = [m["text"] for m in receiver.messages]
    release = record["release_id"]
    assert any(
        t.startswith(":hourglass: Approval requested for *" + release) and "credit-scorer approve" in t for t in texts
    )
    assert any(t.startswith(f"*{release}* Decision by Jane Doe: Approved") for t in texts)
    assert any(t.startswith(f"*{release}* Deployed by credit-scorer: Deployed at http://127.0.0.1:") for t in texts)
    assert any(" Rollback by Ada Lovelace: ROLLED BACK to " + release in t for t in texts)
    for output in (first, second, rollback):
        assert HOOK_PATH not in output.stdout + output.stderr
    for path in store.rglob("*"):
        if path.is_file():
            assert HOOK_PATH.encode() not in path.read_bytes(), path
