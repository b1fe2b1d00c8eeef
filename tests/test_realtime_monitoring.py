"""The monitor reads the HTTP function's request log: its answers join with outcomes like batch
predictions, and each day's traffic becomes a drift report of the batch path's own kind."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pandas as pd
import pytest

from functions.monitor.job import run_monitor
from functions.settings import load_settings
from lake.contract import EXPORTS_CONTAINER, MONITORING_CONTAINER
from lake.paths import drift_path, export_csv_path, export_manifest_path, quality_path
from tests.realtime_support import app_stack, records

pytestmark = pytest.mark.integration


def test_http_answers_are_joined_with_outcomes_and_drift_is_reported(azurite, blob_service, models) -> None:  # type: ignore[no-untyped-def]
    table = f"outcomes_{uuid.uuid4().hex[:8]}"
    with app_stack(
        azurite.connection_string,
        blob_service,
        models,
        MONITOR_OUTCOMES_TABLE=table,
        EXPORT_TABLES=f"clients,{table}:contact_date",
        MONITOR_PERIOD="day",
    ) as stack:
        for i in range(60):
            assert stack.score({"records": records(models, 10, first=i * 10)})[0] == 200
        assert stack.score({"records": records(models, 5, with_ids=False)})[0] == 200  # not joinable
        shadow_free = stack.service().log.flush()
        assert shadow_free == 61
        today = dt.datetime.now(dt.UTC)
        labels = (models.gate["y"].iloc[:600] == "yes").astype(int).to_numpy()
        outcomes = pd.DataFrame(
            {"client_id": range(1, 601), "contact_date": today.date().isoformat(), "subscribed": labels}
        )
        exports = blob_service.get_container_client(EXPORTS_CONTAINER)
        if not exports.exists():
            exports.create_container()
        exports.upload_blob(
            export_csv_path(table, today.date()), outcomes.to_csv(index=False), overwrite=True
        )
        exports.upload_blob(export_manifest_path(table, today.date()), b'{"rows": 600}', overwrite=True)
        report = run_monitor(load_settings(stack.env), now=today + dt.timedelta(minutes=1))
    assert report.predictions == 600
    assert any("without client_id" in reason for reason in report.skipped)
    monitoring = blob_service.get_container_client(MONITORING_CONTAINER)
    quality = json.loads(
        monitoring.download_blob(quality_path(stack.name, today.date().isoformat())).readall()
    )
    record = quality["versions"][stack.good]
    counts = record["counts"]
    assert (
        counts["predictions"] == 600
        and counts["labelled"] == 600
        and counts["positives"] == int(labels.sum())
    )
    from sklearn.metrics import roc_auc_score

    probabilities = []
    for i in range(60):
        batch, _ = stack.registry.load(stack.name, stack.good).predict(
            pd.DataFrame(records(models, 10, first=i * 10))
        )
        probabilities.extend(batch["probability"])
    assert record["status"] == "ok", record["reasons"]
    realised = record["metrics"]["roc_auc"]
    realised = realised["value"] if isinstance(realised, dict) else realised
    assert realised == pytest.approx(roc_auc_score(labels, probabilities), abs=1e-6)
    drift = json.loads(
        monitoring.download_blob(
            drift_path(stack.name, today.date().isoformat(), f"http-v{stack.good}")
        ).readall()
    )
    assert drift["rows"] == 605 and drift["input"]["http"] is True and "features" in drift
    assert report.http_drift == [drift_path(stack.name, today.date().isoformat(), f"http-v{stack.good}")]
    assert report.batches >= 1  # the day's HTTP traffic counts as one batch of the drift streak
