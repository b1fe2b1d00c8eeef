"""BatchCounts (model/monitoring/batch.py): what scoring counts per batch for drift and the estimate.

Shards serialised through JSON and merged give exactly the whole batch's drift report and
estimate, whatever the cuts; a shard result from before the histogram existed still merges (no
estimate then, rather than a wrong one); scores a hair outside [0, 1] (float32) are counted.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.monitoring.batch import BatchCounts
from model.monitoring.estimate import estimate_probabilities
from model.reference import build_reference
from model.schema import InputSchema

TOY = InputSchema("toy", ("whole", "real"), {"colour": ("blue", "green", "red")})
THRESHOLD = 0.2
CONTEXT = {"input": {"blob": "scoring-input/x.csv", "etag": "0x1"}, "scored_at": "2026-12-02T02:00:00+00:00"}


def _toy(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "whole": rng.integers(0, 30, rows),
            "real": rng.normal(0.0, 1.0, rows),
            "colour": rng.choice(["blue", "green", "red"], rows, p=[0.5, 0.3, 0.2]),
        }
    )


@pytest.fixture(scope="module")
def reference() -> dict:
    rng = np.random.default_rng(6)
    return build_reference(_toy(rng, 3000), TOY, rng.beta(1, 8, 3000))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.sampled_from([1, 300, 1500]),
    cuts=st.lists(st.floats(0.0, 1.0), max_size=6),
    seed=st.integers(0, 2**16),
)
def test_shards_merge_to_exactly_the_whole(reference: dict, rows: int, cuts: list[float], seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = _toy(rng, rows)
    scores = rng.beta(1, 8, rows).astype(np.float32)
    whole = BatchCounts(reference, THRESHOLD)
    whole.add(frame, scores)
    merged = BatchCounts(reference, THRESHOLD)
    bounds = [0, *sorted(round(c * rows) for c in cuts), rows]
    for start, end in itertools.pairwise(bounds):
        part = BatchCounts(reference, THRESHOLD)
        part.add(frame.iloc[start:end], scores[start:end])
        merged.merge(BatchCounts.from_dict(reference, THRESHOLD, json.loads(json.dumps(part.to_dict()))))
    assert merged.drift_report() == whole.drift_report()
    assert merged.estimate_record(CONTEXT) == whole.estimate_record(CONTEXT)


def test_the_estimate_is_the_estimate_of_the_batchs_probabilities(reference: dict) -> None:
    rng = np.random.default_rng(3)
    frame, scores = _toy(rng, 2000), rng.beta(1, 8, 2000)
    counts = BatchCounts(reference, THRESHOLD)
    for start in range(0, 2000, 300):  # chunk by chunk, as the scorer feeds it
        counts.add(frame.iloc[start : start + 300], scores[start : start + 300])
    record = counts.estimate_record(CONTEXT)
    direct = estimate_probabilities(scores, threshold=THRESHOLD, context=CONTEXT)
    assert record == direct
    assert record["rows"] == 2000 and record["called"] == int((scores >= THRESHOLD).sum())
    assert record["input"] == CONTEXT["input"] and record["subscribers"]["expected"] == pytest.approx(
        scores.sum()
    )


def test_a_shard_result_without_a_histogram_merges_without_an_estimate(reference: dict) -> None:
    rng = np.random.default_rng(4)
    frame, scores = _toy(rng, 400), rng.beta(1, 8, 400)
    new, old = BatchCounts(reference, THRESHOLD), BatchCounts(reference, THRESHOLD)
    new.add(frame.iloc[:200], scores[:200])
    old.add(frame.iloc[200:], scores[200:])
    before = {"drift": old.to_dict()["drift"]}  # what a shard of the previous version wrote
    merged = BatchCounts(reference, THRESHOLD)
    merged.merge(BatchCounts.from_dict(reference, THRESHOLD, new.to_dict()))
    merged.merge(BatchCounts.from_dict(reference, THRESHOLD, before))
    whole = BatchCounts(reference, THRESHOLD)
    whole.add(frame, scores)
    assert merged.drift_report() == whole.drift_report()  # drift is still exact
    assert merged.estimate_record(CONTEXT) is None  # no estimate rather than half of one


def test_float32_scores_just_outside_the_unit_interval_are_counted(reference: dict) -> None:
    counts = BatchCounts(reference, THRESHOLD)
    frame = _toy(np.random.default_rng(5), 3)
    counts.add(frame, np.array([1.0000001, -1e-8, 0.5], dtype=np.float64))
    record = counts.estimate_record(CONTEXT)
    assert record is not None and record["rows"] == 3 and record["called"] == 2


def test_an_empty_batch_has_an_empty_estimate(reference: dict) -> None:
    counts = BatchCounts(reference, THRESHOLD)
    counts.add(_toy(np.random.default_rng(5), 0), np.zeros(0))
    record = counts.estimate_record(CONTEXT)
    assert record is not None and record["status"] == "empty" and record["rows"] == 0
