"""The people registry: who holds which role, kept in the compliance store, versioned and ledgered.

Separation of duties is only as good as the list of who may act in which role. That list lives in the store
as ``people/people_v<N>.json`` records (kind ``people_version`` in the ledger), so changing it leaves a signed
trace: who changed it, why, when, from which file. Every approval and sign-off record names the version it
was checked against.

- The first time a store is used, the people file in effect (``--people``, ``$CREDIT_SCORER_PEOPLE`` or
  ``conf/people.yaml``) becomes version 1, recorded as adopted from that file.
- After that the store's newest version is in force. A new version is recorded by
  ``credit-scorer people set --file FILE --as NAME --reason TEXT``; NAME must hold the submitter role (the ML
  Engineering Lead, who also owns the thresholds) in the version in force.
- A people file from outside the store that differs from the version in force is refused — unless
  ``--dev-mode`` is given, and then every record the run writes says which file was used instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from credit_scorer.core.errors import CreditScorerError
from credit_scorer.records import identities, ledger
from credit_scorer.records.layout import PEOPLE_DIR
from credit_scorer.records.models import canonical_json, iso_utc, utc_now
from credit_scorer.records.people import (
    IdentityError,
    People,
    ReleasePolicy,
    Role,
    load_people,
    people_file,
    role_violation,
)
from credit_scorer.records.store import ComplianceStore
from credit_scorer.records.versions import read_versions

PEOPLE_LOCK = "people"
FIRST_USE = "credit-scorer (first use of the store)"
_VERSION_FILE = re.compile(r"^people_v([1-9][0-9]*)\.json$")


class PeopleRegistryError(CreditScorerError, ValueError):
    """A people registry version cannot be recorded or read; names the file or option to fix."""


class PeopleVersion(BaseModel):
    """``people/people_v<N>.json``: one version of who holds which role."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=1)
    people: dict[str, list[Role]]
    policy: ReleasePolicy
    set_by: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    set_at: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
    source_file: str | None = None

    @property
    def path(self) -> str:
        """Store path of this version."""
        return version_path(self.version)

    def registry(self) -> People:
        """The people and policy of this version."""
        return People(people=self.people, policy=self.policy)


@dataclass(frozen=True)
class PeopleInForce:
    """The people a command checks roles against, and where they came from (copied into records)."""

    people: People
    version: int | None
    source: str


def version_path(version: int) -> str:
    """``people/people_v<N>.json``."""
    return f"{PEOPLE_DIR}/people_v{version}.json"


def history(store: ComplianceStore) -> list[PeopleVersion]:
    """Every version, oldest first; PeopleRegistryError naming a file that is not a version record."""
    return read_versions(
        store,
        PEOPLE_DIR,
        _VERSION_FILE,
        "people_version",
        PeopleVersion,
        PeopleRegistryError,
        "a people registry version",
    )


def current(store: ComplianceStore) -> PeopleVersion | None:
    """The version in force, or None before the store's first use."""
    versions = history(store)
    return versions[-1] if versions else None


def _record(
    store: ComplianceStore, people: People, by: str, reason: str, source: str | None, previous: PeopleVersion | None
) -> PeopleVersion:
    version = PeopleVersion(
        version=previous.version + 1 if previous else 1,
        people=people.people,
        policy=people.policy,
        set_by=by,
        reason=reason,
        set_at=iso_utc(utc_now()),
        source_file=source,
    )
    ledger.commit(store, "people_version", version.path, canonical_json(version.model_dump(mode="json")))
    if previous is None:  # first use: the people's sealed signing keys are adopted with them
        identities.adopt_sealed(store, sorted(people.people))
    return version


def set_people(store: ComplianceStore, people: People, by: str, reason: str, source: str | None) -> PeopleVersion:
    """Record a new version; ``by`` must hold the submitter role in the version in force (or in the new one, first)."""
    if not reason.strip():
        raise PeopleRegistryError("a change of the people registry needs a reason (--reason)")
    with store.lock(PEOPLE_LOCK):
        previous = current(store)
        judge = previous.registry() if previous else people
        violation = role_violation(judge, by, "submitter")
        if violation:
            raise IdentityError(
                f"refused: {violation}; the people registry is changed by an ML Engineering Lead (submitter role)"
                + (f" of registry version {previous.version}" if previous else "")
            )
        return _record(store, people, by, reason.strip(), source, previous)


def adopt_if_absent(store: ComplianceStore, people: People, source: str | None) -> PeopleVersion | None:
    """On the store's first use, record ``people`` (checked at run start) as version 1; None when one exists.

    Nothing is adopted for a dev-mode file from outside the store.
    """
    if (source or "").startswith("dev mode"):
        return None
    with store.lock(PEOPLE_LOCK):
        if current(store) is not None:
            return None
        origin = (source or "").removesuffix(" (not adopted yet)").removeprefix("people file ") or None
        return _record(store, people, FIRST_USE, f"adopted from {origin or 'the people file'}", origin, None)


def people_for_decision(
    store: ComplianceStore, people: People, version: int | None, source: str | None
) -> PeopleInForce:
    """The people a gate decision is checked against: the registry in force when the decision is made.

    A run started in dev mode with a people file from outside the store keeps that file (``version`` None and
    ``source`` saying so); otherwise the store's newest version counts, wherever the decision comes from (the
    terminal, the CLI, the console, CI), so every channel applies the same roles.
    """
    if version is None and (source or "").startswith("dev mode"):
        return PeopleInForce(people, None, source or "")
    latest = current(store)
    if latest is None:
        return PeopleInForce(people, version, source or "people file")
    return PeopleInForce(latest.registry(), latest.version, f"people registry v{latest.version}")


def people_in_force(
    store: ComplianceStore, given: Path | None, dev_mode: bool, explicit: bool, *, adopt: bool = True
) -> PeopleInForce:
    """The people a command checks roles against.

    ``given``/``explicit``: the ``--people`` option, or whether ``$CREDIT_SCORER_PEOPLE`` names a file. Before the
    store's first use the people file becomes version 1 (``adopt=False``: read it without recording anything, for
    checks that must write nothing when they refuse). After it, the store's version is in force; a file named
    explicitly that differs from it is refused (IdentityError) unless ``dev_mode``.
    """
    source = people_file(given)
    latest = current(store)
    if latest is None:
        if not adopt:  # a look that must leave no trace: no lock, nothing written
            return PeopleInForce(load_people(source), None, f"people file {source} (not adopted yet)")
        with store.lock(PEOPLE_LOCK):
            latest = current(store)
            if latest is None:
                adopted = _record(store, load_people(source), FIRST_USE, f"adopted from {source}", str(source), None)
                return PeopleInForce(adopted.registry(), adopted.version, f"people registry v{adopted.version}")
    in_force = PeopleInForce(latest.registry(), latest.version, f"people registry v{latest.version}")
    if not explicit:
        return in_force
    outside = load_people(source)
    if outside == latest.registry():
        return in_force
    if dev_mode:
        return PeopleInForce(
            outside, None, f"dev mode: people file {source} (not the store's people registry v{latest.version})"
        )
    raise IdentityError(
        f"refused: the people file {source} is not this store's people registry (version {latest.version}, "
        f"set by {latest.set_by} at {latest.set_at}); record a new version with `credit-scorer people set --file "
        f"{source} --as NAME --reason TEXT`, or use --dev-mode for a demo (every record then says so)"
    )
