"""Versioned Model Approval Thresholds (SOP §2 and the quarterly threshold review of §5).

Each version is a record ``thresholds/threshold_v<N>.json`` — the four thresholds and
the fairness policy, who set them, why and when — written once and entered in the
ledger (kind ``threshold_change``). A version is added by ``credit-scorer thresholds
set`` (an ML Engineering Lead, i.e. someone holding the submitter role) or when a run
starts with a configuration other than the current version
(:func:`note_config_at_run_start`). Approval records name the version they used in
``thresholds_version``.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from credit_scorer.core.errors import CreditScorerError
from credit_scorer.domain.config import BaselinePolicy, FairnessPolicy, PolicyConfig, SamplePolicy, Thresholds
from credit_scorer.records import ledger
from credit_scorer.records.layout import THRESHOLDS_DIR
from credit_scorer.records.models import canonical_json, iso_utc, utc_now
from credit_scorer.records.people import IdentityError, People, load_people, role_violation
from credit_scorer.records.store import ComplianceStore
from credit_scorer.records.versions import read_versions

THRESHOLDS_LOCK = "thresholds"
REASON_RUN_START = "changed config noticed at run start"
REASON_FIRST_RUN = "config in force at the first run (no earlier version)"
_VERSION_FILE = re.compile(r"^threshold_v([1-9][0-9]*)\.json$")


class ThresholdError(CreditScorerError, ValueError):
    """A threshold version cannot be recorded or read; names the file or option to fix."""


class ThresholdVersion(BaseModel):
    """``thresholds/threshold_v<N>.json``: one version of the thresholds in force."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=1)
    thresholds: Thresholds
    fairness: FairnessPolicy
    sample: SamplePolicy = SamplePolicy()  # versions written before these existed: the defaults
    baseline: BaselinePolicy = BaselinePolicy()
    set_by: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    set_at: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

    @property
    def path(self) -> str:
        """Store path of this version's record."""
        return version_path(self.version)

    def policy(self) -> PolicyConfig:
        """The thresholds and fairness policy of this version."""
        return PolicyConfig(
            thresholds=self.thresholds, fairness=self.fairness, sample=self.sample, baseline=self.baseline
        )

    def to_json(self) -> bytes:
        """The bytes written to the store."""
        return canonical_json(self.model_dump(mode="json"))


def version_path(version: int) -> str:
    """``thresholds/threshold_v<N>.json``."""
    return f"{THRESHOLDS_DIR}/threshold_v{version}.json"


def history(store: ComplianceStore) -> list[ThresholdVersion]:
    """Every threshold version, oldest first; ThresholdError naming a file that is not a version record."""
    return read_versions(
        store,
        THRESHOLDS_DIR,
        _VERSION_FILE,
        "threshold_change",
        ThresholdVersion,
        ThresholdError,
        "a threshold version record",
    )


def current(store: ComplianceStore) -> ThresholdVersion | None:
    """The newest version, or None when no version was recorded yet."""
    versions = history(store)
    return versions[-1] if versions else None


def in_force_at(versions: list[ThresholdVersion], timestamp: str) -> ThresholdVersion | None:
    """The version in force at a UTC ``…Z`` timestamp: the last one set at or before it (pure)."""
    earlier = [v for v in versions if v.set_at <= timestamp]
    return earlier[-1] if earlier else None


def _as_policy(new: Thresholds | PolicyConfig, base: ThresholdVersion | None) -> PolicyConfig:
    if isinstance(new, PolicyConfig):
        return new
    if base is None:
        return PolicyConfig(thresholds=new, fairness=FairnessPolicy())
    return base.policy().model_copy(update={"thresholds": new})  # the SOP four change; the rest stays in force


def _record(
    store: ComplianceStore, policy: PolicyConfig, by: str, reason: str, at: datetime | None
) -> ThresholdVersion:
    """Write the next version and its ledger entry (call under the thresholds lock)."""
    signer = ledger.signer_for(store)
    versions = history(store)
    version = ThresholdVersion(
        version=versions[-1].version + 1 if versions else 1,
        thresholds=policy.thresholds,
        fairness=policy.fairness,
        sample=policy.sample,
        baseline=policy.baseline,
        set_by=by,
        reason=reason,
        set_at=iso_utc(at or utc_now()),
    )
    ledger.commit(store, "threshold_change", version.path, version.to_json(), signer=signer)
    return version


def set_thresholds(
    store: ComplianceStore,
    new: Thresholds | PolicyConfig,
    by: str,
    reason: str,
    people: People | None = None,
    at: datetime | None = None,
) -> ThresholdVersion:
    """Record a new version set by an ML Engineering Lead (submitter role) with a reason.

    Given only :class:`Thresholds`, the current fairness, sample and baseline policies are kept. Recording the
    same values again is allowed: it documents a quarterly review that changed nothing.
    """
    roles = people if people is not None else load_people()
    violation = role_violation(roles, by, "submitter")
    if violation:
        raise IdentityError(f"refused: {violation}; thresholds are set by the ML Engineering Lead (SOP §5)")
    if not reason.strip():
        raise ThresholdError("a threshold change needs a reason (--reason)")
    with store.lock(THRESHOLDS_LOCK):
        return _record(store, _as_policy(new, current(store)), by, reason.strip(), at)


def note_config_at_run_start(
    store: ComplianceStore, policy: PolicyConfig, submitter: str, at: datetime | None = None
) -> ThresholdVersion:
    """The version a run uses: the current one, or a new one when the run's config differs from it."""
    with store.lock(THRESHOLDS_LOCK):
        latest = current(store)
        if latest is not None and latest.policy() == policy:
            return latest
        reason = REASON_RUN_START if latest is not None else REASON_FIRST_RUN
        return _record(store, policy, submitter or "unknown submitter", reason, at)
