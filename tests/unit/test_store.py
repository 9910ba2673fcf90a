"""The compliance store on a local folder: atomic, never-overwriting writes, safe paths, a working lock."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from credit_scorer.records.store import ComplianceStore, RecordExistsError, StoreError

WRITERS = 2
WRITES_EACH = 50
INCREMENTS_EACH = 100


def _store(root: Path) -> ComplianceStore:
    return ComplianceStore(str(root))


def _leftovers(root: Path) -> list[str]:
    """Temporary files the store left behind anywhere under ``root``."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(".tmp-*"))


def _run_in_processes(target: Callable[..., None], args: list[tuple[object, ...]]) -> None:
    """Start one process per argument tuple at once, wait for all, and fail on a non-zero exit."""
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=target, args=a) for a in args]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    codes = [p.exitcode for p in processes]
    assert codes == [0] * len(processes), f"worker exit codes: {codes}"


def _unique_writer(root: str, worker: int) -> None:
    store = ComplianceStore(root)
    padding = "x" * 8_192  # large enough that a torn write would show as invalid JSON
    for i in range(WRITES_EACH):
        payload = json.dumps({"worker": worker, "i": i, "padding": padding}).encode()
        store.write_new_unique("records", "same", ".json", payload)


def _counter_incrementer(root: str) -> None:
    store = ComplianceStore(root)
    for _ in range(INCREMENTS_EACH):
        with store.lock("counter"):
            current = int(store.read_text("counter.txt")) if store.exists("counter.txt") else 0
            store.replace("counter.txt", str(current + 1).encode())


# ---------------------------------------------------------------------------
# write_new
# ---------------------------------------------------------------------------
def test_write_new_creates_the_file_with_exact_bytes_and_parent_folders(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.write_new("approvals/a.json", b'{"a": 1}\n') == "approvals/a.json"
    assert (tmp_path / "approvals" / "a.json").read_bytes() == b'{"a": 1}\n'
    assert store.read_bytes("approvals/a.json") == b'{"a": 1}\n'
    assert store.exists("approvals/a.json")


def test_write_new_never_overwrites_and_keeps_the_original_bytes(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.write_new("approvals/a.json", b"original")
    with pytest.raises(RecordExistsError, match=r"approvals/a\.json already exists"):
        store.write_new("approvals/a.json", b"replacement")
    assert (tmp_path / "approvals" / "a.json").read_bytes() == b"original"
    # RecordExistsError is both a StoreError and a FileExistsError, so callers can catch either
    assert issubclass(RecordExistsError, StoreError)
    assert issubclass(RecordExistsError, FileExistsError)


def test_no_temporary_files_are_left_after_success_or_after_a_refused_write(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.write_new("r/a.json", b"1")
    store.write_new_unique("r", "b", ".json", b"2")
    store.replace("state.json", b"3")
    assert _leftovers(tmp_path) == []
    with pytest.raises(RecordExistsError):
        store.write_new("r/a.json", b"again")
    assert _leftovers(tmp_path) == []


def test_no_temporary_file_is_left_when_writing_the_data_fails(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.write_new("r/keep.json", b"kept")
    with pytest.raises(TypeError):
        store.write_new("r/bad.json", "not bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.replace("r/keep.json", "not bytes")  # type: ignore[arg-type]
    assert _leftovers(tmp_path) == []
    assert not store.exists("r/bad.json")
    assert store.read_bytes("r/keep.json") == b"kept"


def test_reading_a_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"nope\.json is not in the compliance store"):
        _store(tmp_path).read_bytes("nope.json")


# ---------------------------------------------------------------------------
# write_new_unique
# ---------------------------------------------------------------------------
def test_write_new_unique_numbers_taken_names_from_2(tmp_path: Path) -> None:
    store = _store(tmp_path)
    paths = [store.write_new_unique("d", "x", ".json", f"{i}".encode()) for i in range(4)]
    assert paths == ["d/x.json", "d/x_2.json", "d/x_3.json", "d/x_4.json"]
    assert [store.read_text(p) for p in paths] == ["0", "1", "2", "3"]


# ---------------------------------------------------------------------------
# paths
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("relpath", ["../x", "a/../../x", "a/../b", "/abs", "/etc/passwd"])
def test_paths_outside_the_store_are_refused(tmp_path: Path, relpath: str) -> None:
    store = _store(tmp_path / "store")
    with pytest.raises(StoreError, match="must be relative and stay inside the store"):
        store.write_new(relpath, b"escape")
    with pytest.raises(StoreError, match="must be relative"):
        store.replace(relpath, b"escape")
    with pytest.raises(StoreError, match="must be relative"):
        store.read_bytes(relpath)
    assert not (tmp_path / "x").exists()


def test_store_root_is_resolved_and_paths_stay_under_it(tmp_path: Path) -> None:
    store = _store(tmp_path / "s")
    assert store.is_local
    assert store.local_path("a/b.json") == (tmp_path / "s" / "a" / "b.json").resolve()


# ---------------------------------------------------------------------------
# replace, delete, list
# ---------------------------------------------------------------------------
def test_replace_creates_then_swaps_the_whole_content(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.replace("tickets/T.json", b"first version, long text")
    inode_before = (tmp_path / "tickets" / "T.json").stat().st_ino
    store.replace("tickets/T.json", b"second")
    assert store.read_bytes("tickets/T.json") == b"second"
    # a new file is renamed over the old one (a reader holding the old file still sees it whole)
    assert (tmp_path / "tickets" / "T.json").stat().st_ino != inode_before
    assert _leftovers(tmp_path) == []


def test_replace_does_not_disturb_a_reader_of_the_previous_version(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.replace("log.md", b"old content")
    with open(tmp_path / "log.md", "rb") as reader:
        store.replace("log.md", b"new content")
        assert reader.read() == b"old content"
    assert store.read_bytes("log.md") == b"new content"


def test_delete_removes_a_state_file_and_ignores_a_missing_one(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.replace("state.json", b"{}")
    store.delete("state.json")
    store.delete("state.json")
    assert not store.exists("state.json")


def test_list_is_sorted_filters_by_suffix_and_ignores_dotfiles(tmp_path: Path) -> None:
    store = _store(tmp_path)
    for name in ["c.json", "a.json", "b.txt", "a_2.json"]:
        store.write_new(f"d/{name}", b"{}")
    (tmp_path / "d" / ".hidden.json").write_bytes(b"{}")
    (tmp_path / "d" / ".tmp-abc.part").write_bytes(b"half")
    assert store.list("d") == ["d/a.json", "d/a_2.json", "d/b.txt", "d/c.json"]
    assert store.list("d", ".json") == ["d/a.json", "d/a_2.json", "d/c.json"]
    assert store.list("missing") == []


def test_store_url_falls_back_to_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDIT_SCORER_STORE", str(tmp_path / "from-env"))
    store = ComplianceStore()
    store.write_new("a.json", b"1")
    assert (tmp_path / "from-env" / "a.json").read_bytes() == b"1"


# ---------------------------------------------------------------------------
# concurrency
# ---------------------------------------------------------------------------
def test_concurrent_unique_writes_from_two_processes_give_distinct_complete_files(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    _run_in_processes(_unique_writer, [(root, w) for w in range(WRITERS)])
    store = ComplianceStore(root)
    paths = store.list("records")
    assert len(paths) == WRITERS * WRITES_EACH
    expected_names = {"records/same.json"} | {f"records/same_{n}.json" for n in range(2, WRITERS * WRITES_EACH + 1)}
    assert set(paths) == expected_names
    seen = set()
    for path in paths:
        payload = json.loads(store.read_bytes(path))  # a torn or partial file would not parse
        seen.add((payload["worker"], payload["i"]))
    assert seen == {(w, i) for w in range(WRITERS) for i in range(WRITES_EACH)}
    assert _leftovers(Path(root)) == []


def test_lock_serialises_read_modify_replace_across_processes(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    _run_in_processes(_counter_incrementer, [(root,) for _ in range(WRITERS)])
    assert ComplianceStore(root).read_text("counter.txt") == str(WRITERS * INCREMENTS_EACH)


def test_lock_files_live_in_a_hidden_folder_that_list_does_not_show(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with store.lock("approvals"):
        store.write_new("approvals/a.json", b"{}")
    assert (tmp_path / ".locks" / "approvals.lock").exists()
    assert store.list("approvals") == ["approvals/a.json"]
    assert all(not name.startswith(".") for name in os.listdir(tmp_path / "approvals"))
