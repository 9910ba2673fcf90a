"""The error family: each error names the thing to fix, and carries its CLI exit code and HTTP status.

Commands exit with ``exc.exit_code`` and console routes answer ``exc.http_status``, decided here by the
class, never by matching the message. The CLI's exit codes: 0 done, 1 a run or deployment failed (or an
audit found problems), 2 refused before anything was done, 4 rejected, 5 waiting at the gate.
"""

from __future__ import annotations

from typing import ClassVar


class CreditScorerError(Exception):
    """Base class for errors a user can act on: refused, nothing was changed (exit 2, HTTP 422)."""

    exit_code: ClassVar[int] = 2
    http_status: ClassVar[int] = 422


class ConfigError(CreditScorerError, ValueError):
    """A configuration or spec file is missing, unreadable or invalid."""


class DataValidationError(CreditScorerError, ValueError):
    """The dataset does not meet its spec; the message names columns and rows."""


class DatasetIntegrityError(CreditScorerError, ValueError):
    """The dataset's sha256 differs from the one its spec declares."""


class RiskInputError(CreditScorerError, KeyError):
    """A risk hazard refers to a measurement that the run did not produce."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class NotFound(CreditScorerError, KeyError):
    """A run, release or record that was asked for does not exist (HTTP 404)."""

    http_status: ClassVar[int] = 404

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class Conflict(CreditScorerError):
    """The request contradicts what is already recorded: decided, live, not waiting (HTTP 409)."""

    http_status: ClassVar[int] = 409


class Forbidden(CreditScorerError, PermissionError):
    """The person may not do this in the role they act in (HTTP 403)."""

    http_status: ClassVar[int] = 403


class OperationFailed(CreditScorerError, RuntimeError):
    """Something that was started did not finish: a run, a deployment (exit 1, HTTP 502)."""

    exit_code: ClassVar[int] = 1
    http_status: ClassVar[int] = 502


class IntegrationError(CreditScorerError, OSError):
    """An external service (Jira, Slack, Modal) refused or could not be reached: nothing recorded (HTTP 502)."""

    http_status: ClassVar[int] = 502
