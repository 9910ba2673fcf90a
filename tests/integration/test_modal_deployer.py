"""The Modal deployer against a stand-in ``modal`` executable (tests/fake_modal.py), since Modal cannot be
reached from here: the deployer runs the CLI, reads the web URL from its output and returns only once
/health and /model answer; ``modal app stop`` stops it; failures name the CLI's output without the
token. The stand-in serves the release with the container-side code of the generated app
(credit_scorer.adapters.modal.runtime) on 127.0.0.1, so the URL, /model and the decision log on the
"Volume" (a local folder) are real; Modal's own image build, Volume and routing are not tested.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from credit_scorer.adapters.endpoint import health_ok
from credit_scorer.adapters.factory import deployer_for
from credit_scorer.adapters.modal.app import app_name
from credit_scorer.adapters.modal.deployer import MASK, ModalDeployer, web_url
from credit_scorer.core.ports import DeploymentError
from credit_scorer.domain.model import TrainedModel
from credit_scorer.records import models as records
from credit_scorer.records.store import ComplianceStore

from ..fake_modal import calls, install_fake_cli, stop_all
from .conftest import REPO, cli, gate_env, train_on_bundled_data

pytestmark = pytest.mark.integration

TOKEN_ID = "ak-fake-id-4711abcdef"
TOKEN_SECRET = "as-fake-secret-0815ghijkl"
RELEASE = "AI-REL-0badcafe"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def trained() -> tuple[TrainedModel, pd.DataFrame]:
    return train_on_bundled_data(n_estimators=10, test_rows=5)



@pytest.fixture
def modal_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment of a Modal deployment with the stand-in CLI first on PATH and fake credentials."""
    bin_dir = tmp_path / "bin"
    install_fake_cli(bin_dir)
    state = tmp_path / "fake-modal"
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_MODAL_STATE": str(state),
        "FAKE_MODAL_VOLUMES": str(tmp_path / "volumes"),
        "CREDIT_SCORER_DEPLOYER": "modal",
        "MODAL_TOKEN_ID": TOKEN_ID,
        "MODAL_TOKEN_SECRET": TOKEN_SECRET,
        "MODAL_CONFIG_PATH": str(tmp_path / "absent-modal.toml"),
    }
    yield env
    stop_all(state)


@pytest.fixture
def deployer(modal_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModalDeployer:
    for name, value in modal_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CREDIT_SCORER_API_TOKEN_FILE", raising=False)
    chosen = deployer_for(ComplianceStore(str(tmp_path / "compliance")))
    assert isinstance(chosen, ModalDeployer)
    chosen.poll_interval = 0.1
    chosen.startup_timeout = 60.0
    return chosen


def get(url: str) -> dict[str, Any]:
    with NO_PROXY.open(url, timeout=10) as response:
        decoded: dict[str, Any] = json.loads(response.read())
    return decoded


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", "X-Request-ID": "req-1"}
    )
    with NO_PROXY.open(request, timeout=10) as response:
        decoded: dict[str, Any] = json.loads(response.read())
    return decoded


def store_text(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_deploy_lists_and_stops_a_release_through_the_modal_cli(
    deployer: ModalDeployer,
    model_file: Path,
    trained: tuple[TrainedModel, pd.DataFrame],
    modal_env: dict[str, str],
    tmp_path: Path,
) -> None:
    model, rows = trained
    state = Path(modal_env["FAKE_MODAL_STATE"])
    deployment = deployer.deploy(RELEASE, model_file, model.sha256)

    assert (deployment.backend, deployment.pid, deployment.release_id) == ("modal", 0, RELEASE)
    assert deployment.url.startswith("http://127.0.0.1:") and deployment.port == int(deployment.url.rsplit(":", 1)[1])
    [deploy_call] = calls(state)
    assert deploy_call[0] == "deploy" and deploy_call[1].endswith(".py")
    served = get(f"{deployment.url}/model")
    assert (served["release_id"], served["model_sha256"]) == (RELEASE, model.sha256)
    # What was deployed is kept in the store, and is what the CLI was given.
    saved = (tmp_path / "compliance" / deployer.app_source_path(RELEASE)).read_text()
    assert saved == (state / app_name(RELEASE) / Path(deploy_call[1]).name).read_text()
    assert f"MODEL_SHA256 = {model.sha256!r}" in saved

    applicant = {c: rows[c].to_numpy()[0].item() for c in model.input_columns}
    assert post(f"{deployment.url}/predict", applicant)["request_id"] == "req-1"
    [status] = deployer.list()
    assert status.alive and status.deployment == deployment
    assert deployer.deploy(RELEASE, model_file, model.sha256) == deployment  # already live: no new deploy
    assert len(calls(state)) == 1

    assert deployer.stop(RELEASE) is True
    assert calls(state)[-1] == ["app", "stop", app_name(RELEASE), "--yes"]
    assert not health_ok(deployment.url, timeout=1.0)
    assert deployer.list() == [] and deployer.stop(RELEASE) is False
    # The decision log went to the Volume, one folder per container, flushed at container exit.
    logs = list((tmp_path / "volumes" / "credit-scorer" / "compliance" / "decision_logs" / RELEASE).glob("*/*.jsonl"))
    assert [json.loads(line)["request_id"] for log in logs for line in log.read_text().splitlines()] == ["req-1"]
    # Fake credentials never reach the store (state, app file, CLI log).
    text = store_text(tmp_path / "compliance")
    assert TOKEN_ID not in text and TOKEN_SECRET not in text


def test_a_failed_deploy_shows_the_output_with_the_token_masked(
    deployer: ModalDeployer,
    model_file: Path,
    trained: tuple[TrainedModel, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("FAKE_MODAL_DEPLOY_FAIL", "1")  # the stand-in prints the token secret in its error
    with pytest.raises(DeploymentError, match=r"`modal deploy` of release .* failed \(exit 1\)") as caught:
        deployer.deploy(RELEASE, model_file, trained[0].sha256)
    assert "Token validation failed" in str(caught.value) and MASK in str(caught.value)
    assert TOKEN_SECRET not in str(caught.value)
    log = (tmp_path / "compliance" / deployer.log_path(RELEASE)).read_text()
    assert "Token validation failed" in log and TOKEN_SECRET not in log
    assert deployer.get(RELEASE) is None


def test_an_app_serving_another_release_is_stopped_and_not_recorded(
    deployer: ModalDeployer,
    model_file: Path,
    trained: tuple[TrainedModel, pd.DataFrame],
    modal_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_MODAL_SERVE_RELEASE", "AI-REL-other")
    with pytest.raises(DeploymentError, match=r"reports release 'AI-REL-other'.*was stopped"):
        deployer.deploy(RELEASE, model_file, trained[0].sha256)
    assert calls(Path(modal_env["FAKE_MODAL_STATE"]))[-1] == ["app", "stop", app_name(RELEASE), "--yes"]
    assert deployer.get(RELEASE) is None and deployer.list() == []


def test_the_web_url_is_the_endpoint_not_the_dashboard() -> None:
    output = (
        "✓ Initialized. View run at https://modal.com/apps/ws/main/ap-123\n"
        "└── 🔨 Created class Scorer.\n"
        "    └── web -> https://ws--credit-scorer-ai-rel-1-scorer-web.modal.run (unauthenticated)\n"
        "View Deployment: https://modal.com/apps/ws/main/deployed/credit-scorer-ai-rel-1\n"
    )
    assert web_url(output) == "https://ws--credit-scorer-ai-rel-1-scorer-web.modal.run"
    assert web_url("View Deployment: https://modal.com/apps/ws/main/deployed/x") is None




def test_a_modal_run_without_a_token_stops_at_start_naming_it(modal_env: dict[str, str], store: Path) -> None:
    env = {k: v for k, v in modal_env.items() if k != "MODAL_TOKEN_ID"}
    result = cli(["run", "--wait-timeout", "1"], {**gate_env(store, decision=None), **env, "MODAL_TOKEN_ID": ""})
    assert result.returncode == 2, result.stderr
    assert "MODAL_TOKEN_ID is not set" in result.stderr and "CREDIT_SCORER_DEPLOYER=modal" in result.stderr
    assert TOKEN_SECRET not in result.stdout + result.stderr
    assert not store.exists()  # stopped before anything ran


def test_a_release_goes_live_on_modal_through_the_pipeline(modal_env: dict[str, str], store: Path) -> None:
    """`credit-scorer run` with the automated approval: the deploy step uses the Modal deployer."""
    result = cli(["run"], {**gate_env(store), **modal_env})
    assert result.returncode == 0, result.stdout + result.stderr
    [record] = [r for r in records.read_approvals(ComplianceStore(str(store))) if r.approved]
    assert record.deployment_url and record.deployment_url.startswith("http://127.0.0.1:")
    state = json.loads((store / "deployments" / "modal" / f"{record.release_id}.json").read_text())
    assert state["backend"] == "modal" and state["url"] == record.deployment_url
    assert get(f"{record.deployment_url}/model")["model_sha256"] == record.model_sha256
    listed = cli(["deployments"], {**gate_env(store), **modal_env})
    assert record.release_id in listed.stdout and "modal" in listed.stdout and "live" in listed.stdout
    stopped = cli(["deployments", "stop"], {**gate_env(store), **modal_env})
    assert f"{record.release_id}: stopped" in stopped.stdout
    assert not health_ok(record.deployment_url, timeout=1.0)
    everything = result.stdout + result.stderr + listed.stdout + stopped.stdout + store_text(store)
    assert TOKEN_ID not in everything and TOKEN_SECRET not in everything


def test_the_package_as_modal_ships_it_serves_the_release(
    trained: tuple[TrainedModel, pd.DataFrame], model_file: Path, tmp_path: Path
) -> None:
    """The generated app adds the package with ``add_local_python_source``, whose default filter
    (Modal's own ``NON_PYTHON_FILES``) leaves out every non-Python file: the YAML resources,
    templates and data. The container side must serve a release from such a copy."""
    from modal.file_pattern_matcher import NON_PYTHON_FILES

    import credit_scorer

    package = Path(credit_scorer.__file__).parent
    shipped = tmp_path / "image" / "credit_scorer"
    copied = 0
    for path in package.rglob("*"):
        relative = path.relative_to(package)
        if path.is_file() and "__pycache__" not in relative.parts and not NON_PYTHON_FILES(relative):
            (shipped / relative).parent.mkdir(parents=True, exist_ok=True)
            (shipped / relative).write_bytes(path.read_bytes())
            copied += 1
    assert copied > 30 and not list(shipped.rglob("*.yaml"))
    row = trained[1].iloc[0]
    body = json.dumps({f: row[f].item() for f in trained[0].request_fields})
    script = f"""
import asyncio, hashlib, json, sys
from pathlib import Path
sys.path.insert(0, {str(shipped.parent)!r})
import credit_scorer
assert credit_scorer.__file__.startswith({str(shipped)!r}), credit_scorer.__file__
from credit_scorer.adapters.modal.runtime import close_scoring_app, open_scoring_app
model = Path({str(model_file)!r})
app = open_scoring_app("{RELEASE}", hashlib.sha256(model.read_bytes()).hexdigest(), model,
                       Path({str(REPO / "conf" / "reason_codes.yaml")!r}), Path({str(tmp_path / "volume")!r}),
                       tokens_required=False, env={{"MODAL_TASK_ID": "ta-1"}})
sent = []
incoming = [{{"type": "http.request", "body": {body!r}.encode(), "more_body": False}}]
async def receive():
    return incoming.pop(0) if incoming else {{"type": "http.disconnect"}}
async def send(message):
    sent.append(message)
scope = {{"type": "http", "method": "POST", "path": "/predict", "headers": [], "query_string": b""}}
asyncio.run(app(scope, receive, send))
close_scoring_app(app)
print(sent[0]["status"], sent[1]["body"].decode())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    status, answer = done.stdout.strip().split(" ", 1)
    assert status == "200", answer
    assert json.loads(answer)["release_id"] == RELEASE
    [log] = (tmp_path / "volume" / "ta-1").glob("*.jsonl")
    assert json.loads(log.read_text())["release_id"] == RELEASE
