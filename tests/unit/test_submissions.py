"""The submission record names a release's run and submitter; the console takes both from it, not from the ticket."""

from __future__ import annotations

from pathlib import Path

import pytest

from credit_scorer.adapters.tickets import LocalTicketTracker
from credit_scorer.apps.console.views import origin_of
from credit_scorer.records import ledger
from credit_scorer.records.store import ComplianceStore, StoreError
from credit_scorer.records.submissions import Submission, read_submission, record_submission, submission_path

RELEASE = "AI-REL-0000abcd"
RUN_ID = "0000abcd-1111-2222-3333-444455556666"


def _submission(**changes: object) -> Submission:
    fields: dict[str, object] = {
        "release_id": RELEASE,
        "run_id": RUN_ID,
        "submitter": "Ada Lovelace",
        "submitted_at": "2026-01-01T00:00:00Z",
        "dataset_sha256": "0" * 64,
        "dataset_rows": 30000,
    }
    return Submission.model_validate({**fields, **changes})


@pytest.fixture
def store(tmp_path: Path) -> ComplianceStore:
    return ComplianceStore(str(tmp_path / "store"))


def test_the_record_is_written_once_and_ledgered(store: ComplianceStore) -> None:
    record_submission(store, _submission())
    assert read_submission(store, RELEASE) == _submission()
    assert [e.path for e in ledger.entries(store) if e.kind == "release_file"] == [submission_path(RELEASE)]
    # a retried step (same run, same submitter, later clock) keeps the first record and writes nothing
    assert record_submission(store, _submission(submitted_at="2026-01-02T00:00:00Z")) == _submission()
    assert len([e for e in ledger.entries(store) if e.kind == "release_file"]) == 1


def test_another_run_or_submitter_for_the_same_release_is_refused(store: ComplianceStore) -> None:
    record_submission(store, _submission())
    with pytest.raises(StoreError, match="release ids must not be reused"):
        record_submission(store, _submission(submitter="Mallory"))


def test_a_run_id_that_does_not_make_the_release_is_refused(store: ComplianceStore) -> None:
    with pytest.raises(StoreError, match="makes release AI-REL-ffffabcd, not AI-REL-0000abcd"):
        record_submission(store, _submission(run_id="ffffabcd-1111-2222-3333-444455556666"))
    assert not store.exists(submission_path(RELEASE))


def test_a_hand_edited_record_naming_another_run_is_refused(store: ComplianceStore) -> None:
    record_submission(store, _submission())
    path = Path(store.local_path(submission_path(RELEASE)))
    path.write_text(path.read_text().replace(RUN_ID, "ffffabcd-1111-2222-3333-444455556666"))
    with pytest.raises(StoreError, match="makes release AI-REL-ffffabcd"):
        read_submission(store, RELEASE)
    assert origin_of(store, RELEASE, []) == ("", "")  # the console acts on no run


def test_the_console_reads_run_and_submitter_from_the_record_not_the_ticket(store: ComplianceStore) -> None:
    record_submission(store, _submission())
    tracker = LocalTicketTracker(store)
    tracker.open_ticket(RELEASE, "ffffffff-0000-0000-0000-000000000000", "Release", "run x submitted by Mallory; ")
    assert origin_of(store, RELEASE, []) == (RUN_ID, "Ada Lovelace")


def test_a_release_without_the_record_has_no_run_in_the_console(store: ComplianceStore) -> None:
    LocalTicketTracker(store).open_ticket(RELEASE, RUN_ID, "Release", "run x submitted by Ada Lovelace; ")
    assert origin_of(store, RELEASE, []) == ("", "")
