"""The loop closing by itself in the local stack: a fired verdict runs the retrain as a subprocess.

Azurite holds a `clients` export and an outcomes export; dev serves a model fitted on shuffled
labels. The monitor, run as the RETRAIN_SCHEDULE timer runs it, records the `schedule` rule, the
local runner gathers the exports and runs `python -m model --registry blob retrain` in a child
process, which registers the challenger and promotes it to dev through the gate. A second run the
same day does not retrain again.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pandas as pd
import pytest

from functions.monitor.job import run_monitor
from functions.retrain.azureml import CLIENTS_TABLE
from functions.settings import load_settings
from lake.contract import EXPORTS_CONTAINER, MODELS_CONTAINER, MONITORING_CONTAINER
from lake.paths import export_csv_path, export_manifest_path, retrain_verdict_path
from model.registry import BlobStore, Registry
from tests.model_fixtures import BANK
from tests.scoring_support import scoring_env, serve_model

pytestmark = pytest.mark.integration
ROWS = (20_000, 24_000)  # July 2008 onwards: `contact` known, ~6 % subscribed
DAY = dt.date(2026, 3, 2)


def _export(service, table: str, frame: pd.DataFrame, day: dt.date) -> None:  # type: ignore[no-untyped-def]
    exports = service.get_container_client(EXPORTS_CONTAINER)
    if not exports.exists():
        exports.create_container()
    exports.upload_blob(export_csv_path(table, day), frame.to_csv(index=False).encode(), overwrite=True)
    exports.upload_blob(export_manifest_path(table, day), b'{"rows": %d}' % len(frame), overwrite=True)


def _world(azurite, blob_service, models, **overrides: str):  # type: ignore[no-untyped-def]
    name = f"retrained-{uuid.uuid4().hex[:8]}"
    table = f"outcomes_{uuid.uuid4().hex[:8]}"
    bank = pd.read_csv(BANK, sep=";").iloc[ROWS[0] : ROWS[1]].reset_index(drop=True)
    bank.insert(0, "client_id", range(1, len(bank) + 1))
    dates = pd.date_range("2025-07-01", periods=len(bank), freq="37min").date
    outcomes = pd.DataFrame(
        {
            "client_id": bank["client_id"],
            "contact_date": dates,
            "subscribed": (bank["y"] == "yes").astype(int),
        }
    )
    _export(blob_service, CLIENTS_TABLE, bank.drop(columns=["y", "duration"]), DAY)
    half = len(outcomes) // 2  # outcomes exported incrementally over two days
    _export(blob_service, table, outcomes.iloc[:half], DAY - dt.timedelta(days=1))
    _export(blob_service, table, outcomes.iloc[half:], DAY)
    serve_model(blob_service, models.bad, name)
    env = scoring_env(
        azurite.connection_string,
        MODEL_NAME=name,
        MONITOR_OUTCOMES_TABLE=table,
        **({"RETRAIN_RUNNER": "local"} | overrides),
    )
    return name, load_settings(env)


def test_a_scheduled_retrain_runs_locally_and_promotes_a_better_model_once(azurite, blob_service, models):
    name, settings = _world(azurite, blob_service, models)
    now = dt.datetime.combine(DAY, dt.time(4), dt.UTC)
    report = run_monitor(settings, now=now, service=blob_service, scheduled=True)

    verdict = report.retrain
    assert verdict is not None and verdict["fired"] == ["schedule"]
    submission = verdict["submission"]
    assert submission["status"] == "succeeded", submission
    assert submission["runner"] == "local" and submission["outcomes"] == ROWS[1] - ROWS[0]
    assert submission["decisions"] == [{"stage": "dev", "decision": "promoted", "reason": None}]
    registry = Registry(BlobStore(blob_service.get_container_client(MODELS_CONTAINER)))
    version = submission["version"]
    assert registry.resolve(name, "dev") == version == "2"
    metadata = registry.show(name, version)
    assert metadata["training_data"]["rows"] == ROWS[1] - ROWS[0]  # both days of outcomes joined
    assert metadata["retrain"]["trigger"]["fired"] == ["schedule"]
    logged = registry.decisions.read(name)[-1]
    assert logged["kind"] == "promote" and logged["actor"] == "monitor"
    assert logged["gate"]["comparison"]["passed"] and logged["evidence"]["trigger"]["fired"] == ["schedule"]
    stored = blob_service.get_blob_client(MONITORING_CONTAINER, retrain_verdict_path(name, DAY.isoformat()))
    assert json.loads(stored.download_blob().readall())["submission"]["version"] == version

    again = run_monitor(settings, now=now + dt.timedelta(hours=1), service=blob_service, scheduled=True)
    assert again.retrain["submission"]["repeat"] is True
    assert [v.version for v in registry.versions(name)] == ["1", "2"]  # no second retrain that day


def test_with_the_runner_off_the_verdict_is_only_recorded(azurite, blob_service, models):
    name, settings = _world(azurite, blob_service, models, RETRAIN_RUNNER="off")
    report = run_monitor(
        settings, now=dt.datetime.combine(DAY, dt.time(4), dt.UTC), service=blob_service, scheduled=True
    )
    assert report.retrain["submission"] == {
        "runner": "off",
        "status": "not_submitted",
        "why": "RETRAIN_RUNNER=off",
    }
    registry = Registry(BlobStore(blob_service.get_container_client(MODELS_CONTAINER)))
    assert [v.version for v in registry.versions(name)] == ["1"]


def test_a_failing_retrain_is_recorded_as_failed_with_the_childs_message(azurite, blob_service, models):
    _, settings = _world(azurite, blob_service, models)
    exports = blob_service.get_container_client(EXPORTS_CONTAINER)
    broken = pd.DataFrame({"client_id": [1, 2], "age": ["x", "y"]})  # not the clients schema
    exports.upload_blob(
        export_csv_path(CLIENTS_TABLE, DAY), broken.to_csv(index=False).encode(), overwrite=True
    )
    report = run_monitor(
        settings, now=dt.datetime.combine(DAY, dt.time(4), dt.UTC), service=blob_service, scheduled=True
    )
    submission = report.retrain["submission"]
    assert submission["status"] == "failed" and "exit 2" in submission["why"]
    assert "error:" in submission["why"]
