"""The SOP's checks of one sampled approval record (pure): what ``audit spot-check`` finds, field by field.

Each check returns the findings for one record (empty: it passed); :func:`check_record` runs them all.
See ``audit/spot_check.py`` for the sample, the population and the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from pydantic import ValidationError

from credit_scorer.records.deploy_retries import DeployRetryRecord
from credit_scorer.records.layout import SIGNOFFS_DIR
from credit_scorer.records.models import ApprovalRecord, SignoffRecord
from credit_scorer.records.release_log import LOG_FILE, ReleaseLogRow, normal_url
from credit_scorer.records.thresholds import ThresholdVersion, in_force_at

SOP_FIELDS: tuple[str, ...] = (
    "approval_id",
    "timestamp",
    "decision_mode",
    "approved",
    "approver",
    "rationale",
    "threshold_checks",
    "evaluation_summary",
    "risk_summary",
    "deployment_url",
)
SOP_NESTED: dict[str, tuple[str, ...]] = {
    "threshold_checks": ("Accuracy", "Bias disparity", "Risk score", "Fairness flags"),
    "evaluation_summary": ("accuracy", "auc", "f1", "fairness_flags"),
    "risk_summary": ("risk_level", "high_risk_factors"),
}
CHECKS: tuple[tuple[str, str, Literal[">=", "<="]], ...] = (
    ("Accuracy", "accuracy_min", ">="),
    ("Bias disparity", "bias_disparity_max", "<="),
    ("Risk score", "risk_score_max", "<="),
    ("Fairness flags", "fairness_flags_max", "<="),
)
CHECK_NAMES = (
    "integrity",
    "fields",
    "thresholds",
    "rationale",
    "tester sign-off",
    "separation of duties",
    "deployed = approved",
    "override",
)


@dataclass(frozen=True)
class Finding:
    """One way a sampled record departs from the SOP."""

    approval_id: str
    file: str
    field: str
    check: str
    message: str


@dataclass(frozen=True)
class SampledRecord:
    """An approval file of the quarter: its path, timestamp and parsed JSON."""

    path: str
    timestamp: str
    raw: dict[str, object]
    sha256: str

    @property
    def approval_id(self) -> str:
        """The record's id (its file name when the field is missing)."""
        value = self.raw.get("approval_id")
        return value if isinstance(value, str) else self.path.rsplit("/", 1)[-1].removesuffix(".json")


@dataclass(frozen=True)
class RetryFile:
    """A retry record of a failed deployment (``deploy_retries/``): its path, parsed record and sha256."""

    path: str
    record: DeployRetryRecord
    sha256: str


@dataclass(frozen=True)
class Context:
    """What the checks compare a record with."""

    versions: list[ThresholdVersion]
    rows: list[ReleaseLogRow]
    signoffs: dict[str, SignoffRecord]
    ledgered: dict[str, str]
    """sha256 of each ledgered file, by store path."""
    retries: list[RetryFile] = field(default_factory=list)


# ---------------------------------------------------------------------------
# The checks (pure)
# ---------------------------------------------------------------------------
def check_record(sampled: SampledRecord, context: Context) -> list[Finding]:
    """Every SOP finding for one sampled approval file."""
    findings = check_integrity(sampled, context.ledgered) + check_fields(sampled)
    try:
        record = ApprovalRecord.model_validate(sampled.raw)
    except ValidationError as exc:
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error["loc"]) or "json"
            findings.append(_finding(sampled, where, "fields", f"not a valid approval record: {error['msg']}"))
        return findings
    failed, threshold_findings = check_thresholds(sampled, record, context.versions)
    return (
        findings
        + threshold_findings
        + check_rationale(sampled, record)
        + check_signoff(sampled, record, context.signoffs)
        + check_distinct(sampled, record)
        + check_deployed(sampled, record, context.rows)
        + check_retries(sampled, record, context)
        + check_override(sampled, record, failed)
    )


def _finding(sampled: SampledRecord, field: str, check: str, message: str) -> Finding:
    return Finding(sampled.approval_id, sampled.path, field, check, message)


def check_integrity(sampled: SampledRecord, ledgered: dict[str, str]) -> list[Finding]:
    """The file is the one entered in the ledger."""
    recorded = ledgered.get(sampled.path)
    if recorded is None:
        return [_finding(sampled, "ledger", "integrity", "not in the ledger (added, or written without its entry)")]
    if recorded != sampled.sha256:
        return [_finding(sampled, "sha256", "integrity", f"changed since it was recorded (ledger: {recorded})")]
    return []


def check_fields(sampled: SampledRecord) -> list[Finding]:
    """Every SOP §3 field present; a deployed approval has its deployment URL."""
    raw = sampled.raw
    findings = [_finding(sampled, name, "fields", "SOP §3 field missing") for name in SOP_FIELDS if name not in raw]
    for parent, names in SOP_NESTED.items():
        value = raw.get(parent)
        if isinstance(value, dict):
            findings += [
                _finding(sampled, f"{parent}.{name}", "fields", "SOP §3 field missing")
                for name in names
                if name not in value
            ]
        elif parent in raw:
            findings.append(_finding(sampled, parent, "fields", "is not an object"))
    for name in ("approver", "approval_id", "timestamp"):
        value = raw.get(name)
        if name in raw and (not isinstance(value, str) or not value.strip()):
            findings.append(_finding(sampled, name, "fields", "is empty"))
    if raw.get("approved") is True and raw.get("deployment_url") is None and not raw.get("deployment_error"):
        findings.append(
            _finding(sampled, "deployment_url", "fields", "approved, but no deployment URL and no deployment error")
        )
    return findings


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def check_thresholds(
    sampled: SampledRecord, record: ApprovalRecord, versions: list[ThresholdVersion]
) -> tuple[list[str], list[Finding]]:
    """Recompute each check from the thresholds in force and the recorded metrics; return (failed, findings)."""
    findings: list[Finding] = []
    limits: dict[str, float] = dict(record.thresholds)
    source = "the record's own thresholds"
    version: ThresholdVersion | None = None
    if record.thresholds_version is not None:
        version = next((v for v in versions if v.version == record.thresholds_version), None)
        if version is None:
            findings.append(
                _finding(
                    sampled,
                    "thresholds_version",
                    "thresholds",
                    f"version {record.thresholds_version} is not in the threshold history",
                )
            )
    else:
        version = in_force_at(versions, record.timestamp)
    if version is not None:
        in_force = version.thresholds.model_dump()
        source = f"threshold version {version.version} ({version.path})"
        for key, limit in in_force.items():
            recorded = record.thresholds.get(key)
            if recorded is None or not _same(recorded, float(limit)):
                findings.append(
                    _finding(sampled, f"thresholds.{key}", "thresholds", f"is {recorded}, {source} says {limit}")
                )
        limits = {k: float(v) for k, v in in_force.items()}
    measured = {
        "Accuracy": record.evaluation_summary.accuracy,
        "Bias disparity": record.evaluation_summary.bias_disparity,
        "Risk score": record.risk_summary.overall_risk_score,
        "Fairness flags": float(len(record.evaluation_summary.fairness_flags)),
    }
    recorded_pass = record.threshold_checks.model_dump(by_alias=True)
    failed: list[str] = []
    for name, key, operator in CHECKS:
        value = measured[name]
        limit = limits.get(key)
        if limit is None:
            findings.append(_finding(sampled, f"thresholds.{key}", "thresholds", "missing"))
            continue
        passed = value >= limit if operator == ">=" else value <= limit
        detail = record.threshold_values.get(name)
        if detail is not None and detail.status == "not_evaluable":
            passed = False  # a value that could not be computed never passes, whatever the number says
        if not passed:
            failed.append(name)
        if detail is None:
            findings.append(_finding(sampled, f"threshold_values.{name}", "thresholds", "missing"))
        else:
            if not _same(detail.value, value):
                findings.append(
                    _finding(
                        sampled,
                        f"threshold_values.{name}.value",
                        "thresholds",
                        f"is {detail.value}, the summaries say {value}",
                    )
                )
            if not _same(detail.limit, limit) or detail.operator != operator:
                findings.append(
                    _finding(
                        sampled,
                        f"threshold_values.{name}.limit",
                        "thresholds",
                        f"is {detail.operator} {detail.limit}, {source}: {operator} {limit}",
                    )
                )
            if detail.passed != passed:
                findings.append(
                    _finding(
                        sampled,
                        f"threshold_values.{name}.passed",
                        "thresholds",
                        f"says {_verdict(detail.passed)}, "
                        f"recomputed {_recomputed(detail.status, value, operator, limit)}: {_verdict(passed)}",
                    )
                )
        if recorded_pass.get(name) != passed:
            findings.append(
                _finding(
                    sampled,
                    f"threshold_checks.{name}",
                    "thresholds",
                    f"says {_verdict(bool(recorded_pass.get(name)))}, "
                    f"recomputed {value} {operator} {limit}: {_verdict(passed)}",
                )
            )
    return failed, findings


def _recomputed(status: str | None, value: float, operator: str, limit: float) -> str:
    return "not evaluable" if status == "not_evaluable" else f"{value} {operator} {limit}"


def _verdict(passed: bool) -> str:
    return "pass" if passed else "fail"


def check_rationale(sampled: SampledRecord, record: ApprovalRecord) -> list[Finding]:
    """A non-empty rationale."""
    if record.rationale.strip():
        return []
    return [_finding(sampled, "rationale", "rationale", "is empty")]


def check_signoff(sampled: SampledRecord, record: ApprovalRecord, signoffs: dict[str, SignoffRecord]) -> list[Finding]:
    """An approval has the tester's sign-off, given at or before the decision, matching its sign-off record."""
    signoff = record.tester_signoff
    if signoff is None:
        if not record.approved:
            return []
        waived = " (waived in dev mode)" if record.dev_mode else ""
        return [_finding(sampled, "tester_signoff", "tester sign-off", f"approved without a tester sign-off{waived}")]
    findings: list[Finding] = []
    if signoff.signed_at > record.timestamp:
        findings.append(
            _finding(
                sampled,
                "tester_signoff.signed_at",
                "tester sign-off",
                f"signed off at {signoff.signed_at}, after the decision at {record.timestamp}",
            )
        )
    if signoff.signoff_id is not None:
        stored = signoffs.get(signoff.signoff_id)
        if stored is None:
            findings.append(
                _finding(
                    sampled,
                    "tester_signoff.signoff_id",
                    "tester sign-off",
                    f"{SIGNOFFS_DIR}/{signoff.signoff_id}.json is not in the store",
                )
            )
        elif (stored.tester, stored.timestamp, stored.release_id) != (
            signoff.tester,
            signoff.signed_at,
            record.release_id,
        ):
            findings.append(
                _finding(
                    sampled,
                    "tester_signoff",
                    "tester sign-off",
                    f"differs from {SIGNOFFS_DIR}/{signoff.signoff_id}.json "
                    f"({stored.tester} at {stored.timestamp} for {stored.release_id})",
                )
            )
    return findings


def check_distinct(sampled: SampledRecord, record: ApprovalRecord) -> list[Finding]:
    """Submitter, tester and approver are three different people."""
    actors = {"submitter": record.submitter, "approver": record.approver}
    if record.tester_signoff is not None:
        actors["tester_signoff.tester"] = record.tester_signoff.tester
    seen: dict[str, str] = {}
    findings: list[Finding] = []
    for duty, person in actors.items():
        key = person.strip().casefold()
        if key in seen:
            findings.append(
                _finding(sampled, duty, "separation of duties", f"{person!r} is also the record's {seen[key]}")
            )
        else:
            seen[key] = duty
    return findings


def check_deployed(sampled: SampledRecord, record: ApprovalRecord, rows: list[ReleaseLogRow]) -> list[Finding]:
    """Deployments citing the approval (or of its release) ran the approved model; a deployed approval is logged."""
    findings: list[Finding] = []
    cited = [(n, r) for n, r in enumerate(rows, start=1) if r.approval_id == record.approval_id]
    same_release = [
        (n, r) for n, r in enumerate(rows, start=1) if r.release_id == record.release_id and r.event == "release"
    ]
    for number, row in {n: r for n, r in cited + same_release}.items():
        if row.sha256 != record.model_sha256:
            findings.append(
                _finding(
                    sampled,
                    "model_sha256",
                    "deployed = approved",
                    f"{LOG_FILE} row {number} ({row.event}) deployed {row.sha256}, approved was {record.model_sha256}",
                )
            )
        if not record.approved and row.approval_id == record.approval_id:
            findings.append(
                _finding(
                    sampled, "approved", "deployed = approved", f"{LOG_FILE} row {number} deploys a rejected release"
                )
            )
    if record.approved and record.deployment_url and not cited:
        findings.append(
            _finding(
                sampled,
                "deployment_url",
                "deployed = approved",
                f"deployed at {record.deployment_url}, but {LOG_FILE} has no row for {record.approval_id}",
            )
        )
    return findings


def check_override(sampled: SampledRecord, record: ApprovalRecord, failed: list[str]) -> list[Finding]:
    """An approval over failed checks is an explicit, justified override."""
    if not record.approved or not failed:
        return []
    names = ", ".join(failed)
    if not record.threshold_override:
        return [
            _finding(
                sampled, "threshold_override", "override", f"approved although {names} failed, without an override"
            )
        ]
    if not (record.override_rationale or "").strip():
        return [_finding(sampled, "override_rationale", "override", f"override of {names} without a rationale")]
    return []


def check_retries(sampled: SampledRecord, record: ApprovalRecord, context: Context) -> list[Finding]:
    """Retries of the approval's failed deployment are ledgered, deploy the approved model and are not the
    submitter's; every release row citing the approval deploys at its URL or at a ledgered retry's."""
    findings: list[Finding] = []
    retries = [r for r in context.retries if r.record.approval_id == record.approval_id]
    vouched = {normal_url(record.deployment_url or "")}
    for retry in retries:
        name = retry.record.retry_id
        if context.ledgered.get(retry.path) != retry.sha256:
            findings.append(
                _finding(sampled, "deployment retry", "integrity", f"{retry.path} is not the ledgered file")
            )
            continue
        if retry.record.deployment_url:
            vouched.add(normal_url(retry.record.deployment_url))
        if not record.approved or record.deployment_url is not None:
            findings.append(
                _finding(
                    sampled, "deployment_url", "deployed = approved", f"{name} retries a deployment that did not fail"
                )
            )
        if (retry.record.release_id, retry.record.model_sha256) != (record.release_id, record.model_sha256):
            findings.append(
                _finding(
                    sampled,
                    "model_sha256",
                    "deployed = approved",
                    f"{name} deploys {retry.record.release_id} model {retry.record.model_sha256}",
                )
            )
        if not record.dev_mode and retry.record.retried_by.strip().casefold() == record.submitter.strip().casefold():
            findings.append(
                _finding(sampled, "submitter", "separation of duties", f"{name} was retried by the submitter")
            )
    for number, row in enumerate(context.rows, start=1):
        if (
            row.event == "release"
            and row.approval_id == record.approval_id
            and normal_url(row.deployment_url) not in vouched
        ):
            findings.append(
                _finding(
                    sampled,
                    "deployment_url",
                    "deployed = approved",
                    f"{LOG_FILE} row {number} deploys at {row.deployment_url}, which neither the approval nor a "
                    "ledgered retry of it records",
                )
            )
    return findings
