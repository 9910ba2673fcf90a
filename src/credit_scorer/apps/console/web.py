"""What every console route shares: its session, sign-in redirect, rendering, POST checks and error statuses."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from credit_scorer.apps.console import actions, views
from credit_scorer.apps.console.sessions import SESSION_COOKIE, Session, tokens_match
from credit_scorer.apps.console.state import Console, Refused
from credit_scorer.core.errors import CreditScorerError, Forbidden
from credit_scorer.core.ids import is_release_id
from credit_scorer.records.models import decisions_for


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def session_of(request: Request) -> Session | None:
    """The request's signed-in session, ended here when its person lost the credential or role it was made with."""
    console = console_of(request)
    session = console.sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is not None and not console.still_valid(session):
        console.sessions.end(session.session_id)
        return None
    return session


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def render(request: Request, name: str, session: Session | None, status: int = 200, **context: Any) -> Response:
    """A page from ``templates/`` (autoescaped), with the session's flash messages shown once."""
    templates: Jinja2Templates = request.app.state.templates
    flash = list(session.flash) if session else []
    if session:
        session.flash.clear()
    return templates.TemplateResponse(
        request, name, {"session": session, "flash": flash, **context}, status_code=status
    )


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


def refuse_post(request: Request, session: Session | None, token: str | None) -> Response | None:
    """A response refusing the POST (anonymous, no or wrong CSRF token, other origin), else None."""
    if session is None:
        return render(
            request, "refused.html.j2", None, 403, message="Sign in first: this action needs a signed-in session."
        )
    if not same_origin(request) or not tokens_match(session.csrf_token, token):
        return render(
            request,
            "refused.html.j2",
            session,
            403,
            message="The form's security token is missing or out of date (CSRF check). Reload the page and "
            "try again; nothing was recorded.",
        )
    return None


def detail_page(request: Request, session: Session, release_id: str, status: int = 200, **extra: Any) -> Response:
    """The release page (with an error and the posted form when an action was refused)."""
    console = console_of(request)
    try:
        with console.zenml():
            detail = views.release_detail(
                console.store, console.tracker, console.deployer, release_id, console.resumer.state
            )
    except KeyError:
        message = extra.get("error") or f"No release {release_id} in the store."
        return render(request, "refused.html.j2", session, status if status != 200 else 404, message=message)
    return render(
        request,
        "release.html.j2",
        session,
        status,
        d=detail,
        resume_code=console.resumer.exit_code(release_id),
        resume_log=console.resumer.log_tail(release_id),
        resume_failure=console.resumer.failure(release_id) if detail.row.status == "resume-failed" else None,
        form=extra.pop("form", {}),
        error=extra.pop("error", None),
        dev_mode=console.settings.dev_mode,
        **extra,
    )


def run_of(console: Console, release_id: str) -> str:
    """The run of a release in the store, from its records (the submission record); Refused 404 otherwise."""
    if not is_release_id(release_id) or release_id not in views.release_ids(console.store):
        raise Refused(404, f"No release {release_id} in the store.")
    run_id, _ = views.origin_of(console.store, release_id, decisions_for(console.store, release_id))
    if not run_id:
        raise Refused(404, f"{release_id} has no submission record naming its run; it cannot be decided here")
    return run_id


def status_for(exc: Exception) -> int:
    """The HTTP status an error class carries (core/errors.py); a console refusal is a conflict."""
    if isinstance(exc, actions.ConsoleRefused) and not isinstance(exc, Forbidden):
        return 409
    if isinstance(exc, CreditScorerError):
        return exc.http_status
    return 404 if isinstance(exc, KeyError) else 422


def message_of(exc: Exception) -> str:
    return str(exc).strip("'\"")


def safe_next(target: str) -> str:
    """Only redirect to a path on this site after sign-in."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/releases"
    return target
