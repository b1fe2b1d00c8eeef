"""bench/http_bench.py on a tiny budget: every case runs and reports positive figures, the three ways
give the same probabilities, and the report states both targets. The figures themselves are not
judged here (2 shared cores, 20 requests): docs/benchmarks.md holds a real run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import http_bench

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_every_case_reports_positive_figures_and_the_same_probabilities(azurite, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    args = http_bench.parse_args(["--requests", "20", "--seconds", "5"])
    report = http_bench.run(args, connection=azurite.connection_string)

    expected = {(key, rows, "-") for key in "bh" for rows in http_bench.SIZES}
    expected |= {
        (key, rows, client) for key in "ac" for rows in http_bench.SIZES for client in http_bench.CLIENTS
    }
    assert {(c.key, c.rows, c.client) for c in report.cases} == expected
    for case in report.cases:
        assert len(case.latencies_ms) == 20, case  # 20 requests take well under 5 s
        assert case.p(0.5) > 0 and case.p(0.99) >= case.p(0.5) and case.per_second > 0, case

    assert report.parity["a-b"] == 0.0 and report.parity["a-h"] == 0.0  # the same ONNX session
    assert report.parity["a-c"] <= http_bench.PARITY_TOLERANCE
    assert report.parity["b-c"] <= http_bench.PARITY_TOLERANCE

    text = report.markdown()
    assert "handler p50 < 1 ms for one row" in text and "(a) >= 5x (c) requests/s for one row" in text
    assert text.count("MET") + text.count("MISSED") >= 2
    assert "| 100 | (c) seeds: pandas + sklearn via local host | process |" in text
