"""The release gate's pure rules: channel choice, the automated channel, separation of duties, overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from credit_scorer.domain.checks import ThresholdCheck, ThresholdChecks
from credit_scorer.domain.config import Thresholds
from credit_scorer.records import people as identity
from credit_scorer.records.models import TesterSignoff as Signoff
from credit_scorer.records.people import IdentityError, People, ReleasePolicy
from credit_scorer.records.signatures import PersonSignature
from credit_scorer.release import gate
from credit_scorer.release.gate import GateDecision, GateInputError

NOW = "2026-11-27T10:03:55Z"
SUBMITTER = "Ada Lovelace"
TESTER = "Quinn Tester"
APPROVER = "Jane Doe"


def _people(require_tester_signoff: bool = True, dev_mode: bool = False) -> People:
    return People(
        people={
            SUBMITTER: ["submitter"],
            TESTER: ["tester"],
            APPROVER: ["approver"],
            "Pat Both": ["submitter", "approver"],
            "Terry Both": ["tester", "approver"],
            "Avery Auditor": ["auditor"],
        },
        policy=ReleasePolicy(require_tester_signoff=require_tester_signoff, dev_mode=dev_mode),
    )


def _checks(*failed: str) -> ThresholdChecks:
    """The four SOP checks, with the named ones failing."""
    specs = [
        ("Accuracy", 0.82, ">=", 0.80),
        ("Bias disparity", 0.05, "<=", 0.20),
        ("Risk score", 0.10, "<=", 0.40),
        ("Fairness flags", 0.0, "<=", 0.0),
    ]
    return ThresholdChecks(
        thresholds=Thresholds(),
        checks=[
            ThresholdCheck(name=name, value=value, operator=op, limit=limit, passed=name not in failed)
            for name, value, op, limit in specs
        ],
    )


def _signoff(tester: str = TESTER) -> Signoff:
    return Signoff(tester=tester, signed_at=NOW, source="cli", note="Annex IV reviewed")


def _decision(**overrides: Any) -> GateDecision:
    fields: dict[str, Any] = {
        "approved": True,
        "approver": APPROVER,
        "rationale": "Meets KPIs; risk acceptable",
        "decision_mode": "cli",
        "decided_at": NOW,
        "tester_signoff": _signoff(),
    }
    merged = fields | overrides
    if "signature" not in overrides:  # signed by its approver (the rules see who signed; the store checks the key)
        merged["signature"] = PersonSignature(signer=merged["approver"], key_id="0" * 16, signature="c2ln")
    return GateDecision(**merged)


def _env(**values: str) -> dict[str, str]:
    return {"DEPLOY_APPROVAL": "y", "APPROVER": APPROVER, "APPROVAL_RATIONALE": "Meets KPIs"} | values


# ---------------------------------------------------------------------------
# choose_channel
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "terminal", "channel"),
    [
        ({"DEPLOY_APPROVAL": "y"}, True, "automated"),
        ({"DEPLOY_APPROVAL": "n"}, False, "automated"),
        ({"DEPLOY_APPROVAL": "maybe"}, True, "automated"),
        ({}, True, "interactive"),
        ({"DEPLOY_APPROVAL": ""}, True, "interactive"),
        ({"DEPLOY_APPROVAL": "   "}, True, "interactive"),
        ({}, False, "wait"),
        ({"DEPLOY_APPROVAL": ""}, False, "wait"),
        ({"APPROVER": APPROVER, "APPROVAL_RATIONALE": "x"}, False, "wait"),
    ],
)
def test_choose_channel_precedence(env: dict[str, str], terminal: bool, channel: str) -> None:
    assert gate.choose_channel(env, terminal) == channel


# ---------------------------------------------------------------------------
# automated_decision
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("answer", ["y", "Y", "yes", " y "])
def test_automated_yes_with_approver_and_rationale_approves(answer: str) -> None:
    decision = gate.automated_decision(_env(DEPLOY_APPROVAL=answer), _checks(), _signoff(), NOW)
    assert decision.approved is True
    assert decision.refusal_reason is None
    assert (decision.approver, decision.rationale) == (APPROVER, "Meets KPIs")
    assert decision.decision_mode == "automated"
    assert decision.decided_at == NOW
    assert decision.tester_signoff == _signoff()


@pytest.mark.parametrize(
    ("removed", "named"),
    [
        (["APPROVER"], ["APPROVER"]),
        (["APPROVAL_RATIONALE"], ["APPROVAL_RATIONALE"]),
        (["APPROVER", "APPROVAL_RATIONALE"], ["APPROVER", "APPROVAL_RATIONALE"]),
    ],
)
def test_automated_yes_without_approver_or_rationale_names_the_missing_variables(
    removed: list[str], named: list[str]
) -> None:
    env = {k: v for k, v in _env().items() if k not in removed}
    with pytest.raises(GateInputError) as info:
        gate.automated_decision(env, _checks(), _signoff(), NOW)
    message = str(info.value)
    for variable in named:
        assert variable in message
    assert "nothing was recorded" in message
    if named == ["APPROVER"]:
        assert "APPROVAL_RATIONALE" not in message


def test_blank_approver_counts_as_missing() -> None:
    with pytest.raises(GateInputError, match="APPROVER"):
        gate.automated_decision(_env(APPROVER="   "), _checks(), _signoff(), NOW)


@pytest.mark.parametrize("answer", ["maybe", "", "1", "true"])
def test_automated_answer_other_than_y_or_n_names_the_variable(answer: str) -> None:
    with pytest.raises(GateInputError, match="DEPLOY_APPROVAL must be 'y' or 'n'"):
        gate.automated_decision(_env(DEPLOY_APPROVAL=answer), _checks(), _signoff(), NOW)


def test_automated_yes_over_failed_checks_is_a_refusal_naming_them_and_art_14() -> None:
    decision = gate.automated_decision(_env(), _checks("Accuracy", "Risk score"), _signoff(), NOW)
    assert decision.approved is False
    assert decision.refusal_reason is not None
    assert "Accuracy" in decision.refusal_reason
    assert "Risk score" in decision.refusal_reason
    assert "Bias disparity" not in decision.refusal_reason
    assert "Art. 14" in decision.refusal_reason


@pytest.mark.parametrize("answer", ["n", "no", "N"])
def test_automated_no_rejects_without_a_refusal(answer: str) -> None:
    for checks in (_checks(), _checks("Accuracy")):
        decision = gate.automated_decision(_env(DEPLOY_APPROVAL=answer), checks, None, NOW)
        assert decision.approved is False
        assert decision.refusal_reason is None
        assert decision.decision_mode == "automated"


# ---------------------------------------------------------------------------
# validate_decision: separation of duties
# ---------------------------------------------------------------------------
def test_a_valid_decision_passes_with_no_waivers() -> None:
    assert gate.validate_decision(_decision(), _checks(), _people(), SUBMITTER, dev_mode=False) == []


@pytest.mark.parametrize("approver", [TESTER, SUBMITTER, "Avery Auditor", "Nobody Known", "jane doe"])
def test_approver_without_the_approver_role_is_refused_under_sod_1(approver: str) -> None:
    with pytest.raises(IdentityError, match="SoD-1") as info:
        gate.validate_decision(_decision(approver=approver), _checks(), _people(), SUBMITTER, dev_mode=False)
    assert repr(approver) in str(info.value)


def test_submitter_without_the_submitter_role_is_refused_under_sod_1() -> None:
    with pytest.raises(IdentityError, match="SoD-1"):
        gate.validate_decision(_decision(), _checks(), _people(), "Avery Auditor", dev_mode=False)


def test_tester_without_the_tester_role_is_refused_under_sod_1() -> None:
    decision = _decision(tester_signoff=_signoff("Avery Auditor"))
    with pytest.raises(IdentityError, match="SoD-1"):
        gate.validate_decision(decision, _checks(), _people(), SUBMITTER, dev_mode=False)


def test_approver_who_submitted_is_refused_under_sod_2() -> None:
    with pytest.raises(IdentityError, match="SoD-2") as info:
        gate.validate_decision(_decision(approver="Pat Both"), _checks(), _people(), "Pat Both", dev_mode=False)
    assert "SoD-1" not in str(info.value)


def test_approver_who_signed_off_as_tester_is_refused_under_sod_2() -> None:
    decision = _decision(approver="Terry Both", tester_signoff=_signoff("Terry Both"))
    with pytest.raises(IdentityError, match="SoD-2") as info:
        gate.validate_decision(decision, _checks(), _people(), SUBMITTER, dev_mode=False)
    assert "SoD-1" not in str(info.value)


def test_approval_without_a_tester_signoff_is_refused_under_sod_3() -> None:
    with pytest.raises(IdentityError, match="SoD-3"):
        gate.validate_decision(_decision(tester_signoff=None), _checks(), _people(), SUBMITTER, dev_mode=False)


def test_without_the_signoff_policy_an_approval_needs_no_signoff() -> None:
    people = _people(require_tester_signoff=False)
    decision = _decision(tester_signoff=None)
    assert gate.validate_decision(decision, _checks(), people, SUBMITTER, dev_mode=False) == []


def test_a_rejection_needs_no_signoff() -> None:
    decision = _decision(approved=False, tester_signoff=None)
    assert gate.validate_decision(decision, _checks(), _people(), SUBMITTER, dev_mode=False) == []


@pytest.mark.parametrize("via", ["flag", "policy"])
def test_dev_mode_returns_the_waived_rules_instead_of_raising(via: str) -> None:
    people = _people(dev_mode=via == "policy")
    decision = _decision(approver=SUBMITTER, tester_signoff=None)
    waivers = gate.validate_decision(decision, _checks(), people, SUBMITTER, dev_mode=via == "flag")
    joined = " | ".join(waivers)
    assert "SoD-1" in joined  # the submitter is not an approver
    assert "SoD-2" in joined  # the same person submits and approves
    assert "SoD-3" in joined  # no tester sign-off
    assert all(w.startswith("SoD-") for w in waivers)


def test_enforce_lists_every_problem_in_the_refusal() -> None:
    problems = identity.duty_violations(_people(), SUBMITTER, SUBMITTER, SUBMITTER)
    with pytest.raises(IdentityError) as info:
        identity.enforce(problems, dev_mode=False)
    message = str(info.value)
    assert message.startswith("refused: ")
    assert message.count("SoD-2") == 2  # tester and approver both repeat the submitter
    assert "SoD-1" in message


def test_role_violation_explains_what_the_person_holds() -> None:
    people = _people()
    assert identity.role_violation(people, APPROVER, "approver") is None
    assert "holds: tester" in (identity.role_violation(people, TESTER, "approver") or "")
    assert "not an approver" in (identity.role_violation(people, TESTER, "approver") or "")
    assert "not in the people/roles file" in (identity.role_violation(people, "Ghost", "tester") or "")
    assert "no tester name given" in (identity.role_violation(people, "  ", "tester") or "")
    assert people.holders("approver") == [APPROVER, "Pat Both", "Terry Both"]


# ---------------------------------------------------------------------------
# validate_decision: failed checks, overrides, rationale
# ---------------------------------------------------------------------------
def test_approval_over_a_failed_check_without_override_is_refused() -> None:
    with pytest.raises(GateInputError, match=r"threshold checks failed \(Risk score\).*override"):
        gate.validate_decision(_decision(), _checks("Risk score"), _people(), SUBMITTER, dev_mode=False)


def test_override_without_its_own_rationale_is_refused() -> None:
    for missing in (None, "", "   "):
        decision = _decision(threshold_override=True, override_rationale=missing)
        with pytest.raises(GateInputError, match=r"override .* needs its own rationale"):
            gate.validate_decision(decision, _checks("Accuracy"), _people(), SUBMITTER, dev_mode=False)


def test_override_with_its_rationale_is_allowed() -> None:
    decision = _decision(threshold_override=True, override_rationale="Pilot on 1% of traffic, risk accepted")
    assert gate.validate_decision(decision, _checks("Accuracy"), _people(), SUBMITTER, dev_mode=False) == []


def test_dev_mode_does_not_waive_the_override_rule() -> None:
    with pytest.raises(GateInputError, match="override"):
        gate.validate_decision(_decision(), _checks("Accuracy"), _people(), SUBMITTER, dev_mode=True)


def test_rejecting_over_failed_checks_needs_no_override() -> None:
    decision = _decision(approved=False)
    assert gate.validate_decision(decision, _checks("Accuracy"), _people(), SUBMITTER, dev_mode=False) == []


def test_an_automated_approval_over_failed_checks_is_refused_even_with_an_override() -> None:
    decision = _decision(decision_mode="automated", threshold_override=True, override_rationale="CI says so")
    with pytest.raises(IdentityError, match="automated approval cannot override failed threshold checks"):
        gate.validate_decision(decision, _checks("Fairness flags"), _people(), SUBMITTER, dev_mode=False)


def test_an_automated_approval_with_all_checks_passed_is_allowed() -> None:
    decision = _decision(decision_mode="automated")
    assert gate.validate_decision(decision, _checks(), _people(), SUBMITTER, dev_mode=False) == []


@pytest.mark.parametrize("rationale", ["", "  ", "\n"])
def test_an_empty_rationale_is_refused(rationale: str) -> None:
    for approved in (True, False):
        with pytest.raises(GateInputError, match="non-empty rationale"):
            gate.validate_decision(
                _decision(approved=approved, rationale=rationale), _checks(), _people(), SUBMITTER, dev_mode=False
            )


def test_people_file_from_the_repository_holds_the_demo_roles() -> None:
    people = identity.load_people(Path(__file__).resolve().parents[2] / "conf" / "people.yaml")
    assert people.roles(SUBMITTER) == ["submitter"]
    assert people.roles(TESTER) == ["tester"]
    assert people.roles(APPROVER) == ["approver"]
    assert people.policy.require_tester_signoff is True
    assert people.policy.dev_mode is False


def test_every_channel_builds_its_decision_with_make_decision() -> None:
    """One builder: no module but gate.make_decision calls GateDecision(...)."""
    import ast

    src = Path(__file__).resolve().parents[2] / "src" / "credit_scorer"
    built = []
    for path in sorted(src.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == (
                    "GateDecision"
                ):
                    built.append(f"{path.relative_to(src)}:{function.name}")
    assert built == ["release/gate.py:make_decision"]


def test_make_decision_trims_and_keeps_an_override_only_on_an_approval() -> None:
    request = gate.DecisionRequest(
        approve=False, approver="  Jane Doe ", rationale=" not yet ", override=True, override_rationale="because"
    )
    decision = gate.make_decision(request, "cli", NOW, None)
    assert (decision.approver, decision.rationale) == ("Jane Doe", "not yet")
    assert (decision.approved, decision.threshold_override, decision.override_rationale) == (False, False, None)
    approving = request.model_copy(update={"approve": True, "override_rationale": "  "})
    decision = gate.make_decision(approving, "console", NOW, None)
    assert (decision.threshold_override, decision.override_rationale) == (True, None)  # validate_decision refuses it
    refused = gate.make_decision(approving, "automated", NOW, None, refusal_reason="checks failed")
    assert (refused.approved, refused.refusal_reason) == (False, "checks failed")


# ---------------------------------------------------------------------------
# SIG-1: a decision carries its approver's signature
# ---------------------------------------------------------------------------
def test_an_unsigned_decision_is_refused_under_sig_1() -> None:
    with pytest.raises(IdentityError, match="SIG-1"):
        gate.validate_decision(_decision(signature=None), _checks(), _people(), SUBMITTER, dev_mode=False)


def test_a_decision_signed_by_someone_else_is_refused_under_sig_1() -> None:
    other = PersonSignature(signer="Terry Both", key_id="1" * 16, signature="c2ln")
    with pytest.raises(IdentityError, match="SIG-1"):
        gate.validate_decision(_decision(signature=other), _checks(), _people(), SUBMITTER, dev_mode=False)


def test_dev_mode_waives_the_signature_and_says_so() -> None:
    waivers = gate.validate_decision(_decision(signature=None), _checks(), _people(), SUBMITTER, dev_mode=True)
    assert [w for w in waivers if w.startswith("SIG-1")]
