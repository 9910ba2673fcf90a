"""Start a training run and read a run's results back from ZenML."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from zenml.client import Client
from zenml.enums import ExecutionStatus

from credit_scorer.core import constants
from credit_scorer.core.errors import Conflict, NotFound, OperationFailed
from credit_scorer.documents.inputs import AnnexIvInputs, ProviderFacts
from credit_scorer.domain.checks import ThresholdChecks
from credit_scorer.domain.config import DatasetSpec, PolicyConfig, TrainingConfig
from credit_scorer.domain.data import DataQualityReport, DatasetInfo, SplitSizes
from credit_scorer.domain.evaluate import Evaluation
from credit_scorer.domain.fairness import FairnessReport
from credit_scorer.domain.model import TrainedModel
from credit_scorer.domain.risk import RiskAssessment, RiskRegister
from credit_scorer.pipelines.zenml_state import ensure_zenml_store
from credit_scorer.records.models import ApprovalRecord
from credit_scorer.release.gate import TERMINAL_METADATA, WAIT_CONDITION, GateDecision
from credit_scorer.release.settings import ReleaseSettings
from credit_scorer.release.workflow import ReleaseCandidate


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
    release_id: str | None = None
    approval: ApprovalRecord | None = None
    deployment_url: str | None = None


class PipelineRunFailed(OperationFailed):
    """The run failed; ``cause`` is the step's own error message when known."""

    def __init__(self, run_id: str | None, step: str | None, cause: str) -> None:
        self.run_id = run_id
        self.step = step
        self.cause = cause
        where = f" in step {step}" if step else ""
        super().__init__(f"run {run_id or '(not started)'} failed{where}: {cause}")


def _output(run: Any, step_name: str, output: str) -> Any:
    return run.steps[step_name].outputs[output][0].load()


def _optional_output(run: Any, step_name: str, output: str) -> Any:
    step_run = run.steps.get(step_name)
    if step_run is None or output not in step_run.outputs:
        return None
    return step_run.outputs[output][0].load()


def load_run_result(run_id: str | UUID) -> RunResult:
    """Load every gate input of a finished run from ZenML's artifact store."""
    run = Client().get_pipeline_run(str(run_id))
    model: TrainedModel = _output(run, "train_model", "model")
    approval: ApprovalRecord | None = _optional_output(run, "deploy_model", "approval_record")
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
        release_id=_optional_output(run, "open_release_ticket", "release_id"),
        approval=approval,
        deployment_url=approval.deployment_url if approval else None,
    )


def _step_error(step_run: Any) -> str | None:
    """The last line of a failed step's exception, if ZenML recorded it."""
    info = getattr(step_run, "exception_info", None)
    message = getattr(info, "message", None) if info else None
    return str(message) if message else None


def _failed_step(run_id: UUID) -> tuple[str | None, str | None]:
    """Name of the failed step of a run and the last line of its exception, if recorded."""
    run = Client().get_pipeline_run(run_id)
    for name, step_run in run.steps.items():
        if step_run.status == ExecutionStatus.FAILED:
            return name, _step_error(step_run)
    return None, None


def latest_run_id() -> UUID | None:
    """ID of the newest training run, if any."""
    runs = Client().list_pipeline_runs(pipeline_name=constants.PIPELINE_NAME, sort_by="desc:created", size=1)
    return runs.items[0].id if runs.items else None


def run_training(
    spec: DatasetSpec,
    policy: PolicyConfig,
    training: TrainingConfig,
    register: RiskRegister,
    release: ReleaseSettings,
) -> RunResult:
    """Run ``training_pipeline`` to completion and return its results.

    Raises :class:`PipelineRunFailed` naming the failed step and its error.
    """
    from credit_scorer.pipelines.training import training_pipeline  # the steps import the ML stack: only to run

    ensure_zenml_store()
    before = latest_run_id()
    try:
        run = training_pipeline(spec=spec, policy=policy, training=training, risk_register=register, release=release)
    except Exception as exc:
        run_id = latest_run_id()
        if run_id is None or run_id == before:
            raise PipelineRunFailed(None, None, str(exc)) from exc
        step_name, message = _failed_step(run_id)
        raise PipelineRunFailed(str(run_id), step_name, message or str(exc)) from exc
    return load_run_result(run.id)


def recent_runs(limit: int) -> list[tuple[str, str, str]]:
    """``(run id, created UTC, status)`` of the newest training runs."""
    runs = Client().list_pipeline_runs(pipeline_name=constants.PIPELINE_NAME, sort_by="desc:created", size=limit)
    return [(str(r.id), r.created.strftime("%Y-%m-%d %H:%M:%S"), str(r.status.value)) for r in runs.items]


class PendingRelease(BaseModel):
    """A run waiting at the release gate: paused for ``approve``/the console, or asking at a terminal."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    created: str
    candidate: ReleaseCandidate
    condition_id: str | None = None  # None: asking at a terminal (``terminal`` says which)
    terminal: str | None = None  # "pid 1234 on host" of the process asking

    @property
    def channel(self) -> str:
        """Where the decision is awaited: ``approve``/console (paused) or a terminal."""
        return f"terminal ({self.terminal})" if self.terminal else "paused: approve or console"


def release_candidate(run_id: str | UUID) -> ReleaseCandidate:
    """The gate inputs of a run that reached the gate."""
    run = Client().get_pipeline_run(str(run_id))
    candidate = _optional_output(run, "prepare_gate", "release_candidate")
    if candidate is None:
        raise NotFound(f"run {run_id} has not reached the release gate")
    return candidate  # type: ignore[no-any-return]


def pending_releases() -> list[PendingRelease]:
    """Runs paused at the release gate, oldest first."""
    client = Client()
    found: list[PendingRelease] = []
    conditions = client.list_run_wait_conditions(
        name=WAIT_CONDITION, status="pending", sort_by="asc:created", size=100, hydrate=True
    )
    for condition in conditions.items:
        run = client.get_pipeline_run(condition.run.id)
        if run.status != ExecutionStatus.PAUSED:
            continue
        found.append(_pending(run, condition_id=str(condition.id)))
    return sorted(found + _asking_at_terminals(client), key=lambda p: p.created)


def _asking_at_terminals(client: Client) -> list[PendingRelease]:
    """Running runs whose ``approve_deployment`` step is asking at a terminal whose process is still alive."""
    found: list[PendingRelease] = []
    runs = client.list_pipeline_runs(
        pipeline_name=constants.PIPELINE_NAME, status=ExecutionStatus.RUNNING, sort_by="asc:created", size=100
    )
    for item in runs.items:
        run = client.get_pipeline_run(item.id)
        asking = run.run_metadata.get(TERMINAL_METADATA)
        step = run.steps.get("approve_deployment")
        if not isinstance(asking, dict) or step is None or step.status != ExecutionStatus.RUNNING:
            continue
        if not _process_alive(asking):
            continue
        found.append(_pending(run, terminal=f"pid {asking.get('pid')} on {asking.get('host')}"))
    return found


def _pending(run: Any, *, condition_id: str | None = None, terminal: str | None = None) -> PendingRelease:
    """A run waiting at the gate, with its gate inputs; ``condition_id`` (paused) or ``terminal`` (asking)."""
    return PendingRelease(
        run_id=str(run.id),
        created=run.created.strftime("%Y-%m-%d %H:%M:%S"),
        candidate=release_candidate(run.id),
        condition_id=condition_id,
        terminal=terminal,
    )


def _process_alive(asking: dict[str, Any]) -> bool:
    """Whether the asking process still runs (on this host we can tell; elsewhere assume so).

    A process with that pid started after the run began asking (``since``) is another one: the pid was reused.
    """
    pid = asking.get("pid")
    if asking.get("host") != socket.gethostname():
        return True
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = _process_started(pid)
    since = str(asking.get("since", ""))
    return started is None or not since or started <= since


def _process_started(pid: int) -> str | None:
    """When process ``pid`` started, as UTC ``YYYY-MM-DDTHH:MM:SSZ`` (Linux /proc; None elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text(encoding="ascii").splitlines()
            if line.startswith("btime ")
        )
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime, counted after "(comm)"
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    started = boot + ticks // os.sysconf("SC_CLK_TCK") - 60  # a minute's grace for clock steps since boot
    return datetime.fromtimestamp(started, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NotWaiting(Conflict):
    """The run is not paused at the release gate."""


class GateState(BaseModel):
    """Where a run stands at the release gate."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    run_status: str
    condition_id: str | None = None
    condition_status: str | None = None
    submitted: GateDecision | None = None  # the decision a resolved condition carries

    @property
    def waiting(self) -> bool:
        """Paused with an unresolved gate condition: a decision can be submitted."""
        return self.run_status == ExecutionStatus.PAUSED.value and self.condition_status == "pending"


def gate_state(run_id: str | UUID) -> GateState:
    """The run's status and its newest release-gate wait condition."""
    client = Client()
    run = client.get_pipeline_run(str(run_id))
    conditions = client.list_run_wait_conditions(
        pipeline_run=run.id, name=WAIT_CONDITION, sort_by="desc:created", size=1, hydrate=True
    )
    if not conditions.items:
        return GateState(run_id=str(run.id), run_status=str(run.status.value))
    condition = conditions.items[0]
    submitted = None
    if condition.result:
        try:
            submitted = GateDecision.model_validate(condition.result)
        except ValueError:
            submitted = None
    return GateState(
        run_id=str(run.id),
        run_status=str(run.status.value),
        condition_id=str(condition.id),
        condition_status=str(condition.status.value),
        submitted=submitted,
    )


def resolve_gate(run_id: str | UUID, decision: GateDecision, condition_id: str | None = None) -> None:
    """Resolve the run's pending gate condition with a decision (does not resume the run).

    ``condition_id``, when given, must be the pending condition (a page shown for an
    earlier wait is stale). Raises :class:`NotWaiting` otherwise.
    """
    state = gate_state(run_id)
    if state.condition_status != "pending":
        if state.submitted is not None:
            raise NotWaiting(
                f"a decision was already submitted for run {state.run_id} by {state.submitted.approver} at "
                f"{state.submitted.decided_at}; one decision per release"
            )
        raise NotWaiting(f"run {state.run_id} is {state.run_status}, not waiting at the release gate")
    if condition_id is not None and condition_id != state.condition_id:
        raise NotWaiting(f"run {state.run_id} is waiting on another gate condition; reload the page")
    if state.run_status != ExecutionStatus.PAUSED.value:
        raise NotWaiting(f"run {state.run_id} is {state.run_status}; it is still polling, try again in a few seconds")
    Client().resolve_run_wait_condition(UUID(state.condition_id), result=decision.model_dump(mode="json"))


def resolve_and_resume(run_id: str | UUID, decision: GateDecision) -> RunResult:
    """Resolve the run's gate wait condition with a decision and resume the run to its end.

    Raises :class:`NotWaiting` when the run is not paused at the gate, and
    :class:`PipelineRunFailed` when the resumed run stops (e.g. a rejection).
    """
    state = gate_state(run_id)
    try:
        resolve_gate(run_id, decision)
    except NotWaiting as exc:
        if state.submitted is not None and state.run_status == ExecutionStatus.PAUSED.value:
            raise NotWaiting(
                f"{exc}; if its resume was interrupted, run `credit-scorer resume {state.run_id}`"
            ) from None
        raise
    return resume(UUID(state.run_id))


class StepProgress(BaseModel):
    """One step of a run and its status."""

    model_config = ConfigDict(frozen=True)

    name: str
    status: str
    seconds: float | None = None
    error: str | None = None  # a failed step's own error message, when ZenML recorded it


def run_progress(run_id: str | UUID) -> tuple[str, list[StepProgress]]:
    """A run's status and its steps in the order they started."""
    run = Client().get_pipeline_run(str(run_id))
    steps = sorted(run.steps.values(), key=lambda s: (s.start_time is None, s.start_time or s.created))
    return str(run.status.value), [
        StepProgress(
            name=s.name,
            status=str(s.status.value),
            seconds=(s.end_time - s.start_time).total_seconds() if s.start_time and s.end_time else None,
            error=_step_error(s) if s.status == ExecutionStatus.FAILED else None,
        )
        for s in steps
    ]


def resume(run_id: UUID) -> RunResult:
    """Resume a paused run in this process (``zenml pipeline runs resume`` semantics)."""
    from zenml.cli import utils as cli_utils
    from zenml.models import PipelineRunUpdate

    client = Client()
    run = client.get_pipeline_run(run_id, hydrate=True)
    snapshot = run.snapshot
    if snapshot is None or snapshot.stack is None:
        raise NotWaiting(f"run {run_id} cannot be resumed: its snapshot or stack is missing")
    client.zen_store.update_run(
        run_id=run.id,
        run_update=PipelineRunUpdate(status=ExecutionStatus.RESUMING, status_reason="decision recorded at the gate"),
    )
    try:
        with cli_utils.temporary_active_stack(stack_name_or_id=snapshot.stack.id) as stack:
            stack.orchestrator.resume_run(snapshot=snapshot, run=run, stack=stack)
    except Exception as exc:
        after = client.get_pipeline_run(run_id)
        if after.status == ExecutionStatus.RESUMING:
            client.zen_store.update_run(
                run_id=run.id,
                run_update=PipelineRunUpdate(status=ExecutionStatus.PAUSED, status_reason="resume failed"),
            )
        step_name, message = _failed_step(run.id)
        raise PipelineRunFailed(str(run.id), step_name, message or str(exc)) from exc
    after = client.get_pipeline_run(run_id)
    if after.status == ExecutionStatus.FAILED:
        step_name, message = _failed_step(run.id)
        raise PipelineRunFailed(str(run.id), step_name, message or "the resumed run failed")
    return load_run_result(run_id)


def annex_iv_inputs_for(run_id: str, generated_at: str, approval_status: str, facts: ProviderFacts) -> AnnexIvInputs:
    """Rebuild an earlier run's Annex IV inputs from its stored parameters and artifacts."""
    from credit_scorer.documents.build import ARTEFACT_OUTPUTS, RunArtefacts, build_inputs
    from credit_scorer.records.release_log import read_rows
    from credit_scorer.records.store import ComplianceStore

    run = Client().get_pipeline_run(run_id)
    params = run.config.parameters or {}
    if "release" not in params or "generate_annex_iv" not in run.steps:
        raise NotFound(f"run {run_id} did not reach generate_annex_iv; there is no document to regenerate")
    settings = ReleaseSettings.model_validate(params["release"]).model_copy(update={"facts": facts})
    release_id: str = _output(run, "open_release_ticket", "release_id")
    generated = run.steps["generate_annex_iv"].start_time or run.created
    cutoff = generated.strftime("%Y-%m-%dT%H:%M:%SZ")  # ZenML keeps UTC; the log rows that existed then
    earlier = [r for r in read_rows(ComplianceStore(settings.store_url)) if r.date <= cutoff]
    artefacts = {name: _output(run, step, output) for name, (step, output) in ARTEFACT_OUTPUTS.items()}
    return build_inputs(
        release_id=release_id,
        run_id=str(run.id),
        generated_at=generated_at,
        approval_status=approval_status,
        submitter=settings.submitter,
        people=settings.people,
        facts=settings.facts,
        run=RunArtefacts(
            spec=DatasetSpec.model_validate(params["spec"]),
            training=TrainingConfig.model_validate(params["training"]),
            **artefacts,
        ),
        release_history=earlier,
    )
