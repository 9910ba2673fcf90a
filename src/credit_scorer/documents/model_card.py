"""The model card (Markdown) that goes with each release's Annex IV document."""

from __future__ import annotations

from credit_scorer.documents.annex_iv import FACT_DESCRIPTIONS, SYSTEM_NAME, TO_BE_COMPLETED, check_limit, check_value
from credit_scorer.documents.inputs import AnnexIvInputs
from credit_scorer.domain.checks import ThresholdCheck


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def model_card(inputs: AnnexIvInputs) -> str:
    """A short Markdown model card of the release: use, data, metrics vs thresholds, fairness, risk, limits."""
    ev, fairness, risk, data = inputs.evaluation, inputs.fairness, inputs.risk, inputs.dataset
    purpose = (inputs.facts.intended_purpose or "").strip()
    purpose_text = purpose or f"{TO_BE_COMPLETED}: {FACT_DESCRIPTIONS['intended_purpose']}"
    lines = [
        f"# Model card: {SYSTEM_NAME}",
        "",
        f"- Release: `{inputs.release_id}` (run `{inputs.run_id}`), generated {inputs.generated_at}",
        f"- Model sha256: `{inputs.model_sha256}`",
        f"- Parent release: {inputs.parent_release or 'none (first release)'}",
        f"- Approval status: {inputs.approval_status}",
        "",
        "## Intended use",
        "",
        purpose_text,
        "",
        "High-risk AI system under the EU AI Act (Annex III 5(b), credit scoring of natural persons). "
        f"The model estimates the probability of default; an applicant is declined when it is at least "
        f"{inputs.decision_threshold:.3f} ({inputs.threshold_rule}).",
        "",
        "## Data",
        "",
        f"{data.source_title or data.name} ({data.licence or 'licence not recorded'}; {data.doi or 'no DOI'}), "
        f"sha256 `{data.sha256}`, {data.rows:,} rows, default rate {inputs.data_quality.default_rate:.1%}. "
        f"Split train / validation / test: {inputs.split_sizes.train:,} / {inputs.split_sizes.validation:,} / "
        f"{inputs.split_sizes.test:,} rows. Protected attributes "
        f"({', '.join(a.name for a in inputs.spec.protected_attributes)}) are measured, "
        + ("not used as model inputs." if not inputs.spec.protected_as_features else "and used as model inputs."),
        "",
        "## Metrics (test split) against the thresholds in force",
        "",
        f"AUC {ev.auc:.4f}, accuracy {ev.accuracy:.4f}, F1 {ev.f1:.4f}, precision {ev.precision:.4f}, "
        f"recall {ev.recall:.4f}, Brier {ev.brier:.4f}, ECE {ev.expected_calibration_error:.4f}, "
        f"approval rate {ev.approval_rate:.1%} on {ev.test_rows:,} rows.",
        "",
        "| check | value | limit | result |",
        "|---|---|---|---|",
        *(
            f"| {c.name} | {check_value(c)} | {c.operator} {check_limit(c)} | {_md_cell(_verdict_text(c))} |"
            for c in inputs.checks.all_checks
        ),
        "",
        "## Fairness",
        "",
        f"Favourable outcome: {fairness.favourable_outcome}. Bias disparity (largest demographic-parity "
        f"difference) {fairness.bias_disparity:.4f}"
        + (f" ({fairness.bias_disparity_attribute})" if fairness.bias_disparity_attribute else "")
        + f"; groups with fewer than {fairness.min_group_size} test rows are not compared: "
        + (", ".join(fairness.insufficient_sample_groups) or "none")
        + ". Fairness flags: "
        + ("; ".join(fairness.fairness_flags) or "none")
        + ".",
        "",
        "## Risk",
        "",
        f"Overall risk score {risk.overall_risk_score:.4f} ({risk.risk_level}); high-risk factors: "
        + ("; ".join(risk.high_risk_factors) or "none")
        + ". Triggered hazards: "
        + ("; ".join(f"{h.id} {_md_cell(h.name)}" for h in risk.hazards if h.triggered) or "none")
        + ".",
        "",
        "## Limitations",
        "",
        f"- Trained and tested only on {data.name}: {inputs.spec.description or 'see the data sheet'} "
        "Performance on other populations or periods has not been measured.",
        "- Groups too small to compare are listed above; their rates are not reliable.",
        f"- Scores are probabilities; calibration error on test is {ev.expected_calibration_error:.4f}.",
        "",
        "Full technical documentation: the Annex IV document of this release.",
        "",
    ]
    return "\n".join(lines)


def _verdict_text(check: ThresholdCheck) -> str:
    return f"{check.verdict} ({check.reason})" if check.reason else check.verdict
