"""``credit-scorer audit verify``: is every record intact, ledgered, signed and consistent?

On top of the ledger's own checks (:func:`credit_scorer.records.ledger.verify`: every
hash recomputed, the chain, every signature against ``ledger/public_key.pem``, every
record file in the ledger and every entry's file present with its sha256, the release
log = header + ledgered rows) this checks what the records claim:

- each approval's ``model_sha256`` is the sha256 of ``models/<sha256>.json`` (when the
  model was stored, i.e. it was approved for deployment), its ``annex_iv_sha256`` the
  sha256 of the file at ``annex_iv_path``, its ``dataset_sha256`` the dataset hash found
  in ``releases/<release>/`` (where the release's files record one);
- every release-log row (release or rollback) names an approval record that approved
  the same model sha256 for the same release, dated no later than the row; a release row's URL is
  the approval's ``deployment_url`` or that of a retry record of that approval;
- each retry record (``deploy_retries/``) retries an approval that approved the same model for the
  same release and whose own deployment failed, after it; its model file has that sha256, and it
  records either a ``deployment_url`` or a ``deployment_error``;
- threshold versions are numbered 1, 2, 3 … and each approval's ``thresholds`` are the
  version it names;
- each approval's and retry's people registry version is ledgered, and its actors held their roles in it
  (whoever retried a deployment, the approver role).

Every problem names the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from credit_scorer.audit.person_signatures import check_person_signatures
from credit_scorer.records.deploy_retries import DeployRetryRecord
from credit_scorer.records.layout import APPROVALS_DIR, DEPLOY_RETRIES_DIR, MODELS_DIR, RELEASES_DIR, THRESHOLDS_DIR
from credit_scorer.records.ledger import (
    GENESIS_HASH,
    PUBLIC_KEY_FILE,
    Checkpoint,
    LedgerEntry,
    Problem,
    key_id_of,
    parse_public_pem,
    sha256_hex,
)
from credit_scorer.records.ledger_verify import errors
from credit_scorer.records.ledger_verify import verify_with_entries as ledger_verify
from credit_scorer.records.models import ApprovalRecord
from credit_scorer.records.people import People, Role, role_violation
from credit_scorer.records.people_registry import PeopleVersion, version_path
from credit_scorer.records.release_log import COLUMNS, LOG_FILE, ReleaseLogRow, normal_url, parse_rows, row_lines
from credit_scorer.records.store import ComplianceStore, StoreError
from credit_scorer.records.thresholds import ThresholdVersion

M = TypeVar("M", bound=BaseModel)
HashLookup = Callable[[str], "str | None"]
"""sha256 of a store file by path, None when it is missing."""
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MODEL_CARD_DATA = re.compile(r"## Data\s*\n\s*\n[^\n]*?sha256 `([0-9a-f]{64})`")


@dataclass(frozen=True)
class AuditReport:
    """The verdict of ``audit verify``."""

    problems: list[Problem]
    entries: int
    approvals: int
    release_rows: int
    threshold_versions: int
    head_seq: int
    head_hash: str
    key_id: str | None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        """The problems that fail verification."""
        return errors(self.problems)

    @property
    def warnings(self) -> list[Problem]:
        """What verification reports without failing (interrupted operations, an unpinned key)."""
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when nothing is wrong (warnings allowed)."""
        return not self.errors

    @property
    def summary(self) -> str:
        """``verified: N records, chain intact, signatures valid`` (with warnings counted) or the problems."""
        warned = len(self.warnings)
        note = f" ({warned} warning{'s' if warned != 1 else ''})" if warned else ""
        if self.ok:
            return f"verified: {self.entries} records, chain intact, signatures valid{note}"
        bad = self.errors
        files = len({p.file for p in bad})
        count = f"{len(bad)} problem{'s' if len(bad) != 1 else ''}"
        return f"{count} in {files} file{'s' if files != 1 else ''} ({self.entries} ledger entries checked){note}"


class _Hashes:
    """sha256 of store files, each read once."""

    def __init__(self, store: ComplianceStore) -> None:
        self.store = store
        self.cache: dict[str, str | None] = {}

    def of(self, path: str) -> str | None:
        if path not in self.cache:
            try:
                self.cache[path] = hashlib.sha256(self.store.read_bytes(path)).hexdigest()
            except (StoreError, OSError, ValueError):  # missing, or a path mangled by an edit
                self.cache[path] = None
        return self.cache[path]


def audit_verify(store: ComplianceStore, checkpoints: list[Checkpoint] | None = None) -> AuditReport:
    """Check the ledger and what every record claims; see the module docstring."""
    problems, found = ledger_verify(store, checkpoints or [])
    approvals, parse_problems = read_approval_files(store)
    problems += parse_problems
    hashes = _Hashes(store)
    dataset_hashes: dict[str, set[str]] = {}
    for path, record in approvals:
        if record.release_id not in dataset_hashes:
            dataset_hashes[record.release_id] = dataset_hashes_of_release(store, record.release_id)
        problems += check_approval_files(path, record, hashes.of, dataset_hashes[record.release_id])
    rows, row_problems = read_rows_tolerant(store)
    problems += row_problems
    by_id = {record.approval_id: (path, record) for path, record in approvals}
    retries, retry_problems = read_retry_files(store)
    problems += retry_problems
    problems += check_retries(retries, by_id, hashes.of)
    problems += check_release_rows(rows, by_id, hashes.of, [record for _, record in retries])
    versions, version_problems = read_threshold_versions(store)
    problems += version_problems
    problems += check_threshold_references(approvals, versions)
    problems += check_people_references(store, approvals, found, retries)
    problems += check_person_signatures(store, found)
    public_key = parse_public_pem(store.read_bytes(PUBLIC_KEY_FILE)) if store.exists(PUBLIC_KEY_FILE) else None
    head = found[-1] if found else None
    counts: dict[str, int] = {}
    for entry in found:
        counts[entry.kind] = counts.get(entry.kind, 0) + 1
    return AuditReport(
        problems=problems,
        entries=len(found),
        approvals=len(approvals),
        release_rows=len(rows),
        threshold_versions=len(versions),
        head_seq=head.seq if head else 0,
        head_hash=head.entry_hash if head else GENESIS_HASH,
        key_id=key_id_of(public_key) if public_key else None,
        counts=counts,
    )


def read_approval_files(store: ComplianceStore) -> tuple[list[tuple[str, ApprovalRecord]], list[Problem]]:
    """Every approval record that parses, and a problem naming each file that does not."""
    return _read_records(store, APPROVALS_DIR, ApprovalRecord, "approval_id", "approval record")


def read_retry_files(store: ComplianceStore) -> tuple[list[tuple[str, DeployRetryRecord]], list[Problem]]:
    """Every retry record that parses, and a problem naming each file that does not."""
    return _read_records(store, DEPLOY_RETRIES_DIR, DeployRetryRecord, "retry_id", "deployment retry record")


def _read_records(
    store: ComplianceStore, folder: str, model: type[M], id_field: str, what: str
) -> tuple[list[tuple[str, M]], list[Problem]]:
    """(path, record) of every file in ``folder`` that parses as ``model`` and whose id is its file name."""
    found: list[tuple[str, M]] = []
    problems: list[Problem] = []
    for path in store.list(folder, ".json"):
        try:
            record = model.model_validate_json(store.read_bytes(path))
        except ValidationError as exc:
            for error in exc.errors()[:5]:
                where = ".".join(str(p) for p in error["loc"]) or "json"
                problems.append(Problem(path, where, f"not a valid {what}: {error['msg']}"))
            continue
        stem = path.rsplit("/", 1)[-1].removesuffix(".json")
        if getattr(record, id_field) != stem:
            problems.append(Problem(path, id_field, f"is {getattr(record, id_field)!r}, the file name says {stem!r}"))
        found.append((path, record))
    return found, problems


def check_approval_files(
    path: str,
    record: ApprovalRecord,
    sha256_of: HashLookup,
    release_dataset_hashes: set[str],
) -> list[Problem]:
    """The model, Annex IV and dataset hashes an approval record claims, against the stored files."""
    problems: list[Problem] = []
    expected_model = f"{MODELS_DIR}/{record.model_sha256}.json"
    if record.model_path and record.model_path != expected_model:
        problems.append(Problem(path, "model_path", f"{record.model_path} is not the content address of model_sha256"))
    if record.model_path or (record.approved and record.deployment_url):
        model_file = record.model_path or expected_model
        actual = sha256_of(model_file)
        if actual is None:
            problems.append(Problem(path, "model_sha256", f"the model file {model_file} is missing from the store"))
        elif actual != record.model_sha256:
            problems.append(
                Problem(
                    path, "model_sha256", f"{model_file} has sha256 {actual}, the record says {record.model_sha256}"
                )
            )
    if record.annex_iv_sha256 is not None:
        if not record.annex_iv_path:
            problems.append(Problem(path, "annex_iv_path", "missing although annex_iv_sha256 is set"))
        else:
            actual = sha256_of(record.annex_iv_path)
            if actual is None:
                problems.append(Problem(path, "annex_iv_sha256", f"{record.annex_iv_path} is missing from the store"))
            elif actual != record.annex_iv_sha256:
                problems.append(
                    Problem(
                        path,
                        "annex_iv_sha256",
                        f"{record.annex_iv_path} has sha256 {actual}, the record says {record.annex_iv_sha256}",
                    )
                )
    if release_dataset_hashes and record.dataset_sha256 not in release_dataset_hashes:
        problems.append(
            Problem(
                path,
                "dataset_sha256",
                f"{record.dataset_sha256} is not the dataset recorded in {RELEASES_DIR}/{record.release_id}/ "
                f"({', '.join(sorted(release_dataset_hashes))})",
            )
        )
    return problems


def check_retries(
    retries: list[tuple[str, DeployRetryRecord]],
    approvals: dict[str, tuple[str, ApprovalRecord]],
    sha256_of: HashLookup,
) -> list[Problem]:
    """Each retry deploys, after it, the model of an approval whose own deployment failed; one outcome each."""
    problems: list[Problem] = []
    for path, retry in retries:
        if (retry.deployment_url is None) == (retry.deployment_error is None):
            problems.append(Problem(path, "deployment_url", "needs exactly one of deployment_url and deployment_error"))
        expected_model = f"{MODELS_DIR}/{retry.model_sha256}.json"
        actual = sha256_of(expected_model)
        if retry.model_path != expected_model:
            problems.append(Problem(path, "model_path", f"{retry.model_path} is not the content address of its model"))
        elif actual != retry.model_sha256:
            what = "is missing from the store" if actual is None else f"has sha256 {actual}"
            problems.append(Problem(path, "model_sha256", f"the model file {expected_model} {what}"))
        found = approvals.get(retry.approval_id)
        if found is None:
            problems.append(Problem(path, "approval_id", f"{retry.approval_id} is not in {APPROVALS_DIR}/"))
            continue
        approval_path, approval = found
        if not approval.approved:
            problems.append(Problem(path, "approval_id", f"{approval_path} did not approve the release"))
        if approval.deployment_url is not None:
            went_live = f"{approval_path} went live at {approval.deployment_url}: nothing to retry"
            problems.append(Problem(path, "approval_id", went_live))
        if (approval.release_id, approval.model_sha256) != (retry.release_id, retry.model_sha256):
            problems.append(
                Problem(
                    path,
                    "model_sha256",
                    f"retries {retry.release_id} model {retry.model_sha256}, but {approval_path} approved "
                    f"{approval.release_id} model {approval.model_sha256}",
                )
            )
        if retry.timestamp < approval.timestamp:
            early = f"{retry.timestamp} is before the approval at {approval.timestamp}"
            problems.append(Problem(path, "timestamp", early))
    return problems


def dataset_hashes_of_release(store: ComplianceStore, release_id: str) -> set[str]:
    """Dataset sha256 values recorded in ``releases/<release>/`` (JSON ``dataset_sha256`` keys, the model card)."""
    found: set[str] = set()
    for path in store.list(f"{RELEASES_DIR}/{release_id}"):
        if path.endswith(".json") and not path.endswith(".cdx.json"):
            try:
                found |= _dataset_keys(json.loads(store.read_bytes(path)))
            except (ValueError, StoreError, RecursionError):  # a damaged file is the ledger check's to report
                continue
        elif path.endswith("model_card.md"):
            match = _MODEL_CARD_DATA.search(store.read_text(path))
            if match:
                found.add(match.group(1))
    return found


def _dataset_keys(payload: object) -> set[str]:
    if isinstance(payload, dict):
        found = {v for k, v in payload.items() if k == "dataset_sha256" and isinstance(v, str)}
        for value in payload.values():
            found |= _dataset_keys(value)
        return found
    if isinstance(payload, list):
        return set().union(*(_dataset_keys(v) for v in payload)) if payload else set()
    return set()


def read_rows_tolerant(store: ComplianceStore) -> tuple[list[tuple[int, ReleaseLogRow]], list[Problem]]:
    """(row number, row) of every release-log row that parses, and a problem for each that does not."""
    if not store.exists(LOG_FILE):
        return [], []
    rows: list[tuple[int, ReleaseLogRow]] = []
    problems: list[Problem] = []
    text = store.read_bytes(LOG_FILE).decode("utf-8", errors="replace")
    for number, line in enumerate(row_lines(text), start=1):
        try:
            parsed = parse_rows(line)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            problems.append(Problem(LOG_FILE, f"row {number}: {where}", f"not a release-log row: {first['msg']}"))
            continue
        if len(parsed) != 1:
            problems.append(Problem(LOG_FILE, f"row {number}", f"not a row of {len(COLUMNS)} cells"))
            continue
        rows.append((number, parsed[0]))
    return rows, problems


def check_release_rows(
    rows: list[tuple[int, ReleaseLogRow]],
    approvals: dict[str, tuple[str, ApprovalRecord]],
    sha256_of: HashLookup,
    retries: Sequence[DeployRetryRecord] = (),
) -> list[Problem]:
    """Every release or rollback row follows an approval of the same model for the same release.

    A release row deploys at the approval's URL, or at the URL of a retry record of that approval.
    """
    retried = {(r.approval_id, normal_url(r.deployment_url)) for r in retries if r.deployment_url}
    problems: list[Problem] = []
    for number, row in rows:
        where = f"row {number} ({row.event} of {row.release_id})"
        found = approvals.get(row.approval_id)
        if found is None:
            problems.append(Problem(LOG_FILE, f"{where}: approval id", f"{row.approval_id} is not in {APPROVALS_DIR}/"))
            continue
        path, record = found
        if not record.approved:
            problems.append(Problem(LOG_FILE, f"{where}: approval id", f"{path} did not approve the release"))
        if record.model_sha256 != row.sha256:
            problems.append(
                Problem(
                    LOG_FILE,
                    f"{where}: sha256",
                    f"{row.sha256} was deployed, but {path} approved model {record.model_sha256}",
                )
            )
        if record.release_id != row.release_id:
            problems.append(Problem(LOG_FILE, f"{where}: release", f"{path} is the approval of {record.release_id}"))
        url = normal_url(row.deployment_url)
        own = normal_url(record.deployment_url or "")
        if row.event == "release" and url != own and (row.approval_id, url) not in retried:
            problems.append(
                Problem(
                    LOG_FILE,
                    f"{where}: deployment_url",
                    f"{row.deployment_url} is neither the deployment_url of {path} nor that of a retry record of it "
                    f"in {DEPLOY_RETRIES_DIR}/",
                )
            )
        if row.date < record.timestamp:
            problems.append(
                Problem(LOG_FILE, f"{where}: date", f"{row.date} is before the approval at {record.timestamp} ({path})")
            )
        if not _HEX64.match(row.sha256):
            problems.append(Problem(LOG_FILE, f"{where}: sha256", f"{row.sha256!r} is not a sha256"))
            continue
        model_file = f"{MODELS_DIR}/{row.sha256}.json"
        actual = sha256_of(model_file)
        if actual is None:
            problems.append(Problem(LOG_FILE, f"{where}: sha256", f"the model file {model_file} is missing"))
        elif actual != row.sha256:
            problems.append(Problem(model_file, "sha256", f"content hashes to {actual}, not its name"))
    return problems


def read_threshold_versions(store: ComplianceStore) -> tuple[list[ThresholdVersion], list[Problem]]:
    """Threshold version records, numbered 1, 2, 3 … with matching contents."""
    versions: list[ThresholdVersion] = []
    problems: list[Problem] = []
    numbered: list[tuple[int, str]] = []
    for path in store.list(THRESHOLDS_DIR):
        match = re.match(r"^threshold_v([1-9][0-9]*)\.json$", path.rsplit("/", 1)[-1])
        if not match:
            problems.append(Problem(path, "file name", "not a threshold version (threshold_v<N>.json)"))
            continue
        numbered.append((int(match.group(1)), path))
    for expected, (number, path) in enumerate(sorted(numbered), start=1):
        if number != expected:
            problems.append(Problem(path, "version", f"version {expected} is missing before it"))
        try:
            version = ThresholdVersion.model_validate_json(store.read_bytes(path))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "json"
            problems.append(Problem(path, where, f"not a threshold version record: {first['msg']}"))
            continue
        if version.version != number:
            problems.append(Problem(path, "version", f"is {version.version}, the file name says {number}"))
        versions.append(version)
    return versions, problems


def check_threshold_references(
    approvals: list[tuple[str, ApprovalRecord]], versions: list[ThresholdVersion]
) -> list[Problem]:
    """Each approval naming a threshold version used exactly that version's thresholds."""
    by_number = {v.version: v for v in versions}
    problems: list[Problem] = []
    for path, record in approvals:
        if record.thresholds_version is None:
            continue
        version = by_number.get(record.thresholds_version)
        if version is None:
            problems.append(
                Problem(path, "thresholds_version", f"version {record.thresholds_version} is not in {THRESHOLDS_DIR}/")
            )
        elif record.thresholds != version.thresholds.model_dump():
            problems.append(
                Problem(path, "thresholds", f"differ from version {version.version} ({version.path}) it names")
            )
    return problems


def check_people_references(
    store: ComplianceStore,
    approvals: list[tuple[str, ApprovalRecord]],
    found: list[LedgerEntry],
    retries: Sequence[tuple[str, DeployRetryRecord]] = (),
) -> list[Problem]:
    """Each approval or retry naming a people registry version names a ledgered one, in which its actors held
    their roles (the approver and tester of an approval; whoever retried a deployment, the approver role).

    (A version file written by hand and deleted after it served an approval leaves exactly this trace.)
    """
    ledgered = {e.path: e.record_sha256 for e in found if e.kind == "people_version"}
    claims: list[tuple[str, int | None, list[tuple[str, Role]]]] = []
    for path, record in approvals:
        actors: list[tuple[str, Role]] = [(record.approver, "approver")]
        if record.tester_signoff is not None:
            actors.append((record.tester_signoff.tester, "tester"))
        waived = record.dev_mode or record.refusal_reason is not None  # a refusal names whoever was refused
        claims.append((path, record.people_version, [] if waived else actors))
    claims += [(path, retry.people_version, [(retry.retried_by, "approver")]) for path, retry in retries]
    registries: dict[int, People | None] = {}
    problems: list[Problem] = []
    for path, number, actors in claims:
        if number is None:
            continue
        if number not in registries:
            file = version_path(number)
            data = store.read_bytes(file) if store.exists(file) else None
            genuine = data is not None and ledgered.get(file) == sha256_hex(data)
            registries[number] = PeopleVersion.model_validate_json(data).registry() if genuine and data else None
        people = registries[number]
        if people is None:
            problems.append(
                Problem(
                    path,
                    "people_version",
                    f"names people registry version {number}, which is not in the ledger as {version_path(number)}",
                )
            )
            continue
        for name, role in actors:
            why = role_violation(people, name, role)
            if why is not None:
                field = "retried_by" if path.startswith(f"{DEPLOY_RETRIES_DIR}/") else role
                problems.append(Problem(path, field, f"under people registry version {number}: {why}"))
    return problems
