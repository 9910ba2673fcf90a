"""``credit-scorer deployments``: list or stop scoring endpoints; ``deploy``: retry a failed deployment."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from credit_scorer.apps.cli.common import (
    AsOption,
    PeopleOption,
    StoreOption,
    _deployer,
    _people_in_force,
    _recover,
    _refused,
    console,
)
from credit_scorer.core.errors import CreditScorerError

deployments_app = typer.Typer(help="List or stop scoring endpoints.", invoke_without_command=True)
app = typer.Typer()  # ``deploy``, merged into the top-level ``credit-scorer`` app by main.py

RETRY_HINT = "an approver retries a failed deployment with `credit-scorer deploy RELEASE --as NAME`"


@deployments_app.callback()
def deployments_list(ctx: typer.Context, store: StoreOption = None) -> None:
    """List scoring endpoints (release, URL, model sha256, process, whether it answers) and failed deployments."""
    if ctx.invoked_subcommand is not None:
        return
    from credit_scorer.records.store import ComplianceStore
    from credit_scorer.release.deploy_retry import failed_deployments

    _recover(store)
    table = Table(title="scoring endpoints")
    for column in ("release", "url", "model sha256", "pid", "since (UTC)", "state"):
        table.add_column(column)
    statuses = _deployer(store).list()
    for status in statuses:
        d = status.deployment
        state = "[green]live[/]" if status.alive else "[red]not answering[/]"
        process = str(d.pid) if d.backend == "local" else d.backend
        table.add_row(d.release_id, d.url, d.model_sha256[:16] + "…", process, d.started_at, state)
    failed = failed_deployments(ComplianceStore(store), {s.deployment.release_id for s in statuses if s.alive})
    for f in failed:
        table.add_row(
            escape(f.release_id), "–", f.model_sha256[:16] + "…", "–", escape(f.at), "[bold red]deploy failed[/]"
        )
    console.print(table if statuses or failed else "no scoring endpoint is running", soft_wrap=True)
    for f in failed:  # the reason on a line of its own: whole at any terminal width, to read or copy
        reason = escape(f"{f.reason} ({f.record_id}, by {f.by})")  # records hold untrusted text: never markup
        console.print(f"{escape(f.release_id)} [bold red]deploy failed[/]: {reason}", soft_wrap=True)
    if failed:
        console.print(f"{len(failed)} approved release(s) not live because the deployment failed; {RETRY_HINT}")


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


@app.command()
def deploy(
    release_id: Annotated[
        str, typer.Argument(metavar="RELEASE", help="Release id (AI-REL-…) whose deployment failed.")
    ],
    actor: AsOption,
    store: StoreOption = None,
    people: PeopleOption = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Port of the scoring endpoint (default: a free one)."),
    ] = None,
    git_commit: Annotated[
        bool,
        typer.Option("--git-commit", help="Commit model_release_log.md when the store is in a git repo."),
    ] = False,
) -> None:
    """Retry the deployment of an approved release whose endpoint could not be started (an approver; no new decision).

    The approved model must be unchanged (same sha256); the retry is recorded under deploy_retries/ in the store.
    """
    from credit_scorer.adapters.factory import check_integrations, tracker_for
    from credit_scorer.records.store import ComplianceStore
    from credit_scorer.release.deploy_retry import check_request, retry_deployment

    try:
        check_integrations(store)
        roles = _people_in_force(store, people, False, adopt=False)  # a refusal writes nothing
        check_request(roles, release_id, actor)
    except CreditScorerError as exc:
        raise _refused(exc) from None
    _recover(store)
    compliance = ComplianceStore(store)
    try:
        record, deployment = retry_deployment(
            compliance, tracker_for(compliance), _deployer(store), roles, release_id, actor, port, git_commit
        )
    except CreditScorerError as exc:
        raise _refused(exc) from None
    console.print(
        f"[bold green]deployed[/] release {escape(record.release_id)} (model {record.model_sha256[:16]}…, approval "
        f"{escape(record.approval_id)}) at [bold]{escape(deployment.url)}[/]; retry record "
        f"{escape(compliance.url)}/deploy_retries/{escape(record.retry_id)}.json; release log "
        f"{escape(compliance.url)}/model_release_log.md",
        soft_wrap=True,
    )
