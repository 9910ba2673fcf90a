"""The scoring app and the local deployer, on a small model trained on the bundled data.

The app is exercised in-process through its ASGI interface (``httpx`` is not installed, so
FastAPI's TestClient is unavailable); the deployer tests start real uvicorn processes and
talk to them over HTTP. Every process started here is stopped by a fixture finalizer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI

from credit_scorer.adapters.local_deployer import LocalDeployer
from credit_scorer.core.ports import Deployment, DeploymentError
from credit_scorer.domain.model import TrainedModel
from credit_scorer.serving.app import ModelLoadError, create_app

from .conftest import train_on_bundled_data

pytestmark = pytest.mark.integration

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ---------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained() -> tuple[TrainedModel, pd.DataFrame]:
    """A 20-tree model on the bundled data, and its test split."""
    return train_on_bundled_data(n_estimators=20, test_rows=20)



@pytest.fixture(scope="module")
def app(model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    scoring = create_app(model_file, "rel-test", decision_log_dir=tmp_path_factory.mktemp("decision-log"))
    yield scoring
    scoring.state.decision_log.close()


def applicant(model: TrainedModel, rows: pd.DataFrame, i: int) -> dict[str, Any]:
    """Row ``i`` as a /predict body: every input column, as JSON numbers."""
    return {c: rows[c].to_numpy()[i].item() for c in model.input_columns}


def with_literal(body: dict[str, Any], field: str, literal: str) -> bytes:
    """``body`` as JSON with ``field`` set to a raw JSON literal, or removed for ``__missing__``."""
    if literal == "__missing__":
        return json.dumps({k: v for k, v in body.items() if k != field}).encode()
    return json.dumps({**body, field: "__literal__"}).replace('"__literal__"', literal).encode()


def asgi(
    app: FastAPI, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """One HTTP request through the app's ASGI interface: (status, decoded JSON)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"test"),
            (b"content-type", b"application/json"),
            *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(payload)


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, Any]:
    """A real HTTP request (no proxy): (status, decoded JSON)."""
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with NO_PROXY.open(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def serving_pids(fragment: str) -> list[int]:
    """Pids of scoring servers whose command line mentions ``fragment``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if b"credit_scorer.serving" in argv and any(fragment.encode() in a for a in argv) and state != "Z":
            found.append(int(proc.name))
    return found


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def deployer(tmp_path: Path) -> Iterator[LocalDeployer]:
    """A LocalDeployer in a temporary state dir; afterwards nothing it started is left running."""
    state_dir = tmp_path / "deployments"
    yield LocalDeployer(state_dir)
    for status in LocalDeployer(state_dir).list():
        LocalDeployer(state_dir).stop(status.deployment.release_id)
    for pid in serving_pids(str(tmp_path)):  # belt and braces: anything still serving from tmp_path
        os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------
# The app, in-process
# ---------------------------------------------------------------------------
def test_health_and_model_report_the_served_version(app: FastAPI, model: TrainedModel) -> None:
    assert asgi(app, "GET", "/health") == (200, {"status": "ok", "decision_log": "ok", "active": True})
    status, info = asgi(app, "GET", "/model")
    assert status == 200
    assert info["release_id"] == "rel-test"
    assert info["model_sha256"] == model.sha256
    assert info["decision_threshold"] == model.decision_threshold
    assert info["features"] == [*model.input_columns, *(f.name for f in model.derived_features)]
    assert info["features"] == model.feature_names
    assert info["active"] is True  # no activation ledger: active at once


def test_predict_equals_the_trained_model(app: FastAPI, model: TrainedModel, rows: pd.DataFrame) -> None:
    expected = model.predict_default_proba(rows)
    for i in range(len(rows)):
        status, answer = asgi(app, "POST", "/predict", json.dumps(applicant(model, rows, i)).encode())
        assert status == 200, answer
        assert answer["probability_of_default"] == pytest.approx(expected[i], abs=1e-9)
        assert answer["decision"] == ("decline" if expected[i] >= model.decision_threshold else "approve")
        assert answer["release_id"] == "rel-test"
        assert answer["model_sha256"] == model.sha256


def test_decision_flips_at_the_threshold(
    app: FastAPI, model: TrainedModel, rows: pd.DataFrame, tmp_path: Path
) -> None:
    body = json.dumps(applicant(model, rows, 0)).encode()
    proba = asgi(app, "POST", "/predict", body)[1]["probability_of_default"]
    decisions = {}
    for name, threshold in [("at", proba), ("above", float(np.nextafter(proba, 1.0)))]:
        moved = model.model_copy(update={"decision_threshold": threshold})
        path = tmp_path / f"{name}.json"
        path.write_bytes(moved.to_bytes())
        moved_app = create_app(path, "rel-test", decision_log_dir=tmp_path / name)
        status, answer = asgi(moved_app, "POST", "/predict", body)
        moved_app.state.decision_log.close()
        assert status == 200
        assert answer["probability_of_default"] == proba
        decisions[name] = answer["decision"]
    assert decisions == {"at": "decline", "above": "approve"}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("__missing__", "is required"),
        ('"12000"', "got a string"),
        ("true", "got a boolean"),
        ("null", "got null"),
        ("[1]", "got an array"),
        ("1.5", "must be an integer"),
        ("10", "must be one of -2, -1, 0, 1"),
        ("-3", "must be one of -2, -1, 0, 1"),
        ("NaN", "must be a finite number"),
        ("Infinity", "must be a finite number"),
        ("1e999", "must be a finite number"),
        ("-1e999", "must be a finite number"),
        ("1" + "0" * 400, "must be a finite number"),
    ],
)
def test_bad_field_is_a_422_naming_the_field(
    app: FastAPI, model: TrainedModel, rows: pd.DataFrame, value: str, fragment: str
) -> None:
    field = model.input_columns[3]
    status, answer = asgi(app, "POST", "/predict", with_literal(applicant(model, rows, 0), field, value))
    assert status == 422, answer
    assert len(answer["detail"]) == 1
    (error,) = answer["detail"]
    assert error["loc"] == ["body", field]
    assert field in error["msg"] and fragment in error["msg"]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [(b"not json", "not valid JSON"), (b"[1, 2]", "JSON object"), (b"", "not valid JSON"), (b"\xff", "JSON")],
)
def test_malformed_body_is_a_422(app: FastAPI, raw: bytes, fragment: str) -> None:
    status, answer = asgi(app, "POST", "/predict", raw)
    assert status == 422
    assert fragment in answer["detail"][0]["msg"]


def test_every_missing_field_is_listed(app: FastAPI, model: TrainedModel) -> None:
    status, answer = asgi(app, "POST", "/predict", b"{}")
    assert status == 422
    assert [e["loc"][1] for e in answer["detail"]] == model.input_columns


def test_app_refuses_a_missing_or_corrupt_model_file(model: TrainedModel, tmp_path: Path) -> None:
    logs = tmp_path / "log"
    with pytest.raises(ModelLoadError, match="does not exist"):
        create_app(tmp_path / "absent.json", "rel-test", decision_log_dir=logs)
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\x00{not json")
    with pytest.raises(ModelLoadError, match="not a credit-scorer model"):
        create_app(garbage, "rel-test", decision_log_dir=logs)
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(model.to_bytes()[:-40])
    with pytest.raises(ModelLoadError, match=str(truncated)):
        create_app(truncated, "rel-test", decision_log_dir=logs)
    damaged = tmp_path / "damaged.json"
    damaged.write_bytes(model.model_copy(update={"booster": "tree\nnot a booster"}).to_bytes())
    with pytest.raises(ModelLoadError, match="booster"):
        create_app(damaged, "rel-test", decision_log_dir=logs)


# ---------------------------------------------------------------------------
# The local deployer, with real processes
# ---------------------------------------------------------------------------
def test_deploy_outlives_its_caller_then_stops(
    deployer: LocalDeployer, model: TrainedModel, rows: pd.DataFrame, model_file: Path
) -> None:
    # Deploy from a separate Python process that exits: the server must keep running.
    script = (
        "import sys; from pathlib import Path; from credit_scorer.adapters.local_deployer import LocalDeployer; "
        "d = LocalDeployer(Path(sys.argv[1])).deploy('rel-1', Path(sys.argv[2]), sys.argv[3]); "
        "sys.stdout.write(d.model_dump_json())"
    )
    caller = subprocess.run(
        [sys.executable, "-c", script, str(deployer.state_dir), str(model_file), model.sha256],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert caller.returncode == 0, caller.stderr
    deployment = Deployment.model_validate_json(caller.stdout)
    assert deployment.url == f"http://127.0.0.1:{deployment.port}"
    assert deployment.model_sha256 == model.sha256
    assert os.getsid(deployment.pid) == deployment.pid != os.getsid(0)  # its own session

    status, info = http("GET", f"{deployment.url}/model")
    assert status == 200 and info["model_sha256"] == model.sha256 and info["release_id"] == "rel-1"
    status, answer = http("POST", f"{deployment.url}/predict", json.dumps(applicant(model, rows, 1)).encode())
    assert status == 200
    assert answer["probability_of_default"] == pytest.approx(model.predict_default_proba(rows)[1], abs=1e-9)
    raw = with_literal(applicant(model, rows, 1), model.input_columns[0], "1e999")
    status, answer = http("POST", f"{deployment.url}/predict", raw)
    assert status == 422 and answer["detail"][0]["loc"] == ["body", model.input_columns[0]]

    (listed,) = deployer.list()
    assert listed.alive and listed.deployment == deployment
    assert deployer.find_by_url(f"http://localhost:{deployment.port}/") == deployment
    assert deployer.find_by_url("http://127.0.0.1:1") is None
    assert deployer.deploy("rel-1", model_file, model.sha256) == deployment  # idempotent
    with pytest.raises(DeploymentError, match="already deployed"):
        deployer.deploy("rel-1", model_file, model.sha256, port=deployment.port + 1)

    assert deployer.stop("rel-1") is True
    assert not port_open(deployment.port)
    assert not (deployer.state_dir / "rel-1.json").exists()
    assert deployment.pid not in serving_pids("rel-1")
    assert deployer.stop("rel-1") is False
    assert deployer.list() == []


def test_deploy_in_process_on_a_given_port(
    deployer: LocalDeployer, model: TrainedModel, model_file: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    deployment = deployer.deploy("rel-2", model_file, model.sha256, port=port)
    assert deployment.port == port
    saved = Deployment.model_validate_json((deployer.state_dir / "rel-2.json").read_bytes())
    assert saved == deployment
    assert [s.alive for s in deployer.list()] == [True]
    assert deployer.stop("rel-2") is True
    assert not port_open(port)
    assert deployer.list() == []


def test_busy_port_is_refused_by_number(deployer: LocalDeployer, model: TrainedModel, model_file: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(DeploymentError, match=f"port {port} "):
            deployer.deploy("rel-busy", model_file, model.sha256, port=port)
    assert not (deployer.state_dir / "rel-busy.json").exists()
    assert serving_pids("rel-busy") == []


def test_corrupt_model_file_leaves_nothing_behind(deployer: LocalDeployer, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_bytes(b'{"booster": "truncated')
    sha = hashlib.sha256(corrupt.read_bytes()).hexdigest()
    started = time.monotonic()
    with pytest.raises(DeploymentError, match="exited with code 2") as failure:
        deployer.deploy("rel-bad", corrupt, sha)
    assert "not a credit-scorer model" in str(failure.value)  # the log tail says why
    assert time.monotonic() - started < 25
    assert not (deployer.state_dir / "rel-bad.json").exists()
    assert serving_pids(str(corrupt)) == []
    assert deployer.list() == []


def test_wrong_sha_or_missing_file_is_refused_before_starting(
    deployer: LocalDeployer, model_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(DeploymentError, match="not the expected"):
        deployer.deploy("rel-sha", model_file, "0" * 64)
    with pytest.raises(DeploymentError, match="does not exist"):
        deployer.deploy("rel-sha", tmp_path / "absent.json", "0" * 64)
    with pytest.raises(DeploymentError, match="release id"):
        deployer.deploy("../escape", model_file, "0" * 64)
    assert serving_pids("rel-sha") == []
    assert list(deployer.state_dir.glob("*.json")) == []


def test_stop_never_signals_a_reused_pid(deployer: LocalDeployer, model: TrainedModel) -> None:
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        record = Deployment(
            release_id="rel-gone",
            url="http://127.0.0.1:9",
            model_sha256=model.sha256,
            model_path="/nowhere.json",
            port=9,
            pid=stranger.pid,
            started_at="2024-01-01T00:00:00Z",
        )
        deployer.state_dir.mkdir(parents=True, exist_ok=True)
        (deployer.state_dir / "rel-gone.json").write_text(record.model_dump_json())
        (status,) = deployer.list()
        assert status.alive is False
        assert deployer.stop("rel-gone") is False
        assert stranger.poll() is None  # untouched
        assert not (deployer.state_dir / "rel-gone.json").exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_probabilities_are_finite_at_the_edges_of_every_valid_range(app: FastAPI, model: TrainedModel) -> None:
    assert model.input_contract is not None
    lowest = {r.name: (r.codes[0] if r.codes else r.min) for r in model.input_contract.fields}
    highest = {r.name: (r.codes[-1] if r.codes else r.max) for r in model.input_contract.fields}
    for body in (lowest, highest):
        status, answer = asgi(app, "POST", "/predict", json.dumps(body).encode())
        assert status == 200, answer
        assert 0.0 <= answer["probability_of_default"] <= 1.0
