"""The input contract's three checkers agree: one applicant, a batch of objects, a batch of compact rows.

The batch checkers take a vectorised fast path and only fall back to per-field messages
when something is wrong; whatever values come in, all three must accept exactly the same
applicants and produce the same values (undocumented codes mapped as in training).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from credit_scorer.domain.config import load_dataset_spec
from credit_scorer.domain.contract import FieldRule, InputContract
from credit_scorer.domain.train import request_fields

SPEC = load_dataset_spec()
CONTRACT = InputContract.from_spec(SPEC, request_fields(SPEC.model_inputs, SPEC.derived_features))


def valid_for(rule: FieldRule) -> st.SearchStrategy[Any]:
    if rule.codes is not None:
        return st.sampled_from(rule.codes)
    low = -(10**9) if rule.min is None else rule.min
    high = 10**9 if rule.max is None else rule.max
    numbers = st.integers(int(low), int(high))
    return numbers if rule.type == "int" else st.one_of(numbers, st.floats(low, high))


def edge_for(rule: FieldRule) -> st.SearchStrategy[Any]:
    """Values just inside and just outside the rule, and values of the wrong kind."""
    edges: list[Any] = []
    if rule.codes is not None:
        edges += [*rule.codes, min(rule.codes) - 1, max(rule.codes) + 1, 0.5, 1.5, float(max(rule.codes))]
    for bound in (rule.min, rule.max):
        if bound is not None:
            edges += [bound, bound - 1, bound + 1, bound + 0.5, bound - 0.5, float(bound)]
    edges += [True, False, None, "1", float("nan"), float("inf"), -float("inf"), 10**400, [1], {}]
    return st.sampled_from(edges)


@st.composite
def applicants(draw: st.DrawFn) -> dict[str, Any]:
    """A valid applicant with up to two fields replaced by edge values."""
    applicant = {rule.name: draw(valid_for(rule)) for rule in CONTRACT.fields}
    for rule in draw(st.lists(st.sampled_from(CONTRACT.fields), max_size=2)):
        applicant[rule.name] = draw(edge_for(rule))
    return applicant


@settings(max_examples=400, deadline=None)
@given(batch=st.lists(applicants(), min_size=1, max_size=4))
def test_single_batch_and_compact_checks_agree(batch: list[dict[str, Any]]) -> None:
    singles = [CONTRACT.check_one(a) for a in batch]
    many, many_errors = CONTRACT.check_many(batch)
    rows, rows_errors = CONTRACT.check_rows(CONTRACT.names, [[a[n] for n in CONTRACT.names] for a in batch])
    all_valid = all(values is not None for values, _ in singles)
    assert (many is not None) == all_valid == (rows is not None)
    if all_valid:
        expected = np.vstack([values for values, _ in singles])
        np.testing.assert_array_equal(many, expected)
        np.testing.assert_array_equal(rows, expected)
    else:
        # the same problems, named by row and field (capped alike)
        expected_fields = {(str(i), e["loc"][-1]) for i, (_, errs) in enumerate(singles) for e in errs}
        assert {(e["loc"][2], e["loc"][3]) for e in many_errors if len(e["loc"]) == 4} == expected_fields
        assert {(e["loc"][2], e["loc"][3]) for e in rows_errors if len(e["loc"]) == 4} == expected_fields


def test_undocumented_codes_are_mapped_in_every_form() -> None:
    # EDUCATION as a feature (protected_as_features): 0, 5, 6 are undocumented and trained as 4
    contract = InputContract(
        fields=[
            FieldRule(name="LIMIT_BAL", type="float", min=1),
            FieldRule(name="EDUCATION", type="int", codes=[0, 1, 2, 3, 4, 5, 6], mapping={0: 4, 5: 4, 6: 4}),
        ]
    )
    rows = [[1000, 0], [2000.5, 2], [3000, 6]]
    one = [contract.check_one(dict(zip(contract.names, row, strict=True)))[0] for row in rows]
    many, _ = contract.check_many([dict(zip(contract.names, row, strict=True)) for row in rows])
    compact, _ = contract.check_rows(contract.names, rows)
    expected = np.array([[1000, 4], [2000.5, 2], [3000, 4]], dtype=np.float64)
    np.testing.assert_array_equal(np.vstack(one), expected)  # type: ignore[arg-type]
    np.testing.assert_array_equal(many, expected)
    np.testing.assert_array_equal(compact, expected)
    assert contract.check_rows(contract.names, [[1000, 7]])[1][0]["loc"] == ["body", "rows", "0", "EDUCATION"]
