"""Tester sign-offs (SOP §1 step 3): from the CLI, the console, the ``TESTER`` variable or "Tester ✓" typed in Jira.

A sign-off is a record ``signoffs/signoff_<release>_<ts>.json`` (ledgered) and a comment on the ticket; the
approval record copies the newest one (:func:`latest_signoff`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from credit_scorer.adapters.tickets import TicketTracker, typed_signoffs
from credit_scorer.records import identities
from credit_scorer.records import models as records
from credit_scorer.records.identities import Signer
from credit_scorer.records.models import TesterSignoff, utc_now
from credit_scorer.records.people import RULE_SIGNATURE, IdentityError, People, enforce, role_violation
from credit_scorer.records.store import ComplianceStore, StoreError
from credit_scorer.release.gate import (
    ENV_APPROVER,
    ENV_APPROVER_PASSWORD_FILE,
    ENV_TESTER,
    ENV_TESTER_NOTE,
    ENV_TESTER_PASSWORD_FILE,
    GateInputError,
    choose_channel,
)
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
    person: Signer | None = None,
) -> records.SignoffRecord:
    """Record the tester's "Tester ✓" after checking their role, that they did not submit, and their signature.

    ``person``: the tester's unlocked key, which signs the record (SIG-1; a "Tester ✓" typed in Jira is
    attested by the tracker's account instead; dev mode waives it).
    """
    release_id = candidate.release_id
    problems = [p for p in [role_violation(people, tester, "tester")] if p]
    if tester == candidate.submitter:
        problems.append(f"SoD-2 submitter, tester and approver must be three different people: {tester!r} submitted")
    if person is not None and person.name != tester:
        problems.append(f"{RULE_SIGNATURE}: {person.name!r} cannot sign the sign-off of {tester!r}")
    elif person is None and source != "jira":
        problems.append(f"{RULE_SIGNATURE}: the sign-off of {tester!r} is not signed by them")
    if any(r.approved is not None for r in records.decisions_for(store, release_id)):
        raise AlreadyDecided(f"{release_id} already has a decision; a sign-off now would come after it")
    with refusals_recorded(
        store, tracker, release_id=release_id, run_id=candidate.run_id, actor=tester, action="sign-off", channel=source
    ):
        enforce(problems, dev_mode or people.policy.dev_mode)
    waived = dev_mode or people.policy.dev_mode
    record = records.write_signoff(
        store, candidate.run_id, release_id, tester, note, source, utc_now(), people_version, people_source,
        person=person, dev_mode=waived,
    )  # fmt: skip
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
    """An earlier sign-off; in dev mode also a "Tester ✓" typed in the ticket (Jira) by a tester, recorded now
    (source ``jira``). Outside dev mode a typed mark is no sign-off: a Jira comment carries no personal
    signature (SIG-1), and its author is only a Jira account; the tester signs off with their own key."""
    existing = latest_signoff(store, candidate.release_id)
    if existing is not None or not (dev_mode or people.policy.dev_mode):
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
    with refusals_recorded(
        store, tracker, release_id=candidate.release_id, run_id=candidate.run_id, actor=tester,
        action="sign-off", channel="env",
    ):  # fmt: skip
        person = signer_from_env(store, tester, env, ENV_TESTER_PASSWORD_FILE, dev_mode)
    sign_off(
        store, tracker, people, candidate, tester, note,
        source="env", dev_mode=dev_mode, people_version=version, people_source=source, person=person,
    )  # fmt: skip
    return latest_signoff(store, candidate.release_id)


def signer_from_env(
    store: ComplianceStore, name: str, env: Mapping[str, str], variable: str, dev_mode: bool
) -> Signer | None:
    """``name``'s key unlocked by the password file ``variable`` names (the CI job's secret); None when unset.

    Unset is left to the rules (SIG-1, which dev mode waives); a file that cannot be read or does not open the
    key is refused (:class:`IdentityError`).
    """
    path = env.get(variable, "").strip()
    if not path or (dev_mode and not identities.has_sealed(name)):  # dev mode: people without keys act unsigned
        return None
    return identities.unlock(store, name, identities.read_password_file(Path(path)))


def check_automated_keys(env: Mapping[str, str], dev_mode: bool) -> None:
    """Refuse, before anything runs, an automated decision whose people could not sign it.

    With ``DEPLOY_APPROVAL`` set: ``APPROVER_PASSWORD_FILE`` (and ``TESTER_PASSWORD_FILE`` when ``TESTER`` is set)
    must name a private file whose password opens that person's sealed key (dev mode: only when set).
    """
    if choose_channel(env, stdin_is_terminal=False) != "automated":
        return
    pairs = [(ENV_APPROVER, ENV_APPROVER_PASSWORD_FILE), (ENV_TESTER, ENV_TESTER_PASSWORD_FILE)]
    for person_var, file_var in pairs:
        name, path = env.get(person_var, "").strip(), env.get(file_var, "").strip()
        if not name:
            continue
        if dev_mode and (not path or not identities.has_sealed(name)):
            continue  # dev mode waives SIG-1: unsigned, and the record says dev mode
        if not path:
            raise GateInputError(
                f"{person_var}={name} needs {file_var}: a file (mode 0600) holding their password, which unlocks "
                f"the key that signs ({RULE_SIGNATURE}); nothing was run or recorded"
            )
        try:
            identities.open_sealed(identities.load_sealed(name), identities.read_password_file(Path(path)))
        except IdentityError as exc:
            raise IdentityError(f"{exc} (from {file_var}); nothing was run or recorded") from None
