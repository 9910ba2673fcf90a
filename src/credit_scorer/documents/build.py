"""Assemble an Annex IV document's inputs from a run, and render every companion file.

``build_inputs`` only gathers data; ``render_all`` only renders, into one :class:`DocumentBundle`.
The pipeline saves the bundle in the store (:func:`credit_scorer.release.workflow.save_annex_iv`);
``credit-scorer annex-iv`` writes it to a folder (:func:`write_bundle`). Both use :data:`FILE_NAMES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from credit_scorer.documents import annex_iv, model_card, sbom
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


@dataclass(frozen=True)
class RunArtefacts:
    """What a training run produced that the document states: its configuration, data, model and results."""

    spec: DatasetSpec
    training: TrainingConfig
    dataset: DatasetInfo
    data_quality: DataQualityReport
    split_sizes: SplitSizes
    model: TrainedModel
    test_split: pd.DataFrame
    evaluation: Evaluation
    fairness: FairnessReport
    risk: RiskAssessment
    checks: ThresholdChecks


# Where each artefact is stored by the pipeline: step name and output name (pipelines/run.py reads them back).
ARTEFACT_OUTPUTS: dict[str, tuple[str, str]] = {
    "dataset": ("load_data", "dataset_info"),
    "data_quality": ("validate_data", "data_quality"),
    "split_sizes": ("split_data", "split_sizes"),
    "model": ("train_model", "model"),
    "test_split": ("split_data", "test_split"),
    "evaluation": ("evaluate_model", "evaluation"),
    "fairness": ("assess_fairness", "fairness"),
    "risk": ("risk_assessment", "risk"),
    "checks": ("check_thresholds", "threshold_checks"),
}


@dataclass(frozen=True)
class DocumentBundle:
    """One release's rendered documents, and what the document still lacks."""

    html: str
    pdf: bytes
    model_card: str
    sbom: bytes
    missing_facts: list[str]
    generated_at: str

    def files(self) -> dict[str, bytes]:
        """File name -> bytes, as saved in the store and written by ``credit-scorer annex-iv``."""
        return {
            FILE_NAMES["html"]: self.html.encode("utf-8"),
            FILE_NAMES["pdf"]: self.pdf,
            FILE_NAMES["model_card"]: self.model_card.encode("utf-8"),
            FILE_NAMES["sbom"]: self.sbom,
        }


FILE_NAMES = {"html": "annex_iv.html", "pdf": "annex_iv.pdf", "model_card": "model_card.md", "sbom": "sbom.cdx.json"}


def build_inputs(
    *,
    release_id: str,
    run_id: str,
    generated_at: str,
    approval_status: str,
    submitter: str,
    people: People,
    facts: ProviderFacts,
    run: RunArtefacts,
    release_history: list[ReleaseLogRow],
) -> AnnexIvInputs:
    """Everything the document states about this release, from the run's own artefacts."""
    python, system = python_and_platform()
    earlier = [r for r in release_history if r.release_id != release_id]
    spec, model, test_split = run.spec, run.model, run.test_split
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
        dataset=run.dataset,
        data_quality=run.data_quality,
        split_sizes=run.split_sizes,
        training=run.training,
        lightgbm_params=dict(model.params),
        best_iteration=model.best_iteration,
        feature_names=list(model.feature_names),
        decision_threshold=model.decision_threshold,
        threshold_rule=model.threshold_rule_description,
        evaluation=run.evaluation,
        fairness=run.fairness,
        risk=run.risk,
        checks=run.checks,
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


def render_all(inputs: AnnexIvInputs) -> DocumentBundle:
    """The Annex IV HTML and PDF, model card and SBOM of one release."""
    rendered = annex_iv.render_html(inputs)
    return DocumentBundle(
        html=rendered.html,
        pdf=annex_iv.render_pdf(rendered.html),
        model_card=model_card.model_card(inputs),
        sbom=sbom.sbom(inputs),
        missing_facts=list(rendered.missing_facts),
        generated_at=inputs.generated_at,
    )


def write_bundle(bundle: DocumentBundle, folder: Path) -> Path:
    """Write the bundle's files into ``folder`` (created); the PDF's path."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in bundle.files().items():
        (folder / name).write_bytes(data)
    return folder / FILE_NAMES["pdf"]
