"""Command-line interface: ``credit-scorer``.

Exit codes of ``run``, ``approve`` and ``resume``: 0 the release was approved and is
live; 4 it was rejected, or an automated approval was refused; 5 the run is paused at
the release gate, waiting for a decision; 1 the run failed (bad data, a step error);
2 a bad option, file or refused action (the message names the rule).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from credit_scorer import __version__
from credit_scorer.core.errors import ConfigError, CreditScorerError
from credit_scorer.core.settings import current_settings, environ
from credit_scorer.pipelines.zenml_state import use_project_zenml_state
from credit_scorer.release.settings import ReleaseSettings

if TYPE_CHECKING:
    from credit_scorer.core.ports import Deployer
    from credit_scorer.domain.config import PolicyConfig
    from credit_scorer.pipelines.run import RunResult
    from credit_scorer.records.people_registry import PeopleInForce

EXIT_REJECTED = 4
EXIT_WAITING = 5

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


@app.command()
def run(
    dataset_spec: Annotated[
        Path | None,
        typer.Option(
            "--dataset-spec",
            help="Dataset spec YAML (default: the bundled Taiwan credit-default data).",
            dir_okay=False,
        ),
    ] = None,
    thresholds: Annotated[
        Path | None,
        typer.Option("--thresholds", help="YAML overriding the Model Approval Thresholds and fairness policy."),
    ] = None,
    risk_register: Annotated[
        Path | None, typer.Option("--risk-register", help="Risk register YAML (default: the bundled one).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed for the split and LightGBM.")] = None,
    n_estimators: Annotated[
        int | None,
        typer.Option("--n-estimators", help="Maximum boosting rounds (early stopping on validation)."),
    ] = None,
    learning_rate: Annotated[float | None, typer.Option("--learning-rate", help="LightGBM learning rate.")] = None,
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
        typer.Option("--shuffle-labels", help="Shuffle training labels (a deliberately weak model, for demos)."),
    ] = False,
    submitter: Annotated[
        str | None,
        typer.Option("--as", help="Submitter (ML engineer) name, as in the people file (default: $SUBMITTER)."),
    ] = None,
    store: StoreOption = None,
    people: PeopleOption = None,
    dev_mode: DevModeOption = False,
    wait_timeout: Annotated[
        int, typer.Option("--wait-timeout", help="Seconds to wait at the gate for a decision before pausing.")
    ] = 5,
    port: Annotated[
        int | None, typer.Option("--port", help="Port of the scoring endpoint (default: a free one).")
    ] = None,
    git_commit: Annotated[
        bool,
        typer.Option("--git-commit", help="Commit model_release_log.md when the store is in a git repo."),
    ] = False,
    annex_facts: Annotated[
        Path | None,
        typer.Option(
            "--annex-facts",
            help="Provider facts for Annex IV (default: $CREDIT_SCORER_ANNEX_FACTS or conf/annex_iv_facts.yaml).",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show ZenML's own log output.")] = False,
) -> None:
    """Run training_pipeline: train, evaluate, fairness, risk, checks, then the release gate and deployment.

    The gate decides by the first channel that applies: DEPLOY_APPROVAL (with APPROVER,
    APPROVAL_RATIONALE, TESTER) set → automated; an interactive terminal → a prompt;
    otherwise the run pauses until `credit-scorer approve`.
    """
    use_project_zenml_state(quiet=not verbose)
    from credit_scorer.adapters.factory import check_integrations
    from credit_scorer.domain.config import load_dataset_spec, training_config
    from credit_scorer.domain.risk import load_risk_register

    try:
        check_integrations(store)  # an integration switched on without its credentials stops here, not mid-run
        spec = load_dataset_spec(dataset_spec)
        policy = _policy_in_force(thresholds, store)
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
        release = _release_settings(submitter, store, people, dev_mode, wait_timeout, port, git_commit, annex_facts)
        from credit_scorer.release.gate import check_automated_env

        check_automated_env(environ(), release.people, release.waives_duties)
    except CreditScorerError as exc:
        raise _refused(exc) from None
    _recover(store)

    from credit_scorer.pipelines.run import run_training

    console.print(
        f"[bold]training_pipeline[/] on [cyan]{spec.name}[/] ({spec.data_location()}), "
        f"submitted by {release.submitter}; compliance store {release.store_url}",
        soft_wrap=True,
    )
    with _progress():
        result = _guard_run(lambda: run_training(spec, policy, training, register, release), release.store_url)
    _finish(result, release.store_url)


def _policy_in_force(thresholds: Path | None, store: str | None) -> PolicyConfig:
    """The thresholds file when given; else the store's current threshold version; else the constants."""
    from credit_scorer.domain.config import load_policy
    from credit_scorer.records.store import ComplianceStore
    from credit_scorer.records.thresholds import current

    if thresholds is not None:
        return load_policy(thresholds)
    version = current(ComplianceStore(store))
    return version.policy() if version is not None else load_policy(None)


def _release_settings(
    submitter: str | None,
    store: str | None,
    people_path: Path | None,
    dev_mode: bool,
    wait_timeout: int = 5,
    port: int | None = None,
    git_commit: bool = False,
    annex_facts: Path | None = None,
) -> ReleaseSettings:
    """Release settings from options and environment; the submitter's role is checked now."""
    from credit_scorer.documents.inputs import load_provider_facts
    from credit_scorer.records.people import enforce, role_violation
    from credit_scorer.records.store import store_url

    in_force = _people_in_force(store, people_path, dev_mode, adopt=False)  # nothing written while checking
    people = in_force.people
    name = (submitter or environ().get("SUBMITTER", "")).strip()
    if not name:
        raise ConfigError("who submits this run? pass --as NAME or set SUBMITTER (a submitter in the people file)")
    problem = role_violation(people, name, "submitter")
    enforce([problem] if problem else [], dev_mode or people.policy.dev_mode)
    return ReleaseSettings(
        submitter=name,
        store_url=store_url(store),
        people=people,
        people_version=in_force.version,
        people_source=in_force.source,
        dev_mode=dev_mode,
        wait_timeout_seconds=wait_timeout,
        port=port,
        git_commit=git_commit,
        facts=load_provider_facts(annex_facts),
    )


def _people_in_force(store: str | None, people: Path | None, dev_mode: bool, *, adopt: bool = True) -> PeopleInForce:
    """The store's people registry in force (adopting the people file on first use); see people_registry."""
    from credit_scorer.records.people_registry import people_in_force
    from credit_scorer.records.store import ComplianceStore

    explicit = people is not None or bool(current_settings().people.strip())
    return people_in_force(ComplianceStore(store), people, dev_mode, explicit, adopt=adopt)


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


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="Run ID (or unique prefix or name) of a training run.")],
) -> None:
    """Show the metrics, fairness, risk and threshold checks of an earlier run."""
    use_project_zenml_state()
    from credit_scorer.apps.cli import summary
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


# ---------------------------------------------------------------------------
# The release gate: pending, sign-off, approve, resume
# ---------------------------------------------------------------------------
@app.command()
def pending() -> None:
    """List runs paused at the release gate, with their threshold checks and sign-off."""
    use_project_zenml_state()
    from credit_scorer.pipelines.run import pending_releases

    waiting = pending_releases()
    if not waiting:
        console.print("no run is waiting at the release gate")
        return
    table = Table(title="waiting at the release gate (oldest first)")
    for column in ("run id", "release", "since (UTC)", "submitter", "checks", "failed"):
        table.add_column(column)
    for item in waiting:
        checks = item.candidate.checks
        passed = sum(c.passed for c in checks.checks)
        table.add_row(
            item.run_id,
            item.candidate.release_id,
            item.created,
            item.candidate.submitter,
            f"{passed}/{len(checks.checks)} pass",
            ", ".join(checks.failed) or "–",
        )
    console.print(table)


@app.command("sign-off")
def sign_off_command(
    run_id: Annotated[str, typer.Argument(help="Run ID (or unique prefix) at or past the release gate.")],
    actor: AsOption,
    note: Annotated[str, typer.Option("--note", help="What you reviewed (Annex IV, metrics).")] = "",
    store: StoreOption = None,
    people: PeopleOption = None,
    dev_mode: DevModeOption = False,
) -> None:
    """Record the QA lead's "Tester ✓" sign-off for a release (SOP §1 step 3)."""
    use_project_zenml_state()
    from credit_scorer.adapters.factory import tracker_for
    from credit_scorer.pipelines.run import release_candidate
    from credit_scorer.records.store import ComplianceStore
    from credit_scorer.release.workflow import sign_off

    try:
        roles = _people_in_force(store, people, dev_mode)
        candidate = release_candidate(run_id)
        compliance = ComplianceStore(store)
        record = sign_off(
            compliance,
            tracker_for(compliance),
            roles.people,
            candidate.submitter,
            candidate.run_id,
            candidate.release_id,
            actor,
            note,
            "cli",
            dev_mode,
            roles.version,
            roles.source,
        )
    except (CreditScorerError, KeyError) as exc:
        raise _refused(exc) from None
    console.print(
        f"[green]Tester ✓[/] {candidate.release_id} signed off by {record.tester} at {record.timestamp} "
        f"({compliance.url}/signoffs/{record.signoff_id}.json)",
        soft_wrap=True,
    )


@app.command()
def approve(
    run_id: Annotated[str, typer.Argument(help="Run ID (or unique prefix) waiting at the release gate.")],
    actor: AsOption,
    rationale: Annotated[str, typer.Option("--rationale", help="Why (required, recorded verbatim).")],
    approve_release: Annotated[
        bool | None,
        typer.Option("--approve/--reject", help="Approve or reject the release.", show_default=False),
    ] = None,
    override: Annotated[
        bool, typer.Option("--override", help="Approve although a threshold check failed (needs a reason).")
    ] = False,
    override_rationale: Annotated[
        str | None,
        typer.Option("--override-rationale", help="Why overriding the failed checks is justified."),
    ] = None,
    store: StoreOption = None,
    people: PeopleOption = None,
    dev_mode: DevModeOption = False,
) -> None:
    """Record a decision for a paused run, resolve its ZenML wait condition and resume it (deploy or stop)."""
    if approve_release is None:
        raise _fail("say --approve or --reject", 2)
    use_project_zenml_state()
    from credit_scorer.adapters.factory import check_integrations, tracker_for
    from credit_scorer.pipelines.run import NotWaiting, release_candidate, resolve_and_resume
    from credit_scorer.records.models import iso_utc, utc_now
    from credit_scorer.records.store import ComplianceStore
    from credit_scorer.release import gate
    from credit_scorer.release.workflow import ensure_undecided, signoff_from_tracker

    try:
        check_integrations(store)  # the resumed run deploys: a deployer without its settings stops here
        compliance = ComplianceStore(store)
        in_force = _people_in_force(store, people, dev_mode)
        roles = in_force.people
        candidate = release_candidate(run_id)
        ensure_undecided(compliance, candidate.release_id)
        decision = gate.GateDecision(
            approved=approve_release,
            approver=actor,
            rationale=rationale,
            decision_mode="cli",
            decided_at=iso_utc(utc_now()),
            threshold_override=override,
            override_rationale=override_rationale,
            tester_signoff=signoff_from_tracker(
                compliance,
                tracker_for(compliance),
                roles,
                candidate.submitter,
                candidate.run_id,
                candidate.release_id,
                dev_mode,
                in_force.version,
                in_force.source,
            ),
        )
        gate.validate_decision(decision, candidate.checks, roles, candidate.submitter, dev_mode)
    except (CreditScorerError, KeyError) as exc:
        raise _refused(exc) from None
    _recover(store)
    verdict = "approval" if approve_release else "rejection"
    console.print(f"recording the {verdict} of {candidate.release_id} and resuming run {candidate.run_id}")
    try:
        with _progress():
            result = _guard_run(lambda: resolve_and_resume(candidate.run_id, decision), compliance.url)
    except NotWaiting as exc:
        raise _refused(exc) from None
    _finish(result, compliance.url)


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="Run ID of a paused run whose decision is already recorded.")],
    store: StoreOption = None,
) -> None:
    """Resume a paused run after its gate was resolved (e.g. when an earlier resume was interrupted)."""
    use_project_zenml_state()
    from zenml.client import Client

    from credit_scorer.adapters.factory import check_integrations
    from credit_scorer.pipelines.run import NotWaiting
    from credit_scorer.pipelines.run import resume as resume_run
    from credit_scorer.records.store import store_url

    try:
        check_integrations(store)
    except ConfigError as exc:
        raise _refused(exc) from None
    _recover(store)
    run_uuid = Client().get_pipeline_run(run_id).id
    try:
        with _progress():
            result = _guard_run(lambda: resume_run(run_uuid), store_url(store))
    except NotWaiting as exc:
        raise _refused(exc) from None
    _finish(result, store_url(store))


# ---------------------------------------------------------------------------
# Deployments and rollback
# ---------------------------------------------------------------------------
deployments_app = typer.Typer(help="List or stop scoring endpoints.", invoke_without_command=True)
app.add_typer(deployments_app, name="deployments")


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


@app.command()
def redeploy(
    url: Annotated[str, typer.Option("--url", help="deployment_url of the release to restore (from the log).")],
    reason: Annotated[str, typer.Option("--reason", help="Why the current release is rolled back.")],
    actor: AsOption,
    store: StoreOption = None,
    people: PeopleOption = None,
) -> None:
    """Roll back (SOP §4): restore the release that was at URL after checking its model and approval."""
    from credit_scorer.adapters.factory import tracker_for
    from credit_scorer.records.store import ComplianceStore
    from credit_scorer.release.workflow import rollback

    compliance = ComplianceStore(store)
    _recover(store)
    try:
        roles = _people_in_force(store, people, False).people
        row, deployment = rollback(compliance, tracker_for(compliance), _deployer(store), roles, url, reason, actor)
    except CreditScorerError as exc:
        raise _refused(exc) from None
    console.print(
        f"[bold green]rolled back[/]: {row.release_id} (model {row.sha256[:16]}…) is live at "
        f"[bold]{deployment.url}[/]; rollback row added to {compliance.url}/model_release_log.md",
        soft_wrap=True,
    )


# ---------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------
@app.command("annex-iv")
def annex_iv_command(
    run_id: Annotated[str, typer.Argument(help="Run ID (or unique prefix) that reached the release gate.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the regenerated files (default: ./annex_iv_<release>).")
    ] = None,
    annex_facts: Annotated[
        Path | None,
        typer.Option(
            "--annex-facts", help="Provider facts (default: $CREDIT_SCORER_ANNEX_FACTS or conf/annex_iv_facts.yaml)."
        ),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Regenerate the Annex IV documentation (HTML + PDF), model card and SBOM of an earlier run.

    The same run and facts give the same document apart from the recorded generation time;
    the cover shows the decision recorded since.
    """
    use_project_zenml_state()
    from credit_scorer.documents.build import render_all
    from credit_scorer.documents.inputs import load_provider_facts
    from credit_scorer.pipelines.run import annex_iv_inputs_for
    from credit_scorer.records.models import decisions_for, iso_utc, utc_now
    from credit_scorer.records.store import ComplianceStore

    try:
        facts = load_provider_facts(annex_facts)
        draft = annex_iv_inputs_for(run_id, iso_utc(utc_now()), "", facts)
    except (CreditScorerError, KeyError) as exc:
        raise _refused(exc) from None
    decisions = decisions_for(ComplianceStore(store), draft.release_id)
    status = "Awaiting decision at the release gate"
    if decisions:
        first = decisions[0]
        verdict = "Approved" if first.approved else "Rejected"
        status = f"{verdict} by {first.approver} on {first.timestamp} ({first.approval_id}, {first.decision_mode})"
    inputs = draft.model_copy(update={"approval_status": status})
    html, pdf, card, sbom, missing, generated_at = render_all(inputs)
    folder = out or Path(f"annex_iv_{inputs.release_id}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "annex_iv.html").write_text(html, encoding="utf-8")
    (folder / "annex_iv.pdf").write_bytes(pdf)
    (folder / "model_card.md").write_text(card, encoding="utf-8")
    (folder / "sbom.cdx.json").write_bytes(sbom)

    console.print(
        f"Annex IV of {inputs.release_id} regenerated at {generated_at}: {folder / 'annex_iv.pdf'} "
        f"(sha256 {hashlib.sha256(pdf).hexdigest()}); {len(missing)} provider facts to be completed"
        + (f": {', '.join(missing)}" if missing else ""),
        soft_wrap=True,
    )


# ---------------------------------------------------------------------------
# Audit (SOP §5): ledger verification, quarterly spot-check, threshold history
# ---------------------------------------------------------------------------
audit_app = typer.Typer(help="Verify the compliance records and spot-check approvals (SOP §5).", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
thresholds_app = typer.Typer(help="Versioned Model Approval Thresholds (SOP §2, §5).", no_args_is_help=True)
app.add_typer(thresholds_app, name="thresholds")


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
    from credit_scorer.records.ledger import LedgerError, rotate_key
    from credit_scorer.records.people import role_violation
    from credit_scorer.records.store import ComplianceStore

    compliance = ComplianceStore(store)
    try:
        roles = _people_in_force(store, people, False).people
        violation = role_violation(roles, actor, "approver")
        if violation:
            raise _fail(f"refused: {violation}; the ledger key is rotated by an AI compliance officer", 2)
        entry = rotate_key(compliance, actor, reason)
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


# ---------------------------------------------------------------------------
# The approval console and its users
# ---------------------------------------------------------------------------
people_app = typer.Typer(help="The store's people registry: who holds which role (versioned).", no_args_is_help=True)
app.add_typer(people_app, name="people")


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


users_app = typer.Typer(help="Console sign-in: set, list or remove a person's password.", no_args_is_help=True)
app.add_typer(users_app, name="users")
UsersOption = Annotated[
    Path | None,
    typer.Option(
        "--users", help="Console credentials file (default: $CREDIT_SCORER_USERS or .credit-scorer/console-users.json)."
    ),
]


@users_app.command("add")
def users_add_command(
    name: Annotated[str, typer.Argument(help="The person's name, as in the people/roles file.")],
    role: Annotated[
        str, typer.Option("--role", help="Role they sign in with: submitter, tester, approver or auditor.")
    ],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin (scripts).")
    ] = False,
    people: PeopleOption = None,
    users_path: UsersOption = None,
    store: StoreOption = None,
) -> None:
    """Set (or replace) a person's console password; the role must be theirs in the store's people registry."""
    import sys

    from credit_scorer.apps.console.users import UserError, add_user, users_file

    if role not in {"submitter", "tester", "approver", "auditor"}:
        raise _fail(f"--role must be submitter, tester, approver or auditor, not {role!r}", 2)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
    path = users_file(users_path)
    try:
        add_user(path, _people_in_force(store, people, False).people, name, role, password)  # type: ignore[arg-type]
    except (UserError, CreditScorerError) as exc:
        raise _refused(exc) from None
    console.print(f"{name} can sign in to the console as {role} (argon2id hash in {path})", soft_wrap=True)


@users_app.command("list")
def users_list_command(users_path: UsersOption = None) -> None:
    """List who can sign in to the console and with which role (never the hashes)."""
    from credit_scorer.apps.console.users import load_credentials, users_file

    path = users_file(users_path)
    try:
        credentials = load_credentials(path)
    except ConfigError as exc:
        raise _refused(exc) from None
    if not credentials.users:
        console.print(f"nobody can sign in yet ({path}); add people with `credit-scorer users add NAME --role ROLE`")
        return
    for name, credential in sorted(credentials.users.items()):
        console.print(f"  {name:<24} {credential.role:<10} password set {credential.updated_at}", markup=False)


@users_app.command("remove")
def users_remove_command(
    name: Annotated[str, typer.Argument(help="The person whose console access ends.")],
    users_path: UsersOption = None,
) -> None:
    """Remove a person's console password (their open console sessions end at their next request)."""
    from credit_scorer.apps.console.users import remove_user, users_file

    path = users_file(users_path)
    if not remove_user(path, name):
        raise _fail(f"{name!r} has no console password in {path}", 2)
    console.print(f"{name} can no longer sign in to the console ({path})")


@app.command("console")
def console_command(
    port: Annotated[int, typer.Option("--port", help="TCP port on 127.0.0.1.")] = 8400,
    store: StoreOption = None,
    people: PeopleOption = None,
    users_path: UsersOption = None,
    dev_mode: DevModeOption = False,
) -> None:
    """Serve the approval console on http://127.0.0.1:PORT (sign-off, approve/reject, audit)."""
    use_project_zenml_state()
    import uvicorn

    from credit_scorer.adapters.local_deployer import port_is_free
    from credit_scorer.apps.console.app import ConsoleSettings, create_console
    from credit_scorer.apps.console.users import load_credentials, users_file
    from credit_scorer.pipelines.zenml_state import ensure_zenml_store
    from credit_scorer.records.store import store_url

    if not 0 < port < 65536:
        raise _fail(f"--port {port} is not a TCP port (1-65535)", 2)
    if not port_is_free(port):
        raise _fail(f"port {port} on 127.0.0.1 is in use; pick another with --port N", 2)
    from credit_scorer.adapters.factory import check_integrations

    credentials_path = users_file(users_path)
    try:
        check_integrations(store)
        _people_in_force(store, people, dev_mode)
        credentials = load_credentials(credentials_path)
    except CreditScorerError as exc:
        raise _refused(exc) from None
    ensure_zenml_store()
    settings = ConsoleSettings(
        store_url=store_url(store),
        people_file=people,
        users_file=credentials_path,
        log_dir=credentials_path.parent / "logs",
        dev_mode=dev_mode,
    )
    application = create_console(settings)
    console.print(f"approval console at [bold]http://127.0.0.1:{port}[/] (store {settings.store_url}); Ctrl+C stops it")
    if not credentials.users:
        err_console.print(
            f"[yellow]nobody can sign in yet[/]: set passwords with `credit-scorer users add NAME --role ROLE` "
            f"({credentials_path})",
            soft_wrap=True,
        )
    uvicorn.run(application, host="127.0.0.1", port=port, log_level="warning")
