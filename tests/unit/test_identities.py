"""People's signing identities (issue 16, case 6): enrolment, sealed keys, signatures, and what verify names.

Every signature check here is made against keys and records built in the test; ``audit verify`` must name
the record when its signature is removed, replaced by another person's, or made with a revoked key.
"""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from credit_scorer.audit.verify import audit_verify
from credit_scorer.records import identities, ledger
from credit_scorer.records.identities import WrongPassword
from credit_scorer.records.models import write_signoff
from credit_scorer.records.people import IdentityError, People
from credit_scorer.records.people_registry import people_in_force
from credit_scorer.records.signatures import record_hash, signature_valid
from credit_scorer.records.store import ComplianceStore

TESTER, APPROVER = "Quinn Tester", "Jane Doe"
PASSWORD = "correct horse battery"
RELEASE, RUN = "AI-REL-0a1b2c3d", "0a1b2c3d-0000-4000-8000-000000000000"
AT = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> ComplianceStore:
    return ComplianceStore(str(tmp_path / "store"))


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return tmp_path / "identities"


def _signoff(store: ComplianceStore, keys: Path, tester: str = TESTER, password: str = PASSWORD) -> str:
    signer = identities.unlock(store, tester, password, keys)
    record = write_signoff(store, RUN, RELEASE, tester, "Reviewed", "cli", AT, person=signer)
    return f"signoffs/{record.signoff_id}.json"


def _edit(store: ComplianceStore, path: str, change: dict[str, object]) -> None:
    """An insider's edit of a record file (its ledger entry then no longer matches either)."""
    file = store.local_path(path)
    data = json.loads(file.read_text())
    data.update(change)
    file.write_text(json.dumps(data))


def _signature_problems(store: ComplianceStore, path: str) -> list[str]:
    return [p.message for p in audit_verify(store).problems if p.file == path and p.field == "signature"]


# ---------------------------------------------------------------------------
# Enrolment and the sealed key
# ---------------------------------------------------------------------------
def test_enrolment_ledgers_the_public_key_and_seals_the_private_key(store: ComplianceStore, keys: Path) -> None:
    sealed = identities.enrol(store, TESTER, PASSWORD, by="admin", directory=keys)
    [event] = [e.event() for e in ledger.entries(store) if e.kind == "identity"]
    assert (event["action"], event["name"], event["key_id"], event["public_key"]) == (
        "enrol", TESTER, sealed.key_id, sealed.public_key,
    )  # fmt: skip
    [file] = list(keys.iterdir())
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    key = identities.open_sealed(sealed, PASSWORD)
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    assert raw.hex() not in file.read_text() and PASSWORD not in file.read_text()


def test_a_wrong_password_opens_nothing(store: ComplianceStore, keys: Path) -> None:
    identities.enrol(store, TESTER, PASSWORD, by="admin", directory=keys)
    with pytest.raises(WrongPassword, match="wrong password"):
        identities.unlock(store, TESTER, "not the password", keys)


def test_a_short_password_is_refused_before_anything_is_written(store: ComplianceStore, keys: Path) -> None:
    with pytest.raises(IdentityError, match="at least 10 characters"):
        identities.enrol(store, TESTER, "short", by="admin", directory=keys)
    assert not keys.exists() and ledger.entries(store) == []


def test_a_sealed_key_copied_to_another_name_does_not_open(store: ComplianceStore, keys: Path) -> None:
    sealed = identities.enrol(store, TESTER, PASSWORD, by="admin", directory=keys)
    posing = sealed.model_copy(update={"name": APPROVER})
    with pytest.raises(WrongPassword):
        identities.open_sealed(posing, PASSWORD)


def test_a_hostile_name_stays_a_file_inside_the_folder(store: ComplianceStore, keys: Path) -> None:
    identities.enrol(store, "../../etc/passwd\n[bold]x", PASSWORD, by="admin", directory=keys)
    [file] = list(keys.iterdir())
    assert file.parent == keys and file.name.endswith(".json") and "/" not in file.name


def test_re_enrolment_revokes_the_old_key(store: ComplianceStore, keys: Path) -> None:
    first = identities.enrol(store, TESTER, PASSWORD, by="admin", directory=keys)
    second = identities.enrol(store, TESTER, PASSWORD + "!", by="admin", directory=keys)
    history = identities.key_history(ledger.entries(store))
    assert history[first.key_id].revoked_seq is not None and history[second.key_id].revoked_seq is None


def test_a_key_the_store_never_enrolled_cannot_sign_there(tmp_path: Path, keys: Path) -> None:
    one, other = ComplianceStore(str(tmp_path / "one")), ComplianceStore(str(tmp_path / "other"))
    identities.enrol(one, TESTER, PASSWORD, by="admin", directory=keys)
    with pytest.raises(IdentityError, match="not enrolled in the store"):
        identities.unlock(other, TESTER, PASSWORD, keys)


def test_the_store_adopts_sealed_keys_with_its_people_on_first_use(
    tmp_path: Path, store: ComplianceStore, keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = ComplianceStore(str(tmp_path / "scratch"))
    identities.enrol(scratch, TESTER, PASSWORD, by="admin", directory=keys)  # a key sealed beforehand
    monkeypatch.setenv("CREDIT_SCORER_IDENTITIES", str(keys))
    people = tmp_path / "people.yaml"
    people.write_text(json.dumps(People(people={TESTER: ["tester"], APPROVER: ["approver"]}).model_dump()))
    people_in_force(store, people, dev_mode=False, explicit=True)
    adopted = [e.event() for e in ledger.entries(store) if e.kind == "identity"]
    assert [(e["name"], e["by"]) for e in adopted] == [(TESTER, "first use")]
    identities.unlock(store, TESTER, PASSWORD)  # enrolled here now


# ---------------------------------------------------------------------------
# Signatures and audit verify
# ---------------------------------------------------------------------------
def test_a_signed_sign_off_verifies(store: ComplianceStore, keys: Path) -> None:
    identities.enrol(store, TESTER, PASSWORD, by="admin", directory=keys)
    path = _signoff(store, keys)
    data = json.loads(store.read_bytes(path))
    assert data["signature"]["signer"] == TESTER
    state = identities.key_history(ledger.entries(store))[data["signature"]["key_id"]]
    assert signature_valid(state.public_key, record_hash(data), data["signature"]["signature"])
    assert audit_verify(store).ok


def test_a_removed_signature_is_named_signed_by_nobody(store: ComplianceStore, keys: Path) -> None:
    identities.enrol(store, TESTER, PASSWORD, by="admin", directory=keys)
    path = _signoff(store, keys)
    _edit(store, path, {"signature": None})
    assert any("signed by nobody" in m for m in _signature_problems(store, path))


def test_another_persons_signature_is_named(store: ComplianceStore, keys: Path) -> None:
    identities.enrol(store, TESTER, PASSWORD, by="admin", directory=keys)
    identities.enrol(store, APPROVER, PASSWORD, by="admin", directory=keys)
    path = _signoff(store, keys)
    data = json.loads(store.read_bytes(path))
    forged = identities.unlock(store, APPROVER, PASSWORD, keys)(record_hash(data))
    _edit(store, path, {"signature": forged.model_dump()})
    assert any("wrong person" in m for m in _signature_problems(store, path))


def test_a_signature_made_with_a_revoked_key_is_named(store: ComplianceStore, keys: Path) -> None:
    sealed = identities.enrol(store, TESTER, PASSWORD, by="admin", directory=keys)
    old_key = identities.open_sealed(sealed, PASSWORD)  # a copy kept by someone after revocation
    identities.revoke(store, TESTER, by="admin", reason="laptop stolen", directory=keys)
    with pytest.raises(IdentityError):
        identities.unlock(store, TESTER, PASSWORD, keys)
    record = write_signoff(
        store, RUN, RELEASE, TESTER, "Reviewed", "cli", AT, person=identities.Signer(TESTER, old_key)
    )
    path = f"signoffs/{record.signoff_id}.json"
    assert any("revoked at ledger seq" in m for m in _signature_problems(store, path))


def test_an_edit_after_signing_breaks_the_signature(store: ComplianceStore, keys: Path) -> None:
    identities.enrol(store, TESTER, PASSWORD, by="admin", directory=keys)
    path = _signoff(store, keys)
    _edit(store, path, {"note": "Reviewed nothing"})
    assert any("does not match the record" in m for m in _signature_problems(store, path))


def test_unsigned_records_of_people_without_keys_are_one_warning(store: ComplianceStore) -> None:
    write_signoff(store, RUN, RELEASE, TESTER, "Reviewed", "cli", AT)
    report = audit_verify(store)
    assert report.ok
    assert [p.severity for p in report.problems if p.field == "signature"] == ["warning"]
