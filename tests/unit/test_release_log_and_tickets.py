"""The release log (``model_release_log.md``) and the local ticket tracker, on a temporary store."""

from __future__ import annotations

import multiprocessing
import re
import subprocess
from pathlib import Path

import pytest

from credit_scorer.adapters.factory import tracker_for
from credit_scorer.adapters.tickets import ROLLED_BACK, LocalTicketTracker
from credit_scorer.core.ids import release_key
from credit_scorer.records import release_log
from credit_scorer.records.release_log import HEADER, LOG_FILE, ReleaseLogRow
from credit_scorer.records.store import ComplianceStore, StoreError

SHA_A = "a" * 64
ROWS_EACH = 30


def _row(n: int = 1, **overrides: str) -> ReleaseLogRow:
    fields = {
        "date": f"2026-11-27T10:{n // 60:02d}:{n % 60:02d}Z",
        "event": "release",
        "release_id": f"AI-REL-{n:08x}",
        "model_path": f"models/{SHA_A}.json",
        "sha256": SHA_A,
        "deployment_url": f"http://127.0.0.1:{8000 + n}",
        "approval_id": f"approval_2026-11-27T10-00-{n % 60:02d}",
        "by": "Jane Doe",
        "note": "",
    }
    return ReleaseLogRow.model_validate(fields | overrides)


def _appender(root: str, worker: int) -> None:
    store = ComplianceStore(root)
    for i in range(ROWS_EACH):
        release_log.append_row(store, _row(worker * 100 + i, by=f"worker {worker}", note=f"row {i} | of {worker}"))


# ---------------------------------------------------------------------------
# Release log
# ---------------------------------------------------------------------------
def test_two_appended_rows_round_trip_exactly(tmp_path: Path) -> None:
    store = ComplianceStore(str(tmp_path))
    first = _row(1)
    second = _row(2, event="rollback", by="Ada Lovelace", note="AUC dropped | customers complained")
    written = [release_log.append_row(store, first), release_log.append_row(store, second)]
    assert [r.model_copy(update={"checkpoint": ""}) for r in written] == [first, second]
    assert written[0].checkpoint == ""  # nothing was in the ledger before the first row
    assert re.fullmatch(r"ledger seq 1 · head [0-9a-f]{16}", written[1].checkpoint)
    assert release_log.read_rows(store) == written
    assert release_log.parse_rows(store.read_text(LOG_FILE)) == written


def test_a_note_with_a_newline_round_trips_exactly(tmp_path: Path) -> None:
    store = ComplianceStore(str(tmp_path))
    row = _row(1, event="rollback", note="first line | pipe\nsecond line")
    release_log.append_row(store, row)
    assert release_log.read_rows(store) == [row]


def test_a_note_with_a_newline_stays_on_one_table_line(tmp_path: Path) -> None:
    store = ComplianceStore(str(tmp_path))
    release_log.append_row(store, _row(1, event="rollback", note="first line\nsecond line"))
    release_log.append_row(store, _row(2))
    text = store.read_text(LOG_FILE)
    assert text.count("\n") == HEADER.count("\n") + 2
    assert [r.release_id for r in release_log.read_rows(store)] == [_row(1).release_id, _row(2).release_id]


def test_a_backslash_before_a_pipe_does_not_lose_the_row(tmp_path: Path) -> None:
    store = ComplianceStore(str(tmp_path))
    row = _row(1, event="rollback", note="restored C:\\models\\|x")
    release_log.append_row(store, row)
    assert release_log.read_rows(store) == [row]


def test_header_is_written_once_with_the_columns(tmp_path: Path) -> None:
    store = ComplianceStore(str(tmp_path))
    for n in range(3):
        release_log.append_row(store, _row(n))
    text = store.read_text(LOG_FILE)
    assert text.startswith(HEADER)
    assert text.count("# Model release log") == 1
    assert text.count("| date (UTC) | event | release |") == 1
    assert len(release_log.read_rows(store)) == 3


def test_read_rows_of_an_empty_store_is_empty(tmp_path: Path) -> None:
    assert release_log.read_rows(ComplianceStore(str(tmp_path))) == []


def test_concurrent_appends_from_two_processes_keep_every_row(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_appender, args=(root, w)) for w in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]
    store = ComplianceStore(root)
    rows = release_log.read_rows(store)
    assert len(rows) == 2 * ROWS_EACH
    for w in range(2):
        mine = [r for r in rows if r.by == f"worker {w}"]
        assert [r.note for r in mine] == [f"row {i} | of {w}" for i in range(ROWS_EACH)]  # in order, none lost
    assert store.read_text(LOG_FILE).count("# Model release log") == 1


def _git_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Commit as a test identity, ignoring the user's and system git configuration."""
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Release Bot")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "bot@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Release Bot")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "bot@example.invalid")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(home.parent))


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def test_git_commit_log_commits_only_the_log_inside_a_work_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _git_env(monkeypatch, tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "unrelated.txt").write_text("staged, not part of the release\n")
    _git(repo, "add", "unrelated.txt")
    store = ComplianceStore(str(repo / "compliance"))
    release_log.append_row(store, _row(1))

    assert release_log.git_commit_log(store, "Release AI-REL-00000001") == "committed to git"

    assert _git(repo, "log", "--format=%s").splitlines() == ["Release AI-REL-00000001"]
    assert _git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["compliance/model_release_log.md"]
    assert _git(repo, "show", "HEAD:compliance/model_release_log.md") == store.read_text(LOG_FILE)
    assert "unrelated.txt" in _git(repo, "diff", "--cached", "--name-only")  # still staged, not committed

    release_log.append_row(store, _row(2))
    assert release_log.git_commit_log(store, "Release AI-REL-00000002") == "committed to git"
    assert len(_git(repo, "log", "--format=%s").splitlines()) == 2


def test_git_commit_log_with_nothing_new_reports_not_committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _git_env(monkeypatch, tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    store = ComplianceStore(str(repo))
    release_log.append_row(store, _row(1))
    assert release_log.git_commit_log(store, "first") == "committed to git"
    assert release_log.git_commit_log(store, "again").startswith("not committed")
    assert len(_git(repo, "log", "--format=%s").splitlines()) == 1


def test_git_commit_log_outside_a_work_tree_says_not_committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _git_env(monkeypatch, tmp_path)
    store = ComplianceStore(str(tmp_path / "plain" / "store"))
    release_log.append_row(store, _row(1))
    message = release_log.git_commit_log(store, "Release")
    assert message.startswith("not committed")
    assert "not inside a git work tree" in message
    assert release_log.read_rows(store) == [_row(1)]


# ---------------------------------------------------------------------------
# Tickets
# ---------------------------------------------------------------------------
def test_release_key_is_the_first_eight_hex_digits_of_the_run_id() -> None:
    assert release_key("951443cd-3153-4c1b-9a53-0d5a2b1c7e11") == "AI-REL-951443cd"
    assert release_key("9514-43cd-3153") == "AI-REL-951443cd"


def test_open_ticket_is_idempotent(tmp_path: Path) -> None:
    store = ComplianceStore(str(tmp_path))
    tracker = LocalTicketTracker(store)
    first = tracker.open_ticket("AI-REL-951443cd", "run-1", "Release AI-REL-951443cd", "first description")
    tracker.add_comment("AI-REL-951443cd", "Quinn Tester", "signoff", "Tester ✓")
    again = tracker.open_ticket("AI-REL-951443cd", "run-1", "another summary", "another description")
    assert (again.summary, again.description, again.created_at) == (
        "Release AI-REL-951443cd",
        "first description",
        first.created_at,
    )
    assert [c.body for c in again.comments] == ["Tester ✓"]  # reopening keeps the timeline
    assert store.list("tickets") == ["tickets/AI-REL-951443cd.json"]
    assert first.status == "open"


def test_comments_append_in_order_with_author_and_kind(tmp_path: Path) -> None:
    tracker = LocalTicketTracker(ComplianceStore(str(tmp_path)))
    tracker.open_ticket("AI-REL-1", "run-1", "s", "d")
    tracker.add_comment("AI-REL-1", "credit-scorer", "note", "Waiting at the release gate")
    tracker.add_comment("AI-REL-1", "Quinn Tester", "signoff", "Tester ✓ Annex IV reviewed")
    tracker.add_comment("AI-REL-1", "Jane Doe", "decision", "Approved: meets KPIs")
    tracker.add_comment("AI-REL-1", "credit-scorer", "deployment", "Deployed at http://127.0.0.1:8001")
    comments = tracker.get("AI-REL-1").comments
    assert [(c.author, c.kind, c.body) for c in comments] == [
        ("credit-scorer", "note", "Waiting at the release gate"),
        ("Quinn Tester", "signoff", "Tester ✓ Annex IV reviewed"),
        ("Jane Doe", "decision", "Approved: meets KPIs"),
        ("credit-scorer", "deployment", "Deployed at http://127.0.0.1:8001"),
    ]
    assert [c.at for c in comments] == sorted(c.at for c in comments)


def test_add_label_is_idempotent_and_keeps_other_labels(tmp_path: Path) -> None:
    tracker = LocalTicketTracker(ComplianceStore(str(tmp_path)))
    tracker.open_ticket("AI-REL-1", "run-1", "s", "d")
    tracker.add_label("AI-REL-1", "gate")
    tracker.add_label("AI-REL-1", ROLLED_BACK)
    tracker.add_label("AI-REL-1", ROLLED_BACK)
    assert tracker.get("AI-REL-1").labels == ["gate", "ROLLED BACK"]


def test_set_status_is_persisted(tmp_path: Path) -> None:
    store = ComplianceStore(str(tmp_path))
    tracker = LocalTicketTracker(store)
    tracker.open_ticket("AI-REL-1", "run-1", "s", "d")
    tracker.set_status("AI-REL-1", "deployed")
    tracker.set_status("AI-REL-1", "rolled back")
    assert LocalTicketTracker(store).get("AI-REL-1").status == "rolled back"


def test_a_missing_ticket_is_a_store_error(tmp_path: Path) -> None:
    tracker = tracker_for(ComplianceStore(str(tmp_path)))
    with pytest.raises(StoreError, match="AI-REL-missing"):
        tracker.get("AI-REL-missing")
    with pytest.raises(StoreError):
        tracker.add_comment("AI-REL-missing", "Jane Doe", "note", "x")
    with pytest.raises(StoreError):
        tracker.add_label("AI-REL-missing", ROLLED_BACK)
    with pytest.raises(StoreError):
        tracker.set_status("AI-REL-missing", "deployed")
    assert not LocalTicketTracker(ComplianceStore(str(tmp_path))).exists("AI-REL-missing")
