"""The people registry lives in the store: adopted once, changed only by a submitter with a reason, ledgered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from credit_scorer.audit.verify import audit_verify
from credit_scorer.domain.config import Thresholds
from credit_scorer.records import ledger_verify
from credit_scorer.records.people import IdentityError, load_people
from credit_scorer.records.people_registry import (
    FIRST_USE,
    PeopleRegistryError,
    current,
    history,
    people_in_force,
    set_people,
)
from credit_scorer.records.store import ComplianceStore
from credit_scorer.records.thresholds import ThresholdError, set_thresholds
from credit_scorer.records.thresholds import current as current_thresholds
from tests import audit_builders as build

REPO = Path(__file__).resolve().parents[2]
PEOPLE = REPO / "conf" / "people.yaml"


def _other_file(tmp_path: Path) -> Path:
    """A people file outside the store that makes an outsider an approver."""
    data = yaml.safe_load(PEOPLE.read_text())
    data["people"]["Eve Outsider"] = ["approver"]
    path = tmp_path / "other-people.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_first_use_adopts_the_people_file_as_version_1_and_ledgers_it(tmp_path: Path) -> None:
    store = ComplianceStore(str(tmp_path / "compliance"))
    in_force = people_in_force(store, PEOPLE, False, explicit=False)
    assert (in_force.version, in_force.source) == (1, "people registry v1")
    version = current(store)
    assert version is not None and version.set_by == FIRST_USE and version.source_file == str(PEOPLE)
    assert version.registry() == load_people(PEOPLE)
    assert ledger_verify.errors(ledger_verify.verify(store)) == []


def test_a_look_before_the_first_use_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "compliance"
    in_force = people_in_force(ComplianceStore(str(root)), PEOPLE, False, explicit=False, adopt=False)
    assert in_force.version is None and in_force.people == load_people(PEOPLE)
    assert not root.exists()


def test_an_outside_people_file_is_refused_unless_dev_mode_and_dev_mode_says_which_file(tmp_path: Path) -> None:
    store = ComplianceStore(str(tmp_path / "compliance"))
    people_in_force(store, PEOPLE, False, explicit=False)
    other = _other_file(tmp_path)
    with pytest.raises(IdentityError, match=r"the people file .*other-people.yaml is not this store's people registry"):
        people_in_force(store, other, False, explicit=True)
    dev = people_in_force(store, other, True, explicit=True)
    assert dev.version is None and dev.source.startswith("dev mode: people file") and str(other) in dev.source
    assert "Eve Outsider" in dev.people.people
    same = people_in_force(store, PEOPLE, False, explicit=True)  # the file the store adopted is not "outside"
    assert same.version == 1


def test_changes_need_a_submitter_of_the_registry_in_force_and_a_reason(tmp_path: Path) -> None:
    store = ComplianceStore(str(tmp_path / "compliance"))
    people_in_force(store, PEOPLE, False, explicit=False)
    other = load_people(_other_file(tmp_path))
    with pytest.raises(IdentityError, match=r"SoD-1.*'Jane Doe' is not a submitter"):
        set_people(store, other, "Jane Doe", "add Eve", None)
    with pytest.raises(PeopleRegistryError, match="needs a reason"):
        set_people(store, other, "Ada Lovelace", "  ", None)
    version = set_people(store, other, "Ada Lovelace", "Eve joins compliance", "other-people.yaml")
    assert version.version == 2 and [v.version for v in history(store)] == [1, 2]
    assert people_in_force(store, None, False, explicit=False).people == other
    assert ledger_verify.errors(ledger_verify.verify(store)) == []


def _hand_written_version_2(store: ComplianceStore, root: Path) -> Path:
    """What an insider with write access to the store (not the key) does: a copy of v1 with a new approver."""
    v1 = json.loads((root / "people" / "people_v1.json").read_text())
    v1["version"] = 2
    v1["people"]["Mallory"] = ["approver"]
    forged = root / "people" / "people_v2.json"
    forged.write_text(json.dumps(v1))
    return forged


def test_a_version_written_by_hand_is_not_in_force_and_nothing_acts_on_it(tmp_path: Path) -> None:
    """Red team: a hand-written people_v2.json made Mallory an approver until `audit verify` ran."""
    root = tmp_path / "compliance"
    store = ComplianceStore(str(root))
    people_in_force(store, PEOPLE, False, explicit=False)
    _hand_written_version_2(store, root)
    with pytest.raises(PeopleRegistryError, match=r"people/people_v2.json is not in the ledger with these bytes"):
        people_in_force(store, PEOPLE, False, explicit=False)


def test_a_threshold_version_written_by_hand_is_not_in_force(tmp_path: Path) -> None:
    root = tmp_path / "compliance"
    store = ComplianceStore(str(root))
    set_thresholds(store, Thresholds(), "Ada Lovelace", "SOP §2 defaults", load_people(PEOPLE))
    v1 = json.loads((root / "thresholds" / "threshold_v1.json").read_text())
    v1["version"] = 2
    v1["thresholds"]["accuracy_min"] = 0.1
    (root / "thresholds" / "threshold_v2.json").write_text(json.dumps(v1))
    with pytest.raises(ThresholdError, match=r"thresholds/threshold_v2.json is not in the ledger with these bytes"):
        current_thresholds(store)


def test_an_approval_naming_a_version_the_ledger_never_held_fails_audit_verify(tmp_path: Path) -> None:
    """Red team: forge people_v2, let it approve, delete it: the approval still names v2 and verify must say so."""
    root = tmp_path / "compliance"
    store = ComplianceStore(str(root))
    people_in_force(store, PEOPLE, False, explicit=False)
    build.release(store, 1, people_version=1)
    build.release(store, 2, people_version=2)  # approved "under" a version that was deleted afterwards
    problems = audit_verify(store).problems
    assert [p.field for p in problems] == ["people_version"], [str(p) for p in problems]
    assert "names people registry version 2, which is not in the ledger as people/people_v2.json" in problems[0].message


def test_an_approver_without_the_role_in_the_version_named_fails_audit_verify(tmp_path: Path) -> None:
    root = tmp_path / "compliance"
    store = ComplianceStore(str(root))
    people_in_force(store, PEOPLE, False, explicit=False)
    build.release(store, 1, people_version=1, approver="Quinn Tester")
    problems = audit_verify(store).problems
    assert any(p.field == "approver" and "under people registry version 1" in p.message for p in problems), [
        str(p) for p in problems
    ]
