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
from credit_scorer.domain.contract import FieldRule, InputContract
from credit_scorer.domain.model import TrainedModel
from credit_scorer.serving.activation import ActivationGate
from credit_scorer.serving.decision_log import DecisionLog
from credit_scorer.serving.openapi import openapi_batch, openapi_single
from credit_scorer.serving.reasons import ReasonCoder, load_reason_table, reason_table_path
from credit_scorer.serving.requests import MAX_BATCH_ROWS, MAX_BODY_BYTES
from credit_scorer.serving.scorer import Scorer


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
                break  # parse_body answers 413
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
    table_path = reason_table_path(reason_codes)
    coder = ReasonCoder(load_reason_table(table_path), loaded.model.feature_names, table_path)
    log_options = {"max_bytes": log_max_bytes} if log_max_bytes else {}
    decision_log = DecisionLog(decision_log_dir, release_id, loaded.sha256, coder.version, **log_options)
    self_test(loaded, coder)
    gate = activation if activation is not None else ActivationGate()
    scorer = Scorer(
        loaded, coder, decision_log, release_id, api_tokens=api_tokens, gate=gate, max_batch_rows=max_batch_rows
    )

    app = FastAPI(
        title="credit-scorer scoring service",
        version=release_id,
        description=(
            f"Release {release_id}, model sha256 {loaded.sha256}. Probability of default and approve/decline at "
            f"the release's decision threshold ({scorer.threshold:.4f}); declines carry up to four reason codes."
        ),
        docs_url=None,
        redoc_url=None,
    )
    app.state.loaded_model = loaded
    app.state.release_id = release_id
    app.state.decision_log = decision_log
    app.state.activation = gate

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
        return _json(scorer.model_info())

    @app.post("/predict", tags=["scoring"], openapi_extra=openapi_single(loaded.contract))
    async def predict(request: Request) -> Response:
        """Probability of default and approve/decline for one applicant; reasons when declined."""
        headers = request.headers
        status, payload, extra = scorer.predict_single(
            headers.get("authorization", ""), headers.get("x-request-id"), await request.body()
        )
        return Response(payload, status_code=status, media_type="application/json", headers=extra)

    @app.post("/predict/batch", tags=["scoring"], openapi_extra=openapi_batch(loaded.contract, max_batch_rows))
    async def predict_batch(request: Request) -> Response:
        """Probability of default and approve/decline for up to ``max_batch_rows`` applicants, in order.

        Send ``{"applicants": [{field: value, ...}, ...]}`` or the compact form
        ``{"columns": [request fields in /model order], "rows": [[value, ...], ...]}``.
        """
        status, payload, extra = scorer.predict_many(
            request.headers.get("authorization", ""), request.headers.get("x-request-id"), await request.body()
        )
        return Response(payload, status_code=status, media_type="application/json", headers=extra)

    app.add_middleware(
        FastPredictPath, handlers={"/predict": scorer.predict_single, "/predict/batch": scorer.predict_many}
    )
    return app


def _json(payload: object, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")
