"""Release tickets in Jira: the real `jira` client against a local Jira REST server (tests/fake_jira.py), with Slack.

End to end through the CLI in other processes: a run pauses at the gate and opens its
Jira issue; "Tester ✓" typed in Jira does not count (no personal signature), the QA lead signs
off with their key and `approve` deploys; a second release is rolled back, which labels its Jira
issue. The API token never appears in output or in the compliance store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from credit_scorer.adapters import jira as jira_mod
from credit_scorer.adapters import slack as slack_mod
from credit_scorer.adapters.jira import JiraError, JiraTicketTracker, jira_settings
from credit_scorer.core.errors import ConfigError
from credit_scorer.records.store import ComplianceStore
from tests.conftest import signed_as

from ..fake_jira import FakeJira
from ..fake_slack import HOOK_PATH, Receiver
from .conftest import cli, gate_env

TOKEN = "jira-api-token-Zq81x"
BOT = "credit-scorer@bank.example"
QUINN = "quinn@bank.example"


@pytest.fixture
def fake() -> Iterator[FakeJira]:
    server = FakeJira(users={BOT: (TOKEN, "credit-scorer bot"), QUINN: ("quinn-token", "Quinn Tester")}).start()
    yield server
    server.stop()


def jira_env(fake: FakeJira, token: str = TOKEN) -> dict[str, str]:
    return {
        jira_mod.ENV_URL: fake.url,
        jira_mod.ENV_PROJECT: "CS",
        jira_mod.ENV_USER: BOT,
        jira_mod.ENV_TOKEN: token,
    }


@pytest.mark.parametrize("missing", [jira_mod.ENV_PROJECT, jira_mod.ENV_USER, jira_mod.ENV_TOKEN])
def test_jira_switched_on_without_a_setting_fails_at_start_naming_it(fake: FakeJira, store: Path, missing: str) -> None:
    env = {k: v for k, v in jira_env(fake).items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        jira_settings(env)
    result = cli(["run", "--wait-timeout", "1"], {**gate_env(store, decision=None), **env})
    assert result.returncode == 2
    assert missing in result.stderr and "Jira is on" in result.stderr
    assert not (store / "releases").exists()  # stopped before anything ran
    assert fake.issues == {}


def test_nothing_configured_means_the_local_tracker() -> None:
    assert jira_settings({}) is None


def test_a_refused_token_is_reported_without_the_token(fake: FakeJira, tmp_path: Path) -> None:
    settings = jira_settings(jira_env(fake, token="wrong-token-but-secret"))
    assert settings is not None and "wrong-token-but-secret" not in repr(settings)
    tracker = JiraTicketTracker(settings, ComplianceStore(str(tmp_path)))
    with pytest.raises(JiraError, match="HTTP 401") as failure:
        tracker.open_ticket("AI-REL-0000abcd", "run", "summary", "description")
    assert "wrong-token-but-secret" not in str(failure.value)
    assert not (tmp_path / "tickets").exists()


@pytest.fixture
def slack() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def test_run_signoff_in_jira_approve_deploy_and_rollback(fake: FakeJira, slack: Receiver, store: Path) -> None:
    """Jira and Slack both on: the ticket trail in Jira and the gate's messages in Slack."""
    env = {**gate_env(store, decision=None), **jira_env(fake), slack_mod.ENV_WEBHOOK: slack.url + HOOK_PATH}
    for name in ("TESTER", "APPROVER", "APPROVAL_RATIONALE"):
        env.pop(name, None)
    outputs: list[str] = []

    paused = cli(["run", "--wait-timeout", "1"], env)
    outputs += [paused.stdout, paused.stderr]
    assert paused.returncode == 5, paused.stdout + paused.stderr
    [(jira_key, issue)] = fake.issues.items()
    release_id = issue["labels"][0]
    assert release_id.startswith("AI-REL-") and issue["summary"].startswith(f"{release_id}: ")
    run_id = json.loads((store / "tickets" / f"{release_id}.jira.json").read_text())["run_id"]

    # "Tester ✓" typed in Jira is no sign-off (SIG-1: no personal signature, and a Jira account is not a person
    # of the registry), even in the gate's own comment format; the QA lead signs off with their own key
    fake.add_comment(jira_key, BOT, "Tester ✓ (the bot cannot sign off)")
    fake.add_comment(jira_key, QUINN, "Reviewed Annex IV and the fairness tables. Tester ✓")
    fake.add_comment(jira_key, QUINN, "[note] Quinn Tester: Tester ✓")
    early = cli(["approve", run_id, "--approve", "--rationale", "Meets KPIs", *signed_as("Jane Doe")], env)
    assert early.returncode == 2 and "SoD-3" in early.stderr, early.stdout + early.stderr
    signed = cli(["sign-off", run_id, *signed_as("Quinn Tester"), "--note", "Reviewed Annex IV"], env)
    assert signed.returncode == 0, signed.stdout + signed.stderr
    approved = cli(["approve", run_id, "--approve", "--rationale", "Meets KPIs", *signed_as("Jane Doe")], env)
    outputs += [approved.stdout, approved.stderr]
    assert approved.returncode == 0, approved.stdout + approved.stderr
    [record] = [json.loads(p.read_text()) for p in (store / "approvals").glob("*.json")]
    assert record["tester_signoff"]["tester"] == "Quinn Tester"
    assert record["tester_signoff"]["source"] == "cli"
    first_url = record["deployment_url"]

    second = cli(
        ["run", "--seed", "7"],
        {
            **env,
            "DEPLOY_APPROVAL": "y",
            "TESTER": "Quinn Tester",
            "APPROVER": "Sam Compliance",
            "APPROVAL_RATIONALE": "Quarterly refresh",
        },
    )
    outputs += [second.stdout, second.stderr]
    assert second.returncode == 0, second.stdout + second.stderr
    rolled = cli(["redeploy", "--url", first_url, "--reason", "drift on the new release", "--as", "Ada Lovelace"], env)
    outputs += [rolled.stdout, rolled.stderr]
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr

    first_issue = fake.issues[jira_key]
    bodies = [c["body"] for c in first_issue["comments"]]
    assert any(b.startswith("[decision] Jane Doe: Approved: Meets KPIs") for b in bodies)
    assert any(b.startswith("[deployment] credit-scorer: Deployed at http://127.0.0.1:") for b in bodies)
    assert any(b.startswith("[rollback] Ada Lovelace: Restored at") for b in bodies)
    [second_key] = [k for k in fake.issues if k != jira_key]
    second_issue = fake.issues[second_key]
    assert "ROLLED_BACK" in second_issue["labels"]  # Jira labels cannot hold spaces
    assert second_issue["status"] == "Rolled back"
    assert any(
        "ROLLED BACK to" in c["body"] and "drift on the new release" in c["body"] for c in second_issue["comments"]
    )
    assert {user for _, _, user, _ in fake.calls} == {BOT}  # every call authenticated as the bot

    texts = [m["text"] for m in slack.messages]
    assert any(
        t.startswith(f":hourglass: Approval requested for *{release_id}*") and "credit-scorer approve" in t
        for t in texts
    )
    assert any(t.startswith(f"*{release_id}* Decision by Jane Doe: Approved: Meets KPIs") for t in texts)
    assert any(t.startswith(f"*{release_id}* Deployed by credit-scorer: Deployed at http://127.0.0.1:") for t in texts)
    assert any(" Rollback by Ada Lovelace: ROLLED BACK to " + release_id in t for t in texts)

    # the secrets are nowhere: not in any output, not in any file of the compliance store
    for secret in (TOKEN, HOOK_PATH):
        assert not any(secret in text for text in outputs)
        for path in store.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
