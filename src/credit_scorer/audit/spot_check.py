"""``credit-scorer audit spot-check``: the QA lead's quarterly spot-check of approval JSON files (SOP §5).

Draws approval records of one quarter reproducibly (``random.Random(seed)`` over the
quarter's approval files sorted by timestamp and name; the seed is in the report) and
checks each against the SOP:

- ``integrity``: the file is the one entered in the ledger (same sha256);
- ``fields``: every SOP §3 field is present (and a deployment URL for a deployed approval);
- ``thresholds``: the thresholds in force (the version the record names, else the version
  in force at its timestamp, else the record's own) are the limits recorded, the recorded
  values are the summaries' metrics, and recomputing pass/fail gives ``threshold_checks``;
- ``rationale``: a non-empty rationale;
- ``tester sign-off``: an approval has the tester's sign-off, given no later than the
  decision, and the sign-off record it names says the same;
- ``separation of duties``: submitter, tester and approver are three different people;
- ``deployed = approved``: every release-log row of the approval (and of its release)
  deployed the approved model sha256, and a deployed approval has its row; after a failed
  deployment, each retry (``deploy_retries/``) is ledgered, retried that deployment with the
  approved model and not by the submitter, and the rows citing the approval are at its URLs;
- ``override``: an approval over a failed check has ``threshold_override: true`` and an
  ``override_rationale``.

The report is written as Markdown and HTML under ``audit/spot_check_<quarter>_<date>``
in the store and both files are entered in the ledger (kind ``spot_check``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from credit_scorer.audit.spot_check_rules import (
    CHECK_NAMES,
    Context,
    Finding,
    RetryFile,
    SampledRecord,
    check_record,
)
from credit_scorer.audit.verify import read_rows_tolerant
from credit_scorer.core.errors import CreditScorerError
from credit_scorer.records import ledger
from credit_scorer.records.deploy_retries import DeployRetryRecord
from credit_scorer.records.layout import APPROVALS_DIR, AUDIT_DIR, DEPLOY_RETRIES_DIR, SIGNOFFS_DIR
from credit_scorer.records.models import SignoffRecord, iso_utc, utc_now
from credit_scorer.records.store import ComplianceStore, StoreError
from credit_scorer.records.thresholds import history

AUDIT_LOCK = "audit"
_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")
_FILE_STAMP = re.compile(r"approval_(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})")


class SpotCheckError(CreditScorerError, ValueError):
    """A spot-check option is invalid; names the option."""


@dataclass(frozen=True)
class SpotCheckReport:
    """What was drawn, what was found, where the report is."""

    quarter: str
    seed: int
    requested: int
    population: int
    sample: list[str]
    findings: list[Finding]
    checked_at: str
    by: str | None
    md_path: str
    html_path: str

    @property
    def ok(self) -> bool:
        """True when no sampled record has a finding."""
        return not self.findings


# ---------------------------------------------------------------------------
# Quarter and sample (pure)
# ---------------------------------------------------------------------------
def quarter_bounds(quarter: str) -> tuple[str, str]:
    """``2026Q4`` → (``2026-10-01T00:00:00Z``, ``2027-01-01T00:00:00Z``); SpotCheckError naming --quarter."""
    match = _QUARTER.match(quarter.strip().upper())
    if not match:
        raise SpotCheckError(f"--quarter {quarter!r} is not a quarter like 2026Q4")
    year, q = int(match.group(1)), int(match.group(2))
    start = f"{year:04d}-{3 * q - 2:02d}-01T00:00:00Z"
    end = f"{year + 1:04d}-01-01T00:00:00Z" if q == 4 else f"{year:04d}-{3 * q + 1:02d}-01T00:00:00Z"
    return start, end


def quarter_of(moment: datetime) -> str:
    """The quarter a moment falls in (UTC), e.g. ``2026Q4``."""
    utc = moment.astimezone(UTC)
    return f"{utc.year}Q{(utc.month - 1) // 3 + 1}"


def draw_sample(population: list[SampledRecord], size: int, seed: int) -> list[SampledRecord]:
    """``size`` records (all when fewer) drawn with ``random.Random(seed)``, in population order."""
    ordered = sorted(population, key=lambda r: (r.timestamp, r.path))
    picked = sorted(random.Random(seed).sample(range(len(ordered)), min(size, len(ordered))))
    return [ordered[i] for i in picked]


# ---------------------------------------------------------------------------
# Reading, running, writing
# ---------------------------------------------------------------------------
def quarter_population(store: ComplianceStore, quarter: str) -> tuple[list[SampledRecord], list[Finding]]:
    """The approval files of a quarter (by record timestamp, else the file name's), and unreadable files."""
    start, end = quarter_bounds(quarter)
    population: list[SampledRecord] = []
    unreadable: list[Finding] = []
    for path in store.list(APPROVALS_DIR, ".json"):
        stem = path.rsplit("/", 1)[-1].removesuffix(".json")
        stamp = _FILE_STAMP.match(stem)
        named_at = f"{stamp.group(1)}T{stamp.group(2)}:{stamp.group(3)}:{stamp.group(4)}Z" if stamp else ""
        try:
            content = store.read_bytes(path)
            raw: object = json.loads(content)
            problem = "" if isinstance(raw, dict) else f"not a JSON object: {str(raw)[:80]}"
        except (ValueError, StoreError) as exc:
            raw, problem = None, f"not readable JSON: {exc}"
        if not isinstance(raw, dict):
            if start <= named_at < end:
                unreadable.append(Finding(stem, path, "json", "fields", problem))
            continue
        timestamp = raw.get("timestamp")
        when = timestamp if isinstance(timestamp, str) and timestamp else named_at
        if start <= when < end:
            population.append(SampledRecord(path, when, raw, hashlib.sha256(content).hexdigest()))
    return population, unreadable


def load_context(store: ComplianceStore) -> Context:
    """Threshold history, release-log rows, sign-off records and retried deployments."""
    signoffs: dict[str, SignoffRecord] = {}
    for path in store.list(SIGNOFFS_DIR, ".json"):
        try:
            record = SignoffRecord.model_validate_json(store.read_bytes(path))
        except ValidationError:
            continue  # audit verify reports a damaged sign-off file
        signoffs[record.signoff_id] = record
    retries: list[RetryFile] = []
    for path in store.list(DEPLOY_RETRIES_DIR, ".json"):
        content = store.read_bytes(path)
        try:
            retries.append(RetryFile(path, DeployRetryRecord.model_validate_json(content), ledger.sha256_hex(content)))
        except ValidationError:
            continue  # audit verify reports a damaged retry record
    rows, _ = read_rows_tolerant(store)  # audit verify reports rows that do not parse
    raw_ledger = store.read_bytes(ledger.LEDGER_FILE) if store.exists(ledger.LEDGER_FILE) else b""
    entries, _ = ledger.parse_ledger(raw_ledger)  # audit verify reports the chain's problems
    return Context(
        versions=history(store),
        rows=[row for _, row in rows],
        signoffs=signoffs,
        ledgered={e.path: e.record_sha256 for e in entries},
        retries=retries,
    )


def spot_check(
    store: ComplianceStore,
    sample: int,
    seed: int | None = None,
    quarter: str | None = None,
    by: str | None = None,
    at: datetime | None = None,
) -> SpotCheckReport:
    """Draw ``sample`` approvals of ``quarter`` (default: the current one), check them, write and ledger the report."""
    if sample < 1:
        raise SpotCheckError(f"--sample must be at least 1, got {sample}")
    moment = at or utc_now()
    chosen_quarter = (quarter or quarter_of(moment)).strip().upper()
    chosen_seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
    population, unreadable = quarter_population(store, chosen_quarter)
    drawn = draw_sample(population, sample, chosen_seed)
    context = load_context(store)
    findings = list(unreadable)
    for sampled in drawn:
        findings += check_record(sampled, context)
    draft = SpotCheckReport(
        quarter=chosen_quarter,
        seed=chosen_seed,
        requested=sample,
        population=len(population),
        sample=[r.approval_id for r in drawn],
        findings=findings,
        checked_at=iso_utc(moment),
        by=by,
        md_path="",
        html_path="",
    )
    return write_report(store, draft)


def write_report(store: ComplianceStore, report: SpotCheckReport) -> SpotCheckReport:
    """Write the Markdown and HTML reports (never overwriting) and enter both in the ledger."""
    stem = f"spot_check_{report.quarter}_{report.checked_at[:10]}"
    with store.lock(AUDIT_LOCK):
        signer = ledger.signer_for(store)
        md_path, html_path = _free_report_paths(store, stem)
        done = dataclasses.replace(report, md_path=md_path, html_path=html_path)
        md = render_markdown(done).encode("utf-8")
        page = render_html(done).encode("utf-8")
        ledger.commit(store, "spot_check", md_path, md, signer=signer)
        ledger.commit(store, "spot_check", html_path, page, signer=signer)
    return done


def _free_report_paths(store: ComplianceStore, stem: str) -> tuple[str, str]:
    """``audit/<stem>.md`` and ``.html``, or ``<stem>_2`` … when a report of that day exists (call under the lock)."""
    for n in range(1, 1000):
        name = stem if n == 1 else f"{stem}_{n}"
        md_path, html_path = f"{AUDIT_DIR}/{name}.md", f"{AUDIT_DIR}/{name}.html"
        if not store.exists(md_path) and not store.exists(html_path):
            return md_path, html_path
    raise StoreError(f"more than 999 spot-check reports named {stem}* in {AUDIT_DIR}/")


def _by_record(report: SpotCheckReport) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = {}
    for finding in report.findings:
        grouped.setdefault(finding.approval_id, []).append(finding)
    return grouped


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(report: SpotCheckReport) -> str:
    """The report as Markdown (pure)."""
    grouped = _by_record(report)
    verdict = "no findings" if report.ok else f"{len(report.findings)} findings"
    lines = [
        f"# Spot-check of approval records, {report.quarter}",
        "",
        f"- Checked at: {report.checked_at}" + (f" by {report.by}" if report.by else ""),
        f"- Quarter: {report.quarter} (approval records by their timestamp)",
        f"- Sample: {len(report.sample)} of {report.population} records (asked for {report.requested}), "
        f"seed {report.seed}",
        f"- Reproduce: `credit-scorer audit spot-check --sample {report.requested} --seed {report.seed} "
        f"--quarter {report.quarter}`",
        f"- Verdict: **{verdict}**",
        f"- Checks (SOP §3, §2, §1): {', '.join(CHECK_NAMES)}",
        "",
        "## Sampled records",
        "",
        "| approval | findings |",
        "|---|---|",
    ]
    lines += [f"| {_md(a)} | {len(grouped.get(a, [])) or 'none'} |" for a in report.sample]
    unsampled = [a for a in grouped if a not in report.sample]
    lines += [f"| {_md(a)} (unreadable) | {len(grouped[a])} |" for a in unsampled]
    lines += ["", "## Findings", ""]
    if report.ok:
        lines.append("None.")
    else:
        lines += ["| approval | file | field | check | finding |", "|---|---|---|---|---|"]
        lines += [
            f"| {_md(f.approval_id)} | {_md(f.file)} | {_md(f.field)} | {_md(f.check)} | {_md(f.message)} |"
            for f in report.findings
        ]
    return "\n".join(lines) + "\n"


def render_html(report: SpotCheckReport) -> str:
    """The report as a self-contained HTML page (pure)."""
    e = html.escape
    grouped = _by_record(report)
    verdict = "no findings" if report.ok else f"{len(report.findings)} findings"
    sampled = "".join(f"<tr><td>{e(a)}</td><td>{len(grouped.get(a, [])) or 'none'}</td></tr>" for a in report.sample)
    found = "".join(
        f"<tr><td>{e(f.approval_id)}</td><td>{e(f.file)}</td><td>{e(f.field)}</td>"
        f"<td>{e(f.check)}</td><td>{e(f.message)}</td></tr>"
        for f in report.findings
    )
    by = f" by {e(report.by)}" if report.by else ""
    findings_html = (
        "<p>None.</p>"
        if report.ok
        else "<table><tr><th>approval</th><th>file</th><th>field</th><th>check</th><th>finding</th></tr>"
        f"{found}</table>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Spot-check {e(report.quarter)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:.3em .6em;text-align:left;vertical-align:top}</style></head><body>"
        f"<h1>Spot-check of approval records, {e(report.quarter)}</h1>"
        f"<p>Checked at {e(report.checked_at)}{by}. Sample: {len(report.sample)} of {report.population} "
        f"records (asked for {report.requested}), seed {report.seed}. Verdict: <strong>{e(verdict)}</strong>.</p>"
        f"<p>Reproduce: <code>credit-scorer audit spot-check --sample {report.requested} --seed {report.seed} "
        f"--quarter {e(report.quarter)}</code></p>"
        f"<p>Checks: {e(', '.join(CHECK_NAMES))}.</p>"
        f"<h2>Sampled records</h2><table><tr><th>approval</th><th>findings</th></tr>{sampled}</table>"
        f"<h2>Findings</h2>{findings_html}</body></html>\n"
    )
