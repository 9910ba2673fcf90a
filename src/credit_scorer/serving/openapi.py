"""The predict routes' OpenAPI shapes: request and response bodies with the input contract's ranges and codes."""

from __future__ import annotations

from typing import Any

from credit_scorer.domain.contract import FieldRule, InputContract
from credit_scorer.serving.requests import REQUEST_ID_HEADER, REQUEST_ID_RULE


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


def openapi_single(contract: InputContract) -> dict[str, Any]:
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


def openapi_batch(contract: InputContract, max_rows: int) -> dict[str, Any]:
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
