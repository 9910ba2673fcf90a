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

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from credit_scorer.serving.activation import ActivationGate
from credit_scorer.serving.decision_log import DecisionLog
from credit_scorer.serving.model_file import LoadedModel as LoadedModel
from credit_scorer.serving.model_file import ModelLoadError as ModelLoadError
from credit_scorer.serving.model_file import load_model, self_test
from credit_scorer.serving.openapi import openapi_batch, openapi_single
from credit_scorer.serving.reasons import ReasonCoder, load_reason_table, reason_table_path
from credit_scorer.serving.requests import MAX_BATCH_ROWS, MAX_BODY_BYTES
from credit_scorer.serving.scorer import Scorer


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

    app = _fastapi(release_id, loaded.sha256, scorer.threshold)
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


def _fastapi(release_id: str, model_sha256: str, threshold: float) -> FastAPI:
    return FastAPI(
        title="credit-scorer scoring service",
        version=release_id,
        description=(
            f"Release {release_id}, model sha256 {model_sha256}. Probability of default and approve/decline at "
            f"the release's decision threshold ({threshold:.4f}); declines carry up to four reason codes."
        ),
        docs_url=None,
        redoc_url=None,
    )


def _json(payload: object, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")
