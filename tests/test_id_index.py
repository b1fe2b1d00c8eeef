"""model/csvinput/duplicates.py: the id index answers as a dictionary of first occurrences would."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.csvinput import duplicates
from model.csvinput.duplicates import HASH_ROW, IdIndex, _merge


@settings(max_examples=150, deadline=None)
@given(
    chunks=st.lists(st.lists(st.sampled_from([f"id{i}" for i in range(40)]), max_size=30), max_size=12),
    max_run=st.sampled_from([4, duplicates.MAX_RUN]),  # 4: runs stop merging, lookups span many
    # rows past 2^32 - 1 need 16-byte runs: starting just below, narrow and wide runs merge
    start=st.sampled_from([1, 2**32 - 40]),
)
def test_record_names_the_first_scored_row_of_every_repeated_id(
    chunks: list[list[str]], max_run: int, start: int
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(duplicates, "MAX_RUN", max_run)
        _check_against_a_dictionary(chunks, start)


def test_runs_take_12_bytes_an_id_until_rows_pass_32_bits() -> None:
    index = IdIndex()
    index.record(np.array(["a", "b"], dtype=object), np.array([1, 2]))
    assert [run.dtype.itemsize for run in index._runs] == [12]
    index.record(np.array(["c"], dtype=object), np.array([2**32]))
    assert index.to_array().dtype == HASH_ROW
    assert sorted(index.to_array()["r"].tolist()) == [1, 2, 2**32]


def _check_against_a_dictionary(chunks: list[list[str]], start: int = 1) -> None:
    index, first_row, row = IdIndex(), {}, start
    for chunk in chunks:
        rows = np.arange(row, row + len(chunk))
        got = index.record(np.array(chunk, dtype=object), rows).tolist()
        expected = []
        for value, number in zip(chunk, rows.tolist(), strict=True):
            expected.append(first_row.get(value, -1))
            first_row.setdefault(value, number)
        assert got == expected
        row += len(chunk)
    assert len(index) == len(first_row)
    assert sorted(index.to_array()["r"].tolist()) == sorted(first_row.values())


@settings(max_examples=150, deadline=None)
@given(
    a=st.lists(st.integers(0, 2**64 - 1), max_size=40, unique=True),
    b=st.lists(st.integers(0, 2**64 - 1), max_size=40, unique=True),
)
def test_merge_is_a_stable_sort_of_both_runs(a: list[int], b: list[int]) -> None:
    def run(hashes: list[int], first_row: int) -> np.ndarray:
        out = np.empty(len(hashes), dtype=HASH_ROW)
        out["h"] = np.sort(np.array(hashes, dtype=np.uint64))
        out["r"] = np.arange(first_row, first_row + len(hashes))
        return out

    left, right = run(a, 0), run(b, 1000)
    both = np.concatenate([left, right])
    expected = both[np.argsort(both["h"], kind="stable")]  # the sort the merge replaces
    assert _merge(left, right).tolist() == expected.tolist()
