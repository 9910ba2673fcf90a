"""What the console's buttons do: the tester's sign-off and the approver's decision.

Both apply exactly the rules the CLI applies (:mod:`credit_scorer.release.gate`,
:mod:`credit_scorer.release.workflow`). A decision is checked, then resolves the run's
ZenML wait condition; the run is resumed by ``credit-scorer resume`` in a background
process, whose ``approve_deployment``/``deploy_model`` steps write the approval record
(decision mode ``console``) exactly as for ``credit-scorer approve``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from credit_scorer.integrations.tickets import TicketTracker
from credit_scorer.pipelines import run as runs
from credit_scorer.release import gate
from credit_scorer.release.identity import IdentityError, People, role_violation
from credit_scorer.release.records import SignoffRecord, iso_utc, utc_now
from credit_scorer.release.store import ComplianceStore
from credit_scorer.release.workflow import ReleaseRefused, ensure_undecided, sign_off, signoff_from_tracker


class ConsoleRefused(ReleaseRefused):
    """The action was refused; the message says why and nothing was changed."""


@dataclass(frozen=True)
class DecisionForm:
    """What the approver posted."""

    approve: bool
    rationale: str
    override: bool
    override_rationale: str
    condition_id: str


def console_sign_off(
    store: ComplianceStore,
    tracker: TicketTracker,
    people: People,
    release_id: str,
    run_id: str,
    tester: str,
    note: str,
    dev_mode: bool,
) -> SignoffRecord:
    """Record "Tester ✓" for a release at the gate (source ``console``)."""
    state = runs.gate_state(run_id)
    if not state.waiting:
        raise ConsoleRefused(f"{release_id} is not waiting at the release gate (run {state.run_status}); no sign-off")
    candidate = runs.release_candidate(run_id)
    return sign_off(store, tracker, people, candidate.submitter, run_id, release_id, tester, note, "console", dev_mode)


def check_decision(
    store: ComplianceStore,
    tracker: TicketTracker,
    people: People,
    release_id: str,
    run_id: str,
    approver: str,
    form: DecisionForm,
    dev_mode: bool,
) -> gate.GateDecision:
    """Build the decision and apply the gate's rules; raises naming the rule, nothing recorded."""
    violation = role_violation(people, approver, "approver")
    if violation:
        raise IdentityError(f"refused: {violation}; only an approver (AI compliance officer) decides")
    ensure_undecided(store, release_id)
    candidate = runs.release_candidate(run_id)
    if form.override and candidate.checks.all_passed:
        raise gate.GateInputError("every threshold check passed; there is nothing to override")
    decision = gate.GateDecision(
        approved=form.approve,
        approver=approver,
        rationale=form.rationale.strip(),
        decision_mode="console",
        decided_at=iso_utc(utc_now()),
        threshold_override=form.approve and form.override,
        override_rationale=(form.override_rationale.strip() or None) if form.approve and form.override else None,
        tester_signoff=signoff_from_tracker(
            store, tracker, people, candidate.submitter, run_id, release_id, dev_mode
        ),
    )
    gate.validate_decision(decision, candidate.checks, people, candidate.submitter, dev_mode)
    return decision


def cli_command() -> list[str]:
    """How to start ``credit-scorer`` from here: the installed script next to this Python.

    Not ``python -m credit_scorer``: ZenML takes the folder of the main module as its
    source root, and would then import the package's modules a second time under other
    names (the resumed step then rejects its own ``GateDecision``).
    """
    script = Path(sys.executable).parent / "credit-scorer"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from credit_scorer.cli import app; app()"]


class Resumer:
    """Resumes runs in background processes (``credit-scorer resume RUN``) and remembers how each ended."""

    def __init__(self, log_dir: Path, store_url: str) -> None:
        self.log_dir = log_dir
        self.store_url = store_url
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def start(self, release_id: str, run_id: str) -> Path:
        """Start resuming a run; its output goes to ``<log_dir>/<release>-resume.log``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_path(release_id)
        with self._lock, open(log_path, "ab") as log:
            self._processes[release_id] = subprocess.Popen(
                [*cli_command(), "resume", run_id, "--store", self.store_url],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "COLUMNS": "120"},
                start_new_session=True,  # a console restart does not stop a deployment half way
            )
        return log_path

    def log_path(self, release_id: str) -> Path:
        """Where the resume output of a release goes."""
        return self.log_dir / f"{release_id}-resume.log"

    def exit_code(self, release_id: str) -> int | None:
        """How the release's resume process ended (None while running or never started here)."""
        with self._lock:
            process = self._processes.get(release_id)
            return process.poll() if process else None

    def log_tail(self, release_id: str, lines: int = 15) -> str:
        """The last lines of the resume output."""
        path = self.log_path(release_id)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
