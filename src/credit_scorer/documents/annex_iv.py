"""EU AI Act Annex IV technical documentation, model card and SBOM of one release.

Everything here is pure: :func:`render_html`, :func:`render_pdf`, :func:`model_card` and
:func:`sbom` turn :class:`~credit_scorer.documents.inputs.AnnexIvInputs` into text or
bytes and write nothing; saving is the caller's job. The same inputs give the same
bytes. Facts only the provider can supply are shown as visible "TO BE COMPLETED"
markers and counted in :attr:`RenderedDocument.missing_facts`, never invented.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Final

import jinja2
import numpy as np
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict

from credit_scorer.core.settings import FACTS_ENV, temporarily
from credit_scorer.documents import charts
from credit_scorer.documents.inputs import DEFAULT_FACTS_FILE, AnnexIvInputs, ProviderFacts
from credit_scorer.domain.checks import ThresholdCheck
from credit_scorer.domain.config import ColumnSpec
from credit_scorer.domain.fairness import AttributeFairness
from credit_scorer.domain.train import THRESHOLD_GRID
from credit_scorer.records.people import RULE_DISTINCT, RULE_ROLE, RULE_SIGNOFF

TEMPLATE: Final = "annex_iv.html.j2"
STYLESHEET: Final = "annex_iv.css"
TITLE: Final = "EU AI Act Annex IV technical documentation"
SYSTEM_NAME: Final = "credit-scorer — consumer credit default scoring"
TO_BE_COMPLETED: Final = "TO BE COMPLETED"

SECTION_HEADINGS: Final = (
    "General description of the AI system",
    "Detailed description of the elements of the AI system and of the process for its development",
    "Monitoring, functioning and control",
    "Appropriateness of the performance metrics",
    "Risk management system",
    "Relevant changes over the lifecycle",
    "Harmonised standards applied",
    "EU declaration of conformity",
    "Post-market monitoring plan",
)
"""Annex IV points 1 to 9, in order; the document numbers them ``1`` … ``9``."""

FACT_DESCRIPTIONS: Final[dict[str, str]] = {
    "provider": "name and address of the provider",
    "contact": "contact point of the provider for this AI system",
    "intended_purpose": "intended purpose of the AI system",
    "deployer_instructions": "instructions for use for deployers",
    "hardware_and_forms_of_release": "hardware it runs on and forms in which it is placed on the market",
    "metric_rationale": "why the chosen performance metrics are appropriate",
    "standards_applied": "harmonised standards or other specifications applied",
    "declaration_of_conformity": "reference to the EU declaration of conformity",
    "post_market_monitoring": "provider's post-market monitoring arrangements (owners, data sources, reporting)",
    "cybersecurity_measures": "cybersecurity measures",
}
"""What each :class:`ProviderFacts` field is, as the "TO BE COMPLETED" marker names it."""

COUNT_CHECKS: Final = frozenset({"Fairness flags"})
"""Checks whose value and limit are counts, shown without decimals."""

KEY_PACKAGES: Final = ("zenml", "lightgbm", "scikit-learn", "fairlearn", "pandas", "numpy", "pandera", "weasyprint")
"""Packages shown in §1; the SBOM lists every package."""

THIRD_PARTY_TOOLS: Final = (
    ("zenml", "pipeline orchestration, run metadata, artifacts and model versions"),
    ("lightgbm", "gradient-boosted decision trees (the model)"),
    ("scikit-learn", "stratified splits and test metrics"),
    ("fairlearn", "group-fairness metrics"),
    ("pandera", "data validation against the dataset spec"),
    ("pandas", "tabular data handling"),
    ("numpy", "numerical computation"),
    ("fastapi", "scoring endpoint"),
    ("weasyprint", "this document (HTML to PDF)"),
    ("matplotlib", "charts in this document"),
)

PIPELINE_STEPS: Final = (
    ("load_data", "read the data file and check its sha256 against the dataset spec"),
    (
        "validate_data",
        "check every column against the spec (type, range, codes, no missing values); map undocumented codes",
    ),
    ("open_release_ticket", "open the release ticket once the data has passed validation"),
    ("split_data", "stratified, seeded train / validation / test split"),
    ("train_model", "fit LightGBM on train; early stopping and decision threshold on validation only"),
    ("evaluate_model", "test-split metrics (touches the test split once)"),
    ("assess_fairness", "approval rates and error rates per protected group (fairlearn)"),
    ("risk_assessment", "evaluate the risk register on this run's measurements (Art. 9)"),
    ("check_thresholds", "compare the results with the Model Approval Thresholds fixed before testing"),
    ("generate_annex_iv", "render this document, the model card and the SBOM; store them with their sha256"),
    ("prepare_gate", "store the gate inputs and show the gate summary"),
    ("approve_deployment", "human decision at the release gate (automated, interactive or paused)"),
    ("deploy_model", "store the model by sha256, start the endpoint, write the approval record and release log"),
)
"""The ``training_pipeline`` steps in order, as §2 lists them."""

ROLE_DUTIES: Final = {
    "submitter": "ML engineer: runs training_pipeline, reads metrics, may roll back",
    "tester": 'QA lead: reviews this document and the metrics, records the "Tester ✓" sign-off',
    "approver": "AI compliance officer: approves or rejects the release with a rationale",
    "auditor": "internal audit / regulator: verifies records",
}

SOD_RULES: Final = (RULE_ROLE, RULE_DISTINCT, RULE_SIGNOFF)


SOURCE_DATE_EPOCH: Final = "SOURCE_DATE_EPOCH"
_CREATED_META: Final = re.compile(r'<meta name="dcterms\.created" content="([^"]*)">')
_RENDER_LOCK: Final = threading.Lock()

_PDF_FETCH_PROTOCOLS: Final = ("data",)
"""The PDF renderer may only read ``data:`` URLs (the inlined charts): no file or network access."""


class RenderedDocument(BaseModel):
    """The Annex IV document as HTML, and the provider facts it still lacks."""

    model_config = ConfigDict(frozen=True)

    html: str
    missing_facts: list[str]


@dataclass(frozen=True)
class _GroupRow:
    group: str
    n: int
    default_rate: float | None
    approval_rate: float
    true_positive_rate: float | None
    false_positive_rate: float | None
    accuracy: float | None
    sufficient_sample: bool


@dataclass(frozen=True)
class _AttributeView:
    fairness: AttributeFairness
    rows: list[_GroupRow]
    chart: str


@dataclass(frozen=True)
class _ColumnRow:
    name: str
    role: str
    type: str
    valid: str
    description: str


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------
def _f4(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _count(value: int) -> str:
    return f"{value:,}"


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def check_value(check: ThresholdCheck) -> str:
    return f"{check.value:.0f}" if check.name in COUNT_CHECKS else f"{check.value:.4f}"


def check_limit(check: ThresholdCheck) -> str:
    return f"{check.limit:.0f}" if check.name in COUNT_CHECKS else f"{check.limit:.4f}"


def _breakable(text: str) -> Markup:
    """Escaped text that may wrap after ``.`` or ``_`` before a letter (long identifiers in narrow table cells)."""
    return Markup(re.sub(r"([._])(?=[A-Za-z])", r"\1<wbr>", str(escape(text))))  # input escaped first


def canonical_name(name: str) -> str:
    """PEP 503 normalised package name, as purls and lookups use it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _version(packages: dict[str, str], name: str) -> str:
    wanted = canonical_name(name)
    for given, version in packages.items():
        if canonical_name(given) == wanted:
            return version
    return "not recorded"


def _is_missing(value: str | None) -> bool:
    return value is None or not value.strip()


def missing_facts(facts: ProviderFacts) -> list[str]:
    """Names of the provider facts still to be supplied (None or blank), in field order."""
    return [name for name in ProviderFacts.model_fields if _is_missing(getattr(facts, name))]


def _svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


# ---------------------------------------------------------------------------
# Views computed from the inputs
# ---------------------------------------------------------------------------
def _group_rows(inputs: AnnexIvInputs, attribute: AttributeFairness) -> list[_GroupRow]:
    """The fairness rows of one attribute, with each group's default rate and accuracy from the test predictions."""
    predictions = inputs.predictions
    labels = np.asarray(predictions.groups.get(attribute.attribute, []), dtype=object)
    proba = np.asarray(predictions.default_probability, dtype=np.float64)
    defaulted = np.asarray(predictions.defaulted, dtype=np.int8)
    have_rows = labels.shape == proba.shape
    rows = []
    for group in attribute.groups:
        mask = labels == group.group if have_rows else np.zeros(0, dtype=bool)
        measured = bool(have_rows and mask.any())
        correct = (proba[mask] >= inputs.decision_threshold) == (defaulted[mask] == 1) if measured else None
        rows.append(
            _GroupRow(
                group=group.group,
                n=group.n,
                default_rate=float(defaulted[mask].mean()) if measured else None,
                approval_rate=group.approval_rate,
                true_positive_rate=group.true_positive_rate,
                false_positive_rate=group.false_positive_rate,
                accuracy=float(correct.mean()) if correct is not None else None,
                sufficient_sample=group.sufficient_sample,
            )
        )
    return rows


def _attribute_views(inputs: AnnexIvInputs) -> list[_AttributeView]:
    predictions = inputs.predictions
    views = []
    for attribute in inputs.fairness.attributes:
        labels = predictions.groups.get(attribute.attribute)
        chart = ""
        if labels is not None and len(labels) == len(predictions.default_probability):
            chart = _svg_data_uri(
                charts.approval_rate_svg(
                    attribute.attribute,
                    labels,
                    predictions.default_probability,
                    inputs.decision_threshold,
                    order=predictions.group_order.get(attribute.attribute, []),
                    min_group_size=inputs.fairness.min_group_size,
                )
            )
        views.append(_AttributeView(fairness=attribute, rows=_group_rows(inputs, attribute), chart=chart))
    return views


def _column_role(inputs: AnnexIvInputs, name: str) -> str:
    spec = inputs.spec
    protected = {a.column for a in spec.protected_attributes}
    if name == spec.target.column:
        return f"target ({spec.target.default_value} = defaulted)"
    if name in spec.id_columns:
        return "identifier, not used"
    if name in spec.model_inputs:
        return "model input" + (", protected attribute" if name in protected else "")
    if name in protected:
        return "protected attribute, not a model input"
    return "not used"


def _valid_values(column: ColumnSpec) -> str:
    parts = []
    if column.min is not None or column.max is not None:
        low = "−∞" if column.min is None else _number(column.min)
        high = "∞" if column.max is None else _number(column.max)
        parts.append(f"{low} … {high}")
    if column.codes is not None:
        parts.append("; ".join(f"{code} = {meaning}" for code, meaning in column.codes.items()))
    if column.undocumented:
        treatment = [
            f"{code} kept as is" if code == mapped else f"{code} → {mapped}"
            for code, mapped in sorted(column.undocumented.items())
        ]
        parts.append("Undocumented codes accepted: " + "; ".join(treatment))
    return ". ".join(parts) if parts else "any finite value"


def _merged_description(names: list[str], descriptions: list[str]) -> str:
    """One description for columns that share a spec, e.g. ``bill amount: BILL_AMT1 Sep 2005, BILL_AMT2 Aug 2005``."""
    if len(set(descriptions)) == 1:
        return descriptions[0]
    heads = {d.rpartition(", ")[0] for d in descriptions}
    if len(heads) == 1 and "" not in heads:
        tails = [d.rpartition(", ")[2] for d in descriptions]
        return f"{heads.pop()}: " + ", ".join(f"{n} {t}" for n, t in zip(names, tails, strict=True))
    return "; ".join(f"{n}: {d}" for n, d in zip(names, descriptions, strict=True) if d)


def _column_rows(inputs: AnnexIvInputs) -> list[_ColumnRow]:
    """Input specification: each column with its role and valid values; neighbours with the same spec share a row."""
    groups: list[tuple[str, str, str, list[str], list[str]]] = []
    for name, column in inputs.spec.columns.items():
        role, valid = _column_role(inputs, name), _valid_values(column)
        if groups and groups[-1][:3] == (role, column.type, valid):
            groups[-1][3].append(name)
            groups[-1][4].append(column.description)
        else:
            groups.append((role, column.type, valid, [name], [column.description]))
    return [
        _ColumnRow(
            name=", ".join(names),
            role=role,
            type=kind,
            valid=valid,
            description=_merged_description(names, descriptions),
        )
        for role, kind, valid, names, descriptions in groups
    ]


def _request_fields(inputs: AnnexIvInputs) -> list[str]:
    """Fields ``POST /predict`` needs: the model inputs, then any other operand of a derived feature."""
    fields = list(inputs.spec.model_inputs)
    for derived in inputs.spec.derived_features:
        for column in (derived.numerator, derived.denominator):
            if column not in fields:
                fields.append(column)
    return fields


def _hazard_trigger(inputs: AnnexIvInputs, measure: str) -> str | None:
    """The risk-register trigger on a measurement, e.g. ``evaluation.auc < 0.75``, when the register has one."""
    for hazard in inputs.risk.hazards:
        if hazard.trigger.split(" ", 1)[0] == measure:
            return f"{hazard.trigger} ({hazard.id})"
    return None


def _threshold_grid() -> str:
    """The candidate decision thresholds as text, e.g. ``0.020 … 0.980 in steps of 0.005``."""
    step = float(THRESHOLD_GRID[1] - THRESHOLD_GRID[0])
    return f"{THRESHOLD_GRID[0]:.3f} … {THRESHOLD_GRID[-1]:.3f} in steps of {step:.3f}"


def _undocumented_meaning(inputs: AnnexIvInputs, column: str, code: int) -> str:
    codes = inputs.spec.columns[column].codes if column in inputs.spec.columns else None
    meaning = (codes or {}).get(code)
    return f"{code} ({meaning})" if meaning else str(code)


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------
def _read_template(name: str) -> str:
    return resources.files("credit_scorer.documents").joinpath("templates", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_read_template),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        f4=_f4,
        pct=_pct,
        count=_count,
        version=_version,
        breakable=_breakable,
        check_value=check_value,
        check_limit=check_limit,
    )
    return env


def render_html(inputs: AnnexIvInputs) -> RenderedDocument:
    """Render the Annex IV document as self-contained HTML (CSS and charts inlined); pure."""
    predictions = inputs.predictions
    missing = missing_facts(inputs.facts)
    context = {
        "inputs": inputs,
        "title": TITLE,
        "system_name": SYSTEM_NAME,
        "headings": SECTION_HEADINGS,
        "css": Markup(_read_template(STYLESHEET)),  # our own packaged stylesheet
        "facts": {name: getattr(inputs.facts, name) for name in ProviderFacts.model_fields},
        "missing": missing,
        "fact_descriptions": FACT_DESCRIPTIONS,
        "facts_file": DEFAULT_FACTS_FILE,
        "facts_env": FACTS_ENV,
        "to_be_completed": TO_BE_COMPLETED,
        "key_packages": KEY_PACKAGES,
        "third_party_tools": THIRD_PARTY_TOOLS,
        "pipeline_steps": PIPELINE_STEPS,
        "role_duties": ROLE_DUTIES,
        "roles": [*ROLE_DUTIES, *(r for r in inputs.people_by_role if r not in ROLE_DUTIES)],
        "sod_rules": SOD_RULES,
        "attributes": _attribute_views(inputs),
        "columns": _column_rows(inputs),
        "request_fields": _request_fields(inputs),
        "undocumented_meaning": lambda column, code: _undocumented_meaning(inputs, column, code),
        "protected_excluded": [a for a in inputs.spec.protected_attributes if a.column not in inputs.spec.model_inputs],
        "threshold_grid": _threshold_grid(),
        "auc_trigger": _hazard_trigger(inputs, "evaluation.auc"),
        "ece_trigger": _hazard_trigger(inputs, "evaluation.expected_calibration_error"),
        "roc_chart": _svg_data_uri(
            charts.roc_curve_svg(predictions.defaulted, predictions.default_probability, inputs.decision_threshold)
        ),
        "calibration_chart": _svg_data_uri(
            charts.calibration_curve_svg(predictions.defaulted, predictions.default_probability)
        ),
        "score_chart": _svg_data_uri(
            charts.score_distribution_svg(
                predictions.defaulted, predictions.default_probability, inputs.decision_threshold
            )
        ),
    }
    html = _environment().get_template(TEMPLATE).render(context)
    return RenderedDocument(html=html, missing_facts=missing)


def _created_epoch(html: str) -> int:
    """Seconds since 1970 of the document's ``dcterms.created`` meta (``generated_at``); 0 when absent."""
    found = _CREATED_META.search(html)
    if found is None:
        return 0
    try:
        created = datetime.fromisoformat(found.group(1))
    except ValueError:
        return 0
    return max(int(created.timestamp()), 0)


@contextmanager
def _source_date_epoch(seconds: int) -> Iterator[None]:
    """Set ``SOURCE_DATE_EPOCH`` while rendering, then restore it.

    fontTools, which WeasyPrint uses to subset fonts, stamps each embedded font with the
    current time unless this variable is set; without it two renders of the same HTML differ.
    A lock keeps concurrent renders in this process from restoring each other's value.
    """
    with _RENDER_LOCK, temporarily(SOURCE_DATE_EPOCH, str(seconds)):
        yield


def render_pdf(html: str) -> bytes:
    """Render the HTML from :func:`render_html` to PDF; the same HTML always gives the same bytes.

    Nothing in the file comes from the clock: the PDF creation date is the document's
    ``dcterms.created`` meta (the run's ``generated_at``), the embedded font subsets are
    stamped with that same time (``SOURCE_DATE_EPOCH``), and the file identifier is derived
    from the HTML. Only ``data:`` URLs (the inlined charts) are fetched: no file or network access.
    """
    from weasyprint import HTML  # type: ignore[import-untyped,unused-ignore]  # slow import, kept off module import
    from weasyprint.urls import URLFetcher  # type: ignore[import-untyped,unused-ignore]

    identifier = hashlib.sha256(html.encode("utf-8")).hexdigest()[:32]
    document = HTML(string=html, url_fetcher=URLFetcher(allowed_protocols=_PDF_FETCH_PROTOCOLS))
    with _source_date_epoch(_created_epoch(html)):
        pdf = document.write_pdf(pdf_identifier=identifier.encode("ascii"))
    if not isinstance(pdf, bytes):  # write_pdf returns bytes when no target is given
        raise TypeError(f"WeasyPrint returned {type(pdf).__name__}, expected bytes")
    return pdf
