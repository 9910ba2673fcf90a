"""Command-line interface: ``credit-scorer``.

Exit codes of ``run``: 0 every threshold check passed; 3 the run finished but a
check failed; 1 the run failed (bad data, a step error); 2 a bad option or file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from credit_scorer import __version__
from credit_scorer.errors import CreditScorerError
from credit_scorer.zenml_state import use_project_zenml_state

EXIT_CHECKS_FAILED = 3

app = typer.Typer(
    name="credit-scorer",
    help="Train credit-scoring models and take them through the EU AI Act release gate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


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


class _ProgressHandler(logging.Handler):
    """Prints one line per finished (or failed) pipeline step."""

    def emit(self, record: logging.LogRecord) -> None:
        step_name = getattr(record, "step", "?")
        event = getattr(record, "event", "")
        seconds = getattr(record, "seconds", 0.0)
        if event == "finished":
            console.print(f"  [green]✓[/] {step_name:<18} {seconds:6.2f} s")
        elif event == "failed":
            console.print(f"  [red]✗[/] {step_name:<18} {seconds:6.2f} s")


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


@app.command()
def run(
    dataset_spec: Annotated[
        Path | None,
        typer.Option(
            "--dataset-spec",
            help="Dataset spec YAML (default: the bundled Taiwan credit-default data).",
            exists=False,
            dir_okay=False,
        ),
    ] = None,
    thresholds: Annotated[
        Path | None,
        typer.Option(
            "--thresholds", help="YAML overriding the Model Approval Thresholds and fairness policy."
        ),
    ] = None,
    risk_register: Annotated[
        Path | None, typer.Option("--risk-register", help="Risk register YAML (default: the bundled one).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed for the split and LightGBM.")] = None,
    n_estimators: Annotated[
        int | None,
        typer.Option("--n-estimators", help="Maximum boosting rounds (early stopping on validation)."),
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option("--learning-rate", help="LightGBM learning rate.")
    ] = None,
    num_leaves: Annotated[int | None, typer.Option("--num-leaves", help="LightGBM leaves per tree.")] = None,
    threshold_rule: Annotated[
        str | None,
        typer.Option(
            "--threshold-rule",
            help="How the decision threshold is chosen on validation: expected_cost or approval_rate.",
        ),
    ] = None,
    cost_ratio: Annotated[
        float | None,
        typer.Option(
            "--cost-ratio",
            help="expected_cost rule: cost of approving a defaulter ÷ cost of declining a repayer.",
        ),
    ] = None,
    target_approval_rate: Annotated[
        float | None,
        typer.Option("--target-approval-rate", help="approval_rate rule: approval rate to reach."),
    ] = None,
    shuffle_labels: Annotated[
        bool,
        typer.Option(
            "--shuffle-labels", help="Shuffle training labels (a deliberately weak model, for demos)."
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show ZenML's own log output.")] = False,
) -> None:
    """Run training_pipeline: load, validate, split, train, evaluate, fairness, risk, threshold checks."""
    use_project_zenml_state(quiet=not verbose)
    from credit_scorer.config import load_dataset_spec, load_policy, training_config
    from credit_scorer.risk import load_risk_register

    try:
        spec = load_dataset_spec(dataset_spec)
        policy = load_policy(thresholds)
        register = load_risk_register(risk_register)
        training = training_config(
            seed=seed,
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            threshold_rule=threshold_rule,
            cost_ratio=cost_ratio,
            target_approval_rate=target_approval_rate,
            shuffle_labels=shuffle_labels or None,
        )
    except CreditScorerError as exc:
        raise _fail(str(exc), 2) from None

    from credit_scorer.pipelines.run import PipelineRunFailed, run_training

    progress = logging.getLogger("credit_scorer.progress")
    progress.setLevel(logging.INFO)
    progress.propagate = False
    progress.addHandler(_ProgressHandler())
    console.print(
        f"[bold]training_pipeline[/] on [cyan]{spec.name}[/] ({spec.data_location()})", soft_wrap=True
    )
    try:
        result = run_training(spec, policy, training, register)
    except PipelineRunFailed as exc:
        where = f"step {exc.step}" if exc.step else "the pipeline"
        run_note = f" (run {exc.run_id})" if exc.run_id else ""
        raise _fail(f"{where} failed{run_note}:\n{exc.cause}") from None
    finally:
        progress.handlers.clear()

    from credit_scorer import summary

    summary.print_run(console, result)
    if not result.checks.all_passed:
        raise typer.Exit(EXIT_CHECKS_FAILED)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="Run ID (or unique prefix or name) of a training run.")],
) -> None:
    """Show the metrics, fairness, risk and threshold checks of an earlier run."""
    use_project_zenml_state()
    from credit_scorer import summary
    from credit_scorer.pipelines.run import load_run_result

    try:
        result = load_run_result(run_id)
    except KeyError as exc:
        raise _fail(f"no training run {run_id!r} with results: {exc}") from None
    summary.print_run(console, result)


@app.command()
def runs(limit: Annotated[int, typer.Option(help="How many recent runs to list.")] = 20) -> None:
    """List recent training runs with their status."""
    use_project_zenml_state()
    from credit_scorer.pipelines.run import recent_runs

    table = Table(title="training runs (newest first)")
    for column in ("run id", "started (UTC)", "status"):
        table.add_column(column)
    for run_id, created, status in recent_runs(limit):
        colour: Literal["green", "red", "yellow"] = (
            "green" if status == "completed" else "red" if status == "failed" else "yellow"
        )
        table.add_row(run_id, created, f"[{colour}]{status}[/]")
    console.print(table)
