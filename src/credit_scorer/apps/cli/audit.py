"""``credit-scorer audit``: verify the records, checkpoints, key pinning and rotation, quarterly spot-check (SOP §5)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from credit_scorer.apps.cli.common import (
    AsOption,
    PeopleOption,
    StoreOption,
    _fail,
    _people_in_force,
    _refused,
    console,
    err_console,
)
from credit_scorer.core.errors import CreditScorerError

if TYPE_CHECKING:
    pass


audit_app = typer.Typer(help="Verify the compliance records and spot-check approvals (SOP §5).", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify_command(
    store: StoreOption = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="A checkpoint file from `audit checkpoint` (repeatable): the ledger must extend it.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Recompute every hash, check the ledger chain, keys and signatures, the trust anchor and what each record claims.

    Exit code 0 when everything verifies (warnings, e.g. an interrupted deployment, are listed but do not fail it),
    1 when anything is wrong (each problem names the file and field), 2 for an unreadable checkpoint file.
    """
    from credit_scorer.audit.verify import audit_verify
    from credit_scorer.records.ledger_verify import parse_checkpoint
    from credit_scorer.records.store import ComplianceStore

    compliance = ComplianceStore(store)
    try:
        checkpoints = [parse_checkpoint(path.read_text(encoding="utf-8")) for path in checkpoint or []]
    except (OSError, ValueError) as exc:
        raise _fail(f"--checkpoint: {exc}", 2) from None
    try:
        report = audit_verify(compliance, checkpoints)
    except CreditScorerError as exc:
        raise _refused(exc) from None
    if report.warnings:
        table = Table(title=f"Warnings for {compliance.url}", show_lines=False)
        for column in ("file", "field", "warning"):
            table.add_column(column, overflow="fold")
        for problem in report.warnings:
            table.add_row(problem.file, problem.field, problem.message)
        console.print(table)
    if report.ok:
        console.print(f"[green]{report.summary}[/]", soft_wrap=True)
        console.print(
            f"ledger head: seq {report.head_seq}, entry_hash {report.head_hash}; key_id {report.key_id or '–'}",
            soft_wrap=True,
        )
        return
    table = Table(title=f"Problems in {compliance.url}", show_lines=False)
    table.add_column("file", no_wrap=True, overflow="fold")
    table.add_column("field", overflow="fold")
    table.add_column("problem", overflow="fold")
    for problem in report.errors:
        table.add_row(problem.file, problem.field, problem.message)
    console.print(table)
    err_console.print(f"[red]audit failed:[/] {report.summary}", soft_wrap=True)
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint_command(
    store: StoreOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the checkpoint to this file.")] = None,
) -> None:
    """Print a signed checkpoint of the ledger (sequence number, head hash, time) to keep outside the store.

    Later, `audit verify --checkpoint FILE` proves the ledger still extends it: nothing cut back or rewritten.
    """
    import json as json_module

    from credit_scorer.records.ledger import LedgerError, make_checkpoint
    from credit_scorer.records.store import ComplianceStore

    try:
        checkpoint = make_checkpoint(ComplianceStore(store))
    except (LedgerError, CreditScorerError) as exc:
        raise _refused(exc) from None
    text = json_module.dumps(checkpoint.model_dump(), indent=2, sort_keys=True) + "\n"
    if out is not None:
        out.write_text(text, encoding="utf-8")
    typer.echo(text, nl=False)


@audit_app.command("pin")
def audit_pin_command(store: StoreOption = None) -> None:
    """Pin the store's ledger key and ledger id in this machine's trust file (for a store first met here).

    Pinning trusts the store as it is now: run `audit verify --checkpoint …` first when you hold a checkpoint.
    """
    from credit_scorer.records.anchor import trust_file
    from credit_scorer.records.ledger import LedgerError, pin_store
    from credit_scorer.records.store import ComplianceStore

    compliance = ComplianceStore(store)
    try:
        pinned = pin_store(compliance)
    except (LedgerError, CreditScorerError) as exc:
        raise _refused(exc) from None
    keys = ", ".join(k[:16] for k in pinned.keys)
    console.print(f"pinned ledger key(s) {keys} of {compliance.url} in {trust_file()}", soft_wrap=True)


@audit_app.command("rotate-key")
def audit_rotate_key_command(
    actor: AsOption,
    reason: Annotated[str, typer.Option("--reason", help="Why the key is replaced (recorded in the ledger).")],
    store: StoreOption = None,
    people: PeopleOption = None,
) -> None:
    """Replace the ledger signing key: the old key signs the hand-over to the new one (an approver does this)."""
    from credit_scorer.audit.keys import rotate_key_as
    from credit_scorer.records.ledger import LedgerError
    from credit_scorer.records.store import ComplianceStore

    compliance = ComplianceStore(store)
    try:
        entry = rotate_key_as(compliance, _people_in_force(store, people, False).people, actor, reason)
    except (LedgerError, CreditScorerError) as exc:
        raise _refused(exc) from None
    new_id = entry.event().get("new_key_id")
    console.print(f"ledger key rotated at seq {entry.seq}: new key_id {new_id} (signed over by {entry.key_id})")


@audit_app.command("spot-check")
def audit_spot_check_command(
    sample: Annotated[int, typer.Option("--sample", min=1, help="How many approval records to draw.")],
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the draw (default: a random one, printed and recorded).")
    ] = None,
    quarter: Annotated[
        str | None, typer.Option("--quarter", help="Quarter of the records, e.g. 2026Q4 (default: the current one).")
    ] = None,
    actor: Annotated[str | None, typer.Option("--as", help="Your name, recorded in the report.")] = None,
    store: StoreOption = None,
) -> None:
    """Draw approval records of a quarter reproducibly, check each against the SOP, write a Markdown and HTML report.

    Exit code 0 when the sample has no findings, 1 when it has.
    """
    from credit_scorer.audit.spot_check import spot_check
    from credit_scorer.records.store import ComplianceStore

    compliance = ComplianceStore(store)
    try:
        report = spot_check(compliance, sample, seed, quarter, by=actor)
    except CreditScorerError as exc:
        raise _refused(exc) from None
    console.print(
        f"spot-check {report.quarter}: {len(report.sample)} of {report.population} approval records drawn "
        f"with seed {report.seed}",
        soft_wrap=True,
    )
    for approval_id in report.sample:
        found = [f for f in report.findings if f.approval_id == approval_id]
        console.print(f"  {'[green]✓[/]' if not found else f'[red]✗ {len(found)}[/]'} {approval_id}", soft_wrap=True)
        for finding in found:
            console.print(f"      {finding.check}: {finding.field}: {finding.message}", soft_wrap=True, markup=False)
    for finding in (f for f in report.findings if f.approval_id not in report.sample):
        console.print(f"  [red]✗[/] {finding.file}: {finding.message}", soft_wrap=True)
    console.print(
        f"report: {compliance.url}/{report.md_path} and {compliance.url}/{report.html_path} (entered in the ledger)",
        soft_wrap=True,
    )
    if report.findings:
        raise typer.Exit(1)
