"""Actions at the release gate: sign-off (tester), decision and retrying its resume (approver)."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from credit_scorer.apps.console import actions, views
from credit_scorer.apps.console.state import Refused
from credit_scorer.apps.console.web import (
    console_of,
    detail_page,
    message_of,
    refuse_post,
    run_of,
    session_of,
    status_for,
)
from credit_scorer.core.errors import CreditScorerError
from credit_scorer.pipelines import run as runs
from credit_scorer.records.people import RULE_ROLE

router = APIRouter()


@router.post("/releases/{release_id}/signoff", response_class=HTMLResponse)
def signoff(
    request: Request, release_id: str, csrf_token: str = Form(""), note: str = Form(""), password: str = Form("")
) -> Response:
    console = console_of(request)
    session = session_of(request)
    refused = refuse_post(request, session, csrf_token)
    if refused:
        return refused
    assert session is not None
    form = {"note": note}
    try:
        run_id = run_of(console, release_id)
        if session.role != "tester":
            raise Refused(
                403,
                f"{RULE_ROLE}: you are signed in as {session.role}; only the QA lead (tester role) signs off",
            )
        with console.deciding(release_id), console.zenml():
            record = actions.console_sign_off(
                console.store,
                console.tracker,
                console.people(),
                release_id,
                run_id,
                session.name,
                note.strip() or "Reviewed in the approval console",
                console.settings.dev_mode,
                password,
            )
    except Refused as exc:
        return detail_page(request, session, release_id, exc.status, error=exc.message, form=form)
    except (CreditScorerError, runs.NotWaiting, KeyError) as exc:
        return detail_page(request, session, release_id, status_for(exc), error=message_of(exc), form=form)
    session.flash.append(("ok", f"Tester ✓ recorded for {release_id} ({record.signoff_id})."))
    return RedirectResponse(f"/releases/{release_id}", status_code=303)


@router.post("/releases/{release_id}/decision", response_class=HTMLResponse)
def decision(
    request: Request,
    release_id: str,
    csrf_token: str = Form(""),
    verdict: str = Form(""),
    rationale: str = Form(""),
    override: str = Form(""),
    override_rationale: str = Form(""),
    condition_id: str = Form(""),
    password: str = Form(""),
) -> Response:
    console = console_of(request)
    session = session_of(request)
    refused = refuse_post(request, session, csrf_token)
    if refused:
        return refused
    assert session is not None
    form = {
        "verdict": verdict,
        "rationale": rationale,
        "override": bool(override),
        "override_rationale": override_rationale,
    }
    try:
        run_id = run_of(console, release_id)
        if session.role != "approver":
            raise Refused(
                403,
                f"{RULE_ROLE}: you are signed in as {session.role}; only an approver (AI compliance officer) "
                "approves or rejects a release",
            )
        if verdict not in {"approve", "reject"}:
            raise Refused(422, "Choose Approve or Reject.")
        if not rationale.strip():
            raise Refused(422, "A decision needs a rationale; it is recorded verbatim.")
        posted = actions.DecisionForm(
            approve=verdict == "approve",
            rationale=rationale,
            override=bool(override),
            override_rationale=override_rationale,
            condition_id=condition_id,
            password=password,
        )
        with console.deciding(release_id), console.zenml():
            gate_decision = actions.check_decision(
                console.store,
                console.tracker,
                console.people(),
                release_id,
                run_id,
                session.name,
                posted,
                console.settings.dev_mode,
            )
            runs.resolve_gate(run_id, gate_decision, condition_id or None)
            console.resumer.start(release_id, run_id)
    except Refused as exc:
        return detail_page(request, session, release_id, exc.status, error=exc.message, form=form)
    except (CreditScorerError, runs.NotWaiting, KeyError) as exc:
        return detail_page(request, session, release_id, status_for(exc), error=message_of(exc), form=form)
    verb = "Approval" if gate_decision.approved else "Rejection"
    session.flash.append(
        (
            "ok",
            f"{verb} of {release_id} submitted; the run is resuming and will write the approval record "
            f"(decision mode console){' and deploy' if gate_decision.approved else ''}.",
        )
    )
    return RedirectResponse(f"/releases/{release_id}", status_code=303)


@router.post("/releases/{release_id}/resume", response_class=HTMLResponse)
def retry_resume(request: Request, release_id: str, csrf_token: str = Form("")) -> Response:
    """Run the resume of a submitted decision again after it failed; the decision itself is not asked for again."""
    console = console_of(request)
    session = session_of(request)
    refused = refuse_post(request, session, csrf_token)
    if refused:
        return refused
    assert session is not None
    try:
        run_id = run_of(console, release_id)
        if session.role != "approver":
            raise Refused(
                403,
                f"{RULE_ROLE}: you are signed in as {session.role}; only an approver (AI compliance officer) "
                "retries the resume of a decision",
            )
        with console.deciding(release_id), console.zenml():
            status = views.release_status(
                console.store, console.tracker, console.deployer, release_id, console.resumer.state
            )
            if status.row.status != "resume-failed":
                raise Refused(
                    409, f"nothing to retry: {release_id} is {status.row.status_label.lower()}; reload the page"
                )
            console.resumer.note(release_id, f"retry requested by {session.name} in the console")
            console.resumer.start(release_id, run_id)
    except Refused as exc:
        return detail_page(request, session, release_id, exc.status, error=exc.message)
    except (CreditScorerError, KeyError, OSError) as exc:
        return detail_page(request, session, release_id, status_for(exc), error=message_of(exc))
    session.flash.append(("ok", f"Resuming {release_id} again with the decision already submitted."))
    return RedirectResponse(f"/releases/{release_id}", status_code=303)
