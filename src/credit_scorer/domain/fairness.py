"""Group fairness of the approval decision, per protected attribute (fairlearn).

Favourable outcome: *approved* = predicted non-default. "Positive" in the rates
below is therefore "approved", and the true label is "repaid":

- approval rate = selection rate of the approval decision;
- true-positive rate = share of applicants who repaid that were approved;
- false-positive rate = share of applicants who defaulted that were approved.

Groups with fewer than ``min_group_size`` rows are listed as *insufficient sample*
and left out of the between-group comparisons, never silently dropped. An attribute whose
comparison cannot be made — one group only, fewer than two groups large enough, or fewer than
two comparable groups with applicants who repaid — is *not evaluable*, with the reason; so is a
spec with no protected attribute. Nothing compared is never reported as fair (checks.py fails
the fairness checks closed).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from credit_scorer.domain.config import DatasetSpec, FairnessPolicy, ProtectedAttribute
from credit_scorer.domain.data import default_labels
from credit_scorer.domain.model import TrainedModel

FAVOURABLE_OUTCOME = "approved (predicted non-default)"


class GroupFairness(BaseModel):
    """Outcome rates of one group of a protected attribute."""

    model_config = ConfigDict(frozen=True)

    group: str
    n: int
    approval_rate: float
    true_positive_rate: float | None
    false_positive_rate: float | None
    sufficient_sample: bool


class AttributeFairness(BaseModel):
    """Between-group comparison for one protected attribute."""

    model_config = ConfigDict(frozen=True)

    attribute: str
    groups: list[GroupFairness]
    compared_groups: list[str]
    insufficient_sample_groups: list[str]
    demographic_parity_difference: float | None
    demographic_parity_ratio: float | None
    equal_opportunity_difference: float | None
    equalized_odds_difference: float | None
    not_evaluable: str | None = None
    """Why this attribute's groups could not be compared (None: they were)."""


class FairnessReport(BaseModel):
    """Fairness of one model version on the test split."""

    model_config = ConfigDict(frozen=True)

    favourable_outcome: str
    min_group_size: int
    disparate_impact_min: float
    equal_opportunity_gap_max: float
    attributes: list[AttributeFairness]
    bias_disparity: float
    bias_disparity_attribute: str | None
    fairness_flags: list[str]

    @property
    def insufficient_sample_groups(self) -> list[str]:
        """``ATTRIBUTE=group`` for every group too small to compare."""
        return [f"{a.attribute}={g}" for a in self.attributes for g in a.insufficient_sample_groups]

    @property
    def not_evaluable(self) -> list[str]:
        """Why fairness could not be measured, one reason per attribute (empty: every attribute was compared)."""
        if not self.attributes:
            return ["the dataset spec names no protected attribute: there is nothing to compare"]
        return [a.not_evaluable for a in self.attributes if a.not_evaluable]


def group_labels(frame: pd.DataFrame, attribute: ProtectedAttribute) -> pd.Series:
    """Readable group of each row for one protected attribute (binned or named codes)."""
    values = frame[attribute.column]
    if attribute.bins is not None and attribute.bin_labels is not None:
        binned = pd.cut(values, bins=attribute.bins, labels=attribute.bin_labels, right=False)
        return binned.astype(str)
    names = attribute.group_names or {}
    return values.map(lambda v: names.get(int(v), str(v)) if pd.notna(v) else "missing").astype(str)


def _rate(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return None if np.isnan(number) else number


def group_order(attribute: ProtectedAttribute) -> list[str]:
    """Declared order of an attribute's groups (bins, or named codes); others sort after."""
    if attribute.bin_labels is not None:
        return list(attribute.bin_labels)
    return list((attribute.group_names or {}).values())


def _gap(
    metric: Callable[..., float],
    repaid: np.ndarray,
    approved: np.ndarray,
    labels: np.ndarray,
    groups: list[str],
) -> float | None:
    """A fairlearn between-group metric over ``groups`` only; None with fewer than two."""
    if len(groups) < 2:
        return None
    mask = np.isin(labels, groups)
    return _rate(metric(y_true=repaid[mask], y_pred=approved[mask], sensitive_features=labels[mask]))


def assess_attribute(
    attribute: str,
    repaid: np.ndarray,
    approved: np.ndarray,
    groups: pd.Series,
    min_group_size: int,
    order: list[str] | None = None,
) -> AttributeFairness:
    """Per-group rates and between-group gaps for one attribute, groups in ``order``.

    A rate with an empty denominator (TPR of a group where nobody repaid, FPR of one
    where nobody defaulted) is None, and that group is left out of the gap built on it.
    """
    from fairlearn.metrics import (
        MetricFrame,
        count,
        demographic_parity_difference,
        demographic_parity_ratio,
        equal_opportunity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )  # here: the result types above are imported by code that computes nothing

    labels = groups.astype(str).to_numpy()
    frame = MetricFrame(
        metrics={"n": count, "approval_rate": selection_rate},
        y_true=repaid,
        y_pred=approved,
        sensitive_features=labels,
    )
    rank = {name: i for i, name in enumerate(order or [])}
    by_group = frame.by_group
    ordered = sorted(by_group.index, key=lambda g: (rank.get(str(g), len(rank)), str(g)))
    rows: list[GroupFairness] = []
    for group in ordered:
        in_group = labels == group
        repaid_in, defaulted_in = in_group & (repaid == 1), in_group & (repaid == 0)
        n = int(by_group.loc[group, "n"])
        rows.append(
            GroupFairness(
                group=str(group),
                n=n,
                approval_rate=float(by_group.loc[group, "approval_rate"]),
                true_positive_rate=_rate(true_positive_rate(repaid[in_group], approved[in_group]))
                if repaid_in.any()
                else None,
                false_positive_rate=_rate(false_positive_rate(repaid[in_group], approved[in_group]))
                if defaulted_in.any()
                else None,
                sufficient_sample=n >= min_group_size,
            )
        )
    compared = [r.group for r in rows if r.sufficient_sample]
    with_repaid = [r.group for r in rows if r.sufficient_sample and r.true_positive_rate is not None]
    with_both = [g for g in with_repaid if next(r for r in rows if r.group == g).false_positive_rate is not None]
    return AttributeFairness(
        not_evaluable=_why_not_evaluable(attribute, rows, compared, with_repaid, min_group_size),
        attribute=attribute,
        groups=rows,
        compared_groups=compared,
        insufficient_sample_groups=[r.group for r in rows if not r.sufficient_sample],
        demographic_parity_difference=_gap(demographic_parity_difference, repaid, approved, labels, compared),
        demographic_parity_ratio=_gap(demographic_parity_ratio, repaid, approved, labels, compared),
        equal_opportunity_difference=_gap(equal_opportunity_difference, repaid, approved, labels, with_repaid),
        equalized_odds_difference=_gap(equalized_odds_difference, repaid, approved, labels, with_both),
    )


def _why_not_evaluable(
    attribute: str, rows: list[GroupFairness], compared: list[str], with_repaid: list[str], min_group_size: int
) -> str | None:
    if len(rows) < 2:
        only = f"({rows[0].group}, n={rows[0].n})" if rows else "(no rows)"
        return f"{attribute}: the test split has one group only {only}; there is nothing to compare"
    if len(compared) < 2:
        small = ", ".join(f"{r.group} n={r.n}" for r in rows if not r.sufficient_sample)
        return (
            f"{attribute}: fewer than two groups have at least {min_group_size} test rows "
            f"(compared: {', '.join(compared) or 'none'}; too small: {small})"
        )
    if len(with_repaid) < 2:
        return f"{attribute}: fewer than two compared groups have applicants who repaid; equal opportunity is undefined"
    return None


def fairness_flags(attributes: list[AttributeFairness], policy: FairnessPolicy) -> list[str]:
    """Readable findings that breach the fairness policy."""
    flags: list[str] = []
    for attr in attributes:
        ratio = attr.demographic_parity_ratio
        if ratio is not None and ratio < policy.disparate_impact_min:
            flags.append(f"{attr.attribute}: disparate-impact ratio {ratio:.2f} < {policy.disparate_impact_min:.2f}")
        gap = attr.equal_opportunity_difference
        if gap is not None and gap > policy.equal_opportunity_gap_max:
            flags.append(f"{attr.attribute}: equal-opportunity gap {gap:.2f} > {policy.equal_opportunity_gap_max:.2f}")
    return flags


def assess_decisions(
    repaid: np.ndarray,
    approved: np.ndarray,
    groups: dict[str, pd.Series],
    policy: FairnessPolicy,
    orders: dict[str, list[str]] | None = None,
) -> FairnessReport:
    """Fairness report from outcomes, decisions and each attribute's group labels."""
    attributes = [
        assess_attribute(name, repaid, approved, labels, policy.min_group_size, (orders or {}).get(name))
        for name, labels in groups.items()
    ]
    measured = [
        (a.demographic_parity_difference, a.attribute)
        for a in attributes
        if a.demographic_parity_difference is not None
    ]
    disparity, worst = max(measured) if measured else (0.0, None)
    return FairnessReport(
        favourable_outcome=FAVOURABLE_OUTCOME,
        min_group_size=policy.min_group_size,
        disparate_impact_min=policy.disparate_impact_min,
        equal_opportunity_gap_max=policy.equal_opportunity_gap_max,
        attributes=attributes,
        bias_disparity=disparity,
        bias_disparity_attribute=worst,
        fairness_flags=fairness_flags(attributes, policy),
    )


def assess_fairness(
    model: TrainedModel, test: pd.DataFrame, spec: DatasetSpec, policy: FairnessPolicy
) -> FairnessReport:
    """Score the test split and measure fairness over every protected attribute."""
    repaid = 1 - default_labels(test, spec)
    approved = 1 - model.declines(model.predict_default_proba(test))
    groups = {a.name: group_labels(test, a) for a in spec.protected_attributes}
    orders = {a.name: group_order(a) for a in spec.protected_attributes}
    return assess_decisions(repaid, approved, groups, policy, orders)
