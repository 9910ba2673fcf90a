"""The Annex IV document, its charts, the model card and the SBOM, built from a real run on the bundled data.

Expected strings are computed here from the inputs (``f"{auc:.4f}"`` …), and the PDF is read
back with pypdf, so the tests check what a reader of the document sees.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import io
import json
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from pypdf import PdfReader

from credit_scorer.documents import annex_iv, charts, model_card, sbom
from credit_scorer.documents.inputs import AnnexIvInputs, ProviderFacts
from credit_scorer.documents.inputs import TestPredictions as SplitPredictions  # not a test class
from credit_scorer.domain import checks, config, data, evaluate, fairness, risk, train
from credit_scorer.records.release_log import ReleaseLogRow

GENERATED_AT = "2026-11-27T08:03:14Z"
SBOM_PACKAGES = (
    "zenml",
    "lightgbm",
    "scikit-learn",
    "fairlearn",
    "pandas",
    "numpy",
    "pandera",
    "weasyprint",
    "matplotlib",
    "fastapi",
    "Jinja2",
    "typing_extensions",
)
FILLED_FACTS = ProviderFacts(
    provider="Example Bank AG, Musterstraße 1, 10115 Berlin, Germany",
    contact="ai-compliance@example-bank.eu",
    intended_purpose="Support credit officers in deciding consumer credit-card applications.",
    deployer_instructions="Call POST /predict with the applicant's fields; a credit officer reviews every decline.",
    hardware_and_forms_of_release="Container image for x86_64 Linux, 2 vCPU, 1 GiB RAM.",
    metric_rationale="Accuracy and AUC measure discrimination; parity gaps measure unequal approval.",
    standards_applied="No harmonised standard published yet; ISO/IEC 42001 and ISO/IEC 23894 followed.",
    declaration_of_conformity="EU-DoC-2026-017, sha256 0f3c…, signed 2026-11-20.",
    post_market_monitoring="Monthly report by the model-risk team from the decision log and collected outcomes.",
    cybersecurity_measures="Endpoint behind the bank's API gateway with mutual TLS; images signed.",
)
PARTIAL_FACTS = FILLED_FACTS.model_copy(
    update={
        "contact": None,
        "metric_rationale": None,
        "declaration_of_conformity": None,
        "cybersecurity_measures": None,
    }
)


def _build_inputs() -> AnnexIvInputs:
    """AnnexIvInputs of a real (small) training run on the bundled data, through the pure functions."""
    spec = config.load_dataset_spec()
    policy = config.load_policy()
    training = config.training_config(n_estimators=50)
    frame, info = data.load_dataset(spec)
    clean, quality = data.validate_dataset(frame, spec, info.location)
    train_split, valid_split, test_split, sizes = data.split_dataset(clean, spec, training)
    model = train.train_model(train_split, valid_split, spec, training)
    evaluation = evaluate.evaluate_model(model, test_split, spec)
    report = fairness.assess_fairness(model, test_split, spec, policy.fairness)
    assessment = risk.assess_risk(
        risk.load_risk_register(),
        risk.risk_measurements(evaluation, report, quality, model, policy.thresholds),
    )
    threshold_checks = checks.threshold_checks(evaluation, report, assessment, policy.thresholds)
    predictions = SplitPredictions(
        default_probability=[float(p) for p in model.predict_default_proba(test_split)],
        defaulted=[int(d) for d in data.default_labels(test_split, spec)],
        groups={a.name: fairness.group_labels(test_split, a).tolist() for a in spec.protected_attributes},
        group_order={a.name: fairness.group_order(a) for a in spec.protected_attributes},
    )
    packages = {name: metadata.version(name) for name in SBOM_PACKAGES}
    history = [
        ReleaseLogRow(
            date="2026-10-02T09:12:44Z",
            event="release",
            release_id="AI-REL-1a2b3c4d",
            model_path="compliance/models/" + "ab" * 32 + ".json",
            sha256="ab" * 32,
            deployment_url="http://127.0.0.1:52673",
            approval_id="approval_2026-10-02T09-12-40",
            by="Jane Doe",
        ),
        ReleaseLogRow(
            date="2026-10-20T14:00:02Z",
            event="rollback",
            release_id="AI-REL-1a2b3c4d",
            model_path="compliance/models/" + "ab" * 32 + ".json",
            sha256="ab" * 32,
            deployment_url="http://127.0.0.1:52673",
            approval_id="approval_2026-10-02T09-12-40",
            by="Ada Lovelace",
            note="new release raised complaints about declines of applicants under 25; restored the previous one",
        ),
    ]
    return AnnexIvInputs(
        release_id="AI-REL-56a46d43",
        run_id="56a46d43-0b8e-4a7e-9a55-0c2f3e1d9b71",
        generated_at=GENERATED_AT,
        approval_status="pending: awaiting tester sign-off and approval",
        submitter="Ada Lovelace",
        model_sha256=model.sha256,
        parent_release="AI-REL-1a2b3c4d",
        packages=packages,
        python_version=platform.python_version(),
        platform=platform.platform(),
        spec=spec,
        dataset=info,
        data_quality=quality,
        split_sizes=sizes,
        training=training,
        lightgbm_params=dict(model.params),
        best_iteration=model.best_iteration,
        feature_names=model.feature_names,
        decision_threshold=model.decision_threshold,
        threshold_rule=model.threshold_rule_description,
        evaluation=evaluation,
        fairness=report,
        risk=assessment,
        checks=threshold_checks,
        release_history=history,
        people_by_role={
            "submitter": ["Ada Lovelace", "Grace Hopper"],
            "tester": ["Quinn Tester"],
            "approver": ["Jane Doe", "Sam Compliance"],
            "auditor": ["Avery Auditor"],
        },
        require_tester_signoff=True,
        predictions=predictions,
        facts=PARTIAL_FACTS,
    )


@pytest.fixture(scope="module")
def inputs() -> AnnexIvInputs:
    return _build_inputs()


@pytest.fixture(scope="module")
def rendered(inputs: AnnexIvInputs) -> annex_iv.RenderedDocument:
    return annex_iv.render_html(inputs)


@pytest.fixture(scope="module")
def pdf(rendered: annex_iv.RenderedDocument) -> bytes:
    return annex_iv.render_pdf(rendered.html)


@pytest.fixture(scope="module")
def pages(pdf: bytes) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages]


@pytest.fixture(scope="module")
def pdf_text(pages: list[str]) -> str:
    return " ".join(pages)


def _none_fields(facts: ProviderFacts) -> list[str]:
    return [name for name, value in facts.model_dump().items() if value is None]


# ---------------------------------------------------------------------------
# The PDF a reader sees
# ---------------------------------------------------------------------------
EXPECTED_HEADINGS = (
    "1 General description of the AI system",
    "2 Detailed description of the elements of the AI system and of the process for its development",
    "3 Monitoring, functioning and control",
    "4 Appropriateness of the performance metrics",
    "5 Risk management system",
    "6 Relevant changes over the lifecycle",
    "7 Harmonised standards applied",
    "8 EU declaration of conformity",
    "9 Post-market monitoring plan",
)


def test_pdf_holds_the_nine_annex_iv_sections_in_order(pdf_text: str) -> None:
    body = pdf_text[pdf_text.index("Contents") :]
    positions = []
    for heading in EXPECTED_HEADINGS:
        # each heading appears in the contents list, then as the section's own heading
        first = body.index(heading)
        positions.append(body.index(heading, first + len(heading)))
    assert positions == sorted(positions)


def test_pdf_cover_names_the_release(inputs: AnnexIvInputs, pages: list[str]) -> None:
    cover = pages[0]
    assert "EU AI Act Annex IV technical documentation" in cover
    assert "credit-scorer — consumer credit default scoring" in cover
    assert inputs.release_id in cover
    assert inputs.model_sha256 in cover.replace(" ", "")
    assert GENERATED_AT in cover
    assert inputs.approval_status in cover


def test_pdf_shows_this_runs_metrics(inputs: AnnexIvInputs, pdf_text: str) -> None:
    assert f"AUC {inputs.evaluation.auc:.4f}" in pdf_text
    assert f"accuracy {inputs.evaluation.accuracy:.4f}" in pdf_text
    assert f"Bias disparity {inputs.fairness.bias_disparity:.4f}" in pdf_text
    assert f"Overall risk score {inputs.risk.overall_risk_score:.4f}" in pdf_text
    for check in inputs.checks.checks:
        verdict = "pass" if check.passed else "FAIL"
        digits = ".0f" if check.name == "Fairness flags" else ".4f"  # a count is shown without decimals
        value, limit = format(check.value, digits), format(check.limit, digits)
        assert f"{check.name} {value} {check.operator} {limit} {verdict}" in pdf_text


def test_pdf_shows_every_group_and_insufficient_samples(inputs: AnnexIvInputs, pdf_text: str) -> None:
    for attribute in inputs.fairness.attributes:
        for group in attribute.groups:
            status = "compared" if group.sufficient_sample else "insufficient sample"
            assert f"{group.group} {group.n:,} " in pdf_text
            assert f"{group.approval_rate:.1%}" in pdf_text
        assert status in pdf_text
    assert inputs.fairness.insufficient_sample_groups, "the bundled data has small groups (MARRIAGE=others)"
    for name in inputs.fairness.insufficient_sample_groups:
        assert name in pdf_text


def test_pdf_lists_undocumented_codes_and_risk_hazards(inputs: AnnexIvInputs, pdf_text: str) -> None:
    for code in inputs.data_quality.undocumented_codes:
        assert f"{code.column} {code.code} {code.rows:,}" in pdf_text
    for hazard in inputs.risk.hazards:
        assert f"{hazard.id} " in pdf_text
        assert hazard.mitigation.split()[0] in pdf_text


def test_every_missing_fact_is_a_visible_marker(inputs: AnnexIvInputs, rendered, pdf_text: str) -> None:
    missing = _none_fields(inputs.facts)
    assert rendered.missing_facts == missing
    assert len(rendered.missing_facts) == 4
    assert pdf_text.count("TO BE COMPLETED") == len(missing)
    assert rendered.html.count("TO BE COMPLETED") == len(missing)
    for name in missing:
        assert f"TO BE COMPLETED: {annex_iv.FACT_DESCRIPTIONS[name]}" in pdf_text
    for name, value in inputs.facts.model_dump().items():
        if value is not None:
            assert " ".join(value.split()) in pdf_text, name


def test_filled_facts_give_no_marker(inputs: AnnexIvInputs) -> None:
    rendered = annex_iv.render_html(inputs.model_copy(update={"facts": FILLED_FACTS}))
    assert rendered.missing_facts == []
    assert "TO BE COMPLETED" not in rendered.html


def test_empty_facts_mark_every_field(inputs: AnnexIvInputs) -> None:
    rendered = annex_iv.render_html(inputs.model_copy(update={"facts": ProviderFacts()}))
    assert rendered.missing_facts == list(ProviderFacts.model_fields)
    assert rendered.html.count("TO BE COMPLETED") == len(ProviderFacts.model_fields)


def test_every_provider_fact_has_a_description() -> None:
    assert set(annex_iv.FACT_DESCRIPTIONS) == set(ProviderFacts.model_fields)


def test_every_page_is_numbered_page_n_of_m(pages: list[str]) -> None:
    assert len(pages) >= 5
    for number, text in enumerate(pages, start=1):
        assert f"page {number} of {len(pages)}" in text


def test_pages_after_the_cover_carry_the_release_id(inputs: AnnexIvInputs, pages: list[str]) -> None:
    for text in pages[1:]:
        assert f"release {inputs.release_id}" in text


def test_first_release_says_so(inputs: AnnexIvInputs) -> None:
    html = annex_iv.render_html(inputs.model_copy(update={"release_history": [], "parent_release": None})).html
    assert "First release: the release log holds no earlier release." in html


def test_pipeline_steps_match_the_pipeline() -> None:
    """The document's step list is the pipeline's (read from its source, without importing ZenML)."""
    origin = importlib.util.find_spec("credit_scorer.pipelines.training").origin  # type: ignore[union-attr]
    tree = ast.parse(Path(str(origin)).read_text(encoding="utf-8"))
    step_names = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "STEP_NAMES" for t in node.targets)
    )
    assert tuple(name for name, _ in annex_iv.PIPELINE_STEPS) == step_names


# ---------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------
def test_render_html_and_pdf_are_deterministic(inputs: AnnexIvInputs, rendered, pdf: bytes) -> None:
    again = annex_iv.render_html(inputs)
    assert again.html == rendered.html
    assert annex_iv.render_pdf(again.html) == pdf


def test_changing_generated_at_changes_only_the_date_lines(inputs: AnnexIvInputs, rendered) -> None:
    later = "2027-01-05T17:45:00Z"
    other = annex_iv.render_html(inputs.model_copy(update={"generated_at": later})).html
    diff = [
        line
        for line in difflib.unified_diff(rendered.html.splitlines(), other.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert diff, "the date must appear in the document"
    removed = [line[1:] for line in diff if line.startswith("-")]
    added = [line[1:] for line in diff if line.startswith("+")]
    assert [line.replace(GENERATED_AT, later) for line in removed] == added


def test_charts_are_deterministic_svg(inputs: AnnexIvInputs) -> None:
    p = inputs.predictions
    made = [
        lambda: charts.roc_curve_svg(p.defaulted, p.default_probability, inputs.decision_threshold),
        lambda: charts.calibration_curve_svg(p.defaulted, p.default_probability),
        lambda: charts.score_distribution_svg(p.defaulted, p.default_probability, inputs.decision_threshold),
        lambda: charts.approval_rate_svg(
            "MARRIAGE",
            p.groups["MARRIAGE"],
            p.default_probability,
            inputs.decision_threshold,
            order=p.group_order["MARRIAGE"],
            min_group_size=inputs.fairness.min_group_size,
        ),
    ]
    for make in made:
        first, second = make(), make()
        assert first == second
        assert first.lstrip().startswith("<?xml") and "<svg" in first
        assert "<dc:date>" not in first


def test_roc_chart_legend_holds_the_auc(inputs: AnnexIvInputs) -> None:
    p = inputs.predictions
    with_paths = charts.roc_curve_svg(p.defaulted, p.default_probability, inputs.decision_threshold)
    # text is drawn as glyph paths; the legend entry is still named in the SVG comments
    assert f"AUC = {inputs.evaluation.auc:.4f}" in with_paths


def test_approval_chart_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="3 group labels but 2 default probabilities for SEX"):
        charts.approval_rate_svg("SEX", ["a", "b", "a"], [0.1, 0.2], 0.5, min_group_size=1)


# ---------------------------------------------------------------------------
# Model card and SBOM
# ---------------------------------------------------------------------------
def test_model_card_names_release_hash_and_metrics(inputs: AnnexIvInputs) -> None:
    card = model_card.model_card(inputs)
    assert card.startswith("# Model card")
    assert inputs.release_id in card
    assert inputs.model_sha256 in card
    assert f"AUC {inputs.evaluation.auc:.4f}" in card
    assert f"accuracy {inputs.evaluation.accuracy:.4f}" in card
    assert f"{inputs.fairness.bias_disparity:.4f}" in card
    assert f"{inputs.risk.overall_risk_score:.4f}" in card
    assert FILLED_FACTS.intended_purpose is not None
    assert FILLED_FACTS.intended_purpose in card


def test_sbom_is_cyclonedx_1_6_of_the_packages(inputs: AnnexIvInputs) -> None:
    raw = sbom.sbom(inputs)
    document = json.loads(raw)
    assert document["bomFormat"] == "CycloneDX"
    assert document["specVersion"] == "1.6"
    assert document["metadata"]["component"]["name"] == "credit-scorer"
    assert document["metadata"]["component"]["version"] == inputs.release_id
    assert document["metadata"]["timestamp"].startswith("2026-11-27T08:03:14")
    purls = {c["purl"] for c in document["components"]}
    for name in SBOM_PACKAGES:
        canonical = re.sub(r"[-_.]+", "-", name).lower()
        assert f"pkg:pypi/{canonical}@{inputs.packages[name]}" in purls
    assert all(c["type"] == "library" for c in document["components"])


def test_sbom_validates_against_the_cyclonedx_schema(inputs: AnnexIvInputs) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(sbom.sbom(inputs).decode()) is None


def test_sbom_is_deterministic_and_serial_follows_the_model(inputs: AnnexIvInputs) -> None:
    first = sbom.sbom(inputs)
    assert sbom.sbom(inputs) == first
    other = json.loads(sbom.sbom(inputs.model_copy(update={"model_sha256": "cd" * 32})))
    assert other["serialNumber"] != json.loads(first)["serialNumber"]
    assert json.loads(first)["serialNumber"].startswith("urn:uuid:")


def test_python_version_is_recorded(inputs: AnnexIvInputs, pdf_text: str) -> None:
    assert sys.version.split()[0] in pdf_text


def test_fairness_that_could_not_be_measured_is_said_plainly(inputs: AnnexIvInputs) -> None:
    """Issue 16, case 1: the document said "Fairness flags: none" when nothing had been compared."""
    reason = "SEX: fewer than two groups have at least 100 test rows (compared: male; too small: female n=70)"
    attributes = [a.model_copy(update={"not_evaluable": reason if a.attribute == "SEX" else None})
                  for a in inputs.fairness.attributes]  # fmt: skip
    fair = inputs.fairness.model_copy(update={"attributes": attributes})
    checks = inputs.checks.model_copy(
        update={
            "checks": [
                c.model_copy(update={"passed": False, "status": "not_evaluable", "reason": reason})
                if c.name in {"Bias disparity", "Fairness flags"}
                else c
                for c in inputs.checks.checks
            ]
        }
    )
    html = annex_iv.render_html(inputs.model_copy(update={"fairness": fair, "checks": checks})).html
    assert "Fairness could not be measured, so the fairness checks do not pass:" in html
    assert html.count("NOT EVALUABLE") == 2
    assert "failed: Bias disparity (not evaluable), Fairness flags (not evaluable)" in html
    assert "too small: female n=70" in html
    assert "NOT EVALUABLE (" in model_card.model_card(inputs.model_copy(update={"fairness": fair, "checks": checks}))
