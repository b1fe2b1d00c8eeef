"""The scoring functions of function_app.py, invoked as the host invokes them, against Azurite.

The blob function gets its `blob.BlobClient` from the real SDK-type converter of
azurefunctions-extensions-bindings-blob, the queue function a real `QueueMessage`; the local host
delivers each blob version once (receipts), retries, and parks what keeps failing in poison queues.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobClient
from azure.storage.queue import QueueServiceClient

from devstack import runner
from devstack.demo_data import load_demo_database, sqlite_connection_string
from devstack.triggers import TriggerHost, blob_client_argument, queue_client
from functions.blob_io import ensure_container
from functions.settings import get_settings
from lake.contract import BLOB_TRIGGER_POISON_QUEUE, PREDICTIONS_CONTAINER
from lake.paths import OutputPaths
from tests.scoring_support import bank_csv, serve_model, unique

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database (bank-shaped clients and outcomes), 3,000 clients, loaded through ODBC."""
    path = tmp_path_factory.mktemp("shop") / "shop.db"
    load_demo_database(sqlite_connection_string(path), limit=3000)
    return path


@pytest.fixture
def app(azurite, blob_service, models, shop: Path) -> Iterator:  # type: ignore[type-arg]
    """function_app with settings for this test; the model served at dev; the shard queue empty."""
    version = serve_model(blob_service, models.good)
    queues = QueueServiceClient.from_connection_string(azurite.connection_string)
    for queue in ("scoring-shards", BLOB_TRIGGER_POISON_QUEUE):
        with contextlib.suppress(ResourceNotFoundError):
            queues.get_queue_client(queue).clear_messages()
    env = {
        "DataLake": azurite.connection_string,
        "DB_CONNECTION_STRING": sqlite_connection_string(shop),
        "EXPORT_TABLES": "clients,campaign_outcomes:contact_date",
        "EXPORT_PUBLISH_TABLES": "clients",
        "EXPORT_SCHEDULE": "0 0 2 * * *",
        "MONITOR_SCHEDULE": "0 30 3 * * *",
        "RETRAIN_SCHEDULE": "0 0 4 * * 1",
        "ROLLBACK_SCHEDULE": "0 */5 * * * *",
        "MODEL_STAGE": "dev",
        "SCORING_FANOUT_BYTES": "64KiB",  # the 3,000 published clients (~250 KB) fan out
        "SCORING_SHARD_BYTES": "32KiB",
        "SCORING_CHUNK_ROWS": "200",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in ("SCORING_BLOB_SOURCE", "SCORING_QUEUE"):
            patch.delenv(name, raising=False)
        for key, value in env.items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        from functions import function_app  # validates the settings on first import

        function_app.scoring.cache_clear()
        function_app.version = version  # type: ignore[attr-defined]
        yield function_app
    get_settings.cache_clear()
    function_app.scoring.cache_clear()


@pytest.fixture
def host(azurite, blob_service) -> TriggerHost:
    return TriggerHost(blob_service, QueueServiceClient.from_connection_string(azurite.connection_string))


def _upload(blob_service, name: str, data: bytes) -> BlobClient:
    ensure_container(blob_service.get_container_client("scoring-input"))
    client = blob_service.get_blob_client("scoring-input", f"{name}.csv")
    client.upload_blob(data, overwrite=True)
    return client


def test_blob_function_with_the_sdk_type_binding(app, blob_service) -> None:
    name = unique("sdk")
    _upload(blob_service, name, bank_csv(120))
    argument = blob_client_argument("DataLake", "scoring-input", f"{name}.csv")
    assert type(argument) is BlobClient  # what the worker passes: the SDK's client, not the bytes
    app.score_blob.build().get_user_function()(argument)
    assert names_under_predictions(blob_service, name) == ["_manifest.json", "predictions.csv"]


def names_under_predictions(blob_service, name: str) -> list[str]:
    container = blob_service.get_container_client(PREDICTIONS_CONTAINER)
    return sorted(b.name.rsplit("/", 1)[-1] for b in container.list_blobs(name_starts_with=f"{name}/"))


def test_queue_function_with_real_messages_assembles_a_fanned_out_file(app, blob_service) -> None:
    from azure.functions.queue import QueueMessage

    name = unique("queued")
    _upload(blob_service, name, bank_csv(3000))
    app.score_blob.build().get_user_function()(
        blob_client_argument("DataLake", "scoring-input", f"{name}.csv")
    )
    queue = app.scoring().queue
    messages = list(queue.receive_messages(max_messages=32))
    assert len(messages) >= 3
    shard = app.score_shard.build().get_user_function()
    for message in reversed(messages):  # out of order
        shard(QueueMessage(id=message.id, body=message.content.encode(), dequeue_count=1))
        queue.delete_message(message)
    manifest = json.loads(
        blob_service.get_blob_client(PREDICTIONS_CONTAINER, OutputPaths(name, app.version).manifest)
        .download_blob()
        .readall()
    )
    assert manifest["mode"] == "fanout" and manifest["rows"]["scored"] == 3000


def test_host_delivers_each_blob_version_once(app, blob_service, host: TriggerHost) -> None:
    functions = [f for f in runner.discover(app.app) if f.name == "score_blob"]
    first, second = unique("once"), unique("once")
    _upload(blob_service, first, bank_csv(10))
    _upload(blob_service, second, bank_csv(20))
    delivered = host.run_until_idle(functions)
    assert delivered.counts["score_blob: ok"] >= 2
    assert not host.run_until_idle(functions)  # receipts: nothing is delivered twice

    _upload(blob_service, first, bank_csv(30))  # a new version of the same name is a new blob to the host
    assert host.run_until_idle(functions).counts == {"score_blob: ok": 1}
    manifest = json.loads(
        blob_service.get_blob_client(PREDICTIONS_CONTAINER, OutputPaths(first, app.version).manifest)
        .download_blob()
        .readall()
    )
    assert manifest["rows"]["scored"] == 30


def test_host_retries_then_parks_a_failing_blob_in_the_poison_queue(
    app, blob_service, host: TriggerHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    functions = [f for f in runner.discover(app.app) if f.name == "score_blob"]
    host.run_until_idle(functions)  # whatever earlier tests left
    monkeypatch.setenv("MODEL_STAGE", "prod")  # no model there: every attempt raises
    get_settings.cache_clear()
    app.scoring.cache_clear()
    name = unique("poison")
    _upload(blob_service, name, bank_csv(10))

    delivered = host.run_until_idle(functions)

    assert delivered.counts == {"score_blob: failed, will retry": 4, "score_blob: poisoned": 1}
    poison = queue_client(host.queue_service, BLOB_TRIGGER_POISON_QUEUE)  # Base64, as the host writes it
    (message,) = [m for m in poison.receive_messages() if name in m.content]
    assert json.loads(message.content)["BlobName"] == f"{name}.csv"
    assert not host.run_until_idle(functions)  # receipted: not retried forever
    assert names_under_predictions(blob_service, name) == []


def test_daily_chain_export_publishes_and_the_trigger_scores(app, blob_service, host: TriggerHost) -> None:
    from azure.functions.timer import TimerRequest

    functions = runner.discover(app.app)
    host.run_until_idle(functions)  # whatever earlier tests left
    app.daily_export.build().get_user_function()(TimerRequest())
    today = dt.datetime.now(dt.UTC).date().isoformat()

    delivered = host.run_until_idle(functions)

    assert delivered.counts["score_blob: ok"] == 1 and delivered.counts["score_shard: ok"] >= 3
    name = f"clients-{today}"
    manifest = json.loads(
        blob_service.get_blob_client(PREDICTIONS_CONTAINER, OutputPaths(name, app.version).manifest)
        .download_blob()
        .readall()
    )
    assert manifest["rows"] == {"in": 3000, "scored": 3000, "rejected": 0, "blank_lines": 0}
    assert manifest["input"]["blob"] == f"scoring-input/{name}.csv" and manifest["mode"] == "fanout"
    assert names_under_predictions(blob_service, name) == ["_manifest.json", "predictions.csv"]
    assert any(p.endswith(f"/{name}.json") for p in names_under_monitoring(blob_service))

    app.daily_export.build().get_user_function()(TimerRequest())  # the same day again: same bytes
    assert not host.run_until_idle(functions)  # nothing new published, nothing scored twice


def names_under_monitoring(blob_service) -> list[str]:
    return [b.name for b in blob_service.get_container_client("monitoring").list_blobs()]


def test_names_the_trigger_path_does_not_match_are_treated_as_azure_treats_them(
    app, blob_service, host: TriggerHost, caplog: pytest.LogCaptureFixture
) -> None:
    # Azure (Event Grid, as deployed): `.CSV` passes the subscription's case-insensitive
    # `subjectEndsWith: .csv` filter and the blob extension invokes the function without matching
    # the path, which logs and leaves the blob; `.txt` produces no event at all.
    # (devstack/triggers.py `unmatched_reason` cites the sources.)
    functions = [f for f in runner.discover(app.app) if f.name == "score_blob"]
    host.run_until_idle(functions)  # whatever earlier tests left
    upper, notes, good = unique("Upper") + ".CSV", unique("notes") + ".txt", unique("good")
    for blob in (upper, notes):
        ensure_container(blob_service.get_container_client("scoring-input"))
        blob_service.get_blob_client("scoring-input", blob).upload_blob(bank_csv(10), overwrite=True)
    _upload(blob_service, good, bank_csv(10))
    try:
        with caplog.at_level("WARNING", logger="devstack.triggers"):
            delivered = host.run_until_idle(functions)
            again = host.run_until_idle(functions)
        assert delivered.counts == {
            "score_blob: ok": 2,  # good.csv and Upper.CSV: both invoke the function
            "score_blob: delivered, name does not match the path (extension case)": 1,
            "score_blob: not delivered (different extension)": 1,
        }
        assert not again  # each logged and counted once per version
        warnings = [r.getMessage() for r in caplog.records if r.name == "devstack.triggers"]
        assert [w for w in warnings if upper in w and "(extension case)" in w]
        assert [w for w in warnings if notes in w and "(different extension)" in w and "rename it" in w]
        assert len([w for w in warnings if upper in w or notes in w]) == 2
        assert names_under_predictions(blob_service, good) == ["_manifest.json", "predictions.csv"]
        for blob in (upper, notes):
            stem = blob[:-4]
            assert names_under_predictions(blob_service, stem) == []  # not scored, not rejected: left alone
            assert blob_service.get_blob_client("scoring-input", blob).exists()
    finally:
        for blob in (upper, notes):
            blob_service.get_blob_client("scoring-input", blob).delete_blob()
