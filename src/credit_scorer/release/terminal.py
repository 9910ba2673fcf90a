"""The gate's terminal adapter: the summary shown at the gate and the interactive prompt.

Writes to the real terminal (``sys.__stdout__``), reads from ``sys.__stdin__``, so it
works inside a ZenML step whose output is captured.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import TypeVar

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from credit_scorer.documents.collect import AnnexIvDocument
from credit_scorer.domain.checks import ThresholdChecks
from credit_scorer.domain.fairness import FairnessReport
from credit_scorer.domain.risk import RiskAssessment
from credit_scorer.records.identities import Signer
from credit_scorer.records.models import TesterSignoff, iso_utc, utc_now
from credit_scorer.records.people import RULE_SIGNOFF, IdentityError
from credit_scorer.release.gate import OVERRIDE_WORD, DecisionRequest, GateDecision, make_decision

Unlock = Callable[[str, str], "Signer | None"]
"""``(name, password) -> their unlocked key`` (None: dev mode, unsigned); raises IdentityError when refused."""

NAME_ATTEMPTS = 3
"""Names the terminal accepts to try before the run stops (each refusal is recorded)."""


def terminal_console() -> Console:
    """A console on the real terminal, even inside a step with captured output."""
    return Console(file=sys.__stdout__, highlight=False)


def gate_summary(
    console: Console,
    release_id: str,
    checks: ThresholdChecks,
    fairness: FairnessReport,
    risk: RiskAssessment,
    artefacts: str,
    signoff: TesterSignoff | None,
    annex_iv: AnnexIvDocument | None = None,
    store_url: str = "",
) -> None:
    """Print what the approver decides on: checks, fairness, risk, where artefacts are."""
    table = Table(title=f"Release gate {release_id}: Model Approval Thresholds")
    for column in ("check", "value", "limit", "result"):
        table.add_column(column, justify="left" if column in ("check", "result") else "right")
    for c in checks.all_checks:
        table.add_row(
            c.name,
            "–" if c.outcome == "not_evaluable" else f"{c.value:.4f}",
            f"{c.operator} {c.limit:.4f}",
            "pass" if c.passed else f"[bold red]{c.verdict}[/]",
        )
    console.print(table)
    for c in checks.all_checks:
        if c.outcome == "not_evaluable":
            console.print(f"[bold red]{c.name} not evaluable[/]: {escape(c.reason or '')}", soft_wrap=True)
    flags = "; ".join(fairness.fairness_flags) or "none"
    console.print(
        f"fairness: bias disparity {fairness.bias_disparity:.4f} ({fairness.bias_disparity_attribute or '–'}), "
        f"flags: {flags}; insufficient sample: {', '.join(fairness.insufficient_sample_groups) or 'none'}",
        soft_wrap=True,
    )
    console.print(
        f"risk: score {risk.overall_risk_score:.3f}, level {risk.risk_level}, high-risk factors: "
        f"{'; '.join(risk.high_risk_factors) or 'none'}",
        soft_wrap=True,
    )
    tester = f"{signoff.tester} at {signoff.signed_at}" if signoff else "none yet"
    console.print(f"tester sign-off: {tester}", soft_wrap=True)
    console.print(f"artefacts: {artefacts}", soft_wrap=True)
    if annex_iv is not None:
        missing = len(annex_iv.missing_facts)
        note = f"[bold yellow]{missing} provider facts to be completed[/]" if missing else "all provider facts given"
        console.print(
            f"Annex IV: {store_url}/{annex_iv.pdf_path} (sha256 {annex_iv.pdf_sha256[:16]}…); {note}",
            soft_wrap=True,
        )


def pause_for_signoff(console: Console, run_id: str) -> None:
    """Say why the terminal asks nothing: the tester has not signed off, so the run pauses at the gate."""
    console.print(
        f"[bold yellow]No tester sign-off yet[/] ({RULE_SIGNOFF}): the run pauses at the gate instead of asking.\n"
        f"The tester signs off with `credit-scorer sign-off {run_id} --as NAME` (or in the console); then decide "
        f"with `credit-scorer approve {run_id} --approve|--reject --rationale TEXT --as NAME` or in the console.",
        soft_wrap=True,
        markup=True,
    )


def _ask(console: Console, prompt: str, read: Callable[[], str]) -> str:
    console.print(prompt, end="", markup=False, highlight=False)
    line = read()
    if line == "":
        raise EOFError("the terminal closed before the decision was given")
    return line.strip()


T = TypeVar("T")


def _until_accepted(console: Console, attempt: Callable[[], T]) -> T:
    """Run ``attempt`` until it is not refused; each :class:`IdentityError` is shown (its refusal is recorded by
    whoever raised it), and after :data:`NAME_ATTEMPTS` refusals the last one ends the prompt."""
    for number in range(1, NAME_ATTEMPTS + 1):
        try:
            return attempt()
        except IdentityError as exc:
            console.print(f"[bold red]{escape(str(exc))}[/]", soft_wrap=True)
            if number == NAME_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def ask_approver(console: Console, vet: Callable[[str], None], reader: Callable[[], str]) -> str:
    """The approver's name, accepted by ``vet`` (role, separation of duties) before anything else is asked."""

    def attempt() -> str:
        approver = ""
        while not approver:
            approver = _ask(console, "Your name (approver): ", reader)
        vet(approver)
        return approver

    return _until_accepted(console, attempt)


def ask_password(console: Console, approver: str, unlock: Unlock, read_secret: Callable[[str], str]) -> Signer | None:
    """The approver's key, unlocked by the password they type (not echoed); a refused password is asked again."""
    return _until_accepted(
        console, lambda: unlock(approver, read_secret(f"Password of {approver} (it signs your decision): "))
    )


def _read_hidden(prompt: str) -> str:
    """A line typed at the controlling terminal without echo (getpass)."""
    return getpass.getpass(prompt, stream=sys.__stdout__)


def prompt_decision(
    console: Console,
    checks: ThresholdChecks,
    current_signoff: Callable[[], TesterSignoff | None],
    vet: Callable[[str], None],
    unlock: Unlock,
    read: Callable[[], str] | None = None,
    read_secret: Callable[[str], str] | None = None,
) -> tuple[GateDecision, Signer | None]:
    """Ask the approver at the terminal: name (checked first), password (unlocks the key that signs), y/n,
    rationale (and an override when a check failed). Returns the decision and the key to sign it with."""
    reader = read or sys.__stdin__.readline  # type: ignore[union-attr]
    approver = ask_approver(console, vet, reader)
    signer = ask_password(console, approver, unlock, read_secret or _read_hidden)
    answer = ""
    while answer not in {"y", "n"}:
        answer = _ask(console, "Approve this release for deployment? [y/n]: ", reader).lower()[:1]
    rationale = ""
    while not rationale:
        rationale = _ask(console, "Rationale (required): ", reader)
    override, override_rationale = False, None
    if answer == "y" and not checks.all_passed:
        console.print(f"[bold red]Threshold checks failed: {', '.join(checks.failed)}.[/]")
        typed = _ask(console, f"Type {OVERRIDE_WORD} to approve anyway, anything else to cancel: ", reader)
        if typed != OVERRIDE_WORD:
            answer = "n"
            rationale = f"{rationale} (approval cancelled: override not confirmed)"
        else:
            override = True
            while not override_rationale:
                override_rationale = _ask(console, "Why is overriding the failed checks justified? ", reader)
    request = DecisionRequest(
        approve=answer == "y",
        approver=approver,
        rationale=rationale,
        override=override,
        override_rationale=override_rationale,
    )
    return make_decision(request, "interactive", iso_utc(utc_now()), current_signoff()), signer
