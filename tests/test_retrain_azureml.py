"""The Azure ML command job a retrain submits (functions/retrain/azureml.py) and its CLI twin.

Shape checked against the Jobs - Create Or Update reference (CommandJob, api-version 2024-10-01):
https://learn.microsoft.com/en-us/rest/api/azureml/jobs/create-or-update?view=rest-azureml-2024-10-01
and the CLI v2 command job schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
`submit` runs against a real loopback HTTP server.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml

from functions.retrain import azureml
from functions.retrain.azureml import (
    API_VERSION,
    InvalidNameError,
    SubmitError,
    TrainingJob,
    Workspace,
    job_id,
    job_request,
    submit,
)
from tests.support import loopback_server

SPEC = Path(__file__).resolve().parent.parent / "infra" / "azureml" / "train-job.yml"
SUB = "00000000-1111-2222-3333-444444444444"
WS = Workspace(SUB, "rg-mlops-dev", "mlw-mlops-dev")
JOB = TrainingJob(
    exports_account="stlakedev01",
    export_date=dt.date(2024, 5, 1),
    environment="bank-marketing-train",
    environment_version="1",
    evaluated=dt.date(2024, 5, 2),
    fired=("quality_drop", "drift_persistence"),
)


def test_the_request_is_a_put_of_a_command_job_at_the_documented_path() -> None:
    request = job_request(WS, JOB, "retrain-bank-marketing-20240502")
    url = urllib.parse.urlsplit(request.url)
    assert request.method == "PUT"
    assert (url.scheme, url.netloc) == ("https", "management.azure.com")
    assert url.path == (
        f"/subscriptions/{SUB}/resourceGroups/rg-mlops-dev/providers/"
        "Microsoft.MachineLearningServices/workspaces/mlw-mlops-dev/jobs/retrain-bank-marketing-20240502"
    )
    assert urllib.parse.parse_qs(url.query) == {"api-version": [API_VERSION]}
    assert API_VERSION == "2024-10-01"
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers  # the token is added when sent, never stored


def test_the_body_field_by_field() -> None:
    body = job_request(WS, JOB, "retrain-bank-marketing-20240502").body
    assert list(body) == ["properties"]
    p = body["properties"]
    assert p["jobType"] == "Command"
    assert "computeId" not in p  # serverless compute
    assert p["resources"] == {"instanceType": "Standard_DS3_v2", "instanceCount": 1}
    assert p["queueSettings"] == {"jobTier": "Standard"}
    assert p["identity"] == {"identityType": "Managed"}
    assert p["limits"] == {"jobLimitsType": "Command", "timeout": "PT2H"}
    assert p["displayName"] == "retrain-bank-marketing-20240502"
    assert p["experimentName"] == "retrain"
    assert p["environmentId"] == (
        f"/subscriptions/{SUB}/resourceGroups/rg-mlops-dev/providers/Microsoft.MachineLearningServices"
        "/workspaces/mlw-mlops-dev/environments/bank-marketing-train/versions/1"
    )
    assert p["command"] == (
        "python -m model retrain --data ${{inputs.clients}}/clients.csv"
        " --outcomes ${{inputs.outcomes}} --out ${{outputs.model}}"
        " --name ${{inputs.model_name}} --promote ${{inputs.promote}} --fired ${{inputs.fired}}"
        " --evaluated ${{inputs.evaluated}}"
    )
    assert p["inputs"] == {
        "clients": {
            "jobInputType": "uri_folder",
            "uri": "https://stlakedev01.blob.core.windows.net/exports/clients/2024-05-01/",
            "mode": "ReadOnlyMount",
        },
        "outcomes": {
            "jobInputType": "uri_folder",
            "uri": "https://stlakedev01.blob.core.windows.net/exports/campaign_outcomes/",
            "mode": "ReadOnlyMount",
        },
        "model_name": {"jobInputType": "literal", "value": "bank-marketing"},
        "promote": {"jobInputType": "literal", "value": "dev"},
        "fired": {"jobInputType": "literal", "value": "quality_drop,drift_persistence"},
        "evaluated": {"jobInputType": "literal", "value": "2024-05-02"},
    }
    assert p["outputs"] == {"model": {"jobOutputType": "uri_folder", "mode": "ReadWriteMount"}}
    assert p["environmentVariables"] == {
        "MODEL_REGISTRY": "blob",
        "DataLake__blobServiceUri": "https://stlakedev01.blob.core.windows.net",
        "DataLake__credential": "managedidentity",
    }
    assert p["tags"] == {
        "model": "bank-marketing",
        "evaluated": "2024-05-02",
        "rules": "quality_drop,drift_persistence",
        "exports": "2024-05-01",
    }
    assert "codeId" not in p
    json.dumps(body)  # serialisable as sent


def test_the_command_parses_with_the_training_cli() -> None:
    """The job runs the unchanged entry point: its arguments are the ones `train` takes."""
    from model.cli import build_parser

    command = job_request(WS, JOB, "j1").body["properties"]["command"]
    argv = command.replace("${{", "").replace("}}", "").split()[3:]
    args = build_parser().parse_args(argv)
    assert args.command == "retrain"
    assert str(args.data) == "inputs.clients/clients.csv"
    assert (args.promote, args.fired, args.evaluated) == (
        "inputs.promote",
        "inputs.fired",
        "inputs.evaluated",
    )


def test_a_code_asset_is_sent_as_code_id() -> None:
    job = TrainingJob(**{**JOB.__dict__, "code_id": f"{WS.path}/codes/abc/versions/1"})
    assert job_request(WS, job, "j1").body["properties"]["codeId"] == f"{WS.path}/codes/abc/versions/1"


CLIENT = "55555555-6666-4777-8888-999999999999"
IDENTITY = (
    f"/subscriptions/{SUB}/resourceGroups/rg-mlops-dev/providers/Microsoft.ManagedIdentity"
    "/userAssignedIdentities/id-mlops-retrain-dev"
)


def test_a_user_assigned_identity_is_named_by_client_and_resource_id() -> None:
    """Serverless compute runs a job as a user-assigned identity attached to the workspace
    ("Model training on serverless compute", learn.microsoft.com/azure/machine-learning/
    how-to-use-serverless-compute). The 2024-10-01 spec's ManagedIdentity (azure-rest-api-specs,
    specification/machinelearningservices/.../stable/2024-10-01/mfe.json, definitions/
    ManagedIdentity: discriminator value "Managed") has `clientId` (uuid), `objectId` (uuid) and
    `resourceId`, each "Specifies a user-assigned identity by ...". The job's credential
    (DefaultAzureCredential) picks the identity by AZURE_CLIENT_ID."""
    job = TrainingJob(**{**JOB.__dict__, "identity_client_id": CLIENT, "identity_resource_id": IDENTITY})
    p = job_request(WS, job, "j1").body["properties"]
    assert p["identity"] == {"identityType": "Managed", "clientId": CLIENT, "resourceId": IDENTITY}
    assert p["environmentVariables"] == {
        "MODEL_REGISTRY": "blob",
        "DataLake__blobServiceUri": "https://stlakedev01.blob.core.windows.net",
        "DataLake__credential": "managedidentity",
        "AZURE_CLIENT_ID": CLIENT,
    }
    # Everything else is the body without an identity.
    plain = job_request(WS, JOB, "j1").body["properties"]
    assert {k: v for k, v in p.items() if k not in ("identity", "environmentVariables")} == {
        k: v for k, v in plain.items() if k not in ("identity", "environmentVariables")
    }
    assert plain["identity"] == {"identityType": "Managed"}
    assert "AZURE_CLIENT_ID" not in plain["environmentVariables"]
    json.dumps(p)


def test_bad_identities_are_refused() -> None:
    with pytest.raises(InvalidNameError, match="client id"):
        TrainingJob(**{**JOB.__dict__, "identity_client_id": "not-a-guid"})
    for bad in (f"{WS.path}", IDENTITY + "/x", IDENTITY.replace("id-mlops", "-id"), "id-mlops-retrain-dev"):
        with pytest.raises(InvalidNameError, match="identity resource id"):
            TrainingJob(**{**JOB.__dict__, "identity_resource_id": bad})


@pytest.mark.parametrize(
    ("subscription", "group", "name"),
    [
        ("not-a-guid", "rg", "mlw"),
        (SUB, "", "mlw"),
        (SUB, "x" * 91, "mlw"),
        (SUB, "rg.", "mlw"),
        (SUB, "rg/evil", "mlw"),
        (SUB, "rg", "ab"),  # under 3
        (SUB, "rg", "a" * 34),  # over 33
        (SUB, "rg", "-mlw"),
        (SUB, "rg", "mlw.dev"),
    ],
)
def test_bad_workspace_names_are_refused(subscription: str, group: str, name: str) -> None:
    with pytest.raises(InvalidNameError):
        Workspace(subscription, group, name)


def test_good_workspace_names_pass() -> None:
    Workspace(SUB.upper(), "rg_(mlops).dev-1", "a_b")
    Workspace(SUB, "r", "a" * 33)


@pytest.mark.parametrize("bad", ["", "-x", "a/b", "a b", "a?x=1", "é", "a" * 256])
def test_bad_job_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidNameError):
        job_request(WS, JOB, bad)


def test_bad_job_inputs_are_refused() -> None:
    with pytest.raises(InvalidNameError):
        TrainingJob(**{**JOB.__dict__, "exports_account": "Not_An_Account"})
    with pytest.raises(InvalidNameError):
        TrainingJob(**{**JOB.__dict__, "environment": "bad/env"})
    with pytest.raises(ValueError, match="instance_count"):
        TrainingJob(**{**JOB.__dict__, "instance_count": 0})


def test_the_job_id_is_deterministic_from_the_trigger() -> None:
    first = job_id("bank-marketing", dt.date(2024, 5, 2))
    assert first == "retrain-bank-marketing-20240502"
    assert job_id("bank-marketing", dt.date(2024, 5, 2)) == first
    assert job_id("bank-marketing", dt.date(2024, 5, 3)) != first
    assert job_id("my model/v2", dt.date(2024, 5, 2)) == "retrain-my-model-v2-20240502"
    assert job_request(WS, JOB, first) == job_request(WS, JOB, first)


# -- the CLI spec agrees with the REST body ------------------------------------------------------

MODES = {"ReadOnlyMount": "ro_mount", "ReadWriteMount": "rw_mount"}
TRIGGER_INPUTS = {"fired", "evaluated"}


def test_the_cli_spec_and_the_rest_body_agree() -> None:
    spec = yaml.safe_load(SPEC.read_text())
    p = job_request(WS, JOB, "j1").body["properties"]
    assert spec["$schema"] == "https://azuremlschemas.azureedge.net/latest/commandJob.schema.json"
    assert spec["type"] == p["jobType"].lower()
    assert "compute" not in spec  # serverless, as the body's missing computeId
    assert spec["command"] == p["command"]
    name, version = spec["environment"].removeprefix("azureml:").split(":")
    assert p["environmentId"].endswith(f"/environments/{name}/versions/{version}")
    assert spec["environment_variables"] == {
        key: value.replace(JOB.exports_account, "ACCOUNT") for key, value in p["environmentVariables"].items()
    }
    assert set(spec["inputs"]) == set(p["inputs"])
    for key, value in p["inputs"].items():
        if value["jobInputType"] == "literal":
            if key not in TRIGGER_INPUTS:  # the trigger's own values differ by run
                assert spec["inputs"][key] == value["value"]
            continue
        mine = spec["inputs"][key]
        assert (mine["type"], mine["mode"]) == (value["jobInputType"], MODES[value["mode"]])
        account_free = (
            value["uri"].replace(JOB.exports_account, "ACCOUNT").replace("2024-05-01", "YYYY-MM-DD")
        )
        assert mine["path"] == account_free
    assert set(spec["outputs"]) == set(p["outputs"])
    for key, value in p["outputs"].items():
        assert spec["outputs"][key] == {"type": value["jobOutputType"], "mode": MODES[value["mode"]]}
    assert spec["resources"] == {
        "instance_type": p["resources"]["instanceType"],
        "instance_count": p["resources"]["instanceCount"],
    }
    assert spec["queue_settings"]["job_tier"] == p["queueSettings"]["jobTier"].lower()
    assert spec["identity"]["type"] == p["identity"]["identityType"].lower()
    assert spec["limits"]["timeout"] == 7200 and p["limits"]["timeout"] == "PT2H"
    assert spec["experiment_name"] == p["experimentName"]


# -- submit against a loopback server ------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]]
    answer: tuple[int, dict[str, Any]]

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        self.seen.append(
            {
                "path": self.path,
                "headers": dict(self.headers),
                "body": json.loads(self.rfile.read(length)),
            }
        )
        status, payload = self.answer
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"seen": [], "answer": (201, {})})
    with loopback_server(handler) as base:
        yield base, handler


def test_submit_sends_the_request_with_a_bearer_token(server: tuple[str, type[_Recorder]]) -> None:
    base, handler = server
    handler.answer = (201, {"name": "retrain-x", "properties": {"status": "NotStarted"}})
    request = job_request(WS, JOB, "retrain-x", base_url=base)
    answer = submit(request, lambda: "tok-123")
    assert answer == {"name": "retrain-x", "properties": {"status": "NotStarted"}}
    (seen,) = handler.seen
    assert seen["path"] == urllib.parse.urlsplit(request.url).path + "?api-version=" + API_VERSION
    assert seen["headers"]["Authorization"] == "Bearer tok-123"
    assert seen["headers"]["Content-Type"] == "application/json"
    assert seen["body"] == request.body


def test_submit_surfaces_the_arm_error(server: tuple[str, type[_Recorder]]) -> None:
    base, handler = server
    handler.answer = (400, {"error": {"code": "UserError", "message": "Environment not found"}})
    with pytest.raises(SubmitError, match="HTTP 400 UserError: Environment not found") as raised:
        submit(job_request(WS, JOB, "retrain-x", base_url=base), lambda: "tok")
    assert (raised.value.status, raised.value.code) == (400, "UserError")


def test_submit_passes_a_timeout() -> None:
    seen: dict[str, Any] = {}

    class _Response:
        def __enter__(self) -> _Response:
            return self

        def __exit__(self, *args: object) -> None:
            pass

        def read(self) -> bytes:
            return b"{}"

    def opener(request: Any, timeout: float) -> _Response:
        seen["timeout"] = timeout
        return _Response()

    assert submit(job_request(WS, JOB, "j1"), lambda: "t", opener=opener) == {}
    assert seen["timeout"] == azureml.TIMEOUT_SECONDS


@pytest.mark.parametrize("with_identity", [True, False])
def test_the_monitor_submits_with_the_identity_its_settings_name(
    server: tuple[str, type[_Recorder]], with_identity: bool
) -> None:
    """RETRAIN_JOB_IDENTITY / RETRAIN_JOB_CLIENT_ID (set by the stack) reach the job body; empty
    settings leave the identity block as it was."""
    from functions.retrain.request import submit_azureml
    from functions.settings import load_settings

    base, handler = server
    env = {
        "DataLake__blobServiceUri": "https://stlakedev01.blob.core.windows.net",
        "DB_CONNECTION_STRING": "-",
        "RETRAIN_RUNNER": "azureml",
        "RETRAIN_WORKSPACE": WS.path,
    }
    if with_identity:
        env |= {"RETRAIN_JOB_IDENTITY": IDENTITY, "RETRAIN_JOB_CLIENT_ID": CLIENT}
    settings = load_settings(env)
    assert (settings.retraining.job_identity, settings.retraining.job_client_id) == (
        (IDENTITY, CLIENT) if with_identity else ("", "")
    )
    record = submit_azureml(
        settings, {"fired": ["quality_drop"]}, dt.date(2024, 5, 1), dt.date(2024, 5, 2), lambda: "t", base
    )
    assert record["runner"] == "azureml"
    p = handler.seen[0]["body"]["properties"]
    if with_identity:
        assert p["identity"] == {"identityType": "Managed", "clientId": CLIENT, "resourceId": IDENTITY}
        assert p["environmentVariables"]["AZURE_CLIENT_ID"] == CLIENT
    else:
        assert p["identity"] == {"identityType": "Managed"}
        assert "AZURE_CLIENT_ID" not in p["environmentVariables"]
