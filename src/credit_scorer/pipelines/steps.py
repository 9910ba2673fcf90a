"""ZenML steps: thin wrappers that call the pure domain functions and log run metadata.

Each step's outputs are ZenML artifacts (pydantic models are stored as JSON, tables
as Parquet) and the key figures are logged to the pipeline run with ``log_metadata``.
"""

from __future__ import annotations

import os
import socket
import sys
from functools import partial
from typing import Annotated, Any

import pandas as pd
from zenml import get_step_context, log_metadata, step

from credit_scorer.adapters.factory import deployer_for, tracker_for
from credit_scorer.adapters.tickets import TicketTracker
from credit_scorer.core.errors import DatasetIntegrityError
from credit_scorer.core.ids import release_key
from credit_scorer.core.settings import environ
from credit_scorer.documents import build as annex_inputs
from credit_scorer.documents.collect import AnnexIvDocument
from credit_scorer.domain import checks as checks_mod
from credit_scorer.domain import data, evaluate, fairness, risk, train
from credit_scorer.domain.config import (
    BaselinePolicy,
    DatasetSpec,
    FairnessPolicy,
    PolicyConfig,
    SamplePolicy,
    Thresholds,
    TrainingConfig,
)
from credit_scorer.domain.data import DataQualityReport, DatasetInfo, SplitSizes
from credit_scorer.domain.evaluate import Evaluation
from credit_scorer.domain.fairness import FairnessReport
from credit_scorer.domain.model import TrainedModel
from credit_scorer.domain.risk import RiskAssessment, RiskRegister
from credit_scorer.pipelines.materializers import TABLE_MATERIALIZER
from credit_scorer.records import people_registry, submissions
from credit_scorer.records.models import ApprovalRecord, TesterSignoff, iso_utc, utc_now
from credit_scorer.records.release_log import read_rows
from credit_scorer.records.store import ComplianceStore
from credit_scorer.records.thresholds import note_config_at_run_start
from credit_scorer.release import decisions, gate, signoffs, terminal, workflow
from credit_scorer.release.preflight import check_reason_codes
from credit_scorer.release.settings import ReleaseSettings
from credit_scorer.release.workflow import ReleaseCandidate

step = partial(step, enable_artifact_visualization=False, enable_artifact_metadata=False)
"""Steps skip ZenML's HTML previews and automatic metadata of artifacts: they cost seconds per run,
nothing reads them, and the documents this product generates show what a reviewer needs (the
figures a run page shows are logged explicitly with ``log_metadata``)."""


def _log_to_run(metadata: dict[str, Any]) -> None:
    """Log metadata on the pipeline run (visible on the run page) and on this step."""
    log_metadata(metadata=metadata)
    log_metadata(metadata=metadata, run_id_name_or_prefix=get_step_context().pipeline_run.id)


@step()
def load_data(spec: DatasetSpec) -> Annotated[DatasetInfo, "dataset_info"]:
    """Read the data file, check its sha256 against the spec, record its provenance."""
    _frame, info = data.load_dataset(spec)
    _log_to_run({"dataset": {"name": info.name, "sha256": info.sha256, "rows": info.rows, "location": info.location}})
    return info


@step(output_materializers={"clean_data": TABLE_MATERIALIZER})
def validate_data(
    spec: DatasetSpec, dataset_info: DatasetInfo, training: TrainingConfig, sample: SamplePolicy
) -> tuple[Annotated[pd.DataFrame, "clean_data"], Annotated[DataQualityReport, "data_quality"]]:
    """Validate the same bytes ``load_data`` hashed against the spec (pandera); refuse a too small test split."""
    frame, info = data.load_dataset(spec)
    if info.sha256 != dataset_info.sha256:
        raise DatasetIntegrityError(
            f"data file {info.location} changed while the run was in progress "
            f"(sha256 {dataset_info.sha256} at load, {info.sha256} now)"
        )
    clean, quality = data.validate_dataset(frame, spec, source=info.location)
    data.check_test_split(clean, spec, training, sample)  # before the ticket: too little data records nothing
    _log_to_run(
        {
            "data_quality": {
                "rows": quality.rows,
                "default_rate": quality.default_rate,
                "missing_value_share": quality.missing_value_share,
                "undocumented_codes": [u.model_dump() for u in quality.undocumented_codes],
            }
        }
    )
    return clean, quality


@step(output_materializers=dict.fromkeys(("train_split", "validation_split", "test_split"), TABLE_MATERIALIZER))
def split_data(
    clean_data: pd.DataFrame, spec: DatasetSpec, training: TrainingConfig
) -> tuple[
    Annotated[pd.DataFrame, "train_split"],
    Annotated[pd.DataFrame, "validation_split"],
    Annotated[pd.DataFrame, "test_split"],
    Annotated[SplitSizes, "split_sizes"],
]:
    """Stratified, seeded train / validation / test split."""
    train_part, valid_part, test_part, sizes = data.split_dataset(clean_data, spec, training)
    _log_to_run({"split_sizes": sizes.model_dump(), "seed": training.seed})
    return train_part, valid_part, test_part, sizes


@step()
def train_model(
    train_split: pd.DataFrame, validation_split: pd.DataFrame, spec: DatasetSpec, training: TrainingConfig
) -> Annotated[TrainedModel, "model"]:
    """Train LightGBM; early stopping and the decision threshold use validation only."""
    model = train.train_model(train_split, validation_split, spec, training)
    _log_to_run(
        {
            "model": {
                "sha256": model.sha256,
                "decision_threshold": model.decision_threshold,
                "threshold_rule": model.threshold_rule_description,
                "best_iteration": model.best_iteration,
                "features": model.feature_names,
                "train_auc": model.train_auc,
                "validation_auc": model.validation_auc,
            },
            "training_config": training.model_dump(),
        }
    )
    return model


@step()
def evaluate_model(
    model: TrainedModel, test_split: pd.DataFrame, spec: DatasetSpec
) -> Annotated[Evaluation, "evaluation"]:
    """Metrics on the untouched test split."""
    result = evaluate.evaluate_model(model, test_split, spec)
    _log_to_run({"evaluation": result.model_dump()})
    return result


@step()
def assess_fairness(
    model: TrainedModel, test_split: pd.DataFrame, spec: DatasetSpec, policy: FairnessPolicy
) -> Annotated[FairnessReport, "fairness"]:
    """Per-group approval rates and gaps for each protected attribute (fairlearn)."""
    report = fairness.assess_fairness(model, test_split, spec, policy)
    _log_to_run(
        {
            "fairness": {
                "bias_disparity": report.bias_disparity,
                "bias_disparity_attribute": report.bias_disparity_attribute or "",
                "fairness_flags": report.fairness_flags,
                "insufficient_sample_groups": report.insufficient_sample_groups,
                "min_group_size": report.min_group_size,
                "per_attribute": {
                    a.attribute: {
                        "demographic_parity_difference": a.demographic_parity_difference,
                        "demographic_parity_ratio": a.demographic_parity_ratio,
                        "equal_opportunity_difference": a.equal_opportunity_difference,
                        "equalized_odds_difference": a.equalized_odds_difference,
                    }
                    for a in report.attributes
                },
            }
        }
    )
    return report


@step()
def risk_assessment(
    evaluation: Evaluation,
    fairness_report: FairnessReport,
    data_quality: DataQualityReport,
    model: TrainedModel,
    thresholds: Thresholds,
    register: RiskRegister,
) -> Annotated[RiskAssessment, "risk"]:
    """Evaluate the risk register on this run's measurements."""
    measurements = risk.risk_measurements(evaluation, fairness_report, data_quality, model, thresholds)
    result = risk.assess_risk(register, measurements)
    _log_to_run(
        {
            "risk": {
                "overall_risk_score": result.overall_risk_score,
                "risk_level": result.risk_level,
                "high_risk_factors": result.high_risk_factors,
                "triggered_hazards": [h.id for h in result.hazards if h.triggered],
                "register_version": result.register_version,
            }
        }
    )
    return result


@step()
def check_thresholds(
    evaluation: Evaluation,
    fairness_report: FairnessReport,
    risk_result: RiskAssessment,
    thresholds: Thresholds,
    baseline: BaselinePolicy,
) -> Annotated[checks_mod.ThresholdChecks, "threshold_checks"]:
    """The four SOP §2 checks and the baseline checks (value, limit, status): the release gate's input."""
    result = checks_mod.threshold_checks(evaluation, fairness_report, risk_result, thresholds, baseline)
    _log_to_run(
        {
            "threshold_checks": {
                c.name: {
                    "value": c.value,
                    "limit": c.limit,
                    "operator": c.operator,
                    "passed": c.passed,
                    "status": c.outcome,
                }
                for c in result.all_checks
            },
            "thresholds": thresholds.model_dump(),
            "all_checks_passed": result.all_passed,
        }
    )
    return result


# ---------------------------------------------------------------------------
# Release gate (SOP §1 steps 1, 2, 4, 5, 6)
# ---------------------------------------------------------------------------
def _store_and_tracker(settings: ReleaseSettings) -> tuple[ComplianceStore, TicketTracker]:
    store = ComplianceStore(settings.store_url)
    return store, tracker_for(store)


@step()
def open_release_ticket(
    settings: ReleaseSettings, dataset_info: DatasetInfo, policy: PolicyConfig
) -> tuple[Annotated[str, "release_id"], Annotated[int, "thresholds_version"]]:
    """Open the release ticket AI-REL-<run id> once the data has passed validation; note the thresholds in force.

    A threshold configuration that differs from the store's current version is recorded here as a new version
    (who, why), and on the store's first use the people file becomes its people registry version 1 — here,
    before training, so a run stopped by bad data writes nothing.
    """
    run_id = str(get_step_context().pipeline_run.id)
    release_id = release_key(run_id)
    store, tracker = _store_and_tracker(settings)
    people_registry.adopt_if_absent(store, settings.people, settings.people_source)
    version = note_config_at_run_start(store, policy, settings.submitter)
    submissions.record_submission(
        store,
        submissions.Submission(
            release_id=release_id,
            run_id=run_id,
            submitter=settings.submitter,
            submitted_at=iso_utc(utc_now()),
            dataset_sha256=dataset_info.sha256,
            dataset_rows=dataset_info.rows,
        ),
    )
    tracker.open_ticket(
        release_id,
        run_id,
        summary=f"Release {release_id}: credit-scoring model trained on {dataset_info.name}",
        description=(
            f"training_pipeline run {run_id} submitted by {settings.submitter}; dataset {dataset_info.location} "
            f"(sha256 {dataset_info.sha256}, {dataset_info.rows} rows)."
        ),
    )
    _log_to_run(
        {
            "release_id": release_id,
            "ticket": release_id,
            "submitter": settings.submitter,
            "thresholds_version": version.version,
        }
    )
    return release_id, version.version


@step()
def generate_annex_iv(
    settings: ReleaseSettings,
    release_id: str,
    spec: DatasetSpec,
    training: TrainingConfig,
    dataset_info: DatasetInfo,
    data_quality: DataQualityReport,
    split_sizes: SplitSizes,
    model: TrainedModel,
    test_split: pd.DataFrame,
    evaluation: Evaluation,
    fairness_report: FairnessReport,
    risk_result: RiskAssessment,
    threshold_checks: checks_mod.ThresholdChecks,
) -> Annotated[AnnexIvDocument, "annex_iv"]:
    """Render the Annex IV documentation (HTML + PDF), model card and SBOM; save them under releases/<id>/."""
    store = ComplianceStore(settings.store_url)
    run = annex_inputs.RunArtefacts(
        spec=spec,
        training=training,
        dataset=dataset_info,
        data_quality=data_quality,
        split_sizes=split_sizes,
        model=model,
        test_split=test_split,
        evaluation=evaluation,
        fairness=fairness_report,
        risk=risk_result,
        checks=threshold_checks,
    )
    inputs = annex_inputs.build_inputs(
        release_id=release_id,
        run_id=str(get_step_context().pipeline_run.id),
        generated_at=iso_utc(utc_now()),
        approval_status="Awaiting decision at the release gate (this document is an input to it)",
        submitter=settings.submitter,
        people=settings.people,
        facts=settings.facts,
        run=run,
        release_history=read_rows(store),
    )
    saved = workflow.save_annex_iv(store, release_id, annex_inputs.render_all(inputs))
    _log_to_run(
        {
            "annex_iv": {
                "pdf_path": saved.pdf_path,
                "pdf_sha256": saved.pdf_sha256,
                "missing_facts": len(saved.missing_facts),
            }
        }
    )
    return saved


@step()
def prepare_gate(
    settings: ReleaseSettings,
    release_id: str,
    dataset_info: DatasetInfo,
    model: TrainedModel,
    evaluation: Evaluation,
    fairness_report: FairnessReport,
    risk_result: RiskAssessment,
    threshold_checks: checks_mod.ThresholdChecks,
    annex_iv: AnnexIvDocument,
    thresholds_version: int,
) -> tuple[Annotated[ReleaseCandidate, "release_candidate"], Annotated[str, "gate_channel"]]:
    """Save the gate inputs under releases/<id>/, show the gate summary, choose the decision channel."""
    check_reason_codes(model.feature_names)  # again, for the model itself: nobody decides on what cannot deploy
    run_id = str(get_step_context().pipeline_run.id)
    candidate = ReleaseCandidate(
        run_id=run_id,
        release_id=release_id,
        submitter=settings.submitter,
        checks=threshold_checks,
        evaluation=evaluation,
        fairness=fairness_report,
        risk=risk_result,
        model_sha256=model.sha256,
        dataset_sha256=dataset_info.sha256,
        decision_threshold=model.decision_threshold,
        annex_iv=annex_iv,
        thresholds_version=thresholds_version,
    )
    store, tracker = _store_and_tracker(settings)
    roles = _roles_now(store, settings)
    candidate = _with_roles(candidate, roles)
    artefacts = workflow.save_gate_inputs(store, candidate)
    stdin = sys.__stdin__
    channel = gate.choose_channel(environ(), bool(stdin and stdin.isatty()))
    signoff = signoffs.latest_signoff(store, release_id)
    if channel == "interactive" and signoff is None:
        signoff = signoffs.signoff_from_env(store, tracker, roles.people, candidate, environ(), settings.waives_duties)
    console = terminal.terminal_console()
    terminal.gate_summary(
        console,
        release_id,
        threshold_checks,
        fairness_report,
        risk_result,
        f"{artefacts} (ZenML run {run_id})",
        signoff,
        annex_iv=annex_iv,
        store_url=store.url,
    )
    if channel == "interactive" and signoff is None and gate.signoff_required(roles.people, settings.waives_duties):
        terminal.pause_for_signoff(console, run_id)  # checked before asking anything: nobody types in vain
        channel = "wait"
    tracker.add_comment(
        release_id,
        "credit-scorer",
        "note",
        "Waiting at the release gate: " + "; ".join(c.text for c in threshold_checks.all_checks),
    )
    _log_to_run({"gate_channel": channel, "gate_artefacts": artefacts})
    return candidate, channel


def _roles_now(store: ComplianceStore, settings: ReleaseSettings) -> people_registry.PeopleInForce:
    """The people the decision is checked against: the store's registry now (or the run's dev-mode file)."""
    return people_registry.people_for_decision(store, settings.people, settings.people_version, settings.people_source)


def _with_roles(candidate: ReleaseCandidate, roles: people_registry.PeopleInForce) -> ReleaseCandidate:
    """The candidate naming the people registry version its decision is checked against (copied into records)."""
    return candidate.model_copy(update={"people_version": roles.version, "people_source": roles.source})


@step()
def approve_deployment(
    settings: ReleaseSettings,
    release_candidate: ReleaseCandidate,
    gate_channel: str,
    external_decision: gate.GateDecision | None = None,
) -> Annotated[gate.GateDecision, "gate_decision"]:
    """Take the decision from its channel, apply the gate's rules; record and stop on reject or refusal."""
    store, tracker = _store_and_tracker(settings)
    roles = _roles_now(store, settings)
    candidate = _with_roles(release_candidate, roles)
    workflow.ensure_undecided(store, candidate.release_id)
    dev_mode = settings.waives_duties

    def current_signoff() -> TesterSignoff | None:
        return signoffs.signoff_from_env(store, tracker, roles.people, candidate, environ(), dev_mode)

    if gate_channel == "automated":
        decided_at = iso_utc(utc_now())
        gate.automated_decision(environ(), candidate.checks, None, decided_at)  # bad variables: nothing recorded
        decision = gate.automated_decision(environ(), candidate.checks, current_signoff(), decided_at)
        decision = decisions.signed_by_env(store, tracker, decision, candidate, environ(), dev_mode)
    elif gate_channel == "interactive":
        asking = {"pid": os.getpid(), "host": socket.gethostname(), "since": iso_utc(utc_now())}
        log_metadata(metadata={gate.TERMINAL_METADATA: asking}, run_id_name_or_prefix=candidate.run_id)
        decision = decisions.ask_at_terminal(store, tracker, roles.people, candidate, current_signoff, dev_mode)
    elif external_decision is not None:
        decision = external_decision
    else:
        raise gate.GateInputError("the run resumed without a decision; use credit-scorer approve RUN_ID")

    if decision.refusal_reason:
        record = workflow.record_rejection(store, tracker, candidate, decision, [], dev_mode)
        _log_to_run({"approval_id": record.approval_id, "approved": False, "decision_mode": decision.decision_mode})
        raise RuntimeError(f"{decision.refusal_reason} (recorded as {record.approval_id})")
    waivers = decisions.validate_recorded(store, tracker, decision, candidate, roles.people, dev_mode)
    if not decision.approved:
        record = workflow.record_rejection(store, tracker, candidate, decision, waivers, dev_mode)
        _log_to_run({"approval_id": record.approval_id, "approved": False, "decision_mode": decision.decision_mode})
        raise RuntimeError(
            f"release {candidate.release_id} rejected by {decision.approver}: {decision.rationale} "
            f"(recorded as {record.approval_id}); nothing was deployed"
        )
    _log_to_run({"approved": True, "approver": decision.approver, "decision_mode": decision.decision_mode})
    return decision


@step()
def deploy_model(
    settings: ReleaseSettings,
    release_candidate: ReleaseCandidate,
    gate_decision: gate.GateDecision,
    model: TrainedModel,
) -> Annotated[ApprovalRecord, "approval_record"]:
    """Store the model by sha256, start the endpoint, record approval + URL, log the release."""
    store, tracker = _store_and_tracker(settings)
    dev_mode = settings.waives_duties
    roles = _roles_now(store, settings)
    checks = release_candidate.checks
    waivers = gate.validate_decision(gate_decision, checks, roles.people, settings.submitter, dev_mode)
    deployer = deployer_for(store)
    record, deployment = workflow.deploy_release(
        store,
        tracker,
        deployer,
        _with_roles(release_candidate, roles),
        gate_decision,
        model.to_bytes(),
        waivers,
        dev_mode,
        settings.port,
        settings.git_commit,
    )
    url = deployment.url if deployment else None
    _log_to_run(
        {
            "deployment_url": url or "",
            "approval_id": record.approval_id,
            "model_path": record.model_path or "",
        }
    )
    model_version = get_step_context().model_version
    if model_version is not None:
        model_version.set_stage("production", force=True)
    return record
