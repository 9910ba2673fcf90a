"""Assemble an Annex IV document's inputs from a run, and render every companion file.

``build_inputs`` only gathers data; ``render_all`` only renders. Saving is the caller's
job (:func:`credit_scorer.release.workflow.save_annex_iv`).
"""

from __future__ import annotations

import pandas as pd

from credit_scorer.documents import annex_iv
from credit_scorer.documents.collect import installed_packages, python_and_platform
from credit_scorer.documents.inputs import AnnexIvInputs, ProviderFacts, TestPredictions
from credit_scorer.domain.checks import ThresholdChecks
from credit_scorer.domain.config import DatasetSpec, TrainingConfig
from credit_scorer.domain.data import DataQualityReport, DatasetInfo, SplitSizes, default_labels
from credit_scorer.domain.evaluate import Evaluation
from credit_scorer.domain.fairness import FairnessReport, group_labels, group_order
from credit_scorer.domain.model import TrainedModel
from credit_scorer.domain.risk import RiskAssessment
from credit_scorer.records.people import People
from credit_scorer.records.release_log import ReleaseLogRow


def build_inputs(
    *,
    release_id: str,
    run_id: str,
    generated_at: str,
    approval_status: str,
    submitter: str,
    people: People,
    facts: ProviderFacts,
    spec: DatasetSpec,
    training: TrainingConfig,
    dataset: DatasetInfo,
    data_quality: DataQualityReport,
    split_sizes: SplitSizes,
    model: TrainedModel,
    test_split: pd.DataFrame,
    evaluation: Evaluation,
    fairness: FairnessReport,
    risk: RiskAssessment,
    checks: ThresholdChecks,
    release_history: list[ReleaseLogRow],
) -> AnnexIvInputs:
    """Everything the document states about this release, from the run's own artefacts."""
    python, system = python_and_platform()
    earlier = [r for r in release_history if r.release_id != release_id]
    return AnnexIvInputs(
        release_id=release_id,
        run_id=run_id,
        generated_at=generated_at,
        approval_status=approval_status,
        submitter=submitter,
        model_sha256=model.sha256,
        parent_release=earlier[-1].release_id if earlier else None,
        packages=installed_packages(),
        python_version=python,
        platform=system,
        spec=spec,
        dataset=dataset,
        data_quality=data_quality,
        split_sizes=split_sizes,
        training=training,
        lightgbm_params=dict(model.params),
        best_iteration=model.best_iteration,
        feature_names=list(model.feature_names),
        decision_threshold=model.decision_threshold,
        threshold_rule=model.threshold_rule_description,
        evaluation=evaluation,
        fairness=fairness,
        risk=risk,
        checks=checks,
        release_history=list(release_history),
        people_by_role={role: people.holders(role) for role in ("submitter", "tester", "approver", "auditor")},
        require_tester_signoff=people.policy.require_tester_signoff,
        predictions=TestPredictions(
            default_probability=[float(p) for p in model.predict_default_proba(test_split)],
            defaulted=[int(v) for v in default_labels(test_split, spec)],
            groups={a.name: group_labels(test_split, a).tolist() for a in spec.protected_attributes},
            group_order={a.name: group_order(a) for a in spec.protected_attributes},
        ),
        facts=facts,
    )


def render_all(inputs: AnnexIvInputs) -> tuple[str, bytes, str, bytes, list[str], str]:
    """(html, pdf, model card, SBOM, missing provider facts, generation time) of one release."""
    rendered = annex_iv.render_html(inputs)
    return (
        rendered.html,
        annex_iv.render_pdf(rendered.html),
        annex_iv.model_card(inputs),
        annex_iv.sbom(inputs),
        list(rendered.missing_facts),
        inputs.generated_at,
    )
