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

Every POST must carry the session's CSRF token; a request from another origin is refused.
Every request re-checks its session against the credentials file and the people/roles file
(each re-read only when it changes): a removed person, a changed role or a changed password
ends the session at once. Every page is rendered with autoescaping on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from fastapi import FastAPI, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from credit_scorer import __version__
from credit_scorer.adapters.factory import deployer_for, tracker_for
from credit_scorer.adapters.tickets import TicketTracker
from credit_scorer.apps.console import actions, users, views
from credit_scorer.apps.console.sessions import BUSY, LOGIN_COOKIE, SESSION_COOKIE, Session, SessionStore, tokens_match
from credit_scorer.core.errors import CreditScorerError, Forbidden
from credit_scorer.core.ids import is_release_id
from credit_scorer.core.settings import PEOPLE_ENV, STORE_ENV, USERS_ENV
from credit_scorer.pipelines import run as runs
from credit_scorer.records.layout import PEOPLE_DIR
from credit_scorer.records.models import decisions_for
from credit_scorer.records.people import RULE_ROLE, People, people_file, role_violation
from credit_scorer.records.people_registry import people_in_force
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release.workflow import artefact_dir

HERE = Path(__file__).parent
DOCUMENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
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


@dataclass(frozen=True)
class ConsoleSettings:
    """Where the console reads and writes."""

    store_url: str
    people_file: Path | None
    users_file: Path
    log_dir: Path
    dev_mode: bool = False


class _Refused(Exception):
    """An action refused with an HTTP status and a message for the person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Console:
    """The console's state: store, tracker, deployer, sessions, background resumes."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.store = ComplianceStore(settings.store_url)
        self.tracker: TicketTracker = tracker_for(self.store)
        self.deployer = deployer_for(self.store)
        self.sessions = SessionStore()
        self.resumer = actions.Resumer(settings.log_dir, self.store.url, self.resume_environment())
        self._credentials = users.WatchedFile(lambda: settings.users_file, users.load_credentials)
        # the store's people registry in force (or, in dev mode, the --people file): re-read when a version is added
        self._people = users.WatchedFile(self._people_folder, lambda _folder: self._registry())
        self._zenml = threading.RLock()  # ZenML's client is used from one request thread at a time
        self._deciding: dict[str, threading.Lock] = {}
        self._deciding_guard = threading.Lock()

    def _people_folder(self) -> Path:
        return self.store.local_path(PEOPLE_DIR) if self.store.is_local else Path("/nonexistent/remote-store")

    def _registry(self) -> People:
        explicit = self.settings.people_file is not None
        return people_in_force(self.store, self.settings.people_file, self.settings.dev_mode, explicit).people

    def people(self) -> People:
        """The people/roles file, checked per request (re-read when changed): a role change takes effect at once."""
        return self._people.get()

    def credentials(self) -> users.CredentialsFile:
        """The console credentials file, checked per request (re-read when it changed)."""
        return self._credentials.get()

    def resume_environment(self) -> dict[str, str]:
        """The console's own settings for the ``credit-scorer resume`` it starts (absolute paths)."""
        return {
            STORE_ENV: self.store.url,
            PEOPLE_ENV: str(people_file(self.settings.people_file).resolve()),
            USERS_ENV: str(self.settings.users_file.resolve()),
        }

    def still_valid(self, session: Session) -> bool:
        """Whether the session's person still has the credential and role they signed in with."""
        try:
            credential = self.credentials().users.get(session.name)
            people = self.people()
        except (CreditScorerError, OSError):
            return False  # an unreadable file signs everybody out rather than trusting old sessions
        return (
            credential is not None
            and credential.role == session.role
            and users.fingerprint(credential) == session.fingerprint
            and role_violation(people, session.name, session.role) is None
        )

    @contextmanager
    def zenml(self) -> Iterator[None]:
        """Serialise ZenML client calls across request threads."""
        with self._zenml:
            yield

    @contextmanager
    def deciding(self, release_id: str) -> Iterator[None]:
        """One decision or sign-off at a time per release, in this process and across processes."""
        with self._deciding_guard:
            lock = self._deciding.setdefault(release_id, threading.Lock())
        if not lock.acquire(blocking=False):
            raise _Refused(409, f"another decision on {release_id} is being recorded right now; reload the page")
        try:
            with self.store.lock(f"gate-{release_id}"):
                yield
        finally:
            lock.release()


def create_console(settings: ConsoleSettings) -> FastAPI:
    """The console app."""
    console = Console(settings)
    app = FastAPI(title="credit-scorer approval console", version=__version__, docs_url=None, redoc_url=None)
    app.state.console = console
    templates = Jinja2Templates(env=template_environment())
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    # -- helpers ---------------------------------------------------------------
    def session_of(request: Request) -> Session | None:
        session = console.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is not None and not console.still_valid(session):
            console.sessions.end(session.session_id)
            return None
        return session

    def to_login(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    def render(request: Request, name: str, session: Session | None, status: int = 200, **context: Any) -> Response:
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

    # -- sign-in ---------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/releases") -> Response:
        token = sessions_token()
        response = render(request, "login.html.j2", None, login_token=token, next=_safe_next(next), error=None)
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login")
        return response

    def sessions_token() -> str:
        import secrets

        return secrets.token_urlsafe(32)

    @app.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        name: str = Form(""),
        password: str = Form(""),
        csrf_token: str = Form(""),
        next: str = Form("/releases"),
    ) -> Response:
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
                next=_safe_next(next),
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
                signed_in = RedirectResponse(_safe_next(next), status_code=303)
                signed_in.set_cookie(SESSION_COOKIE, session.session_id, httponly=True, samesite="strict", path="/")
                signed_in.delete_cookie(LOGIN_COOKIE, path="/login")
                return signed_in
            error = error or "Wrong name or password (or your role was removed from the people/roles file)."
        token = sessions_token()
        response = render(request, "login.html.j2", None, 401, login_token=token, next=_safe_next(next), error=error)
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login")
        return response

    @app.post("/logout")
    def logout(request: Request, csrf_token: str = Form("")) -> Response:
        session = session_of(request)
        refused = refuse_post(request, session, csrf_token)
        if refused:
            return refused
        console.sessions.end(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- pages -----------------------------------------------------------------
    @app.get("/")
    def home(request: Request) -> Response:
        return RedirectResponse("/releases", status_code=303)

    @app.get("/releases", response_class=HTMLResponse)
    def releases_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_login(request)
        with console.zenml():
            waiting, history = views.list_releases(
                console.store, console.tracker, console.deployer, console.resumer.state
            )
        return render(request, "releases.html.j2", session, waiting=waiting, history=history)

    def detail_page(request: Request, session: Session, release_id: str, status: int = 200, **extra: Any) -> Response:
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
            **extra,
        )

    @app.get("/releases/{release_id}", response_class=HTMLResponse)
    def release_page(request: Request, release_id: str) -> Response:
        session = session_of(request)
        if session is None:
            return to_login(request)
        return detail_page(request, session, release_id)

    @app.get("/releases/{release_id}/status.json")
    def release_status(request: Request, release_id: str) -> Response:
        """What the release page polls while a resumed run is on its way (no gate inputs, no artifacts)."""
        session = session_of(request)
        if session is None:
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        try:
            with console.zenml():
                status = views.release_status(
                    console.store, console.tracker, console.deployer, release_id, console.resumer.state
                )
        except KeyError:
            return JSONResponse({"detail": f"no release {release_id}"}, status_code=404)
        return JSONResponse(
            {
                "release_id": release_id,
                "status": status.row.status,
                "status_label": status.row.status_label,
                "badge": status.row.badge,
                "run_status": status.gate.run_status if status.gate else None,
                "steps": [s.model_dump() for s in status.steps],
                "deployment_url": status.row.deployment_url or None,
                "live": status.row.status == "live",
                "decided_by": status.row.decided_by or None,
                "resume_exit_code": console.resumer.exit_code(release_id),
            }
        )

    @app.get("/releases/{release_id}/annex-iv.pdf")
    def annex_iv_pdf(request: Request, release_id: str, download: bool = False) -> Response:
        return _document(request, release_id, "annex_iv.pdf", "application/pdf", download)

    @app.get("/releases/{release_id}/annex-iv.html")
    def annex_iv_html(request: Request, release_id: str) -> Response:
        return _document(request, release_id, "annex_iv.html", "text/html; charset=utf-8", False)

    def _document(request: Request, release_id: str, name: str, media_type: str, download: bool) -> Response:
        session = session_of(request)
        if session is None:
            return to_login(request)
        path = f"{artefact_dir(release_id)}/{name}"
        if not is_release_id(release_id) or not console.store.exists(path):
            return render(request, "refused.html.j2", session, 404, message=f"{release_id} has no {name}.")
        filename = f"{release_id}-{name.replace('_', '-')}"
        disposition = "attachment" if download else "inline"
        headers = {"Content-Disposition": f'{disposition}; filename="{filename}"'}
        if name.endswith(".html"):  # the generated document: its own inline styles and SVG, never scripts
            headers["Content-Security-Policy"] = DOCUMENT_CSP
        return FileResponse(console.store.local_path(path), media_type=media_type, headers=headers)

    @app.get("/audit", response_class=HTMLResponse)
    def audit_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_login(request)
        from credit_scorer.audit.verify import audit_verify
        from credit_scorer.records.ledger import entries

        report = audit_verify(console.store)
        found = entries(console.store)
        problems_by_file: dict[str, list[str]] = {}
        for problem in report.problems:
            problems_by_file.setdefault(problem.file, []).append(f"{problem.field}: {problem.message}")
        return render(
            request,
            "audit.html.j2",
            session,
            report=report,
            entries=list(reversed(found)),
            problems_by_file=problems_by_file,
        )

    # -- actions ---------------------------------------------------------------
    @app.post("/releases/{release_id}/signoff", response_class=HTMLResponse)
    def signoff(request: Request, release_id: str, csrf_token: str = Form(""), note: str = Form("")) -> Response:
        session = session_of(request)
        refused = refuse_post(request, session, csrf_token)
        if refused:
            return refused
        assert session is not None
        form = {"note": note}
        try:
            run_id = _run_of(release_id)
            if session.role != "tester":
                raise _Refused(
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
                )
        except _Refused as exc:
            return detail_page(request, session, release_id, exc.status, error=exc.message, form=form)
        except (CreditScorerError, runs.NotWaiting, KeyError) as exc:
            return detail_page(request, session, release_id, _status_for(exc), error=_message(exc), form=form)
        session.flash.append(("ok", f"Tester ✓ recorded for {release_id} ({record.signoff_id})."))
        return RedirectResponse(f"/releases/{release_id}", status_code=303)

    @app.post("/releases/{release_id}/decision", response_class=HTMLResponse)
    def decision(
        request: Request,
        release_id: str,
        csrf_token: str = Form(""),
        verdict: str = Form(""),
        rationale: str = Form(""),
        override: str = Form(""),
        override_rationale: str = Form(""),
        condition_id: str = Form(""),
    ) -> Response:
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
            run_id = _run_of(release_id)
            if session.role != "approver":
                raise _Refused(
                    403,
                    f"{RULE_ROLE}: you are signed in as {session.role}; only an approver (AI compliance officer) "
                    "approves or rejects a release",
                )
            if verdict not in {"approve", "reject"}:
                raise _Refused(422, "Choose Approve or Reject.")
            if not rationale.strip():
                raise _Refused(422, "A decision needs a rationale; it is recorded verbatim.")
            posted = actions.DecisionForm(
                approve=verdict == "approve",
                rationale=rationale,
                override=bool(override),
                override_rationale=override_rationale,
                condition_id=condition_id,
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
        except _Refused as exc:
            return detail_page(request, session, release_id, exc.status, error=exc.message, form=form)
        except (CreditScorerError, runs.NotWaiting, KeyError) as exc:
            return detail_page(request, session, release_id, _status_for(exc), error=_message(exc), form=form)
        verb = "Approval" if gate_decision.approved else "Rejection"
        session.flash.append(
            (
                "ok",
                f"{verb} of {release_id} submitted; the run is resuming and will write the approval record "
                f"(decision mode console){' and deploy' if gate_decision.approved else ''}.",
            )
        )
        return RedirectResponse(f"/releases/{release_id}", status_code=303)

    @app.post("/releases/{release_id}/resume", response_class=HTMLResponse)
    def retry_resume(request: Request, release_id: str, csrf_token: str = Form("")) -> Response:
        """Run the resume of a submitted decision again after it failed; the decision itself is not asked for again."""
        session = session_of(request)
        refused = refuse_post(request, session, csrf_token)
        if refused:
            return refused
        assert session is not None
        try:
            run_id = _run_of(release_id)
            if session.role != "approver":
                raise _Refused(
                    403,
                    f"{RULE_ROLE}: you are signed in as {session.role}; only an approver (AI compliance officer) "
                    "retries the resume of a decision",
                )
            with console.deciding(release_id), console.zenml():
                status = views.release_status(
                    console.store, console.tracker, console.deployer, release_id, console.resumer.state
                )
                if status.row.status != "resume-failed":
                    raise _Refused(
                        409, f"nothing to retry: {release_id} is {status.row.status_label.lower()}; reload the page"
                    )
                console.resumer.note(release_id, f"retry requested by {session.name} in the console")
                console.resumer.start(release_id, run_id)
        except _Refused as exc:
            return detail_page(request, session, release_id, exc.status, error=exc.message)
        except (CreditScorerError, KeyError, OSError) as exc:
            return detail_page(request, session, release_id, _status_for(exc), error=_message(exc))
        session.flash.append(("ok", f"Resuming {release_id} again with the decision already submitted."))
        return RedirectResponse(f"/releases/{release_id}", status_code=303)

    def _run_of(release_id: str) -> str:
        if not is_release_id(release_id) or release_id not in views.release_ids(console.store):
            raise _Refused(404, f"No release {release_id} in the store.")
        run_id, _ = views.origin_of(console.store, release_id, decisions_for(console.store, release_id))
        if not run_id:
            raise _Refused(404, f"{release_id} has no submission record naming its run; it cannot be decided here")
        return run_id

    return app


def _status_for(exc: Exception) -> int:
    """The HTTP status an error class carries (core/errors.py); a console refusal is a conflict."""
    if isinstance(exc, actions.ConsoleRefused) and not isinstance(exc, Forbidden):
        return 409
    if isinstance(exc, CreditScorerError):
        return exc.http_status
    return 404 if isinstance(exc, KeyError) else 422


def _message(exc: Exception) -> str:
    return str(exc).strip("'\"")


def _safe_next(target: str) -> str:
    """Only redirect to a path on this site after sign-in."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/releases"
    return target
