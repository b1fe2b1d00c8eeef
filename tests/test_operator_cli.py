"""The operator commands the runbook and the delivery pipeline use: `python -m functions retrain`
(one retrain through the app's runner, with the app's own settings) and `python -m functions poison`
(list, re-drive and clear what the host parked)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueServiceClient

from functions import cli
from functions.retrain import request as request_module
from functions.retrain.manual import MANUAL, app_settings_env
from lake.contract import (
    BLOB_TRIGGER_POISON_QUEUE,
    PREDICTIONS_CONTAINER,
    SCORING_INPUT_CONTAINER,
    SCORING_SHARDS_QUEUE,
    poison_queue,
)
from lake.paths import OutputPaths
from tests.scoring_support import bank_csv, scoring_env, unique
from tests.support import loopback_server
from tests.test_retrain_azureml import WS, _Recorder

APP_SETTINGS = [  # as `az functionapp config appsettings list -o json` prints them
    {
        "name": "DataLake__blobServiceUri",
        "value": "https://stlakedev01.blob.core.windows.net",
        "slotSetting": False,
    },
    {
        "name": "DataLake__queueServiceUri",
        "value": "https://stlakedev01.queue.core.windows.net",
        "slotSetting": False,
    },
    {"name": "DataLake__credential", "value": "managedidentity", "slotSetting": False},
    {"name": "DataLake__clientId", "value": "11111111-2222-3333-4444-555555555555", "slotSetting": False},
    {
        "name": "DB_CONNECTION_STRING",
        "value": "@Microsoft.KeyVault(SecretUri=https://kv/secrets/db)",
        "slotSetting": False,
    },
    {"name": "RETRAIN_RUNNER", "value": "azureml", "slotSetting": False},
    {"name": "RETRAIN_WORKSPACE", "value": WS.path, "slotSetting": False},
    {"name": "RETRAIN_PROMOTE", "value": "dev,preprod", "slotSetting": False},
]


def test_the_app_settings_file_is_read_without_the_apps_identity(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(APP_SETTINGS))
    env = app_settings_env(path)
    assert env["RETRAIN_RUNNER"] == "azureml" and "DataLake__clientId" not in env
    assert "DataLake__credential" not in env  # the runner's own login (DefaultAzureCredential) is used
    path.write_text("[1, 2")
    with pytest.raises(Exception, match="app settings file"):
        app_settings_env(path)


def test_retrain_submits_the_apps_job_with_the_runners_token(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """The PUT the app itself would send, with the manual rule, the stages asked for and the
    runner's bearer token; the export day given, so no listing of `exports` is needed."""
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(APP_SETTINGS))
    handler = type(
        "Handler", (_Recorder,), {"seen": [], "answer": (201, {"properties": {"status": "Starting"}})}
    )
    original = request_module.submit_azureml
    with loopback_server(handler) as base:

        def submit(*args: Any) -> dict[str, Any]:
            return original(*args, base_url=base)

        monkeypatch.setattr(request_module, "submit_azureml", submit)
        monkeypatch.setattr("functions.retrain.manual._cli_token", lambda: "runner-token")
        code = cli.main(
            [
                "retrain",
                "--app-settings",
                str(path),
                "--export-day",
                "2026-11-30",
                "--promote",
                "dev",
                "--reason",
                "release 1.4",
                "--by",
                "ci",
            ]
        )
    assert code == 0, capsys.readouterr().out
    (seen,) = handler.seen
    assert seen["headers"]["Authorization"] == "Bearer runner-token"
    properties = seen["body"]["properties"]
    assert properties["tags"]["rules"] == MANUAL
    assert properties["inputs"]["promote"]["value"] == "dev"  # --promote wins over RETRAIN_PROMOTE
    assert "2026-11-30" in json.dumps(properties["inputs"])
    assert "Starting" in capsys.readouterr().out


def test_retrain_refuses_an_app_whose_runner_is_off(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "settings.json"
    path.write_text(json.dumps([*APP_SETTINGS[:5], {"name": "RETRAIN_RUNNER", "value": "off"}]))
    assert cli.main(["retrain", "--app-settings", str(path)]) == 2
    assert "RETRAIN_RUNNER is off" in capsys.readouterr().out


@pytest.mark.integration
def test_poison_list_redrive_and_clear(azurite, blob_service, served, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from functions.settings import get_settings

    for key, value in scoring_env(azurite.connection_string).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    name = unique("poisoned")
    container = blob_service.get_container_client(SCORING_INPUT_CONTAINER)
    if not container.exists():
        container.create_container()
    blob = container.upload_blob(f"{name}.csv", bank_csv(20))
    queues = QueueServiceClient.from_connection_string(azurite.connection_string)
    blob_poison = queues.get_queue_client(BLOB_TRIGGER_POISON_QUEUE)
    shard_poison = queues.get_queue_client(poison_queue(SCORING_SHARDS_QUEUE))
    for queue in (blob_poison, shard_poison, queues.get_queue_client(SCORING_SHARDS_QUEUE)):
        if queue.queue_name not in {q.name for q in queues.list_queues()}:
            queue.create_queue()
        queue.clear_messages()
    parked = {
        "FunctionId": "score_blob",
        "BlobType": "BlockBlob",
        "ContainerName": SCORING_INPUT_CONTAINER,
        "BlobName": f"{name}.csv",
        "ETag": blob.get_blob_properties().etag,
    }
    blob_poison.send_message(base64.b64encode(json.dumps(parked).encode()).decode())  # the host's Base64
    shard_poison.send_message(json.dumps({"input": f"{name}.csv", "shard": 3}))  # or plain JSON

    assert cli.main(["poison", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"scoring-input/{name}.csv" in listed and "shard=3" in listed and "2 parked message(s)" in listed

    assert cli.main(["poison", "redrive"]) == 0
    out = capsys.readouterr().out
    assert (
        f"re-driven: {BLOB_TRIGGER_POISON_QUEUE}" in out
        and "-> scored" in out
        and "back on scoring-shards" in out
    )
    version = served
    manifest = blob_service.get_blob_client(PREDICTIONS_CONTAINER, OutputPaths(name, version).manifest)
    assert manifest.exists()
    assert not list(blob_poison.peek_messages()) and not list(shard_poison.peek_messages())
    (requeued,) = queues.get_queue_client(SCORING_SHARDS_QUEUE).peek_messages()
    assert json.loads(base64.b64decode(requeued.content)) == {"input": f"{name}.csv", "shard": 3}

    shard_poison.send_message("not json at all")
    assert cli.main(["poison", "clear", "--queue", poison_queue(SCORING_SHARDS_QUEUE)]) == 2  # no --yes
    assert cli.main(["poison", "clear", "--queue", poison_queue(SCORING_SHARDS_QUEUE), "--yes"]) == 0
    assert "removed 1 message(s)" in capsys.readouterr().out
    queues.get_queue_client(SCORING_SHARDS_QUEUE).clear_messages()
    get_settings.cache_clear()
