"""Sign-in and sign-out: ``GET``/``POST /login``, ``POST /logout``, ``GET /`` (to the releases page)."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from credit_scorer.apps.console import users
from credit_scorer.apps.console.sessions import BUSY, LOGIN_COOKIE, SESSION_COOKIE, tokens_match
from credit_scorer.apps.console.web import (
    console_of,
    refuse_post,
    render,
    safe_next,
    same_origin,
    session_of,
)
from credit_scorer.core.errors import CreditScorerError

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/releases") -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html.j2", None, login_token=token, next=safe_next(next), error=None)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login")
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    name: str = Form(""),
    password: str = Form(""),
    csrf_token: str = Form(""),
    next: str = Form("/releases"),
) -> Response:
    console = console_of(request)
    cookie = request.cookies.get(LOGIN_COOKIE) or ""
    if not same_origin(request) or not cookie or not tokens_match(cookie, csrf_token):
        return render(
            request,
            "refused.html.j2",
            None,
            403,
            message="The sign-in form's security token is missing or out of date. Open the sign-in page again.",
        )
    name = name.strip()
    error = None
    wait = console.sessions.begin_attempt(name)  # reserved before the password is verified
    if wait == BUSY:
        busy = render(
            request,
            "login.html.j2",
            None,
            429,
            login_token=cookie,
            next=safe_next(next),
            error="The console is checking other sign-ins right now; try again in a second.",
        )
        busy.headers["Retry-After"] = "1"
        return busy
    if wait:
        error = f"Too many failed sign-ins for this name; try again in {int(wait) + 1} s."
    else:
        credential = None
        try:
            credential = users.verify(console.credentials(), console.people(), name, password)
        except CreditScorerError as exc:
            error = str(exc)
        finally:
            console.sessions.end_attempt(name, succeeded=credential is not None)
        if credential is not None:
            session = console.sessions.create(name, credential.role, users.fingerprint(credential))
            signed_in = RedirectResponse(safe_next(next), status_code=303)
            signed_in.set_cookie(SESSION_COOKIE, session.session_id, httponly=True, samesite="strict", path="/")
            signed_in.delete_cookie(LOGIN_COOKIE, path="/login")
            return signed_in
        error = error or "Wrong name or password (or your role was removed from the people/roles file)."
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html.j2", None, 401, login_token=token, next=safe_next(next), error=error)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login")
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: str = Form("")) -> Response:
    console = console_of(request)
    session = session_of(request)
    refused = refuse_post(request, session, csrf_token)
    if refused:
        return refused
    console.sessions.end(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse("/releases", status_code=303)
