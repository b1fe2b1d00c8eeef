"""The post-deploy smoke test (scripts/smoke.py, devstack/smoke.py): a local stack end to end on the
session's Azurite with a real ONNX model, broken ones, and the Azure path's pieces against fakes."""

from __future__ import annotations

import http.server
import importlib.util
import io
import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import pandas as pd
import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient

from devstack import smoke
from functions.settings import get_settings
from lake.contract import MODELS_CONTAINER, PREDICTIONS_CONTAINER, SCORING_INPUT_CONTAINER
from lake.paths import OutputPaths
from model.artifacts import MODEL_FILE
from model.registry.layout import version_file
from tests.conftest import sqlite_odbc
from tests.scoring_support import scoring_env, serve_model
from tests.support import REPO, loopback_server

pytestmark = pytest.mark.integration
CLIENTS = 40


def _script() -> ModuleType:
    """scripts/smoke.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("smoke_script", REPO / "scripts" / "smoke.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = _script()


@dataclass
class LocalStack:
    name: str
    version: str
    service: BlobServiceClient


@pytest.fixture
def local_stack(tmp_path: Path, azurite, blob_service, models) -> Iterator[LocalStack]:
    """A SQLite database, a model of its own promoted to dev, the app bound to those settings."""
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE clients (client_id INTEGER PRIMARY KEY, age INTEGER, job TEXT)")
        conn.executemany("INSERT INTO clients VALUES (?, ?, ?)", [(i, 30, "admin.") for i in range(CLIENTS)])
        conn.execute("CREATE TABLE campaign_outcomes (client_id INTEGER, contact_date DATE, subscribed INT)")
        conn.executemany(
            "INSERT INTO campaign_outcomes VALUES (?, '2008-05-05', ?)", [(i, i % 2) for i in range(9)]
        )
    inputs = blob_service.get_container_client(SCORING_INPUT_CONTAINER)
    if inputs.exists():  # what other tests left there is theirs: the local host would deliver it too
        for blob in inputs.list_blobs():
            inputs.delete_blob(blob.name)
    name = f"smoke-{uuid.uuid4().hex[:10]}"
    version = serve_model(blob_service, models.good, name)
    env = scoring_env(
        azurite.connection_string,
        MODEL_NAME=name,
        DB_CONNECTION_STRING=sqlite_odbc(db),
        EXPORT_TABLES="clients,campaign_outcomes:contact_date",
        EXPORT_PUBLISH_TABLES="",
        DEPLOYMENTS_REFRESH_SECONDS="0",
        REQUEST_LOG_FLUSH_SECONDS="300",
        EXPORT_SCHEDULE="0 0 2 * * *",
        MONITOR_SCHEDULE="0 30 3 * * *",
        RETRAIN_SCHEDULE="0 0 4 * * 1",
        ROLLBACK_SCHEDULE="0 */5 * * * *",
    )
    with pytest.MonkeyPatch.context() as patch:
        for key in ("SCORING_BLOB_SOURCE", "SCORING_QUEUE"):
            patch.delenv(key, raising=False)
        for key, value in env.items():
            patch.setenv(key, value)
        patch.setattr(smoke, "prepare_local", lambda: None)  # the session's Azurite, not the demo's
        get_settings.cache_clear()
        from functions import function_app

        function_app.reset()
        try:
            yield LocalStack(name, version, blob_service)
        finally:
            function_app.reset()
            get_settings.cache_clear()


def test_a_local_stack_passes_every_step(local_stack: LocalStack) -> None:
    lines: list[str] = []
    result = smoke.run(smoke.LocalTarget(), timeout=30, out=lines.append)
    assert result.code == 0, result.summary()
    assert list(result.seconds) == ["export", "scoring", "http"] and not result.skipped
    assert result.found["export"]["rows"] == {"clients": CLIENTS, "campaign_outcomes": 9}
    scoring = result.found["scoring"]
    assert scoring["version"] == local_stack.version and scoring["rows"] == smoke.SAMPLE_ROWS
    assert scoring["input"].startswith("smoke-")
    predictions = OutputPaths(scoring["input"], local_stack.version).predictions
    data = local_stack.service.get_blob_client(PREDICTIONS_CONTAINER, predictions).download_blob().readall()
    frame = pd.read_csv(io.BytesIO(data))
    assert frame["client_id"].tolist() == list(range(1, smoke.SAMPLE_ROWS + 1))  # the outputs stay
    uploaded = local_stack.service.get_blob_client(SCORING_INPUT_CONTAINER, f"{scoring['input']}.csv")
    assert not uploaded.exists()  # the input is cleaned up
    http = result.found["http"]
    assert http["score"] == 200 and http["ready"] == 200 and http["predictions"] == smoke.HTTP_ROWS
    assert http["model"] == {"name": local_stack.name, "version": local_stack.version}
    assert [line.split(":")[0].strip() for line in lines[1:4]] == ["export", "scoring", "http"]
    assert all(" ok in " in line for line in lines[1:4]) and "cleanup: deleted" in lines[-1]
    assert result.summary().startswith("smoke local: OK in ")


def test_a_tampered_model_fails_at_scoring_and_http_names_the_503(local_stack: LocalStack, capsys) -> None:
    onnx = version_file(local_stack.name, local_stack.version, MODEL_FILE)
    local_stack.service.get_blob_client(MODELS_CONTAINER, onnx).upload_blob(b"not onnx", overwrite=True)

    assert script.main(["--stack", "local", "--steps", "scoring", "--timeout", "10"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("smoke local: FAILED at scoring: no ") and "_manifest.json" in err
    assert f"version {local_stack.version} is at dev" in err
    assert "and none will come; the host gave up: score_blob failed 5 times" in err
    assert "poison queue: IntegrityError" in err and "sha256" in err

    assert script.main(["--stack", "local", "--steps", "http"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("smoke local: FAILED at http: POST http://127.0.0.1:")
    assert "answered 503 no_model: " in err and "expected 200 with 2" in err


def test_a_rejected_input_is_quoted(local_stack: LocalStack, monkeypatch) -> None:
    original = smoke.sample_frame  # a file whose columns the model does not have
    monkeypatch.setattr(smoke, "sample_frame", lambda rows=5: original(rows)[["client_id", "age"]])
    result = smoke.run(smoke.LocalTarget(), ("scoring",), timeout=10, out=lambda line: None)
    assert result.code == 1 and result.failure is not None and result.failure.step == "scoring"
    message = str(result.failure)
    assert message.startswith("expected predictions/smoke-") and "/error.json, which says: " in message
    assert "missing_columns: missing required column(s) ['balance'" in message


# ------------------------------------------------------------------------- the Azure path, faked

OUTPUTS = {
    "resourceGroup": "rg-mlops-dev",
    "dataLakeBlobEndpoint": "https://stmlopsdldev.blob.core.windows.net/",
    "functionAppName": "func-mlops-dev",
    "functionAppHostName": "func-mlops-dev.azurewebsites.net",
    "scoreUrl": "https://func-mlops-dev.azurewebsites.net/api/score",
}


class FakeHost(http.server.BaseHTTPRequestHandler):
    """The Functions host's admin and HTTP endpoints: records each request, answers `answers[path]`."""

    seen: ClassVar[list[tuple[str, str, dict[str, str], bytes]]] = []
    answers: ClassVar[dict[str, tuple[int, dict]]] = {}

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        status, document = self.answers.get(self.path, (404, {"error": "no such path"}))
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer  # noqa: N815 - http.server's dispatch names

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_host() -> Iterator[tuple[str, type[FakeHost]]]:
    FakeHost.seen, FakeHost.answers = [], {}
    with loopback_server(FakeHost) as base:
        yield base, FakeHost


def test_the_export_is_triggered_through_the_admin_api(fake_host) -> None:
    base, host = fake_host
    target = script.AzureTarget("dev", OUTPUTS, master_key="master-k", host_url=base)
    assert script.AzureTarget("dev", OUTPUTS).admin_url("daily_export") == (
        "https://func-mlops-dev.azurewebsites.net/admin/functions/daily_export"
    )
    host.answers["/admin/functions/daily_export"] = (202, {})
    target.trigger_export()
    ((method, path, headers, body),) = host.seen
    assert (method, path, json.loads(body)) == ("POST", "/admin/functions/daily_export", {"input": ""})
    assert headers["x-functions-key"] == "master-k" and headers["content-type"] == "application/json"
    host.answers["/admin/functions/daily_export"] = (401, {})
    with pytest.raises(smoke.SmokeFailed, match=r"answered 401: the master key was refused \(expected 202"):
        target.trigger_export()
    assert target.tables == ["clients", "campaign_outcomes"] and target.model_stage == "dev"


def test_the_http_step_sends_the_function_key(fake_host) -> None:
    base, host = fake_host
    host.answers["/api/score"] = (200, {"predictions": [{"id": 1}, {"id": 2}], "model": {"version": "3"}})
    host.answers["/api/ready"] = (200, {"status": "ready"})
    target = script.AzureTarget("dev", OUTPUTS, score_url=f"{base}/api/score", score_key="fn-k")
    result = smoke.run(target, ("http",), out=lambda line: None)
    assert result.code == 0 and result.found["http"]["predictions"] == 2
    (_, path, headers, body), ready = host.seen
    assert path == "/api/score" and headers["x-functions-key"] == "fn-k"
    assert len(json.loads(body)["records"]) == 2 and headers["x-request-id"].startswith("smoke-")
    assert ready[:2] == ("GET", "/api/ready")
    prod = script.AzureTarget("prod", OUTPUTS, score_url=f"{base}/api/score")  # no key needed: ready only
    assert smoke.run(prod, ("http",), out=lambda line: None).code == 0
    assert [request[1] for request in host.seen[2:]] == ["/api/ready"]


def test_outputs_files_are_parsed_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS | {"scoreKey": "k"}))
    assert script.load_outputs("dev", path)["scoreKey"] == "k"
    path.write_text(json.dumps({"resourceGroup": "rg"}))
    with pytest.raises(
        smoke.SmokeFailed, match="have no dataLakeBlobEndpoint, functionAppName, functionAppHost"
    ):
        script.load_outputs("dev", path)
    path.write_text("[secret]")
    with pytest.raises(smoke.SmokeFailed, match="cannot read the outputs file") as failed:
        script.load_outputs("dev", path)
    assert failed.value.step == "outputs"


def test_a_missing_score_key_is_one_clear_message(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("SMOKE_SCORE_KEY", raising=False)
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS | {"scoreKey": "[secret]"}))  # fetched without --show-secrets
    assert script.main(["--stack", "preprod", "--outputs", str(path), "--steps", "http"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "smoke preprod: FAILED at http: no function key for "
        "https://func-mlops-dev.azurewebsites.net/api/score: the outputs have no scoreKey (pass "
        "--score-key, set SMOKE_SCORE_KEY, or let the script read "
        "`pulumi stack output --json --show-secrets`)"
    )
    with pytest.raises(SystemExit) as refused:
        script.main(["--stack", "prod", "--outputs", str(path), "--steps", "scoring"])
    assert refused.value.code == 2 and "writes no test files" in capsys.readouterr().err


def test_a_storage_refusal_is_one_line_naming_the_step() -> None:
    """A 403 from the data lake (the smoke grants missing, or not yet in effect) is not a traceback."""
    refusal = HttpResponseError(
        message="This request is not authorized to perform this operation.\nRequestId:1"
    )
    refusal.status_code = 403

    class Refusing(smoke.Target):
        stack, model_name, model_stage, tables = "dev", "m", "dev", ["clients"]

        def trigger_export(self) -> None:
            pass

        @property
        def service(self):  # type: ignore[override]
            raise refusal

    result = smoke.run(Refusing(), ("export",), timeout=0, out=lambda line: None)
    assert result.summary() == (
        "smoke dev: FAILED at export: HttpResponseError: This request is not authorized to perform this "
        "operation. (a role assignment is missing, or new and not yet in effect)"
    )
