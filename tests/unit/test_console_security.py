"""The console over HTTP without a browser: sessions that follow the credentials file, an atomic
sign-in lockout, and a resume that runs with the console's settings and can be retried.

The app is called in-process through a small ASGI client (each request a real Starlette request,
sync routes on the server's thread pool), so no port, no browser and no ZenML run is needed.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import threading
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import pytest

from credit_scorer.adapters.factory import tracker_for
from credit_scorer.apps.console import sessions, users
from credit_scorer.apps.console.app import ConsoleSettings, create_console
from credit_scorer.apps.console.users import add_user, remove_user
from credit_scorer.pipelines import run as runs
from credit_scorer.records.models import TesterSignoff
from credit_scorer.records.people import load_people
from credit_scorer.records.people_registry import set_people
from credit_scorer.records.store import ComplianceStore
from credit_scorer.records.submissions import Submission, record_submission
from credit_scorer.release.gate import GateDecision

PASSWORD = "correct-horse-battery"
PEOPLE_YAML = """people:
  Ada Lovelace: [submitter]
  Quinn Tester: [tester, auditor]
  Jane Doe: [approver]
  Sam Compliance: [approver]
"""
RELEASE = "AI-REL-0000abcd"
RUN_ID = "0000abcd-1111-2222-3333-444455556666"


# -- a minimal in-process HTTP client ----------------------------------------------------------
@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    @property
    def path(self) -> str:
        """Where a redirect goes (its path)."""
        return urlsplit(self.header("location") or "").path


async def asgi_request(
    app: Any, method: str, target: str, form: dict[str, str] | None = None, cookies: dict[str, str] | None = None
) -> Reply:
    """One request through the ASGI app, as a browser on the same origin would send it."""
    split = urlsplit(target)
    body = urlencode(form).encode() if form is not None else b""
    headers = [(b"host", b"testserver")]
    if form is not None:
        headers.append((b"content-type", b"application/x-www-form-urlencoded"))
        headers.append((b"content-length", str(len(body)).encode()))
    if cookies:
        headers.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": split.path,
        "raw_path": split.path.encode(),
        "query_string": split.query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    finished = asyncio.Event()
    delivered = False
    status = 0
    response_headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers.extend((k.decode().lower(), v.decode()) for k, v in message["headers"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await app(scope, receive, send)
    finally:
        finished.set()
    return Reply(status, response_headers, b"".join(chunks).decode())


@dataclass
class Browser:
    """Cookies kept between requests, like one browser profile."""

    app: Any
    cookies: dict[str, str] = field(default_factory=dict)

    def _keep(self, reply: Reply) -> Reply:
        for name, value in reply.headers:
            if name != "set-cookie":
                continue
            pair, _, attributes = value.partition(";")
            key, _, cookie = pair.partition("=")
            if "max-age=0" in attributes.lower() or not cookie.strip('"'):
                self.cookies.pop(key, None)
            else:
                self.cookies[key] = cookie
        return reply

    def get(self, target: str) -> Reply:
        return self._keep(asyncio.run(asgi_request(self.app, "GET", target, cookies=self.cookies)))

    def post(self, target: str, form: dict[str, str]) -> Reply:
        return self._keep(asyncio.run(asgi_request(self.app, "POST", target, form, self.cookies)))

    def csrf(self, target: str = "/releases") -> str:
        return csrf_in(self.get(target).body)


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(app: Any, name: str, password: str = PASSWORD) -> tuple[Browser, Reply]:
    browser = Browser(app)
    token = csrf_in(browser.get("/login").body)
    reply = browser.post("/login", {"name": name, "password": password, "csrf_token": token, "next": "/releases"})
    return browser, reply


# -- fixtures ----------------------------------------------------------------------------------
@dataclass
class Setup:
    app: Any
    settings: ConsoleSettings
    people_file: Path
    users_file: Path
    store: Path


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    people_file = tmp_path / "elsewhere" / "roles.yaml"  # not conf/people.yaml, not $CREDIT_SCORER_PEOPLE
    people_file.parent.mkdir()
    people_file.write_text(PEOPLE_YAML)
    users_file = tmp_path / "state" / "console-users.json"
    people = load_people(people_file)
    for name, role in (("Quinn Tester", "tester"), ("Jane Doe", "approver"), ("Sam Compliance", "approver")):
        add_user(users_file, people, name, role, PASSWORD)
    settings = ConsoleSettings(
        store_url=str(tmp_path / "compliance"),
        people_file=people_file,
        users_file=users_file,
        log_dir=tmp_path / "state" / "logs",
        dev_mode=False,
    )
    return Setup(create_console(settings), settings, people_file, users_file, tmp_path / "compliance")


def signed_in(setup: Setup, name: str) -> Browser:
    browser, reply = sign_in(setup.app, name)
    assert reply.status == 303 and reply.path == "/releases", reply.body
    assert browser.get("/releases").status == 200
    return browser


def assert_signed_out(browser: Browser, setup: Setup, token: str) -> None:
    """The next POST (with the token the page had) is refused and records nothing; the next page is sign-in."""
    refused = browser.post(f"/releases/{RELEASE}/signoff", {"csrf_token": token, "note": "after the change"})
    assert refused.status == 403 and "Sign in first" in refused.body
    assert not (setup.store / "signoffs").exists()
    page = browser.get("/releases")
    assert page.status == 303 and page.path == "/login"


# -- B: sessions follow the credentials file ---------------------------------------------------
def test_removing_a_user_ends_their_open_session_at_once(setup: Setup) -> None:
    jane = signed_in(setup, "Jane Doe")
    quinn = signed_in(setup, "Quinn Tester")
    token = jane.csrf()
    assert remove_user(setup.users_file, "Jane Doe")  # what `credit-scorer users remove "Jane Doe"` does
    assert_signed_out(jane, setup, token)
    assert quinn.get("/releases").status == 200  # the others stay signed in


def test_a_changed_password_ends_the_session(setup: Setup) -> None:
    jane = signed_in(setup, "Jane Doe")
    token = jane.csrf()
    add_user(setup.users_file, load_people(setup.people_file), "Jane Doe", "approver", "a-new-long-password")
    assert_signed_out(jane, setup, token)
    assert sign_in(setup.app, "Jane Doe", "a-new-long-password")[1].status == 303


def test_a_changed_role_ends_the_session(setup: Setup) -> None:
    quinn = signed_in(setup, "Quinn Tester")
    token = quinn.csrf()
    add_user(setup.users_file, load_people(setup.people_file), "Quinn Tester", "auditor", PASSWORD)
    assert_signed_out(quinn, setup, token)


def test_a_role_removed_from_the_people_registry_ends_the_session(setup: Setup) -> None:
    jane = signed_in(setup, "Jane Doe")
    quinn = signed_in(setup, "Quinn Tester")
    token = jane.csrf()
    # what `credit-scorer people set --file roles.yaml --as "Ada Lovelace" --reason ...` does after the edit
    setup.people_file.write_text(PEOPLE_YAML.replace("  Jane Doe: [approver]\n", ""))
    store = ComplianceStore(str(setup.store))
    set_people(store, load_people(setup.people_file), "Ada Lovelace", "Jane Doe left the bank", str(setup.people_file))
    assert_signed_out(jane, setup, token)
    assert quinn.get("/releases").status == 200  # the others stay signed in


def test_pages_do_not_reread_an_unchanged_credentials_file(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    jane = signed_in(setup, "Jane Doe")
    reads: list[str] = []
    parse = users.CredentialsFile.model_validate_json

    def counting(data: Any, *args: Any, **kwargs: Any) -> users.CredentialsFile:
        reads.append("read")
        return parse(data, *args, **kwargs)

    monkeypatch.setattr(users.CredentialsFile, "model_validate_json", counting)
    for _ in range(5):
        assert jane.get("/releases").status == 200
    assert len(reads) <= 1
    assert remove_user(setup.users_file, "Jane Doe")
    assert jane.get("/releases").path == "/login"


# -- C: the lockout holds under concurrency ----------------------------------------------------
ATTEMPTS = 40


class CountingHasher:
    """Counts password verifications; each waits until every request has either reached one or ended."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.verifications = 0
        self.ended = 0
        self.condition = threading.Condition()

    def hash(self, password: str) -> str:
        return str(self.real.hash(password))

    def verify(self, stored: str, password: str) -> bool:
        with self.condition:
            self.verifications += 1
            self.condition.notify_all()
            self.condition.wait_for(lambda: self.verifications + self.ended >= ATTEMPTS, timeout=60)
        return bool(self.real.verify(stored, password))

    def request_ended(self) -> None:
        with self.condition:
            self.ended += 1
            self.condition.notify_all()


def parallel_sign_ins(setup: Setup, hasher: CountingHasher, name: str, count: int) -> list[Reply]:
    browser = Browser(setup.app)
    token = csrf_in(browser.get("/login").body)
    form = {"name": name, "password": "not-the-password", "csrf_token": token, "next": "/releases"}

    async def one() -> Reply:
        reply = await asgi_request(setup.app, "POST", "/login", form, browser.cookies)
        hasher.request_ended()
        return reply

    async def all_at_once() -> list[Reply]:
        tasks: list[Awaitable[Reply]] = [one() for _ in range(count)]
        return list(await asyncio.gather(*tasks))

    return asyncio.run(all_at_once())


@pytest.mark.parametrize("name", ["Jane Doe", "Nobody Known"])
def test_forty_parallel_wrong_passwords_verify_at_most_five(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    hasher = CountingHasher(users._HASHER)
    monkeypatch.setattr(users, "_HASHER", hasher)
    replies = parallel_sign_ins(setup, hasher, name, ATTEMPTS)
    assert all(r.status in (401, 429) for r in replies), {r.status for r in replies}
    assert hasher.verifications <= 5, f"{hasher.verifications} passwords were checked before the lockout"
    refused = ("Too many failed sign-ins", "checking other sign-ins right now")
    assert sum(any(text in r.body for text in refused) for r in replies) >= ATTEMPTS - 5
    for _ in range(ATTEMPTS):  # the flood goes on one at a time: still at most five verified in all
        assert sign_in(setup.app, name, "wrong-password-here")[1].status == 401
    assert hasher.verifications <= 5, f"{hasher.verifications} passwords were checked before the lockout"
    # now locked: the right password does not get in either, and nothing more is verified
    before = hasher.verifications
    _, reply = sign_in(setup.app, name)
    assert reply.status == 401 and "Too many failed sign-ins" in reply.body
    assert hasher.verifications == before


def test_a_flood_of_sign_ins_under_many_names_verifies_at_most_two_at_once(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Red team: 100 parallel sign-ins under random names drove the console to 2.4 GB (argon2, 64 MiB each)."""
    hasher = CountingHasher(users._HASHER)
    monkeypatch.setattr(users, "_HASHER", hasher)
    browser = Browser(setup.app)
    token = csrf_in(browser.get("/login").body)

    async def one(n: int) -> Reply:
        form = {"name": f"Random Name {n}", "password": "not-the-password", "csrf_token": token, "next": "/"}
        reply = await asgi_request(setup.app, "POST", "/login", form, browser.cookies)
        hasher.request_ended()
        return reply

    async def all_at_once() -> list[Reply]:
        return list(await asyncio.gather(*[one(n) for n in range(ATTEMPTS)]))

    replies = asyncio.run(all_at_once())
    assert hasher.verifications <= sessions.MAX_VERIFYING, hasher.verifications
    busy = [r for r in replies if r.status == 429]
    assert len(busy) >= ATTEMPTS - sessions.MAX_VERIFYING
    assert all(r.header("retry-after") == "1" and "try again in a second" in r.body for r in busy)


def test_an_unknown_name_costs_one_verification_like_a_known_one(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = CountingHasher(users._HASHER)
    monkeypatch.setattr(users, "_HASHER", hasher)
    hasher.ended = ATTEMPTS  # sequential: nobody waits
    for name in ("Jane Doe", "Nobody Known"):
        before = hasher.verifications
        assert sign_in(setup.app, name, "wrong-password-here")[1].status == 401
        assert hasher.verifications == before + 1, name


# -- D: the background resume ------------------------------------------------------------------
class FakeProcess:
    """What subprocess.Popen returns, for a resume that is still running (None) or ended (an exit code)."""

    launched: ClassVar[list[FakeProcess]] = []
    exit_code: ClassVar[int | None] = None

    def __init__(self, args: list[str], **kwargs: Any) -> None:
        self.args = args
        self.env: dict[str, str] = dict(kwargs.get("env") or {})
        self.cwd = kwargs.get("cwd")
        self.pid = 999_999_999
        self.code = FakeProcess.exit_code
        FakeProcess.launched.append(self)
        stdout = kwargs.get("stdout")
        if stdout is not None and hasattr(stdout, "write"):
            stdout.write(b"fake resume started\n")

    def poll(self) -> int | None:
        return self.code

    def wait(self, timeout: float | None = None) -> int:
        return self.code or 0


@pytest.fixture
def fake_popen(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeProcess]]:
    FakeProcess.launched = []
    FakeProcess.exit_code = None
    monkeypatch.setattr(subprocess, "Popen", FakeProcess)  # what the console's Resumer starts
    yield FakeProcess
    FakeProcess.launched = []


def test_the_resume_runs_with_the_consoles_own_settings(
    setup: Setup, fake_popen: type[FakeProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDIT_SCORER_PEOPLE", "/somewhere/else/people.yaml")  # the shell's, not the console's
    monkeypatch.setenv("CREDIT_SCORER_STORE", "/somewhere/else/store")
    monkeypatch.setenv("CREDIT_SCORER_USERS", "/somewhere/else/users.json")
    setup.app.state.console.resumer.start(RELEASE, RUN_ID)
    [process] = fake_popen.launched
    assert process.args[-4:] == ["resume", RUN_ID, "--store", setup.settings.store_url]
    assert process.env["CREDIT_SCORER_PEOPLE"] == str(setup.people_file.resolve())
    assert process.env["CREDIT_SCORER_STORE"] == setup.settings.store_url
    assert process.env["CREDIT_SCORER_USERS"] == str(setup.users_file.resolve())


RESUME_ERROR = (
    "error: step approve_deployment failed (run 0000abcd-1111-2222-3333-444455556666):\n"
    "refused: SoD-1 each actor must hold the role they act in: 'Jane Doe' is not in the people/roles file\n"
)


@pytest.fixture
def decided_but_failed(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A release whose decision resolved the gate but whose resumed run failed before writing a record."""
    store = ComplianceStore(setup.settings.store_url)
    store.write_new(f"releases/{RELEASE}/threshold_checks.json", b"{}")
    submission = Submission(
        release_id=RELEASE,
        run_id=RUN_ID,
        submitter="Ada Lovelace",
        submitted_at="2026-01-01T00:00:00Z",
        dataset_sha256="0" * 64,
        dataset_rows=30000,
    )
    record_submission(store, submission)
    tracker_for(store).open_ticket(RELEASE, RUN_ID, "Release", "Run 0000abcd submitted by Ada Lovelace; waiting")
    decision = GateDecision(
        approved=True,
        approver="Jane Doe",
        rationale="Meets KPIs",
        decision_mode="console",
        decided_at="2026-01-01T00:00:00Z",
        tester_signoff=TesterSignoff(tester="Quinn Tester", signed_at="2026-01-01T00:00:00Z", source="console"),
    )
    state = {"run_status": "failed"}

    def gate_state(run_id: str) -> runs.GateState:
        return runs.GateState(
            run_id=RUN_ID,
            run_status=state["run_status"],
            condition_id="c0ffee",
            condition_status="resolved",
            submitted=decision,
        )

    def release_candidate(run_id: str) -> Any:
        raise KeyError(run_id)

    monkeypatch.setattr(runs, "gate_state", gate_state)
    monkeypatch.setattr(runs, "run_progress", lambda run_id: (state["run_status"], []))
    monkeypatch.setattr(runs, "release_candidate", release_candidate)
    log = setup.settings.log_dir / f"{RELEASE}-resume.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("  ✓ prepare_gate  0.01 s\n  ✗ approve_deployment  0.41 s\n" + RESUME_ERROR)
    return state


def test_a_failed_resume_keeps_the_decision_and_the_approver_can_retry_it(
    setup: Setup, fake_popen: type[FakeProcess], decided_but_failed: dict[str, str]
) -> None:
    jane = signed_in(setup, "Jane Doe")
    page = jane.get(f"/releases/{RELEASE}")
    assert page.status == 200
    assert "resume failed: step approve_deployment failed" in page.body
    assert "is not in the people/roles file" in page.body
    assert re.search(r"<button[^>]*>\s*Retry\s*</button>", page.body)
    assert "Record decision" not in page.body  # the decision is never asked for again
    assert not (setup.store / "approvals").exists()

    # the tester sees the failure but cannot retry; a POST without the token is refused
    quinn = signed_in(setup, "Quinn Tester")
    tester_page = quinn.get(f"/releases/{RELEASE}")
    assert "resume failed:" in tester_page.body and "Retry" not in tester_page.body
    refused = quinn.post(f"/releases/{RELEASE}/resume", {"csrf_token": csrf_in(tester_page.body)})
    assert refused.status == 403 and "only an approver" in refused.body
    forged = jane.post(f"/releases/{RELEASE}/resume", {"csrf_token": "not-the-token"})
    assert forged.status == 403 and "CSRF" in forged.body
    assert fake_popen.launched == []

    retried = jane.post(f"/releases/{RELEASE}/resume", {"csrf_token": csrf_in(page.body)})
    assert retried.status == 303 and retried.path == f"/releases/{RELEASE}"
    [process] = fake_popen.launched
    assert process.args[-4:-2] == ["resume", RUN_ID]
    after = jane.get(f"/releases/{RELEASE}")
    assert "resum" in after.body and "Retry" not in after.body and "Record decision" not in after.body
    assert 'data-status="resuming"' in after.body

    # a second click while it runs starts nothing more
    again = jane.post(f"/releases/{RELEASE}/resume", {"csrf_token": csrf_in(after.body)})
    assert again.status == 409
    assert len(fake_popen.launched) == 1

    # the retry fails too: the page says so again and offers Retry again
    process.code = 1
    with open(setup.settings.log_dir / f"{RELEASE}-resume.log", "a") as log:
        log.write("error: the deployer is not configured: CREDIT_SCORER_DEPLOYER=modal needs MODAL_TOKEN_ID\n")
    failed_again = jane.get(f"/releases/{RELEASE}")
    assert "resume failed: the deployer is not configured" in failed_again.body
    assert "Retry" in failed_again.body


def test_a_resume_that_ended_while_the_run_is_still_paused_can_be_retried(
    setup: Setup, fake_popen: type[FakeProcess], decided_but_failed: dict[str, str]
) -> None:
    """The resume process died before the run moved (e.g. ZenML's store was locked): the run is still paused."""
    decided_but_failed["run_status"] = "paused"
    setup.app.state.console.resumer.start(RELEASE, RUN_ID)
    jane = signed_in(setup, "Jane Doe")
    assert 'data-status="resuming"' in jane.get(f"/releases/{RELEASE}").body  # still running: no retry yet
    fake_popen.launched[0].code = 2
    page = jane.get(f"/releases/{RELEASE}")
    assert "resume failed:" in page.body and "Retry" in page.body
    assert jane.post(f"/releases/{RELEASE}/resume", {"csrf_token": csrf_in(page.body)}).status == 303
    assert len(fake_popen.launched) == 2


def test_status_json_reports_a_failed_resume(
    setup: Setup, fake_popen: type[FakeProcess], decided_but_failed: dict[str, str]
) -> None:
    jane = signed_in(setup, "Jane Doe")
    state = json.loads(jane.get(f"/releases/{RELEASE}/status.json").body)
    assert state["status"] == "resume-failed"
