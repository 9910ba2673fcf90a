"""The generated Modal app definition, checked without Modal: it compiles; importing it builds the App,
Image, Volume and class locally with every network call refused; it names the release, sha256 and
volume; its pins are requirements.lock's and cover what the scoring service imports; no secret in it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from credit_scorer.adapters.modal.app import (
    SERVING_DISTRIBUTIONS,
    ModalAppSpec,
    app_name,
    decision_log_path,
    render_app_source,
    runtime_pins,
)
from credit_scorer.adapters.modal.runtime import ModelFileMismatch, api_tokens, decision_log_folder, open_scoring_app
from credit_scorer.core.ports import DeploymentError
from credit_scorer.core.settings import API_TOKENS_ENV

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements.lock"
SHA = hashlib.sha256(b"model").hexdigest()
SECRETS = {
    "MODAL_TOKEN_ID": "ak-fake-token-id-4711",
    "MODAL_TOKEN_SECRET": "as-fake-token-secret-0815",
    API_TOKENS_ENV: "bearer-token-for-tests-123456",
}
# Imported by the scoring service here only because they are installed (optional imports of joblib,
# scikit-learn and requests-style helpers), so the image does without them (checked below);
# setuptools appears through its distutils hook; credit-scorer is added as local source.
OPTIONAL_HERE = {"psutil", "rich", "charset-normalizer", "setuptools", "credit-scorer"}


def spec(**overrides: object) -> ModalAppSpec:
    fields: dict[str, object] = {
        "release_id": "AI-REL-56a46d43",
        "model_sha256": SHA,
        "volume": "credit-scorer",
        "volume_folder": "compliance",
        "min_containers": 1,
        "scaledown_window": 300,
        "max_inputs": 32,
        "api_token_secret": None,
        "pins": runtime_pins(LOCK),
    }
    return ModalAppSpec.model_validate(fields | overrides)


def lock_lines() -> dict[str, str]:
    """requirements.lock as {lower-case name with '-': 'name==version' line}, parsed here independently."""
    lines = [line.split(";")[0].rstrip("\\ ").strip() for line in LOCK.read_text().splitlines() if "==" in line]
    return {line.split("==")[0].lower().replace("_", "-").replace(".", "-"): line for line in lines}


# Importing the generated file in a fresh interpreter in which every connection and DNS lookup fails.
OFFLINE_IMPORT = """
import importlib.util, json, socket, sys
def refuse(*args, **kwargs):
    raise RuntimeError(f"network call attempted: {args!r}")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
spec = importlib.util.spec_from_file_location("release_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
import modal
print(json.dumps({
    "app_type": type(module.app).__name__,
    "app_name": module.app.name,
    "cls_is_modal_cls": isinstance(module.Scorer, modal.Cls),
    "image_type": type(module.image).__name__,
    "volume_type": type(module.volume).__name__,
    "secrets": len(module.secrets),
    "constants": {k: getattr(module, k) for k in (
        "APP_NAME", "RELEASE_ID", "MODEL_SHA256", "VOLUME_NAME", "VOLUME_MOUNT", "DECISION_LOG_DIR",
        "MODEL_FILE", "API_TOKEN_SECRET", "MIN_CONTAINERS", "SCALEDOWN_WINDOW", "MAX_INPUTS", "PIP_PINS")},
}))
"""


def write_app(folder: Path, source: str) -> Path:
    (folder / "model.json").write_bytes(b"model")
    (folder / "reason_codes.yaml").write_text("version: test\nreasons: {}\n")
    path = folder / "credit_scorer_ai_rel_56a46d43.py"
    path.write_text(source)
    return path


def test_the_generated_file_compiles() -> None:
    compile(render_app_source(spec()), "release_app.py", "exec")


def test_rendering_is_pure() -> None:
    assert render_app_source(spec()) == render_app_source(spec())


def test_importing_it_builds_the_app_locally_without_any_network_call(tmp_path: Path) -> None:
    path = write_app(tmp_path, render_app_source(spec(api_token_secret="credit-scorer-api-tokens")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    env["MODAL_CONFIG_PATH"] = str(tmp_path / "no-modal.toml")
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE_IMPORT, str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    built = json.loads(result.stdout)
    assert built["app_type"] == "App" and built["app_name"] == "credit-scorer-ai-rel-56a46d43"
    assert built["cls_is_modal_cls"] and built["image_type"] == "Image" and built["volume_type"] == "Volume"
    assert built["secrets"] == 1
    constants = built["constants"]
    assert constants["RELEASE_ID"] == "AI-REL-56a46d43"
    assert constants["MODEL_SHA256"] == SHA
    assert constants["VOLUME_NAME"] == "credit-scorer"
    assert constants["DECISION_LOG_DIR"] == f"{constants['VOLUME_MOUNT']}/compliance/decision_logs/AI-REL-56a46d43"
    assert constants["API_TOKEN_SECRET"] == "credit-scorer-api-tokens"
    assert (constants["MIN_CONTAINERS"], constants["SCALEDOWN_WINDOW"], constants["MAX_INPUTS"]) == (1, 300, 32)


def test_the_pins_are_exactly_the_lock_lines() -> None:
    lock = lock_lines()
    pins = runtime_pins(LOCK)
    for pin in pins:
        name, version = pin.split("==")
        assert lock[name].split("==")[1] == version, pin
    names = {p.split("==")[0] for p in pins}
    for root in SERVING_DISTRIBUTIONS:
        assert root.lower() in names
    assert "uvicorn" not in names and "zenml" not in names and "torch" not in names
    source = render_app_source(spec())
    assert all(repr(pin) in source for pin in pins)


def test_the_pins_cover_every_distribution_the_scoring_service_imports() -> None:
    probe = (
        "import importlib.metadata as md, json, sys\n"
        "import credit_scorer.serving.app\n"
        "found = md.packages_distributions()\n"
        "print(json.dumps(sorted({d for m in list(sys.modules) for d in found.get(m.split('.')[0], [])})))"
    )
    imported = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout)
    pinned = {p.split("==")[0] for p in runtime_pins(LOCK)}
    canonical = {d.lower().replace("_", "-").replace(".", "-") for d in imported}
    assert canonical - pinned <= OPTIONAL_HERE, canonical - pinned - OPTIONAL_HERE


def test_the_scoring_service_imports_without_the_optional_packages() -> None:
    blocked = "import sys\nfor m in ('psutil', 'rich', 'charset_normalizer'): sys.modules[m] = None\n"
    result = subprocess.run(
        [sys.executable, "-c", blocked + "import credit_scorer.serving.app"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_no_secret_from_the_environment_reaches_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    source = render_app_source(spec(api_token_secret="credit-scorer-api-tokens"))
    for value in SECRETS.values():
        assert value not in source
    assert "credit-scorer-api-tokens" in source  # only the Secret's name


def test_app_names_come_from_the_release_id() -> None:
    assert app_name("AI-REL-56a46d43") == "credit-scorer-ai-rel-56a46d43"
    assert app_name("rel_1.2") == "credit-scorer-rel-1-2"
    with pytest.raises(DeploymentError, match="too long for a Modal app name"):
        app_name("r" * 60)


def test_decision_log_path_inside_the_volume() -> None:
    assert decision_log_path("compliance", "AI-REL-1") == "/mnt/credit-scorer/compliance/decision_logs/AI-REL-1"
    assert decision_log_path("", "AI-REL-1") == "/mnt/credit-scorer/decision_logs/AI-REL-1"
    assert decision_log_path("a/b/", "AI-REL-1") == "/mnt/credit-scorer/a/b/decision_logs/AI-REL-1"


# ---------------------------------------------------------------------------
# What a container runs (credit_scorer.adapters.modal.runtime)
# ---------------------------------------------------------------------------
def test_a_container_refuses_a_model_file_with_another_sha256(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    model.write_bytes(b"not the release's model")
    with pytest.raises(ModelFileMismatch, match="not serving it") as caught:
        open_scoring_app("AI-REL-1", SHA, model, tmp_path / "reasons.yaml", tmp_path / "log", tokens_required=False)
    assert SHA in str(caught.value)
    assert not (tmp_path / "log").exists()  # refused before anything was opened


def test_tokens_come_from_the_secret_variable() -> None:
    assert api_tokens({}, required=False) == []
    assert api_tokens({API_TOKENS_ENV: "# a comment\n\nabcdefghijklmnop\n qrstuvwxyz012345 \n"}, required=True) == [
        "abcdefghijklmnop",
        "qrstuvwxyz012345",
    ]
    with pytest.raises(ValueError, match=f"{API_TOKENS_ENV} holds no token"):
        api_tokens({}, required=True)
    with pytest.raises(ValueError, match="at least 16 characters") as caught:
        api_tokens({API_TOKENS_ENV: "short-secret"}, required=True)
    assert "short-secret" not in str(caught.value)


def test_each_container_logs_decisions_in_a_folder_of_its_own(tmp_path: Path) -> None:
    assert decision_log_folder(tmp_path, {"MODAL_TASK_ID": "ta-01ABC"}) == tmp_path / "ta-01ABC"
    assert decision_log_folder(tmp_path, {"MODAL_TASK_ID": "../x"}) == tmp_path / "___x"
    assert decision_log_folder(tmp_path, {}).name == f"pid-{os.getpid()}"
