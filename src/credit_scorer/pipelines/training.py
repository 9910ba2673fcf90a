"""The ``training_pipeline``: a ZenML dynamic pipeline from data to the release gate's inputs.

Order (SOP §1 step 1 and the design's data flow)::

    load_data → validate_data → split_data → train_model → evaluate_model
      → assess_fairness → risk_assessment → check_thresholds
      → (next: generate_annex_iv → approve_deployment → deploy_model → record_release)

Progress is reported through the ``credit_scorer.progress`` logger, one record when
each step starts and one when it ends, so the CLI can show it without knowing ZenML.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from zenml import Model, pipeline

from credit_scorer import constants
from credit_scorer.config import DatasetSpec, PolicyConfig, TrainingConfig
from credit_scorer.pipelines import steps
from credit_scorer.risk import RiskRegister

progress = logging.getLogger("credit_scorer.progress")

MODEL_NAME = "credit-scorer"

STEP_NAMES = (
    "load_data",
    "validate_data",
    "split_data",
    "train_model",
    "evaluate_model",
    "assess_fairness",
    "risk_assessment",
    "check_thresholds",
)


@contextmanager
def reporting(step_name: str) -> Iterator[None]:
    """Emit start and end progress records around one step."""
    progress.info("started", extra={"step": step_name, "event": "started"})
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        progress.info(
            "failed", extra={"step": step_name, "event": "failed", "seconds": time.perf_counter() - start}
        )
        raise
    progress.info(
        "finished", extra={"step": step_name, "event": "finished", "seconds": time.perf_counter() - start}
    )


@pipeline(
    name=constants.PIPELINE_NAME,
    dynamic=True,
    enable_cache=False,
    model=Model(
        name=MODEL_NAME,
        description="Probability-of-default model for consumer credit (EU AI Act Annex III 5(b)).",
        license="Apache-2.0",
    ),
)
def training_pipeline(
    spec: DatasetSpec,
    policy: PolicyConfig,
    training: TrainingConfig,
    risk_register: RiskRegister,
) -> None:
    """Train, evaluate, check fairness, assess risk and compute the four threshold checks."""
    with reporting("load_data"):
        info = steps.load_data(spec)
    with reporting("validate_data"):
        clean, quality = steps.validate_data(spec, info)
    with reporting("split_data"):
        train_split, valid_split, test_split, _sizes = steps.split_data(clean, spec, training)
    with reporting("train_model"):
        model = steps.train_model(train_split, valid_split, spec, training)
    with reporting("evaluate_model"):
        evaluation = steps.evaluate_model(model, test_split, spec)
    with reporting("assess_fairness"):
        fairness = steps.assess_fairness(model, test_split, spec, policy.fairness)
    with reporting("risk_assessment"):
        risk = steps.risk_assessment(evaluation, fairness, quality, model, policy.thresholds, risk_register)
    with reporting("check_thresholds"):
        steps.check_thresholds(evaluation, fairness, risk, policy.thresholds)
