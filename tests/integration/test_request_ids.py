"""``X-Request-ID``: validated on the way in, JSON-escaped on the way into the decision log.

A red-team pass wrote ``rt-"quote`` (an invalid log line) and ``rt-inj","decision":"approve","x":"``
(a line with two ``decision`` keys) through the header. Now an id must be 1-128 characters of
``A-Z a-z 0-9 . _ : -`` (else 422 naming the header, nothing scored or logged), and every
string in a log line is escaped whatever it holds, so no input can change a line's structure.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI

from credit_scorer.domain.model import TrainedModel
from credit_scorer.serving.app import create_app
from credit_scorer.serving.decision_log import Batch, DecisionLog

from .conftest import train_on_bundled_data
from .serving_process import TABLE, log_lines
from .test_serving import asgi

LINE_KEYS = {
    "request_id",
    "timestamp",
    "release_id",
    "model_sha256",
    "input_sha256",
    "probability_of_default",
    "decision",
    "reasons",
    "reason_codes_version",
}
HOSTILE = [
    'rt-"quote',
    'rt-inj","decision":"approve","x":"',
    '","decision":"approve',
    "back\\slash",
    "trailing\\",
    "new\nline",
    'a"\n{"request_id":"forged"}\n',
    "carriage\rreturn",
    "tab\there",
    "nul\x00byte",
    "space inside",
    "ünïcödé",
    "日本語-id",
    "emoji-🙂",
    "</script>",
    "semi;colon",
    "slash/id",
    "{}",
    "'single'",
    "%22encoded%22",
    "x" * 129,
    "",
]
VALID = ["a", "x" * 128, "AZaz09._:-", "order:2026-12-02T10:00:00.123Z", "req.7_b-c"]


@pytest.fixture(scope="module")
def trained() -> tuple[TrainedModel, pd.DataFrame]:
    """A 20-tree model on the bundled data, and 10 rows of its test split."""
    return train_on_bundled_data(n_estimators=20, test_rows=10)


@pytest.fixture
def app(model_file: Path, tmp_path: Path) -> Iterator[FastAPI]:
    scoring = create_app(model_file, "AI-REL-1d000001", decision_log_dir=tmp_path / "log", reason_codes=TABLE)
    yield scoring
    scoring.state.decision_log.close()


def applicant(model: TrainedModel, rows: pd.DataFrame, i: int) -> dict[str, Any]:
    return {f: rows[f].to_numpy()[i].item() for f in model.request_fields}


def post(app: FastAPI, path: str, payload: object, request_id: str | None) -> tuple[int, Any]:
    headers = {} if request_id is None else {"X-Request-ID": request_id}
    return asgi(app, "POST", path, json.dumps(payload).encode(), headers=headers)


def test_an_invalid_request_id_is_a_422_naming_the_header_and_nothing_is_logged(
    app: FastAPI, model: TrainedModel, rows: pd.DataFrame
) -> None:
    single = applicant(model, rows, 0)
    batch = {"applicants": [applicant(model, rows, i) for i in range(3)]}
    for given in HOSTILE:
        for path, body in (("/predict", single), ("/predict/batch", batch)):
            status, answer = post(app, path, body, given)
            assert status == 422, (given, answer)
            [problem] = answer["detail"]
            assert problem["loc"] == ["header", "X-Request-ID"]
            assert "X-Request-ID" in problem["msg"] and "1-128 characters of A-Z a-z 0-9 . _ : -" in problem["msg"]
    folder = app.state.decision_log.folder
    app.state.decision_log.close()
    assert log_lines(folder) == []  # nothing scored, nothing logged


def test_valid_ids_are_kept_and_a_missing_one_is_generated(
    app: FastAPI, model: TrainedModel, rows: pd.DataFrame
) -> None:
    answered = []
    for given in VALID:
        status, answer = post(app, "/predict", applicant(model, rows, 1), given)
        assert status == 200, answer
        assert answer["request_id"] == given
        answered.append(given)
    status, batch = post(app, "/predict/batch", {"applicants": [applicant(model, rows, i) for i in range(4)]}, "b:1")
    assert status == 200 and batch["request_id"] == "b:1"
    status, generated = post(app, "/predict", applicant(model, rows, 2), None)
    assert status == 200 and len(generated["request_id"]) == 32
    folder = app.state.decision_log.folder
    app.state.decision_log.close()
    lines = log_lines(folder)
    assert all(set(line) == LINE_KEYS for line in lines)
    assert [line["request_id"] for line in lines] == [
        *answered,
        "b:1:0",
        "b:1:1",
        "b:1:2",
        "b:1:3",
        generated["request_id"],
    ]


def test_no_string_can_change_the_structure_of_a_log_line(tmp_path: Path) -> None:
    """The log escapes what it is given, even ids that the service would refuse and hostile reason codes."""
    log = DecisionLog(tmp_path, 'AI-REL-"1d"', "ab" * 32, 'v"1\n')
    values = np.arange(6, dtype=np.float64).reshape(2, 3)
    for given in [*HOSTILE, *VALID]:
        log.write(Batch(given, time.time(), values[:1], np.array([0.7]), np.array([True]), [[given, '"C01"']]))
        log.write(Batch(given, time.time(), values, np.array([0.1, 0.9]), np.array([False, True]), [[], ["\\"]]))
    log.close()
    raw = b"".join(path.read_bytes() for path in sorted(tmp_path.glob("*.jsonl")))
    lines = [json.loads(line) for line in raw.split(b"\n")[:-1]]  # each physical line is one JSON object
    assert len(lines) == 3 * len(HOSTILE + VALID)
    for n, given in enumerate([*HOSTILE, *VALID]):
        single, row0, row1 = lines[3 * n : 3 * n + 3]
        for line in (single, row0, row1):
            assert set(line) == LINE_KEYS
            assert line["release_id"] == 'AI-REL-"1d"' and line["reason_codes_version"] == 'v"1\n'
        assert (single["request_id"], single["decision"], single["reasons"]) == (given, "decline", [given, '"C01"'])
        assert (row0["request_id"], row0["decision"], row0["reasons"]) == (f"{given}:0", "approve", [])
        assert (row1["request_id"], row1["decision"], row1["reasons"]) == (f"{given}:1", "decline", ["\\"])
