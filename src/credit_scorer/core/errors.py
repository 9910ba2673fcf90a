"""Exceptions raised by credit-scorer; each names the thing to fix."""

from __future__ import annotations


class CreditScorerError(Exception):
    """Base class for errors a user can act on."""


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
