"""Pages to read: ``/releases``, one release, its progress poll and its Annex IV documents, ``/audit``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from credit_scorer.apps.console import views
from credit_scorer.apps.console.web import (
    console_of,
    detail_page,
    render,
    session_of,
    to_login,
)
from credit_scorer.core.ids import is_release_id
from credit_scorer.release.workflow import artefact_dir

router = APIRouter()
DOCUMENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


@router.get("/releases", response_class=HTMLResponse)
def releases_page(request: Request) -> Response:
    console = console_of(request)
    session = session_of(request)
    if session is None:
        return to_login(request)
    with console.zenml():
        waiting, history = views.list_releases(console.store, console.tracker, console.deployer, console.resumer.state)
    return render(request, "releases.html.j2", session, waiting=waiting, history=history)


@router.get("/releases/{release_id}", response_class=HTMLResponse)
def release_page(request: Request, release_id: str) -> Response:
    session = session_of(request)
    if session is None:
        return to_login(request)
    return detail_page(request, session, release_id)


@router.get("/releases/{release_id}/status.json")
def release_status(request: Request, release_id: str) -> Response:
    """What the release page polls while a resumed run is on its way (no gate inputs, no artifacts)."""
    console = console_of(request)
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
            "deploy_error": status.row.deploy_error or None,
            "live": status.row.status == "live",
            "decided_by": status.row.decided_by or None,
            "resume_exit_code": console.resumer.exit_code(release_id),
        }
    )


@router.get("/releases/{release_id}/annex-iv.pdf")
def annex_iv_pdf(request: Request, release_id: str, download: bool = False) -> Response:
    return document(request, release_id, "annex_iv.pdf", "application/pdf", download)


@router.get("/releases/{release_id}/annex-iv.html")
def annex_iv_html(request: Request, release_id: str) -> Response:
    return document(request, release_id, "annex_iv.html", "text/html; charset=utf-8", False)


def document(request: Request, release_id: str, name: str, media_type: str, download: bool) -> Response:
    console = console_of(request)
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


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request) -> Response:
    console = console_of(request)
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
