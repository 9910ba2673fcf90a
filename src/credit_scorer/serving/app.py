"""The scoring service: one stored model version behind ``/predict``, ``/predict/batch``, ``/health`` and ``/model``.

The model file is read once at start-up and its sha256 computed from the file bytes, so
``/model`` reports exactly the version being served. Requests are checked against the
model's input contract (fields, types, ranges, codes from the dataset spec; 422 with a
message per field), scored with the LightGBM booster on a NumPy matrix (no pandas, no
scikit-learn wrapper on the hot path), explained with reason codes when declined, and
written to the decision log (Art. 12) before the answer is sent.

A decision that cannot be logged is not made: once the decision log cannot be written, the
predict routes answer 503 and ``/health`` says why.

``X-Request-ID`` must be 1-128 characters of ``A-Z a-z 0-9 . _ : -`` (anything else: 422
naming the header, nothing scored or logged); without the header a random id is generated.

With an :class:`~credit_scorer.serving.activation.ActivationGate` that is not open yet (the
release's approval has not been recorded), the predict routes answer 503 and ``/health`` and
``/model`` say ``"active": false``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import ValidationError

from credit_scorer.core.errors import CreditScorerError
from credit_scorer.domain.contract import FieldRule, InputContract, error
from credit_scorer.domain.model import TrainedModel
from credit_scorer.serving.activation import ActivationGate
from credit_scorer.serving.decision_log import Batch, DecisionLog, LogUnavailable
from credit_scorer.serving.fast_predict import SingleRowPredictor
from credit_scorer.serving.reasons import ReasonCoder, load_reason_table, reason_table_path

Reasons = list[list[dict[str, object]]]
Answer = tuple[int, bytes, dict[str, str]]
"""(HTTP status, JSON body, extra headers) of a predict route."""
UNAUTHORISED = {"WWW-Authenticate": "Bearer"}
APPROVE, DECLINE = "approve", "decline"
MAX_BATCH_ROWS = 10_000
CONTRIB_THREADS = 2  # TreeSHAP of a batch's declines, across both cores
MAX_BODY_BYTES = 16 * 1024 * 1024
REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_RULE = "1-128 characters of A-Z a-z 0-9 . _ : -"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
NOT_APPROVED = "its approval has not been recorded"
LOG_FAILED = "the decision log cannot be written; no decision is made without its record"


class ModelLoadError(CreditScorerError, RuntimeError):
    """The model file is missing or is not a model saved by ``TrainedModel.to_bytes()``."""


@dataclass(frozen=True)
class LoadedModel:
    """A model file read and checked once: the model, its file sha256, booster and input contract."""

    path: Path
    model: TrainedModel
    sha256: str
    booster: lgb.Booster
    contract: InputContract
    numerator_index: np.ndarray
    denominator_index: np.ndarray

    @property
    def request_fields(self) -> tuple[str, ...]:
        """Fields a request carries, in the order of the model matrix's inputs."""
        return tuple(self.contract.names)

    def matrix(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The model matrix of n×k request values: inputs, then each ratio ``num / max(den, 1)`` (into ``out``)."""
        n_inputs = len(self.model.input_columns)
        if out is None:
            out = np.empty((values.shape[0], n_inputs + len(self.numerator_index)), dtype=np.float64)
        out[:, :n_inputs] = values[:, :n_inputs]
        out[:, n_inputs:] = values[:, self.numerator_index] / np.maximum(values[:, self.denominator_index], 1.0)
        return out


def load_model(model_path: Path) -> LoadedModel:
    """Read and check a model file; raise :class:`ModelLoadError` naming what is wrong."""
    path = Path(model_path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ModelLoadError(
            f"model file {path} does not exist; pass the path of a model saved with TrainedModel.to_bytes()"
        ) from None
    except OSError as exc:
        raise ModelLoadError(f"model file {path} cannot be read: {exc}") from exc
    try:
        model = TrainedModel.model_validate_json(raw)
    except ValidationError as exc:
        raise ModelLoadError(
            f"model file {path} is not a credit-scorer model ({exc.error_count()} problem(s), first: "
            f"{_first_error(exc)}); re-save it with TrainedModel.to_bytes()"
        ) from None
    try:
        booster = lgb.Booster(model_str=model.booster)
    except Exception as exc:  # LightGBM raises its own error types for a damaged model string
        raise ModelLoadError(
            f"model file {path} holds a LightGBM booster that cannot be loaded ({exc}); "
            "re-save the model with TrainedModel.to_bytes()"
        ) from None
    n_features = len(model.input_columns) + len(model.derived_features)
    if booster.num_feature() != n_features or len(model.feature_names) != n_features:
        raise ModelLoadError(
            f"model file {path} is inconsistent: the booster expects {booster.num_feature()} features, "
            f"the model lists {len(model.input_columns)} inputs + {len(model.derived_features)} derived "
            f"and {len(model.feature_names)} feature names; re-train and re-save the model"
        )
    fields = model.request_fields
    contract = model.input_contract or InputContract(fields=[FieldRule(name=f, type="float") for f in fields])
    if contract.names != fields:
        raise ModelLoadError(
            f"model file {path} is inconsistent: its input contract lists {contract.names}, "
            f"the model needs {fields}; re-train and re-save the model"
        )
    return LoadedModel(
        path=path,
        model=model,
        sha256=hashlib.sha256(raw).hexdigest(),
        booster=booster,
        contract=contract,
        numerator_index=np.array([fields.index(f.numerator) for f in model.derived_features], dtype=np.intp),
        denominator_index=np.array([fields.index(f.denominator) for f in model.derived_features], dtype=np.intp),
    )


def self_test(loaded: LoadedModel, coder: ReasonCoder) -> float:
    """Score a valid sample applicant end to end (not logged); ModelLoadError when anything fails."""
    matrix = loaded.matrix(loaded.contract.sample_row().reshape(1, -1))
    try:
        proba = float(np.asarray(loaded.booster.predict(matrix))[0])
        coder.reasons(loaded.booster, matrix)
    except Exception as exc:  # LightGBM's own error types
        raise ModelLoadError(f"model file {loaded.path} cannot score a sample applicant: {exc}") from exc
    if not 0.0 <= proba <= 1.0:
        raise ModelLoadError(f"model file {loaded.path} scored a sample applicant {proba}, not a probability")
    return proba


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "document"
    return f"{where}: {err['msg']}"


def _json(payload: object, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def _invalid(detail: list[dict[str, Any]]) -> Answer:
    return 422, orjson.dumps({"detail": detail}), {}


def _parse(raw: bytes) -> tuple[Any, Answer | None]:
    if len(raw) > MAX_BODY_BYTES:
        detail = [error(["body"], f"request body over {MAX_BODY_BYTES} bytes", "too_large")]
        return None, (413, orjson.dumps({"detail": detail}), {})
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError:
        pass
    try:  # NaN, Infinity, 1e999 or a 400-digit integer: parse them so the check can name the field
        return json.loads(raw), None
    except (ValueError, RecursionError) as exc:
        return None, _invalid([error(["body"], f"request body is not valid JSON: {exc}", "json_invalid")])


def _request_id(given: str | None) -> tuple[str, Answer | None]:
    """The caller's ``X-Request-ID`` (a new random one when there is none), or the 422 refusing it."""
    if given is None:
        return secrets.token_hex(16), None
    if _REQUEST_ID.fullmatch(given):
        return given, None
    if not 0 < len(given) <= 128:
        got = f"got {len(given)} characters"
    else:
        position = next(i for i, c in enumerate(given) if not _REQUEST_ID.fullmatch(c))
        got = f"character {position + 1} is {given[position]!r}"
    message = f"header {REQUEST_ID_HEADER} must be {REQUEST_ID_RULE} ({got}); send a valid id or none"
    return "", _invalid([error(["header", REQUEST_ID_HEADER], message, "value_error.request_id")])


class FastPredictPath:
    """ASGI middleware answering ``POST /predict`` and ``POST /predict/batch`` without FastAPI's routing.

    These are what loan-origination systems call; this path calls the same handlers as the
    FastAPI routes (which stay, for the OpenAPI spec), only with less per-request overhead.
    Everything else goes to FastAPI.
    """

    def __init__(self, app: Any, handlers: dict[str, Any]) -> None:
        self.app = app
        self.handlers = handlers

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        handle = self.handlers.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if handle is None:
            await self.app(scope, receive, send)
            return
        authorization = ""
        request_id: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"x-request-id" and request_id is None:
                request_id = value.decode("latin-1")
        chunks = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if size > MAX_BODY_BYTES:
                break  # _parse answers 413
        status, payload, extra = handle(authorization, request_id, b"".join(chunks))
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def create_app(
    model_path: Path,
    release_id: str,
    *,
    decision_log_dir: Path,
    reason_codes: Path | None = None,
    api_tokens: Sequence[str] = (),
    max_batch_rows: int = MAX_BATCH_ROWS,
    log_max_bytes: int | None = None,
    activation: ActivationGate | None = None,
) -> FastAPI:
    """The scoring app for one model file.

    Raises :class:`ModelLoadError` for a missing or corrupt model file and
    :class:`~credit_scorer.core.errors.ConfigError` for a reason-code table that cannot explain
    every model feature. ``api_tokens`` (non-empty) turns on bearer-token auth for the
    predict routes; ``/health``, ``/model`` and ``/openapi.json`` stay open. ``activation``
    (default: active at once) keeps the predict routes at 503 until the gate opens.
    """
    if not release_id.strip():
        raise ValueError("release_id is empty; pass the id of the release this model belongs to")
    loaded = load_model(model_path)
    model = loaded.model
    threshold = model.decision_threshold
    booster = loaded.booster
    table_path = reason_table_path(reason_codes)
    table = load_reason_table(table_path)
    coder = ReasonCoder(table, model.feature_names, table_path)
    log_options = {"max_bytes": log_max_bytes} if log_max_bytes else {}
    decision_log = DecisionLog(decision_log_dir, release_id, loaded.sha256, coder.version, **log_options)
    contract = loaded.contract
    self_test(loaded, coder)
    tokens = [t.encode() for t in api_tokens if t]
    model_info = {
        "release_id": release_id,
        "model_sha256": loaded.sha256,
        "decision_threshold": threshold,
        "features": list(model.feature_names),
        "request_fields": list(loaded.request_fields),
        "reason_codes_version": coder.version,
        "auth": "bearer" if tokens else "none",
    }

    app = FastAPI(
        title="credit-scorer scoring service",
        version=release_id,
        description=(
            f"Release {release_id}, model sha256 {loaded.sha256}. Probability of default and approve/decline at "
            f"the release's decision threshold ({threshold:.4f}); declines carry up to four reason codes."
        ),
        docs_url=None,
        redoc_url=None,
    )
    app.state.loaded_model = loaded
    app.state.release_id = release_id
    app.state.decision_log = decision_log
    gate = activation if activation is not None else ActivationGate()
    app.state.activation = gate
    not_active: Answer = 503, orjson.dumps({"detail": f"release {release_id} is not active yet: {NOT_APPROVED}"}), {}
    unlogged: Answer = 503, orjson.dumps({"detail": LOG_FAILED}), {}

    def refusal(authorization: str, given_request_id: str | None) -> tuple[str, Answer | None]:
        """The request id, or the answer refusing the request.

        401 without a valid bearer token (when auth is on), 503 while the release is not active
        or when decisions cannot be logged, 422 for an invalid ``X-Request-ID``.
        """
        if tokens:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not any(hmac.compare_digest(token.encode(), t) for t in tokens):
                return "", (401, orjson.dumps({"detail": "missing or invalid bearer token"}), UNAUTHORISED)
        if not gate.active:
            return "", not_active
        if not decision_log.healthy:
            return "", unlogged
        return _request_id(given_request_id)

    def accepted(authorization: str, given_request_id: str | None, raw: bytes) -> tuple[str, Any, Answer | None]:
        """The request id and parsed body, or the answer refusing them (auth, activation, log, id, size, JSON)."""
        request_id, denied = refusal(authorization, given_request_id)
        if denied is not None:
            return request_id, None, denied
        body, denied = _parse(raw)
        return request_id, body, denied

    predict_one = SingleRowPredictor(booster)
    contributions_one = SingleRowPredictor(booster, contributions=True)

    def log(request_id: str, values: np.ndarray, proba: np.ndarray, declined: np.ndarray, reasons: Reasons) -> None:
        codes = [[str(r["code"]) for r in found] for found in reasons]
        decision_log.write(Batch(request_id, time.time(), values, proba, declined, codes))  # before the answer

    row = np.empty(len(model.feature_names), dtype=np.float64)  # reused: requests are scored one at a time
    row_as_matrix = row.reshape(1, -1)  # a view: matrix() fills the row in place

    def score_one(values: np.ndarray, request_id: str) -> tuple[float, bool, list[dict[str, object]]]:
        loaded.matrix(values.reshape(1, -1), out=row_as_matrix)
        proba = float(predict_one(row)[0])
        declined = proba >= threshold
        reasons = coder.explain(contributions_one(row))[0] if declined else []
        log(request_id, values.reshape(1, -1), np.array([proba]), np.array([declined]), [reasons])
        return proba, declined, reasons

    def score_many(values: np.ndarray, request_id: str) -> tuple[np.ndarray, np.ndarray, Reasons]:
        matrix = loaded.matrix(values)
        proba = np.asarray(booster.predict(matrix))
        declined = proba >= threshold
        reasons: Reasons = [[] for _ in range(len(proba))]
        if declined.any():
            index = np.flatnonzero(declined)
            for i, found in zip(index, coder.reasons(booster, matrix[index], CONTRIB_THREADS), strict=True):
                reasons[i] = found
        log(request_id, values, proba, declined, reasons)
        return proba, declined, reasons

    @app.get("/health", tags=["service"])
    async def health() -> Response:
        """Liveness: the process answers; ``decision_log`` says whether decisions can be logged."""
        ok = decision_log.healthy
        return _json(
            {"status": "ok" if ok else "degraded", "decision_log": "ok" if ok else "failed", "active": gate.active},
            200 if ok else 503,
        )

    @app.get("/model", tags=["service"])
    async def model_card() -> Response:
        """The release and model version being served, its threshold, features, request fields, and ``active``."""
        return _json({**model_info, "active": gate.active})

    def predict_single(authorization: str, given_request_id: str | None, raw: bytes) -> Answer:
        """POST /predict: one applicant in, one decision out (shared by the route and the fast path)."""
        request_id, body, refused = accepted(authorization, given_request_id, raw)
        if refused is not None:
            return refused
        values, errors = contract.check_one(body)
        if values is None:
            return 422, orjson.dumps({"detail": errors}), {}
        try:
            proba, declined, reasons = score_one(values, request_id)
        except LogUnavailable:
            return unlogged
        payload = {
            "request_id": request_id,
            "probability_of_default": proba,
            "decision": "decline" if declined else "approve",
            "reasons": reasons,
            "release_id": release_id,
            "model_sha256": loaded.sha256,
        }
        return 200, orjson.dumps(payload), {}

    @app.post("/predict", tags=["scoring"], openapi_extra=_openapi_single(contract))
    async def predict(request: Request) -> Response:
        """Probability of default and approve/decline for one applicant; reasons when declined."""
        headers = request.headers
        status, payload, extra = predict_single(
            headers.get("authorization", ""), headers.get("x-request-id"), await request.body()
        )
        return Response(payload, status_code=status, media_type="application/json", headers=extra)

    @app.post("/predict/batch", tags=["scoring"], openapi_extra=_openapi_batch(contract, max_batch_rows))
    async def predict_batch(request: Request) -> Response:
        """Probability of default and approve/decline for up to ``max_batch_rows`` applicants, in order.

        Send ``{"applicants": [{field: value, ...}, ...]}`` or the compact form
        ``{"columns": [request fields in /model order], "rows": [[value, ...], ...]}``.
        """
        status, payload, extra = predict_many(
            request.headers.get("authorization", ""), request.headers.get("x-request-id"), await request.body()
        )
        return Response(payload, status_code=status, media_type="application/json", headers=extra)

    def predict_many(authorization: str, given_request_id: str | None, raw: bytes) -> Answer:
        """POST /predict/batch: the applicants in order, one decision each."""
        request_id, body, refused = accepted(authorization, given_request_id, raw)
        if refused is not None:
            return refused
        if isinstance(body, dict) and "rows" in body:
            if "applicants" in body:
                message = "send either applicants or columns + rows, not both"
                return _invalid([error(["body"], message, "value_error.ambiguous")])
            rows = body["rows"]
            if isinstance(rows, list) and len(rows) > max_batch_rows:
                return _too_many(len(rows), "rows")
            values, errors = contract.check_rows(body.get("columns"), rows)
        else:
            applicants = body.get("applicants") if isinstance(body, dict) else None
            if not isinstance(applicants, list):
                message = 'send {"applicants": [{...}, ...]} or {"columns": [...], "rows": [[...], ...]}'
                return _invalid([error(["body", "applicants"], message, "type_error.list")])
            if len(applicants) > max_batch_rows:
                return _too_many(len(applicants), "applicants")
            values, errors = contract.check_many(applicants)
        if values is None:
            return _invalid(errors)
        try:
            proba, declined, reasons = score_many(values, request_id)
        except LogUnavailable:
            return unlogged
        results = [
            {"probability_of_default": p, "decision": DECLINE if d else APPROVE, "reasons": r}
            for p, d, r in zip(proba.tolist(), declined.tolist(), reasons, strict=True)
        ]
        payload = {
            "request_id": request_id,
            "release_id": release_id,
            "model_sha256": loaded.sha256,
            "results": results,
        }
        return 200, orjson.dumps(payload), {}

    def _too_many(count: int, key: str) -> Answer:
        message = f"at most {max_batch_rows} {key} per request, got {count}; split the batch"
        return _invalid([error(["body", key], message, "value_error.too_long")])

    app.add_middleware(FastPredictPath, handlers={"/predict": predict_single, "/predict/batch": predict_many})
    return app


# ---------------------------------------------------------------------------
# OpenAPI: the request and response shapes, with the contract's ranges and codes
# ---------------------------------------------------------------------------
def _field_schema(rule: FieldRule) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer" if rule.type == "int" else "number", "description": rule.describe()}
    if rule.codes is not None:
        schema["enum"] = list(rule.codes)
    else:
        if rule.min is not None:
            schema["minimum"] = rule.min
        if rule.max is not None:
            schema["maximum"] = rule.max
    return schema


def _applicant_schema(contract: InputContract) -> dict[str, Any]:
    return {
        "type": "object",
        "required": contract.names,
        "properties": {rule.name: _field_schema(rule) for rule in contract.fields},
    }


_REASON = {
    "type": "object",
    "required": ["code", "reason", "feature", "contribution"],
    "properties": {
        "code": {"type": "string"},
        "reason": {"type": "string"},
        "feature": {"type": "string"},
        "contribution": {"type": "number", "description": "log-odds contribution to the probability of default"},
    },
}
_DECISION = {
    "probability_of_default": {"type": "number", "minimum": 0, "maximum": 1},
    "decision": {"type": "string", "enum": ["approve", "decline"]},
    "reasons": {"type": "array", "maxItems": 4, "items": _REASON},
}
_ERRORS = {
    "description": "invalid request: one entry per field",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "detail": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "loc": {"type": "array", "items": {"type": "string"}},
                                "msg": {"type": "string"},
                                "type": {"type": "string"},
                            },
                        },
                    }
                },
            }
        }
    },
}
_COMMON_RESPONSES = {
    "422": _ERRORS,
    "401": {"description": "missing or invalid bearer token (when the service requires one)"},
    "503": {"description": "the release is not active yet, or the decision log cannot be written: no decision"},
}
_REQUEST_ID_PARAMETER = {
    "name": REQUEST_ID_HEADER,
    "in": "header",
    "required": False,
    "description": (
        f"your id for this request, {REQUEST_ID_RULE} (else 422); logged with each decision "
        "(<id>:<row> in a batch); generated when absent"
    ),
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
}


def _openapi_single(contract: InputContract) -> dict[str, Any]:
    response = {
        "type": "object",
        "required": ["request_id", *_DECISION, "release_id", "model_sha256"],
        "properties": {
            "request_id": {"type": "string"},
            **_DECISION,
            "release_id": {"type": "string"},
            "model_sha256": {"type": "string"},
        },
    }
    return {
        "parameters": [_REQUEST_ID_PARAMETER],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _applicant_schema(contract)}}},
        "responses": {
            "200": {"description": "the decision", "content": {"application/json": {"schema": response}}},
            **_COMMON_RESPONSES,
        },
    }


def _openapi_batch(contract: InputContract, max_rows: int) -> dict[str, Any]:
    k = len(contract.fields)
    objects = {
        "type": "object",
        "required": ["applicants"],
        "properties": {
            "applicants": {"type": "array", "minItems": 1, "maxItems": max_rows, "items": _applicant_schema(contract)}
        },
    }
    compact = {
        "type": "object",
        "required": ["columns", "rows"],
        "properties": {
            "columns": {"const": contract.names, "description": "the request fields, exactly in this order"},
            "rows": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_rows,
                "items": {
                    "type": "array",
                    "minItems": k,
                    "maxItems": k,
                    "prefixItems": [_field_schema(rule) for rule in contract.fields],
                },
            },
        },
    }
    request = {"oneOf": [objects, compact]}
    response = {
        "type": "object",
        "required": ["request_id", "release_id", "model_sha256", "results"],
        "properties": {
            "request_id": {"type": "string"},
            "release_id": {"type": "string"},
            "model_sha256": {"type": "string"},
            "results": {
                "type": "array",
                "items": {"type": "object", "required": list(_DECISION), "properties": _DECISION},
            },
        },
    }
    return {
        "parameters": [_REQUEST_ID_PARAMETER],
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": {
            "200": {
                "description": "one decision per applicant, in order",
                "content": {"application/json": {"schema": response}},
            },
            **_COMMON_RESPONSES,
        },
    }
