"""The red team's tampering corpus: every change an insider with shell access can make to a store is caught.

The red team tried 35 tamperings on main and 13 verified clean: cutting the ledger back (with or without the
records after the cut), re-signing the whole ledger with a key of one's own after editing an approval or
swapping a model, deleting the ledger and every record, and editing files the ledger did not cover (gate
inputs, tickets, the deployment registry, decision logs). Here each tampering is one named case on a copy of
a realistic store — two releases with their tickets, gate files, Annex IV, models, deployment registry,
people registry, thresholds, a spot check, a rejection and sealed decision-log segments — that this machine
has pinned and witnessed (as it would have, having written it). ``audit verify`` must fail, naming what was
touched.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from credit_scorer.adapters.local_deployer import LocalDeployer
from credit_scorer.adapters.tickets import LocalTicketTracker
from credit_scorer.audit.spot_check import spot_check
from credit_scorer.audit.verify import audit_verify
from credit_scorer.core.ports import Deployment
from credit_scorer.domain.config import Thresholds
from credit_scorer.records import anchor, ledger, ledger_verify, people_registry
from credit_scorer.records.ledger import LEDGER_FILE, PUBLIC_KEY_FILE
from credit_scorer.records.people import load_people
from credit_scorer.records.release_log import LOG_FILE
from credit_scorer.records.store import ComplianceStore
from credit_scorer.records.thresholds import set_thresholds
from credit_scorer.serving.decision_log import seal_path, seal_segment
from tests import audit_builders as build

REPO = Path(__file__).resolve().parents[2]
PEOPLE = REPO / "conf" / "people.yaml"
Tamper = Callable[[Path, ComplianceStore], str]
"""Changes the store at the path; returns a text that a reported problem must contain (a file or a phrase)."""


# ---------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------
def _decision_log(root: Path, release_id: str, sha256: str, decisions: list[str]) -> None:
    folder = root / "decision_logs" / release_id
    folder.mkdir(parents=True, exist_ok=True)
    segment = folder / "decisions-20261102T100000Z-1.jsonl"
    lines = [
        json.dumps(
            {
                "request_id": f"r-{i}",
                "timestamp": f"2026-11-02T10:00:0{i}.000Z",
                "release_id": release_id,
                "model_sha256": sha256,
                "decision": decision,
                "probability_of_default": 0.61 if decision == "decline" else 0.2,
                "reasons": ["R01"] if decision == "decline" else [],
            }
        )
        for i, decision in enumerate(decisions)
    ]
    segment.write_text("\n".join(lines) + "\n")
    seal_segment(segment, release_id, sha256, "shutdown")


def _build(root: Path) -> ComplianceStore:
    store = ComplianceStore(str(root))
    people_registry.people_in_force(store, PEOPLE, False, explicit=False)
    set_thresholds(store, Thresholds(), build.SUBMITTER, "SOP §2 defaults", load_people(PEOPLE), at=build.BASE_TIME)
    tracker = LocalTicketTracker(store)
    deployer = LocalDeployer(store.local_path("deployments"), store=store)
    for n in (1, 2):
        release_id = f"AI-REL-{n:08x}"
        tracker.open_ticket(release_id, f"{n:08x}-0000-4000-8000-000000000000", f"Release {release_id}", "test")
        for name in ("evaluation", "fairness", "risk", "threshold_checks"):
            ledger.commit(store, "release_file", f"releases/{release_id}/{name}.json", json.dumps({name: n}).encode())
        ledger.commit(store, "release_file", f"releases/{release_id}/annex_iv.pdf", b"%PDF-1.7 annex " + bytes([n]))
        record = build.release(store, n, thresholds_version=1)
        tracker.add_comment(release_id, build.APPROVER, "decision", f"Approved ({record.approval_id})")
        deployment = Deployment(
            release_id=release_id,
            url=record.deployment_url or "",
            model_sha256=record.model_sha256,
            model_path=record.model_path or "",
            port=8000 + n,
            pid=0,
            started_at=build.stamp(build.BASE_TIME + timedelta(hours=n)),
        )
        ledger.commit(store, "deployment", f"deployments/{release_id}.json", deployment.model_dump_json().encode())
        if n == 2:
            ledger.commit_removal(store, "deployment", "deployments/AI-REL-00000001.json")
        _decision_log(root, release_id, record.model_sha256, ["approve", "decline", "approve"])
    build.release(store, 3, approved=False, deploy=False, thresholds_version=1)
    spot_check(store, 2, seed=7, quarter="2026Q4", by="Avery Auditor")
    assert deployer.seal_logs()  # the product ledgers the sealed segments (no server is running)
    return store


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tamper-base") / "compliance"
    store = _build(root)
    report = audit_verify(store)
    assert report.errors == [], [str(p) for p in report.problems]
    return root


def _clone(base: Path, into: Path) -> tuple[Path, ComplianceStore]:
    """A copy of the store, anchored on this machine exactly as the original (pinned key, witnessed head)."""
    root = into / "compliance"
    shutil.copytree(base, root)
    store = ComplianceStore(str(root))
    original = anchor.anchor_of(ledger.store_anchor_key(ComplianceStore(str(base))))
    assert original is not None and original.witnessed is not None
    key = ledger.store_anchor_key(store)
    for fingerprint in original.keys:
        anchor.pin(key, fingerprint, original.ledger_id)
    w = original.witnessed
    anchor.witness(key, w.seq, w.head, w.at, original.ledger_id or "")
    return root, store


# ---------------------------------------------------------------------------
# Tools of the trade
# ---------------------------------------------------------------------------
def _json_edit(path: Path, change: Callable[[dict[str, object]], None]) -> None:
    payload = json.loads(path.read_text())
    change(payload)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _one(root: Path, folder: str, pattern: str = "*") -> Path:
    return sorted((root / folder).glob(pattern))[0]


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _entries(root: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (root / LEDGER_FILE).read_text().splitlines()]


def _write_entries(root: Path, entries: list[dict[str, object]]) -> None:
    lines = [json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n" for e in entries]
    (root / LEDGER_FILE).write_text("".join(lines))


def _cut_back_to(root: Path, keep: int) -> list[dict[str, object]]:
    """Keep the first ``keep`` ledger entries; delete every file the rest recorded (and rewrite the log)."""
    entries = _entries(root)
    dropped = entries[keep:]
    _write_entries(root, entries[:keep])
    for entry in dropped:
        path = str(entry["path"])
        if entry.get("row") is None and ":" not in path and (root / path).exists():
            (root / path).unlink()
    rows = [str(e["row"]) for e in entries[:keep] if e["kind"] in ("release", "rollback")]
    text = (root / LOG_FILE).read_text()
    header = text[: text.index("|---")] + text[text.index("|---") :].split("\n", 1)[0] + "\n"
    (root / LOG_FILE).write_text(header + "".join(rows))
    return dropped


def _resign(root: Path, store: ComplianceStore, tmp: Path) -> None:
    """Re-chain and re-sign every entry with an attacker's key (recomputing file hashes), publishing that key."""
    key = ledger.load_or_create_key(tmp / "attacker.pem")
    signer = ledger.Signer(key, ledger.key_id_of(key.public_key()), tmp / "attacker.pem")
    entries = _entries(root)
    (root / LEDGER_FILE).unlink()
    shutil.rmtree(root / ledger.KEYS_DIR)
    pem = ledger.public_pem(key.public_key())
    (root / PUBLIC_KEY_FILE).write_bytes(pem)
    (root / ledger.KEYS_DIR).mkdir()
    (root / ledger.KEYS_DIR / f"{signer.key_id}.pem").write_bytes(pem)
    with build.attackers_machine(tmp):
        for e in entries:
            row = e.get("row")
            path = str(e["path"])
            stored = (root / path).read_bytes() if (root / path).exists() else b""
            data = str(row).encode() if row is not None else stored
            ledger.append(store, e["kind"], path, data, row=row, signer=signer)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------
def edit_approver_and_rationale(root: Path, store: ComplianceStore) -> str:
    path = _one(root, "approvals")
    _json_edit(path, lambda p: p.update(approver="Sam Compliance", rationale="looked fine"))
    return _rel(root, path)


def delete_an_approval(root: Path, store: ComplianceStore) -> str:
    path = _one(root, "approvals")
    path.unlink()
    return _rel(root, path)


def add_an_unledgered_approval(root: Path, store: ComplianceStore) -> str:
    source = _one(root, "approvals")
    target = root / "approvals" / "approval_2026-11-30T23-59-59.json"
    _json_edit(source, lambda p: None)
    shutil.copy(source, target)
    _json_edit(target, lambda p: p.update(approval_id="approval_2026-11-30T23-59-59"))
    return _rel(root, target)


def edit_a_signoff_note(root: Path, store: ComplianceStore) -> str:
    path = _one(root, "signoffs")
    _json_edit(path, lambda p: p.update(note="never looked"))
    return _rel(root, path)


def delete_a_signoff(root: Path, store: ComplianceStore) -> str:
    path = _one(root, "signoffs")
    path.unlink()
    return _rel(root, path)


def lower_a_threshold(root: Path, store: ComplianceStore) -> str:
    path = _one(root, "thresholds")
    _json_edit(path, lambda p: p["thresholds"].update(accuracy_min=0.5))  # type: ignore[union-attr]
    return _rel(root, path)


def add_an_unledgered_threshold_version(root: Path, store: ComplianceStore) -> str:
    target = root / "thresholds" / "threshold_v2.json"
    shutil.copy(_one(root, "thresholds"), target)
    _json_edit(target, lambda p: p.update(version=2))
    return _rel(root, target)


def edit_a_model_file(root: Path, store: ComplianceStore) -> str:
    path = _one(root, "models")
    path.write_bytes(path.read_bytes().replace(b"lightgbm", b"lightgbX"))
    return _rel(root, path)


def swap_two_model_files(root: Path, store: ComplianceStore) -> str:
    first, second = sorted((root / "models").iterdir())[:2]
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)
    return _rel(root, first)


def delete_a_model_file(root: Path, store: ComplianceStore) -> str:
    path = _one(root, "models")
    path.unlink()
    return _rel(root, path)


def edit_the_threshold_checks_the_approver_saw(root: Path, store: ComplianceStore) -> str:
    path = root / "releases" / "AI-REL-00000001" / "threshold_checks.json"
    path.write_text('{"threshold_checks": "all passed"}')
    return _rel(root, path)


def edit_the_evaluation_the_approver_saw(root: Path, store: ComplianceStore) -> str:
    path = root / "releases" / "AI-REL-00000002" / "evaluation.json"
    path.write_text('{"evaluation": 0.99}')
    return _rel(root, path)


def edit_the_annex_iv_pdf(root: Path, store: ComplianceStore) -> str:
    path = root / "releases" / "AI-REL-00000001" / "annex_iv.pdf"
    path.write_bytes(path.read_bytes() + b" ")
    return _rel(root, path)


def delete_a_gate_file(root: Path, store: ComplianceStore) -> str:
    path = root / "releases" / "AI-REL-00000001" / "risk.json"
    path.unlink()
    return _rel(root, path)


def add_a_file_to_a_release(root: Path, store: ComplianceStore) -> str:
    path = root / "releases" / "AI-REL-00000001" / "waiver.json"
    path.write_text('{"waived": true}')
    return _rel(root, path)


def rewrite_a_ticket_comment(root: Path, store: ComplianceStore) -> str:
    path = _one(root, "tickets")
    _json_edit(path, lambda p: p["comments"][-1].update(body="Rejected"))  # type: ignore[index]
    return _rel(root, path)


def delete_a_ticket(root: Path, store: ComplianceStore) -> str:
    path = _one(root, "tickets")
    path.unlink()
    return _rel(root, path)


def point_the_registry_elsewhere(root: Path, store: ComplianceStore) -> str:
    path = root / "deployments" / "AI-REL-00000002.json"
    _json_edit(path, lambda p: p.update(url="http://127.0.0.1:9999"))
    return _rel(root, path)


def register_an_unapproved_deployment(root: Path, store: ComplianceStore) -> str:
    path = root / "deployments" / "AI-REL-deadbeef.json"
    shutil.copy(root / "deployments" / "AI-REL-00000002.json", path)
    return _rel(root, path)


def bring_back_a_stopped_deployment(root: Path, store: ComplianceStore) -> str:
    path = root / "deployments" / "AI-REL-00000001.json"
    shutil.copy(root / "deployments" / "AI-REL-00000002.json", path)
    return _rel(root, path)


def make_the_submitter_an_approver(root: Path, store: ComplianceStore) -> str:
    path = _one(root, "people")
    _json_edit(path, lambda p: p["people"].update({"Ada Lovelace": ["submitter", "approver"]}))  # type: ignore[union-attr]
    return _rel(root, path)


def add_an_unledgered_people_version(root: Path, store: ComplianceStore) -> str:
    target = root / "people" / "people_v2.json"
    shutil.copy(_one(root, "people"), target)
    _json_edit(target, lambda p: p.update(version=2))
    return _rel(root, target)


def turn_a_decline_into_an_approve(root: Path, store: ComplianceStore) -> str:
    path = _one(root, "decision_logs/AI-REL-00000002", "decisions-*.jsonl")
    path.write_text(path.read_text().replace('"decision": "decline"', '"decision": "approve"'))
    return _rel(root, path)


def delete_a_decision_log_segment(root: Path, store: ComplianceStore) -> str:
    path = _one(root, "decision_logs/AI-REL-00000001", "decisions-*.jsonl")
    path.unlink()
    return _rel(root, path)


def drop_the_last_decisions_and_reseal(root: Path, store: ComplianceStore) -> str:
    path = _one(root, "decision_logs/AI-REL-00000002", "decisions-*.jsonl")
    path.write_text(path.read_text().split("\n", 1)[0] + "\n")
    Path(f"{path}.seal.json").unlink()
    seal_segment(path, "AI-REL-00000002", "x", "shutdown")  # a fresh seal for the shorter segment
    return _rel(root, path)


def edit_a_release_log_url(root: Path, store: ComplianceStore) -> str:
    path = root / LOG_FILE
    path.write_text(path.read_text().replace("http://127.0.0.1:8001", "http://127.0.0.1:8666"))
    return LOG_FILE


def add_an_unledgered_release_row(root: Path, store: ComplianceStore) -> str:
    with (root / LOG_FILE).open("a") as log:
        log.write("| 2026-12-01T00:00:00Z | release | AI-REL-x | models/x.json | ab | http://x | a | me |  |  |\n")
    return LOG_FILE


def delete_a_release_row(root: Path, store: ComplianceStore) -> str:
    path = root / LOG_FILE
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))
    return LOG_FILE


def delete_the_last_entry_and_its_record(root: Path, store: ComplianceStore) -> str:
    _cut_back_to(root, len(_entries(root)) - 1)
    return "cut back"


def cut_back_to_before_the_second_release(root: Path, store: ComplianceStore) -> str:
    entries = _entries(root)
    cut = next(i for i, e in enumerate(entries) if e["path"] == "tickets/AI-REL-00000002.json")
    _cut_back_to(root, cut)
    return "cut back"


def resign_after_editing_an_approval(root: Path, store: ComplianceStore) -> str:
    path = _one(root, "approvals")
    _json_edit(path, lambda p: p.update(approver="Sam Compliance", rationale="looked fine"))
    _resign(root, store, root.parent)
    return "re-signed"


def resign_after_swapping_a_model(root: Path, store: ComplianceStore) -> str:
    swap_two_model_files(root, store)
    _resign(root, store, root.parent)
    return "re-signed"


def delete_the_ledger_and_every_record(root: Path, store: ComplianceStore) -> str:
    for folder in ("ledger", "approvals", "signoffs", "thresholds", "models", "releases", "tickets", "people",
                   "deployments", "decision_logs", "audit"):  # fmt: skip
        shutil.rmtree(root / folder, ignore_errors=True)
    (root / LOG_FILE).unlink()
    return "records were deleted"


def delete_the_public_key(root: Path, store: ComplianceStore) -> str:
    (root / PUBLIC_KEY_FILE).unlink()
    shutil.rmtree(root / ledger.KEYS_DIR)
    return PUBLIC_KEY_FILE


def publish_another_public_key(root: Path, store: ComplianceStore) -> str:
    other = ledger.load_or_create_key(root.parent / "other.pem")
    (root / PUBLIC_KEY_FILE).write_bytes(ledger.public_pem(other.public_key()))
    return PUBLIC_KEY_FILE


def swap_two_ledger_lines(root: Path, store: ComplianceStore) -> str:
    entries = _entries(root)
    entries[3], entries[4] = entries[4], entries[3]
    _write_entries(root, entries)
    return LEDGER_FILE


def backdate_a_ledger_entry(root: Path, store: ComplianceStore) -> str:
    entries = _entries(root)
    entries[5]["recorded_at"] = "2020-01-01T00:00:00Z"
    _write_entries(root, entries)
    return LEDGER_FILE


def edit_the_spot_check_report(root: Path, store: ComplianceStore) -> str:
    path = _one(root, "audit", "**/*.md") if any((root / "audit").rglob("*.md")) else _one(root, "audit")
    path = next(p for p in sorted((root / "audit").rglob("*")) if p.is_file())
    path.write_text(path.read_text().replace("finding", "fine"))
    path.write_bytes(path.read_bytes() + b"\n")
    return _rel(root, path)


CORPUS: list[Tamper] = [
    edit_approver_and_rationale,
    delete_an_approval,
    add_an_unledgered_approval,
    edit_a_signoff_note,
    delete_a_signoff,
    lower_a_threshold,
    add_an_unledgered_threshold_version,
    edit_a_model_file,
    swap_two_model_files,
    delete_a_model_file,
    edit_the_threshold_checks_the_approver_saw,
    edit_the_evaluation_the_approver_saw,
    edit_the_annex_iv_pdf,
    delete_a_gate_file,
    add_a_file_to_a_release,
    rewrite_a_ticket_comment,
    delete_a_ticket,
    point_the_registry_elsewhere,
    register_an_unapproved_deployment,
    bring_back_a_stopped_deployment,
    make_the_submitter_an_approver,
    add_an_unledgered_people_version,
    turn_a_decline_into_an_approve,
    delete_a_decision_log_segment,
    drop_the_last_decisions_and_reseal,
    edit_a_release_log_url,
    add_an_unledgered_release_row,
    delete_a_release_row,
    delete_the_last_entry_and_its_record,
    cut_back_to_before_the_second_release,
    resign_after_editing_an_approval,
    resign_after_swapping_a_model,
    delete_the_ledger_and_every_record,
    delete_the_public_key,
    publish_another_public_key,
    swap_two_ledger_lines,
    backdate_a_ledger_entry,
    edit_the_spot_check_report,
]


def test_the_corpus_is_the_red_teams_size_or_larger() -> None:
    assert len(CORPUS) >= 35
    assert len({t.__name__ for t in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("tamper", CORPUS, ids=lambda t: t.__name__)
def test_every_tampering_fails_verification_naming_what_was_touched(
    base: Path, tmp_path: Path, tamper: Tamper
) -> None:
    root, store = _clone(base, tmp_path)
    assert audit_verify(store).errors == []
    clue = tamper(root, store)
    report = audit_verify(store)
    texts = [f"{p.file} {p.field} {p.message}" for p in report.errors]
    assert report.errors, f"{tamper.__name__} went unnoticed; warnings: {[str(p) for p in report.warnings]}"
    assert any(clue in text for text in texts), texts


def test_a_verified_store_becomes_a_checkpoint_that_a_cut_back_copy_does_not_extend(base: Path, tmp_path: Path) -> None:
    """Without the machine's anchor (an auditor elsewhere), a checkpoint kept outside still catches a cut."""
    checkpoint = ledger.make_checkpoint(ComplianceStore(str(base)))
    root = tmp_path / "elsewhere" / "compliance"
    shutil.copytree(base, root)
    store = ComplianceStore(str(root))
    assert ledger_verify.errors(ledger_verify.verify(store, [checkpoint])) == []
    _cut_back_to(root, len(_entries(root)) - 3)
    problems = ledger_verify.errors(ledger_verify.verify(store, [checkpoint]))
    assert any("cut back" in p.message for p in problems), [str(p) for p in problems]


# ---------------------------------------------------------------------------
# Red team: recovery must not sign what an insider planted
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("release_id", "line_release"),
    [
        ("AI-REL-deadbeef", "AI-REL-deadbeef"),  # a release that never existed
        ("AI-REL-00000002", "AI-REL-00000002"),  # a real release, a segment its servers never wrote: seal kept, bytes
        ("AI-REL-00000001", "AI-REL-00000002"),  # lines of another release
    ],
)
def test_recovery_does_not_ledger_planted_decision_logs(
    base: Path, tmp_path: Path, release_id: str, line_release: str
) -> None:
    root, store = _clone(base, tmp_path)
    folder = root / "decision_logs" / release_id
    folder.mkdir(parents=True, exist_ok=True)
    planted = folder / "decisions-20261202T000000Z-9.jsonl"
    line = {"request_id": "x", "release_id": line_release, "model_sha256": "0" * 64, "decision": "approve"}
    planted.write_text(json.dumps(line) + "\n")
    seal_segment(planted, release_id, "0" * 64, "shutdown")
    if release_id == "AI-REL-00000002":
        planted.write_text(json.dumps(line | {"decision": "decline"}) + "\n")  # edited after its seal
    before = (root / "ledger" / "ledger.jsonl").read_bytes()
    LocalDeployer(store.local_path("deployments"), store=store).seal_logs()
    assert (root / "ledger" / "ledger.jsonl").read_bytes() == before  # nothing planted was signed
    assert any("decision_logs" in p.file for p in audit_verify(store).problems)


@pytest.mark.parametrize("seal", [b"{bad", b"[1]", b"[" * 100_000])
def test_a_broken_seal_is_reported_not_a_traceback_for_every_command(base: Path, tmp_path: Path, seal: bytes) -> None:
    """Red team: a seal of `{bad` or `[1]` made every recovering command die with a traceback."""
    root, store = _clone(base, tmp_path)
    folder = root / "decision_logs" / "AI-REL-00000002"
    segment = folder / "decisions-20261202T000000Z-9.jsonl"
    segment.write_text(json.dumps({"request_id": "x", "release_id": "AI-REL-00000002"}) + "\n")
    seal_path(segment).write_bytes(seal)
    assert LocalDeployer(store.local_path("deployments"), store=store).seal_logs() == []
