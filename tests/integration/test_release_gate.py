"""The release gate end to end: every decision channel, records, deployment, rollback, concurrency.

Runs the real ZenML pipeline on the bundled data and real scoring servers on loopback.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from credit_scorer.apps.cli.main import EXIT_REJECTED, app
from credit_scorer.records.release_log import parse_rows
from tests.integration.conftest import FAST, REPO, SCHEMA, approvals, cli, gate_env, get_json

pytestmark = pytest.mark.integration



def post_json(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def ticket(store: Path, release_id: str) -> dict[str, Any]:
    return json.loads((store / "tickets" / f"{release_id}.json").read_text())  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# Automated channel
# ---------------------------------------------------------------------------
def test_automated_approval_deploys_records_and_rolls_back(store: Path) -> None:
    env = gate_env(store)
    first = CliRunner().invoke(app, ["run", *FAST], env=env)
    assert first.exit_code == 0, first.output
    [record] = approvals(store)
    jsonschema.Draft202012Validator(SCHEMA).validate(record)
    assert record["approved"] is True
    assert record["decision_mode"] == "automated"
    assert record["approver"] == "Jane Doe"
    assert record["submitter"] == "Ada Lovelace"
    assert record["tester_signoff"]["tester"] == "Quinn Tester"
    assert record["threshold_checks"] == {
        "Accuracy": True,
        "Bias disparity": True,
        "Risk score": True,
        "Fairness flags": True,
    }
    url = record["deployment_url"]
    assert url and url in first.output

    # the endpoint serves the approved model
    served = get_json(f"{url}/model")
    assert served["model_sha256"] == record["model_sha256"]
    assert served["release_id"] == record["release_id"]
    applicant = dict.fromkeys(served["request_fields"], 0)
    applicant["LIMIT_BAL"] = 50000
    answer = post_json(f"{url}/predict", applicant)
    assert answer["decision"] in {"approve", "decline"}
    assert 0 <= answer["probability_of_default"] <= 1

    # Annex IV: saved before the gate, bound to the approval by its sha256, readable, regenerable
    pdf = store / record["annex_iv_path"]
    assert hashlib.sha256(pdf.read_bytes()).hexdigest() == record["annex_iv_sha256"]
    text = "".join(page.extract_text() for page in PdfReader(str(pdf)).pages)
    assert f"{record['evaluation_summary']['auc']:.4f}" in text
    assert record["annex_iv_missing_facts"] == 2  # conf/annex_iv_facts.yaml leaves two facts open
    regenerated = []
    for n in (1, 2):
        again = CliRunner().invoke(
            app, ["annex-iv", record["run_id"], "--out", str(store.parent / f"regen{n}"), "--store", str(store)]
        )
        assert again.exit_code == 0, again.output
        html = (store.parent / f"regen{n}" / "annex_iv.html").read_text()
        regenerated.append(re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "<time>", html))
    assert regenerated[0] == regenerated[1]

    # the model is stored content-addressed and the release is logged
    model_file = store / "models" / f"{record['model_sha256']}.json"
    assert model_file.exists()
    [row] = parse_rows((store / "model_release_log.md").read_text())
    assert (row.event, row.deployment_url, row.approval_id) == ("release", url, record["approval_id"])
    kinds = [c["kind"] for c in ticket(store, record["release_id"])["comments"]]
    assert kinds == ["note", "signoff", "decision", "deployment"]

    # ZenML: deployment_url in the run metadata, model version in production
    from zenml.client import Client

    run = Client().get_pipeline_run(record["run_id"])
    assert run.run_metadata["deployment_url"] == url
    assert str(run.model_version.stage).lower().endswith("production")

    # a second release replaces the first
    second = CliRunner().invoke(app, ["run", *FAST, "--seed", "7"], env=env)
    assert second.exit_code == 0, second.output
    newer = approvals(store)[-1]
    assert newer["model_sha256"] != record["model_sha256"]
    assert get_json(f"{newer['deployment_url']}/model")["model_sha256"] == newer["model_sha256"]
    with pytest.raises(OSError):
        get_json(f"{url}/health")

    # roll back with the SOP's script: the first model answers again
    back = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "redeploy.py"),
            "--url",
            url,
            "--reason",
            "approval drift",
            "--as",
            "Ada Lovelace",
            "--store",
            str(store),
            "--people",
            env["CREDIT_SCORER_PEOPLE"],
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert back.returncode == 0, back.stdout + back.stderr
    rows = parse_rows((store / "model_release_log.md").read_text())
    assert [r.event for r in rows] == ["release", "release", "rollback"]
    assert get_json(f"{rows[-1].deployment_url}/model")["model_sha256"] == record["model_sha256"]
    rolled = ticket(store, newer["release_id"])
    assert "ROLLED BACK" in rolled["labels"]
    assert any("approval drift" in c["body"] for c in rolled["comments"])

    # every record is in the signed ledger; the approvals name the threshold version they used
    from credit_scorer.audit.verify import audit_verify
    from credit_scorer.records.store import ComplianceStore

    assert audit_verify(ComplianceStore(str(store))).ok
    assert {r["thresholds_version"] for r in approvals(store)} == {1}


def test_automated_rejection_is_recorded_and_nothing_deployed(store: Path) -> None:
    result = CliRunner().invoke(app, ["run", *FAST], env=gate_env(store, "n", APPROVAL_RATIONALE="Not this quarter"))
    assert result.exit_code == EXIT_REJECTED, result.output
    [record] = approvals(store)
    jsonschema.Draft202012Validator(SCHEMA).validate(record)
    assert record["approved"] is False
    assert record["deployment_url"] is None
    assert record["rationale"] == "Not this quarter"
    assert not (store / "model_release_log.md").exists()
    assert not list((store / "deployments").glob("*.json")) if (store / "deployments").exists() else True
    assert ticket(store, record["release_id"])["status"] == "rejected"


def test_missing_approver_stops_before_anything_is_recorded(store: Path) -> None:
    env = gate_env(store)
    del env["APPROVER"]
    result = CliRunner().invoke(app, ["run", *FAST], env=env)
    assert result.exit_code == 2, result.output
    assert "needs APPROVER to be set; nothing was run or recorded" in result.output
    assert approvals(store) == []
    assert not store.exists()  # refused before training: not even the store folder was created


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"DEPLOY_APPROVAL": "1"}, "DEPLOY_APPROVAL must be 'y' or 'n'"),
        ({"DEPLOY_APPROVAL": "approve"}, "DEPLOY_APPROVAL must be 'y' or 'n'"),
        ({"APPROVAL_RATIONALE": "   "}, "needs APPROVAL_RATIONALE to be set"),
        ({"APPROVER": "Quinn Tester"}, "'Quinn Tester' is not an approver (holds: tester) (from the APPROVER"),
        ({"TESTER": "Jane Doe"}, "'Jane Doe' is not a tester (holds: approver) (from the TESTER variable)"),
    ],
)
def test_bad_automated_channel_variables_stop_the_run_at_start_with_exit_2_and_nothing_written(
    store: Path, change: dict[str, str], says: str
) -> None:
    """Red team: DEPLOY_APPROVAL=1 was refused only at the gate after a full training (exit 1), and a refused
    automated run left the TESTER's sign-off recorded although the message said nothing was recorded."""
    result = CliRunner().invoke(app, ["run", *FAST], env=gate_env(store) | change)
    assert result.exit_code == 2, result.output
    assert says in result.output and "nothing was run or recorded" in result.output
    assert "load_data" not in result.output  # no step ran
    assert not store.exists()


def test_a_people_file_from_outside_the_store_cannot_make_an_approver(store: Path, tmp_path: Path) -> None:
    """Red team: `run --people other.yaml` with APPROVER named only in that file deployed, and verified clean."""
    import yaml

    other = tmp_path / "other-people.yaml"
    data = yaml.safe_load((REPO / "conf" / "people.yaml").read_text())
    data["people"]["Eve Outsider"] = ["approver"]
    other.write_text(yaml.safe_dump(data))
    seeded = cli(["people", "set", "--file", str(REPO / "conf" / "people.yaml"), "--as", "Ada Lovelace",
                  "--reason", "the team", "--store", str(store)], {})  # fmt: skip
    assert seeded.returncode == 0, seeded.stderr
    env = gate_env(store) | {"CREDIT_SCORER_PEOPLE": str(other), "APPROVER": "Eve Outsider"}
    refused = cli(["run", *FAST], env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "is not this store's people registry (version 1" in refused.stderr
    assert approvals(store) == []

    demo = cli(["run", *FAST, "--dev-mode"], env)  # a demo may, and every record says so
    assert demo.returncode == 0, demo.stdout + demo.stderr
    (record,) = approvals(store)
    assert record["approver"] == "Eve Outsider" and record["dev_mode"] is True
    assert record["people_version"] is None
    assert record["people_source"].startswith("dev mode: people file") and str(other) in record["people_source"]
