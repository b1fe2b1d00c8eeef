"""bench/scoring_bench.py still runs end to end on a tiny input (it broke once, unnoticed, when
training's result type changed). The figures are not judged here: docs/benchmarks.md holds a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import bench_report

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_batch_scoring_bench_runs_every_method(tmp_path: Path) -> None:
    text = bench_report("bench.scoring_bench", "--rows", "3000", "--families", "logreg", folder=tmp_path)
    assert "| 3,000 | logreg |" in text
    (same,) = [
        line for line in text.splitlines() if line.startswith("- 3,000 rows, logreg:") and "over" in line
    ]
    difference = float(same.split(":")[1].split()[0])  # max |P(a) - P(c)|: ONNX and sklearn agree
    assert difference < 1e-5, same
    # (a)'s CPU seconds and Azurite's during it are measured (/proc), not left at n/a
    (phases,) = [line for line in text.splitlines() if line.startswith("| 3,000 | logreg | ours |")]
    child, storage = (float(v) for v in phases.split("|")[-3].split(","))
    assert child > 0 and storage > 0, phases
