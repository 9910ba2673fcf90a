"""Rich tables that summarise a training run for the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from credit_scorer.pipelines.run import RunResult


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _verdict(passed: bool) -> str:
    return "[green]pass[/]" if passed else "[bold red]FAIL[/]"


def metrics_table(result: RunResult) -> Table:
    """Test-split metrics of the model."""
    ev = result.evaluation
    table = Table(title=f"Evaluation on the test split ({ev.test_rows} rows; positive class = default)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("accuracy", _num(ev.accuracy)),
        ("AUC", _num(ev.auc)),
        ("F1", _num(ev.f1)),
        ("precision", _num(ev.precision)),
        ("recall", _num(ev.recall)),
        ("balanced accuracy", _num(ev.balanced_accuracy)),
        ("KS", _num(ev.ks)),
        ("Brier score", _num(ev.brier)),
        ("expected calibration error", _num(ev.expected_calibration_error)),
        ("approval rate", _pct(ev.approval_rate)),
        ("decision threshold (P(default) ≥ t → decline)", f"{ev.decision_threshold:.3f}"),
    ]
    cm = ev.confusion_matrix
    rows.append(
        (
            "confusion matrix TN / FP / FN / TP",
            f"{cm.true_negative} / {cm.false_positive} / {cm.false_negative} / {cm.true_positive}",
        )
    )
    for name, value in rows:
        table.add_row(name, value)
    return table


def fairness_table(result: RunResult) -> Table:
    """Per attribute and group: size, approval rate, TPR and FPR."""
    fr = result.fairness
    table = Table(
        title=f"Fairness per group (favourable outcome: {fr.favourable_outcome})",
        caption=f"groups with n < {fr.min_group_size} are reported but not compared",
    )
    for column in ("attribute", "group", "n", "approval", "TPR", "FPR", "compared"):
        table.add_column(column, justify="left" if column in ("attribute", "group", "compared") else "right")
    for attr in fr.attributes:
        for i, group in enumerate(attr.groups):
            table.add_row(
                attr.attribute if i == 0 else "",
                group.group,
                str(group.n),
                _pct(group.approval_rate),
                _pct(group.true_positive_rate),
                _pct(group.false_positive_rate),
                "yes" if group.sufficient_sample else "[yellow]insufficient sample[/]",
                end_section=i == len(attr.groups) - 1,
            )
    return table


def fairness_gaps_table(result: RunResult) -> Table:
    """Between-group gaps per attribute, with the bias disparity and the flags."""
    fr = result.fairness
    table = Table(title="Fairness gaps per protected attribute (compared groups only)")
    for column in ("attribute", "parity diff", "DI ratio", "equal opp. gap", "equalized odds"):
        table.add_column(column, justify="left" if column == "attribute" else "right")
    for attr in fr.attributes:
        table.add_row(
            attr.attribute,
            _num(attr.demographic_parity_difference),
            _num(attr.demographic_parity_ratio),
            _num(attr.equal_opportunity_difference),
            _num(attr.equalized_odds_difference),
        )
    flags = "; ".join(fr.fairness_flags) if fr.fairness_flags else "none"
    table.caption = (
        f"bias disparity {fr.bias_disparity:.4f} ({fr.bias_disparity_attribute or '–'}); "
        f"flags (DI < {fr.disparate_impact_min:.2f} or EO gap > {fr.equal_opportunity_gap_max:.2f}): {flags}"
    )
    return table


def risk_table(result: RunResult) -> Table:
    """Risk register results: every hazard, triggered ones in bold."""
    risk = result.risk
    table = Table(
        title=(
            f"Risk assessment (register {risk.register_version}): overall {risk.overall_risk_score:.3f}, "
            f"level {risk.risk_level}"
        )
    )
    for column in ("id", "hazard", "measured (trigger)", "score", "level"):
        table.add_column(column, justify="right" if column == "score" else "left")
    for hazard in risk.hazards:
        trigger = hazard.trigger.split(" ", 1)[1]
        table.add_row(
            hazard.id,
            hazard.name,
            f"{hazard.value:.4g} ({trigger})",
            f"{hazard.score:.2f}",
            hazard.level if hazard.triggered else "not triggered",
            style="bold" if hazard.triggered else "dim",
        )
    table.caption = "high-risk factors: " + ("; ".join(risk.high_risk_factors) or "none")
    return table


def checks_table(result: RunResult) -> Table:
    """The four SOP §2 threshold checks."""
    table = Table(title="Model Approval Thresholds (SOP §2)")
    for column in ("check", "value", "limit", "result"):
        table.add_column(column, justify="left" if column in ("check", "result") else "right")
    for check in result.checks.all_checks:
        value = f"{int(check.value)}" if check.name == "Fairness flags" else f"{check.value:.4f}"
        limit = f"{int(check.limit)}" if check.name == "Fairness flags" else f"{check.limit:.4f}"
        if check.outcome == "not_evaluable":
            table.add_row(check.name, "–", f"{check.operator} {limit}", f"[bold red]{check.verdict}[/]")
        else:
            table.add_row(check.name, value, f"{check.operator} {limit}", _verdict(check.passed))
    reasons = [f"{c.name}: {c.reason}" for c in result.checks.all_checks if c.outcome == "not_evaluable"]
    if reasons:
        table.caption = escape("not evaluable — " + "; ".join(reasons))
    return table


def print_run(console: Console, result: RunResult) -> None:
    """Print every table of a run, then the run id and the overall verdict."""
    sizes = result.split_sizes
    console.print()
    console.print(
        f"dataset [cyan]{result.dataset.name}[/]: {result.dataset.rows} rows, "
        f"sha256 {result.dataset.sha256[:16]}…; "
        f"split train {sizes.train} / validation {sizes.validation} / test {sizes.test}"
    )
    console.print(f"model sha256 {result.model_sha256}")
    console.print(f"decision threshold {result.decision_threshold:.3f}: {result.threshold_rule}")
    for table in (
        metrics_table(result),
        fairness_table(result),
        fairness_gaps_table(result),
        risk_table(result),
        checks_table(result),
    ):
        console.print()
        console.print(table)
    console.print()
    verdict = (
        "[bold green]all four threshold checks passed[/]"
        if result.checks.all_passed
        else f"[bold red]threshold checks failed: {escape(result.checks.failed_text)}[/]"
    )
    console.print(f"run id [bold]{result.run_id}[/] ({result.status}): {verdict}", soft_wrap=True)
