"""The submission record: which run made a release and who submitted it (SOP §1 step 1).

``releases/<id>/submission.json`` is written once, when a run has passed data validation and its
ticket is opened, and entered in the ledger (kind ``release_file``). The console and every other
reader take a release's run id and submitter from here — never from ticket text, which anyone
with access to the tracker can edit.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

from credit_scorer.core.ids import release_key
from credit_scorer.records import ledger
from credit_scorer.records.layout import RELEASES_DIR
from credit_scorer.records.models import canonical_json
from credit_scorer.records.store import ComplianceStore, StoreError

SUBMISSION_FILE = "submission.json"


class Submission(BaseModel):
    """``releases/<id>/submission.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    release_id: str
    run_id: str
    submitter: str
    submitted_at: str
    dataset_sha256: str
    dataset_rows: int


def submission_path(release_id: str) -> str:
    return f"{RELEASES_DIR}/{release_id}/{SUBMISSION_FILE}"


def record_submission(store: ComplianceStore, submission: Submission) -> Submission:
    """Write and ledger the record; a second call for the same run keeps the first (a step retried).

    Raises StoreError when the release id is not the run's, or the release already belongs to another run.
    """
    _check_ids(submission)
    existing = read_submission(store, submission.release_id)
    if existing is not None:
        if (existing.run_id, existing.submitter) != (submission.run_id, submission.submitter):
            raise StoreError(
                f"{submission_path(submission.release_id)} names run {existing.run_id} submitted by "
                f"{existing.submitter!r}; release ids must not be reused"
            )
        return existing
    data = canonical_json(submission.model_dump(mode="json"))
    ledger.commit(store, "release_file", submission_path(submission.release_id), data)
    return submission


def read_submission(store: ComplianceStore, release_id: str) -> Submission | None:
    """The release's submission record; None for a release recorded before this record existed.

    Raises StoreError naming the file when it is unreadable or names a run that is not the release's.
    """
    path = submission_path(release_id)
    if not store.exists(path):
        return None
    try:
        submission = Submission.model_validate_json(store.read_bytes(path))
    except ValidationError as exc:
        raise StoreError(f"{path} is not a submission record: {exc.errors()[0]['msg']}") from None
    if submission.release_id != release_id:
        raise StoreError(f"{path} names release {submission.release_id}, not {release_id}")
    _check_ids(submission)
    return submission


def _check_ids(submission: Submission) -> None:
    if release_key(submission.run_id) != submission.release_id:
        raise StoreError(
            f"run {submission.run_id} makes release {release_key(submission.run_id)}, not {submission.release_id}"
        )
