"""What a predict request must be, and the answers refusing one: body size and JSON, ``X-Request-ID``."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import orjson

from credit_scorer.domain.contract import error

Reasons = list[list[dict[str, object]]]
Answer = tuple[int, bytes, dict[str, str]]
"""(HTTP status, JSON body, extra headers) of a predict route."""
UNAUTHORISED = {"WWW-Authenticate": "Bearer"}
APPROVE, DECLINE = "approve", "decline"
MAX_BATCH_ROWS = 10_000
MAX_BODY_BYTES = 16 * 1024 * 1024
REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_RULE = "1-128 characters of A-Z a-z 0-9 . _ : -"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
NOT_APPROVED = "its approval has not been recorded"
LOG_FAILED = "the decision log cannot be written; no decision is made without its record"


def invalid(detail: list[dict[str, Any]]) -> Answer:
    return 422, orjson.dumps({"detail": detail}), {}


def parse_body(raw: bytes) -> tuple[Any, Answer | None]:
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
        return None, invalid([error(["body"], f"request body is not valid JSON: {exc}", "json_invalid")])


def request_id_of(given: str | None) -> tuple[str, Answer | None]:
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
    return "", invalid([error(["header", REQUEST_ID_HEADER], message, "value_error.request_id")])
