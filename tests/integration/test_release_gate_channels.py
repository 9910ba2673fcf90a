"""The release gate's waiting and terminal channels, and two runs at once (split from test_release_gate.py so the
two test workers share the long end-to-end runs evenly).

Runs the real ZenML pipeline on the bundled data and real scoring servers on loopback.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest

from credit_scorer.apps.cli.common import EXIT_REJECTED
from credit_scorer.apps.cli.main import EXIT_WAITING
from credit_scorer.core.ids import release_key
from credit_scorer.records.refusals import refusals_for
from credit_scorer.records.release_log import parse_rows
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release.refusals import RECORDED_NOTE
from tests.conftest import DEMO_PASSWORD, signed_as
from tests.integration.conftest import CLI, FAST, SCHEMA, approvals, cli, gate_env, get_json

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------------------
# Pause at the gate → decisions from other processes → resume
# ---------------------------------------------------------------------------
def test_pause_then_sign_off_and_approve_from_another_process(store: Path) -> None:
    env = gate_env(store, decision=None)
    paused = cli(["run", *FAST, "--wait-timeout", "1"], env)
    assert paused.returncode == EXIT_WAITING, paused.stdout + paused.stderr
    assert "waiting at the release gate" in paused.stdout

    listing = cli(["pending"], env)
    assert listing.returncode == 0
    run_id = _listed_run(listing.stdout, paused.stdout)
    assert "paused: approve or console" in listing.stdout

    # separation of duties and sign-off rules are enforced before anything is resolved
    wrong_role = cli(["approve", run_id, "--approve", "--rationale", "ok", *signed_as("Quinn Tester")], env)
    assert wrong_role.returncode == 2
    assert "SoD-1" in wrong_role.stderr and "is not an approver" in wrong_role.stderr
    no_signoff = cli(["approve", run_id, "--approve", "--rationale", "ok", *signed_as("Jane Doe")], env)
    assert no_signoff.returncode == 2
    assert "SoD-3" in no_signoff.stderr
    submitter_signs = cli(["sign-off", run_id, *signed_as("Ada Lovelace")], env)
    assert submitter_signs.returncode == 2
    assert "SoD-2" in submitter_signs.stderr
    assert approvals(store) == []
    # ... and each refusal is recorded: who, which act, which channel, which rule (issue 16, case 5)
    release_id = release_key(run_id)
    refused = refusals_for(ComplianceStore(str(store)), release_id)
    assert [(r.actor, r.action, r.channel) for r in refused] == [
        ("Quinn Tester", "approve", "cli"),
        ("Jane Doe", "approve", "cli"),
        ("Ada Lovelace", "sign-off", "cli"),
    ]
    assert [r.rule for r in refused][:2] == ["SoD-1, SoD-3", "SoD-3"] and "SoD-2" in refused[2].rule
    assert all(RECORDED_NOTE in p.stderr for p in (wrong_role, no_signoff, submitter_signs))
    ticket = json.loads((store / "tickets" / f"{release_id}.json").read_text())
    assert [c["author"] for c in ticket["comments"] if c["kind"] == "refusal"] == [r.actor for r in refused]

    signed = cli(["sign-off", run_id, *signed_as("Quinn Tester"), "--note", "Reviewed Annex IV and metrics"], env)
    assert signed.returncode == 0, signed.stderr
    approved = cli(["approve", run_id, "--approve", "--rationale", "Meets KPIs", *signed_as("Jane Doe")], env)
    assert approved.returncode == 0, approved.stdout + approved.stderr
    [record] = approvals(store)
    jsonschema.Draft202012Validator(SCHEMA).validate(record)
    assert record["decision_mode"] == "cli"
    assert record["tester_signoff"]["source"] == "cli"
    assert record["tester_signoff"]["signed_at"] <= record["timestamp"]
    assert get_json(f"{record['deployment_url']}/model")["model_sha256"] == record["model_sha256"]

    again = cli(["approve", run_id, "--reject", "--rationale", "changed my mind", *signed_as("Sam Compliance")], env)
    assert again.returncode == 2
    assert "already approved by Jane Doe" in again.stderr
    assert len(approvals(store)) == 1


# ---------------------------------------------------------------------------
# Interactive terminal (a pseudo-terminal)
# ---------------------------------------------------------------------------
def test_terminal_approval_over_failed_checks_needs_a_typed_override(store: Path) -> None:
    import pexpect

    env = {**os.environ, **gate_env(store, decision=None), "COLUMNS": "160"}
    child = pexpect.spawn(
        CLI, ["run", "--shuffle-labels", "--n-estimators", "20"], env=env, encoding="utf-8", timeout=240
    )
    transcript = io.StringIO()
    child.logfile_read = transcript  # everything the terminal showed, to check no password was echoed
    try:
        child.expect("Your name")  # the name comes first, and is checked before anything else is asked
        child.sendline("Quinn Tester")
        child.expect("is not an approver")
        child.expect("Your name")
        while_asking = cli(["pending"], env)  # a run asking at a terminal is waiting at the gate too
        child.sendline("Jane Doe")
        child.expect("Password of Jane Doe")  # typed without echo; it unlocks the key that signs
        child.sendline("not her password")
        child.expect("wrong password")
        child.expect("Password of Jane Doe")
        child.sendline(DEMO_PASSWORD)
        child.expect(r"Approve this release for deployment\? \[y/n\]: ")
        child.sendline("y")
        child.expect("Rationale")
        child.sendline("Pilot only, capped exposure")
        child.expect("Type OVERRIDE")
        child.sendline("OVERRIDE")
        child.expect("Why is overriding")
        child.sendline("Board-approved pilot with manual review of every decline")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    [record] = approvals(store)
    assert record["decision_mode"] == "interactive"
    assert record["threshold_override"] is True
    assert record["override_rationale"].startswith("Board-approved")
    assert record["threshold_checks"]["Accuracy"] is False
    assert record["deployment_url"]
    assert "terminal (pid" in while_asking.stdout, while_asking.stdout
    assert record["run_id"] in while_asking.stdout
    refused = refusals_for(ComplianceStore(str(store)), record["release_id"])
    assert [(r.actor, r.action, r.channel, r.rule) for r in refused] == [
        ("Quinn Tester", "decide", "interactive", "SoD-1, SoD-2"),
        ("Jane Doe", "decide", "interactive", "password"),
    ]
    assert record["signature"]["signer"] == "Jane Doe"
    assert "not her password" not in child.before and DEMO_PASSWORD not in (child.before or "")
    shown = transcript.getvalue()
    assert "Password of Jane Doe" in shown and "not her password" not in shown and DEMO_PASSWORD not in shown


def test_terminal_without_a_sign_off_pauses_instead_of_asking(store: Path) -> None:
    import pexpect

    env = {**os.environ, **gate_env(store, decision=None), "COLUMNS": "200"}
    env.pop("TESTER", None)
    child = pexpect.spawn(CLI, ["run", *FAST, "--wait-timeout", "1"], env=env, encoding="utf-8", timeout=240)
    try:
        child.expect("No tester sign-off yet")
        child.expect(pexpect.EOF)
        output = child.before
    finally:
        child.close()
    assert child.exitstatus == EXIT_WAITING, output
    assert "Your name" not in output and "Approve this release" not in output
    listing = cli(["pending"], gate_env(store, decision=None))
    run_id = _listed_run(listing.stdout, output)
    assert refusals_for(ComplianceStore(str(store)), release_key(run_id)) == []  # nobody was refused: nobody asked
    ended = cli(
        ["approve", run_id, "--reject", "--rationale", "Test run, not for release", *signed_as("Jane Doe")], env
    )
    assert ended.returncode == EXIT_REJECTED, ended.stdout + ended.stderr
    assert run_id not in cli(["pending"], gate_env(store, decision=None)).stdout


def _listed_run(listing: str, run_output: str) -> str:
    """The run id ``pending`` lists for the run whose output is ``run_output``."""
    ids = {token for line in listing.splitlines() for token in line.split() if len(token) == 36 and "-" in token}
    [run_id] = [i for i in ids if i in run_output]
    return run_id


# ---------------------------------------------------------------------------
# Two runs at once
# ---------------------------------------------------------------------------
def test_two_concurrent_runs_write_separate_complete_records(store: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", **gate_env(store)}
    procs = [
        subprocess.Popen(
            [CLI, "run", *FAST, "--seed", str(seed)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for seed in (11, 13)
    ]
    outputs = [p.communicate(timeout=400)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    records = approvals(store)
    assert len(records) == 2
    for record in records:
        jsonschema.Draft202012Validator(SCHEMA).validate(record)
    assert len({r["approval_id"] for r in records}) == 2
    rows = parse_rows((store / "model_release_log.md").read_text())
    assert sorted(r.approval_id for r in rows) == sorted(r["approval_id"] for r in records)
    assert not list(store.rglob(".tmp-*"))
    live = [p for p in (store / "deployments").glob("AI-REL-*.json")]
    assert len(live) == 1, "the later release replaces the earlier one"
