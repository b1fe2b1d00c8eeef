"""bench/selection_backtest.py runs end to end and its table says what it measured: the procedure
selected on the rows before the cut only, and is judged on every row after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import bench_report

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_selection_backtest_judges_the_selected_configuration_after_the_cut(tmp_path: Path) -> None:
    text = bench_report(
        "bench.selection_backtest", "--candidates", "logreg", "--cuts", "0.8", folder=tmp_path
    )
    (row,) = [line for line in text.splitlines() if line.startswith("| 28,800 |")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1].startswith("7,200 ")  # every row after the cut (36,000 shipped rows)
    assert cells[2].startswith("logreg/")
    later = float(cells[4].strip("*"))
    rank, _, of = cells[5].partition(" of ")
    assert 0.5 < later < 1.0 and 1 <= int(rank) <= int(of) == 9  # 3 feature sets x 3 recency schemes
