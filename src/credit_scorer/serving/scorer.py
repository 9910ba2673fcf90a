"""One release's model behind the predict routes: who may ask, scoring, reasons, the decision log, the answer.

The FastAPI routes and the fast ASGI path (``app.FastPredictPath``) call the same two handlers,
:meth:`Scorer.predict_single` and :meth:`Scorer.predict_many`; each returns ``(status, JSON body,
extra headers)`` and writes the decision log before it returns an answer that carries decisions.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from credit_scorer.domain.contract import error
from credit_scorer.serving.activation import ActivationGate
from credit_scorer.serving.decision_log import Batch, DecisionLog, LogUnavailable
from credit_scorer.serving.fast_predict import SingleRowPredictor
from credit_scorer.serving.model_file import LoadedModel
from credit_scorer.serving.reasons import ReasonCoder
from credit_scorer.serving.requests import (
    APPROVE,
    DECLINE,
    LOG_FAILED,
    NOT_APPROVED,
    UNAUTHORISED,
    Answer,
    Reasons,
    invalid,
    parse_body,
    request_id_of,
)

CONTRIB_THREADS = 2  # TreeSHAP of a batch's declines, across both cores


class Scorer:
    """Scores requests for one loaded model; every decision is logged before it is answered."""

    def __init__(
        self,
        loaded: LoadedModel,
        coder: ReasonCoder,
        decision_log: DecisionLog,
        release_id: str,
        *,
        api_tokens: Sequence[str],
        gate: ActivationGate,
        max_batch_rows: int,
    ) -> None:
        self.loaded = loaded
        self.coder = coder
        self.decision_log = decision_log
        self.release_id = release_id
        self.gate = gate
        self.max_batch_rows = max_batch_rows
        self.tokens = [t.encode() for t in api_tokens if t]
        self.threshold = loaded.model.decision_threshold
        self.not_active: Answer = (
            503,
            orjson.dumps({"detail": f"release {release_id} is not active yet: {NOT_APPROVED}"}),
            {},
        )
        self.unlogged: Answer = 503, orjson.dumps({"detail": LOG_FAILED}), {}
        self._predict_one = SingleRowPredictor(loaded.booster)
        self._contributions_one = SingleRowPredictor(loaded.booster, contributions=True)
        self._row = np.empty(len(loaded.model.feature_names), dtype=np.float64)  # reused: one request at a time
        self._row_as_matrix = self._row.reshape(1, -1)  # a view: matrix() fills the row in place

    def model_info(self) -> dict[str, object]:
        """What ``/model`` reports: release, model sha256, threshold, features, request fields, auth, active."""
        model = self.loaded.model
        return {
            "release_id": self.release_id,
            "model_sha256": self.loaded.sha256,
            "decision_threshold": self.threshold,
            "features": list(model.feature_names),
            "request_fields": list(self.loaded.request_fields),
            "reason_codes_version": self.coder.version,
            "auth": "bearer" if self.tokens else "none",
            "active": self.gate.active,
        }

    def refusal(self, authorization: str, given_request_id: str | None) -> tuple[str, Answer | None]:
        """The request id, or the answer refusing the request.

        401 without a valid bearer token (when auth is on), 503 while the release is not active
        or when decisions cannot be logged, 422 for an invalid ``X-Request-ID``.
        """
        if self.tokens:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not any(hmac.compare_digest(token.encode(), t) for t in self.tokens):
                return "", (401, orjson.dumps({"detail": "missing or invalid bearer token"}), UNAUTHORISED)
        if not self.gate.active:
            return "", self.not_active
        if not self.decision_log.healthy:
            return "", self.unlogged
        return request_id_of(given_request_id)

    def accepted(self, authorization: str, given_request_id: str | None, raw: bytes) -> tuple[str, Any, Answer | None]:
        """The request id and parsed body, or the answer refusing them (auth, activation, log, id, size, JSON)."""
        request_id, denied = self.refusal(authorization, given_request_id)
        if denied is not None:
            return request_id, None, denied
        body, denied = parse_body(raw)
        return request_id, body, denied

    def _log(
        self, request_id: str, values: np.ndarray, proba: np.ndarray, declined: np.ndarray, reasons: Reasons
    ) -> None:
        codes = [[str(r["code"]) for r in found] for found in reasons]
        self.decision_log.write(Batch(request_id, time.time(), values, proba, declined, codes))  # before the answer

    def score_one(self, values: np.ndarray, request_id: str) -> tuple[float, bool, list[dict[str, object]]]:
        self.loaded.matrix(values.reshape(1, -1), out=self._row_as_matrix)
        proba = float(self._predict_one(self._row)[0])
        declined = proba >= self.threshold
        reasons = self.coder.explain(self._contributions_one(self._row))[0] if declined else []
        self._log(request_id, values.reshape(1, -1), np.array([proba]), np.array([declined]), [reasons])
        return proba, declined, reasons

    def score_many(self, values: np.ndarray, request_id: str) -> tuple[np.ndarray, np.ndarray, Reasons]:
        booster = self.loaded.booster
        matrix = self.loaded.matrix(values)
        proba = np.asarray(booster.predict(matrix))
        declined = proba >= self.threshold
        reasons: Reasons = [[] for _ in range(len(proba))]
        if declined.any():
            index = np.flatnonzero(declined)
            for i, found in zip(index, self.coder.reasons(booster, matrix[index], CONTRIB_THREADS), strict=True):
                reasons[i] = found
        self._log(request_id, values, proba, declined, reasons)
        return proba, declined, reasons

    def predict_single(self, authorization: str, given_request_id: str | None, raw: bytes) -> Answer:
        """POST /predict: one applicant in, one decision out (shared by the route and the fast path)."""
        request_id, body, refused = self.accepted(authorization, given_request_id, raw)
        if refused is not None:
            return refused
        values, errors = self.loaded.contract.check_one(body)
        if values is None:
            return 422, orjson.dumps({"detail": errors}), {}
        try:
            proba, declined, reasons = self.score_one(values, request_id)
        except LogUnavailable:
            return self.unlogged
        payload = {
            "request_id": request_id,
            "probability_of_default": proba,
            "decision": "decline" if declined else "approve",
            "reasons": reasons,
            "release_id": self.release_id,
            "model_sha256": self.loaded.sha256,
        }
        return 200, orjson.dumps(payload), {}

    def predict_many(self, authorization: str, given_request_id: str | None, raw: bytes) -> Answer:
        """POST /predict/batch: the applicants in order, one decision each."""
        request_id, body, refused = self.accepted(authorization, given_request_id, raw)
        if refused is not None:
            return refused
        contract = self.loaded.contract
        if isinstance(body, dict) and "rows" in body:
            if "applicants" in body:
                message = "send either applicants or columns + rows, not both"
                return invalid([error(["body"], message, "value_error.ambiguous")])
            rows = body["rows"]
            if isinstance(rows, list) and len(rows) > self.max_batch_rows:
                return self._too_many(len(rows), "rows")
            values, errors = contract.check_rows(body.get("columns"), rows)
        else:
            applicants = body.get("applicants") if isinstance(body, dict) else None
            if not isinstance(applicants, list):
                message = 'send {"applicants": [{...}, ...]} or {"columns": [...], "rows": [[...], ...]}'
                return invalid([error(["body", "applicants"], message, "type_error.list")])
            if len(applicants) > self.max_batch_rows:
                return self._too_many(len(applicants), "applicants")
            values, errors = contract.check_many(applicants)
        if values is None:
            return invalid(errors)
        try:
            proba, declined, reasons = self.score_many(values, request_id)
        except LogUnavailable:
            return self.unlogged
        results = [
            {"probability_of_default": p, "decision": DECLINE if d else APPROVE, "reasons": r}
            for p, d, r in zip(proba.tolist(), declined.tolist(), reasons, strict=True)
        ]
        payload = {
            "request_id": request_id,
            "release_id": self.release_id,
            "model_sha256": self.loaded.sha256,
            "results": results,
        }
        return 200, orjson.dumps(payload), {}

    def _too_many(self, count: int, key: str) -> Answer:
        message = f"at most {self.max_batch_rows} {key} per request, got {count}; split the batch"
        return invalid([error(["body", key], message, "value_error.too_long")])
