"""The label-free estimate: the mergeable histogram, the estimate against simulation, the comparison.

A synthetic calibrated model (p ~ Beta, y ~ Bernoulli(p)) must land inside its own intervals in
most repeated batches; labels drawn from a different p (concept drift) must land outside.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from model.monitoring import metrics
from model.monitoring.compare import compare, compare_joined, compare_rows, realised
from model.monitoring.estimate import EstimateConfig, estimate, estimate_probabilities, simulate
from model.monitoring.histogram import BINS, ScoreHistogram
from model.monitoring.join import join_outcomes
from tests.support import REPO

THRESHOLD = 0.2


def _batch(rows: int, seed: int, a: float = 1.5, b: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated by construction: p ~ Beta(a, b) as float32 (as scoring writes it), y ~ Bernoulli(p)."""
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, rows).astype(np.float32).astype(np.float64)
    return p, (rng.random(rows) < p).astype(int)


# ------------------------------------------------------------------------------------ histogram


def test_shards_merge_exactly_into_the_whole_batch() -> None:
    p, _ = _batch(10_000, 0)
    whole = ScoreHistogram.of(p, threshold=THRESHOLD)
    cuts = [0, 1234, 1235, 7000, len(p)]
    shards = [ScoreHistogram.of(p[a:b], threshold=THRESHOLD) for a, b in itertools.pairwise(cuts)]
    merged = shards[3].merge(shards[0]).merge(shards[2]).merge(shards[1])  # any order
    assert merged == whole
    assert estimate(merged) == estimate(whole)
    streamed = ScoreHistogram()
    for a, b in itertools.pairwise(cuts):
        streamed.add(p[a:b], threshold=THRESHOLD)
    assert streamed == whole


def test_the_histogram_keeps_exact_sums_and_round_trips_through_json() -> None:
    p, _ = _batch(5_000, 1)
    p[:3] = [0.0, 1.0, THRESHOLD]
    histogram = ScoreHistogram.of(p, threshold=THRESHOLD)
    assert histogram.rows == len(p) and histogram.called == int((p >= THRESHOLD).sum())
    assert histogram.counts[1, BINS - 1] >= 1  # p = 1 falls in the last bin
    assert histogram.expected_positives() == pytest.approx(p.sum(), abs=1e-6)
    assert histogram.expected_positives(1) == pytest.approx(p[p >= THRESHOLD].sum(), abs=1e-6)
    assert histogram.variance_positives() == pytest.approx((p * (1 - p)).sum(), abs=1e-5)
    text = json.dumps(histogram.to_json())
    assert ScoreHistogram.from_json(json.loads(text)) == histogram
    assert len(histogram.to_json()["cells"]) < 2 * BINS  # only occupied cells are written
    decisions = (p >= THRESHOLD).astype(int)
    assert ScoreHistogram.of(p, decisions) == histogram


def test_the_histogram_refuses_what_it_cannot_count() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ScoreHistogram.of(np.array([0.5, 1.2]), threshold=0.5)
    with pytest.raises(ValueError, match="threshold"):
        ScoreHistogram.of(np.array([0.5]))
    with pytest.raises(ValueError, match="decisions"):
        ScoreHistogram.of(np.array([0.5, 0.6]), np.array([1, 2]))
    with pytest.raises(ValueError, match="merge"):
        ScoreHistogram(10).merge(ScoreHistogram(20))
    with pytest.raises(ValueError, match="units"):
        ScoreHistogram.from_json({"bins": 10, "scale_bits": 20, "cells": []})


# ------------------------------------------------------------------------------------- estimate


def test_the_estimate_matches_a_simulation_on_the_raw_probabilities() -> None:
    """Binning (ties within 0.001) barely moves the AUC: compare with labels drawn row by row."""
    p, _ = _batch(3_000, 2)
    record = estimate_probabilities(p, threshold=THRESHOLD)
    rng = np.random.default_rng(7)
    draws = np.array([metrics.roc_auc(rng.random(len(p)) < p, p) for _ in range(400)])
    assert record["roc_auc"]["expected"] == pytest.approx(draws.mean(), abs=0.003)
    assert record["roc_auc"]["sd"] == pytest.approx(draws.std(), rel=0.2)
    called = p >= THRESHOLD
    assert record["precision_at_threshold"]["expected"] == pytest.approx(p[called].mean(), abs=1e-9)
    assert record["subscribers"]["expected"] == pytest.approx(p.sum(), abs=1e-6)
    assert record["subscribers"]["sd"] == pytest.approx(np.sqrt((p * (1 - p)).sum()), abs=1e-6)
    low, high = record["subscribers"]["low"], record["subscribers"]["high"]
    assert low == int(low) and high == int(high) and low < p.sum() < high


def test_the_expected_auc_is_close_to_cbpe_s_ratio_of_expectations() -> None:
    """NannyML-style: sum over pairs p_i (1 - p_j) [s_i > s_j] / E[positives x negatives]."""
    p, _ = _batch(4_000, 3)
    s = np.sort(p)[::-1]
    negatives_below = np.cumsum((1 - s)[::-1])[::-1] - (1 - s)  # sum of (1 - p_j) over lower rows
    ratio = (s * negatives_below).sum() / (s.sum() * (1 - s).sum() - (s * (1 - s)).sum())
    assert estimate_probabilities(p, threshold=THRESHOLD)["roc_auc"]["expected"] == pytest.approx(
        ratio, abs=0.003
    )


def test_a_calibrated_model_lands_inside_its_intervals_in_most_batches() -> None:
    config = EstimateConfig(draws=400)
    repeats, inside = 40, {"roc_auc": 0, "precision_at_threshold": 0, "subscribers": 0}
    flagged = 0
    for seed in range(repeats):
        p, y = _batch(2_000, 100 + seed)
        result = compare_rows(p, (p >= THRESHOLD).astype(int), y, config)
        for name, figure in result["figures"].items():
            inside[name] += not figure["outside"]
        flagged += result["gap_outside_interval"]
    assert all(count >= 0.85 * repeats for count in inside.values()), inside
    assert flagged <= 0.25 * repeats, flagged


def test_one_calibrated_batch_matches_its_realised_auc_within_the_interval() -> None:
    p, y = _batch(5_000, 11)
    result = compare_rows(p, (p >= THRESHOLD).astype(int), y)
    auc = result["figures"]["roc_auc"]
    assert auc["low"] <= auc["realised"] <= auc["high"] and not auc["outside"]
    assert auc["realised"] == pytest.approx(metrics.roc_auc(y, p), abs=1e-12)
    assert result["status"] == "ok" and not result["gap_outside_interval"]
    json.dumps(result, allow_nan=False)


def test_labels_drawn_from_a_different_p_produce_the_flagged_gap() -> None:
    p, _ = _batch(5_000, 12)
    rng = np.random.default_rng(13)
    decisions = (p >= THRESHOLD).astype(int)
    # the ranking broke: subscribing now follows something the model does not see
    other = rng.permutation(p)
    y = (rng.random(len(p)) < other).astype(int)
    broken = compare_rows(p, decisions, y)
    assert broken["figures"]["roc_auc"]["outside"] and broken["figures"]["roc_auc"]["gap"] < -0.1
    assert broken["gap_outside_interval"]
    # the base rate doubled: the ranking holds, the counts do not
    y = (rng.random(len(p)) < np.minimum(1, 2 * p)).astype(int)
    shifted = compare_rows(p, decisions, y)
    assert shifted["figures"]["subscribers"]["outside"] and shifted["figures"]["subscribers"]["gap"] > 0
    assert shifted["figures"]["precision_at_threshold"]["outside"]


def test_rare_positives_leave_the_auc_unestimated_rather_than_noisy() -> None:
    p = np.full(40, 0.002)
    record = estimate_probabilities(p, threshold=0.5)
    assert record["roc_auc"]["status"] == "insufficient" and record["roc_auc"]["expected"] is None
    assert record["roc_auc"]["one_class_share"] > 0.9
    assert record["precision_at_threshold"]["status"] == "undefined"  # nobody called
    assert record["subscribers"]["status"] == "ok" and record["subscribers"]["expected"] == pytest.approx(
        0.08
    )
    json.dumps(record, allow_nan=False)


def test_an_empty_batch_estimates_nothing() -> None:
    record = estimate(ScoreHistogram(), context={"batch": "empty.csv"})
    assert record["status"] == "empty" and record["batch"] == "empty.csv" and record["rows"] == 0
    assert all(record[name]["status"] == "undefined" for name in ("roc_auc", "subscribers"))
    json.dumps(record, allow_nan=False)


def test_the_estimate_is_reproducible_and_its_seed_is_recorded() -> None:
    p, _ = _batch(1_000, 4)
    histogram = ScoreHistogram.of(p, threshold=THRESHOLD)
    config = EstimateConfig(draws=300, seed=5)
    assert estimate(histogram, config) == estimate(histogram, config)
    assert estimate(histogram, config)["method"]["seed"] == 5
    values = simulate(histogram, 50, np.random.default_rng(0))
    assert {k: v.shape for k, v in values.items()} == {k: (50,) for k in values}
    with pytest.raises(ValueError, match="draws"):
        EstimateConfig(draws=0)


# -------------------------------------------------------------------------------------- compare


def test_a_figure_without_a_realised_value_is_not_comparable() -> None:
    p, _ = _batch(500, 5)
    y = np.zeros(len(p), dtype=int)  # nobody subscribed: no realised AUC
    result = compare_rows(p, (p >= THRESHOLD).astype(int), y)
    assert result["figures"]["roc_auc"]["status"] == "not_comparable"
    assert result["figures"]["subscribers"]["status"] == "ok"
    assert realised(y, p, np.zeros(len(p)))["precision_at_threshold"] is None
    assert compare({}, {})["status"] == "not_comparable"


def test_comparisons_per_version_and_period_from_the_join() -> None:
    p, y = _batch(1_200, 6)
    days = np.where(np.arange(len(p)) < 600, "2026-11-16", "2026-11-23")
    predictions = pd.DataFrame(
        {
            "client_id": np.arange(len(p)),
            "probability": p,
            "decision": (p >= THRESHOLD).astype(int),
            "model_name": "bank-marketing",
            "model_version": "3",
            "scored_at": [f"{d}T02:00:00+00:00" for d in days],
        }
    )
    outcomes = pd.DataFrame(
        {"client_id": np.arange(0, len(p), 2), "contact_date": days[::2], "subscribed": y[::2]}
    )
    results = compare_joined(join_outcomes(predictions, outcomes), EstimateConfig(draws=200))
    assert [(r["model_version"], r["period"], r["rows"]) for r in results] == [
        ("3", "2026-W47", 300),
        ("3", "2026-W48", 300),
    ]
    first = results[0]["figures"]["subscribers"]
    assert first["realised"] == y[:600:2].sum()
    assert first["expected"] == pytest.approx(
        p[:600:2].sum(), abs=1e-6
    )  # estimated on the labelled rows only


def test_the_monitoring_modules_need_neither_sklearn_nor_scipy() -> None:
    """They run in the Function App, which ships numpy and pandas only."""
    code = (
        "import sys, model.monitoring.quality, model.monitoring.estimate, model.monitoring.compare; "
        "print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run(  # noqa: S603 - our interpreter running a fixed probe
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
