"""Start a training run and read a run's results back from ZenML."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from zenml.client import Client
from zenml.enums import ExecutionStatus

from credit_scorer.checks import ThresholdChecks
from credit_scorer.config import DatasetSpec, PolicyConfig, TrainingConfig
from credit_scorer.data import DataQualityReport, DatasetInfo, SplitSizes
from credit_scorer.evaluate import Evaluation
from credit_scorer.fairness import FairnessReport
from credit_scorer.pipelines.training import training_pipeline
from credit_scorer.risk import RiskAssessment, RiskRegister
from credit_scorer.train import TrainedModel


class RunResult(BaseModel):
    """What a finished training run produced, loaded from its ZenML artifacts."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    run_name: str
    status: str
    dataset: DatasetInfo
    data_quality: DataQualityReport
    split_sizes: SplitSizes
    model_sha256: str
    decision_threshold: float
    threshold_rule: str
    evaluation: Evaluation
    fairness: FairnessReport
    risk: RiskAssessment
    checks: ThresholdChecks


class PipelineRunFailed(RuntimeError):
    """The run failed; ``cause`` is the step's own error message when known."""

    def __init__(self, run_id: str | None, step: str | None, cause: str) -> None:
        self.run_id = run_id
        self.step = step
        self.cause = cause
        where = f" in step {step}" if step else ""
        super().__init__(f"run {run_id or '(not started)'} failed{where}: {cause}")


def _output(run: Any, step_name: str, output: str) -> Any:
    return run.steps[step_name].outputs[output][0].load()


def load_run_result(run_id: str | UUID) -> RunResult:
    """Load every gate input of a finished run from ZenML's artifact store."""
    run = Client().get_pipeline_run(str(run_id))
    model: TrainedModel = _output(run, "train_model", "model")
    return RunResult(
        run_id=str(run.id),
        run_name=run.name,
        status=str(run.status.value),
        dataset=_output(run, "load_data", "dataset_info"),
        data_quality=_output(run, "validate_data", "data_quality"),
        split_sizes=_output(run, "split_data", "split_sizes"),
        model_sha256=model.sha256,
        decision_threshold=model.decision_threshold,
        threshold_rule=model.threshold_rule_description,
        evaluation=_output(run, "evaluate_model", "evaluation"),
        fairness=_output(run, "assess_fairness", "fairness"),
        risk=_output(run, "risk_assessment", "risk"),
        checks=_output(run, "check_thresholds", "threshold_checks"),
    )


def _failed_step(run_id: UUID) -> tuple[str | None, str | None]:
    """Name of the failed step of a run and the last line of its exception, if recorded."""
    run = Client().get_pipeline_run(run_id)
    for name, step_run in run.steps.items():
        if step_run.status == ExecutionStatus.FAILED:
            info = getattr(step_run, "exception_info", None)
            message = getattr(info, "message", None) if info else None
            return name, message
    return None, None


def latest_run_id() -> UUID | None:
    """ID of the newest training run, if any."""
    runs = Client().list_pipeline_runs(pipeline_name=training_pipeline.name, sort_by="desc:created", size=1)
    return runs.items[0].id if runs.items else None


def run_training(
    spec: DatasetSpec, policy: PolicyConfig, training: TrainingConfig, register: RiskRegister
) -> RunResult:
    """Run ``training_pipeline`` to completion and return its results.

    Raises :class:`PipelineRunFailed` naming the failed step and its error.
    """
    before = latest_run_id()
    try:
        run = training_pipeline(spec=spec, policy=policy, training=training, risk_register=register)
    except Exception as exc:
        run_id = latest_run_id()
        if run_id is None or run_id == before:
            raise PipelineRunFailed(None, None, str(exc)) from exc
        step_name, message = _failed_step(run_id)
        raise PipelineRunFailed(str(run_id), step_name, message or str(exc)) from exc
    return load_run_result(run.id)


def recent_runs(limit: int) -> list[tuple[str, str, str]]:
    """``(run id, created UTC, status)`` of the newest training runs."""
    runs = Client().list_pipeline_runs(
        pipeline_name=training_pipeline.name, sort_by="desc:created", size=limit
    )
    return [(str(r.id), r.created.strftime("%Y-%m-%d %H:%M:%S"), str(r.status.value)) for r in runs.items]
