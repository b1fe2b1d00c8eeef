"""The demo's last line: the batch's drift verdict, from reports of this version and of older ones."""

from __future__ import annotations

from devstack.demo_report import drift_verdict


def test_the_verdict_names_the_status_the_dataset_and_the_features() -> None:
    report = {"status": "warn", "drifted": False, "drift_share": 0.0625, "drifted_features": ["age"]}
    assert drift_verdict(report) == "drift warn (dataset not drifted: 6% of features drifted); drifted: age"
    calm = {"status": "ok", "drifted": False, "drift_share": 0.0, "drifted_features": []}
    assert drift_verdict(calm) == "drift ok (dataset not drifted: 0% of features drifted)"
    moved = {"status": "alert", "drifted": True, "drift_share": 0.5, "drifted_features": ["age", "job"]}
    assert drift_verdict(moved) == "drift alert (dataset drifted: 50% of features drifted); drifted: age, job"


def test_a_report_written_before_the_dataset_verdict_still_reads() -> None:
    assert drift_verdict({"status": "alert", "drifted": ["balance"]}) == "drift alert; drifted: balance"
    assert drift_verdict({"status": "ok", "drifted": []}) == "drift ok"
