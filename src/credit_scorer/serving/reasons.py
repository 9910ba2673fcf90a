"""Reason codes for declines: per-feature contributions (LightGBM ``pred_contrib``) mapped to plain words.

The versioned table lives in ``conf/reason_codes.yaml`` (``CREDIT_SCORER_REASON_CODES``
or ``--reason-codes``); a copy ships with the package. For a declined applicant the
features with the largest positive contributions to the log-odds of default are
reported, at most :data:`MAX_REASONS`, each with its code and reason. Only features the
served model uses can be reported, and every one of them needs an entry: a table that
misses one stops the service at start-up, naming the features.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from credit_scorer.core.errors import ConfigError
from credit_scorer.core.settings import REASON_CODES_ENV, current_settings
from credit_scorer.domain.config import read_yaml

if TYPE_CHECKING:
    import lightgbm as lgb

MAX_REASONS = 4
PACKAGED_TABLE = Path(__file__).resolve().parents[1] / "resources" / "reason_codes.yaml"


class ReasonEntry(BaseModel):
    """One feature's code and plain-language reason."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    reason: str


class ReasonTable(BaseModel):
    """The versioned reason-code table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    reasons: dict[str, ReasonEntry]


def reason_table_path(given: Path | None = None) -> Path:
    """The option, else ``$CREDIT_SCORER_REASON_CODES``, else ``conf/reason_codes.yaml``, else the packaged copy."""
    if given is not None:
        return given
    configured = current_settings().reason_codes
    if configured:
        return Path(configured)
    local = Path("conf/reason_codes.yaml")
    return local if local.exists() else PACKAGED_TABLE


def load_reason_table(path: Path) -> ReasonTable:
    """Read the table; a missing or malformed file is a :class:`ConfigError` naming it."""
    if not path.exists():
        raise ConfigError(f"reason-code table {path} not found; pass --reason-codes FILE or set {REASON_CODES_ENV}")
    try:
        return ReasonTable.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(f"{path} is not a valid reason-code table: {exc}") from exc


class ReasonCoder:
    """Turns contributions of declined rows into reason codes, for one model's features."""

    def __init__(self, table: ReasonTable, feature_names: list[str], source: Path | None = None) -> None:
        missing = [f for f in feature_names if f not in table.reasons]
        if missing:
            where = f" ({source})" if source else ""
            raise ConfigError(
                f"reason-code table{where} version {table.version} has no entry for model feature(s) "
                f"{', '.join(missing)}; add them so every decline can be explained"
            )
        self.version = table.version
        self.entries = [table.reasons[f] for f in feature_names]
        self.feature_names = list(feature_names)

    def reasons(self, booster: lgb.Booster, matrix: np.ndarray, threads: int = 1) -> list[list[dict[str, object]]]:
        """Up to :data:`MAX_REASONS` reasons for each row of ``matrix``, largest contribution first."""
        return self.explain(np.asarray(booster.predict(matrix, pred_contrib=True, num_threads=threads)))

    def explain(self, contributions: np.ndarray) -> list[list[dict[str, object]]]:
        """Reasons from ``pred_contrib`` output (n × (features + 1); the last column, the bias, is ignored)."""
        contributions = np.atleast_2d(contributions)[:, : len(self.entries)]
        order = np.argsort(-contributions, axis=1)[:, :MAX_REASONS]
        result = []
        for row, top in zip(contributions, order, strict=True):
            reasons = []
            for j in top:
                if row[j] <= 0:
                    break
                entry = self.entries[j]
                reasons.append(
                    {
                        "code": entry.code,
                        "reason": entry.reason,
                        "feature": self.feature_names[j],
                        "contribution": round(float(row[j]), 6),
                    }
                )
            result.append(reasons)
        return result
