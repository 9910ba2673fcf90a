"""What every command shares: the consoles, exit codes, option types, errors and how a run's progress and outcome print.

Presentation only: what a command decides lives in ``credit_scorer.release`` (and ``release/inputs.py``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from credit_scorer.core.errors import ConfigError, CreditScorerError

if TYPE_CHECKING:
    from credit_scorer.core.ports import Deployer
    from credit_scorer.pipelines.run import RunResult
    from credit_scorer.records.people_registry import PeopleInForce


EXIT_REJECTED = 4
EXIT_WAITING = 5


console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class _ProgressHandler(logging.Handler):
    """Prints one line per finished (or failed) pipeline step."""

    def emit(self, record: logging.LogRecord) -> None:
        step_name = getattr(record, "step", "?")
        event = getattr(record, "event", "")
        seconds = getattr(record, "seconds", 0.0)
        if event == "finished":
            console.print(f"  [green]✓[/] {step_name:<20} {seconds:6.2f} s")
        elif event == "failed":
            console.print(f"  [red]✗[/] {step_name:<20} {seconds:6.2f} s")
        elif event == "waiting":
            console.print(
                f"  [yellow]…[/] {step_name:<20} waiting for a decision on {getattr(record, 'release_id', '')}"
            )


def _fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error (its text verbatim: names, rationales and paths may hold rich markup) and exit."""
    err_console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def _refused(exc: Exception) -> typer.Exit:
    """Print an error and exit with the code its class carries (core/errors.py; 2 = refused, nothing done)."""
    code = exc.exit_code if isinstance(exc, CreditScorerError) else 2
    return _fail(str(exc).strip("'\"") if type(exc) is KeyError else str(exc), code)


AsOption = Annotated[str, typer.Option("--as", help="Your name, as in the people/roles file.")]
StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="Compliance store URL (default: $CREDIT_SCORER_STORE or ./compliance)."),
]
PeopleOption = Annotated[
    Path | None,
    typer.Option("--people", help="People/roles file (default: $CREDIT_SCORER_PEOPLE or conf/people.yaml)."),
]
DevModeOption = Annotated[
    bool, typer.Option("--dev-mode", help="Waive separation of duties (recorded in every record).")
]


PasswordStdinOption = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read your password (it unlocks your signing key) from stdin's first line."),
]
PasswordFileOption = Annotated[
    Path | None,
    typer.Option("--password-file", help="Read your password from the first line of this file (mode 0600; CI)."),
]


def _password(name: str, from_stdin: bool, file: Path | None, *, dev_mode: bool) -> str:
    """``name``'s password: from ``--password-file``, ``--password-stdin`` or a hidden prompt ("" = none, dev mode)."""
    from credit_scorer.records.identities import read_password_file
    from credit_scorer.records.people import RULE_SIGNATURE

    if from_stdin and file is not None:
        raise _fail("give --password-stdin or --password-file, not both; nothing was recorded", 2)
    if file is not None:
        try:
            return read_password_file(file)
        except CreditScorerError as exc:
            raise _refused(exc) from None
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        if dev_mode:
            return ""
        raise _fail(
            f"{name}'s password unlocks the key that signs this ({RULE_SIGNATURE}): give --password-stdin or "
            "--password-file, or run in a terminal; nothing was recorded",
            2,
        )
    hint = " (empty: unsigned, dev mode)" if dev_mode else ""
    typed: str = typer.prompt(f"Password of {name}{hint}", hide_input=True, default="", show_default=False)
    return typed


def _people_in_force(store: str | None, people: Path | None, dev_mode: bool, *, adopt: bool = True) -> PeopleInForce:
    """The store's people registry in force (adopting the people file on first use): release/inputs.py decides."""
    from credit_scorer.release.inputs import people_in_force_for

    return people_in_force_for(store, people, dev_mode, adopt=adopt)


@contextmanager
def _progress() -> Iterator[None]:
    progress = logging.getLogger("credit_scorer.progress")
    progress.setLevel(logging.INFO)
    progress.propagate = False
    handler = _ProgressHandler()
    progress.addHandler(handler)
    try:
        yield
    finally:
        progress.removeHandler(handler)


def _guard_run(action: Callable[[], RunResult], store: str) -> RunResult:
    """Run (or resume) a pipeline; turn a failure into a clear message and exit code."""
    from credit_scorer.core.ids import release_key
    from credit_scorer.pipelines.run import PipelineRunFailed
    from credit_scorer.records.models import decisions_for
    from credit_scorer.records.store import ComplianceStore

    try:
        return action()
    except PipelineRunFailed as exc:
        where = f"step {exc.step}" if exc.step else "the pipeline"
        run_note = f" (run {exc.run_id})" if exc.run_id else ""
        rejected = bool(exc.run_id) and any(
            not r.approved for r in decisions_for(ComplianceStore(store), release_key(exc.run_id or ""))
        )
        if rejected:
            from credit_scorer.apps.cli import summary
            from credit_scorer.pipelines.run import load_run_result

            summary.print_run(console, load_run_result(exc.run_id or ""))
            err_console.print(f"\n[bold red]not deployed[/]{escape(run_note)}: {escape(exc.cause)}", soft_wrap=True)
            raise typer.Exit(EXIT_REJECTED) from None
        raise _fail(f"{where} failed{run_note}:\n{exc.cause}") from None


def _finish(result: RunResult, store: str) -> None:
    """Print a run's tables and its gate outcome; exit with the matching code."""
    from credit_scorer.apps.cli import summary

    summary.print_run(console, result)
    if result.status == "paused":
        console.print(
            f"\n[bold yellow]waiting at the release gate[/]: release {result.release_id}. "
            f"The tester signs off with `credit-scorer sign-off {result.run_id} --as NAME`; the approver decides "
            f"with `credit-scorer approve {result.run_id} --approve|--reject --rationale TEXT --as NAME` "
            "(`credit-scorer pending` lists waiting runs).",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_WAITING)
    if result.approval is not None:
        console.print(
            f"\n[bold green]deployed[/] release {result.release_id} at [bold]{result.deployment_url}[/]; approval "
            f"record {store}/approvals/{result.approval.approval_id}.json "
            f"(approved by {result.approval.approver}, {result.approval.decision_mode}); "
            f"release log {store}/model_release_log.md",
            soft_wrap=True,
        )


def _recover(store: str | None) -> None:
    """Settle what an interrupted deployment or rollback left (see credit_scorer.release.recovery); say what."""
    from credit_scorer.records.ledger import LedgerError
    from credit_scorer.records.store import ComplianceStore
    from credit_scorer.release.recovery import recover_at_start

    try:
        done = recover_at_start(ComplianceStore(store), _deployer(store))
    except LedgerError as exc:
        raise _fail(f"the compliance store cannot be recovered: {exc}", 2) from None
    for sentence in done:
        err_console.print(f"[yellow]recovered:[/] {sentence}", soft_wrap=True)


def _deployer(store: str | None) -> Deployer:
    """The configured deployer (``CREDIT_SCORER_DEPLOYER``); a configuration problem exits 2 naming the setting."""
    from credit_scorer.adapters.factory import deployer_for
    from credit_scorer.records.store import ComplianceStore

    try:
        return deployer_for(ComplianceStore(store))
    except ConfigError as exc:
        raise _refused(exc) from None
