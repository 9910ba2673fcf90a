"""Every console template, rendered by the app's own Jinja2 environment with hostile text in every
field a person (or a record, ticket or URL) controls, shows that text as text and nothing else.

Each render is parsed with :mod:`html.parser` and compared with the same render of harmless text:
the same elements with the same attributes, in the same order (no element or attribute came from
the data), no ``javascript:`` link, and the hostile text present verbatim in the page's text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import pytest
from fastapi.templating import Jinja2Templates

from credit_scorer.adapters.tickets import Ticket, TicketComment
from credit_scorer.apps.console import app as console_app
from credit_scorer.apps.console.app import ConsoleSettings, create_console
from credit_scorer.apps.console.sessions import Session
from credit_scorer.apps.console.views import STATUS_LABELS, ReleaseDetail, ReleaseRow
from credit_scorer.pipelines.run import GateState, StepProgress
from credit_scorer.records.deploy_retries import DeployRetryRecord
from credit_scorer.records.models import ApprovalRecord, SignoffRecord
from credit_scorer.records.refusals import Refusal
from credit_scorer.release.gate import GateDecision

TEMPLATES = Path(console_app.__file__).parent / "templates"
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
HOSTILE = {
    "script": "<script>alert('xss')</script>",
    "meta-refresh": '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    "attribute-break": '"><img src=x onerror=alert(1)>',
    "single-quote-break": "'><svg onload=alert(1)>",
    "textarea-break": "</textarea><script>alert(1)</script>",
    "comment-break": "--><iframe src=https://evil.example/></iframe><!--",
    "javascript-url": "javascript:alert(document.cookie)",
    "javascript-url-mixed-case": " JaVaScRiPt:alert(1)",
    "template-syntax": "{{7*7}}{% for x in range(3) %}x{% endfor %}",
    "bidi-override": "Jane \u202eeod enaJ\u202c \u2066x\u2069 \u200fok",
    "very-long": "A" * 50_000 + "<b>bold</b>",
}
BENIGN = "plain words"


def visible(value: str) -> str:
    """How the page shows a string: bidi controls as a visible [U+XXXX], everything else as typed."""
    return "".join(f"[U+{ord(c):04X}]" if c in BIDI else c for c in value)


class Page(HTMLParser):
    """Elements (tag and attribute names, in order), attribute values and text of an HTML page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, tuple[str, ...]]] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, tuple(name for name, _ in attrs)))
        self.attributes.extend((tag, name, value or "") for name, value in attrs)

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.elements.append(("<!--", ()))

    @property
    def content(self) -> str:
        return "".join(self.text) + "".join(value for _, _, value in self.attributes)


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[jinja2.Environment]:
    """The Jinja2 environment the console's pages are rendered with (captured from ``create_console``)."""
    made: list[Jinja2Templates] = []

    class Recording(Jinja2Templates):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    base = tmp_path_factory.mktemp("console-templates")
    settings = ConsoleSettings(
        store_url=str(base / "compliance"),
        people_file=None,
        users_file=base / "users.json",
        log_dir=base / "logs",
    )
    patch = pytest.MonkeyPatch()
    patch.setattr(console_app, "Jinja2Templates", Recording)
    try:
        create_console(settings)
    finally:
        patch.undo()
    assert len(made) == 1, "every page must be rendered by one environment"
    yield made[0].env


# -- contexts: every field a person, record, ticket or URL controls gets the same string --------
def session(value: str, role: str) -> Session:
    return Session("sid", value, role, value, 0.0, 0.0)  # type: ignore[arg-type]


def row(value: str, status: str) -> ReleaseRow:
    return ReleaseRow(
        release_id=value,
        run_id=value,
        created=value,
        status=status,
        submitter=value,
        checks_passed=value,
        failed_checks=(value, value),
        decided_by=value,
        decided_at=value,
        deployment_url=value,
        deploy_error=value,
    )


def decision(value: str) -> GateDecision:
    return GateDecision(
        approved=True,
        approver=value,
        rationale=value,
        decision_mode="console",
        decided_at=value,
        threshold_override=True,
        override_rationale=value,
    )


def detail(value: str, status: str, waiting: bool) -> ReleaseDetail:
    ticket = Ticket(
        key=value,
        run_id=value,
        summary=value,
        description=value,
        created_at=value,
        status=value,
        labels=[value],
        comments=[TicketComment(at=value, author=value, kind="note", body=value)],
    )
    signoff = SignoffRecord.model_construct(
        signoff_id=value, timestamp=value, run_id=value, release_id=value, tester=value, note=value, source="console"
    )
    record = ApprovalRecord.model_construct(
        approval_id=value,
        timestamp=value,
        decision_mode="console",
        approved=status not in {"rejected", "refused"},
        approver=value,
        rationale=value,
        threshold_override=True,
        override_rationale=value,
        refusal_reason=value if status == "refused" else None,
        deployment_url=value,
        deployment_error=value,
        run_id=value,
        release_id=value,
    )
    gate = GateState(
        run_id=value,
        run_status="paused" if waiting else "running",
        condition_id=value,
        condition_status="pending" if waiting else "resolved",
        submitted=None if waiting else decision(value),
    )
    retries = [
        DeployRetryRecord.model_construct(
            retry_id=value,
            timestamp=value,
            retried_by=value,
            deployment_url=url,
            deployment_error=error,
        )
        for url, error in ((None, value), (value, None))
    ]
    return ReleaseDetail(
        row=row(value, status),
        checks=None,
        evaluation=None,
        fairness=None,
        risk=None,
        candidate=None,
        ticket=ticket,
        signoffs=[signoff],
        decisions=[] if waiting else [record],
        gate=gate,
        steps=[
            StepProgress(name=value, status=value, seconds=1.0),
            StepProgress(name=value, status="failed", error=value),
        ],
        has_annex_iv=True,
        refusals=[
            Refusal(
                release_id=value,
                run_id=value,
                actor=value,
                action="approve",
                channel=value,
                rule=value,
                reason=value,
                at=value,
            )
        ],
        retries=retries,
    )


def common(value: str, role: str) -> dict[str, Any]:
    return {"session": session(value, role), "flash": [("ok", value), ("error", value)], "active": "releases"}


def release_page(value: str, role: str, status: str, waiting: bool) -> dict[str, Any]:
    return {
        **common(value, role),
        "d": detail(value, status, waiting),
        "resume_code": 1,
        "resume_log": value,
        "resume_failure": value,
        "form": {
            "note": value,
            "verdict": "approve",
            "rationale": value,
            "override": True,
            "override_rationale": value,
        },
        "error": value,
    }


def audit_page(value: str, role: str) -> dict[str, Any]:
    problem = SimpleNamespace(file=value, field=value, message=value)
    report = SimpleNamespace(
        ok=False,
        summary=value,
        head_seq=1,
        head_hash=value,
        key_id=value,
        approvals=1,
        release_rows=1,
        threshold_versions=1,
        problems=[problem],
    )
    entry = SimpleNamespace(seq=1, recorded_at=value, kind=value, path=value, record_sha256=value)
    return {**common(value, role), "report": report, "entries": [entry], "problems_by_file": {value: [value, value]}}


def renders(value: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(template, case, context) for every page and state in which a field is shown."""
    for role in ("tester", "approver", "auditor"):
        yield "base.html.j2", role, common(value, role)
        yield (
            "releases.html.j2",
            role,
            {
                **common(value, role),
                "waiting": [row(value, "waiting")],
                "history": [row(value, status) for status in STATUS_LABELS],
            },
        )
        yield "audit.html.j2", role, audit_page(value, role)
        yield "refused.html.j2", role, {**common(value, role), "message": value}
        yield "release.html.j2", f"{role}/waiting", release_page(value, role, "waiting", waiting=True)
        for status in [*STATUS_LABELS, "resume-failed"]:
            yield "release.html.j2", f"{role}/{status}", release_page(value, role, status, waiting=False)
    yield "refused.html.j2", "anonymous", {"session": None, "flash": [], "message": value}
    yield (
        "login.html.j2",
        "anonymous",
        {"session": None, "flash": [], "login_token": value, "next": value, "error": value},
    )
    for status in STATUS_LABELS:
        yield "_badge.html.j2", status, {"row": row(value, status)}


def render(environment: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    return environment.get_template(name).render({"version": "test", **context})


def test_every_template_has_a_hostile_render() -> None:
    covered = {name for name, _, _ in renders(BENIGN)}
    assert covered == {p.name for p in TEMPLATES.glob("*.html.j2")}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_text_renders_only_as_text(environment: jinja2.Environment, kind: str) -> None:
    value = HOSTILE[kind]
    for (name, case, benign_context), (_, _, hostile_context) in zip(renders(BENIGN), renders(value), strict=True):
        where = f"{name} ({case})"
        html = render(environment, name, hostile_context)
        page, reference = Page(html), Page(render(environment, name, benign_context))
        assert page.elements == reference.elements, f"{where}: the data added or removed elements or attributes"
        for tag, attribute, url in page.attributes:
            assert not attribute.startswith("on"), f"{where}: <{tag} {attribute}>"
            if attribute in {"href", "src", "action", "formaction"}:
                assert not re.match(r"^\W*javascript:", url, re.IGNORECASE), f"{where}: <{tag} {attribute}={url!r}>"
        assert not any(c in html for c in BIDI), f"{where}: a bidi control character reached the page"
        if name != "_badge.html.j2":  # a badge shows only the status label
            assert visible(value) in page.content, f"{where}: the text itself is not shown"


def test_a_deployment_url_is_a_link_only_when_it_is_http(environment: jinja2.Environment) -> None:
    for url, linked in (
        ("http://127.0.0.1:9000", True),
        ("https://scorer.example.modal.run", True),
        ("javascript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("//evil.example", False),
    ):
        context = release_page("x", "auditor", "live", waiting=False)
        context["d"] = replace(context["d"], row=replace(context["d"].row, deployment_url=url))
        page = Page(render(environment, "release.html.j2", context))
        links = [v for tag, a, v in page.attributes if tag == "a" and a == "href" and v.endswith("/model")]
        assert links == ([f"{url}/model"] if linked else []), url
        assert url in page.content


def test_no_template_marks_data_as_safe() -> None:
    for template in TEMPLATES.glob("*.j2"):
        source = re.sub(r"\s+", "", template.read_text()).lower()
        for marker in ("|safe", "markup", "autoescapefalse"):
            assert marker not in source, f"{template.name} uses {marker}"
