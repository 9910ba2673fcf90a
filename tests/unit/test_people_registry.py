"""The people registry lives in the store: adopted once, changed only by a submitter with a reason, ledgered."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

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
