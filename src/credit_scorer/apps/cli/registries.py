"""``credit-scorer thresholds`` and ``credit-scorer people``: the store's versioned thresholds and people registry."""

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
)
from credit_scorer.core.errors import CreditScorerError

if TYPE_CHECKING:
    pass


thresholds_app = typer.Typer(help="Versioned Model Approval Thresholds (SOP §2, §5).", no_args_is_help=True)


people_app = typer.Typer(help="The store's people registry: who holds which role (versioned).", no_args_is_help=True)


@thresholds_app.command("set")
def thresholds_set_command(
    actor: AsOption,
    reason: Annotated[str, typer.Option("--reason", help="Why the thresholds change (recorded verbatim).")],
    accuracy_min: Annotated[
        float | None, typer.Option("--accuracy-min", help="Accuracy ≥ this (default: the current value).")
    ] = None,
    bias_disparity_max: Annotated[
        float | None, typer.Option("--bias-disparity-max", help="Bias disparity ≤ this (default: the current value).")
    ] = None,
    risk_score_max: Annotated[
        float | None, typer.Option("--risk-score-max", help="Overall risk score ≤ this (default: the current value).")
    ] = None,
    fairness_flags_max: Annotated[
        int | None, typer.Option("--fairness-flags-max", help="Fairness flags allowed (default: the current value).")
    ] = None,
    people: PeopleOption = None,
    store: StoreOption = None,
) -> None:
    """Record a new version of the Model Approval Thresholds (ML Engineering Lead = submitter role), with a reason."""
    from pydantic import ValidationError

    from credit_scorer.domain.config import Thresholds
    from credit_scorer.records.store import ComplianceStore
    from credit_scorer.records.thresholds import current, set_thresholds

    compliance = ComplianceStore(store)
    try:
        roles = _people_in_force(store, people, False).people
        latest = current(compliance)
        base = latest.thresholds if latest else Thresholds()
        given = {
            "accuracy_min": accuracy_min,
            "bias_disparity_max": bias_disparity_max,
            "risk_score_max": risk_score_max,
            "fairness_flags_max": fairness_flags_max,
        }
        try:
            new = Thresholds.model_validate(base.model_dump() | {k: v for k, v in given.items() if v is not None})
        except ValidationError as exc:
            bad = ", ".join(
                f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}" for e in exc.errors()
            )
            raise _fail(f"invalid threshold: {bad}", 2) from None
        version = set_thresholds(compliance, new, actor, reason, roles)
    except (CreditScorerError, PermissionError) as exc:
        raise _refused(exc) from None
    t = version.thresholds
    console.print(
        f"thresholds version {version.version} set by {version.set_by} at {version.set_at}: "
        f"accuracy ≥ {t.accuracy_min}, bias disparity ≤ {t.bias_disparity_max}, "
        f"risk score ≤ {t.risk_score_max}, fairness flags ≤ {t.fairness_flags_max} "
        f"({compliance.url}/{version.path}, entered in the ledger)",
        soft_wrap=True,
    )


@thresholds_app.command("history")
def thresholds_history_command(store: StoreOption = None) -> None:
    """List the threshold versions with who set them, when and why."""
    from credit_scorer.records.store import ComplianceStore
    from credit_scorer.records.thresholds import history

    compliance = ComplianceStore(store)
    try:
        versions = history(compliance)
    except CreditScorerError as exc:
        raise _refused(exc) from None
    if not versions:
        console.print(f"no threshold versions recorded in {compliance.url} yet")
        return
    console.print(f"threshold versions in {compliance.url}:", soft_wrap=True)
    for v in versions:
        t = v.thresholds
        console.print(
            f"  v{v.version}  {v.set_at}  {v.set_by}: accuracy ≥ {t.accuracy_min:g}, bias disparity ≤ "
            f"{t.bias_disparity_max:g}, risk score ≤ {t.risk_score_max:g}, fairness flags ≤ {t.fairness_flags_max}"
            f" — {v.reason}",
            soft_wrap=True,
            markup=False,
        )


@people_app.command("show")
def people_show_command(store: StoreOption = None) -> None:
    """Show the people registry in force: each person and their roles, and the version."""
    from credit_scorer.records.people_registry import current
    from credit_scorer.records.store import ComplianceStore

    try:
        latest = current(ComplianceStore(store))
    except CreditScorerError as exc:
        raise _refused(exc) from None
    if latest is None:
        console.print("no people registry yet: the first run (or `people set`) adopts the people file")
        return
    table = Table(title=f"people registry v{latest.version} (set by {latest.set_by} at {latest.set_at})")
    table.add_column("person")
    table.add_column("roles")
    for name, roles in sorted(latest.people.items()):
        table.add_row(name, ", ".join(roles))
    console.print(table)
    console.print(
        f"policy: tester sign-off required: {latest.policy.require_tester_signoff}; dev mode: {latest.policy.dev_mode}"
    )


@people_app.command("set")
def people_set_command(
    file: Annotated[Path, typer.Option("--file", help="People/roles YAML of the new version.", dir_okay=False)],
    actor: AsOption,
    reason: Annotated[str, typer.Option("--reason", help="Why the registry changes (recorded).")],
    store: StoreOption = None,
) -> None:
    """Record a new version of the people registry (an ML Engineering Lead, i.e. submitter role, does this)."""
    from credit_scorer.records.people import load_people
    from credit_scorer.records.people_registry import set_people
    from credit_scorer.records.store import ComplianceStore

    try:
        version = set_people(ComplianceStore(store), load_people(file), actor, reason, str(file))
    except CreditScorerError as exc:
        raise _refused(exc) from None
    console.print(f"people registry v{version.version} recorded ({version.path}), set by {version.set_by}")


@people_app.command("history")
def people_history_command(store: StoreOption = None) -> None:
    """Every version of the people registry: who changed it, when and why."""
    from credit_scorer.records.people_registry import history
    from credit_scorer.records.store import ComplianceStore

    try:
        versions = history(ComplianceStore(store))
    except CreditScorerError as exc:
        raise _refused(exc) from None
    table = Table(title="people registry versions")
    for column in ("version", "set at (UTC)", "set by", "reason", "people"):
        table.add_column(column, overflow="fold")
    for v in versions:
        table.add_row(str(v.version), v.set_at, v.set_by, v.reason, str(len(v.people)))
    console.print(table if versions else "no people registry yet")
