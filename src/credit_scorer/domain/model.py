"""The trained model as it is stored, hashed and served: booster, inputs, derived features, threshold.

Kept apart from :mod:`credit_scorer.domain.train` so that the scoring service can load and run a model with
LightGBM, numpy and pydantic alone, without importing the training stack (pandas, scikit-learn, SciPy):
about 2 s less start-up for every deployment.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from credit_scorer.domain.config import RatioFeature
from credit_scorer.domain.contract import InputContract

if TYPE_CHECKING:
    import lightgbm as lgb
    import pandas as pd


class TrainedModel(BaseModel):
    """Everything needed to score an applicant: booster, inputs, derived features, threshold.

    Saved as one JSON document; its sha256 (:attr:`sha256`) identifies the model version.
    """

    model_config = ConfigDict(frozen=True)

    booster: str
    input_columns: list[str]
    derived_features: list[RatioFeature]
    feature_names: list[str]
    decision_threshold: float
    threshold_rule: str
    threshold_rule_description: str
    params: dict[str, Any]
    best_iteration: int
    train_auc: float
    validation_auc: float
    input_contract: InputContract | None = None
    """Valid request fields and values, from the dataset spec (None in model files saved before it existed)."""

    @property
    def request_fields(self) -> list[str]:
        """Fields a scoring request carries: the input columns, then any other ratio operand."""
        return request_fields(self.input_columns, self.derived_features)

    def to_bytes(self) -> bytes:
        """Canonical serialisation: the bytes stored and hashed."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()

    @property
    def sha256(self) -> str:
        """Content hash that identifies this model version."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @cached_property
    def _booster(self) -> lgb.Booster:
        import lightgbm as lgb  # ~2 s (it imports scikit-learn and SciPy): only when a model is scored

        return lgb.Booster(model_str=self.booster)

    def predict_default_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability of default for each row of ``frame``."""
        return np.asarray(self._booster.predict(model_matrix(frame, self.input_columns, self.derived_features)))

    def declines(self, proba: np.ndarray) -> np.ndarray:
        """1 where the decision is decline (predicted default), else 0."""
        return (proba >= self.decision_threshold).astype(np.int8)


def request_fields(input_columns: list[str], derived: list[RatioFeature]) -> list[str]:
    """The input columns, then each ratio operand that is not an input."""
    fields = list(input_columns)
    for feature in derived:
        fields += [c for c in (feature.numerator, feature.denominator) if c not in fields]
    return fields


def model_matrix(frame: pd.DataFrame, input_columns: list[str], derived: list[RatioFeature]) -> np.ndarray:
    """Feature matrix: the input columns, then each ratio ``num / max(den, 1)``."""
    base = frame[input_columns].to_numpy(dtype=np.float64)
    if not derived:
        return base
    extra = np.empty((len(frame), len(derived)), dtype=np.float64)
    for j, feat in enumerate(derived):
        num = frame[feat.numerator].to_numpy(dtype=np.float64)
        den = frame[feat.denominator].to_numpy(dtype=np.float64)
        extra[:, j] = num / np.maximum(den, 1.0)
    return np.hstack([base, extra])
