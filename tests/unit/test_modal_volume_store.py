"""The compliance store on a Modal Volume (``modal-volume://<volume>/<folder>``), against an in-memory
double of the Volume API (tests/fake_modal.py; not a live Volume): records are never overwritten,
reads and lists round-trip, and the product's own writers put approvals under ``compliance/approvals/``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from credit_scorer.audit.verify import audit_verify
from credit_scorer.core.settings import TRUST_ENV
from credit_scorer.records import models as records
from credit_scorer.records.modal_volume import ModalVolumeFileSystem
from credit_scorer.records.store import ComplianceStore, RecordExistsError, StoreError
from credit_scorer.release import workflow

from .. import audit_builders as build
from ..fake_modal import InMemoryVolume

URL = "modal-volume://credit-scorer/compliance"


@pytest.fixture
def volume() -> InMemoryVolume:
    return InMemoryVolume("credit-scorer")


@pytest.fixture
def store(volume: InMemoryVolume, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ComplianceStore:
    # every test's volume is new under the same URL: this machine's trust in it starts afresh too
    monkeypatch.setenv(TRUST_ENV, str(tmp_path / "ledger_trust.yaml"))
    return ComplianceStore(URL, storage_options={"volume_factory": {"credit-scorer": volume}.__getitem__})


def test_the_url_selects_the_modal_volume_filesystem(store: ComplianceStore) -> None:
    assert isinstance(store.fs, ModalVolumeFileSystem)
    assert not store.is_local and store.root == "credit-scorer/compliance"
    with pytest.raises(StoreError, match="is not a local folder"):
        store.local_path("approvals")


def test_write_new_puts_the_file_in_the_volume_without_force(store: ComplianceStore, volume: InMemoryVolume) -> None:
    store.write_new("approvals/approval_2026-11-27T08-03-14.json", b'{"approved": true}\n')
    assert volume.files == {"compliance/approvals/approval_2026-11-27T08-03-14.json": b'{"approved": true}\n'}
    assert volume.uploads == [(False, ["compliance/approvals/approval_2026-11-27T08-03-14.json"])]


def test_a_record_is_never_overwritten(store: ComplianceStore, volume: InMemoryVolume) -> None:
    store.write_new("approvals/a.json", b"original")
    with pytest.raises(RecordExistsError, match="records are never overwritten"):
        store.write_new("approvals/a.json", b"replacement")
    assert volume.files["compliance/approvals/a.json"] == b"original"


def test_a_record_written_by_another_process_meanwhile_is_not_overwritten(
    store: ComplianceStore, volume: InMemoryVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The existence check passes, then another writer creates the file: Modal refuses the upload."""
    monkeypatch.setattr(store.fs, "exists", lambda path, **kwargs: False)
    volume.files["compliance/approvals/a.json"] = b"the other writer's record"
    with pytest.raises(RecordExistsError):
        store.write_new("approvals/a.json", b"ours")
    assert volume.files["compliance/approvals/a.json"] == b"the other writer's record"


def test_write_new_unique_numbers_taken_names(store: ComplianceStore) -> None:
    assert store.write_new_unique("approvals", "approval_x", ".json", b"1") == "approvals/approval_x.json"
    assert store.write_new_unique("approvals", "approval_x", ".json", b"2") == "approvals/approval_x_2.json"


def test_read_list_replace_delete_round_trip(store: ComplianceStore) -> None:
    store.write_new("approvals/b.json", b"B")
    store.write_new("approvals/a.json", b"A")
    store.write_new("approvals/.hidden.json", b"H")
    store.write_new("approvals/notes.txt", b"N")
    store.write_new("approvals/nested/c.json", b"C")
    assert store.list("approvals", ".json") == ["approvals/a.json", "approvals/b.json"]
    assert store.list("signoffs") == []
    assert store.read_bytes("approvals/a.json") == b"A" and store.read_text("approvals/b.json") == "B"
    assert store.exists("approvals/a.json") and store.exists("approvals") and not store.exists("approvals/z.json")
    with pytest.raises(StoreError, match=r"approvals/z\.json is not in the compliance store"):
        store.read_bytes("approvals/z.json")
    store.replace("tickets/AI-REL-1.json", b"v1")
    store.replace("tickets/AI-REL-1.json", b"v2")
    assert store.read_bytes("tickets/AI-REL-1.json") == b"v2"
    store.delete("tickets/AI-REL-1.json")
    store.delete("tickets/AI-REL-1.json")  # absent: ignored
    assert not store.exists("tickets/AI-REL-1.json")


def test_the_products_writers_lay_records_out_under_compliance_approvals(
    store: ComplianceStore, volume: InMemoryVolume
) -> None:
    """Sign-off, model, approval, release-log row and ledger through the real writers; audit verify is clean."""
    record = build.release(store, 1)
    build.release(store, 2)
    names = sorted(volume.files)
    assert f"compliance/approvals/{record.approval_id}.json" in names
    assert all(n.startswith("compliance/") for n in names)
    assert {n.split("/")[1] for n in names} >= {"approvals", "signoffs", "models", "ledger", "model_release_log.md"}
    assert records.read_approvals(store)[0].approval_id == record.approval_id
    report = audit_verify(store)
    assert report.ok, report.problems
    digest = hashlib.sha256(build.model_bytes(1)).hexdigest()
    assert volume.files[f"compliance/models/{digest}.json"] == build.model_bytes(1)


def test_a_changed_record_on_the_volume_is_caught_by_audit_verify(
    store: ComplianceStore, volume: InMemoryVolume
) -> None:
    record = build.release(store, 1)
    path = f"compliance/approvals/{record.approval_id}.json"
    volume.files[path] = volume.files[path].replace(b'"Jane Doe"', b'"Mallory"')
    report = audit_verify(store)
    assert not report.ok
    assert any(record.approval_id in p.file for p in report.problems)


def test_a_stored_model_reaches_a_deployer_as_a_local_file(store: ComplianceStore, tmp_path: Path) -> None:
    path, digest = workflow.store_model(store, b'{"model": 1}')
    with workflow.local_model_file(store, path) as local:
        assert hashlib.sha256(local.read_bytes()).hexdigest() == digest
        assert local.name == f"{digest}.json"
    assert not local.exists()  # the temporary copy is gone
