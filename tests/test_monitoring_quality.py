"""Quality from delayed outcomes: numpy metrics against scikit-learn, the join rules, the records.

scikit-learn (dev venv only) is the oracle: fixed cases with ties and tiny samples, hypothesis-made
ones, with sample weights too (a bootstrap resample is a weight vector of draw counts)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from model.evaluate import share_reached as evaluate_share_reached
from model.monitoring import metrics
from model.monitoring import quality as quality_module
from model.monitoring.join import LABELLED, PENDING, SUPERSEDED, join_outcomes, period_bounds, period_labels
from model.monitoring.quality import INSUFFICIENT, OK, ONE_CLASS, QualityConfig, quality

TOL = 1e-12

# ------------------------------------------------------------------------------ metrics vs sklearn


def _oracle(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> dict[str, float]:
    return {
        "roc_auc": roc_auc_score(y, p, sample_weight=w),
        "pr_auc": average_precision_score(y, p, sample_weight=w),
        "brier": brier_score_loss(y, p, sample_weight=w),
        "log_loss": log_loss(y, p, sample_weight=w, labels=[0, 1]),
    }


def _ours(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> dict[str, float]:
    return {
        "roc_auc": metrics.roc_auc(y, p, w),
        "pr_auc": metrics.average_precision(y, p, w),
        "brier": metrics.brier(y, p, w),
        "log_loss": metrics.log_loss(y, p, w),
    }


FIXED = [
    ([0, 1], [0.3, 0.7]),  # the smallest sample
    ([1, 0], [0.3, 0.7]),  # perfectly wrong
    ([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]),  # all tied
    ([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.4, 0.8, 0.8, 0.8]),  # ties across classes
    ([1, 1, 0], [0.0, 1.0, 1.0]),  # probabilities 0 and 1: log loss clipped
    ([0, 1, 1, 0, 1, 0, 0, 0, 1, 0], [0.9, 0.8, 0.7, 0.6, 0.55, 0.54, 0.53, 0.52, 0.51, 0.1]),
]


@pytest.mark.parametrize(("labels", "scores"), FIXED)
def test_metrics_match_sklearn_on_fixed_cases(labels: list[int], scores: list[float]) -> None:
    y, p = np.array(labels), np.array(scores)
    ours, oracle = _ours(y, p), _oracle(y, p)
    for name in oracle:
        assert ours[name] == pytest.approx(oracle[name], abs=TOL), name


def test_metrics_with_weights_match_sklearn_and_the_expanded_sample() -> None:
    y = np.array([0, 1, 0, 1, 1, 0, 0])
    p = np.array([0.2, 0.2, 0.5, 0.9, 0.5, 0.1, 0.9])
    w = np.array([3, 1, 0, 2, 1, 4, 1])
    expanded = _oracle(np.repeat(y, w), np.repeat(p, w))
    for name, value in _ours(y, p, w).items():
        assert value == pytest.approx(_oracle(y, p, w)[name], abs=TOL)
        assert value == pytest.approx(expanded[name], abs=TOL)


def test_undefined_metrics_are_nan_not_numbers() -> None:
    p = np.array([0.1, 0.5, 0.9])
    assert math.isnan(metrics.roc_auc(np.array([1, 1, 1]), p))
    assert math.isnan(metrics.roc_auc(np.array([0, 0, 0]), p))
    assert math.isnan(metrics.average_precision(np.array([0, 0, 0]), p))
    assert metrics.average_precision(np.array([1, 1, 1]), p) == 1.0  # as sklearn: no negatives
    ranked = metrics.rank(np.array([1, 0, 1]), p, np.array([0, 0, 0]))
    assert math.isnan(metrics.evaluate(ranked)["precision_at_decision"][0])  # nobody called
    assert all(math.isnan(v[0]) for v in metrics.evaluate(metrics.rank([], [])).values())


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        metrics.rank([0, 1], [0.2, 1.5])
    with pytest.raises(ValueError, match="0 or 1"):
        metrics.rank([0, 2], [0.2, 0.5])
    with pytest.raises(ValueError, match="length"):
        metrics.rank([0, 1, 1], [0.2, 0.5])


# Scores on a coarse grid so ties are frequent; a few rows; weights include 0 (a row not drawn).
_rows = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 20).map(lambda k: k / 20), st.integers(0, 4)),
    min_size=2,
    max_size=60,
)


@given(_rows)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_metrics_match_sklearn_on_generated_samples(rows: list[tuple[int, float, int]]) -> None:
    y, p, w = (np.array(column) for column in zip(*rows, strict=True))
    assume(0 < y.sum() < len(y))
    ours, oracle = _ours(y, p), _oracle(y, p)
    for name in oracle:
        assert ours[name] == pytest.approx(oracle[name], abs=1e-10), name
    assume((w * y).sum() > 0 and (w * (1 - y)).sum() > 0)
    ours, oracle = _ours(y, p, w), _oracle(y, p, w)
    for name in oracle:
        assert ours[name] == pytest.approx(oracle[name], abs=1e-10), name


@given(st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1)), min_size=2, max_size=80))
@settings(max_examples=200, deadline=None)
def test_metrics_match_sklearn_on_continuous_scores(rows: list[tuple[int, float]]) -> None:
    y, p = (np.array(column) for column in zip(*rows, strict=True))
    assume(0 < y.sum() < len(y))
    ours, oracle = _ours(y, p), _oracle(y, p)
    for name in oracle:
        assert ours[name] == pytest.approx(oracle[name], abs=1e-10), name


@given(
    st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1)), min_size=1, max_size=80, unique_by=lambda r: r[1])
)
@settings(max_examples=200, deadline=None)
def test_share_reached_matches_model_evaluate_without_ties(rows: list[tuple[int, float]]) -> None:
    y, p = (np.array(column) for column in zip(*rows, strict=True))
    assume(y.sum() > 0)
    for fraction in (0.1, 0.5):
        assert metrics.share_reached(y, p, fraction) == pytest.approx(
            evaluate_share_reached(y, p, fraction), abs=TOL
        )


def test_share_reached_shares_a_tie_at_the_cut_whatever_the_row_order() -> None:
    # 10 rows, top 10 % = 1 row; the top score is held by 2 rows, one positive: half of it counts.
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.9, 0.5, 0.4, 0.3, 0.2, 0.2, 0.1, 0.1, 0.1])
    assert metrics.share_reached(y, p, 0.1) == pytest.approx(0.5 * 1 / 2)
    order = np.random.default_rng(0).permutation(10)
    assert metrics.share_reached(y[order], p[order], 0.1) == pytest.approx(0.25)


@given(_rows, st.integers(0, 2**32 - 1))
@settings(max_examples=100, deadline=None)
def test_bootstrap_resamples_are_the_metrics_of_the_drawn_rows(rows: list, seed: int) -> None:
    """The vectorised bootstrap equals computing each resample (np.repeat of its counts) with sklearn."""
    y, p, _ = (np.array(column) for column in zip(*rows, strict=True))
    ranked = metrics.rank(y, p)
    values = metrics.bootstrap(ranked, 5, np.random.default_rng(seed))
    draws = np.random.default_rng(seed).integers(0, len(y), size=(5, len(y)))
    for b in range(5):
        ys, ps = ranked.labels[draws[b]], ranked.scores[draws[b]]
        if 0 < ys.sum() < len(ys):
            assert values["roc_auc"][b] == pytest.approx(roc_auc_score(ys, ps), abs=1e-10)
            assert values["pr_auc"][b] == pytest.approx(average_precision_score(ys, ps), abs=1e-10)
        else:
            assert math.isnan(values["roc_auc"][b])
        assert values["brier"][b] == pytest.approx(brier_score_loss(ys, ps, labels=[0, 1]), abs=1e-10)


def test_bootstrap_intervals_cover_the_true_auc_in_most_draws() -> None:
    """Binormal scores (negatives N(0,1), positives N(1,1)): the true AUC is Phi(1/sqrt 2) = 0.760."""
    truth = 0.5 * (1 + math.erf(0.5))
    rng = np.random.default_rng(42)
    covered, repeats = 0, 40
    for _ in range(repeats):
        y = (rng.random(400) < 0.25).astype(int)
        p = 1 / (1 + np.exp(-(rng.normal(size=400) + y)))
        values = metrics.bootstrap(metrics.rank(y, p), 300, rng)
        low, high = metrics.interval(values["roc_auc"], 0.95)
        covered += low <= truth <= high
    assert covered >= 0.85 * repeats, covered


# ----------------------------------------------------------------------------------------- join


def _predictions(rows: list[tuple], version: str = "1") -> pd.DataFrame:
    """rows of (client_id, probability, scored_at); decision = probability >= 0.5."""
    ids, p, scored = zip(*rows, strict=True) if rows else ((), (), ())
    decision = [int(q >= 0.5) for q in p]
    return pd.DataFrame(
        {"client_id": ids, "probability": p, "decision": decision, "scored_at": scored}
    ).assign(model_name="bank-marketing", model_version=version)


def _outcomes(rows: list[tuple]) -> pd.DataFrame:
    """rows of (client_id, contact_date, subscribed)."""
    ids, days, labels = zip(*rows, strict=True) if rows else ((), (), ())
    return pd.DataFrame({"client_id": ids, "contact_date": days, "duration": 100, "subscribed": labels})


def test_the_latest_prediction_on_or_before_the_call_is_judged() -> None:
    rows = {
        (1, 0.1, "2026-11-16T02:00:00+00:00"): SUPERSEDED,  # by the next one
        (1, 0.2, "2026-11-17T02:00:00+00:00"): SUPERSEDED,  # by the later one the same day
        (1, 0.3, "2026-11-17T09:30:00+00:00"): LABELLED,  # the latest before the call on the 18th
        (1, 0.9, "2026-11-19T02:00:00+00:00"): PENDING,  # after the call: never judged by it
        (2, 0.4, "2026-11-18T02:00:00+00:00"): LABELLED,  # scored the day of the call
        (3, 0.5, "2026-11-18T02:00:00+00:00"): PENDING,  # no outcome yet
    }
    outs = _outcomes([(1, "2026-11-18", 1), (2, "2026-11-18", 0), (4, "2026-11-18", 1)])
    joined = join_outcomes(_predictions(list(rows)), outs)
    assert dict(zip(joined.frame["probability"], joined.frame["status"], strict=True)) == {
        p: status for (_, p, _), status in rows.items()
    }
    labelled = joined.frame[joined.frame["status"] == LABELLED].set_index("client_id")
    assert labelled.loc["1", "probability"] == 0.3 and labelled.loc["1", "subscribed"] == 1
    assert joined.versions[("bank-marketing", "1")] == {"outcomes_unmatched": 1, "outcomes_reused": 0}
    assert joined.counts["outcomes_through"] == "2026-11-18"


def test_an_outcome_before_every_prediction_judges_none() -> None:
    joined = join_outcomes(
        _predictions([(1, 0.3, "2026-11-18T02:00:00+00:00")]), _outcomes([(1, "2026-11-17", 1)])
    )
    assert joined.frame["status"].tolist() == [PENDING]
    assert joined.versions[("bank-marketing", "1")]["outcomes_unmatched"] == 1


def test_a_prediction_is_judged_once_by_the_next_call() -> None:
    preds = _predictions([(1, 0.3, "2026-11-16T02:00:00+00:00")])
    joined = join_outcomes(preds, _outcomes([(1, "2026-11-20", 0), (1, "2026-11-17", 1)]))
    assert joined.frame["subscribed"].tolist() == [1]
    assert joined.frame["contact_date"].dt.strftime("%Y-%m-%d").tolist() == ["2026-11-17"]
    assert joined.versions[("bank-marketing", "1")]["outcomes_reused"] == 1


def test_repeats_are_dropped_keeping_the_last_copy() -> None:
    preds = _predictions([(1, 0.3, "2026-11-16T02:00:00+00:00"), (1, 0.35, "2026-11-16T02:00:00+00:00")])
    outs = _outcomes([(1, "2026-11-17", 0), (1, "2026-11-17", 1), (2, "2026-11-17", None)])
    joined = join_outcomes(preds, outs)
    assert joined.frame[["probability", "subscribed"]].values.tolist() == [[0.35, 1.0]]
    assert joined.counts["duplicate_predictions"] == 1
    assert joined.counts["duplicate_outcomes"] == 1
    assert joined.counts["outcomes_without_label"] == 1


def test_each_version_is_judged_on_its_own_predictions() -> None:
    preds = pd.concat(
        [
            _predictions([(1, 0.3, "2026-11-16T02:00:00+00:00")], version="1"),
            _predictions([(1, 0.6, "2026-11-17T02:00:00+00:00")], version="2"),
        ]
    )
    joined = join_outcomes(preds, _outcomes([(1, "2026-11-18", 1)]))
    assert joined.frame.set_index("model_version")["status"].to_dict() == {"1": LABELLED, "2": LABELLED}


def test_max_lag_makes_a_stale_prediction_unjudged() -> None:
    preds = _predictions([(1, 0.3, "2026-10-01T02:00:00+00:00")])
    outs = _outcomes([(1, "2026-11-17", 1)])
    assert join_outcomes(preds, outs).frame["status"].tolist() == [LABELLED]
    assert join_outcomes(preds, outs, max_lag_days=30).frame["status"].tolist() == [PENDING]


def test_ids_join_whatever_type_the_csv_reader_gave_them() -> None:
    preds = _predictions([(7, 0.3, "2026-11-16T02:00:00+00:00"), ("8", 0.4, "2026-11-16T02:00:00+00:00")])
    outs = _outcomes([(7.0, "2026-11-16", 1), (8, "2026-11-16", 0)])
    assert join_outcomes(preds, outs).frame["status"].tolist() == [LABELLED, LABELLED]


def test_bad_outcome_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="0/1"):
        join_outcomes(
            _predictions([(1, 0.3, "2026-11-16T02:00:00+00:00")]), _outcomes([(1, "2026-11-16", 2)])
        )
    with pytest.raises(ValueError, match="columns"):
        join_outcomes(_predictions([(1, 0.3, "2026-11-16T02:00:00+00:00")]), pd.DataFrame({"client_id": [1]}))


def test_periods_are_iso_weeks_days_or_months_of_scored_at() -> None:
    stamps = pd.Series(pd.to_datetime(["2026-12-31T23:00:00+00:00", "2027-01-04T01:00:00+00:00"], utc=True))
    assert period_labels(stamps, "week").tolist() == ["2026-W53", "2027-W01"]
    assert period_labels(stamps, "day").tolist() == ["2026-12-31", "2027-01-04"]
    assert period_labels(stamps, "month").tolist() == ["2026-12", "2027-01"]
    assert period_bounds("2026-W53", "week") == ("2026-12-28", "2027-01-03")
    assert period_bounds("2028-02", "month") == ("2028-02-01", "2028-02-29")
    with pytest.raises(ValueError, match="period"):
        period_labels(stamps, "year")


def test_coverage_rises_as_outcomes_arrive_over_several_days() -> None:
    """One week of predictions; each day's export holds the outcomes known so far, some late."""
    rng = np.random.default_rng(3)
    clients = np.arange(1, 601)
    days = pd.date_range("2026-11-16", periods=5, freq="D")
    scored = days[clients % 5]
    p = rng.beta(2, 8, len(clients))
    preds = _predictions(
        [(c, float(q), f"{d.date()}T02:00:00+00:00") for c, q, d in zip(clients, p, scored, strict=True)]
    )
    y = (rng.random(len(clients)) < p).astype(int)
    called = scored  # each client is called the day it is scored
    arrives = called + pd.to_timedelta(rng.integers(0, 6, len(clients)), unit="D")  # exported 0-5 days late
    config = QualityConfig(min_outcomes=50, min_positives=5, min_negatives=5, resamples=100)
    coverage, labelled = [], []
    for export_day in pd.date_range("2026-11-16", periods=11, freq="D"):
        known = arrives <= export_day
        outs = _outcomes(
            [(c, str(d.date()), int(v)) for c, d, v, k in zip(clients, called, y, known, strict=True) if k]
        )
        (record,) = quality(preds, outs, config)
        coverage.append(record["coverage"])
        labelled.append(record["counts"]["labelled"])
    assert coverage == sorted(coverage) and labelled == sorted(labelled)
    assert coverage[0] < 0.2 and coverage[-1] == 1.0 and labelled[-1] == 600
    assert record["status"] == OK and record["counts"]["pending"] == 0


# -------------------------------------------------------------------------------------- records


def _labelled_batch(rows: int, positives: int, seed: int = 0, scored_at: str = "2026-11-16T02:00:00+00:00"):
    rng = np.random.default_rng(seed)
    y = np.zeros(rows, dtype=int)
    y[rng.choice(rows, positives, replace=False)] = 1
    p = np.clip(rng.normal(0.2 + 0.3 * y, 0.15), 0, 1)
    preds = _predictions([(i, float(q), scored_at) for i, q in enumerate(p)])
    outs = _outcomes([(i, scored_at[:10], int(v)) for i, v in enumerate(y)])
    return preds, outs


def test_an_ok_record_has_every_metric_with_its_interval() -> None:
    preds, outs = _labelled_batch(600, 60)
    (record,) = quality(preds, outs, QualityConfig(resamples=200))
    assert record["status"] == OK and record["reasons"] == []
    assert record["period"] == "2026-W47" and record["period_start"] == "2026-11-16"
    counts = {"predictions": 600, "labelled": 600, "superseded": 0, "pending": 0, "positives": 60}
    assert record["counts"] == {**counts, "negatives": 540, "called": int(preds["decision"].sum())}
    assert record["coverage"] == 1.0 and record["base_rate"] == pytest.approx(0.1)
    y, p = outs["subscribed"].to_numpy(), preds["probability"].to_numpy()
    oracle = {**_oracle(y, p), "share_reached_top10": evaluate_share_reached(y, p, 0.1), "base_rate": 0.1}
    assert set(record["metrics"]) == {*oracle, "precision_at_decision"}
    for name, figure in record["metrics"].items():
        assert figure["low"] <= figure["value"] <= figure["high"], name
        if name in oracle:
            assert figure["value"] == pytest.approx(oracle[name], abs=1e-10), name
    json.dumps(record, allow_nan=False)


@pytest.mark.parametrize(
    ("rows", "positives", "status", "reasons"),
    [
        (150, 30, INSUFFICIENT, ["outcomes 150 < 200"]),
        (400, 12, INSUFFICIENT, ["positives 12 < 20"]),
        (100, 5, INSUFFICIENT, ["outcomes 100 < 200", "positives 5 < 20"]),
        (300, 0, ONE_CLASS, ["the 300 outcomes are all negatives", "positives 0 < 20"]),
        (300, 300, ONE_CLASS, ["the 300 outcomes are all positives", "negatives 0 < 20"]),
    ],
)
def test_a_period_with_too_few_outcomes_or_one_class_says_so(
    rows: int, positives: int, status: str, reasons: list[str]
) -> None:
    preds, outs = _labelled_batch(rows, positives)
    (record,) = quality(preds, outs)
    assert record["status"] == status and record["reasons"] == reasons
    assert record["metrics"] is None
    assert record["counts"]["positives"] == positives and record["base_rate"] == positives / rows
    json.dumps(record, allow_nan=False)


def test_a_period_without_outcomes_is_insufficient_with_zero_coverage() -> None:
    preds, _ = _labelled_batch(300, 30)
    (record,) = quality(preds, _outcomes([]))
    assert record["status"] == INSUFFICIENT and record["coverage"] == 0.0 and record["base_rate"] is None


def test_records_per_version_and_period_are_reproducible_and_independent() -> None:
    week1 = _labelled_batch(400, 40, seed=1, scored_at="2026-11-16T02:00:00+00:00")
    week2 = _labelled_batch(400, 40, seed=2, scored_at="2026-11-23T02:00:00+00:00")
    week2[0]["client_id"] += 1000
    week2[1]["client_id"] += 1000
    preds, outs = pd.concat([week1[0], week2[0]]), pd.concat([week1[1], week2[1]])
    config = QualityConfig(resamples=100)
    records = quality(preds, outs, config)
    assert [r["period"] for r in records] == ["2026-W47", "2026-W48"]
    assert quality(preds, outs, config) == records
    assert quality(*week1, config)[0]["metrics"] == records[0]["metrics"]  # same interval alone
    documents = quality_module.period_documents(records)
    assert set(documents) == {("bank-marketing", "2026-W47"), ("bank-marketing", "2026-W48")}
    assert documents[("bank-marketing", "2026-W47")]["versions"]["1"] == records[0]


def test_the_config_is_checked() -> None:
    with pytest.raises(ValueError, match="period"):
        QualityConfig(period="quarter")
    with pytest.raises(ValueError, match="confidence"):
        QualityConfig(confidence=1.0)
    preds, outs = _labelled_batch(10, 2)
    with pytest.raises(ValueError, match="joined by week"):
        quality_module.quality_records(join_outcomes(preds, outs), QualityConfig(period="day"))
    assert QualityConfig(top_fraction=0.05).top_name == "share_reached_top5"
