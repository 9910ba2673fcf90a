"""The compliance ledger: a valid store verifies clean, and any edit of a record or of the ledger is caught.

The store is built once through the real writers (sign-offs, approvals, model files, release-log
rows, a threshold version, a spot-check report); each property example edits a copy of it.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from credit_scorer.apps.cli.main import app
from credit_scorer.audit.spot_check import spot_check
from credit_scorer.audit.verify import audit_verify
from credit_scorer.core.settings import KEY_ENV
from credit_scorer.domain.config import Thresholds
from credit_scorer.records import ledger, ledger_verify
from credit_scorer.records import models as records
from credit_scorer.records.ledger import LEDGER_FILE, PUBLIC_KEY_FILE, LedgerKeyError
from credit_scorer.records.people import load_people
from credit_scorer.records.release_log import LOG_FILE, ReleaseLogRow, append_row
from credit_scorer.records.store import ComplianceStore
from credit_scorer.records.thresholds import set_thresholds
from credit_scorer.release import workflow
from tests import audit_builders as build

REPO = Path(__file__).resolve().parents[2]
PEOPLE = REPO / "conf" / "people.yaml"
WRITERS = 2
APPENDS_EACH = 25
EDITS = ("change", "delete", "insert", "reorder")


def _build(root: Path) -> ComplianceStore:
    store = ComplianceStore(str(root))
    set_thresholds(store, Thresholds(), build.SUBMITTER, "SOP §2 defaults", load_people(PEOPLE), at=build.BASE_TIME)
    for n in (1, 2, 3):
        build.release(store, n, thresholds_version=1)
    build.release(store, 4, approved=False, deploy=False, thresholds_version=1)
    spot_check(store, 2, seed=7, quarter="2026Q4", by="Avery Auditor")
    return store


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small valid store, built once; tests copy it before changing anything."""
    root = tmp_path_factory.mktemp("ledger-base") / "compliance"
    _build(root)
    return root


def _copy(base: Path, into: Path) -> tuple[Path, ComplianceStore]:
    """A copy of the base store, pinned on this machine as an auditor would (``audit pin``)."""
    root = into / "compliance"
    shutil.copytree(base, root)
    store = ComplianceStore(str(root))
    ledger.pin_store(store)
    return root, store


def _files(root: Path) -> list[str]:
    """Every file an edit must be caught in: records, models, the release log, the ledger and its key."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).as_posix().startswith((".locks", "tickets"))
    )


def _named(problems: list[ledger.Problem], path: str) -> bool:
    return any(p.file == path for p in problems)


# ---------------------------------------------------------------------------
# A valid store
# ---------------------------------------------------------------------------
def test_valid_store_verifies_clean(base: Path) -> None:
    store = ComplianceStore(str(base))
    assert ledger_verify.verify(store) == []
    report = audit_verify(store)
    assert report.problems == []
    assert report.summary == f"verified: {report.entries} records, chain intact, signatures valid"
    kinds = report.counts
    assert kinds == {
        "approval": 4,
        "signoff": 4,
        "release": 3,
        "threshold_change": 1,
        "spot_check": 2,
        "model": 3,
        "identity": 2,
    }


def test_entries_form_one_signed_chain(base: Path) -> None:
    store = ComplianceStore(str(base))
    found = ledger.entries(store)
    assert [e.seq for e in found] == list(range(1, len(found) + 1))
    assert found[0].prev_hash == ledger.GENESIS_HASH
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(found))
    public = (base / PUBLIC_KEY_FILE).read_bytes()
    assert b"PRIVATE" not in public
    rows = [e for e in found if e.kind == "release"]
    assert [e.path for e in rows] == [
        "model_release_log.md#row-1",
        "model_release_log.md#row-2",
        "model_release_log.md#row-3",
    ]
    assert all(e.row and e.row in (base / LOG_FILE).read_text() for e in rows)


# ---------------------------------------------------------------------------
# Property: any single edit is detected
# ---------------------------------------------------------------------------
def _edit(content: bytes, edit: str, data: st.DataObject) -> bytes:
    if edit == "change":
        at = data.draw(st.integers(0, len(content) - 1), label="offset")
        new = data.draw(st.integers(0, 255).filter(lambda b: b != content[at]), label="byte")
        return content[:at] + bytes([new]) + content[at + 1 :]
    if edit == "delete":
        at = data.draw(st.integers(0, len(content) - 1), label="offset")
        return content[:at] + content[at + 1 :]
    if edit == "insert":
        at = data.draw(st.integers(0, len(content)), label="offset")
        new = data.draw(st.integers(0, 255), label="byte")
        return content[:at] + bytes([new]) + content[at:]
    lines = content.splitlines(keepends=True)
    assume(len(set(lines)) >= 2)
    i = data.draw(st.integers(0, len(lines) - 1), label="line")
    j = data.draw(st.integers(0, len(lines) - 1).filter(lambda k: lines[k] != lines[i]), label="other line")
    lines[i], lines[j] = lines[j], lines[i]
    return b"".join(lines)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_single_edit_of_any_file_is_detected_and_named(base: Path, data: st.DataObject) -> None:
    target = data.draw(st.sampled_from(_files(base)), label="file")
    edit = data.draw(st.sampled_from(EDITS), label="edit")
    with tempfile.TemporaryDirectory() as tmp:
        root, store = _copy(base, Path(tmp))
        content = (root / target).read_bytes()
        changed = _edit(content, edit, data)
        assume(changed != content)
        (root / target).write_bytes(changed)
        problems = audit_verify(store).problems
    assert problems, f"{edit} in {target} went unnoticed"
    assert _named(problems, target), [str(p) for p in problems]


def test_a_key_edited_into_an_unknown_algorithm_is_named_not_a_crash(base: Path, tmp_path: Path) -> None:
    # Found by the property above: byte 35 of a published key PEM changed to "4" turns the
    # algorithm identifier into one cryptography does not know (UnsupportedAlgorithm, not ValueError).
    root, store = _copy(base, tmp_path)
    target = sorted(p for p in _files(base) if p.startswith("ledger/keys/"))[0]
    content = (root / target).read_bytes()
    (root / target).write_bytes(content[:35] + b"4" + content[36:])
    problems = audit_verify(store).problems
    assert _named(problems, target), [str(p) for p in problems]


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_reordering_ledger_entries_is_detected(base: Path, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, store = _copy(base, Path(tmp))
        lines = (root / LEDGER_FILE).read_bytes().splitlines(keepends=True)
        order = data.draw(st.permutations(range(len(lines))))
        assume(list(order) != list(range(len(lines))))
        (root / LEDGER_FILE).write_bytes(b"".join(lines[i] for i in order))
        problems = ledger_verify.verify(store)
    assert _named(problems, LEDGER_FILE)


# ---------------------------------------------------------------------------
# Missing, extra and re-signed records
# ---------------------------------------------------------------------------
def test_removed_record_file_is_detected(base: Path, tmp_path: Path) -> None:
    root, store = _copy(base, tmp_path)
    victim = sorted((root / "approvals").iterdir())[0]
    victim.unlink()
    problems = ledger_verify.verify(store)
    path = f"approvals/{victim.name}"
    assert any(p.file == path and p.field == "file" and "missing" in p.message for p in problems)


def test_extra_unledgered_record_file_is_detected(base: Path, tmp_path: Path) -> None:
    root, store = _copy(base, tmp_path)
    source = sorted((root / "approvals").iterdir())[0]
    payload = json.loads(source.read_text())
    payload["approval_id"] = "approval_2026-11-30T23-59-59"
    store.write_new("approvals/approval_2026-11-30T23-59-59.json", records.canonical_json(payload))
    problems = ledger_verify.verify(store)
    assert any(p.file == "approvals/approval_2026-11-30T23-59-59.json" and p.field == "ledger" for p in problems)


def test_unledgered_release_log_row_and_truncated_ledger_are_detected(base: Path, tmp_path: Path) -> None:
    root, store = _copy(base, tmp_path)
    with (root / LOG_FILE).open("a") as log:
        log.write("| 2026-12-01T00:00:00Z | release | AI-REL-x | models/x.json | ab | http://x | a | me |  |\n")
    assert any(p.file == LOG_FILE and p.field == "row 4" for p in ledger_verify.verify(store))

    root2, store2 = _copy(base, tmp_path / "second")
    lines = (root2 / LEDGER_FILE).read_bytes().splitlines(keepends=True)
    (root2 / LEDGER_FILE).write_bytes(b"".join(lines[:-1]))
    last = json.loads(lines[-1])["path"]
    assert any(p.file == last and p.field == "ledger" for p in ledger_verify.verify(store2))


def test_an_edit_resigned_with_another_key_is_detected(base: Path, tmp_path: Path) -> None:
    """Someone without the system key rewrites a record and re-chains the whole ledger with a key of their own."""
    root, store = _copy(base, tmp_path)
    other = tmp_path / "other.pem"
    original = ledger.entries(ComplianceStore(str(base)))
    (root / LEDGER_FILE).unlink()
    (root / PUBLIC_KEY_FILE).unlink()
    shutil.rmtree(root / ledger.KEYS_DIR)
    key = ledger.load_or_create_key(other)  # the attacker's own key, published by hand
    signer = ledger.Signer(key, ledger.key_id_of(key.public_key()), other)
    (root / PUBLIC_KEY_FILE).write_bytes(ledger.public_pem(key.public_key()))
    with build.attackers_machine(tmp_path):
        for entry in original:
            data = entry.row.encode() if entry.row else (root / entry.path).read_bytes()
            ledger.append(store, entry.kind, entry.path, data, row=entry.row, signer=signer)
    problems = ledger_verify.errors(ledger_verify.verify(store))
    assert any(p.file == LEDGER_FILE and p.field == "line 1: key_id" and "re-signed" in p.message for p in problems)
    assert any(p.field == "line 1" and "replaced" in p.message for p in problems)


# ---------------------------------------------------------------------------
# The CLI
# ---------------------------------------------------------------------------
def test_audit_verify_cli_is_clean_on_a_valid_store(base: Path, tmp_path: Path) -> None:
    root, _ = _copy(base, tmp_path)
    result = CliRunner().invoke(app, ["audit", "verify", "--store", str(root)])
    assert result.exit_code == 0, result.output
    assert "chain intact, signatures valid" in result.output


def test_changing_one_character_in_an_approval_fails_audit_verify_naming_the_file(base: Path, tmp_path: Path) -> None:
    root, _ = _copy(base, tmp_path)
    victim = sorted((root / "approvals").iterdir())[1]
    text = victim.read_text()
    victim.write_text(text.replace('"approver": "Jane Doe"', '"approver": "Jane Dox"'))
    assert victim.read_text() != text
    result = CliRunner().invoke(app, ["audit", "verify", "--store", str(root)])
    assert result.exit_code == 1, result.output
    assert f"approvals/{victim.name}" in result.output.replace("\n", "")
    assert "sha256" in result.output


# ---------------------------------------------------------------------------
# Concurrency and crashes
# ---------------------------------------------------------------------------
def _signoffs(root: str, worker: int) -> None:
    store = ComplianceStore(root)
    for i in range(APPENDS_EACH):
        at = build.BASE_TIME + timedelta(seconds=i)
        records.write_signoff(store, f"run-{worker}", f"AI-REL-w{worker}", build.TESTER, f"#{i}", "cli", at)


def _in_processes(target: Callable[..., None], args: list[tuple[object, ...]]) -> None:
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=target, args=a) for a in args]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * len(processes)


def test_concurrent_appends_from_two_processes_keep_one_valid_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "fresh-key" / "key.pem"))  # both race to create the key too
    root = tmp_path / "compliance"
    _in_processes(_signoffs, [(str(root), w) for w in range(WRITERS)])
    store = ComplianceStore(str(root))
    found = ledger.entries(store)
    assert len(found) == WRITERS * APPENDS_EACH
    assert [e.seq for e in found] == list(range(1, WRITERS * APPENDS_EACH + 1))
    assert len({e.path for e in found}) == WRITERS * APPENDS_EACH
    assert ledger_verify.verify(store) == []


def test_a_line_torn_by_a_crash_is_cut_off_before_the_next_append(base: Path, tmp_path: Path) -> None:
    root, store = _copy(base, tmp_path)
    with (root / LEDGER_FILE).open("ab") as handle:
        handle.write(b'{"entry_hash":"12')
    assert any(p.file == LEDGER_FILE for p in ledger_verify.verify(store))
    build.release(store, 9)
    assert ledger_verify.verify(store) == []


def test_a_cut_back_ledger_is_never_appended_to_so_the_next_run_cannot_make_it_clean(
    base: Path, tmp_path: Path
) -> None:
    """Red team: cut the ledger back, delete what it covered, then let a normal command append: refused."""
    root, store = _copy(base, tmp_path)
    ledger_before = (root / LEDGER_FILE).read_bytes()
    witnessed = ledger.anchor.anchor_of(ledger.store_anchor_key(store))
    lines = ledger_before.splitlines(keepends=True)
    (root / LEDGER_FILE).write_bytes(b"".join(lines[:2]))
    with pytest.raises(ledger.LedgerError, match="was cut back"):
        ledger.refuse_if_damaged(store)  # what every recovering command (run, approve, deployments …) runs first
    with pytest.raises(ledger.LedgerError, match="was cut back"):
        build.release(store, 9)
    assert (root / LEDGER_FILE).read_bytes() == b"".join(lines[:2])  # nothing appended, nothing half written
    assert not list(root.rglob(".pending-*")) and not (root / ledger.IN_PROGRESS_FILE).exists()
    assert ledger.anchor.anchor_of(ledger.store_anchor_key(store)) == witnessed  # the witness did not move
    assert any("cut back" in p.message for p in ledger_verify.verify(store))

    root2, store2 = _copy(base, tmp_path / "second")
    lines = (root2 / LEDGER_FILE).read_bytes().splitlines(keepends=True)
    (root2 / LEDGER_FILE).write_bytes(b"".join(lines[:-1]))
    with build.attackers_machine(tmp_path):  # re-grown elsewhere past the witnessed entry, with another head there
        build.release(store2, 9)
    with pytest.raises(ledger.LedgerError, match="was rewritten"):
        build.release(store2, 10)


# ---------------------------------------------------------------------------
# The key
# ---------------------------------------------------------------------------
def test_key_file_readable_by_others_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    ledger.load_or_create_key(key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    os.chmod(key, 0o644)
    with pytest.raises(LedgerKeyError) as refused:
        ledger.signer_for(ComplianceStore(str(tmp_path / "compliance")), key)
    assert str(key) in str(refused.value)
    assert f"chmod 600 {key}" in str(refused.value)


def test_record_write_is_refused_with_an_unsafe_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "key.pem"
    ledger.load_or_create_key(key)
    os.chmod(key, 0o644)
    monkeypatch.setenv(KEY_ENV, str(key))
    store = ComplianceStore(str(tmp_path / "compliance"))
    with pytest.raises(LedgerKeyError):
        records.write_signoff(store, "run", "AI-REL-1", build.TESTER, "", "cli", build.BASE_TIME)
    with pytest.raises(LedgerKeyError):
        append_row(
            store,
            ReleaseLogRow(
                date="2026-11-02T09:00:00Z",
                event="release",
                release_id="AI-REL-1",
                model_path="models/x.json",
                sha256="0" * 64,
                deployment_url="http://x",
                approval_id="approval_x",
                by=build.APPROVER,
            ),
        )
    assert store.list("signoffs") == []
    assert not store.exists(LOG_FILE)


def test_another_key_than_the_stores_is_refused(base: Path, tmp_path: Path) -> None:
    _, store = _copy(base, tmp_path)
    with pytest.raises(LedgerKeyError, match="is not a key pinned for"):
        ledger.signer_for(store, tmp_path / "someone-elses.pem")
    unpinned = tmp_path / "trust-elsewhere.yaml"
    with pytest.MonkeyPatch.context() as env:  # a machine without this store's pin still checks the published key
        env.setenv("CREDIT_SCORER_LEDGER_TRUST", str(unpinned))
        with pytest.raises(LedgerKeyError, match="is not the key of"):
            ledger.signer_for(store, tmp_path / "someone-elses.pem")


def test_key_is_created_private_outside_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "keys" / "ledger.pem"
    monkeypatch.setenv(KEY_ENV, str(key))
    store = ComplianceStore(str(tmp_path / "compliance"))
    signer = ledger.signer_for(store)
    assert signer.key_file == key
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert store.exists(PUBLIC_KEY_FILE)
    assert not any(b"PRIVATE" in p.read_bytes() for p in (tmp_path / "compliance").rglob("*") if p.is_file())


# ---------------------------------------------------------------------------
# What the records claim (audit verify)
# ---------------------------------------------------------------------------
def test_annex_iv_and_dataset_hashes_are_checked_against_the_release_files(tmp_path: Path) -> None:
    store = ComplianceStore(str(tmp_path / "compliance"))
    release_id = "AI-REL-00000001"
    pdf = b"%PDF-1.7 annex iv"
    ledger.commit(store, "release_file", f"releases/{release_id}/annex_iv.pdf", pdf)
    ledger.commit(
        store,
        "release_file",
        f"releases/{release_id}/dataset.json",
        json.dumps({"dataset_sha256": build.DATASET_SHA256}).encode(),
    )
    record = build.release(
        store,
        1,
        annex_iv_path=f"releases/{release_id}/annex_iv.pdf",
        annex_iv_sha256=ledger.sha256_hex(pdf),
    )
    assert audit_verify(store).problems == []
    (tmp_path / "compliance" / "releases" / release_id / "annex_iv.pdf").write_bytes(pdf + b" ")
    (tmp_path / "compliance" / "releases" / release_id / "dataset.json").write_text(
        '{"dataset_sha256": "' + "e" * 64 + '"}'
    )
    problems = {(p.file, p.field) for p in audit_verify(store).problems}
    path = f"approvals/{record.approval_id}.json"
    edited = {(f"releases/{release_id}/annex_iv.pdf", "sha256"), (f"releases/{release_id}/dataset.json", "sha256")}
    assert problems == {(path, "annex_iv_sha256"), (path, "dataset_sha256")} | edited


def test_a_deployment_without_an_approval_of_that_model_is_reported(tmp_path: Path) -> None:
    store = ComplianceStore(str(tmp_path / "compliance"))
    rejected = build.release(store, 1, approved=False, deploy=False)
    path, digest = workflow.store_model(store, build.model_bytes(1))
    row = ReleaseLogRow(
        date="2026-11-02T11:00:00Z",
        event="release",
        release_id=rejected.release_id,
        model_path=path,
        sha256=digest,
        deployment_url="http://127.0.0.1:8001",
        approval_id=rejected.approval_id,
        by=build.APPROVER,
    )
    append_row(store, row)
    append_row(store, row.model_copy(update={"approval_id": "approval_2026-01-01T00-00-00"}))
    problems = audit_verify(store).problems
    assert all(p.file == LOG_FILE for p in problems)
    assert any(p.field.startswith("row 1 ") and "did not approve" in p.message for p in problems)
    assert any(p.field.startswith("row 2 ") and "approval_2026-01-01T00-00-00" in p.message for p in problems)


def test_a_changed_model_file_is_reported(base: Path, tmp_path: Path) -> None:
    root, store = _copy(base, tmp_path)
    model = sorted((root / "models").iterdir())[0]
    model.write_bytes(model.read_bytes() + b"\n")
    problems = audit_verify(store).problems
    assert any(p.field == "model_sha256" and model.name in p.message for p in problems)


# ---------------------------------------------------------------------------
# Checkpoints, pinning and key rotation (the anchor outside the store)
# ---------------------------------------------------------------------------
def test_a_checkpoint_kept_outside_proves_the_ledger_was_not_cut_back(base: Path, tmp_path: Path) -> None:
    root, store = _copy(base, tmp_path)
    checkpoint = tmp_path / "checkpoint.json"
    taken = CliRunner().invoke(app, ["audit", "checkpoint", "--store", str(root), "--out", str(checkpoint)])
    assert taken.exit_code == 0, taken.output
    saved = json.loads(checkpoint.read_text())
    assert saved["seq"] == len(ledger.entries(store)) and saved["head"] == ledger.entries(store)[-1].entry_hash
    ok = CliRunner().invoke(app, ["audit", "verify", "--store", str(root), "--checkpoint", str(checkpoint)])
    assert ok.exit_code == 0, ok.output

    elsewhere = tmp_path / "auditor" / "compliance"  # an auditor's copy: no anchor there, only the checkpoint
    shutil.copytree(root, elsewhere)
    lines = (elsewhere / LEDGER_FILE).read_bytes().splitlines(keepends=True)
    (elsewhere / LEDGER_FILE).write_bytes(b"".join(lines[:-1]))
    last = json.loads(lines[-1])["path"]
    if (elsewhere / last).exists():
        (elsewhere / last).unlink()
    cut = CliRunner().invoke(app, ["audit", "verify", "--store", str(elsewhere), "--checkpoint", str(checkpoint)])
    assert cut.exit_code == 1
    problems = ledger_verify.errors(
        ledger_verify.verify(ComplianceStore(str(elsewhere)), [ledger_verify.parse_checkpoint(checkpoint.read_text())])
    )
    assert [p.message for p in problems if "cut back" in p.message], [str(p) for p in problems]

    checkpoint.write_text('{"seq": "not a checkpoint"}')
    bad = CliRunner().invoke(app, ["audit", "verify", "--store", str(root), "--checkpoint", str(checkpoint)])
    assert bad.exit_code == 2 and "not a ledger checkpoint" in bad.output


def test_an_unpinned_store_is_a_warning_until_pinned(base: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy" / "compliance"
    shutil.copytree(base, root)
    store = ComplianceStore(str(root))
    problems = ledger_verify.verify(store)
    assert ledger_verify.errors(problems) == []
    assert any(p.severity == "warning" and "not pinned" in p.message for p in problems)
    pinned = CliRunner().invoke(app, ["audit", "pin", "--store", str(root)])
    assert pinned.exit_code == 0, pinned.output
    assert ledger_verify.verify(store) == []


def test_a_rotated_key_takes_over_only_through_a_rotation_signed_by_the_old_key(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, store = _copy(base, tmp_path)
    key_file = tmp_path / "store-key.pem"
    shutil.copy(ledger.key_file(), key_file)
    key_file.chmod(0o600)
    monkeypatch.setenv(KEY_ENV, str(key_file))
    old_id = ledger.entries(store)[0].key_id
    refused = CliRunner().invoke(
        app, ["audit", "rotate-key", "--as", "Quinn Tester", "--reason", "x", "--store", str(root)]
    )
    assert refused.exit_code == 2 and "is not an approver" in refused.output
    rotated = CliRunner().invoke(
        app, ["audit", "rotate-key", "--as", "Jane Doe", "--reason", "annual rotation", "--store", str(root)]
    )
    assert rotated.exit_code == 0, rotated.output
    build.release(store, 11)  # written with the new key
    found = ledger.entries(store)
    assert found[-1].key_id != old_id and (key_file.parent / f"{key_file.name}.{old_id}.retired").exists()
    assert ledger_verify.verify(store) == []

    # an entry signed with the retired key after the hand-over is refused
    retired = ledger.load_or_create_key(key_file.parent / f"{key_file.name}.{old_id}.retired")
    old = ledger.Signer(retired, old_id, key_file)
    ledger.append(store, "signoff", "signoffs/late.json", b"{}", signer=old)
    problems = ledger_verify.errors(ledger_verify.verify(store))
    assert any(p.field.endswith("key_id") and old_id in p.message for p in problems), [str(p) for p in problems]


@pytest.mark.parametrize("point", ["rotation-key-saved", "rotation-ledgered", "rotation-switched"])
def test_a_key_rotation_killed_at_any_point_is_finished_or_undone_by_the_next_write(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    """Red team: killed after the rotation entry, the new key existed only in memory; the store was lost."""
    root, store = _copy(base, tmp_path)
    key_file = tmp_path / "store-key.pem"
    shutil.copy(ledger.key_file(), key_file)
    key_file.chmod(0o600)
    monkeypatch.setenv(KEY_ENV, str(key_file))
    env = {**os.environ, "CREDIT_SCORER_CRASH_AT": point}
    script = (
        "from credit_scorer.records import ledger; from credit_scorer.records.store import ComplianceStore; "
        f"ledger.rotate_key(ComplianceStore({str(root)!r}), 'Jane Doe', 'annual rotation')"
    )
    killed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    build.release(store, 12)  # the next write settles the rotation first, then signs
    assert ledger_verify.errors(ledger_verify.verify(store)) == [], [str(p) for p in ledger_verify.verify(store)]
    rotated = any(e.kind == "key_rotation" for e in ledger.entries(store))
    assert rotated == (point != "rotation-key-saved")
    assert not list(tmp_path.glob("store-key.pem.*.pending"))
