"""What a command runs with: the thresholds in force, the people in force and one run's release settings.

Policy, not presentation: the CLI and the console ask here and only print the answer.
"""

from __future__ import annotations

from pathlib import Path

from credit_scorer.core.errors import ConfigError
from credit_scorer.core.settings import current_settings, environ
from credit_scorer.documents.inputs import load_provider_facts
from credit_scorer.domain.config import PolicyConfig, load_policy
from credit_scorer.records import thresholds as threshold_history
from credit_scorer.records.people import enforce, role_violation
from credit_scorer.records.people_registry import PeopleInForce, people_in_force
from credit_scorer.records.store import ComplianceStore, store_url
from credit_scorer.release.settings import ReleaseSettings

SUBMITTER_ENV = "SUBMITTER"


def policy_in_force(thresholds: Path | None, store: str | None) -> PolicyConfig:
    """The thresholds file when given; else the store's current threshold version; else the constants."""
    if thresholds is not None:
        return load_policy(thresholds)
    version = threshold_history.current(ComplianceStore(store))
    return version.policy() if version is not None else load_policy(None)


def people_in_force_for(store: str | None, people: Path | None, dev_mode: bool, *, adopt: bool = True) -> PeopleInForce:
    """The store's people registry in force (adopting the people file on first use); see people_registry."""
    explicit = people is not None or bool(current_settings().people.strip())
    return people_in_force(ComplianceStore(store), people, dev_mode, explicit, adopt=adopt)


def release_settings_for(
    submitter: str | None,
    store: str | None,
    people_path: Path | None,
    dev_mode: bool,
    wait_timeout: int = 5,
    port: int | None = None,
    git_commit: bool = False,
    annex_facts: Path | None = None,
) -> ReleaseSettings:
    """Release settings from options and environment; the submitter's role is checked now."""
    in_force = people_in_force_for(store, people_path, dev_mode, adopt=False)  # nothing written while checking
    people = in_force.people
    name = (submitter or environ().get(SUBMITTER_ENV, "")).strip()
    if not name:
        raise ConfigError("who submits this run? pass --as NAME or set SUBMITTER (a submitter in the people file)")
    problem = role_violation(people, name, "submitter")
    enforce([problem] if problem else [], dev_mode or people.policy.dev_mode)
    return ReleaseSettings(
        submitter=name,
        store_url=store_url(store),
        people=people,
        people_version=in_force.version,
        people_source=in_force.source,
        dev_mode=dev_mode,
        wait_timeout_seconds=wait_timeout,
        port=port,
        git_commit=git_commit,
        facts=load_provider_facts(annex_facts),
    )
