"""Preprocess, train LightGBM, and choose the decision threshold on the validation split.

The test split never enters this module: early stopping and the threshold both use
validation data only, so the test metrics reported later are an honest estimate.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from credit_scorer.domain.config import DatasetSpec, TrainingConfig
from credit_scorer.domain.contract import InputContract
from credit_scorer.domain.data import default_labels
from credit_scorer.domain.model import TrainedModel, model_matrix, request_fields

THRESHOLD_GRID = np.round(np.arange(0.02, 0.981, 0.005), 3)
"""Candidate decision thresholds (probability of default at or above which we decline)."""


def choose_threshold(default_proba: np.ndarray, defaulted: np.ndarray, config: TrainingConfig) -> tuple[float, str]:
    """Pick the decision threshold on validation data by the configured rule.

    ``expected_cost``: minimise ``cost_ratio × (defaulters approved) + (repayers declined)``;
    with ``cost_ratio = 1`` this maximises accuracy.
    ``approval_rate``: the lowest threshold whose approval rate reaches ``target_approval_rate``.
    """
    if config.threshold_rule == "approval_rate":
        approval = np.array([(default_proba < t).mean() for t in THRESHOLD_GRID])
        reaching = np.flatnonzero(approval >= config.target_approval_rate)
        threshold = float(THRESHOLD_GRID[reaching[0]] if reaching.size else THRESHOLD_GRID[-1])
        text = f"lowest threshold whose validation approval rate reaches {config.target_approval_rate:.0%}"
        return threshold, text
    declines = default_proba[None, :] >= THRESHOLD_GRID[:, None]
    missed_defaults = ((~declines) & (defaulted[None, :] == 1)).sum(axis=1)
    lost_repayers = (declines & (defaulted[None, :] == 0)).sum(axis=1)
    cost = config.cost_ratio * missed_defaults + lost_repayers
    threshold = float(THRESHOLD_GRID[int(np.argmin(cost))])
    text = (
        f"minimises expected cost on the validation split, where approving an applicant who "
        f"defaults costs {config.cost_ratio:g}× declining one who repays"
    )
    return threshold, text


def lightgbm_params(config: TrainingConfig) -> dict[str, Any]:
    """LightGBM parameters derived from the training config."""
    return {
        "objective": "binary",
        "metric": "auc",
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_child_samples": config.min_child_samples,
        "bagging_fraction": config.subsample,
        "bagging_freq": 1,
        "feature_fraction": config.colsample_bytree,
        "lambda_l2": config.reg_lambda,
        "seed": config.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 2,
        "verbosity": -1,
    }


def train_model(
    train: pd.DataFrame, validation: pd.DataFrame, spec: DatasetSpec, config: TrainingConfig
) -> TrainedModel:
    """Fit LightGBM on ``train``; early-stop and choose the threshold on ``validation``."""
    inputs = spec.model_inputs
    derived = list(spec.derived_features)
    names = spec.model_features
    x_train = model_matrix(train, inputs, derived)
    x_valid = model_matrix(validation, inputs, derived)
    y_train = default_labels(train, spec)
    y_valid = default_labels(validation, spec)
    if config.shuffle_labels:
        y_train = np.random.default_rng(config.seed).permutation(y_train)

    params = lightgbm_params(config)
    train_set = lgb.Dataset(x_train, label=y_train, feature_name=names, free_raw_data=True)
    valid_set = lgb.Dataset(x_valid, label=y_valid, reference=train_set)
    callbacks: list[Any] = []
    if config.early_stopping_rounds and config.n_estimators > 1:
        callbacks.append(lgb.early_stopping(config.early_stopping_rounds, verbose=False))
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=config.n_estimators,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=callbacks,
    )
    best = booster.best_iteration or config.n_estimators
    p_valid = np.asarray(booster.predict(x_valid, num_iteration=best))
    p_train = np.asarray(booster.predict(x_train, num_iteration=best))
    threshold, rule_text = choose_threshold(p_valid, y_valid, config)

    return TrainedModel(
        booster=booster.model_to_string(num_iteration=best),
        input_columns=inputs,
        derived_features=derived,
        feature_names=names,
        decision_threshold=threshold,
        threshold_rule=config.threshold_rule,
        threshold_rule_description=rule_text,
        params={**params, "num_boost_round": config.n_estimators},
        best_iteration=int(best),
        train_auc=float(roc_auc_score(y_train, p_train)),
        validation_auc=float(roc_auc_score(y_valid, p_valid)),
        input_contract=InputContract.from_spec(spec, request_fields(inputs, derived)),
    )
