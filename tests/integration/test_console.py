"""The approval console in a real browser (Playwright driving Debian's Chromium, headless).

Three real runs pause at the release gate (CLI, no DEPLOY_APPROVAL): A is signed off
and approved in the browser and deploys; B is rejected in the browser, and a second tab
showing B's stale form is refused; C failed its threshold checks (shuffled labels), so
approving needs the override box and its rationale. The console is the real server
(`credit-scorer console`) on loopback; a decision resumes the run in a background process.

Screenshots of the main pages go to build/test-artifacts/console/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest

from credit_scorer.adapters.local_processes import free_port
from credit_scorer.apps.console.users import add_user
from credit_scorer.records.people import load_people
from credit_scorer.records.refusals import refusals_for
from credit_scorer.records.store import ComplianceStore
from tests.conftest import DEMO_PASSWORD

from .conftest import PEOPLE, REPO, gate_env, stop_all

CHROMIUM = Path("/usr/bin/chromium")
CLI = str(Path(sys.executable).with_name("credit-scorer"))
SHOTS = REPO / "build" / "test-artifacts" / "console"
PASSWORD = DEMO_PASSWORD  # console sign-in and signing key alike, as `users add` sets them
DEPLOY_TIMEOUT_MS = 180_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium; .ci/run installs it)",
)


@dataclass
class Gate:
    """The console under test and the releases waiting at its gate."""

    url: str
    store: Path
    releases: dict[str, str]  # "A" / "B" / "C" -> release id


def _release_of(output: str) -> str:
    marker = "waiting at the release gate: release "
    assert marker in output, output
    return output.split(marker, 1)[1].split(".", 1)[0].strip()


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gate]:
    """Three runs paused at the gate, console users, and the console server."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing at /usr/bin/chromium: apt-get install chromium (.ci/run does)")
    base = tmp_path_factory.mktemp("console")
    store = base / "compliance"
    users = base / "users.json"
    people = load_people(PEOPLE)
    for name, role in (("Quinn Tester", "tester"), ("Jane Doe", "approver"), ("Avery Auditor", "auditor")):
        add_user(users, people, name, role, PASSWORD)
    env = {
        **os.environ,
        **gate_env(store, decision=None),
        "CREDIT_SCORER_USERS": str(users),
        "COLUMNS": "200",
    }
    for name in ("TESTER", "APPROVER", "APPROVAL_RATIONALE", "DEPLOY_APPROVAL"):
        env.pop(name, None)
    variants = {"A": [], "B": ["--seed", "7"], "C": ["--shuffle-labels", "--n-estimators", "20"]}
    runs = {
        key: subprocess.Popen(
            [CLI, "run", "--wait-timeout", "1", *extra],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for key, extra in variants.items()
    }
    releases = {}
    for key, process in runs.items():
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 5, output  # paused at the gate
        releases[key] = _release_of(output)
    port = free_port()
    server = subprocess.Popen(
        [CLI, "console", "--port", str(port), "--store", str(store), "--users", str(users)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/login", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"console did not start: {server.communicate()[0]}")
            time.sleep(0.3)
    try:
        yield Gate(url=url, store=store, releases=releases)
    finally:
        server.terminate()
        server.wait(10)
        stop_all(store)


@pytest.fixture(scope="module")
def browser(gate: Gate) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh, empty profile (user-data dir) of its own.
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield instance
        instance.close()


def _page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(30_000)
    return context.new_page()


def sign_in(browser: Any, gate: Gate, name: str, password: str = PASSWORD) -> Any:
    page = _page(browser)
    page.goto(f"{gate.url}/login")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    return page


def sign_off_as_tester(browser: Any, gate: Gate, release: str) -> None:
    page = sign_in(browser, gate, "Quinn Tester")
    page.goto(f"{gate.url}/releases/{release}")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Tester ✓ sign-off").click()
    assert "Tester ✓ recorded" in page.get_by_role("status").first.inner_text()
    page.context.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def approvals(store: Path) -> list[dict[str, Any]]:
    folder = store / "approvals"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


def post_form(url: str, fields: dict[str, str], cookies: dict[str, str] | None = None) -> tuple[int, str]:
    """POST a form outside the browser (an attacker's page, a script, a double click)."""
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if cookies:
        request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()), _NoRedirect())
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def session_cookie(page: Any) -> dict[str, str]:
    return {c["name"]: c["value"] for c in page.context.cookies() if c["name"] == "cs_session"}


def csrf_of(page: Any) -> str:
    return str(page.locator("input[name=csrf_token]").first.get_attribute("value"))


# ---------------------------------------------------------------------------
def test_anonymous_visits_land_on_sign_in_and_anonymous_posts_are_refused(browser: Any, gate: Gate) -> None:
    release = gate.releases["A"]
    page = _page(browser)
    for path in ("/", "/releases", f"/releases/{release}", "/audit", f"/releases/{release}/annex-iv.pdf"):
        page.goto(gate.url + path)
        assert urllib.parse.urlsplit(page.url).path == "/login", path
        assert page.get_by_role("heading", name="Sign in").is_visible()
    shot(page, "01-sign-in")

    status, body = post_form(f"{gate.url}/releases/{release}/decision", {"verdict": "approve", "rationale": "x"})
    assert status == 403 and "Sign in first" in body
    status, _ = post_form(f"{gate.url}/releases/{release}/signoff", {"note": "x"})
    assert status == 403
    assert approvals(gate.store) == []

    page.get_by_label("Name").fill("Jane Doe")
    page.get_by_label("Password").fill("not-her-password")
    page.get_by_role("button", name="Sign in").click()
    assert "Wrong name or password" in page.get_by_role("alert").inner_text()
    page.context.close()


UNLABELLED = "[...document.querySelectorAll('input:not([type=hidden]), textarea')].filter(e => !e.labels.length).length"


def test_sign_in_with_the_keyboard_alone_and_the_cookie_is_httponly_and_samesite(browser: Any, gate: Gate) -> None:
    page = _page(browser)
    page.goto(f"{gate.url}/login")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'name'")  # autofocus
    page.keyboard.type("Avery Auditor")  # the name field has the focus on arrival
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{gate.url}/releases")
    assert page.get_by_test_id("who").inner_text() == "Avery Auditor"
    [cookie] = [c for c in page.context.cookies() if c["name"] == "cs_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # scripts cannot read it
    page.get_by_role("button", name="Sign out").click()
    assert urllib.parse.urlsplit(page.url).path == "/login"
    page.goto(f"{gate.url}/releases")
    assert urllib.parse.urlsplit(page.url).path == "/login"
    page.context.close()


def test_tester_signs_off_and_cannot_approve(browser: Any, gate: Gate) -> None:
    release = gate.releases["A"]
    page = sign_in(browser, gate, "Quinn Tester")
    waiting = page.get_by_test_id("waiting")
    for key in ("A", "B", "C"):
        assert gate.releases[key] in waiting.inner_text()
    shot(page, "02-releases-waiting")

    page.get_by_role("link", name=release).click()
    assert page.get_by_role("heading", name=release, exact=True).is_visible()
    assert page.get_by_role("button", name="Record decision").count() == 0  # no decision form for a tester
    assert page.evaluate(UNLABELLED) == 0  # every form field has a label
    checks = page.get_by_test_id("checks").inner_text()
    assert "Accuracy" in checks and "Bias disparity" in checks and "pass" in checks
    page.get_by_label("What you reviewed").fill("Reviewed Annex IV, metrics and fairness tables")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Tester ✓ sign-off").click()
    assert "Tester ✓ recorded" in page.get_by_role("status").first.inner_text()
    records = page.get_by_test_id("records").inner_text()
    assert "Quinn Tester" in records and "Tester ✓ (console)" in records
    assert "Tester ✓ Reviewed Annex IV" in page.get_by_test_id("timeline").inner_text()
    shot(page, "03-release-signed-off")

    # the server refuses a decision from a tester even with a valid session and token
    status, body = post_form(
        f"{gate.url}/releases/{release}/decision",
        {"csrf_token": csrf_of(page), "verdict": "approve", "rationale": "I approve my own review"},
        session_cookie(page),
    )
    assert status == 403
    assert "SoD-1" in body and "only an approver" in body
    assert approvals(gate.store) == []
    page.context.close()


def test_a_post_without_the_csrf_token_is_refused(browser: Any, gate: Gate) -> None:
    release = gate.releases["A"]
    page = sign_in(browser, gate, "Jane Doe")
    page.goto(f"{gate.url}/releases/{release}")
    cookie = session_cookie(page)
    url = f"{gate.url}/releases/{release}/decision"
    fields = {"verdict": "approve", "rationale": "forged"}
    for token in (None, "", "not-the-token"):
        sent = fields if token is None else {**fields, "csrf_token": token}
        status, body = post_form(url, sent, cookie)
        assert status == 403, token
        assert "CSRF" in body
    assert approvals(gate.store) == []
    page.goto(f"{gate.url}/releases")
    assert release in page.get_by_test_id("waiting").inner_text()  # still waiting: nothing was resolved
    page.context.close()


def test_approver_approves_and_the_paused_run_resumes_and_deploys(browser: Any, gate: Gate) -> None:
    release = gate.releases["A"]
    page = sign_in(browser, gate, "Jane Doe")
    page.goto(f"{gate.url}/releases/{release}")
    assert page.evaluate(UNLABELLED) == 0
    shot(page, "04-release-approver")
    page.get_by_label("Approve and deploy").check()
    page.get_by_label("Rationale (required, recorded verbatim)").fill("Meets KPIs; fairness and risk acceptable")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Record decision").click()
    assert "Approval of" in page.get_by_role("status").first.inner_text()
    assert page.locator("[data-status=resuming]").count() >= 1
    link = page.get_by_test_id("deployment-url")
    link.wait_for(timeout=DEPLOY_TIMEOUT_MS)  # the page polls, then shows the URL once it answers
    url = link.inner_text()
    shot(page, "05-release-live")

    [record] = approvals(gate.store)
    assert record["decision_mode"] == "console"
    assert record["approved"] is True and record["approver"] == "Jane Doe"
    assert record["rationale"] == "Meets KPIs; fairness and risk acceptable"
    assert record["tester_signoff"]["tester"] == "Quinn Tester"
    assert record["tester_signoff"]["source"] == "console"
    assert record["deployment_url"] == url
    with urllib.request.urlopen(f"{url}/model", timeout=10) as response:
        assert json.load(response)["model_sha256"] == record["model_sha256"]

    # a second decision on the same release is refused with who decided first
    status, body = post_form(
        f"{gate.url}/releases/{release}/decision",
        {"csrf_token": csrf_of(page), "verdict": "reject", "rationale": "second thoughts"},
        session_cookie(page),
    )
    assert status == 409
    assert "already approved by Jane Doe" in body
    assert len(approvals(gate.store)) == 1
    page.context.close()


def test_reject_in_the_browser_and_a_stale_second_tab_is_refused(browser: Any, gate: Gate) -> None:
    release = gate.releases["B"]
    sign_off_as_tester(browser, gate, release)

    first = sign_in(browser, gate, "Jane Doe")
    first.goto(f"{gate.url}/releases/{release}")
    stale = first.context.new_page()  # the same approver in a second tab, opened before deciding
    stale.goto(f"{gate.url}/releases/{release}")

    first.get_by_label("Reject").check()
    first.get_by_label("Rationale (required, recorded verbatim)").fill("Bias disparity too close to the limit")
    first.get_by_label("Your password").fill(PASSWORD)
    first.get_by_role("button", name="Record decision").click()
    assert "Rejection of" in first.get_by_role("status").first.inner_text()

    stale.get_by_label("Approve and deploy").check()
    stale.get_by_label("Rationale (required, recorded verbatim)").fill("Looks fine to me")
    stale.get_by_label("Your password").fill(PASSWORD)
    stale.get_by_role("button", name="Record decision").click()
    error = stale.get_by_test_id("error").inner_text()
    assert "already submitted" in error or "already rejected" in error, error
    assert stale.get_by_label("Rationale (required, recorded verbatim)").count() == 0  # no form any more

    first.wait_for_selector("[data-status=rejected]", timeout=DEPLOY_TIMEOUT_MS)
    shot(first, "06-release-rejected")
    [record] = [r for r in approvals(gate.store) if r["release_id"] == release]
    assert record["approved"] is False and record["decision_mode"] == "console"
    assert record["rationale"] == "Bias disparity too close to the limit"
    assert record["deployment_url"] is None
    first.context.close()


def test_failed_checks_need_the_override_box_and_its_rationale(browser: Any, gate: Gate) -> None:
    release = gate.releases["C"]
    sign_off_as_tester(browser, gate, release)

    page = sign_in(browser, gate, "Jane Doe")
    page.goto(f"{gate.url}/releases/{release}")
    assert "FAIL" in page.get_by_test_id("checks").inner_text()
    override_box = page.get_by_label("I approve although these checks failed (threshold override)")
    assert override_box.is_visible()
    page.get_by_label("Approve and deploy").check()
    page.get_by_label("Rationale (required, recorded verbatim)").fill("Business needs it")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Record decision").click()
    assert "needs an explicit override" in page.get_by_test_id("error").inner_text()
    shot(page, "07-release-override-needed")

    page.get_by_label("Approve and deploy").check()
    override_box = page.get_by_label("I approve although these checks failed (threshold override)")
    assert page.get_by_label("Rationale (required, recorded verbatim)").input_value() == "Business needs it"  # kept
    override_box.check()
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Record decision").click()
    assert "override of failed threshold checks needs its own rationale" in page.get_by_test_id("error").inner_text()
    assert [r for r in approvals(gate.store) if r["release_id"] == release] == []

    # a wrong password signs nothing: refused, recorded as a refusal, nothing decided
    status, body = post_form(
        f"{gate.url}/releases/{release}/decision",
        {"csrf_token": csrf_of(page), "verdict": "reject", "rationale": "Weak model", "password": "not hers at all"},
        session_cookie(page),
    )
    assert status == 403 and "wrong password" in body, (status, body[-400:])
    assert [r for r in approvals(gate.store) if r["release_id"] == release] == []
    [refusal] = [r for r in refusals_for(ComplianceStore(str(gate.store)), release) if r.rule == "password"]
    assert (refusal.actor, refusal.action, refusal.channel) == ("Jane Doe", "reject", "console")

    # a double click (two posts at once) records one decision; the other is refused
    cookie, token = session_cookie(page), csrf_of(page)
    url = f"{gate.url}/releases/{release}/decision"
    results: list[tuple[int, str]] = []

    def post() -> None:
        fields = {"csrf_token": token, "verdict": "reject", "rationale": "Weak model", "password": PASSWORD}
        results.append(post_form(url, fields, cookie))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(status for status, _ in results) == [303, 409], results
    page.goto(f"{gate.url}/releases/{release}")
    page.wait_for_selector("[data-status=rejected]", timeout=DEPLOY_TIMEOUT_MS)
    records = [r for r in approvals(gate.store) if r["release_id"] == release]
    assert len(records) == 1 and records[0]["approved"] is False
    page.context.close()


def test_history_audit_and_annex_iv_pages(browser: Any, gate: Gate) -> None:
    page = sign_in(browser, gate, "Avery Auditor")
    history = page.get_by_test_id("history").inner_text()
    assert "Deployed, live" in history and "Rejected" in history
    shot(page, "08-releases-history")

    release = gate.releases["A"]
    pdf = page.request.get(f"{gate.url}/releases/{release}/annex-iv.pdf")
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    assert pdf.headers["content-disposition"].startswith("inline")
    [record] = [r for r in approvals(gate.store) if r["release_id"] == release]
    import hashlib

    assert hashlib.sha256(pdf.body()).hexdigest() == record["annex_iv_sha256"]
    page.goto(f"{gate.url}/releases/{release}")
    with page.expect_download() as download:
        page.get_by_test_id("annex-download").click()
    assert download.value.suggested_filename == f"{release}-annex-iv.pdf"

    page.get_by_role("link", name="Audit").click()
    summary = page.get_by_test_id("audit-summary").inner_text()
    assert "verified" in summary and "chain intact" in summary
    ledger = page.get_by_test_id("ledger").inner_text()
    assert "approval" in ledger and "verified" in ledger
    shot(page, "09-audit")
    page.context.close()
