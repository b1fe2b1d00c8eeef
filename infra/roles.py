"""The persona role matrix of the architecture guide, as data: who gets which role on what.

Kept free of Pulumi so the tests, the offline plan and the docs all read the same table. Scopes
are logical targets (`container:models`, `workspace`, ...); the Rbac component resolves them to
resource ids of the stack being built.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from lake.contract import (
    CODE_CONTAINER,
    EXPORTS_CONTAINER,
    LAKE_QUEUES,
    MODELS_CONTAINER,
    MONITORING_CONTAINER,
    PACKAGE_CONTAINER,
    PREDICTIONS_CONTAINER,
    REJECTED_CONTAINER,
    SCORING_INPUT_CONTAINER,
)
from model.registry.layout import check_name, decisions_file, deployments_file

# Built-in role definition ids (identical in every tenant).
ROLE_IDS = {
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    # Every Microsoft.MachineLearningServices/workspaces/*/read|action|write|delete except creating
    # or deleting compute, writing or deleting the workspace itself and listing keys ("Azure
    # built-in roles for AI + machine learning", learn.microsoft.com/azure/role-based-access-control/
    # built-in-roles/ai-machine-learning#azureml-data-scientist).
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    # Functions host storage with identity-based connections: Blob Data Owner, Queue Data
    # Contributor, Table Data Contributor (Microsoft's Flex sample IaC/bicep/rbac.bicep,
    # Azure-Samples/azure-functions-flex-consumption-samples).
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    # Azure ML workspace storage without shared keys: people need Blob Data Contributor and
    # File Data Privileged Contributor ("Disable shared key access for your workspace's
    # storage account", learn.microsoft.com/azure/machine-learning/how-to-disable-local-auth-storage).
    "Storage File Data Privileged Contributor": "69566ab7-960f-475b-8e7c-b3118f30c6bd",
    # Only generateUserDelegationKey, which must be granted at the account level or above
    # ("Create a user delegation SAS",
    # learn.microsoft.com/rest/api/storageservices/create-user-delegation-sas).
    "Storage Blob Delegator": "db58b8e5-c6ad-4a2a-8342-4190687cbf4a",
}
# Never granted by this program, to people or to the function (checked by the policy pack).
FORBIDDEN_ROLE_IDS = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
}

DATA_SCIENTISTS = "data-scientists"
ML_ENGINEERS = "ml-engineers"
FUNCTION = "function-app"
DEPLOYER = "deployer"  # whoever runs `pulumi up`: a person in dev, the pipeline's identity later
# The identity a retrain (an Azure ML command job on serverless compute, functions/retrain/azureml.py)
# runs as. Not the workspace's system-assigned identity: "Serverless compute doesn't support
# system-assigned identity"; with `identity: managed` a serverless job uses a user-assigned
# managed identity attached to the workspace ("Model training on serverless compute", identity
# support, learn.microsoft.com/azure/machine-learning/how-to-use-serverless-compute; "Set up
# authentication between Azure Machine Learning and other services", workspace identity types:
# SAI+UAI to "access data in training jobs",
# learn.microsoft.com/azure/machine-learning/how-to-identity-based-service-authentication).
# Managed identities are assigned roles as principalType ServicePrincipal.
RETRAIN_JOB = "retrain-job"
PRINCIPAL_TYPES = {
    DATA_SCIENTISTS: "Group",
    ML_ENGINEERS: "Group",
    FUNCTION: "ServicePrincipal",
    RETRAIN_JOB: "ServicePrincipal",
}
# The workspace storage's code container (the retrain job's code asset, infra/upload.py).
CODE_SCOPE = f"ml-container:{CODE_CONTAINER}"

_ASSIGNMENT_NAMESPACE = uuid.UUID("5f0c6d1e-9b7a-4c3e-8f2d-1a6b4e9c7d30")


def assignment_name(scope_id: str, principal_id: str, role_id: str) -> str:
    """The role assignment's GUID, seeded like Bicep's `guid(scope.id, principalId, roleId)`.

    Microsoft's samples name assignments from the scope's resource id, the principal's object
    id and the role definition id (e.g. `guid(storageAccount.id, functionAppPrincipalId,
    roleId)`), so a new principal or scope is a new name (Pulumi replaces the assignment without
    a RoleAssignmentExists clash) and two stacks or subscriptions never share one; re-running
    with the same three gives the same name (no duplicates). Ids are compared case-insensitively
    as ARM does.
    """
    seed = "|".join(part.strip().lower() for part in (scope_id, principal_id, role_id))
    return str(uuid.uuid5(_ASSIGNMENT_NAMESPACE, seed))


@dataclass(frozen=True, order=True)
class Grant:
    """One role assignment. `condition` is an Azure ABAC condition (conditionVersion 2.0) that
    narrows what the role allows; it is not part of the identity of a grant, because Azure names
    the assignment from scope, principal and role only (`assignment_name`): two grants that differ
    only by condition would be one assignment, which the Rbac component refuses."""

    principal: str  # DATA_SCIENTISTS | ML_ENGINEERS | FUNCTION | DEPLOYER | RETRAIN_JOB
    role: str  # a key of ROLE_IDS
    scope: str  # resource-group | datalake | container:<name> | queue:<name> | workspace | ...
    condition: str | None = field(default=None, compare=False)


# --- ABAC conditions (Azure role assignment conditions, conditionVersion 2.0) ------------------
# Format and attribute from Microsoft's "Example Azure role assignment conditions for Blob Storage"
# (https://learn.microsoft.com/azure/storage/blobs/storage-auth-abac-examples, "Write blobs in named
# containers with a path": the Storage Blob Data Contributor form) and "Actions and attributes for
# Azure role assignment conditions for Azure Blob Storage"
# (https://learn.microsoft.com/azure/storage/blobs/storage-auth-abac-attributes: the data actions,
# and the `blobs:path` resource attribute, whose values name no container and no leading slash;
# ForAnyOfAnyValues:StringEquals on a single-valued string as in its encryption-scope example).
CONDITION_VERSION = "2.0"
BLOB_PATH_ATTRIBUTE = "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path]"
_BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
# Every data action of Storage Blob Data Contributor that changes a blob: write (Put Blob, Put Block
# List, metadata, ...), add/action (create a blob or append), and delete and move/action, which the
# rollback never needs but the role carries: all four are held to the same paths. Read is not
# targeted, so it stays allowed everywhere in the container.
CONDITIONED_WRITE_ACTIONS = (
    f"{_BLOBS}/write",
    f"{_BLOBS}/add/action",
    f"{_BLOBS}/delete",
    f"{_BLOBS}/move/action",
)


def blob_paths_condition(paths: Sequence[str]) -> str:
    """An ABAC condition: the targeted write actions succeed only on exactly these blob paths.

    Paths are compared with StringEquals (exact and case-sensitive, as blob names are), so no
    other blob, prefix or lookalike name can be written. Paths are registry paths (letters, digits,
    `.`, `_`, `-` and `/`), so no quote can break out of the literal.
    """
    if not paths or any("'" in p or p.startswith("/") for p in paths):
        raise ValueError(f"blob paths must be non-empty, unquoted and relative to the container: {paths!r}")
    actions = " AND ".join(f"!(ActionMatches{{'{action}'}})" for action in CONDITIONED_WRITE_ACTIONS)
    values = ", ".join(f"'{path}'" for path in paths)
    return f"(({actions}) OR ({BLOB_PATH_ATTRIBUTE} ForAnyOfAnyValues:StringEquals {{{values}}}))"


def rollback_paths(model_name: str) -> tuple[str, str]:
    """The two blobs of `models` the automatic rollback writes: the deployment and the promotion log."""
    name = check_name(model_name)
    return deployments_file(name), decisions_file(name)


def function_grants(publishes_for_scoring: bool, model_name: str) -> list[Grant]:
    """The function identity: data-plane roles on exactly the containers and queues it uses.

    `scoring-input` is read-only unless the export chain publishes into it
    (`exportPublishTables`), which needs write there (docs/decisions.md, decision 20).

    The monitor submits a retrain as an Azure ML job (`PUT .../workspaces/{ws}/jobs/{id}`,
    functions/retrain/azureml.py) in every stack (`RETRAIN_RUNNER=azureml` in the cloud): AzureML
    Data Scientist on the stack's workspace is the built-in role that writes jobs (and reads the
    environment the job names) without creating compute or changing the workspace ("Manage access
    to Azure Machine Learning workspaces", learn.microsoft.com/azure/machine-learning/how-to-assign-roles;
    its actions: built-in-roles/ai-machine-learning#azureml-data-scientist). Serverless compute
    needs no compute write. The function's data-plane roles stay as they were: the job, not the
    function, writes `models`.

    The one exception is the automatic rollback (the `rollback_check` timer): it sets green to 0 %
    in `{model}/deployments.json` and appends the decision to `{model}/promotions.jsonl`. That is
    Storage Blob Data Contributor on `models` with an ABAC condition allowing writes to exactly
    those two blobs of the stack's MODEL_NAME (`rollback_paths`, `blob_paths_condition`). The
    unconditioned Reader stays, so reads never wait on the new assignment propagating.
    """
    grants = [
        Grant(FUNCTION, "Storage Blob Data Reader", f"container:{MODELS_CONTAINER}"),
        Grant(
            FUNCTION,
            "Storage Blob Data Contributor",
            f"container:{MODELS_CONTAINER}",
            condition=blob_paths_condition(rollback_paths(model_name)),
        ),
        Grant(
            FUNCTION,
            "Storage Blob Data Contributor" if publishes_for_scoring else "Storage Blob Data Reader",
            f"container:{SCORING_INPUT_CONTAINER}",
        ),
    ]
    grants += [
        Grant(FUNCTION, "Storage Blob Data Contributor", f"container:{name}")
        for name in (EXPORTS_CONTAINER, PREDICTIONS_CONTAINER, REJECTED_CONTAINER, MONITORING_CONTAINER)
    ]
    grants += [Grant(FUNCTION, "Storage Queue Data Contributor", f"queue:{name}") for name in LAKE_QUEUES]
    # Host storage (AzureWebJobsStorage + the deployment package container): the three roles
    # Microsoft's Flex sample grants the app's identity (IaC/bicep/rbac.bicep: Blob Data Owner,
    # Queue Data Contributor, Table Data Contributor).
    grants += [
        Grant(FUNCTION, "Storage Blob Data Owner", "host-storage"),
        Grant(FUNCTION, "Storage Queue Data Contributor", "host-storage"),
        Grant(FUNCTION, "Storage Table Data Contributor", "host-storage"),
        Grant(FUNCTION, "Key Vault Secrets User", "secret:db-connection-string"),
        Grant(FUNCTION, "AzureML Data Scientist", "workspace"),
    ]
    return grants


def retrain_job_grants() -> list[Grant]:
    """The retrain job's identity: read the exports it mounts, write the model registry; nothing else.

    - `exports`: the job mounts day folders of `clients` and `campaign_outcomes` as `uri_folder`
      inputs (ReadOnlyMount); identity-based data access needs "at least Storage Blob Data Reader"
      (how-to-identity-based-service-authentication, "Accessing storage services").
    - `models`: the job writes the new version and the promotion log with DefaultAzureCredential;
      writing blobs is Storage Blob Data Contributor, the role Microsoft lists for a job's
      user-assigned identity that writes models ("Disable shared key access for your workspace's
      storage account", scenarios for role assignments: Model Registry,
      learn.microsoft.com/azure/machine-learning/how-to-disable-local-auth-storage; role
      definitions: learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage).
    - `monitoring` and the rest of the lake: nothing (the job reads no monitoring output).
    - `code` on the workspace storage: read the code asset (model/, lake/) the job runs. Which
      identity fetches a code asset for a serverless job is not spelled out by Microsoft; what is
      said is that "the Azure Machine Learning service uses a managed identity to access the
      storage account - for example, when running a training job as the managed identity"
      (how-to-disable-local-auth-storage, introduction). So the job's identity gets read on that
      one container; if the service fetches the snapshot as the workspace's identity instead,
      that identity needs the same grant (not confirmed against a live workspace).

    RETRAIN_JOB is the user-assigned identity the MlWorkspace component declares and attaches to
    the workspace (infra/components/workspace.py); the job names it (functions/retrain/azureml.py).
    """
    return [
        Grant(RETRAIN_JOB, "Storage Blob Data Reader", f"container:{EXPORTS_CONTAINER}"),
        Grant(RETRAIN_JOB, "Storage Blob Data Contributor", f"container:{MODELS_CONTAINER}"),
        Grant(RETRAIN_JOB, "Storage Blob Data Reader", CODE_SCOPE),
    ]


def people_grants(environment: str) -> list[Grant]:
    """Data scientists work in dev only; ML engineers run preprod and can only read prod."""
    if environment == "dev":
        return [
            Grant(DATA_SCIENTISTS, "AzureML Data Scientist", "workspace"),
            Grant(DATA_SCIENTISTS, "Storage Blob Data Contributor", "datalake"),
            # The workspace's own storage is keyless: studio, notebooks and datastores read it
            # with the user's identity (how-to-disable-local-auth-storage lists these two).
            Grant(DATA_SCIENTISTS, "Storage Blob Data Contributor", "ml-storage"),
            Grant(DATA_SCIENTISTS, "Storage File Data Privileged Contributor", "ml-storage"),
            Grant(ML_ENGINEERS, "Reader", "resource-group"),
        ]
    if environment == "preprod":
        return [
            Grant(ML_ENGINEERS, "AzureML Data Scientist", "workspace"),
            Grant(ML_ENGINEERS, "Storage Blob Data Contributor", f"container:{MODELS_CONTAINER}"),
        ]
    return [
        Grant(ML_ENGINEERS, "Reader", "resource-group"),
        Grant(ML_ENGINEERS, "Storage Blob Data Reader", f"container:{PREDICTIONS_CONTAINER}"),
        Grant(ML_ENGINEERS, "Storage Blob Data Reader", f"container:{MONITORING_CONTAINER}"),
    ]


# The stacks where the post-deploy smoke test (scripts/smoke.py) runs its writing steps.
SMOKE_STACKS = ("dev", "preprod")


def deployer_grants(environment: str) -> list[Grant]:
    """`pulumi up` uploads the code package with its own identity (no keys): write on that container,
    and the right to sign a user-delegation SAS (read access is still cut to that container); and
    the retrain job's code to the workspace storage's code container (write there only).

    In dev and preprod the same identity then runs the smoke test (scripts/smoke.py) right after
    the deploy: it uploads a small sample to `scoring-input` and deletes it afterwards (Blob Data
    Contributor there), and reads what the app made of it and of the export it triggered: the
    export manifests in `exports`, the output in `predictions` or the verdict in `rejected`, and
    the stage pointer in `models` that says which version must have scored (Blob Data Reader on
    each; the export itself is triggered through the host's admin API with the master key, a
    management-plane right the deployer already has). Never in prod: no test files in production,
    so there the smoke test only asks `GET /api/ready`, and the deployer reads no production data.
    """
    grants = [
        Grant(DEPLOYER, "Storage Blob Data Contributor", f"host-container:{PACKAGE_CONTAINER}"),
        Grant(DEPLOYER, "Storage Blob Delegator", "host-storage"),
        Grant(DEPLOYER, "Storage Blob Data Contributor", CODE_SCOPE),
    ]
    if environment in SMOKE_STACKS:
        grants.append(
            Grant(DEPLOYER, "Storage Blob Data Contributor", f"container:{SCORING_INPUT_CONTAINER}")
        )
        grants += [
            Grant(DEPLOYER, "Storage Blob Data Reader", f"container:{name}")
            for name in (EXPORTS_CONTAINER, PREDICTIONS_CONTAINER, REJECTED_CONTAINER, MODELS_CONTAINER)
        ]
    return grants


def role_matrix(environment: str, publishes_for_scoring: bool, model_name: str) -> list[Grant]:
    return sorted(
        people_grants(environment)
        + function_grants(publishes_for_scoring, model_name)
        + retrain_job_grants()
        + deployer_grants(environment)
    )
