"""The scoring service: input contract, batch scoring, reason codes, bearer auth, the decision log, OpenAPI.

In-process through the ASGI interface for behaviour; a real server process for the
decision log's flush on SIGTERM and for schemathesis, which fuzzes the OpenAPI spec
over HTTP and must never see a 5xx. Expected reason codes are computed independently
with ``Booster.predict(pred_contrib=True)`` and the YAML table.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi import FastAPI

from credit_scorer.adapters.local_processes import free_port
from credit_scorer.core.errors import ConfigError
from credit_scorer.domain.model import TrainedModel, model_matrix
from credit_scorer.serving.app import create_app
from credit_scorer.serving.decision_log import LOG_NAME
from credit_scorer.serving.fast_predict import SingleRowPredictor

from .conftest import train_on_bundled_data
from .test_serving import asgi

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "conf" / "reason_codes.yaml"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def trained() -> tuple[TrainedModel, pd.DataFrame]:
    """A 40-tree model on the bundled data, and 300 rows of its test split."""
    return train_on_bundled_data(n_estimators=40, test_rows=300)



@pytest.fixture
def app(model_file: Path, tmp_path: Path) -> Iterator[FastAPI]:
    scoring = create_app(model_file, "AI-REL-5c0e1234", decision_log_dir=tmp_path / "log", reason_codes=TABLE)
    yield scoring
    scoring.state.decision_log.close()


def body_of(model: TrainedModel, rows: pd.DataFrame, i: int) -> dict[str, Any]:
    return {f: rows[f].to_numpy()[i].item() for f in model.request_fields}


def post(app: FastAPI, path: str, payload: object, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    return asgi(app, "POST", path, json.dumps(payload).encode(), headers=headers)


def log_lines(folder: Path) -> list[dict[str, Any]]:
    lines = []
    for path in sorted(folder.glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines()]
    return lines


def expected_reasons(model: TrainedModel, rows: pd.DataFrame, i: int) -> list[str]:
    """Codes of the (at most four) largest positive contributions, from LightGBM and the YAML table directly."""
    table = yaml.safe_load(TABLE.read_text())["reasons"]
    booster = lgb.Booster(model_str=model.booster)
    matrix = model_matrix(rows.iloc[[i]], model.input_columns, model.derived_features)
    contributions = booster.predict(matrix, pred_contrib=True)[0][:-1]
    ranked = sorted((c, name) for c, name in zip(contributions, model.feature_names, strict=True) if c > 0)[::-1][:4]
    return [table[name]["code"] for _, name in ranked]


# ---------------------------------------------------------------------------
# Scoring and reasons
# ---------------------------------------------------------------------------
def test_declines_carry_up_to_four_reasons_ranked_by_contribution(
    app: FastAPI, model: TrainedModel, rows: pd.DataFrame
) -> None:
    proba = model.predict_default_proba(rows)
    declined = [i for i in range(len(rows)) if proba[i] >= model.decision_threshold]
    approved = [i for i in range(len(rows)) if proba[i] < model.decision_threshold]
    assert len(declined) >= 10 and approved
    table = yaml.safe_load(TABLE.read_text())
    for i in declined[:25]:
        status, answer = post(app, "/predict", body_of(model, rows, i))
        assert status == 200, answer
        assert answer["decision"] == "decline"
        assert answer["probability_of_default"] == pytest.approx(proba[i], abs=1e-12)
        reasons = answer["reasons"]
        assert 1 <= len(reasons) <= 4
        assert [r["code"] for r in reasons] == expected_reasons(model, rows, i)
        contributions = [r["contribution"] for r in reasons]
        assert contributions == sorted(contributions, reverse=True) and min(contributions) > 0
        for reason in reasons:
            assert reason["feature"] in model.feature_names  # only features the model uses
            assert reason["reason"] == table["reasons"][reason["feature"]]["reason"]
    status, answer = post(app, "/predict", body_of(model, rows, approved[0]))
    assert answer["decision"] == "approve" and answer["reasons"] == []


def test_fast_single_row_predictions_equal_the_booster(model: TrainedModel, rows: pd.DataFrame) -> None:
    booster = lgb.Booster(model_str=model.booster)
    matrix = model_matrix(rows, model.input_columns, model.derived_features)
    fast, contrib = SingleRowPredictor(booster), SingleRowPredictor(booster, contributions=True)
    expected = booster.predict(matrix)
    expected_contrib = booster.predict(matrix, pred_contrib=True)
    for i in range(len(rows)):
        assert fast(matrix[i])[0] == pytest.approx(expected[i], abs=1e-12)
        assert np.allclose(contrib(matrix[i]), expected_contrib[i], atol=1e-12)


def test_batch_scores_in_order_and_equals_single_requests(
    app: FastAPI, model: TrainedModel, rows: pd.DataFrame
) -> None:
    applicants = [body_of(model, rows, i) for i in range(200)]
    status, answer = post(app, "/predict/batch", {"applicants": applicants})
    assert status == 200, answer
    results = answer["results"]
    assert len(results) == 200
    assert answer["model_sha256"] == model.sha256 and answer["release_id"] == "AI-REL-5c0e1234"
    for i in (0, 7, 50, 199):
        single = post(app, "/predict", applicants[i])[1]
        assert results[i]["probability_of_default"] == pytest.approx(single["probability_of_default"], abs=1e-12)
        assert results[i]["decision"] == single["decision"]
        assert [r["code"] for r in results[i]["reasons"]] == [r["code"] for r in single["reasons"]]


def compact(model: TrainedModel, rows: pd.DataFrame, index: range) -> dict[str, Any]:
    fields = list(model.request_fields)
    return {"columns": fields, "rows": [[rows[f].to_numpy()[i].item() for f in fields] for i in index]}


def test_the_compact_batch_form_scores_like_the_applicants_form(
    app: FastAPI, model: TrainedModel, rows: pd.DataFrame
) -> None:
    by_objects = post(app, "/predict/batch", {"applicants": [body_of(model, rows, i) for i in range(120)]})[1]
    status, by_rows = post(app, "/predict/batch", compact(model, rows, range(120)))
    assert status == 200, by_rows
    assert by_rows["results"] == by_objects["results"]
    assert any(r["decision"] == "decline" and r["reasons"] for r in by_rows["results"])


@pytest.mark.parametrize(
    ("edit", "loc", "fragment"),
    [
        (lambda b: b["columns"].reverse(), ["columns"], "exactly the request fields in this order: LIMIT_BAL"),
        (lambda b: b["columns"].pop(), ["columns"], "exactly the request fields"),
        (lambda b: b["rows"][2].pop(), ["rows", "2"], "list of 19 values"),
        (lambda b: b["rows"].__setitem__(1, {"LIMIT_BAL": 1}), ["rows", "1"], "list of 19 values"),
        (lambda b: b["rows"][3].__setitem__(1, 10), ["rows", "3", "PAY_0"], "must be one of -2, -1, 0, 1"),
        (lambda b: b["rows"][0].__setitem__(0, True), ["rows", "0", "LIMIT_BAL"], "got a boolean"),
        (lambda b: b["rows"][4].__setitem__(0, "50000"), ["rows", "4", "LIMIT_BAL"], "got a string"),
        (lambda b: b["rows"][4].__setitem__(0, None), ["rows", "4", "LIMIT_BAL"], "got null"),
        (lambda b: b.__setitem__("rows", "all"), ["rows"], "list of rows"),
    ],
)
def test_the_compact_form_names_the_row_and_field_at_fault(
    app: FastAPI, model: TrainedModel, rows: pd.DataFrame, edit: Any, loc: list[str], fragment: str
) -> None:
    body = compact(model, rows, range(6))
    assert len(body["columns"]) == 19 and body["columns"][1] == "PAY_0"
    edit(body)
    status, answer = post(app, "/predict/batch", body)
    assert status == 422, answer
    [problem] = answer["detail"]
    assert problem["loc"] == ["body", *loc]
    assert fragment in problem["msg"]


@pytest.mark.parametrize(
    ("change", "loc", "fragment"),
    [
        ({"LIMIT_BAL": 0}, ["LIMIT_BAL"], "must be ≥ 1"),
        ({"LIMIT_BAL": 20_000_000}, ["LIMIT_BAL"], "must be ≤ 10000000"),
        ({"PAY_0": 10}, ["PAY_0"], "must be one of -2, -1, 0, 1"),
        ({"PAY_AMT1": -5}, ["PAY_AMT1"], "must be ≥ 0"),
        ({"BILL_AMT1": "many"}, ["BILL_AMT1"], "got a string"),
        ({"PAY_2": 1.5}, ["PAY_2"], "must be an integer"),
    ],
)
def test_values_outside_the_dataset_spec_are_a_422_per_field(
    app: FastAPI, model: TrainedModel, rows: pd.DataFrame, change: dict[str, Any], loc: list[str], fragment: str
) -> None:
    status, answer = post(app, "/predict", {**body_of(model, rows, 0), **change})
    assert status == 422
    [problem] = answer["detail"]
    assert problem["loc"] == ["body", *loc]
    assert fragment in problem["msg"]

    applicants = [body_of(model, rows, i) for i in range(5)]
    applicants[3] = {**applicants[3], **change}
    status, answer = post(app, "/predict/batch", {"applicants": applicants})
    assert status == 422
    [problem] = answer["detail"]
    assert problem["loc"] == ["body", "applicants", "3", *loc]
    assert fragment in problem["msg"]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"applicants": []}, "empty"),
        ({"rows": []}, "columns must be exactly"),
        ({"columns": [], "rows": [], "applicants": []}, "not both"),
        ([1, 2], "applicants"),
        ({"applicants": [1]}, "JSON object"),
        ({"applicants": "all of them"}, "applicants"),
    ],
)
def test_malformed_batches_are_a_422(app: FastAPI, payload: object, fragment: str) -> None:
    status, answer = post(app, "/predict/batch", payload)
    assert status == 422, answer
    assert fragment in json.dumps(answer["detail"])


def test_an_oversized_batch_is_refused_naming_the_limit(
    model_file: Path, model: TrainedModel, rows: pd.DataFrame, tmp_path: Path
) -> None:
    small = create_app(model_file, "AI-REL-5c0e1234", decision_log_dir=tmp_path, reason_codes=TABLE, max_batch_rows=3)
    status, answer = post(small, "/predict/batch", {"applicants": [body_of(model, rows, 0)] * 4})
    status_rows, answer_rows = post(small, "/predict/batch", compact(model, rows, range(4)))
    small.state.decision_log.close()
    assert status == status_rows == 422
    assert "at most 3 applicants" in answer["detail"][0]["msg"]
    assert "at most 3 rows" in answer_rows["detail"][0]["msg"]
    assert log_lines(tmp_path) == []


def test_a_reason_table_missing_a_model_feature_stops_the_service(model_file: Path, tmp_path: Path) -> None:
    table = yaml.safe_load(TABLE.read_text())
    del table["reasons"]["UTILISATION_1"]
    short = tmp_path / "reasons.yaml"
    short.write_text(yaml.safe_dump(table))
    with pytest.raises(ConfigError, match=r"no entry for model feature.*UTILISATION_1"):
        create_app(model_file, "AI-REL-5c0e1234", decision_log_dir=tmp_path / "log", reason_codes=short)


def test_model_health_and_openapi_describe_the_service(app: FastAPI, model: TrainedModel) -> None:
    status, info = asgi(app, "GET", "/model")
    assert status == 200
    assert info["model_sha256"] == model.sha256
    assert info["decision_threshold"] == model.decision_threshold
    assert info["features"] == model.feature_names
    assert info["request_fields"] == model.request_fields
    assert info["reason_codes_version"] == yaml.safe_load(TABLE.read_text())["version"]
    status, spec = asgi(app, "GET", "/openapi.json")
    assert status == 200
    applicant = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert applicant["required"] == model.request_fields
    assert applicant["properties"]["LIMIT_BAL"]["minimum"] == 1
    assert -1 in applicant["properties"]["PAY_0"]["enum"]
    assert "/predict/batch" in spec["paths"] and "/health" in spec["paths"] and "/model" in spec["paths"]


# ---------------------------------------------------------------------------
# Bearer tokens
# ---------------------------------------------------------------------------
def test_bearer_token_guards_the_predict_routes_only(
    model_file: Path, model: TrainedModel, rows: pd.DataFrame, tmp_path: Path
) -> None:
    token = "s3cret-token-0123456789"
    guarded = create_app(
        model_file, "AI-REL-5c0e1234", decision_log_dir=tmp_path, reason_codes=TABLE, api_tokens=[token]
    )
    body = body_of(model, rows, 0)
    for headers in ({}, {"authorization": "Bearer wrong-token-0123456789"}, {"authorization": token}):
        status, answer = post(guarded, "/predict", body, headers)
        assert status == 401, headers
        assert token not in json.dumps(answer)
    status, _ = post(guarded, "/predict/batch", {"applicants": [body]})
    assert status == 401
    assert post(guarded, "/predict", body, {"authorization": f"Bearer {token}"})[0] == 200
    assert asgi(guarded, "GET", "/health")[0] == 200
    assert asgi(guarded, "GET", "/model")[1]["auth"] == "bearer"
    guarded.state.decision_log.close()
    assert len(log_lines(tmp_path)) == 1  # refused requests make no decision


# ---------------------------------------------------------------------------
# The decision log
# ---------------------------------------------------------------------------
def test_every_decision_is_logged_with_its_input_hash(
    model_file: Path, model: TrainedModel, rows: pd.DataFrame, tmp_path: Path
) -> None:
    scoring = create_app(model_file, "AI-REL-5c0e1234", decision_log_dir=tmp_path, reason_codes=TABLE)
    answers = [post(scoring, "/predict", body_of(model, rows, i))[1] for i in range(30)]
    batch = post(scoring, "/predict/batch", {"applicants": [body_of(model, rows, i) for i in range(30, 50)]})[1]
    post(scoring, "/predict", {"LIMIT_BAL": 0})  # invalid: no decision, no line
    scoring.state.decision_log.close()
    lines = log_lines(tmp_path)
    assert len(lines) == 50
    by_id = {line["request_id"]: line for line in lines}
    for i, answer in enumerate(answers):
        line = by_id[answer["request_id"]]
        values = np.array([float(v) for v in body_of(model, rows, i).values()], dtype="<f8")
        assert line["input_sha256"] == hashlib.sha256(values.tobytes()).hexdigest()
        assert line["probability_of_default"] == answer["probability_of_default"]
        assert line["decision"] == answer["decision"]
        assert line["reasons"] == [r["code"] for r in answer["reasons"]]
        assert line["release_id"] == "AI-REL-5c0e1234" and line["model_sha256"] == model.sha256
        assert line["reason_codes_version"] == "2026.1"
        assert line["timestamp"].endswith("Z")
    for i, result in enumerate(batch["results"]):
        line = by_id[f"{batch['request_id']}:{i}"]
        values = np.array([float(v) for v in body_of(model, rows, 30 + i).values()], dtype="<f8")
        assert line["input_sha256"] == hashlib.sha256(values.tobytes()).hexdigest()
        assert line["probability_of_default"] == result["probability_of_default"]
        assert line["decision"] == result["decision"]
        assert line["reasons"] == [r["code"] for r in result["reasons"]]


def test_the_log_rotates_by_size_and_loses_nothing(
    model_file: Path, model: TrainedModel, rows: pd.DataFrame, tmp_path: Path
) -> None:
    scoring = create_app(
        model_file, "AI-REL-5c0e1234", decision_log_dir=tmp_path, reason_codes=TABLE, log_max_bytes=4096
    )
    for _ in range(10):
        post(scoring, "/predict/batch", {"applicants": [body_of(model, rows, i) for i in range(40)]})
    scoring.state.decision_log.close()
    files = sorted(tmp_path.glob("*.jsonl"))
    assert len(files) > 5 and not (tmp_path / LOG_NAME).exists()  # shutdown renamed the live file too
    assert all(f.stat().st_size <= 4096 + 40 * 400 for f in files)
    assert all(f.with_name(f.name + ".seal.json").exists() for f in files)
    assert len(log_lines(tmp_path)) == 400


def test_no_decision_when_the_log_cannot_be_written(
    app: FastAPI, model: TrainedModel, rows: pd.DataFrame
) -> None:
    log = app.state.decision_log
    full, saved = os.open("/dev/full", os.O_WRONLY), os.dup(log._fd)
    os.dup2(full, log._fd)  # the disk fills up under the log: every write() fails with ENOSPC
    try:
        for i in range(2):  # the decision whose line cannot be written is not answered, nor any after it
            status, answer = post(app, "/predict", body_of(model, rows, i))
            assert status == 503 and "decision log" in answer["detail"]
        status, answer = post(app, "/predict/batch", {"applicants": [body_of(model, rows, 0)]})
        assert status == 503
        assert asgi(app, "GET", "/health") == (503, {"status": "degraded", "decision_log": "failed", "active": True})
    finally:
        os.dup2(saved, log._fd)
        os.close(saved)
        os.close(full)
    with pytest.raises(RuntimeError, match=r"decision log failed.*No space left"):
        log.close()
    assert log_lines(log.folder) == []


# ---------------------------------------------------------------------------
# A real server: flush on SIGTERM, and schemathesis over HTTP
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Any]]:
    folder = tmp_path_factory.mktemp("served")
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "credit_scorer.serving",
            "--model",
            str(model_file),
            "--release-id",
            "AI-REL-5c0e1234",
            "--port",
            str(port),
            "--decision-log",
            str(folder),
            "--reason-codes",
            str(TABLE),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            NO_PROXY.open(f"{url}/health", timeout=1)
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, (
                process.stdout.read() if process.stdout else ""
            )
            time.sleep(0.1)
    yield url, folder, process
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_finds_no_server_error(server: tuple[str, Path, Any], mode: str) -> None:
    """Requests generated from /openapi.json (valid ones, then invalid ones) never get a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    url = server[0]
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    calls: list[int] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /predict", "POST /predict/batch", "GET /health", "GET /model"}
    for operation in operations:
        if mode == "negative" and operation.method.upper() == "GET":
            continue  # no parameters to break

        @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
        def fuzz(case: Any) -> None:
            response = case.call(base_url=url)
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path} {case.body!r:.300} -> {response.status_code}")

        fuzz()
    assert failures == []
    assert len(calls) >= 100


def test_sigterm_flushes_every_logged_decision(
    server: tuple[str, Path, Any], model: TrainedModel, rows: pd.DataFrame
) -> None:
    url, folder, process = server
    before = len(log_lines(folder))
    sent = 0
    for i in range(100):
        request = urllib.request.Request(
            f"{url}/predict",
            data=json.dumps(body_of(model, rows, i)).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with NO_PROXY.open(request, timeout=5) as response:
            assert response.status == 200
            sent += 1
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(30) == 0
    assert len(log_lines(folder)) - before >= sent


def test_the_packaged_reason_table_is_the_one_in_conf() -> None:
    from credit_scorer.serving.reasons import PACKAGED_TABLE

    assert PACKAGED_TABLE.read_bytes() == TABLE.read_bytes()


def test_a_model_file_from_before_input_contracts_still_serves_with_type_checks(
    model: TrainedModel, rows: pd.DataFrame, tmp_path: Path
) -> None:
    """Rolling back to a release approved before models carried their input contract keeps working."""
    old = tmp_path / "old.json"
    payload = json.loads(model.to_bytes())
    del payload["input_contract"]
    old.write_text(json.dumps(payload))
    scoring = create_app(old, "AI-REL-0000aaaa", decision_log_dir=tmp_path / "log", reason_codes=TABLE)
    status, answer = post(scoring, "/predict", body_of(model, rows, 0))
    assert status == 200
    assert answer["probability_of_default"] == pytest.approx(model.predict_default_proba(rows.head(1))[0], abs=1e-12)
    status, answer = post(scoring, "/predict", {**body_of(model, rows, 0), "PAY_0": "late"})
    assert status == 422 and answer["detail"][0]["loc"] == ["body", "PAY_0"]
    scoring.state.decision_log.close()
