"""Shared set-up for tests that take a run through the release gate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEMO_PASSWORD, PASSWORD_FILES, password_file

REPO = Path(__file__).resolve().parents[2]
PEOPLE = REPO / "conf" / "people.yaml"
CLI = str(Path(sys.executable).with_name("credit-scorer"))

DEMO = {
    "SUBMITTER": "Ada Lovelace",
    "TESTER": "Quinn Tester",
    "APPROVER": "Jane Doe",
    "APPROVAL_RATIONALE": "Meets KPIs; risk acceptable",
}


def stop_all(store: Path) -> None:
    """Stop every scoring endpoint started against this store."""
    from credit_scorer.adapters.local_deployer import LocalDeployer
    from credit_scorer.records.store import ComplianceStore

    state = store / "deployments"
    if state.exists():
        deployer = LocalDeployer(state, store=ComplianceStore(str(store)))
        for status in deployer.list():
            deployer.stop(status.deployment.release_id)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    """A fresh compliance store; every endpoint started against it is stopped afterwards."""
    path = tmp_path / "compliance"
    yield path
    stop_all(path)


GATE_VARIABLES = ("SUBMITTER", "TESTER", "TESTER_NOTE", "DEPLOY_APPROVAL", "APPROVER", "APPROVAL_RATIONALE")


@pytest.fixture(autouse=True)
def no_gate_variables_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set the gate's variables themselves; none leak in from the shell (e.g. `make run`'s)."""
    for name in GATE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def gate_env(store: Path, decision: str | None = "y", **overrides: str) -> dict[str, str]:
    """Environment for a CLI run: demo people (with their password files), this store, and DEPLOY_APPROVAL
    (None = unset)."""
    env = {**DEMO, "CREDIT_SCORER_STORE": str(store), "CREDIT_SCORER_PEOPLE": str(PEOPLE), **overrides}
    if decision is not None:
        env["DEPLOY_APPROVAL"] = decision
    for person, secret in (("TESTER", "TESTER_PASSWORD_FILE"), ("APPROVER", "APPROVER_PASSWORD_FILE")):
        if env.get(person) in PASSWORD_FILES and secret not in env:  # the CI job's secrets for its people
            env[secret] = str(password_file(env[person]))
    return env


def train_on_bundled_data(n_estimators: int, test_rows: int) -> tuple[Any, Any]:
    """A small model trained on the bundled data (no ZenML), and the first rows of its test split."""
    from credit_scorer.domain import data, train
    from credit_scorer.domain.config import load_dataset_spec, training_config

    spec = load_dataset_spec()
    config = training_config(n_estimators=n_estimators)
    frame, _ = data.load_dataset(spec)
    clean, _ = data.validate_dataset(frame, spec)
    train_part, valid_part, test_part, _ = data.split_dataset(clean, spec, config)
    model = train.train_model(train_part, valid_part, spec, config)
    return model, test_part.head(test_rows).reset_index(drop=True)


def built_candidate(run_id: str, n_estimators: int, seed: int = 42, sample_rows: int = 6000) -> tuple[Any, Any]:
    """A tiny model on a sample of the bundled data and the release candidate the gate sees for it (no ZenML)."""
    from credit_scorer.core.ids import release_key
    from credit_scorer.domain import checks, data, evaluate, fairness, risk, train
    from credit_scorer.domain.config import load_dataset_spec, load_policy, training_config
    from credit_scorer.release import workflow

    spec, policy = load_dataset_spec(), load_policy()
    frame, info = data.load_dataset(spec)
    clean, quality = data.validate_dataset(frame, spec)
    sample = clean.sample(n=sample_rows, random_state=0).reset_index(drop=True)
    config = training_config(n_estimators=n_estimators, seed=seed)
    train_part, valid_part, test_part, _ = data.split_dataset(sample, spec, config)
    model = train.train_model(train_part, valid_part, spec, config)
    ev = evaluate.evaluate_model(model, test_part, spec)
    fr = fairness.assess_fairness(model, test_part, spec, policy.fairness)
    ra = risk.assess_risk(risk.load_risk_register(), risk.risk_measurements(ev, fr, quality, model, policy.thresholds))
    candidate = workflow.ReleaseCandidate(
        run_id=run_id,
        release_id=release_key(run_id),
        submitter=DEMO["SUBMITTER"],
        checks=checks.threshold_checks(ev, fr, ra, policy.thresholds),
        evaluation=ev,
        fairness=fr,
        risk=ra,
        model_sha256=model.sha256,
        dataset_sha256=info.sha256,
        decision_threshold=model.decision_threshold,
    )
    return model, candidate


def person(store: Any, name: str) -> Any:
    """``name``'s unlocked signing key for ``store`` (the session's sealed key, adopted by the store if new)."""
    from credit_scorer.records import identities

    identities.adopt_sealed(store, [name])
    return identities.unlock(store, name, DEMO_PASSWORD)


def approved_decision(store: Any, candidate: Any, rationale: str = "Meets KPIs; risk acceptable") -> Any:
    """Jane Doe's CLI approval of a candidate, signed by her, with the tester's latest sign-off (an override if a
    check failed)."""
    from credit_scorer.records.models import iso_utc, utc_now
    from credit_scorer.release import decisions, gate, signoffs

    failed = not candidate.checks.all_passed
    decision = gate.GateDecision(
        approved=True,
        approver=DEMO["APPROVER"],
        rationale=rationale,
        decision_mode="cli",
        decided_at=iso_utc(utc_now()),
        threshold_override=failed,
        override_rationale="Small test model; risk accepted for the test" if failed else None,
        tester_signoff=signoffs.latest_signoff(store, candidate.release_id),
    )
    return decisions.signed(decision, candidate, person(store, DEMO["APPROVER"]))


# A module that trains its own small model defines ``trained`` (model, test rows); these follow from it.
@pytest.fixture(scope="module")
def model(trained: tuple[Any, Any]) -> Any:
    return trained[0]


@pytest.fixture(scope="module")
def rows(trained: tuple[Any, Any]) -> Any:
    return trained[1]


@pytest.fixture(scope="module")
def model_file(model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model saved as the store keeps it: ``<sha256>.json``."""
    path = tmp_path_factory.mktemp("models") / f"{model.sha256}.json"
    path.write_bytes(model.to_bytes())
    return Path(path)


def cli(args: list[str], env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """The real ``credit-scorer`` CLI in another process, with no terminal on stdin."""
    full_env = {**os.environ, "COLUMNS": "200", **env}
    return subprocess.run(
        [CLI, *args], env=full_env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
    )


SCHEMA = json.loads((REPO / "schemas" / "approval_record.schema.json").read_text())
"""The committed JSON Schema every approval record must validate against."""
FAST: list[str] = []  # default training: early stopping keeps it about 1 s


def approvals(store: Path) -> list[dict[str, Any]]:
    """Every approval record in the store, oldest first."""
    folder = store / "approvals"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]
