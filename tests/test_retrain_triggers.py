"""The retraining rules (model/monitoring/triggers.py) on constructed monitoring histories."""

from __future__ import annotations

import pytest

from model.monitoring.triggers import RetrainPolicy, evaluate

VERSION = "3"


def _record(
    period: str, auc: float, high: float, labelled: int = 800, gap: bool = False, status: str = "ok"
) -> dict:
    return {
        "period": period,
        "status": status,
        "counts": {"labelled": labelled},
        "metrics": {"roc_auc": {"value": auc, "low": auc - 0.03, "high": high}} if status == "ok" else None,
        "baseline": {"roc_auc": 0.70},
        "estimate_vs_realised": {"gap_outside_interval": gap},
    }


def _documents(*records: dict, version: str = VERSION) -> list[dict]:
    return [{"period": r["period"], "versions": {version: r}} for r in records]


def test_a_healthy_history_fires_nothing() -> None:
    docs = _documents(_record("2026-W45", 0.71, 0.74), _record("2026-W46", 0.69, 0.72))
    verdict = evaluate(docs, VERSION, drift_streak=1)
    assert not verdict.retrain and verdict.fired == ()
    assert verdict.evidence["quality_drop"]["period"] == "2026-W46"


def test_quality_drop_needs_the_tolerance_the_interval_and_enough_outcomes() -> None:
    dropped = _record("2026-W46", 0.60, 0.66)
    assert evaluate(_documents(dropped), VERSION, 0).fired == ("quality_drop",)
    evidence = evaluate(_documents(dropped), VERSION, 0).evidence["quality_drop"]
    assert (evidence["roc_auc"], evidence["baseline_roc_auc"], evidence["labelled"]) == (0.60, 0.70, 800)
    noisy = _record("2026-W46", 0.60, 0.71)  # under by the tolerance, but the interval reaches the baseline
    assert evaluate(_documents(noisy), VERSION, 0).fired == ()
    small = _record("2026-W46", 0.50, 0.55, labelled=120)  # too few outcomes to count...
    older = _record("2026-W45", 0.71, 0.74)  # ...so the newest period with enough decides
    assert evaluate(_documents(older, small), VERSION, 0).fired == ()
    within = _record("2026-W46", 0.66, 0.69)  # 0.04 under: within the tolerance
    assert evaluate(_documents(within), VERSION, 0).fired == ()
    assert evaluate(_documents(within), VERSION, 0, RetrainPolicy(quality_tolerance=0.03)).fired == (
        "quality_drop",
    )


def test_estimate_gap_needs_consecutive_measured_periods() -> None:
    one = _documents(_record("2026-W45", 0.7, 0.73), _record("2026-W46", 0.7, 0.73, gap=True))
    assert evaluate(one, VERSION, 0).fired == ()
    two = _documents(_record("2026-W45", 0.7, 0.73, gap=True), _record("2026-W46", 0.7, 0.73, gap=True))
    verdict = evaluate(two, VERSION, 0)
    assert verdict.fired == ("estimate_gap",)
    assert verdict.evidence["estimate_gap"]["periods"] == ["2026-W45", "2026-W46"]
    # an insufficient period in between does not break the run: only measured periods count
    between = _documents(
        _record("2026-W44", 0.7, 0.73, gap=True),
        _record("2026-W45", 0.7, 0.73, labelled=50, status="insufficient"),
        _record("2026-W46", 0.7, 0.73, gap=True),
    )
    assert evaluate(between, VERSION, 0).fired == ("estimate_gap",)


def test_drift_persistence_and_schedule() -> None:
    docs = _documents(_record("2026-W46", 0.7, 0.73))
    assert evaluate(docs, VERSION, drift_streak=2).fired == ()
    assert evaluate(docs, VERSION, drift_streak=3).fired == ("drift_persistence",)
    assert evaluate(docs, VERSION, drift_streak=0, scheduled=True).fired == ("schedule",)
    both = evaluate(docs, VERSION, drift_streak=5, scheduled=True)
    assert both.retrain and both.fired == ("drift_persistence", "schedule")
    assert both.to_dict()["evidence"]["drift_persistence"] == {"fired": True, "streak": 5, "needed": 3}


def test_only_the_serving_versions_records_count() -> None:
    docs = _documents(_record("2026-W46", 0.50, 0.55), version="2")  # an old version did badly
    verdict = evaluate(docs, VERSION, 0)
    assert verdict.fired == () and "no measured period" in verdict.evidence["quality_drop"]["why"]


@pytest.mark.parametrize(
    "changes", [{"quality_tolerance": 0}, {"quality_tolerance": 0.5}, {"min_outcomes": 0}, {"gap_periods": 0}]
)
def test_policy_bounds(changes: dict) -> None:
    with pytest.raises(ValueError):
        RetrainPolicy(**changes)
