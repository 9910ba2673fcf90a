"""Tester sign-offs (SOP §1 step 3): from the CLI, the console, the ``TESTER`` variable or "Tester ✓" typed in Jira.

A sign-off is a record ``signoffs/signoff_<release>_<ts>.json`` (ledgered) and a comment on the ticket; the
approval record copies the newest one (:func:`latest_signoff`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from credit_scorer.adapters.tickets import TicketTracker, typed_signoffs
from credit_scorer.records import models as records
from credit_scorer.records.models import TesterSignoff, utc_now
from credit_scorer.records.people import People, enforce, role_violation
from credit_scorer.records.store import ComplianceStore, StoreError
from credit_scorer.release.gate import ENV_TESTER, ENV_TESTER_NOTE
from credit_scorer.release.refusals import refusals_recorded
from credit_scorer.release.workflow import AlreadyDecided, ReleaseCandidate, SignoffSource, comment_with_checkpoint

log = logging.getLogger(__name__)


def latest_signoff(store: ComplianceStore, release_id: str) -> TesterSignoff | None:
    """The newest tester sign-off of a release, as the approval record holds it."""
    found = records.signoffs_for(store, release_id)
    if not found:
        return None
    last = found[-1]
    return TesterSignoff(
        tester=last.tester,
        signed_at=last.timestamp,
        source=last.source,
        note=last.note,
        signoff_id=last.signoff_id,
    )


def sign_off(
    store: ComplianceStore,
    tracker: TicketTracker,
    people: People,
    candidate: ReleaseCandidate,
    tester: str,
    note: str,
    *,
    source: SignoffSource,
    dev_mode: bool,
    people_version: int | None = None,
    people_source: str | None = None,
) -> records.SignoffRecord:
    """Record the tester's "Tester ✓" after checking their role and that they did not submit."""
    release_id = candidate.release_id
    problems = [p for p in [role_violation(people, tester, "tester")] if p]
    if tester == candidate.submitter:
        problems.append(f"SoD-2 submitter, tester and approver must be three different people: {tester!r} submitted")
    if any(r.approved is not None for r in records.decisions_for(store, release_id)):
        raise AlreadyDecided(f"{release_id} already has a decision; a sign-off now would come after it")
    with refusals_recorded(
        store, tracker, release_id=release_id, run_id=candidate.run_id, actor=tester, action="sign-off", channel=source
    ):
        enforce(problems, dev_mode or people.policy.dev_mode)
    record = records.write_signoff(
        store, candidate.run_id, release_id, tester, note, source, utc_now(), people_version, people_source
    )
    comment_with_checkpoint(store, tracker, release_id, tester, "signoff", f"Tester ✓ {note}".strip())
    return record


def signoff_from_tracker(
    store: ComplianceStore,
    tracker: TicketTracker,
    people: People,
    candidate: ReleaseCandidate,
    *,
    dev_mode: bool,
    people_version: int | None = None,
    people_source: str | None = None,
) -> TesterSignoff | None:
    """An earlier sign-off, else a "Tester ✓" typed in the ticket (Jira) by a tester, recorded now (source ``jira``)."""
    existing = latest_signoff(store, candidate.release_id)
    if existing is not None:
        return existing
    try:
        found = typed_signoffs(tracker.get(candidate.release_id), people.holders("tester"))
    except (StoreError, OSError) as exc:
        log.warning("could not read the ticket for a sign-off typed there: %s", exc)
        return None
    if not found:
        return None
    comment = found[0]
    sign_off(
        store, tracker, people, candidate, comment.author, comment.body,
        source="jira", dev_mode=dev_mode, people_version=people_version, people_source=people_source,
    )  # fmt: skip
    return latest_signoff(store, candidate.release_id)


def signoff_from_env(
    store: ComplianceStore,
    tracker: TicketTracker,
    people: People,
    candidate: ReleaseCandidate,
    env: Mapping[str, str],
    dev_mode: bool,
) -> TesterSignoff | None:
    """An earlier sign-off or one typed in Jira, else one from ``TESTER`` (recorded now, source ``env``)."""
    version, source = candidate.people_version, candidate.people_source
    existing = signoff_from_tracker(
        store, tracker, people, candidate, dev_mode=dev_mode, people_version=version, people_source=source
    )
    if existing is not None:
        return existing
    tester = env.get(ENV_TESTER, "").strip()
    if not tester:
        return None
    note = env.get(ENV_TESTER_NOTE, "signed off via the TESTER variable")
    sign_off(
        store, tracker, people, candidate, tester, note,
        source="env", dev_mode=dev_mode, people_version=version, people_source=source,
    )  # fmt: skip
    return latest_signoff(store, candidate.release_id)
