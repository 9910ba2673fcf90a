"""The activation gate: a server started with ``--activation-ledger FILE --activation-token TOKEN``.

It starts inactive (predict routes 503, nothing logged; ``/health`` and ``/model`` say
``"active": false``), becomes active when a complete line of FILE has ``"activates": TOKEN``,
and exits 5 ("never activated") when its stdin reaches EOF or the activation timeout passes
while still inactive. Once active it ignores EOF on stdin: it outlives the deploying process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from credit_scorer.domain.model import TrainedModel
from credit_scorer.serving.__main__ import EXIT_NEVER_ACTIVATED
from credit_scorer.serving.activation import ActivationGate
from credit_scorer.serving.app import create_app

from .conftest import train_on_bundled_data
from .serving_process import TABLE, Server, log_lines
from .test_serving import asgi

RELEASE = "AI-REL-ac000001"
TOKEN = "act-5f1e2d3c4b5a69788796a5b4c3d2e1f0"
NOT_ACTIVE = f"release {RELEASE} is not active yet: its approval has not been recorded"


@pytest.fixture(scope="module")
def trained() -> tuple[TrainedModel, pd.DataFrame]:
    """A 20-tree model on the bundled data, and 5 rows of its test split."""
    return train_on_bundled_data(n_estimators=20, test_rows=5)


def applicant(model: TrainedModel, rows: pd.DataFrame, i: int = 0) -> dict[str, Any]:
    return {f: rows[f].to_numpy()[i].item() for f in model.request_fields}


def append(ledger: Path, text: str) -> None:
    with open(ledger, "a") as handle:
        handle.write(text)


def activation_options(ledger: Path, *extra: str) -> list[str]:
    return ["--activation-ledger", str(ledger), "--activation-token", TOKEN, *extra]


def wait_for(condition: Any, timeout: float, step: float = 0.005) -> float:
    """Seconds until ``condition()`` was true; AssertionError after ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"not within {timeout} s"
        time.sleep(step)
    return time.monotonic() - started


def test_an_inactive_release_refuses_to_decide_and_logs_nothing(
    model_file: Path, model: TrainedModel, rows: pd.DataFrame, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    gate = ActivationGate(ledger, TOKEN)
    scoring = create_app(model_file, RELEASE, decision_log_dir=tmp_path / "log", reason_codes=TABLE, activation=gate)
    body = json.dumps(applicant(model, rows)).encode()
    batch = json.dumps({"applicants": [applicant(model, rows, i) for i in range(3)]}).encode()

    def refused() -> None:
        assert asgi(scoring, "POST", "/predict", body) == (503, {"detail": NOT_ACTIVE})
        assert asgi(scoring, "POST", "/predict/batch", batch) == (503, {"detail": NOT_ACTIVE})
        assert asgi(scoring, "GET", "/health") == (200, {"status": "ok", "decision_log": "ok", "active": False})
        status, info = asgi(scoring, "GET", "/model")
        assert status == 200 and info["active"] is False and info["model_sha256"] == model.sha256

    refused()
    assert gate.poll() is False  # no ledger yet: nothing recorded
    append(ledger, json.dumps({"activates": "another-release-token"}) + "\n")
    append(ledger, "not json\n" + json.dumps([TOKEN]) + "\n" + json.dumps({"token": TOKEN}) + "\n")
    append(ledger, json.dumps({"activates": TOKEN}))  # no newline yet: a line still being written
    assert gate.poll() is False
    refused()
    append(ledger, "\n")
    assert gate.poll() is True
    assert asgi(scoring, "POST", "/predict", body, headers={"X-Request-ID": "after"})[0] == 200
    assert asgi(scoring, "GET", "/health") == (200, {"status": "ok", "decision_log": "ok", "active": True})
    assert asgi(scoring, "GET", "/model")[1]["active"] is True
    scoring.state.decision_log.close()
    assert [line["request_id"] for line in log_lines(tmp_path / "log")] == ["after"]


def test_a_server_activates_on_its_token_and_then_outlives_its_parent(
    model_file: Path, model: TrainedModel, rows: pd.DataFrame, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"  # created later: a missing ledger means nothing yet
    server = Server(model_file, tmp_path / "log", RELEASE, *activation_options(ledger))
    try:
        assert server.wait_ready() == {"status": "ok", "decision_log": "ok", "active": False}
        assert server.get("/model")[1]["active"] is False
        assert server.call("POST", "/predict", applicant(model, rows)) == (503, {"detail": NOT_ACTIVE})

        append(ledger, json.dumps({"activates": "another-release-token"}) + "\n" + json.dumps({"activates": TOKEN}))
        watched_until = time.monotonic() + 0.3  # 15 polls of the ledger: other token, unfinished line
        while time.monotonic() < watched_until:
            assert server.get("/health")[1]["active"] is False
        append(ledger, "\n")
        elapsed = wait_for(lambda: server.get("/health")[1]["active"], timeout=5)
        assert elapsed < 0.5, f"activated {elapsed * 1000:.0f} ms after its token was recorded"
        assert server.get("/model")[1]["active"] is True

        assert server.process.stdin is not None
        server.process.stdin.close()  # the deploying process ends: an active server keeps serving
        serving_until = time.monotonic() + 0.5
        n = 0
        while time.monotonic() < serving_until:
            status, _ = server.call("POST", "/predict", applicant(model, rows), {"X-Request-ID": f"live-{n}"})
            assert status == 200
            n += 1
        assert server.process.poll() is None
        os.kill(server.process.pid, signal.SIGTERM)
        assert server.wait_exit() == 0, server.output()
    finally:
        server.kill()
    assert [line["request_id"] for line in log_lines(tmp_path / "log")] == [f"live-{i}" for i in range(n)]


def test_stdin_closed_before_activation_exits_5(model_file: Path, tmp_path: Path) -> None:
    server = Server(model_file, tmp_path / "log", RELEASE, *activation_options(tmp_path / "ledger.jsonl"))
    try:
        assert server.wait_ready()["active"] is False
        assert server.process.stdin is not None
        server.process.stdin.close()  # the deploying process died before recording the approval
        assert server.wait_exit(15) == EXIT_NEVER_ACTIVATED == 5
        assert f"release {RELEASE} was never activated: its stdin was closed" in server.output()
    finally:
        server.kill()
    assert log_lines(tmp_path / "log") == []


def test_a_token_recorded_just_before_stdin_closes_still_activates(
    model_file: Path, model: TrainedModel, rows: pd.DataFrame, tmp_path: Path
) -> None:
    """EOF makes the server read the ledger once more before giving up."""
    ledger = tmp_path / "ledger.jsonl"
    server = Server(model_file, tmp_path / "log", RELEASE, *activation_options(ledger))
    try:
        assert server.wait_ready()["active"] is False
        append(ledger, json.dumps({"activates": TOKEN}) + "\n")
        assert server.process.stdin is not None
        server.process.stdin.close()
        wait_for(lambda: server.process.poll() is not None or server.get("/health")[1]["active"], timeout=5)
        assert server.process.poll() is None, server.output()
        assert server.call("POST", "/predict", applicant(model, rows))[0] == 200
    finally:
        server.kill()


def test_inactive_past_the_activation_timeout_exits_5(model_file: Path, tmp_path: Path) -> None:
    options = activation_options(tmp_path / "ledger.jsonl", "--activation-timeout", "1.5")
    server = Server(model_file, tmp_path / "log", RELEASE, *options)
    try:
        assert server.wait_ready()["active"] is False
        started = time.monotonic()
        assert server.wait_exit(30) == EXIT_NEVER_ACTIVATED  # stdin stays open: only the timeout ends it
        assert time.monotonic() - started < 10
        assert "its approval was not recorded within 1.5 s" in server.output()
    finally:
        server.kill()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--activation-ledger", "ledger.jsonl"], "--activation-ledger needs --activation-token"),
        (["--activation-token", TOKEN], "--activation-token needs --activation-ledger"),
        (["--activation-timeout", "5"], "--activation-timeout needs --activation-ledger and --activation-token"),
        ([*activation_options(Path("ledger.jsonl")), "--activation-timeout", "0"], "must be a positive number"),
    ],
)
def test_activation_options_go_together(options: list[str], message: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "credit_scorer.serving", "--model", "m.json", "--release-id", RELEASE]
    command += ["--port", "8000", "--decision-log", str(tmp_path), *options]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert message in result.stderr
