"""The release gate's decision rules (SOP §1 steps 2–4, §2), as pure functions.

Decision channels, the first that applies:

1. ``DEPLOY_APPROVAL`` is set → *automated*. ``y`` needs ``APPROVER`` and
   ``APPROVAL_RATIONALE``; automated approval is refused when any threshold check
   failed (a human must decide, AI Act Art. 14); ``n`` rejects.
2. An interactive terminal → *interactive*: y/n, rationale, name; approving over a
   failed check needs a typed override.
3. Otherwise → *wait*: the run pauses (``zenml.wait``) until ``credit-scorer approve``
   or the web console resolves it (decision modes ``cli`` / ``console``).

Whatever the channel, :func:`validate_decision` applies the same rules: the approver
holds the approver role, submitter/tester/approver are distinct people, the tester has
signed off first (policy), and an approval over a failed check is an explicit override
with its own rationale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from credit_scorer.core.errors import CreditScorerError
from credit_scorer.domain.checks import ThresholdChecks
from credit_scorer.records.models import DecisionMode, PersonSigner, TesterSignoff, decision_hash
from credit_scorer.records.people import (
    RULE_SIGNATURE,
    RULE_SIGNOFF,
    IdentityError,
    People,
    duty_violations,
    enforce,
    role_violation,
)
from credit_scorer.records.signatures import PersonSignature

Channel = Literal["automated", "interactive", "wait"]

ENV_DECISION = "DEPLOY_APPROVAL"
ENV_APPROVER = "APPROVER"
ENV_RATIONALE = "APPROVAL_RATIONALE"
ENV_TESTER = "TESTER"
ENV_TESTER_NOTE = "TESTER_NOTE"
ENV_TESTER_PASSWORD_FILE = "TESTER_PASSWORD_FILE"
ENV_APPROVER_PASSWORD_FILE = "APPROVER_PASSWORD_FILE"
ENV_JOB = "DEPLOY_JOB"
OVERRIDE_WORD = "OVERRIDE"
WAIT_CONDITION = "release_gate"
TERMINAL_METADATA = "gate_terminal"
"""Run metadata of a run asking at a terminal: ``{"pid", "host", "since"}`` (so ``pending`` lists it)."""


class GateInputError(CreditScorerError, ValueError):
    """A decision's input is incomplete (e.g. APPROVER missing); nothing was recorded."""


class GateDecision(BaseModel):
    """A decision at the gate, before it is recorded. Also the schema of the ZenML wait condition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    approved: bool
    approver: str
    rationale: str
    decision_mode: DecisionMode
    decided_at: str
    threshold_override: bool = False
    override_rationale: str | None = None
    refusal_reason: str | None = None
    tester_signoff: TesterSignoff | None = None
    job: str | None = None
    """The CI job that made an automated decision (``DEPLOY_JOB``, else user@host)."""
    signature: PersonSignature | None = None
    """The approver's signature over :func:`decision_values` (records/models.decision_hash); None in dev mode."""


def decision_values(decision: GateDecision, release_id: str, run_id: str, model_sha256: str) -> dict[str, object]:
    """The fields of the approval record a decision fixes (what its approver signs)."""
    return {
        "release_id": release_id,
        "run_id": run_id,
        "model_sha256": model_sha256,
        "timestamp": decision.decided_at,
        "decision_mode": decision.decision_mode,
        "approved": decision.approved,
        "approver": decision.approver,
        "rationale": decision.rationale,
        "threshold_override": decision.threshold_override,
        "override_rationale": decision.override_rationale,
        "refusal_reason": decision.refusal_reason,
        "tester_signoff": decision.tester_signoff.model_dump(mode="json") if decision.tester_signoff else None,
        "job": decision.job,
    }


def sign_decision(
    decision: GateDecision, release_id: str, run_id: str, model_sha256: str, person: PersonSigner
) -> GateDecision:
    """The decision with its approver's signature (``person`` is their unlocked key)."""
    digest = decision_hash(decision_values(decision, release_id, run_id, model_sha256))
    return decision.model_copy(update={"signature": person(digest)})


class DecisionRequest(BaseModel):
    """What an approver asked for, from any channel, before the gate's rules are applied."""

    model_config = ConfigDict(frozen=True)

    approve: bool
    approver: str
    rationale: str
    override: bool = False
    override_rationale: str | None = None


def make_decision(
    request: DecisionRequest,
    mode: DecisionMode,
    decided_at: str,
    signoff: TesterSignoff | None,
    refusal_reason: str | None = None,
) -> GateDecision:
    """The one place a :class:`GateDecision` is built — terminal, automated, ``approve`` and console alike.

    Names and texts are trimmed; an override exists only on an approval; a refusal turns an approval into none.
    """
    override = request.approve and request.override
    return GateDecision(
        approved=request.approve and refusal_reason is None,
        approver=request.approver.strip(),
        rationale=request.rationale.strip(),
        decision_mode=mode,
        decided_at=decided_at,
        threshold_override=override,
        override_rationale=((request.override_rationale or "").strip() or None) if override else None,
        refusal_reason=refusal_reason,
        tester_signoff=signoff,
    )


def choose_channel(env: Mapping[str, str], stdin_is_terminal: bool) -> Channel:
    """The first decision channel that applies."""
    if env.get(ENV_DECISION, "").strip():
        return "automated"
    if stdin_is_terminal:
        return "interactive"
    return "wait"


def check_automated_env(env: Mapping[str, str], people: People, dev_mode: bool) -> None:
    """Refuse, before anything runs or is recorded, CI variables the automated channel could not act on.

    Only when ``DEPLOY_APPROVAL`` is set: it must be y/yes/n/no; ``APPROVER`` and ``APPROVAL_RATIONALE``
    must be set; ``APPROVER`` must hold the approver role and ``TESTER`` (when set) the tester role
    (unless dev mode waives roles). Raises :class:`GateInputError` or :class:`IdentityError` naming the variable.
    """
    if choose_channel(env, stdin_is_terminal=False) != "automated":
        return
    answer = env.get(ENV_DECISION, "").strip().lower()
    if answer not in {"y", "yes", "n", "no"}:
        raise GateInputError(
            f"{ENV_DECISION} must be 'y' or 'n' (or yes/no), not {env.get(ENV_DECISION)!r}; nothing was run or recorded"
        )
    missing = [name for name in (ENV_APPROVER, ENV_RATIONALE) if not env.get(name, "").strip()]
    if missing:
        raise GateInputError(
            f"{ENV_DECISION}={answer} needs {' and '.join(missing)} to be set; nothing was run or recorded"
        )
    problems = {ENV_APPROVER: role_violation(people, env[ENV_APPROVER].strip(), "approver")}
    tester = env.get(ENV_TESTER, "").strip()
    if tester:
        problems[ENV_TESTER] = role_violation(people, tester, "tester")
    found = [f"{problem} (from the {var} variable)" for var, problem in problems.items() if problem]
    if found and not (dev_mode or people.policy.dev_mode):
        raise IdentityError("refused: " + "; ".join(found) + "; nothing was run or recorded")


def automated_decision(
    env: Mapping[str, str], checks: ThresholdChecks, signoff: TesterSignoff | None, decided_at: str
) -> GateDecision:
    """The decision the CI variables express; a refusal when they approve over a failed check.

    Raises :class:`GateInputError` (before anything is recorded) when a variable is missing
    or ``DEPLOY_APPROVAL`` is neither ``y`` nor ``n``.
    """
    answer = env.get(ENV_DECISION, "").strip().lower()
    if answer not in {"y", "yes", "n", "no"}:
        raise GateInputError(f"{ENV_DECISION} must be 'y' or 'n', not {env.get(ENV_DECISION)!r}")
    approver = env.get(ENV_APPROVER, "").strip()
    rationale = env.get(ENV_RATIONALE, "").strip()
    missing = [name for name, value in ((ENV_APPROVER, approver), (ENV_RATIONALE, rationale)) if not value]
    if missing:
        raise GateInputError(f"{ENV_DECISION}={answer} needs {' and '.join(missing)} to be set; nothing was recorded")
    approved = answer in {"y", "yes"}
    refusal = None
    if approved and not checks.all_passed:
        refusal = (
            "automated approval refused: threshold checks failed ("
            + checks.failed_text
            + "); a human must decide (EU AI Act Art. 14) in a terminal, with credit-scorer approve, "
            "or in the console"
        )
    request = DecisionRequest(approve=approved, approver=approver, rationale=rationale)
    return make_decision(request, "automated", decided_at, signoff, refusal)


def check_decider(
    people: People,
    submitter: str,
    signoff: TesterSignoff | None,
    approver: str,
    approving: bool,
    dev_mode: bool,
) -> list[str]:
    """The identity rules of a decision (SoD-1/2/3) for ``approver``; return waived rules (dev mode) or raise.

    The terminal applies these to the typed name before it asks anything else.
    """
    tester = signoff.tester if signoff else None
    problems = duty_violations(people, submitter, tester, approver)
    if approving and tester is None and people.policy.require_tester_signoff:  # dev mode waives it below
        problems.append(f"{RULE_SIGNOFF}: no tester sign-off recorded for this release")
    return enforce(problems, dev_mode or people.policy.dev_mode)


def signoff_required(people: People, dev_mode: bool) -> bool:
    """Whether an approval must wait for the tester's sign-off (policy, unless dev mode waives it)."""
    return people.policy.require_tester_signoff and not (dev_mode or people.policy.dev_mode)


def validate_decision(
    decision: GateDecision,
    checks: ThresholdChecks,
    people: People,
    submitter: str,
    dev_mode: bool,
) -> list[str]:
    """Apply the gate's rules to a decision; return waived rules (dev mode) or raise.

    Raises :class:`IdentityError` naming the broken rule, or :class:`GateInputError`
    when an approval over a failed check lacks an explicit override and its rationale.
    """
    if not decision.rationale.strip():
        raise GateInputError("a decision needs a non-empty rationale")
    waivers = check_decider(people, submitter, decision.tester_signoff, decision.approver, decision.approved, dev_mode)
    if decision.threshold_override and checks.all_passed:
        raise GateInputError("every threshold check passed; there is nothing to override")
    if decision.approved and not checks.all_passed:
        if not decision.threshold_override:
            raise GateInputError(
                "threshold checks failed (" + checks.failed_text + "): approving needs an explicit override "
                "(type OVERRIDE in the terminal, --override with credit-scorer approve, "
                "or tick the console's override box)"
            )
        if not (decision.override_rationale or "").strip():
            raise GateInputError("an override of failed threshold checks needs its own rationale")
    if decision.approved and decision.decision_mode == "automated" and not checks.all_passed:
        raise IdentityError("automated approval cannot override failed threshold checks")
    if decision.signature is None or decision.signature.signer != decision.approver:
        waivers += enforce(
            [f"{RULE_SIGNATURE}: the decision of {decision.approver!r} is not signed by them"],
            dev_mode or people.policy.dev_mode,
        )
    return waivers
