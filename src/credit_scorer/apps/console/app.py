"""The approval console: FastAPI + Jinja2 pages where the QA lead signs off and the approver decides.

Routes (all but ``/login`` and ``/static`` need a signed-in session):

- ``GET /login``, ``POST /login``, ``POST /logout``
- ``GET /releases``: waiting at the gate, then history
- ``GET /releases/{release_id}``: checks, fairness, risk, Annex IV, ticket, sign-offs, decisions
- ``GET /releases/{release_id}/status.json``: progress of a resumed run (polled by the page)
- ``GET /releases/{release_id}/annex-iv.pdf`` and ``.html``
- ``POST /releases/{release_id}/signoff`` (tester role), ``POST /releases/{release_id}/decision`` (approver role)
- ``POST /releases/{release_id}/resume`` (approver role): run a failed resume of a submitted decision again
- ``GET /audit``: every ledgered record with its verification status

Where each lives: ``routes_signin.py`` (sign-in), ``routes_releases.py`` (pages to read, documents, audit),
``routes_gate.py`` (sign-off, decision, retry); ``web.py`` (session, rendering, POST checks, error statuses);
``state.py`` (the console's state); ``views.py`` (what a page shows); ``actions.py`` (what an action records).

Every POST must carry the session's CSRF token; a request from another origin is refused.
Every request re-checks its session against the credentials file and the people/roles file
(each re-read only when it changes): a removed person, a changed role or a changed password
ends the session at once. Every page is rendered with autoescaping on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from credit_scorer import __version__
from credit_scorer.apps.console import routes_gate, routes_releases, routes_signin
from credit_scorer.apps.console.state import Console, ConsoleSettings

__all__ = ["Console", "ConsoleSettings", "create_console", "template_environment"]

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'self'; frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# Bidi controls (RLO, LRI …) in a name or note would reorder what the page shows around them;
# they are shown as visible [U+202E] marks instead.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_VISIBLE_CONTROLS = {ord(c): f"[U+{ord(c):04X}]" for c in BIDI_CONTROLS}


def _show_controls(value: Any) -> Any:
    """Every ``{{ … }}`` value before it is escaped: bidi controls made visible (escaped text stays escaped)."""
    if isinstance(value, str):
        return value.translate(_VISIBLE_CONTROLS)  # on Markup, translate returns Markup: still escaped
    return value


def http_url(value: Any) -> str:
    """The URL if it is an absolute http(s) URL, else "" (a record's URL is a link only then)."""
    text = str(value or "")
    parts = urlsplit(text)
    return text if parts.scheme.lower() in {"http", "https"} and parts.netloc and text == text.strip() else ""


def template_environment() -> jinja2.Environment:
    """The Jinja2 environment of every console page: autoescaping on for every template, whatever its name.

    (Starlette's default turns autoescaping on by file extension, and ``.j2`` is not one it knows.)
    """
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        finalize=_show_controls,
    )
    environment.filters["http_url"] = http_url
    environment.globals["version"] = __version__
    return environment


def create_console(settings: ConsoleSettings) -> FastAPI:
    """The console app: its state, templates, static files, security headers and the routes of each page."""
    app = FastAPI(title="credit-scorer approval console", version=__version__, docs_url=None, redoc_url=None)
    app.state.console = Console(settings)
    app.state.templates = Jinja2Templates(env=template_environment())
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    for routes in (routes_signin, routes_releases, routes_gate):
        app.include_router(routes.router)
    return app
