"""The Azure ML command job a retrain submits: a pure request builder and a small urllib sender.

Why no SDK: the monitor function only needs one ARM call (Jobs - Create Or Update), and the
Function App's requirements stay small (docs/models.md, "Serving"). The caller hands `submit` a
token callable (a managed-identity token for `https://management.azure.com/.default`), so this
module imports neither azure-identity nor azure-ai-ml and is testable against a loopback server.

REST shape (CommandJob, serverless compute: no `computeId`, `resources.instanceType` instead):
https://learn.microsoft.com/en-us/rest/api/azureml/jobs/create-or-update?view=rest-azureml-2024-10-01
https://learn.microsoft.com/en-us/azure/templates/microsoft.machinelearningservices/2024-10-01/workspaces/jobs
https://learn.microsoft.com/en-us/azure/machine-learning/how-to-use-serverless-compute

The same job as a CLI v2 spec, for people who submit by hand: infra/azureml/train-job.yml
(a test keeps the two in agreement).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lake.contract import DATA_LAKE, EXPORTS_CONTAINER, JSON_CONTENT_TYPE
from lake.paths import export_csv_path
from model import DEFAULT_MODEL_NAME

# The stable api-version of Microsoft.MachineLearningServices this request is written against
# (the 2024-10-01 reference: https://learn.microsoft.com/en-us/rest/api/azureml/jobs/create-or-update?view=rest-azureml-2024-10-01).
API_VERSION = "2024-10-01"
ARM = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"  # the token's scope the caller asks for

# Naming rules.
# - subscription id: a GUID.
# - resource group (https://learn.microsoft.com/en-us/azure/azure-resource-manager/management/resource-name-rules,
#   Microsoft.Resources): 1-90 characters, underscores, hyphens, periods, parentheses, letters or
#   digits (Unicode), not ending in a period; the REST reference says minLength 1, maxLength 90.
# - workspace (the Jobs REST reference's `workspaceName` pattern, and resource-name-rules,
#   Microsoft.MachineLearningServices: 3-33, alphanumerics, hyphens, underscores, starting with
#   an alphanumeric).
# - job id: the reference says only "the name and identifier for the Job, case-sensitive"; we
#   accept a conservative subset that is safe in a URL path and in the studio: a letter or digit,
#   then letters, digits, '-' or '_', at most 255 in all.
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}$")
WORKSPACE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$")
JOB_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}$")
STORAGE_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")  # resource-name-rules, Microsoft.Storage
ASSET_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,254}$")  # environment name / version
# A user-assigned identity's ARM id (its name: 3-128 letters, digits, '-' or '_', starting with a
# letter or digit: the template reference, microsoft.managedidentity/userassignedidentities).
USER_IDENTITY = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ManagedIdentity"
    r"/userAssignedIdentities/[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$",
    re.IGNORECASE,
)

# The job: the retraining entry point every runner uses (model/retrain.py, `python -m model
# retrain`: select, gate, refit, register, promote). --data is the clients CSV of the newest
# complete day (its folder mounted, joined with the file name); --outcomes is the outcomes table's
# whole folder, every complete day of it (outcomes may be exported incrementally).
CLIENTS_TABLE, OUTCOMES_TABLE = "clients", "campaign_outcomes"
TRAIN_COMMAND = (
    "python -m model retrain"
    f" --data ${{{{inputs.clients}}}}/{CLIENTS_TABLE}.csv"
    " --outcomes ${{inputs.outcomes}}"
    " --out ${{outputs.model}}"
    " --name ${{inputs.model_name}}"
    " --promote ${{inputs.promote}}"
    " --fired ${{inputs.fired}}"
    " --evaluated ${{inputs.evaluated}}"
)
DEFAULT_INSTANCE_TYPE = "Standard_DS3_v2"
DEFAULT_INSTANCE_COUNT = 1
DEFAULT_JOB_TIER = "Standard"  # queueSettings.jobTier: Null, Spot, Basic, Standard, Premium
DEFAULT_TIMEOUT = "PT2H"  # limits.timeout, ISO 8601 (the CLI spec takes seconds: 7200)
DEFAULT_EXPERIMENT = "retrain"
TIMEOUT_SECONDS = 30.0  # one ARM call; the job itself runs asynchronously


class InvalidNameError(ValueError):
    """A name the service would refuse, caught before the call (with the rule it breaks)."""


class SubmitError(RuntimeError):
    """The service answered 4xx/5xx: status, ARM error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"Azure ML job submission failed: HTTP {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def _check(value: str, pattern: re.Pattern[str], what: str, rule: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidNameError(f"{what} {value!r} is invalid: {rule}")


@dataclass(frozen=True)
class Workspace:
    """The stack's Azure ML workspace, validated so a typo fails here rather than as an ARM 404."""

    subscription_id: str
    resource_group: str
    name: str

    def __post_init__(self) -> None:
        _check(self.subscription_id, GUID, "subscription id", "a GUID")
        _check(
            self.resource_group,
            RESOURCE_GROUP,
            "resource group",
            "1-90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'",
        )
        if self.resource_group.endswith("."):
            raise InvalidNameError(f"resource group {self.resource_group!r} is invalid: it ends in '.'")
        _check(
            self.name,
            WORKSPACE,
            "workspace name",
            "3-33 letters, digits, '-' or '_', starting with a letter or digit",
        )

    @property
    def path(self) -> str:
        """The workspace's ARM resource id (also the prefix of its environments' ids)."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}"
        )


@dataclass(frozen=True)
class TrainingJob:
    """What one retrain trains on and where it runs; the defaults are the CLI spec's values.

    `exports_account` is the data lake's storage account: the job mounts its day folders of
    `clients` and `campaign_outcomes`. `registry` (the lake's models registry location, as the
    CLI's MODEL_REGISTRY) travels as an environment variable and a tag for the registration step;
    the job itself only writes a model folder to its output. `fired` and `evaluated` are the
    trigger (model/monitoring/triggers.py): they name the job and tag it with its evidence.
    """

    exports_account: str
    export_date: dt.date
    environment: str  # an Azure ML environment name in the workspace
    environment_version: str
    evaluated: dt.date
    fired: tuple[str, ...] = ()
    model_name: str = DEFAULT_MODEL_NAME
    promote_to: tuple[str, ...] = ("dev",)  # RETRAIN_PROMOTE: the stages this stack moves by itself
    registry: str = "blob"
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = DEFAULT_INSTANCE_COUNT
    job_tier: str = DEFAULT_JOB_TIER
    timeout: str = DEFAULT_TIMEOUT
    experiment_name: str = DEFAULT_EXPERIMENT
    extra_tags: Mapping[str, str] = field(default_factory=dict)
    # The uploaded code asset's ARM id (the CLI spec's `code: ../..`); None when the environment
    # image already holds the project.
    code_id: str | None = None
    # The user-assigned identity the job runs as (serverless compute does not support the
    # workspace's system-assigned identity: how-to-use-serverless-compute). None: the identity
    # block names only `identityType` and the service picks.
    identity_client_id: str | None = None
    identity_resource_id: str | None = None

    def __post_init__(self) -> None:
        _check(self.exports_account, STORAGE_ACCOUNT, "storage account", "3-24 lowercase letters or digits")
        _check(self.environment, ASSET_NAME, "environment name", "letters, digits, '.', '-' or '_'")
        _check(self.environment_version, ASSET_NAME, "environment version", "letters, digits, '.', '-', '_'")
        _check(self.experiment_name, ASSET_NAME, "experiment name", "letters, digits, '.', '-' or '_'")
        if self.instance_count < 1:
            raise ValueError(f"instance_count must be at least 1, not {self.instance_count}")
        if self.identity_client_id is not None:
            _check(self.identity_client_id, GUID, "identity client id", "a GUID")
        if self.identity_resource_id is not None:
            _check(
                self.identity_resource_id,
                USER_IDENTITY,
                "identity resource id",
                "/subscriptions/.../resourceGroups/.../providers/Microsoft.ManagedIdentity/userAssignedIdentities/...",
            )

    def table_folder(self, table: str) -> str:
        """Every day of one table's exports: outcomes may be exported incrementally, so a retrain
        reads all their complete days (model/data.py `read_outcomes`)."""
        folder = export_csv_path(table, self.export_date).split("/")[0]
        return f"https://{self.exports_account}.blob.core.windows.net/{EXPORTS_CONTAINER}/{folder}/"

    def export_folder(self, table: str) -> str:
        """The day folder of one table's export in the lake (the CSV and its manifest)."""
        folder = export_csv_path(table, self.export_date).rpartition("/")[0]
        return f"https://{self.exports_account}.blob.core.windows.net/{EXPORTS_CONTAINER}/{folder}/"


@dataclass(frozen=True)
class Request:
    """One HTTP request, exactly as sent: built purely, sent by `submit`."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]


def job_id(model_name: str, evaluated: dt.date) -> str:
    """The job's id, deterministic from the trigger: a re-run of the monitor PUTs the same id.

    A PUT of an existing id is the reference's "update case" (200 OK instead of 201 Created:
    only the tags are replaced); it does not start the job a second time.
    """
    slug = re.sub(r"[^a-zA-Z0-9_-]+", "-", model_name).strip("-_") or "model"
    value = f"retrain-{slug}-{evaluated:%Y%m%d}"
    validate_job_id(value)
    return value


def validate_job_id(value: str) -> None:
    _check(value, JOB_ID, "job id", "1-255 letters, digits, '-' or '_', starting with a letter or digit")


def job_body(workspace: Workspace, job: TrainingJob, job_id: str) -> dict[str, Any]:
    """The CommandJob resource body (JobBase with `properties.jobType = "Command"`)."""
    tags = {
        "model": job.model_name,
        "evaluated": job.evaluated.isoformat(),
        "rules": ",".join(job.fired) or "none",
        "exports": job.export_date.isoformat(),
        **job.extra_tags,
    }
    properties: dict[str, Any] = {
        "jobType": "Command",
        "displayName": job_id,
        "experimentName": job.experiment_name,
        "description": f"Retrain {job.model_name}: rules fired {tags['rules']} on {tags['evaluated']}",
        "tags": tags,
        "command": TRAIN_COMMAND,
        "environmentId": (
            f"{workspace.path}/environments/{job.environment}/versions/{job.environment_version}"
        ),
        # The registry is the lake's `models` container, reached with the job's identity.
        "environmentVariables": {
            "MODEL_REGISTRY": job.registry,
            f"{DATA_LAKE}__blobServiceUri": f"https://{job.exports_account}.blob.core.windows.net",
            f"{DATA_LAKE}__credential": "managedidentity",
        },
        "inputs": {
            "clients": {
                "jobInputType": "uri_folder",
                "uri": job.export_folder(CLIENTS_TABLE),
                "mode": "ReadOnlyMount",
            },
            "outcomes": {
                "jobInputType": "uri_folder",
                "uri": job.table_folder(OUTCOMES_TABLE),
                "mode": "ReadOnlyMount",
            },
            "model_name": {"jobInputType": "literal", "value": job.model_name},
            "promote": {"jobInputType": "literal", "value": ",".join(job.promote_to) or "none"},
            "fired": {"jobInputType": "literal", "value": ",".join(job.fired) or "none"},
            "evaluated": {"jobInputType": "literal", "value": job.evaluated.isoformat()},
        },
        "outputs": {"model": {"jobOutputType": "uri_folder", "mode": "ReadWriteMount"}},
        # Serverless compute: no computeId; the VM size and count are the job's own.
        "resources": {"instanceType": job.instance_type, "instanceCount": job.instance_count},
        "queueSettings": {"jobTier": job.job_tier},
        "limits": {"jobLimitsType": "Command", "timeout": job.timeout},
        # The job reads the lake as a managed identity, not as the submitter.
        "identity": job_identity(job),
    }
    if job.identity_client_id is not None:
        # The job's DefaultAzureCredential (lake/clients.py, no DataLake__clientId) hands this
        # variable to its ManagedIdentityCredential as the user-assigned identity's client id.
        properties["environmentVariables"]["AZURE_CLIENT_ID"] = job.identity_client_id
    if job.code_id is not None:
        properties["codeId"] = job.code_id
    return {"properties": properties}


def job_identity(job: TrainingJob) -> dict[str, str]:
    """The job's ManagedIdentity (IdentityConfiguration with `identityType: Managed`).

    The 2024-10-01 REST spec (mfe.json, definitions/ManagedIdentity) gives it `clientId`,
    `objectId` and `resourceId`, each "Specifies a user-assigned identity by ... For
    system-assigned, do not set this field."
    """
    identity = {"identityType": "Managed"}
    if job.identity_client_id is not None:
        identity["clientId"] = job.identity_client_id
    if job.identity_resource_id is not None:
        identity["resourceId"] = job.identity_resource_id
    return identity


def job_request(workspace: Workspace, job: TrainingJob, job_id: str, base_url: str = ARM) -> Request:
    """`PUT {ARM}{workspace}/jobs/{id}?api-version=...` with the CommandJob body (no token yet)."""
    validate_job_id(job_id)
    query = urllib.parse.urlencode({"api-version": API_VERSION})
    url = f"{base_url.rstrip('/')}{workspace.path}/jobs/{job_id}?{query}"
    return Request(
        method="PUT",
        url=url,
        headers={"Content-Type": JSON_CONTENT_TYPE, "Accept": JSON_CONTENT_TYPE},
        body=job_body(workspace, job, job_id),
    )


def _arm_error(status: int, raw: bytes) -> SubmitError:
    """ARM's ErrorResponse is `{"error": {"code", "message"}}`; fall back to the raw text."""
    text = raw.decode("utf-8", "replace")
    try:
        error = json.loads(text).get("error") or {}
        return SubmitError(status, str(error.get("code", "")), str(error.get("message", text)))
    except (ValueError, AttributeError):
        return SubmitError(status, "", text[:2000])


def submit(
    request: Request,
    token_provider: Callable[[], str],
    opener: Callable[..., Any] = urllib.request.urlopen,
    timeout: float = TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """Send the request with a bearer token; the job resource the service returns (200 or 201)."""
    headers = {**request.headers, "Authorization": f"Bearer {token_provider()}"}
    data = json.dumps(request.body).encode("utf-8")
    # The URL is built by job_request from validated parts (https ARM, or a test's loopback).
    http = urllib.request.Request(request.url, data=data, headers=headers, method=request.method)  # noqa: S310 - validated URL
    try:
        with opener(http, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        raise _arm_error(error.code, error.read()) from None
    return json.loads(raw) if raw else {}
