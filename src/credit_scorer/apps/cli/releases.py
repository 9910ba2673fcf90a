"""Commands of one release's life: run, show, runs, pending, sign-off, approve, resume, redeploy, annex-iv."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.markup import escape
from rich.table import Table

from credit_scorer.apps.cli.common import (
    AsOption,
    DevModeOption,
    PasswordFileOption,
    PasswordStdinOption,
    PeopleOption,
    StoreOption,
    _deployer,
    _fail,
    _finish,
    _guard_run,
    _password,
    _people_in_force,
    _progress,
    _recover,
    _refused,
    console,
)
from credit_scorer.core.errors import ConfigError, CreditScorerError
from credit_scorer.core.settings import environ
from credit_scorer.pipelines.zenml_state import use_project_zenml_state

if TYPE_CHECKING:
    pass


app = typer.Typer()  # merged into the top-level ``credit-scorer`` app by main.py


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
    from credit_scorer.release.inputs import policy_in_force, release_settings_for
    from credit_scorer.release.preflight import check_reason_codes

    try:
        check_integrations(store)  # an integration switched on without its credentials stops here, not mid-run
        spec = load_dataset_spec(dataset_spec)
        check_reason_codes(spec.model_features)  # declines that could not be explained: refused before anything runs
        policy = policy_in_force(thresholds, store)
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
        release = release_settings_for(submitter, store, people, dev_mode, wait_timeout, port, git_commit, annex_facts)
        from credit_scorer.release.gate import check_automated_env
        from credit_scorer.release.signoffs import check_automated_keys

        check_automated_env(environ(), release.people, release.waives_duties)
        check_automated_keys(environ(), release.waives_duties)
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


@app.command()
def pending() -> None:
    """List runs waiting at the release gate (paused, or asking at a terminal), with their threshold checks."""
    use_project_zenml_state()
    from credit_scorer.pipelines.run import pending_releases

    waiting = pending_releases()
    if not waiting:
        console.print("no run is waiting at the release gate")
        return
    table = Table(title="waiting at the release gate (oldest first)")
    for column in ("run id", "release", "since (UTC)", "submitter", "checks", "failed", "waiting for"):
        table.add_column(column, no_wrap=column in {"run id", "release"})  # ids stay whole, to copy
    for item in waiting:
        checks = item.candidate.checks
        passed = sum(c.passed for c in checks.all_checks)
        table.add_row(
            item.run_id,
            item.candidate.release_id,
            item.created,
            escape(item.candidate.submitter),
            f"{passed}/{len(checks.all_checks)} pass",
            ", ".join(checks.failed) or "–",
            item.channel,
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
    password_stdin: PasswordStdinOption = False,
    password_file: PasswordFileOption = None,
) -> None:
    """Record the QA lead's "Tester ✓" sign-off for a release (SOP §1 step 3), signed with their key."""
    use_project_zenml_state()
    from credit_scorer.adapters.factory import tracker_for
    from credit_scorer.pipelines.run import release_candidate
    from credit_scorer.records.store import ComplianceStore
    from credit_scorer.release.refusals import unlock_recorded
    from credit_scorer.release.signoffs import sign_off

    password = _password(actor, password_stdin, password_file, dev_mode=dev_mode)
    try:
        roles = _people_in_force(store, people, dev_mode)
        candidate = release_candidate(run_id)
        compliance = ComplianceStore(store)
        tracker = tracker_for(compliance)
        person = unlock_recorded(
            compliance, tracker, release_id=candidate.release_id, run_id=candidate.run_id, actor=actor,
            action="sign-off", channel="cli", password=password, dev_mode=dev_mode,
        )  # fmt: skip
        record = sign_off(
            compliance,
            tracker,
            roles.people,
            candidate,
            actor,
            note,
            source="cli",
            dev_mode=dev_mode,
            people_version=roles.version,
            people_source=roles.source,
            person=person,
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
    approve_flag: Annotated[bool, typer.Option("--approve", help="Approve the release (not with --reject).")] = False,
    reject_flag: Annotated[bool, typer.Option("--reject", help="Reject the release (not with --approve).")] = False,
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
    password_stdin: PasswordStdinOption = False,
    password_file: PasswordFileOption = None,
) -> None:
    """Record a decision (signed with your key) for a paused run, resolve its ZenML wait condition and resume it."""
    if approve_flag == reject_flag:
        both = "not both: a decision cannot be undone" if approve_flag else "say which"
        raise _fail(f"give exactly one of --approve or --reject ({both}); nothing was recorded", 2)
    if override and reject_flag:
        raise _fail("--override goes with --approve (it approves over a failed check); nothing was recorded", 2)
    password = _password(actor, password_stdin, password_file, dev_mode=dev_mode)
    approve_release = approve_flag
    use_project_zenml_state()
    from credit_scorer.adapters.factory import check_integrations, tracker_for
    from credit_scorer.pipelines.run import NotWaiting, release_candidate, resolve_and_resume
    from credit_scorer.records.store import ComplianceStore
    from credit_scorer.release import gate
    from credit_scorer.release.decisions import prepare_decision
    from credit_scorer.release.refusals import unlock_recorded

    try:
        check_integrations(store)  # the resumed run deploys: a deployer without its settings stops here
        compliance = ComplianceStore(store)
        in_force = _people_in_force(store, people, dev_mode)
        candidate = release_candidate(run_id)
        request = gate.DecisionRequest(
            approve=approve_release,
            approver=actor,
            rationale=rationale,
            override=override,
            override_rationale=override_rationale,
        )
        tracker = tracker_for(compliance)
        person = unlock_recorded(
            compliance, tracker, release_id=candidate.release_id, run_id=candidate.run_id, actor=actor,
            action="approve" if approve_release else "reject", channel="cli", password=password, dev_mode=dev_mode,
        )  # fmt: skip
        decision = prepare_decision(compliance, tracker, in_force, candidate, request, "cli", dev_mode, person)
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
    from credit_scorer.documents.build import render_all, write_bundle
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
    bundle = render_all(inputs)
    pdf_path = write_bundle(bundle, out or Path(f"annex_iv_{inputs.release_id}"))
    missing = bundle.missing_facts
    console.print(
        f"Annex IV of {inputs.release_id} regenerated at {bundle.generated_at}: {pdf_path} "
        f"(sha256 {hashlib.sha256(bundle.pdf).hexdigest()}); {len(missing)} provider facts to be completed"
        + (f": {', '.join(missing)}" if missing else ""),
        soft_wrap=True,
    )
