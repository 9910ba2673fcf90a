"""Red team: the thresholds in force must keep what they promise (issue 16 case 2) across changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from credit_scorer.domain.config import BaselinePolicy, PolicyConfig, SamplePolicy, Thresholds
from credit_scorer.records.people import People
from credit_scorer.records.store import ComplianceStore
from credit_scorer.records.thresholds import current, set_thresholds

LEAD = "Ada Lovelace"
PEOPLE = People(people={LEAD: ["submitter"]})


def test_thresholds_set_keeps_the_baseline_and_sample_policy_in_force(tmp_path: Path) -> None:
    """`credit-scorer thresholds set --accuracy-min …` passes only the SOP four; the new version silently went
    back to the default baseline floors and smallest test split, loosening what the previous version required."""
    store = ComplianceStore(str(tmp_path / "store"))
    strict = PolicyConfig(baseline=BaselinePolicy(auc_min=0.75), sample=SamplePolicy(min_test_rows=5000))
    set_thresholds(store, strict, LEAD, "Q2 review: stricter floors", PEOPLE)
    set_thresholds(store, Thresholds(accuracy_min=0.85), LEAD, "Q3 review: accuracy up", PEOPLE)
    latest = current(store)
    assert latest is not None
    assert (latest.baseline, latest.sample) == (strict.baseline, strict.sample)


@pytest.mark.parametrize(
    "baseline",
    [
        {"approval_rate_min": 0.0, "approval_rate_max": 1.0},  # approving (or declining) everyone passes
        {"auc_min": 0.0},  # worse than chance passes
        {"balanced_accuracy_min": 0.0},  # worse than the majority class passes
    ],
)
def test_a_baseline_that_cannot_stop_a_degenerate_model_is_refused(baseline: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PolicyConfig.model_validate({"baseline": baseline})
