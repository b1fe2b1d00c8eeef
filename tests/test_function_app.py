"""The real function objects of function_app.py, driven with real binding objects against Azurite."""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.functions.timer import TimerRequest

from devstack import runner
from functions.settings import get_settings
from tests.conftest import sqlite_odbc

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def app_env(tmp_path: Path, azurite, blob_service) -> Iterator[dict[str, str]]:
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE clients (client_id INTEGER PRIMARY KEY, age INTEGER, job TEXT)")
        conn.executemany(
            "INSERT INTO clients VALUES (?, ?, ?)", [(i, 20 + i % 50, "admin.") for i in range(1, 301)]
        )
        conn.execute(
            "CREATE TABLE campaign_outcomes "
            "(client_id INTEGER PRIMARY KEY, contact_date DATE, subscribed INT)"
        )
        conn.executemany(
            "INSERT INTO campaign_outcomes VALUES (?, ?, ?)",
            [(i, "2008-05-05", i % 2) for i in range(1, 301)],
        )
    for name in ("exports", "scoring-input"):
        container = blob_service.get_container_client(name)
        if container.exists():
            container.delete_container()
    env = {
        "DataLake": azurite.connection_string,
        "DB_CONNECTION_STRING": sqlite_odbc(db),
        "EXPORT_TABLES": "clients,campaign_outcomes:contact_date",
        "EXPORT_PUBLISH_TABLES": "clients",
        "EXPORT_SCHEDULE": "0 0 2 * * *",
        "MONITOR_SCHEDULE": "0 30 3 * * *",
        "RETRAIN_SCHEDULE": "0 0 4 * * 1",
        "ROLLBACK_SCHEDULE": "0 */5 * * * *",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in ("SCORING_BLOB_SOURCE", "SCORING_QUEUE", "MODEL_STAGE"):
            patch.delenv(name, raising=False)  # the defaults are what the metadata test checks
        for key, value in env.items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        yield env
    get_settings.cache_clear()


def _names(blob_service, container: str) -> list[str]:
    return sorted(b.name for b in blob_service.get_container_client(container).list_blobs())


def test_binding_metadata(app_env):
    from functions import function_app

    triggers = {
        f.get_function_name(): f.get_trigger().get_dict_repr() for f in runner.index(function_app.app)
    }
    assert sorted(triggers) == [
        "daily_export", "health", "monitor", "ready", "retrain", "rollback_check", "schema", "score",
        "score_blob", "score_shard",
    ]  # fmt: skip
    http_functions = {"score": ("POST", "function"), "health": ("GET", "anonymous"),
                      "ready": ("GET", "anonymous"), "schema": ("GET", "function")}  # fmt: skip
    for name, (method, auth) in http_functions.items():
        http = triggers[name]
        assert http["type"] == "httpTrigger" and http["route"] == name
        assert [m.value for m in http["methods"]] == [method] and http["authLevel"].value == auth
    check = triggers["rollback_check"]
    assert check["type"] == "timerTrigger" and check["schedule"] == "%ROLLBACK_SCHEDULE%"
    timer = triggers["daily_export"]
    assert timer["type"] == "timerTrigger" and timer["schedule"] == "%EXPORT_SCHEDULE%"
    assert timer["runOnStartup"] is False and timer["useMonitor"] is True
    monitor = triggers["monitor"]
    assert monitor["type"] == "timerTrigger" and monitor["schedule"] == "%MONITOR_SCHEDULE%"
    assert monitor["runOnStartup"] is False and monitor["useMonitor"] is True
    retrain = triggers["retrain"]
    assert retrain["type"] == "timerTrigger" and retrain["schedule"] == "%RETRAIN_SCHEDULE%"
    assert retrain["runOnStartup"] is False and retrain["useMonitor"] is True
    blob = triggers["score_blob"]
    assert blob["type"] == "blobTrigger" and blob["path"] == "scoring-input/{name}.csv"
    assert blob["connection"] == "DataLake" and blob["source"] == "EventGrid"  # the default: Flex needs it
    queue = triggers["score_shard"]
    assert queue["type"] == "queueTrigger" and queue["queueName"] == "scoring-shards"
    assert queue["connection"] == "DataLake"


def test_timer_function_exports_and_publishes(app_env, blob_service, caplog):
    from functions import function_app

    user_function = function_app.daily_export.build().get_user_function()
    with caplog.at_level(logging.INFO):
        user_function(TimerRequest(past_due=True))
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert _names(blob_service, "exports") == [
        f"campaign_outcomes/{today}/_manifest.json",
        f"campaign_outcomes/{today}/campaign_outcomes.csv",
        f"clients/{today}/_manifest.json",
        f"clients/{today}/clients.csv",
    ]
    assert _names(blob_service, "scoring-input") == [f"clients-{today}.csv"]
    assert any("past due" in r.message for r in caplog.records)
    exported = {r.table: r for r in caplog.records if getattr(r, "event", None) == "export_table"}
    assert sorted(exported) == ["campaign_outcomes", "clients"]
    assert exported["clients"].status == "ok" and exported["clients"].rows == "300"

    user_function(TimerRequest())  # the host may deliver twice: same blobs, nothing new to score
    assert len(_names(blob_service, "exports")) == 4 and len(_names(blob_service, "scoring-input")) == 1


def test_timer_function_fails_the_invocation_when_a_table_fails(app_env, blob_service, monkeypatch, caplog):
    monkeypatch.setenv("EXPORT_TABLES", "ghost,clients")
    monkeypatch.setenv("EXPORT_PUBLISH_TABLES", "")
    get_settings.cache_clear()
    from functions import function_app

    with pytest.raises(RuntimeError, match="ghost: PermanentError: table ghost does not exist"):
        function_app.daily_export.build().get_user_function()(TimerRequest())
    failed = [r for r in caplog.records if getattr(r, "event", None) == "export_table" and r.table == "ghost"]
    assert len(failed) == 1 and failed[0].status == "failed" and "does not exist" in failed[0].error
    assert [n.split("/")[0] for n in _names(blob_service, "exports")] == ["clients", "clients"]


def test_monitor_timer_writes_quality_and_the_dashboard(app_env, blob_service, caplog):
    from functions import function_app
    from lake.paths import dashboard_path

    model = get_settings().model_name
    user_function = function_app.monitor.build().get_user_function()
    with caplog.at_level(logging.INFO):
        user_function(TimerRequest(past_due=True))
    assert any("monitor is running late" in r.message for r in caplog.records)
    run = [r for r in caplog.records if getattr(r, "event", None) == "monitor_run"]
    assert len(run) == 1 and run[0].model_name == model and run[0].dashboard == dashboard_path(model)
    page = blob_service.get_blob_client("monitoring", dashboard_path(model)).download_blob()
    assert page.properties.content_settings.content_type.startswith("text/html")
    assert b"<html" in page.readall()


def test_app_refuses_to_start_without_settings():
    env = {k: v for k, v in os.environ.items() if k not in {"DataLake", "DB_CONNECTION_STRING"}}
    env["DataLake"] = "UseDevelopmentStorage=true"
    completed = subprocess.run(
        [sys.executable, "-c", "import functions.function_app"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode != 0
    assert "SettingsError: setting DB_CONNECTION_STRING is missing" in completed.stderr


def test_runner_resolves_bindings_and_fires_on_schedule(app_env, blob_service, monkeypatch):
    monkeypatch.setenv("EXPORT_SCHEDULE", "*/30 * * * * *")
    from functions import function_app

    (hosted,) = [f for f in runner.discover(function_app.app) if f.name == "daily_export"]
    assert hosted.binding["schedule"] == "*/30 * * * * *" and hosted.trigger_type == "timerTrigger"

    clock = [dt.datetime(2026, 11, 22, 1, 59, 50, tzinfo=dt.UTC)]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += dt.timedelta(seconds=seconds)

    assert runner.run_on_schedule([hosted], now=lambda: clock[0], sleep=sleep, max_runs=2) == 2
    assert slept == [10.0, 30.0]  # 02:00:00, then 02:00:30
    assert hosted.last_fired == dt.datetime(2026, 11, 22, 2, 0, 30, tzinfo=dt.UTC)
    assert len(_names(blob_service, "exports")) == 4


def test_runner_polls_between_timers(app_env):
    from functions import function_app

    timers = [f for f in runner.discover(function_app.app) if f.trigger_type == "timerTrigger"]
    clock = [dt.datetime(2026, 11, 22, 1, 59, 50, tzinfo=dt.UTC)]
    polls: list[dt.datetime] = []

    def sleep(seconds: float) -> None:
        clock[0] += dt.timedelta(seconds=seconds)

    runner.run_on_schedule(timers, now=lambda: clock[0], sleep=sleep, max_runs=1,
                           poll=lambda: polls.append(clock[0]), poll_every_s=4)  # fmt: skip
    assert polls[:3] == [dt.datetime(2026, 11, 22, 1, 59, 50 + s, tzinfo=dt.UTC) for s in (0, 4, 8)]


def test_runner_reports_unset_binding_setting(app_env, monkeypatch):
    monkeypatch.delenv("EXPORT_SCHEDULE")
    from functions import function_app

    with pytest.raises(runner.HostError, match="%EXPORT_SCHEDULE%"):
        runner.discover(function_app.app)
