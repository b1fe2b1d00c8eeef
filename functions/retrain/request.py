"""Act on a fired retraining verdict: submit the retrain where RETRAIN_RUNNER says, and record it.

The monitor (daily) and the retrain timer (RETRAIN_SCHEDULE) both end here. The Function App
stays free of scikit-learn: in Azure the retrain is an Azure ML command job submitted through the
REST API with the app's managed identity (functions/retrain/azureml.py); in the local stack it is
the same entry point run as a subprocess (functions/retrain/local.py). Either way one retrain per
model and day: the job id is derived from the day (a second PUT updates, it does not start a
second job), and the local runner skips a day whose verdict already records a finished retrain.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from azure.storage.blob import BlobServiceClient

from functions.monitor.sources import latest_export_day
from functions.retrain import azureml
from functions.settings import Settings
from functions.telemetry.emit import emit
from functions.telemetry.events import RETRAIN_REQUESTED
from lake.contract import EXPORTS_CONTAINER

log = logging.getLogger(__name__)

WORKSPACE_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<name>[^/]+)$",
    re.IGNORECASE,
)


def parse_workspace(resource_id: str) -> azureml.Workspace:
    """RETRAIN_WORKSPACE (the workspace's ARM id, as Pulumi writes it) as a validated Workspace."""
    match = WORKSPACE_ID.match(resource_id.strip())
    if match is None:
        raise azureml.InvalidNameError(
            f"RETRAIN_WORKSPACE {resource_id!r} is not an Azure ML workspace resource id "
            "(/subscriptions/.../resourceGroups/.../providers/Microsoft.MachineLearningServices/workspaces/...)"
        )
    return azureml.Workspace(match["sub"], match["rg"], match["name"])


def _account(settings: Settings) -> str:
    """The data lake's account name, from its blob endpoint (the job mounts its exports)."""
    uri = settings.data_lake.blob_service_uri or ""
    host = urllib.parse.urlparse(uri).hostname or ""
    return host.split(".")[0]


def submit_azureml(
    settings: Settings,
    verdict: dict[str, Any],
    export_day: dt.date,
    evaluated: dt.date,
    token: Callable[[], str] | None = None,
    base_url: str = azureml.ARM,
) -> dict[str, Any]:
    """PUT the command job; the submission record (job id, status the service answered)."""
    name, _, version = settings.retraining.environment.partition(":")
    job = azureml.TrainingJob(
        exports_account=_account(settings),
        export_date=export_day,
        environment=name,
        environment_version=version,
        evaluated=evaluated,
        fired=tuple(verdict.get("fired") or ()),
        model_name=settings.model_name,
        promote_to=settings.retraining.promote_to,
        instance_type=settings.retraining.instance_type,
        identity_client_id=settings.retraining.job_client_id or None,
        identity_resource_id=settings.retraining.job_identity or None,
        code_id=settings.retraining.code_id or None,
    )
    workspace = parse_workspace(settings.retraining.workspace)
    job_id = azureml.job_id(settings.model_name, evaluated)
    request = azureml.job_request(workspace, job, job_id, base_url)
    answer = azureml.submit(request, token or _managed_identity_token(settings))
    status = ((answer.get("properties") or {}).get("status")) or "submitted"
    return {"runner": "azureml", "job_id": job_id, "status": status, "exports": export_day.isoformat()}


def _managed_identity_token(settings: Settings) -> Callable[[], str]:
    """A bearer token for ARM as the app's managed identity (the client id when one is set)."""

    def token() -> str:
        from azure.identity import ManagedIdentityCredential

        credential = ManagedIdentityCredential(client_id=settings.data_lake.client_id)
        return credential.get_token(azureml.ARM_SCOPE).token

    return token


def request_retrain(
    settings: Settings,
    service: BlobServiceClient,
    verdict: dict[str, Any],
    now: dt.datetime,
    previous: dict[str, Any] | None = None,
    *,
    export_day: dt.date | None = None,
    token: Callable[[], str] | None = None,
) -> dict[str, Any]:
    """Submit (or run) the retrain a fired verdict asks for; the record kept with the verdict.

    `previous` is the verdict already recorded for this day, if any: a retrain that ran or was
    submitted today is not asked for twice. `export_day` names the outcomes export to train on
    (default: the newest complete one, which needs read access to `exports`); `token` gives the
    ARM bearer token (default: the app's managed identity). The operator CLI passes both.
    """
    runner = settings.retraining.runner
    done = (previous or {}).get("submission") or {}
    if done.get("status") in {"succeeded", "submitted", "Starting", "Queued", "Running", "Completed"}:
        return {**done, "repeat": True}
    if runner == "off":
        record = {"runner": "off", "status": "not_submitted", "why": "RETRAIN_RUNNER=off"}
    else:
        if export_day is None:
            exports = service.get_container_client(EXPORTS_CONTAINER)
            export_day = latest_export_day(exports, settings.monitoring.outcomes_table, now.date())
        if export_day is None:
            why = f"no complete export of {settings.monitoring.outcomes_table} to train on"
            record = {"runner": runner, "status": "not_submitted", "why": why}
        elif runner == "azureml":
            try:
                record = submit_azureml(settings, verdict, export_day, now.date(), token)
            except (azureml.SubmitError, azureml.InvalidNameError, OSError) as error:
                record = {"runner": runner, "status": "failed", "why": str(error)[:2000]}
        else:
            from functions.retrain.local import run_local

            record = run_local(settings, service, verdict, now)
    emit(
        log,
        RETRAIN_REQUESTED,
        "retrain %s: %s via %s",
        settings.model_name,
        record["status"],
        runner,
        level=logging.ERROR if record["status"] == "failed" else logging.INFO,
        model_name=settings.model_name,
        runner=runner,
        status=record["status"],
        job_id=record.get("job_id"),
        fired=list(verdict.get("fired") or ()),
    )
    return record
