"""Group fairness on hand-made groups.

Expected numbers are computed here with plain numpy on explicit boolean group masks,
never with fairlearn or the code under test:

- approval rate = mean(approved) within the group;
- TPR = mean(approved) among repaid == 1 within the group;
- FPR = mean(approved) among repaid == 0 within the group;
- demographic parity difference = max - min approval rate over the compared groups, ratio = min / max;
- equal-opportunity difference = max - min TPR;
- equalized-odds difference = max(TPR gap, FPR gap).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from credit_scorer.domain.config import FairnessPolicy
from credit_scorer.domain.fairness import (
    FAVOURABLE_OUTCOME,
    AttributeFairness,
    assess_attribute,
    assess_decisions,
    fairness_flags,
)


# ---------------------------------------------------------------------------
# Independent reference (numpy only)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Rates:
    n: int
    approval: float
    tpr: float | None
    fpr: float | None


@dataclass(frozen=True)
class Gaps:
    dpd: float
    dpr: float
    eop: float
    eod: float


def _mean_or_none(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def reference_rates(repaid: np.ndarray, approved: np.ndarray, labels: np.ndarray, group: str) -> Rates:
    mask = labels == group
    return Rates(
        n=int(mask.sum()),
        approval=float(approved[mask].mean()),
        tpr=_mean_or_none(approved[mask & (repaid == 1)]),
        fpr=_mean_or_none(approved[mask & (repaid == 0)]),
    )


def reference_gaps(repaid: np.ndarray, approved: np.ndarray, labels: np.ndarray, compared: list[str]) -> Gaps:
    rates = [reference_rates(repaid, approved, labels, g) for g in compared]
    approval = [r.approval for r in rates]
    tpr = [r.tpr for r in rates]
    fpr = [r.fpr for r in rates]
    assert None not in tpr and None not in fpr, "reference needs both outcomes in every compared group"
    tpr_gap = max(tpr) - min(tpr)  # type: ignore[type-var,operator]
    fpr_gap = max(fpr) - min(fpr)  # type: ignore[type-var,operator]
    return Gaps(
        dpd=max(approval) - min(approval),
        dpr=min(approval) / max(approval),
        eop=tpr_gap,
        eod=max(tpr_gap, fpr_gap),
    )


def _block(n_repaid_approved: int, n_repaid_declined: int, n_default_approved: int, n_default_declined: int):
    """Outcome and decision arrays of one group, built from its four confusion counts."""
    repaid = [1] * (n_repaid_approved + n_repaid_declined) + [0] * (n_default_approved + n_default_declined)
    approved = [1] * n_repaid_approved + [0] * n_repaid_declined + [1] * n_default_approved + [0] * n_default_declined
    return repaid, approved


def _data(blocks: dict[str, tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Concatenate per-group blocks into (repaid, approved, group labels)."""
    repaid: list[int] = []
    approved: list[int] = []
    labels: list[str] = []
    for group, counts in blocks.items():
        r, a = _block(*counts)
        repaid += r
        approved += a
        labels += [group] * len(r)
    return np.array(repaid), np.array(approved), pd.Series(labels)


def _random_data(spec: dict[str, tuple[int, float, float]], seed: int = 7) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Random groups: name -> (size, repay probability, approval probability); shuffled rows."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([[g] * size for g, (size, _, _) in spec.items()])
    repay_p = np.concatenate([[p] * size for size, p, _ in spec.values()])
    approve_p = np.concatenate([[q] * size for size, _, q in spec.values()])
    repaid = (rng.random(labels.size) < repay_p).astype(int)
    approved = (rng.random(labels.size) < approve_p).astype(int)
    perm = rng.permutation(labels.size)
    return repaid[perm], approved[perm], pd.Series(labels[perm])


# ---------------------------------------------------------------------------
# Hand-worked cases
# ---------------------------------------------------------------------------
def test_hand_worked_disparate_impact_flag() -> None:
    # Group A: 10 rows, 8 repaid (all 8 approved), 2 defaulted (none approved) -> approval 8/10 = 0.8
    # Group B: 10 rows, 5 repaid (all 5 approved), 5 defaulted (none approved) -> approval 5/10 = 0.5
    # dpd = 0.8 - 0.5 = 0.3; ratio = 0.5 / 0.8 = 0.625 (< 0.80 -> disparate-impact flag, shown as 0.62)
    # TPR A = B = 1.0, FPR A = B = 0.0 -> equal-opportunity and equalized-odds gaps 0 -> no other flag.
    repaid, approved, labels = _data({"A": (8, 0, 0, 2), "B": (5, 0, 0, 5)})
    policy = FairnessPolicy(min_group_size=10, disparate_impact_min=0.80, equal_opportunity_gap_max=0.10)

    report = assess_decisions(repaid, approved, {"sex": labels}, policy)

    (attr,) = report.attributes
    assert attr.demographic_parity_difference == pytest.approx(0.3)
    assert attr.demographic_parity_ratio == pytest.approx(0.625)
    assert attr.equal_opportunity_difference == pytest.approx(0.0)
    assert attr.equalized_odds_difference == pytest.approx(0.0)
    assert report.fairness_flags == ["sex: disparate-impact ratio 0.62 < 0.80"]
    assert report.bias_disparity == pytest.approx(0.3)
    assert report.bias_disparity_attribute == "sex"


def test_hand_worked_equal_opportunity_flag() -> None:
    # Group A: 25 rows; 20 repaid of which 18 approved (TPR 0.90); 5 defaulted of which 1 approved (FPR 0.2)
    #          approval = 19/25 = 0.76
    # Group B: 25 rows; 20 repaid of which 15 approved (TPR 0.75); 5 defaulted of which 1 approved (FPR 0.2)
    #          approval = 16/25 = 0.64
    # ratio = 0.64 / 0.76 = 0.842 (>= 0.80, no disparate-impact flag)
    # equal-opportunity gap = 0.90 - 0.75 = 0.15 > 0.10 -> flag; equalized-odds = max(0.15, 0.0) = 0.15
    repaid, approved, labels = _data({"A": (18, 2, 1, 4), "B": (15, 5, 1, 4)})
    policy = FairnessPolicy(min_group_size=25)

    report = assess_decisions(repaid, approved, {"age": labels}, policy)

    (attr,) = report.attributes
    assert attr.demographic_parity_difference == pytest.approx(0.12)
    assert attr.demographic_parity_ratio == pytest.approx(0.64 / 0.76)
    assert attr.equal_opportunity_difference == pytest.approx(0.15)
    assert attr.equalized_odds_difference == pytest.approx(0.15)
    assert report.fairness_flags == ["age: equal-opportunity gap 0.15 > 0.10"]


def test_report_carries_policy_and_favourable_outcome() -> None:
    repaid, approved, labels = _data({"A": (8, 0, 0, 2), "B": (5, 0, 0, 5)})
    policy = FairnessPolicy(min_group_size=3, disparate_impact_min=0.5, equal_opportunity_gap_max=0.25)

    report = assess_decisions(repaid, approved, {"sex": labels}, policy)

    assert report.favourable_outcome == FAVOURABLE_OUTCOME
    assert report.min_group_size == 3
    assert report.disparate_impact_min == 0.5
    assert report.equal_opportunity_gap_max == 0.25
    assert report.fairness_flags == []  # ratio 0.625 >= 0.5 under this looser policy


# ---------------------------------------------------------------------------
# Against the numpy reference
# ---------------------------------------------------------------------------
def test_rates_and_gaps_match_numpy_reference() -> None:
    spec = {"young": (80, 0.6, 0.5), "middle": (120, 0.8, 0.85), "old": (60, 0.7, 0.65)}
    repaid, approved, labels = _random_data(spec)
    label_array = labels.to_numpy()

    result = assess_attribute("age", repaid, approved, labels, min_group_size=50)

    assert result.compared_groups == sorted(spec)
    assert result.insufficient_sample_groups == []
    for row in result.groups:
        expected = reference_rates(repaid, approved, label_array, row.group)
        assert row.n == expected.n == spec[row.group][0]
        assert row.approval_rate == pytest.approx(expected.approval, abs=1e-12)
        assert row.true_positive_rate == pytest.approx(expected.tpr, abs=1e-12)
        assert row.false_positive_rate == pytest.approx(expected.fpr, abs=1e-12)
        assert row.sufficient_sample is True
    gaps = reference_gaps(repaid, approved, label_array, list(spec))
    assert result.demographic_parity_difference == pytest.approx(gaps.dpd, abs=1e-12)
    assert result.demographic_parity_ratio == pytest.approx(gaps.dpr, abs=1e-12)
    assert result.equal_opportunity_difference == pytest.approx(gaps.eop, abs=1e-12)
    assert result.equalized_odds_difference == pytest.approx(gaps.eod, abs=1e-12)


def test_equalized_odds_driven_by_fpr_gap() -> None:
    # TPR equal (0.5 in both), FPR 0.1 vs 0.6 -> equalized-odds = 0.5 while equal-opportunity = 0.
    repaid, approved, labels = _data({"A": (5, 5, 1, 9), "B": (5, 5, 6, 4)})
    result = assess_attribute("x", repaid, approved, labels, min_group_size=1)
    gaps = reference_gaps(repaid, approved, labels.to_numpy(), ["A", "B"])
    assert gaps.eop == pytest.approx(0.0)
    assert gaps.eod == pytest.approx(0.5)
    assert result.equal_opportunity_difference == pytest.approx(gaps.eop)
    assert result.equalized_odds_difference == pytest.approx(gaps.eod)


# ---------------------------------------------------------------------------
# Insufficient samples
# ---------------------------------------------------------------------------
def test_small_group_reported_but_excluded_from_gaps() -> None:
    spec = {"A": (60, 0.7, 0.9), "B": (50, 0.7, 0.7)}
    repaid_ab, approved_ab, labels_ab = _random_data(spec, seed=11)
    # A tiny group that nobody in is approved: if it were compared, dpd would jump to max(approval) - 0.
    repaid = np.concatenate([repaid_ab, [1, 0, 1]])
    approved = np.concatenate([approved_ab, [0, 0, 0]])
    labels = pd.concat([labels_ab, pd.Series(["tiny"] * 3)], ignore_index=True)
    policy = FairnessPolicy(min_group_size=20)

    without = assess_decisions(repaid_ab, approved_ab, {"g": labels_ab}, policy)
    with_tiny = assess_decisions(repaid, approved, {"g": labels}, policy)

    (attr,) = with_tiny.attributes
    assert attr.compared_groups == ["A", "B"]
    assert attr.insufficient_sample_groups == ["tiny"]
    assert with_tiny.insufficient_sample_groups == ["g=tiny"]
    tiny = next(g for g in attr.groups if g.group == "tiny")
    assert tiny.n == 3
    assert tiny.sufficient_sample is False
    assert tiny.approval_rate == 0.0
    assert tiny.true_positive_rate == 0.0
    assert tiny.false_positive_rate == 0.0

    gaps = reference_gaps(repaid_ab, approved_ab, labels_ab.to_numpy(), ["A", "B"])
    (attr_without,) = without.attributes
    for result in (attr, attr_without):
        assert result.demographic_parity_difference == pytest.approx(gaps.dpd, abs=1e-12)
        assert result.demographic_parity_ratio == pytest.approx(gaps.dpr, abs=1e-12)
        assert result.equal_opportunity_difference == pytest.approx(gaps.eop, abs=1e-12)
        assert result.equalized_odds_difference == pytest.approx(gaps.eod, abs=1e-12)
    assert with_tiny.bias_disparity == pytest.approx(without.bias_disparity, abs=1e-12)
    # Sanity: had the tiny group been compared, dpd would have been max(approval of A, B) - 0.
    with_tiny_compared = reference_gaps(repaid, approved, labels.to_numpy(), ["A", "B", "tiny"])
    assert with_tiny_compared.dpd > gaps.dpd + 0.1


def test_group_exactly_at_min_group_size_is_compared() -> None:
    repaid, approved, labels = _data({"A": (8, 0, 0, 2), "B": (5, 0, 0, 4)})  # A: 10 rows, B: 9 rows
    result = assess_attribute("x", repaid, approved, labels, min_group_size=10)
    assert result.compared_groups == ["A"]
    assert result.insufficient_sample_groups == ["B"]
    result = assess_attribute("x", repaid, approved, labels, min_group_size=9)
    assert result.compared_groups == ["A", "B"]


def test_fewer_than_two_sufficient_groups_gives_no_gaps_and_no_flag() -> None:
    # A is large and approves everyone; B is tiny and approves nobody: a huge gap that must not count.
    repaid, approved, labels = _data({"A": (20, 0, 10, 0), "B": (0, 2, 0, 2)})
    policy = FairnessPolicy(min_group_size=10)

    report = assess_decisions(repaid, approved, {"sex": labels}, policy)

    (attr,) = report.attributes
    assert attr.compared_groups == ["A"]
    assert attr.insufficient_sample_groups == ["B"]
    assert attr.demographic_parity_difference is None
    assert attr.demographic_parity_ratio is None
    assert attr.equal_opportunity_difference is None
    assert attr.equalized_odds_difference is None
    assert report.fairness_flags == []
    assert report.bias_disparity == 0.0
    assert report.bias_disparity_attribute is None
    assert [g.group for g in attr.groups] == ["A", "B"]  # both still reported


def test_no_sufficient_group_at_all() -> None:
    repaid, approved, labels = _data({"A": (2, 1, 0, 1), "B": (1, 1, 1, 1)})
    result = assess_attribute("x", repaid, approved, labels, min_group_size=100)
    assert result.compared_groups == []
    assert result.insufficient_sample_groups == ["A", "B"]
    assert result.demographic_parity_difference is None


# ---------------------------------------------------------------------------
# Several attributes
# ---------------------------------------------------------------------------
def test_bias_disparity_is_max_dpd_over_attributes_and_names_it() -> None:
    # Same 40 rows seen through three attributes:
    # "sex":    f = rows 0-19 (12 approved), m = rows 20-39 (10 approved) -> 0.6 vs 0.5, dpd 0.1
    # "region": north = rows 0-9 and 20-29 (20 approved), south = rows 10-19 and 30-39 (2 approved)
    #           -> 1.0 vs 0.1, dpd 0.9
    # "size":   only "big" is large enough -> no gaps, ignored by bias_disparity
    approved = np.array([1] * 12 + [0] * 8 + [1] * 10 + [0] * 10)
    repaid = np.array([1, 0] * 20)
    groups = {
        "sex": pd.Series(["f"] * 20 + ["m"] * 20),
        "region": pd.Series((["north"] * 10 + ["south"] * 10) * 2),
        "size": pd.Series(["big"] * 38 + ["small"] * 2),
    }
    policy = FairnessPolicy(min_group_size=5, disparate_impact_min=0.0, equal_opportunity_gap_max=1.0)

    report = assess_decisions(repaid, approved, groups, policy)

    expected = {
        name: reference_gaps(repaid, approved, groups[name].to_numpy(), sorted(set(groups[name]))).dpd
        for name in ("sex", "region")
    }
    assert expected == pytest.approx({"sex": 0.1, "region": 0.9})
    assert [a.attribute for a in report.attributes] == ["sex", "region", "size"]
    assert report.attributes[0].demographic_parity_difference == pytest.approx(expected["sex"])
    assert report.attributes[1].demographic_parity_difference == pytest.approx(expected["region"])
    assert report.attributes[2].demographic_parity_difference is None
    assert report.bias_disparity == pytest.approx(0.9)
    assert report.bias_disparity_attribute == "region"


def test_bias_disparity_picks_the_larger_of_two_hand_made_attributes() -> None:
    # 20 rows. "sex": f = rows 0-9 (8 approved), m = rows 10-19 (5 approved) -> dpd 0.3
    #          "marriage": a = even rows, b = odd rows, approvals arranged to give 7 vs 6 -> dpd 0.1
    approved = np.array([1] * 8 + [0] * 2 + [1] * 5 + [0] * 5)
    repaid = np.ones(20, dtype=int)
    sex = pd.Series(["f"] * 10 + ["m"] * 10)
    marriage = pd.Series(["a", "b"] * 10)
    labels = marriage.to_numpy()
    a_rate = approved[labels == "a"].mean()
    b_rate = approved[labels == "b"].mean()
    assert abs(a_rate - b_rate) == pytest.approx(0.1)  # 7/10 vs 6/10
    policy = FairnessPolicy(min_group_size=10, disparate_impact_min=0.0, equal_opportunity_gap_max=1.0)

    report = assess_decisions(repaid, approved, {"marriage": marriage, "sex": sex}, policy)

    assert report.bias_disparity == pytest.approx(0.3)
    assert report.bias_disparity_attribute == "sex"


def test_flags_follow_attribute_order_not_alphabetical() -> None:
    # The equal-opportunity data of the hand-worked case, seen under two attribute names.
    repaid, approved, labels = _data({"A": (18, 2, 1, 4), "B": (15, 5, 1, 4)})
    report = assess_decisions(repaid, approved, {"z_attr": labels, "a_attr": labels}, FairnessPolicy(min_group_size=25))
    assert report.fairness_flags == [
        "z_attr: equal-opportunity gap 0.15 > 0.10",
        "a_attr: equal-opportunity gap 0.15 > 0.10",
    ]


# ---------------------------------------------------------------------------
# fairness_flags on its own
# ---------------------------------------------------------------------------
def _attribute(name: str, ratio: float | None, eop: float | None) -> AttributeFairness:
    return AttributeFairness(
        attribute=name,
        groups=[],
        compared_groups=[],
        insufficient_sample_groups=[],
        demographic_parity_difference=None if ratio is None else 0.1,
        demographic_parity_ratio=ratio,
        equal_opportunity_difference=eop,
        equalized_odds_difference=eop,
    )


def test_fairness_flags_are_strict_at_the_limits() -> None:
    policy = FairnessPolicy(disparate_impact_min=0.80, equal_opportunity_gap_max=0.10)
    at_limit = _attribute("x", ratio=0.80, eop=0.10)
    assert fairness_flags([at_limit], policy) == []
    just_over = _attribute("y", ratio=0.7999, eop=0.1001)
    assert fairness_flags([just_over], policy) == [
        "y: disparate-impact ratio 0.80 < 0.80",
        "y: equal-opportunity gap 0.10 > 0.10",
    ]


def test_fairness_flags_ignore_missing_gaps_and_follow_policy() -> None:
    assert fairness_flags([_attribute("x", None, None)], FairnessPolicy()) == []
    strict = FairnessPolicy(disparate_impact_min=0.95, equal_opportunity_gap_max=0.01)
    assert fairness_flags([_attribute("x", 0.9, 0.05)], strict) == [
        "x: disparate-impact ratio 0.90 < 0.95",
        "x: equal-opportunity gap 0.05 > 0.01",
    ]
    lax = FairnessPolicy(disparate_impact_min=0.5, equal_opportunity_gap_max=0.5)
    assert fairness_flags([_attribute("x", 0.9, 0.05)], lax) == []


# ---------------------------------------------------------------------------
# Group order
# ---------------------------------------------------------------------------
def test_groups_follow_given_order_then_alphabetical() -> None:
    repaid, approved, labels = _data(
        {"zeta": (3, 1, 1, 1), "old": (2, 2, 1, 1), "young": (1, 1, 2, 2), "alpha": (1, 1, 1, 1)}
    )
    result = assess_attribute("age", repaid, approved, labels, 1, order=["young", "middle", "old"])
    # Declared groups first, in declared order (absent "middle" skipped), then the rest alphabetically.
    assert [g.group for g in result.groups] == ["young", "old", "alpha", "zeta"]
    assert result.compared_groups == ["young", "old", "alpha", "zeta"]


def test_group_order_defaults_to_alphabetical_and_passes_through_assess_decisions() -> None:
    repaid, approved, labels = _data({"c": (1, 1, 1, 1), "a": (1, 1, 1, 1), "b": (1, 1, 1, 1)})
    result = assess_attribute("x", repaid, approved, labels, 1)
    assert [g.group for g in result.groups] == ["a", "b", "c"]
    report = assess_decisions(
        repaid, approved, {"x": labels}, FairnessPolicy(min_group_size=1), orders={"x": ["c", "b", "a"]}
    )
    assert [g.group for g in report.attributes[0].groups] == ["c", "b", "a"]


# ---------------------------------------------------------------------------
# Undefined rates
# ---------------------------------------------------------------------------
def test_group_where_nobody_repaid_has_tpr_none() -> None:
    """Regression: fairlearn turns 0/0 into a TPR of 0.0, which used to enter the gaps."""
    # Group C: 4 rows, all defaulted, 2 approved -> TPR undefined (no repayers), FPR 2/4 = 0.5.
    repaid, approved, labels = _data({"A": (1, 1, 1, 1), "B": (1, 1, 1, 1), "C": (0, 0, 2, 2)})
    result = assess_attribute("x", repaid, approved, labels, min_group_size=1)
    c = next(g for g in result.groups if g.group == "C")
    assert c.false_positive_rate == pytest.approx(0.5)
    assert c.true_positive_rate is None
    assert not (isinstance(c.true_positive_rate, float) and math.isnan(c.true_positive_rate))
    # A and B both have TPR 0.5; an undefined TPR must not create an equal-opportunity gap.
    assert result.equal_opportunity_difference == pytest.approx(0.0)


def test_group_where_nobody_defaulted_has_defined_tpr() -> None:
    repaid, approved, labels = _data({"A": (3, 1, 0, 0), "B": (1, 1, 1, 1)})
    result = assess_attribute("x", repaid, approved, labels, min_group_size=1)
    a = result.groups[0]
    assert a.group == "A"
    assert a.true_positive_rate == pytest.approx(0.75)
    assert a.approval_rate == pytest.approx(0.75)


def test_integer_group_labels_are_compared() -> None:
    """Regression: non-string labels used to select no rows and make fairlearn raise."""
    repaid, approved, _ = _data({"A": (8, 0, 0, 2), "B": (5, 0, 0, 5)})
    labels = pd.Series([1] * 10 + [2] * 10)
    result = assess_attribute("sex", repaid, approved, labels, min_group_size=10)
    assert result.compared_groups == ["1", "2"]
    assert result.demographic_parity_difference == pytest.approx(0.3)
