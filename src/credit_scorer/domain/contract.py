"""The input contract of a model: which fields a scoring request carries and their valid values.

Built from the dataset spec when the model is trained and saved inside the model file, so
the served model checks requests against exactly the rules its training data passed
(required fields, integer or number, min/max, documented and undocumented category codes)
and maps undocumented codes the way training did.

Two checkers with the same rules: :meth:`InputContract.check_one` for one applicant (a
plain loop, a few microseconds) and :meth:`InputContract.check_many` / :meth:`check_rows`
for a batch of objects or of compact rows (numpy, vectorised); all return per-field error
messages that name the field, the value and the rule.
"""

from __future__ import annotations

import math
from functools import cached_property
from itertools import chain
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from credit_scorer.domain.config import DatasetSpec

MAX_ERRORS = 100  # per response; a batch with more says how many were left out


class FieldRule(BaseModel):
    """Valid values of one request field."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: Literal["int", "float"]
    min: float | None = None
    max: float | None = None
    codes: list[int] | None = None  # accepted codes (documented and undocumented), None = any in range
    mapping: dict[int, int] = {}  # undocumented code -> code used in training
    description: str = ""

    def describe(self) -> str:
        """The rule in words, for error messages and the OpenAPI description."""
        kind = "an integer" if self.type == "int" else "a number"
        if self.codes is not None:
            return f"{kind}, one of {', '.join(str(c) for c in self.codes)}"
        if self.min is not None and self.max is not None:
            return f"{kind} from {_num(self.min)} to {_num(self.max)}"
        if self.min is not None:
            return f"{kind} ≥ {_num(self.min)}"
        if self.max is not None:
            return f"{kind} ≤ {_num(self.max)}"
        return kind


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class InputContract(BaseModel):
    """The fields of a scoring request, in the order the model matrix is built from."""

    model_config = ConfigDict(frozen=True)

    fields: list[FieldRule]

    @classmethod
    def from_spec(cls, spec: DatasetSpec, request_fields: list[str]) -> InputContract:
        """The rules of ``request_fields`` from the dataset spec's ``columns``."""
        rules = []
        for name in request_fields:
            column = spec.columns[name]
            codes = None
            if column.codes is not None:
                codes = sorted({*column.codes, *column.undocumented})
            mapping = {k: v for k, v in column.undocumented.items() if k != v}
            rules.append(
                FieldRule(
                    name=name,
                    type=column.type,
                    min=column.min,
                    max=column.max,
                    codes=codes,
                    mapping=mapping,
                    description=column.description,
                )
            )
        return cls(fields=rules)

    def sample_row(self) -> np.ndarray:
        """A valid applicant (the lowest valid value of each field), for the service's start-up self-test."""
        values = []
        for rule in self.fields:
            if rule.codes is not None:
                values.append(float(rule.mapping.get(rule.codes[0], rule.codes[0])))
            else:
                values.append(float(rule.min if rule.min is not None else min(0.0, rule.max or 0.0)))
        return np.array(values, dtype=np.float64)

    @property
    def names(self) -> list[str]:
        """Field names in model order."""
        return [f.name for f in self.fields]

    # -- one applicant -------------------------------------------------------------
    @cached_property
    def _plan(self) -> list[tuple[str, bool, float, float, frozenset[int] | None, dict[int, int] | None]]:
        """Per field: name, integer?, min, max, codes, mapping; precomputed for the hot path."""
        return [
            (
                r.name,
                r.type == "int",
                -math.inf if r.min is None else r.min,
                math.inf if r.max is None else r.max,
                frozenset(r.codes) if r.codes is not None else None,
                r.mapping or None,
            )
            for r in self.fields
        ]

    def check_one(self, body: object) -> tuple[np.ndarray | None, list[dict[str, Any]]]:
        """The applicant's values (mapped codes applied) in field order, or the errors per field.

        A straight pass for valid input (a few microseconds); anything unexpected falls back
        to :meth:`_errors_one`, which names every problem.
        """
        if type(body) is not dict:
            return None, self._errors_one(body)
        values = []
        try:
            for name, is_int, lo, hi, codes, mapping in self._plan:
                value = body[name]
                kind = type(value)
                if kind is float:
                    if value != value or value in (math.inf, -math.inf) or (is_int and not value.is_integer()):
                        raise _Invalid
                    if codes is not None:
                        if int(value) not in codes:
                            raise _Invalid
                    elif not lo <= value <= hi:
                        raise _Invalid
                elif kind is int:
                    if codes is not None:
                        if value not in codes:
                            raise _Invalid
                    elif not lo <= value <= hi:
                        raise _Invalid
                else:
                    raise _Invalid
                values.append(mapping.get(int(value), value) if mapping else value)
            return np.array(values, dtype=np.float64), []
        except (KeyError, _Invalid, OverflowError):
            return None, self._errors_one(body)

    def _errors_one(self, body: object) -> list[dict[str, Any]]:
        if not isinstance(body, dict):
            message = "send one applicant as a JSON object mapping each field to a number"
            return [error(["body"], message, "type_error.object")]
        errors = []
        for rule in self.fields:
            problem = _problem(rule, body.get(rule.name, _MISSING))
            if problem is not None:
                errors.append(error(["body", rule.name], *problem))
        return errors

    # -- a batch ---------------------------------------------------------------------
    def check_many(
        self, applicants: list[Any], loc: str = "applicants"
    ) -> tuple[np.ndarray | None, list[dict[str, Any]]]:
        """An n×k matrix of the applicants' values (mapped codes applied), or the errors per field.

        The fast path builds the matrix in one pass and checks types, ranges and codes with
        numpy; only when something is wrong are the rows re-checked one by one for messages.
        """
        names = self.names
        try:
            rows = [[a[name] for name in names] for a in applicants]
        except (KeyError, TypeError, IndexError):
            return None, self._row_errors(applicants, loc)
        matrix = self._matrix(rows)
        if matrix is None:
            return None, self._row_errors(applicants, loc)
        return matrix, []

    def check_rows(
        self, columns: object, rows: object, loc: str = "rows"
    ) -> tuple[np.ndarray | None, list[dict[str, Any]]]:
        """The same as :meth:`check_many` for the compact form ``columns`` + ``rows`` (lists of values).

        ``columns`` must be exactly :attr:`names` in that order: a silently re-ordered column
        would score the wrong applicant, so it is refused rather than re-ordered.
        """
        names = self.names
        if columns != names:
            expected = ", ".join(names)
            message = f"columns must be exactly the request fields in this order: {expected}"
            return None, [error(["body", "columns"], message, "value_error.columns")]
        if type(rows) is not list:
            return None, [error(["body", loc], f"{loc} must be a list of rows (lists of values)", "type_error.list")]
        matrix = self._matrix(rows)
        if matrix is not None:
            return matrix, []
        width = len(names)
        errors: list[dict[str, Any]] = []
        as_dicts: list[Any] = []
        for i, row in enumerate(rows):
            if type(row) is not list or len(row) != width:
                message = f"each row must be a list of {width} values, one per column"
                errors.append(error(["body", loc, str(i)], message, "type_error.row"))
            else:
                as_dicts.append(dict(zip(names, row, strict=True)))
        if errors:
            return None, errors[:MAX_ERRORS]
        return None, self._row_errors(as_dicts, loc)

    def _matrix(self, rows: list[Any]) -> np.ndarray | None:
        """Rows of values as the checked n×k matrix with mapped codes applied; None when anything is invalid."""
        try:  # a row that is not a list fails here or in the type check (a dict row iterates its keys)
            if not rows or not set(map(type, chain.from_iterable(rows))) <= {int, float}:
                return None
            matrix = np.array(rows, dtype=np.float64)
        except (OverflowError, ValueError, TypeError):  # ragged rows: ValueError
            return None
        if matrix.ndim != 2 or matrix.shape[1] != len(self.fields) or not self._all_valid(matrix):
            return None
        for j, rule in enumerate(self.fields):
            for code, mapped in rule.mapping.items():
                matrix[matrix[:, j] == code, j] = mapped
        return matrix

    @cached_property
    def _limits(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[int, np.ndarray]]]:
        """Per column: lowest and highest valid value, the integer columns, and code lists with gaps."""
        low: list[float] = []
        high: list[float] = []
        scattered: list[tuple[int, np.ndarray]] = []
        for j, rule in enumerate(self.fields):
            if rule.codes is not None:
                low.append(min(rule.codes))
                high.append(max(rule.codes))
                if len(rule.codes) != max(rule.codes) - min(rule.codes) + 1:  # not every integer in between
                    scattered.append((j, np.array(rule.codes, dtype=np.float64)))
            else:
                low.append(-np.inf if rule.min is None else rule.min)
                high.append(np.inf if rule.max is None else rule.max)
        integers = np.array([j for j, r in enumerate(self.fields) if r.type == "int" or r.codes is not None])
        return np.array(low, dtype=np.float64), np.array(high, dtype=np.float64), integers, scattered

    def _all_valid(self, matrix: np.ndarray) -> bool:
        """Every value finite, within its field's range, integral where required and one of its codes."""
        low, high, integers, scattered = self._limits
        if not (np.isfinite(matrix).all() and (matrix >= low).all() and (matrix <= high).all()):
            return False
        if integers.size and not np.array_equal(whole := matrix[:, integers], np.floor(whole)):
            return False
        return all(np.isin(matrix[:, j], codes).all() for j, codes in scattered)

    def _row_errors(self, applicants: list[Any], loc: str) -> list[dict[str, Any]]:
        if not applicants:
            return [error(["body", loc], f"{loc} is empty: send at least one applicant", "value_error.empty")]
        errors: list[dict[str, Any]] = []
        total = 0
        for i, applicant in enumerate(applicants):
            if not isinstance(applicant, dict):
                total += 1
                if len(errors) < MAX_ERRORS:
                    errors.append(
                        error(["body", loc, str(i)], "each applicant must be a JSON object", "type_error.object")
                    )
                continue
            for rule in self.fields:
                problem = _problem(rule, applicant.get(rule.name, _MISSING))
                if problem is not None:
                    total += 1
                    if len(errors) < MAX_ERRORS:
                        errors.append(error(["body", loc, str(i), rule.name], *problem))
        if total > len(errors):
            errors.append(
                error(["body", loc], f"{total - len(errors)} more problems not listed", "value_error.truncated")
            )
        return errors


_MISSING: Any = object()


class _Invalid(Exception):
    """Something in the fast path is not valid: fall back to the path that names the problem."""


def _problem(rule: FieldRule, value: object) -> tuple[str, str] | None:
    """(message, type) when ``value`` breaks ``rule``, else None."""
    name = rule.name
    if value is _MISSING:
        return f"field {name} is required: send {rule.describe()}", "missing"
    if type(value) is not int and type(value) is not float:
        return f"field {name} must be {rule.describe()}, got {_json_type(value)}", "type_error.number"
    number = float(value) if abs(value) < 1e308 else math.inf
    if not math.isfinite(number):
        return f"field {name} must be a finite number, got {value}", "value_error.finite_number"
    if rule.type == "int" and not number.is_integer():
        return f"field {name} must be an integer, got {value}", "type_error.integer"
    if rule.codes is not None:
        if int(number) not in rule.codes:
            return f"field {name} must be one of {', '.join(map(str, rule.codes))}, got {value}", "value_error.code"
        return None
    if rule.min is not None and number < rule.min:
        return f"field {name} must be ≥ {_num(rule.min)}, got {value}", "value_error.min"
    if rule.max is not None and number > rule.max:
        return f"field {name} must be ≤ {_num(rule.max)}, got {value}", "value_error.max"
    return None


def error(loc: list[str], msg: str, kind: str) -> dict[str, Any]:
    """One entry of a 422 ``detail`` list (FastAPI's shape)."""
    return {"loc": loc, "msg": msg, "type": kind}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
