"""``credit-scorer deployments``: list or stop scoring endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from credit_scorer.apps.cli.common import (
    StoreOption,
    _deployer,
    _recover,
    console,
)

if TYPE_CHECKING:
    pass


deployments_app = typer.Typer(help="List or stop scoring endpoints.", invoke_without_command=True)


@deployments_app.callback()
def deployments_list(ctx: typer.Context, store: StoreOption = None) -> None:
    """List scoring endpoints: release, URL, model sha256, process, whether it answers."""
    if ctx.invoked_subcommand is not None:
        return
    _recover(store)
    table = Table(title="scoring endpoints")
    for column in ("release", "url", "model sha256", "pid", "started (UTC)", "state"):
        table.add_column(column)
    statuses = _deployer(store).list()
    for status in statuses:
        d = status.deployment
        state = "[green]live[/]" if status.alive else "[red]not answering[/]"
        process = str(d.pid) if d.backend == "local" else d.backend
        table.add_row(d.release_id, d.url, d.model_sha256[:16] + "…", process, d.started_at, state)
    console.print(table if statuses else "no scoring endpoint is running")


@deployments_app.command("stop")
def deployments_stop(
    release_id: Annotated[str | None, typer.Argument(help="Release to stop (default: every running one).")] = None,
    store: StoreOption = None,
) -> None:
    """Stop a release's scoring endpoint (or all of them)."""
    _recover(store)
    deployer = _deployer(store)
    targets = [release_id] if release_id else [s.deployment.release_id for s in deployer.list()]
    if not targets:
        console.print("no scoring endpoint is running")
    for target in targets:
        stopped = deployer.stop(target)
        console.print(f"{target}: {'stopped' if stopped else 'was not running'}")
