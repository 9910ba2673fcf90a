"""Too little data stops the run before anything is recorded (issue 16, case 2: 30 rows "evaluated" on 6).

The expected split sizes are worked out here by hand: a stratified split puts ceil(rows x 0.2) rows in the
test split, each outcome in proportion (rounded down).
"""

from __future__ import annotations

import pandas as pd
import pytest

from credit_scorer.core.errors import DataValidationError
from credit_scorer.domain.config import PolicyConfig, SamplePolicy, TrainingConfig, load_dataset_spec
from credit_scorer.domain.data import check_test_split

SPEC = load_dataset_spec()
TRAINING = TrainingConfig()  # test_fraction 0.20


def _frame(defaulted: int, repaid: int) -> pd.DataFrame:
    return pd.DataFrame({SPEC.target.column: [1] * defaulted + [0] * repaid})


def test_thirty_rows_are_refused_naming_the_numbers_and_the_fix() -> None:
    with pytest.raises(DataValidationError) as refused:
        check_test_split(_frame(7, 23), SPEC, TRAINING, SamplePolicy())
    message = str(refused.value)
    # ceil(30 x 0.2) = 6 test rows: floor(7 x 6 / 30) = 1 defaulted, floor(23 x 6 / 30) = 4 repaid
    assert "30 rows give a test split of 6 rows (defaulted 1, repaid 4)" in message
    assert "at least 1000 test rows and 100 of each outcome" in message
    assert "sample.min_test_rows" in message and "nothing was recorded" in message


def test_enough_rows_but_too_few_of_one_outcome_is_refused() -> None:
    # 5,000 rows, 1 % defaults: 1,000 test rows but floor(50 x 1000 / 5000) = 10 defaulters
    with pytest.raises(DataValidationError, match=r"\(defaulted 10, repaid 990\)"):
        check_test_split(_frame(50, 4950), SPEC, TRAINING, SamplePolicy())


def test_the_bundled_data_and_a_lowered_policy_pass() -> None:
    check_test_split(_frame(6636, 23364), SPEC, TRAINING, SamplePolicy())  # the bundled data's outcome counts
    check_test_split(_frame(7, 23), SPEC, TRAINING, SamplePolicy(min_test_rows=5, min_test_per_outcome=1))


def test_a_thresholds_file_can_state_the_sample_policy() -> None:
    policy = PolicyConfig.model_validate({"sample": {"min_test_rows": 500, "min_test_per_outcome": 50}})
    assert (policy.sample.min_test_rows, policy.sample.min_test_per_outcome) == (500, 50)
    assert PolicyConfig().sample == SamplePolicy(min_test_rows=1000, min_test_per_outcome=100)
