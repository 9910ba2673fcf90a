"""What the console's buttons do: the tester's sign-off and the approver's decision.

Both apply exactly the rules the CLI applies (:mod:`credit_scorer.release.gate`,
:mod:`credit_scorer.release.workflow`). A decision is checked, then resolves the run's
ZenML wait condition; the run is resumed by ``credit-scorer resume`` in a background
process, whose ``approve_deployment``/``deploy_model`` steps write the approval record
(decision mode ``console``) exactly as for ``credit-scorer approve``.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from credit_scorer.adapters.tickets import TicketTracker
from credit_scorer.core.settings import environ
from credit_scorer.pipelines import run as runs
from credit_scorer.records.models import SignoffRecord, iso_utc, utc_now
from credit_scorer.records.people import IdentityError, People, enforce, role_violation
from credit_scorer.records.people_registry import PeopleInForce, people_for_decision
from credit_scorer.records.refusals import RefusedAction
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release import gate
from credit_scorer.release.decisions import prepare_decision
from credit_scorer.release.refusals import refusals_recorded, unlock_recorded
from credit_scorer.release.settings import ReleaseSettings
from credit_scorer.release.signoffs import sign_off
from credit_scorer.release.workflow import ReleaseRefused, ensure_undecided


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
    password: str = field(default="", repr=False)  # unlocks the approver's signing key; never shown or logged


def run_settings(run_id: str) -> ReleaseSettings:
    """The release settings a run was started with: its people/roles file and dev mode decide when it resumes.

    ``approve_deployment`` and ``deploy_model`` check the decision against these, not against the
    console's ``--people`` file, so the console checks them too before resolving the gate: a
    decision the resumed run would refuse is refused here, with nothing resolved and nothing lost.
    """
    from zenml.client import Client

    run = Client().get_pipeline_run(run_id)
    raw = (run.config.parameters or {}).get("release")
    try:
        return ReleaseSettings.model_validate(raw)
    except ValidationError as exc:
        raise ConsoleRefused(f"run {run_id} has no readable release settings; decide it with the CLI") from exc


def roles_of_run(store: ComplianceStore, run_id: str) -> tuple[People, bool]:
    """The people and dev mode the resumed steps apply to this run's decision (see ``people_for_decision``)."""
    settings = run_settings(run_id)
    roles = people_for_decision(store, settings.people, settings.people_version, settings.people_source)
    return roles.people, settings.waives_duties


def _as_the_run_sees_it(run_id: str, exc: IdentityError) -> IdentityError:
    return IdentityError(
        f"{exc} (the people/roles file run {run_id[:8]} was started with, which its resumed steps apply; "
        "this console's --people file differs)"
    )


def console_sign_off(
    store: ComplianceStore,
    tracker: TicketTracker,
    people: People,
    release_id: str,
    run_id: str,
    tester: str,
    note: str,
    dev_mode: bool,
    password: str = "",
) -> SignoffRecord:
    """Record "Tester ✓" for a release at the gate (source ``console``), signed with the tester's key."""
    state = runs.gate_state(run_id)
    if not state.waiting:
        raise ConsoleRefused(f"{release_id} is not waiting at the release gate (run {state.run_status}); no sign-off")
    candidate = runs.release_candidate(run_id)
    run_people, run_waives = roles_of_run(store, run_id)
    problem = role_violation(run_people, tester, "tester")
    with refusals_recorded(
        store, tracker, release_id=release_id, run_id=run_id, actor=tester, action="sign-off", channel="console"
    ):
        try:
            enforce([problem] if problem else [], run_waives)
        except IdentityError as exc:
            raise _as_the_run_sees_it(run_id, exc) from None
    roles = people_in_force_of(store, people)
    person = unlock_recorded(
        store, tracker, release_id=release_id, run_id=run_id, actor=tester, action="sign-off", channel="console",
        password=password, dev_mode=dev_mode,
    )  # fmt: skip
    return sign_off(
        store, tracker, people, candidate, tester, note,
        source="console", dev_mode=dev_mode, people_version=roles.version, people_source=roles.source,
        person=person,
    )  # fmt: skip


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
    """Build the decision and apply the gate's rules; raises naming the rule (the refusal is recorded)."""
    action: RefusedAction = "approve" if form.approve else "reject"
    with refusals_recorded(
        store, tracker, release_id=release_id, run_id=run_id, actor=approver, action=action, channel="console"
    ):
        violation = role_violation(people, approver, "approver")
        if violation:
            raise IdentityError(f"refused: {violation}; only an approver (AI compliance officer) decides")
        ensure_undecided(store, release_id)
        candidate = runs.release_candidate(run_id)
        if form.override and candidate.checks.all_passed:
            raise gate.GateInputError("every threshold check passed; there is nothing to override")
        request = gate.DecisionRequest(
            approve=form.approve,
            approver=approver,
            rationale=form.rationale,
            override=form.override,
            override_rationale=form.override_rationale,
        )
        roles = people_in_force_of(store, people)
        person = unlock_recorded(
            store, tracker, release_id=release_id, run_id=run_id, actor=approver, action=action,
            channel="console", password=form.password, dev_mode=dev_mode,
        )  # fmt: skip
        decision = prepare_decision(store, tracker, roles, candidate, request, "console", dev_mode, person)
        run_people, run_waives = roles_of_run(store, run_id)
        try:  # exactly the check the resumed approve_deployment step makes
            gate.validate_decision(decision, candidate.checks, run_people, candidate.submitter, run_waives)
        except IdentityError as exc:
            raise _as_the_run_sees_it(run_id, exc) from None
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
    return [sys.executable, "-c", "from credit_scorer.apps.cli.main import app; app()"]


class Resumer:
    """Resumes runs in background processes (``credit-scorer resume RUN``) and remembers how each ended.

    The process gets the console's own settings, never the shell's: ``--store`` and, in its
    environment, ``CREDIT_SCORER_STORE``, ``CREDIT_SCORER_PEOPLE`` and ``CREDIT_SCORER_USERS``
    (``resume`` has no ``--people``/``--users`` options; dev mode is the run's own setting).
    Its pid goes to ``<release>-resume.pid`` so a restarted console can tell whether it still runs.
    """

    def __init__(self, log_dir: Path, store_url: str, environment: Mapping[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.store_url = store_url
        self.environment = dict(environment or {})
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def start(self, release_id: str, run_id: str) -> Path:
        """Start resuming a run; its output goes to ``<log_dir>/<release>-resume.log``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_path(release_id)
        with self._lock, open(log_path, "ab") as log:
            log.write(f"--- {iso_utc(utc_now())} credit-scorer resume {run_id}\n".encode())
            log.flush()
            process = subprocess.Popen(
                [*cli_command(), "resume", run_id, "--store", self.store_url],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**environ(), **self.environment, "COLUMNS": "120"},
                start_new_session=True,  # a console restart does not stop a deployment half way
            )
            self._processes[release_id] = process
            self._pid_path(release_id).write_text(f"{process.pid} {run_id}\n", encoding="utf-8")
        return log_path

    def log_path(self, release_id: str) -> Path:
        """Where the resume output of a release goes."""
        return self.log_dir / f"{release_id}-resume.log"

    def _pid_path(self, release_id: str) -> Path:
        return self.log_dir / f"{release_id}-resume.pid"

    def exit_code(self, release_id: str) -> int | None:
        """How the release's resume process ended (None while running or never started here)."""
        with self._lock:
            process = self._processes.get(release_id)
            return process.poll() if process else None

    def state(self, release_id: str) -> Literal["running", "ended"] | None:
        """Whether a resume of the release runs now, has ended, or was never started by a console here."""
        with self._lock:
            process = self._processes.get(release_id)
            if process is not None:
                return "running" if process.poll() is None else "ended"
        try:
            pid_text, run_id = self._pid_path(release_id).read_text(encoding="utf-8").split()
        except (OSError, ValueError):
            return None
        return "running" if _runs_resume(int(pid_text), run_id) else "ended"

    def failure(self, release_id: str) -> str:
        """Why the last resume failed: the error it printed, else its exit code."""
        lines = self.log_tail(release_id, 60).splitlines()
        attempts = [i for i, line in enumerate(lines) if line.startswith("--- ") and "credit-scorer resume " in line]
        lines = lines[attempts[-1] + 1 :] if attempts else lines  # the latest attempt's output
        starts = [i for i, line in enumerate(lines) if line.strip().lower().startswith("error:")]
        if starts:
            message = " ".join(line.strip() for line in lines[starts[-1] : starts[-1] + 6] if line.strip())
            return message.split(":", 1)[1].strip() or message
        code = self.exit_code(release_id)
        if code is not None:
            return f"the resume process exited with code {code}; see {self.log_path(release_id)}"
        return "the run failed after the decision was submitted; no resume output in this console"

    def note(self, release_id: str, text: str) -> None:
        """Add a line to the release's resume log (who asked for a retry)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(release_id), "a", encoding="utf-8") as log:
            log.write(f"--- {iso_utc(utc_now())} {text}\n")

    def log_tail(self, release_id: str, lines: int = 15) -> str:
        """The last lines of the resume output."""
        path = self.log_path(release_id)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _runs_resume(pid: int, run_id: str) -> bool:
    """Whether process ``pid`` is alive and is the ``credit-scorer resume`` of ``run_id`` (Linux /proc)."""
    with contextlib.suppress(OSError):
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        return b"resume" in command and run_id.encode() in command
    return False


def people_in_force_of(store: ComplianceStore, people: People) -> PeopleInForce:
    """The registry version the console's people are, for the records it writes (None: a dev-mode file)."""
    roles = people_for_decision(store, people, None, None)
    if roles.people == people:
        return roles
    return PeopleInForce(people, None, "dev mode: the console's --people file (not the store's people registry)")
