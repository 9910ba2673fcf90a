"""A release's model file, read and checked once: the model, its sha256, the booster and the input contract."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
from pydantic import ValidationError

from credit_scorer.core.errors import CreditScorerError
from credit_scorer.domain.contract import FieldRule, InputContract
from credit_scorer.domain.model import TrainedModel
from credit_scorer.serving.reasons import ReasonCoder


class ModelLoadError(CreditScorerError, RuntimeError):
    """The model file is missing or is not a model saved by ``TrainedModel.to_bytes()``."""


@dataclass(frozen=True)
class LoadedModel:
    """A model file read and checked once: the model, its file sha256, booster and input contract."""

    path: Path
    model: TrainedModel
    sha256: str
    booster: lgb.Booster
    contract: InputContract
    numerator_index: np.ndarray
    denominator_index: np.ndarray

    @property
    def request_fields(self) -> tuple[str, ...]:
        """Fields a request carries, in the order of the model matrix's inputs."""
        return tuple(self.contract.names)

    def matrix(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The model matrix of n×k request values: inputs, then each ratio ``num / max(den, 1)`` (into ``out``)."""
        n_inputs = len(self.model.input_columns)
        if out is None:
            out = np.empty((values.shape[0], n_inputs + len(self.numerator_index)), dtype=np.float64)
        out[:, :n_inputs] = values[:, :n_inputs]
        out[:, n_inputs:] = values[:, self.numerator_index] / np.maximum(values[:, self.denominator_index], 1.0)
        return out


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
    fields = model.request_fields
    contract = model.input_contract or InputContract(fields=[FieldRule(name=f, type="float") for f in fields])
    if contract.names != fields:
        raise ModelLoadError(
            f"model file {path} is inconsistent: its input contract lists {contract.names}, "
            f"the model needs {fields}; re-train and re-save the model"
        )
    return LoadedModel(
        path=path,
        model=model,
        sha256=hashlib.sha256(raw).hexdigest(),
        booster=booster,
        contract=contract,
        numerator_index=np.array([fields.index(f.numerator) for f in model.derived_features], dtype=np.intp),
        denominator_index=np.array([fields.index(f.denominator) for f in model.derived_features], dtype=np.intp),
    )


def self_test(loaded: LoadedModel, coder: ReasonCoder) -> float:
    """Score a valid sample applicant end to end (not logged); ModelLoadError when anything fails."""
    matrix = loaded.matrix(loaded.contract.sample_row().reshape(1, -1))
    try:
        proba = float(np.asarray(loaded.booster.predict(matrix))[0])
        coder.reasons(loaded.booster, matrix)
    except Exception as exc:  # LightGBM's own error types
        raise ModelLoadError(f"model file {loaded.path} cannot score a sample applicant: {exc}") from exc
    if not 0.0 <= proba <= 1.0:
        raise ModelLoadError(f"model file {loaded.path} scored a sample applicant {proba}, not a probability")
    return proba


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "document"
    return f"{where}: {err['msg']}"
