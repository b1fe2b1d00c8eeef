"""Whole-number columns counted by value first give exactly the per-row path's drift counts.

The oracle is the per-row path itself (`numeric_counts` + `_counted`, what every batch used before
`model.drift_values`): the same DriftCounts with its tables removed. References and batches are
generated: whole numbers with few or many distinct values (atoms or quantile knots), an old
reference without a sketch (deciles), negative spans, missing values, and batches with values
outside the span or not whole (which must fall back, not miscount).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.drift import DriftCounts
from model.drift_values import WholeNumberTable
from model.reference import _numeric

whole = st.integers(min_value=-5_000, max_value=5_000)


def _reference(values: list[int], old: bool) -> dict:
    spec = _numeric(pd.Series(values, dtype="float64"))
    if old:  # a reference.json written before the sketch existed
        del spec["sketch"]
    return {"rows": len(values), "features": {"x": spec}}


def _both(reference: dict, batches: list[np.ndarray]) -> tuple[DriftCounts, DriftCounts]:
    fast, slow = DriftCounts(reference), DriftCounts(reference)
    slow.tables = {name: None for name in slow.tables}
    for batch in batches:
        frame = pd.DataFrame({"x": batch})
        scores = np.full(len(batch), 0.5, dtype=np.float32)
        fast.add(frame, scores)
        slow.add(frame, scores)
    return fast, slow


def _assert_same(fast: DriftCounts, slow: DriftCounts) -> None:
    for counts in ("numeric", "fine", "offsets"):
        got, expected = getattr(fast, counts)["x"], getattr(slow, counts)["x"]
        assert got.dtype == expected.dtype == np.int64
        np.testing.assert_array_equal(got, expected, err_msg=counts)
    assert fast.to_dict() == slow.to_dict()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    reference=st.lists(whole, min_size=2, max_size=400),
    batches=st.lists(
        st.lists(
            st.one_of(whole, st.just(None), st.integers(-20_000, 20_000), st.floats(-100, 100)),
            min_size=1,
            max_size=300,
        ),
        min_size=1,
        max_size=4,
    ),
    old=st.booleans(),
)
def test_by_value_counts_equal_the_per_row_counts(reference, batches, old) -> None:
    arrays = [np.array([np.nan if v is None else v for v in b], dtype=np.float64) for b in batches]
    fast, slow = _both(_reference(reference, old), arrays)
    _assert_same(fast, slow)


def test_a_whole_number_batch_takes_the_table_and_a_fraction_falls_back() -> None:
    reference = _reference(list(range(18, 95)) * 3, old=False)
    counts = DriftCounts(reference)
    table = counts.tables["x"]
    assert isinstance(table, WholeNumberTable)
    assert table.count(np.array([20.0, 30.0, np.nan])) is not None
    assert table.count(np.array([20.0, 30.5])) is None  # not whole: the per-row path counts it
    assert table.count(np.array([20.0, table.start + len(table.cells)])) is None  # past the span
    fast, slow = _both(reference, [np.array([20.0, 30.0, np.nan, 1e9, 95.0]), np.arange(0.0, 120.0)])
    _assert_same(fast, slow)


def test_a_continuous_column_has_no_table() -> None:
    rng = np.random.default_rng(7)
    spec = _numeric(pd.Series(rng.normal(0, 1e6, 5_000)))
    counts = DriftCounts({"rows": 5_000, "features": {"x": spec}})
    assert counts.tables["x"] is None  # a span of millions is searched, not tabled
