"""A deployment that fails after approval, seen as "deploy failed", then retried live with ``credit-scorer deploy``.

Runs the real pipeline with automated approval on a port another process holds: the approval is recorded with
the error and the run fails. ``deployments`` and the ticket say "deploy failed" with the reason. Once the port
is free, another approver retries with the CLI and the approved model answers at that port, with its
release-log row and its own ledgered retry record; ``audit verify`` is clean.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from credit_scorer.apps.cli.main import app
from credit_scorer.records.release_log import parse_rows
from tests.integration.conftest import FAST, approvals, cli, gate_env, get_json

pytestmark = pytest.mark.integration


def ticket(store: Path, release_id: str) -> dict[str, Any]:
    return json.loads((store / "tickets" / f"{release_id}.json").read_text())  # type: ignore[no-any-return]


def test_a_deployment_that_failed_after_approval_is_retried_live_without_a_new_decision(store: Path) -> None:
    env = gate_env(store)
    with socket.socket() as taken:  # another process holds the release's port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = CliRunner().invoke(app, ["run", *FAST, "--port", str(port)], env=env)
        assert run.exit_code == 1, run.output
        [record] = approvals(store)
        release_id = record["release_id"]
        assert (record["approved"], record["deployment_url"]) == (True, None)
        assert f"port {port} on 127.0.0.1 is already in use" in record["deployment_error"]
        assert f"credit-scorer deploy {release_id} --as NAME" in " ".join(run.output.split())

        listed = cli(["deployments"], env)
        assert listed.returncode == 0, listed.stderr
        text = " ".join(listed.stdout.split())
        assert f"{release_id}" in text and "deploy failed" in text and f"port {port} on 127.0.0.1 is already" in text
        issue = ticket(store, release_id)
        assert issue["status"] == "deploy failed"
        assert f"port {port} on 127.0.0.1 is already in use" in issue["comments"][-1]["body"]

        held = cli(["deploy", release_id, "--as", "Sam Compliance", "--port", str(port)], env)
        assert held.returncode == 1, held.stdout + held.stderr  # still taken: the failed retry is recorded too
        assert len(list((store / "deploy_retries").glob("*.json"))) == 1

    retried = cli(["deploy", release_id, "--as", "Sam Compliance", "--port", str(port)], env)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    url = f"http://127.0.0.1:{port}"
    assert url in retried.stdout
    served = get_json(f"{url}/model")
    assert (served["release_id"], served["model_sha256"]) == (release_id, record["model_sha256"])
    [row] = parse_rows((store / "model_release_log.md").read_text())
    assert (row.event, row.release_id, row.approval_id, row.deployment_url, row.by) == (
        "release",
        release_id,
        record["approval_id"],
        url,
        "Sam Compliance",
    )
    retries = [json.loads(p.read_text()) for p in sorted((store / "deploy_retries").glob("*.json"))]
    assert [(r["retried_by"], r["deployment_url"]) for r in retries] == [
        ("Sam Compliance", None),
        ("Sam Compliance", url),
    ]
    assert approvals(store) == [record]  # the approval record is not rewritten, and no second decision exists
    assert ticket(store, release_id)["status"] == "deployed"

    listed = cli(["deployments"], env)
    assert "deploy failed" not in listed.stdout and "live" in listed.stdout
    again = cli(["deploy", release_id, "--as", "Jane Doe"], env)
    assert again.returncode == 2 and "is already live" in again.stderr
    verified = cli(["audit", "verify"], env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
