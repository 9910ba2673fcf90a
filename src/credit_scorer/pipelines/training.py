"""The ``training_pipeline``: a ZenML dynamic pipeline from data to the release gate's inputs.

Order (SOP §1 and the design's data flow)::

    load_data → validate_data → open_release_ticket → split_data → train_model
      → evaluate_model → assess_fairness → risk_assessment → check_thresholds
      → generate_annex_iv (HTML + PDF, model card, SBOM) → prepare_gate
      → [zenml.wait when no one can answer now] → approve_deployment
      → deploy_model (model stored, endpoint live, approval record, release log, ticket)

The ticket opens once the data has passed validation, so a run stopped by bad data
leaves nothing but its failed status. A reject or refusal raises ``RuntimeError`` in
``approve_deployment``: nothing is deployed, and the decision is recorded.

Progress is reported through the ``credit_scorer.progress`` logger, one record when
each step starts and one when it ends, so the CLI can show it without knowing ZenML.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from zenml import Model, pipeline, wait

from credit_scorer.core import constants
from credit_scorer.domain.config import DatasetSpec, PolicyConfig, TrainingConfig
from credit_scorer.domain.risk import RiskRegister
from credit_scorer.pipelines import steps
from credit_scorer.release.gate import WAIT_CONDITION, GateDecision
from credit_scorer.release.settings import ReleaseSettings

progress = logging.getLogger("credit_scorer.progress")

MODEL_NAME = "credit-scorer"

STEP_NAMES = (
    "load_data",
    "validate_data",
    "open_release_ticket",
    "split_data",
    "train_model",
    "evaluate_model",
    "assess_fairness",
    "risk_assessment",
    "check_thresholds",
    "generate_annex_iv",
    "prepare_gate",
    "approve_deployment",
    "deploy_model",
)
WAIT_POLL_SECONDS = 1


@contextmanager
def reporting(step_name: str) -> Iterator[None]:
    """Emit start and end progress records around one step."""
    progress.info("started", extra={"step": step_name, "event": "started"})
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        progress.info("failed", extra={"step": step_name, "event": "failed", "seconds": time.perf_counter() - start})
        raise
    progress.info("finished", extra={"step": step_name, "event": "finished", "seconds": time.perf_counter() - start})


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
    release: ReleaseSettings,
) -> None:
    """Train, evaluate, check fairness, assess risk, then take the model through the release gate."""
    with reporting("load_data"):
        info = steps.load_data(spec)
    with reporting("validate_data"):
        clean, quality = steps.validate_data(spec, info, training, policy.sample)
    with reporting("open_release_ticket"):
        release_id, thresholds_version = steps.open_release_ticket(release, info, policy)
    with reporting("split_data"):
        train_split, valid_split, test_split, sizes = steps.split_data(clean, spec, training)
    with reporting("train_model"):
        model = steps.train_model(train_split, valid_split, spec, training)
    with reporting("evaluate_model"):
        evaluation = steps.evaluate_model(model, test_split, spec)
    with reporting("assess_fairness"):
        fairness = steps.assess_fairness(model, test_split, spec, policy.fairness)
    with reporting("risk_assessment"):
        risk = steps.risk_assessment(evaluation, fairness, quality, model, policy.thresholds, risk_register)
    with reporting("check_thresholds"):
        checks = steps.check_thresholds(evaluation, fairness, risk, policy.thresholds, policy.baseline)
    with reporting("generate_annex_iv"):
        annex_iv = steps.generate_annex_iv(
            release,
            release_id,
            spec,
            training,
            info,
            quality,
            sizes,
            model,
            test_split,
            evaluation,
            fairness,
            risk,
            checks,
        )
    with reporting("prepare_gate"):
        candidate, channel = steps.prepare_gate(
            release, release_id, info, model, evaluation, fairness, risk, checks, annex_iv, thresholds_version
        )
    external: GateDecision | None = None
    if channel.load() == "wait":
        gate_inputs = candidate.load()
        progress.info(
            "waiting",
            extra={"step": "release_gate", "event": "waiting", "release_id": gate_inputs.release_id},
        )
        external = wait(
            schema=GateDecision,
            name=WAIT_CONDITION,
            timeout=release.wait_timeout_seconds,
            poll_interval=WAIT_POLL_SECONDS,
            question=f"Approve release {gate_inputs.release_id} for deployment?",
            metadata={
                "release_id": gate_inputs.release_id,
                "submitter": gate_inputs.submitter,
                "threshold_checks": {c.name: c.passed for c in gate_inputs.checks.all_checks},
            },
        )
    with reporting("approve_deployment"):
        decision = steps.approve_deployment(release, candidate, channel, external)
    with reporting("deploy_model"):
        steps.deploy_model(release, candidate, decision, model)
