"""The scoring endpoint: one stored model version behind ``/health``, ``/model`` and ``/predict``.

The model file is read once at start-up; its sha256 is computed from the file bytes, so
``/model`` reports exactly the version being served. ``/predict`` builds the feature row
with numpy (the same arithmetic as :func:`credit_scorer.train.model_matrix`) and calls the
LightGBM booster once per request.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from credit_scorer.errors import CreditScorerError
from credit_scorer.train import TrainedModel

_MISSING = object()


class ModelLoadError(CreditScorerError, RuntimeError):
    """The model file is missing or is not a model saved by ``TrainedModel.to_bytes()``."""


@dataclass(frozen=True)
class LoadedModel:
    """A model file read and checked once: the model, its file sha256 and its booster."""

    path: Path
    model: TrainedModel
    sha256: str
    booster: lgb.Booster
    request_fields: tuple[str, ...]
    """Fields ``/predict`` needs: the input columns, then any other ratio operand."""
    numerator_index: np.ndarray
    denominator_index: np.ndarray


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
    fields = list(model.input_columns)
    for feat in model.derived_features:
        fields += [c for c in (feat.numerator, feat.denominator) if c not in fields]
    return LoadedModel(
        path=path,
        model=model,
        sha256=hashlib.sha256(raw).hexdigest(),
        booster=booster,
        request_fields=tuple(fields),
        numerator_index=np.array([fields.index(f.numerator) for f in model.derived_features], dtype=np.intp),
        denominator_index=np.array([fields.index(f.denominator) for f in model.derived_features], dtype=np.intp),
    )


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "document"
    return f"{where}: {err['msg']}"


def feature_row(loaded: LoadedModel, values: np.ndarray) -> np.ndarray:
    """The 1×n model matrix for one applicant: inputs, then each ratio ``num / max(den, 1)``."""
    n_inputs = len(loaded.model.input_columns)
    row = np.empty((1, n_inputs + len(loaded.numerator_index)), dtype=np.float64)
    row[0, :n_inputs] = values[:n_inputs]
    row[0, n_inputs:] = values[loaded.numerator_index] / np.maximum(values[loaded.denominator_index], 1.0)
    return row


def parse_applicant(loaded: LoadedModel, body: object) -> tuple[np.ndarray | None, list[dict[str, Any]]]:
    """The applicant's values in ``request_fields`` order, or the per-field errors."""
    if not isinstance(body, dict):
        return None, [
            _error(
                ["body"],
                "send one applicant as a JSON object mapping each field to a number",
                "type_error.object",
            )
        ]
    values = np.empty(len(loaded.request_fields), dtype=np.float64)
    errors: list[dict[str, Any]] = []
    for i, name in enumerate(loaded.request_fields):
        value = body.get(name, _MISSING)
        if value is _MISSING:
            errors.append(_error(["body", name], f"field {name} is required: send it as a number", "missing"))
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(
                _error(
                    ["body", name],
                    f"field {name} must be a number, got {_json_type(value)}",
                    "type_error.number",
                )
            )
            continue
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            errors.append(
                _error(
                    ["body", name],
                    f"field {name} must be a finite number, got {number}",
                    "value_error.finite_number",
                )
            )
            continue
        values[i] = number
    return (None, errors) if errors else (values, [])


def _error(loc: list[str], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def create_app(model_path: Path, release_id: str) -> FastAPI:
    """Scoring app for one model file; raises :class:`ModelLoadError` if the file is missing or corrupt."""
    if not release_id.strip():
        raise ValueError("release_id is empty; pass the id of the release this model belongs to")
    loaded = load_model(model_path)
    model = loaded.model
    threshold = model.decision_threshold
    booster = loaded.booster
    model_info = {
        "release_id": release_id,
        "model_sha256": loaded.sha256,
        "decision_threshold": threshold,
        "features": [*model.input_columns, *(f.name for f in model.derived_features)],
        "request_fields": list(loaded.request_fields),
    }
    request_schema = {
        "type": "object",
        "required": list(loaded.request_fields),
        "properties": {name: {"type": "number"} for name in loaded.request_fields},
    }

    app = FastAPI(title="credit-scorer", version=release_id, docs_url=None, redoc_url=None)
    app.state.loaded_model = loaded
    app.state.release_id = release_id

    @app.get("/health")
    async def health() -> JSONResponse:
        """Liveness: the process answers."""
        return JSONResponse({"status": "ok"})

    @app.get("/model")
    async def model_card() -> JSONResponse:
        """The release and model version being served."""
        return JSONResponse(model_info)

    @app.post(
        "/predict",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": request_schema}}}},
    )
    async def predict(request: Request) -> JSONResponse:
        """Probability of default and approve/decline for one applicant."""
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            detail = [_error(["body"], f"request body is not valid JSON: {exc}", "json_invalid")]
            return JSONResponse({"detail": detail}, status_code=422)
        values, errors = parse_applicant(loaded, body)
        if values is None:
            return JSONResponse({"detail": errors}, status_code=422)
        proba = float(booster.predict(feature_row(loaded, values))[0])
        return JSONResponse(
            {
                "probability_of_default": proba,
                "decision": "decline" if proba >= threshold else "approve",
                "release_id": release_id,
                "model_sha256": loaded.sha256,
            }
        )

    return app
