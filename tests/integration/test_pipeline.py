"""The real ZenML training pipeline on the bundled data, end to end."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from credit_scorer.apps.cli.main import EXIT_REJECTED, app
from credit_scorer.domain.config import bundled_resource, load_dataset_spec, load_policy, training_config
from credit_scorer.domain.data import read_data_bytes
from credit_scorer.domain.risk import load_risk_register
from credit_scorer.records.people import load_people
from credit_scorer.release.settings import ReleaseSettings
from tests.integration.conftest import PEOPLE, gate_env, stop_all

pytestmark = pytest.mark.integration

BUNDLED_SHA256 = "4edce6da569b2c30788a85fd98a9bafb1a983e8ca1a7aac875dd7ff853cbd0bb"


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The default configuration, approved through the automated channel and deployed."""
    import os

    from credit_scorer.pipelines.run import run_training

    store = tmp_path_factory.mktemp("store") / "compliance"
    release = ReleaseSettings(submitter="Ada Lovelace", store_url=str(store), people=load_people(PEOPLE))
    saved = dict(os.environ)
    os.environ.update(gate_env(store))
    try:
        yield run_training(load_dataset_spec(), load_policy(), training_config(), load_risk_register(), release)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        stop_all(store)


def test_default_run_reaches_auc_and_passes_every_check(default_run) -> None:
    assert default_run.status == "completed"
    assert default_run.deployment_url is not None
    assert default_run.evaluation.auc >= 0.77
    assert default_run.checks.all_passed, [c.text for c in default_run.checks.checks]
    assert [c.name for c in default_run.checks.checks] == [
        "Accuracy",
        "Bias disparity",
        "Risk score",
        "Fairness flags",
    ]


def test_run_metadata_holds_every_figure(default_run) -> None:
    from zenml.client import Client

    run = Client().get_pipeline_run(default_run.run_id)
    meta = run.run_metadata
    assert meta["dataset"]["sha256"] == BUNDLED_SHA256
    assert meta["dataset"]["rows"] == 30000
    assert meta["model"]["sha256"] == default_run.model_sha256
    sizes = meta["split_sizes"]
    assert sizes["train"] + sizes["validation"] + sizes["test"] == 30000
    assert meta["evaluation"]["auc"] == pytest.approx(default_run.evaluation.auc)
    assert meta["fairness"]["bias_disparity"] == pytest.approx(default_run.fairness.bias_disparity)
    assert meta["risk"]["overall_risk_score"] == pytest.approx(default_run.risk.overall_risk_score)
    assert set(meta["threshold_checks"]) == {
        "Accuracy",
        "Bias disparity",
        "Risk score",
        "Fairness flags",
        "Balanced accuracy",
        "AUC",
        "Approval rate (lowest)",
        "Approval rate (highest)",
    }
    assert meta["all_checks_passed"] is True
    assert meta["thresholds"]["accuracy_min"] == 0.80


def test_results_are_saved_as_json_artifacts(default_run) -> None:
    from zenml.client import Client

    run = Client().get_pipeline_run(default_run.run_id)
    for step_name, output in [
        ("evaluate_model", "evaluation"),
        ("assess_fairness", "fairness"),
        ("risk_assessment", "risk"),
        ("check_thresholds", "threshold_checks"),
        ("split_data", "split_sizes"),
    ]:
        uri = Path(run.steps[step_name].outputs[output][0].uri)
        files = list(uri.rglob("*.json"))
        assert files, f"{step_name}.{output} has no JSON file under {uri}"


def test_model_version_is_registered(default_run) -> None:
    from zenml.client import Client

    run = Client().get_pipeline_run(default_run.run_id)
    assert run.model_version is not None
    assert run.model_version.model.name == "credit-scorer"


def test_cli_run_with_shuffled_labels_fails_the_checks_and_is_refused(store: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--shuffle-labels", "--n-estimators", "50"], env=gate_env(store))
    assert result.exit_code == EXIT_REJECTED, result.output
    assert "threshold checks failed: Accuracy, Risk score" in result.output
    assert "automated approval refused" in result.output


def _bad_spec(tmp_path: Path) -> Path:
    frame = pd.read_csv(io.BytesIO(read_data_bytes("package:data/default_of_credit_card_clients.csv.gz"))).head(400)
    frame.loc[7, "AGE"] = 150
    csv = tmp_path / "bad.csv"
    frame.to_csv(csv, index=False)
    spec = yaml.safe_load(bundled_resource("taiwan_credit.yaml").read_text())
    spec["source"]["file"] = str(csv)
    spec["source"].pop("sha256")
    path = tmp_path / "bad_spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_cli_run_on_bad_data_stops_before_training_and_names_the_row(tmp_path: Path, monkeypatch) -> None:
    from zenml.client import Client

    from credit_scorer.pipelines.run import latest_run_id

    monkeypatch.chdir(tmp_path)
    env = gate_env(tmp_path / "compliance")
    result = CliRunner().invoke(app, ["run", "--dataset-spec", str(_bad_spec(tmp_path))], env=env)
    assert result.exit_code == 1, result.output
    assert "step validate_data failed" in result.output
    assert "column 'AGE'" in result.output
    assert "row 7 (line 9) = 150" in result.output
    run = Client().get_pipeline_run(latest_run_id())
    assert run.status.value == "failed"
    assert set(run.steps) == {"load_data", "validate_data"}
    assert "train_model" not in run.steps
    # nothing else written for the run: no files appear in the working directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "bad_spec.yaml"]


def test_cli_refuses_a_missing_spec_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "--dataset-spec", str(tmp_path / "nope.yaml")], env=gate_env(tmp_path / "compliance")
    )
    assert result.exit_code == 2
    assert "nope.yaml" in result.output


def test_cli_help_documents_every_option() -> None:
    result = CliRunner().invoke(app, ["run", "--help"])
    assert result.exit_code == 0
    for option in (
        "--dataset-spec",
        "--thresholds",
        "--risk-register",
        "--seed",
        "--n-estimators",
        "--threshold-rule",
        "--cost-ratio",
        "--target-approval-rate",
        "--shuffle-labels",
    ):
        assert option in result.output


def _other_lender(tmp_path: Path) -> None:
    """other.csv and other.yaml: the bundled data under other column names and protected attributes."""
    frame = pd.read_csv(io.BytesIO(read_data_bytes("package:data/default_of_credit_card_clients.csv.gz")))
    frame = frame.sample(n=8000, random_state=3).reset_index(drop=True)
    renamed = {
        "LIMIT_BAL": "credit_limit",
        "PAY_0": "status_m1",
        "PAY_2": "status_m2",
        "BILL_AMT1": "bill_m1",
        "PAY_AMT1": "paid_m1",
        "SEX": "gender",
        "AGE": "age_years",
        "default payment next month": "defaulted",
        "ID": "customer",
    }
    frame = frame[list(renamed)].rename(columns=renamed)
    frame.to_csv(tmp_path / "other.csv", index=False)
    status = {"type": "int", "min": -2, "max": 9}
    spec = {
        "name": "other-lender",
        "source": {"file": "other.csv"},
        "target": {"column": "defaulted", "default_value": 1, "non_default_value": 0},
        "id_columns": ["customer"],
        "features": ["credit_limit", "status_m1", "status_m2", "bill_m1", "paid_m1"],
        "derived_features": [{"name": "utilisation", "numerator": "bill_m1", "denominator": "credit_limit"}],
        "protected_attributes": [
            {"name": "gender", "column": "gender", "group_names": {1: "male", 2: "female"}},
            {
                "name": "age",
                "column": "age_years",
                "bins": [0, 30, 50, 200],
                "bin_labels": ["<30", "30-49", "50+"],
            },
        ],
        "columns": {
            "customer": {"type": "int", "min": 1},
            "credit_limit": {"type": "int", "min": 1},
            "status_m1": status,
            "status_m2": status,
            "bill_m1": {"type": "int"},
            "paid_m1": {"type": "int", "min": 0},
            "gender": {"type": "int", "codes": {1: "male", 2: "female"}},
            "age_years": {"type": "int", "min": 18, "max": 100},
            "defaulted": {"type": "int", "codes": {0: "repaid", 1: "defaulted"}},
        },
    }
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


OTHER_REASONS = {
    "version": "other-1",
    "reasons": {
        "credit_limit": {"code": "R01", "reason": "Amount of credit granted is low"},
        "status_m1": {"code": "R10", "reason": "Repayment status last month"},
        "status_m2": {"code": "R11", "reason": "Repayment status the month before"},
        "bill_m1": {"code": "R20", "reason": "Amount owed on the last statement"},
        "paid_m1": {"code": "R30", "reason": "Amount repaid last month is low"},
        "utilisation": {"code": "R40", "reason": "Share of the credit limit in use is high"},
    },
}


def test_cli_trains_on_another_csv_from_its_spec_alone(tmp_path: Path, monkeypatch) -> None:
    """A different CSV (other column names, other protected attributes) needs only a spec file (and its reasons)."""
    _other_lender(tmp_path)
    (tmp_path / "other_reasons.yaml").write_text(yaml.safe_dump(OTHER_REASONS, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    env = gate_env(tmp_path / "compliance", decision="n", APPROVAL_RATIONALE="trial run on another lender's data")
    env["CREDIT_SCORER_REASON_CODES"] = str(tmp_path / "other_reasons.yaml")

    result = CliRunner().invoke(app, ["run", "--dataset-spec", "other.yaml", "--n-estimators", "100"], env=env)

    assert result.exit_code == EXIT_REJECTED, result.output
    assert "rejected by Jane Doe" in result.output
    assert "other-lender" in result.output
    assert "gender" in result.output and "age" in result.output
    assert "Model Approval Thresholds" in result.output


def test_cli_run_on_thirty_rows_stops_before_anything_is_recorded(tmp_path: Path, monkeypatch) -> None:
    """Issue 16, case 2: 30 rows trained, "evaluated" on 6 and produced an Annex IV and records."""
    frame = pd.read_csv(io.BytesIO(read_data_bytes("package:data/default_of_credit_card_clients.csv.gz"))).head(30)
    csv = tmp_path / "tiny.csv"
    frame.to_csv(csv, index=False)
    spec = yaml.safe_load(bundled_resource("taiwan_credit.yaml").read_text())
    spec["source"]["file"] = str(csv)
    spec["source"].pop("sha256")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "compliance"
    result = CliRunner().invoke(app, ["run", "--dataset-spec", "tiny.yaml"], env=gate_env(store))
    assert result.exit_code == 1, result.output
    assert "step validate_data failed" in result.output
    assert "too little data to judge a model: 30 rows give a test split of 6 rows" in result.output
    written = sorted(p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file()) if store.exists() else []
    assert not [p for p in written if p.startswith(("releases/", "approvals/", "tickets/", "thresholds/", "models/"))]


def test_cli_run_refuses_features_without_reason_codes_before_anything_runs(tmp_path: Path, monkeypatch) -> None:
    """Issue 16, case 3: such a model was approved and recorded, then the scoring service refused to start."""
    from credit_scorer.pipelines.run import latest_run_id

    _other_lender(tmp_path)
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "compliance"
    before = latest_run_id()
    result = CliRunner().invoke(app, ["run", "--dataset-spec", "other.yaml"], env=gate_env(store))
    assert result.exit_code == 2, result.output
    assert "has no entry for model feature(s)" in result.output.replace("\n", " ")
    assert "credit_limit" in result.output and "utilisation" in result.output
    assert latest_run_id() == before  # no pipeline run started
    assert not (store / "releases").exists() and not (store / "approvals").exists()


def test_a_model_that_approves_everyone_on_rare_defaults_is_refused_by_the_baseline(
    tmp_path: Path, monkeypatch
) -> None:
    """Issue 16, case 2: on data with 7.9 % defaults an approve-everyone model scored accuracy 0.921 and passed."""
    import json

    frame = pd.read_csv(io.BytesIO(read_data_bytes("package:data/default_of_credit_card_clients.csv.gz")))
    label = yaml.safe_load(bundled_resource("taiwan_credit.yaml").read_text())["target"]["column"]
    repaid, defaulted = frame[frame[label] == 0], frame[frame[label] == 1]
    keep = round(len(repaid) * 0.079 / (1 - 0.079))  # defaults are 7.9 % of what is left
    rare = pd.concat([repaid, defaulted.sample(n=keep, random_state=0)]).sample(frac=1.0, random_state=0)
    assert abs(rare[label].mean() - 0.079) < 0.001
    rare.to_csv(tmp_path / "rare.csv", index=False)
    spec = yaml.safe_load(bundled_resource("taiwan_credit.yaml").read_text())
    spec["source"]["file"] = str(tmp_path / "rare.csv")
    spec["source"].pop("sha256")
    (tmp_path / "rare.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "compliance"

    result = CliRunner().invoke(app, ["run", "--dataset-spec", "rare.yaml", "--shuffle-labels"], env=gate_env(store))

    assert result.exit_code == EXIT_REJECTED, result.output
    [path] = (store / "approvals").glob("*.json")
    record = json.loads(path.read_text())
    assert record["approved"] is False and "automated approval refused" in record["refusal_reason"]
    accuracy = record["threshold_values"]["Accuracy"]
    assert accuracy["passed"] is True and accuracy["value"] > 0.9  # the SOP's check alone would let it through
    baseline = record["baseline_checks"]
    assert baseline["Approval rate (highest)"]["passed"] is False
    assert baseline["Balanced accuracy"]["passed"] is False
    assert not (store / "deployments").exists() or not list((store / "deployments").glob("*.json"))
