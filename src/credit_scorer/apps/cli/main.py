"""Command-line interface: ``credit-scorer``.

Exit codes of ``run``, ``approve`` and ``resume``: 0 the release was approved and is
live; 4 it was rejected, or an automated approval was refused; 5 the run is paused at
the release gate, waiting for a decision; 1 the run failed (bad data, a step error);
2 a bad option, file or refused action (the message names the rule).

One module per command group; each command parses its options, calls one service and prints:

- ``releases.py``       run, show, runs, pending, sign-off, approve, resume, redeploy, annex-iv
- ``deployments.py``    deployments [stop], deploy (retry a failed deployment)
- ``audit.py``          audit verify | checkpoint | pin | rotate-key | spot-check
- ``registries.py``     thresholds set | history, people show | set | history
- ``approval_console.py`` users add | list | remove, console
- ``common.py``         consoles, exit codes, option types, progress and outcome printing
- ``summary.py``        the run's tables
"""

from __future__ import annotations

from typing import Annotated

import typer

from credit_scorer import __version__
from credit_scorer.apps.cli import approval_console, audit, deployments, registries, releases
from credit_scorer.apps.cli.common import EXIT_REJECTED, EXIT_WAITING, console

__all__ = ["EXIT_REJECTED", "EXIT_WAITING", "app"]

app = typer.Typer(
    name="credit-scorer",
    help="Train credit-scoring models and take them through the EU AI Act release gate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"credit-scorer {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Train credit-scoring models and take them through the EU AI Act release gate."""


app.add_typer(releases.app)
app.add_typer(approval_console.app)  # the console command; its users group follows
app.add_typer(deployments.app)  # deploy
app.add_typer(deployments.deployments_app, name="deployments")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(registries.thresholds_app, name="thresholds")
app.add_typer(registries.people_app, name="people")
app.add_typer(approval_console.users_app, name="users")
