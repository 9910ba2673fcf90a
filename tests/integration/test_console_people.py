"""The console with a people file outside the default location (``--people``), and the store's people registry.

Red team: started with ``--people FILE``, the console accepted a decision and resolved the gate, but the
background ``resume`` did not get that file, failed SoD-1, and no record was written — the decision was
lost. Now roles come from the store's people registry, the same for the console, the CLI and the resumed
steps. A real run pauses at the gate with the demo people (registry version 1); a copy that also names Rosa
Tester and Omar Approver becomes version 2 (``people set``); a console started with a file the registry
does not hold is refused at start; the console started with the copy (version 2, so not "outside") lets
Rosa sign off and Omar approve in the browser, the run resumes in the background with the console's
settings and deploys, and the records name people registry version 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from credit_scorer.adapters.local_processes import free_port
from credit_scorer.apps.console.users import add_user
from credit_scorer.records import identities
from credit_scorer.records.people import load_people
from credit_scorer.records.store import ComplianceStore

from .conftest import PEOPLE, gate_env, stop_all
from .test_console import (
    CHROMIUM,
    CLI,
    DEPLOY_TIMEOUT_MS,
    PASSWORD,
    Gate,
    _release_of,
    approvals,
    shot,
    sign_in,
)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium; .ci/run installs it)",
)
ONLY_IN_THE_CONSOLE_FILE = "  Rosa Tester: [tester]\n  Omar Approver: [approver]\n"


@dataclass
class Console(Gate):
    """The console (``url``, ``store``, ``releases["A"]``) and where it writes the resume output."""

    log_dir: Path = Path()

    @property
    def release(self) -> str:
        return self.releases["A"]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """One run paused at the gate (demo people file) and a console started with another people file."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing at /usr/bin/chromium: apt-get install chromium (.ci/run does)")
    base = tmp_path_factory.mktemp("console-people")
    store = base / "compliance"
    users = base / "state" / "console-users.json"
    roles = base / "elsewhere" / "roles.yaml"
    roles.parent.mkdir()
    demo = PEOPLE.read_text()
    roles.write_text(
        demo.replace("  Avery Auditor: [auditor]\n", "  Avery Auditor: [auditor]\n" + ONLY_IN_THE_CONSOLE_FILE)
    )
    people = load_people(roles)
    for name, role in (
        ("Quinn Tester", "tester"),
        ("Jane Doe", "approver"),
        ("Rosa Tester", "tester"),
        ("Omar Approver", "approver"),
    ):
        add_user(users, people, name, role, PASSWORD)
    env = {**os.environ, **gate_env(store, decision=None), "COLUMNS": "200"}
    for name in ("TESTER", "APPROVER", "APPROVAL_RATIONALE", "DEPLOY_APPROVAL"):
        env.pop(name, None)
    run = subprocess.run(
        [CLI, "run", "--wait-timeout", "1"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 5, run.stdout + run.stderr  # paused at the gate
    release = _release_of(run.stdout)
    # the copy becomes the store's people registry in force (version 2), after the run paused
    registered = subprocess.run(
        [CLI, "people", "set", "--file", str(roles), "--as", "Ada Lovelace", "--reason", "two new colleagues"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert registered.returncode == 0, registered.stdout + registered.stderr
    for name in ("Rosa Tester", "Omar Approver"):  # their signing keys, as `users add` enrols them
        identities.enrol(ComplianceStore(str(store)), name, PASSWORD, by="test admin")

    # the console knows its people, store and users only from its options, not from the environment
    console_env = {k: v for k, v in env.items() if k not in {"CREDIT_SCORER_PEOPLE", "CREDIT_SCORER_STORE"}}
    port = free_port()
    server = subprocess.Popen(
        [CLI, "console", "--port", str(port), "--store", str(store), "--people", str(roles), "--users", str(users)],
        env=console_env,
        cwd=base,  # not the project folder: conf/people.yaml is not there
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
        yield Console(url=url, store=store, releases={"A": release}, log_dir=users.parent / "logs")
    finally:
        server.terminate()
        server.wait(10)
        stop_all(store)


@pytest.fixture(scope="module")
def browser(console: Console) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield instance
        instance.close()


def outcome(page: Any) -> str:
    """What the page says once a form was sent: its error, or its confirmation."""
    said = page.locator("[data-testid=error], p.flash[role=status]").first
    said.wait_for()
    return str(said.inner_text())


def test_a_console_with_a_people_file_the_registry_does_not_hold_is_refused(console: Console) -> None:
    rogue = console.log_dir.parent / "rogue.yaml"
    auditor = "  Avery Auditor: [auditor]\n"
    rogue.write_text(PEOPLE.read_text().replace(auditor, auditor + "  Mallory: [approver]\n"))
    refused = subprocess.run(
        [CLI, "console", "--port", str(free_port()), "--store", str(console.store), "--people", str(rogue)],
        env={k: v for k, v in os.environ.items() if k not in {"CREDIT_SCORER_PEOPLE", "CREDIT_SCORER_STORE"}},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "is not this store's people registry (version 2" in refused.stderr


def test_people_of_the_registry_in_force_sign_off_and_approve_and_the_run_deploys(
    browser: Any, console: Console
) -> None:
    release = console.release
    page_url = f"{console.url}/releases/{release}"

    # Rosa became a tester in registry version 2, after the run paused: the registry in force counts
    page = sign_in(browser, console, "Rosa Tester")
    page.goto(page_url)
    page.get_by_label("What you reviewed").fill("Reviewed Annex IV")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Tester ✓ sign-off").click()
    assert "Tester ✓ recorded" in outcome(page)
    page.context.close()

    # Omar approves: the run resumes in the background with the console's settings and deploys
    page = sign_in(browser, console, "Omar Approver")
    page.goto(page_url)
    page.get_by_label("Approve and deploy").check()
    page.get_by_label("Rationale (required, recorded verbatim)").fill("Meets KPIs; approved from the console")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Record decision").click()
    assert "Approval of" in page.get_by_role("status").first.inner_text()
    link = page.get_by_test_id("deployment-url")
    link.wait_for(timeout=DEPLOY_TIMEOUT_MS)
    url = link.inner_text()
    shot(page, "10-release-live-other-people-file")

    [record] = approvals(console.store)
    assert record["approved"] is True and record["approver"] == "Omar Approver"
    assert record["decision_mode"] == "console"
    assert record["tester_signoff"]["tester"] == "Rosa Tester"
    assert record["signature"]["signer"] == "Omar Approver"
    assert (record["people_version"], record["people_source"]) == (2, "people registry v2")
    [signoff] = [json.loads(p.read_text()) for p in (console.store / "signoffs").iterdir()]
    assert signoff["people_version"] == 2
    assert record["deployment_url"] == url
    with urllib.request.urlopen(f"{url}/model", timeout=10) as response:
        assert json.load(response)["model_sha256"] == record["model_sha256"]
    assert (console.log_dir / f"{release}-resume.log").exists()
    page.context.close()
