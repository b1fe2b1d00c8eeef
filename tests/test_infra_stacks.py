"""Each stack under Pulumi's mocks: the resources exist with their security settings, the role
matrix is exactly the architecture guide's, the app's settings satisfy the settings contract."""

from __future__ import annotations

import re
import uuid

import pulumi
import pytest

from functions.settings import load_settings
from infra import config
from infra.components.alerts import REJECTED_FILES
from infra.components.datalake import DataLake, DataLakeArgs
from infra.components.rbac import Rbac, RbacArgs
from infra.package import REPO_ROOT
from infra.program import build
from infra.roles import CODE_SCOPE, PRINCIPAL_TYPES, RETRAIN_JOB, ROLE_IDS, retrain_job_grants
from infra.synth import (
    DEPLOYER_ID,
    SECRET_PLACEHOLDER,
    SUBSCRIPTION,
    RecordingMocks,
    mock_stack,
    stack_config,
    synthesize,
)
from lake.contract import CODE_CONTAINER, EXPORTS_CONTAINER, MODELS_CONTAINER
from tests.infra_support import STACKS, by_type, stack

# The built-in role definition ids, the same in every tenant. Sources, per role:
# Reader: learn.microsoft.com/azure/role-based-access-control/built-in-roles/general#reader;
# the Storage roles: .../built-in-roles/storage (#storage-blob-data-reader, ...);
# AzureML Data Scientist: .../built-in-roles/ai-machine-learning#azureml-data-scientist;
# Key Vault Secrets User: .../built-in-roles/security#key-vault-secrets-user.
ROLE = {
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "f6c7c914-8db3-469d-8ca1-694a8f32e121": "AzureML Data Scientist",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "69566ab7-960f-475b-8e7c-b3118f30c6bd": "Storage File Data Privileged Contributor",
    "db58b8e5-c6ad-4a2a-8342-4190687cbf4a": "Storage Blob Delegator",
}
DS = "11111111-1111-4111-8111-111111111111"  # Pulumi.*.yaml example group ids
MLE = "22222222-2222-4222-8222-222222222222"

# The function identity's grants, the same in every stack (architecture guide, RBAC matrix).
FUNCTION_GRANTS = {
    ("Storage Blob Data Reader", "dl/containers/models"),
    # the automatic rollback: an ABAC condition holds its writes to two blobs (tests/test_infra_realtime.py)
    ("Storage Blob Data Contributor", "dl/containers/models"),
    ("Storage Blob Data Contributor", "dl/containers/scoring-input"),  # the export chain publishes
    ("Storage Blob Data Contributor", "dl/containers/exports"),
    ("Storage Blob Data Contributor", "dl/containers/predictions"),
    ("Storage Blob Data Contributor", "dl/containers/rejected"),
    ("Storage Blob Data Contributor", "dl/containers/monitoring"),
    ("Storage Queue Data Contributor", "dl/queues/scoring-shards"),
    ("Storage Queue Data Contributor", "dl/queues/scoring-shards-poison"),
    ("Storage Queue Data Contributor", "dl/queues/webjobs-blobtrigger-poison"),
    ("Storage Blob Data Owner", "fn"),
    ("Storage Queue Data Contributor", "fn"),
    # Microsoft's Flex sample grants the host identity Table Data Contributor too
    # (Azure-Samples/azure-functions-flex-consumption-samples, IaC/bicep/rbac.bicep).
    ("Storage Table Data Contributor", "fn"),
    ("Key Vault Secrets User", "vault/secrets/db-connection-string"),
    # The monitor submits retrains as Azure ML jobs (PUT .../workspaces/{ws}/jobs/{id}): the
    # built-in role that writes jobs but no compute and not the workspace itself
    # (learn.microsoft.com/azure/machine-learning/how-to-assign-roles).
    ("AzureML Data Scientist", "workspace"),
}
# Upload the package, and sign its user-delegation SAS (the key is an account-level action:
# "Create a user delegation SAS", learn.microsoft.com/rest/api/storageservices/create-user-delegation-sas).
DEPLOYER_GRANTS = {
    ("deployer", "Storage Blob Data Contributor", "fn/containers/app-package"),
    ("deployer", "Storage Blob Delegator", "fn"),
    # the retrain job's code asset (model/, lake/), uploaded by `pulumi up` (infra/upload.py)
    ("deployer", "Storage Blob Data Contributor", "ml/containers/code"),
}
# The post-deploy smoke test (scripts/smoke.py) runs as the deployer in dev and preprod only: it
# writes (and deletes) its sample in scoring-input and reads the export manifests, the output or
# the rejection, and the stage pointer. Nothing in prod: no test files in production.
SMOKE_GRANTS = {
    ("deployer", "Storage Blob Data Contributor", "dl/containers/scoring-input"),
    ("deployer", "Storage Blob Data Reader", "dl/containers/exports"),
    ("deployer", "Storage Blob Data Reader", "dl/containers/predictions"),
    ("deployer", "Storage Blob Data Reader", "dl/containers/rejected"),
    ("deployer", "Storage Blob Data Reader", "dl/containers/models"),
}


def deployer_grants(name: str) -> set[tuple[str, str, str]]:
    return DEPLOYER_GRANTS | (SMOKE_GRANTS if name in ("dev", "preprod") else set())


# The retrain job's user-assigned identity: read the exports it mounts, write the registry
# (infra/roles.py retrain_job_grants), in every stack.
RETRAIN_JOB_GRANTS = {
    ("retrain-job", "Storage Blob Data Reader", "dl/containers/exports"),
    ("retrain-job", "Storage Blob Data Contributor", "dl/containers/models"),
    # the code asset the job runs (infra/roles.py retrain_job_grants: which identity Azure ML
    # fetches it with is not confirmed, so the job's identity can read it)
    ("retrain-job", "Storage Blob Data Reader", "ml/containers/code"),
}
PEOPLE_GRANTS = {
    "dev": {
        ("data-scientists", "AzureML Data Scientist", "workspace"),
        ("data-scientists", "Storage Blob Data Contributor", "dl"),
        # The keyless workspace storage needs these two for studio and notebooks ("Disable shared
        # key access for your workspace's storage account", how-to-disable-local-auth-storage).
        ("data-scientists", "Storage Blob Data Contributor", "ml"),
        ("data-scientists", "Storage File Data Privileged Contributor", "ml"),
        ("ml-engineers", "Reader", "resource-group"),
    },
    "preprod": {
        ("ml-engineers", "AzureML Data Scientist", "workspace"),
        ("ml-engineers", "Storage Blob Data Contributor", "dl/containers/models"),
    },
    "prod": {
        ("ml-engineers", "Reader", "resource-group"),
        ("ml-engineers", "Storage Blob Data Reader", "dl/containers/predictions"),
        ("ml-engineers", "Storage Blob Data Reader", "dl/containers/monitoring"),
    },
}


def _scope_key(scope: str, names: dict[str, str]) -> str:
    """Turn a resource id into the short keys above (dl, fn, workspace, ...)."""
    for key, account in names.items():
        scope = scope.replace(f"/storageAccounts/{account}", f"/{key}")
    scope = re.sub(r"^/subscriptions/[^/]+/resourceGroups/[^/]+$", "resource-group", scope)
    scope = re.sub(r"^.*/providers/Microsoft\.MachineLearningServices/workspaces/[^/]+$", "workspace", scope)
    scope = re.sub(r"^.*/providers/Microsoft\.KeyVault/vaults/[^/]+", "vault", scope)
    scope = re.sub(r"^.*/providers/Microsoft\.Storage/", "", scope)
    return scope.replace("/blobServices/default", "").replace("/queueServices/default", "")


def role_matrix(name: str) -> set[tuple[str, str, str]]:
    synthesis = stack(name)
    accounts = {
        r.inputs["tags"]["purpose"]: r.azure_name for r in by_type(synthesis, "storage:StorageAccount")
    }
    keys = {"dl": accounts["data-lake"], "fn": accounts["function-host"], "ml": accounts["ml-workspace"]}
    principals = {
        DS: "data-scientists",
        MLE: "ml-engineers",
        DEPLOYER_ID: "deployer",
        synthesis.outputs["functionPrincipalId"]: "function",
        synthesis.outputs["retrainJobPrincipalId"]: "retrain-job",
    }
    rows = set()
    for assignment in by_type(synthesis, "authorization:RoleAssignment"):
        inputs = assignment.inputs
        role = ROLE[inputs["roleDefinitionId"].rsplit("/", 1)[-1]]
        rows.add((principals[inputs["principalId"]], role, _scope_key(inputs["scope"], keys)))
    return rows


@pytest.mark.parametrize("name", STACKS)
def test_role_matrix_is_exactly_the_architecture_guide(name: str) -> None:
    function = {("function", role, scope) for role, scope in FUNCTION_GRANTS}
    expected = PEOPLE_GRANTS[name] | function | deployer_grants(name) | RETRAIN_JOB_GRANTS
    assert role_matrix(name) == expected
    # One assignment per row: the matrix has no duplicates hiding behind the set.
    assert len(by_type(stack(name), "authorization:RoleAssignment")) == len(expected)


@pytest.mark.parametrize("name", STACKS)
def test_role_assignments_have_principal_types_and_stable_guid_names(name: str) -> None:
    assignments = by_type(stack(name), "authorization:RoleAssignment")
    deployer = "User" if name == "dev" else "ServicePrincipal"  # Pulumi.<stack>.yaml: deployerPrincipalType
    for assignment in assignments:
        principal = assignment.inputs["principalId"]
        kind = (
            "Group"
            if principal in (DS, MLE)
            else deployer
            if principal == DEPLOYER_ID
            else "ServicePrincipal"
        )
        assert assignment.inputs["principalType"] == kind
        assert assignment.inputs["roleDefinitionId"].startswith(f"/subscriptions/{SUBSCRIPTION}/providers/")
    names = [a.inputs["roleAssignmentName"] for a in assignments]
    assert len(set(names)) == len(names)
    again = synthesize(name)  # a second run (registration order varies): the same names
    assert sorted(names) == sorted(
        a.inputs["roleAssignmentName"] for a in by_type(again, "authorization:RoleAssignment")
    )


def test_people_lose_access_outside_their_stacks() -> None:
    assert not {row for row in role_matrix("preprod") | role_matrix("prod") if row[0] == "data-scientists"}
    writable = {"Storage Blob Data Contributor", "Storage Blob Data Owner", "AzureML Data Scientist"}
    assert not {row for row in role_matrix("prod") if row[0] == "ml-engineers" and row[1] in writable}
    for name in STACKS:
        assert {row for row in role_matrix(name) if row[0] == "deployer"} == deployer_grants(name)
        scopes = {scope for who, _, scope in role_matrix(name) if who == "function"}
        assert all(
            s.startswith(("dl/containers/", "dl/queues/", "vault/secrets/")) or s in ("fn", "workspace")
            for s in scopes
        )  # the workspace: to submit retrain jobs (AzureML Data Scientist, nothing else there)
    # the smoke test writes no test files in production, so the deployer reads no production data
    assert not {row for row in role_matrix("prod") if row[0] == "deployer" and row[2].startswith("dl")}


@pytest.mark.parametrize("name", STACKS)
def test_retraining_adds_exactly_the_job_submission_to_the_function(name: str) -> None:
    function = {(role, scope) for who, role, scope in role_matrix(name) if who == "function"}
    assert {row for row in function if row[1] == "workspace"} == {("AzureML Data Scientist", "workspace")}
    # Submitting a job gives the function no write on the registry: the job writes `models`. The
    # one write there is the rollback's, held by its condition to two blobs (test_infra_realtime.py).
    models = {role for role, scope in function if scope == "dl/containers/models"}
    assert models == {"Storage Blob Data Reader", "Storage Blob Data Contributor"}
    conditioned = [
        a.inputs for a in by_type(stack(name), "authorization:RoleAssignment") if "condition" in a.inputs
    ]
    assert len(conditioned) == 1 and conditioned[0]["scope"].endswith("/containers/models")
    # Nothing on the workspace's own storage either (jobs are submitted through ARM only).
    assert not {row for row in function if row[1] == "ml" or row[1].startswith("ml/")}


def test_retrain_job_identity_reads_exports_and_code_and_writes_models_only() -> None:
    grants = retrain_job_grants()
    assert {(g.principal, g.role, g.scope) for g in grants} == {
        (RETRAIN_JOB, "Storage Blob Data Reader", f"container:{EXPORTS_CONTAINER}"),
        (RETRAIN_JOB, "Storage Blob Data Contributor", f"container:{MODELS_CONTAINER}"),
        (RETRAIN_JOB, "Storage Blob Data Reader", CODE_SCOPE),
    }
    assert len(grants) == 3  # no duplicates, nothing on monitoring, the account or the workspace
    assert PRINCIPAL_TYPES[RETRAIN_JOB] == "ServicePrincipal"  # a managed identity
    # Every stack grants them to the identity it declares, and nothing else to that identity.
    for name in STACKS:
        assert {row for row in role_matrix(name) if row[0] == "retrain-job"} == RETRAIN_JOB_GRANTS


def test_role_ids_are_the_built_in_ids() -> None:
    # Each id as Microsoft publishes it (the role definition's "name"), under
    # learn.microsoft.com/azure/role-based-access-control/built-in-roles/:
    # ai-machine-learning#azureml-data-scientist
    assert ROLE_IDS["AzureML Data Scientist"] == "f6c7c914-8db3-469d-8ca1-694a8f32e121"
    # storage#storage-blob-data-reader
    assert ROLE_IDS["Storage Blob Data Reader"] == "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
    # storage#storage-blob-data-contributor
    assert ROLE_IDS["Storage Blob Data Contributor"] == "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    assert all(ROLE[ROLE_IDS[role]] == role for role in ROLE_IDS)  # the two tables agree


def test_the_retrain_job_assignment_names_its_identity_and_the_models_container() -> None:
    """Under Pulumi's mocks: the Rbac component turns the job's grants into assignments for the
    identity it is given, at the container's resource id (the stand-in principal is the object id
    the workspace's user-assigned identity will have)."""
    principal = "33333333-3333-4333-8333-333333333333"
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=config.PROJECT, stack="dev", preview=False)
    captured: dict[str, str] = {}

    @pulumi.runtime.test
    def check() -> pulumi.Output:
        lake = DataLake(
            "datalake",
            DataLakeArgs(
                account_name="stunitdevdl0000",
                resource_group_name="rg-unit",
                location="westeurope",
                sku="Standard_LRS",
                retention_days=7,
                tags={"environment": "dev"},
            ),
        )
        rbac = Rbac(
            "rbac",
            RbacArgs(
                grants=[g for g in retrain_job_grants() if g.scope != CODE_SCOPE],  # the lake's
                principals={RETRAIN_JOB: principal},
                principal_types=PRINCIPAL_TYPES,
                scopes={f"container:{n}": c.id for n, c in lake.containers.items()},
                subscription_id=SUBSCRIPTION,
                environment="dev",
            ),
        )
        models = lake.containers[MODELS_CONTAINER].id
        return pulumi.Output.all(models, *[a.id for a in rbac.assignments]).apply(
            lambda ids: captured.update(models=ids[0])
        )

    check()
    assignments = [r for r in mocks.resources if r.type == "azure-native:authorization:RoleAssignment"]
    by_role = {ROLE[a.inputs["roleDefinitionId"].rsplit("/", 1)[-1]]: a.inputs for a in assignments}
    assert set(by_role) == {"Storage Blob Data Reader", "Storage Blob Data Contributor"}
    writer = by_role["Storage Blob Data Contributor"]
    assert writer["principalId"] == principal
    assert writer["principalType"] == "ServicePrincipal"
    assert writer["scope"] == captured["models"]
    assert writer["scope"].endswith(f"/blobServices/default/containers/{MODELS_CONTAINER}")
    assert by_role["Storage Blob Data Reader"]["scope"].endswith(f"/containers/{EXPORTS_CONTAINER}")
    assert writer["roleDefinitionId"] == (
        f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/"
        f"{ROLE_IDS['Storage Blob Data Contributor']}"
    )


def test_read_only_scoring_input_when_the_export_chain_does_not_publish() -> None:
    synthesis = synthesize("dev", overrides={"exportPublishTables": ""})
    accounts = {
        r.inputs["tags"]["purpose"]: r.azure_name for r in by_type(synthesis, "storage:StorageAccount")
    }
    grants = {
        (ROLE[a.inputs["roleDefinitionId"].rsplit("/", 1)[-1]], a.inputs["scope"].rsplit("/", 1)[-1])
        for a in by_type(synthesis, "authorization:RoleAssignment")
        if a.inputs["scope"].startswith(f"/subscriptions/{SUBSCRIPTION}")
        and accounts["data-lake"] in a.inputs["scope"]
        and a.inputs["principalId"] == synthesis.outputs["functionPrincipalId"]  # not the smoke test's
    }
    assert ("Storage Blob Data Reader", "scoring-input") in grants
    assert ("Storage Blob Data Contributor", "scoring-input") not in grants


@pytest.mark.parametrize("name", STACKS)
def test_every_expected_resource_exists(name: str) -> None:
    synthesis = stack(name)
    counts = {
        "resources:ResourceGroup": 1,
        "storage:StorageAccount": 3,
        "storage:BlobServiceProperties": 1,
        "storage:BlobContainer": 8,  # the six of the storage contract + app-package + code
        "storage:Queue": 3,
        "keyvault:Vault": 1,
        "keyvault:Secret": 1,
        "operationalinsights:Workspace": 1,
        "applicationinsights:Component": 1,
        "machinelearningservices:Workspace": 1,
        "machinelearningservices:EnvironmentVersion": 1,  # the retrain job's (training.py)
        "machinelearningservices:CodeVersion": 1,  # the retrain job's code (training.py)
        "managedidentity:UserAssignedIdentity": 1,  # the retrain job's (workspace.py)
        "web:AppServicePlan": 1,
        "web:WebApp": 1,
        "resources:Deployment": 1,
        "eventgrid:SystemTopic": 1,
        "eventgrid:SystemTopicEventSubscription": 1,
        "monitor:ActionGroup": 1,
        "monitor:ScheduledQueryRule": 8,  # 3 on operations, 5 on the model (alerts.py)
        "network:VirtualNetwork": 1 if name == "prod" else 0,
        "network:Subnet": 2 if name == "prod" else 0,  # the function's (delegated) + private endpoints
        "network:PrivateEndpoint": 1 if name == "prod" else 0,  # the ML workspace (public access off)
        "network:PrivateDnsZoneGroup": 1 if name == "prod" else 0,
        "privatedns:PrivateZone": 2 if name == "prod" else 0,
        "privatedns:VirtualNetworkLink": 2 if name == "prod" else 0,
    }
    assert {t: len(by_type(synthesis, t)) for t in counts} == counts
    containers = {c.azure_name for c in by_type(synthesis, "storage:BlobContainer")}
    assert containers == {
        "exports",
        "scoring-input",
        "predictions",
        "rejected",
        "models",
        "monitoring",
        "app-package",
        CODE_CONTAINER,
    }
    components = {r.type for r in synthesis.resources if r.type.startswith("mlops:azure:")}
    expected = {
        "DataLake",
        "MlWorkspace",
        "TrainingEnvironment",
        "TrainingCode",
        "FunctionApp",
        "Rbac",
        "CodeRelease",
        "BlobEvents",
        "Alerts",
    }
    isolated = {"Network", "PrivateLink"} if name == "prod" else set()
    assert components == {f"mlops:azure:{c}" for c in expected | isolated}


@pytest.mark.parametrize("name", STACKS)
def test_storage_is_keyless_private_and_recoverable(name: str) -> None:
    synthesis = stack(name)
    for account in by_type(synthesis, "storage:StorageAccount"):
        inputs = account.inputs
        assert inputs["allowSharedKeyAccess"] is False
        assert inputs["allowBlobPublicAccess"] is False
        assert inputs["enableHttpsTrafficOnly"] is True
        assert inputs["minimumTlsVersion"] == "TLS1_2"
        assert inputs["encryption"]["requireInfrastructureEncryption"] is True
    lake = [
        a for a in by_type(synthesis, "storage:StorageAccount") if a.inputs["tags"]["purpose"] == "data-lake"
    ]
    assert lake[0].inputs["sku"]["name"] == ("Standard_GZRS" if name == "prod" else "Standard_LRS")
    protection = by_type(synthesis, "storage:BlobServiceProperties")[0].inputs
    assert protection["accountName"] == lake[0].azure_name
    assert protection["isVersioningEnabled"] is True
    assert protection["deleteRetentionPolicy"] == {"enabled": True, "days": 30 if name == "prod" else 7}
    assert all(c.inputs["publicAccess"] == "None" for c in by_type(synthesis, "storage:BlobContainer"))


@pytest.mark.parametrize("name", STACKS)
def test_network_isolation_only_where_configured(name: str) -> None:
    synthesis = stack(name)
    isolated = name == "prod"
    app = by_type(synthesis, "web:WebApp")[0].inputs
    assert bool(app.get("virtualNetworkSubnetId")) is isolated
    for account in by_type(synthesis, "storage:StorageAccount"):
        purpose = account.inputs["tags"]["purpose"]
        expected = "Deny" if isolated and purpose != "function-host" else "Allow"
        assert account.inputs["networkRuleSet"]["defaultAction"] == expected, purpose
    vault = by_type(synthesis, "keyvault:Vault")[0].inputs["properties"]
    assert vault["networkAcls"]["defaultAction"] == ("Deny" if isolated else "Allow")
    workspace = by_type(synthesis, "machinelearningservices:Workspace")[0].inputs
    assert workspace["publicNetworkAccess"] == ("Disabled" if isolated else "Enabled")
    if isolated:
        subnet = by_type(synthesis, "network:Subnet")[0].inputs
        assert subnet["delegations"][0]["serviceName"] == "Microsoft.App/environments"
        assert {e["service"] for e in subnet["serviceEndpoints"]} == {
            "Microsoft.Storage",
            "Microsoft.KeyVault",
        }
        assert vault["networkAcls"]["ipRules"] == [{"value": "203.0.113.0/24"}]


@pytest.mark.parametrize("name", STACKS)
def test_function_app_is_flex_python_311_and_hardened(name: str) -> None:
    synthesis = stack(name)
    plan = by_type(synthesis, "web:AppServicePlan")[0].inputs
    assert (plan["sku"]["name"], plan["sku"]["tier"], plan["reserved"]) == ("FC1", "FlexConsumption", True)
    app = by_type(synthesis, "web:WebApp")[0].inputs
    assert app["kind"] == "functionapp,linux"
    assert app["httpsOnly"] is True
    assert app["identity"]["type"] == "SystemAssigned"
    # Microsoft's Flex samples set only app settings in siteConfig (IaC/bicep/core/host/
    # function.bicep); ftpsState is refused on Flex (ARM 51021). TLS 1.2 is also the default of
    # new apps ("Manage minimum TLS versions", learn.microsoft.com/azure/app-service/tls-minimum-version).
    assert set(app["siteConfig"]) == {"appSettings", "minTlsVersion"}
    assert app["siteConfig"]["minTlsVersion"] == "1.2"
    flex = app["functionAppConfig"]
    assert flex["runtime"] == {"name": "python", "version": "3.11"}
    assert flex["deployment"]["storage"]["authentication"]["type"] == "SystemAssignedIdentity"
    assert flex["deployment"]["storage"]["value"].endswith(".blob.core.windows.net/app-package")
    expected_max = {"dev": 10, "preprod": 20, "prod": 40}[name]
    assert flex["scaleAndConcurrency"] == {"maximumInstanceCount": expected_max, "instanceMemoryMB": 2048}


@pytest.mark.parametrize("name", STACKS)
def test_app_settings_satisfy_the_settings_contract(name: str) -> None:
    """The functions' own settings loader accepts what the cloud sets: no key, no missing name."""
    synthesis = stack(name)
    settings = {
        s["name"]: s["value"] for s in by_type(synthesis, "web:WebApp")[0].inputs["siteConfig"]["appSettings"]
    }
    vault = by_type(synthesis, "keyvault:Vault")[0].azure_name
    assert settings["DB_CONNECTION_STRING"] == (
        f"@Microsoft.KeyVault(SecretUri=https://{vault}.vault.azure.net/secrets/db-connection-string/)"
    )
    assert (
        settings["AzureWebJobsStorage__credential"] == settings["DataLake__credential"] == "managedidentity"
    )
    assert "AzureWebJobsStorage" not in settings
    assert not [v for v in settings.values() if "AccountKey=" in v or "SharedAccessSignature" in v]
    loaded = load_settings(settings)  # as the worker would, after Key Vault resolves the reference
    assert loaded.data_lake.identity_based
    assert loaded.data_lake.blob_service_uri == synthesis.outputs["dataLakeBlobEndpoint"]
    assert loaded.scoring.blob_source == "EventGrid"
    assert loaded.scoring.duplicate_ids == settings["SCORING_DUPLICATE_IDS"] == "keep"
    assert loaded.model_stage == name
    vault_entry = by_type(synthesis, "keyvault:Secret")[0].inputs
    assert vault_entry["secretName"] == "db-connection-string"
    assert vault_entry["properties"]["value"] == SECRET_PLACEHOLDER


@pytest.mark.parametrize("name", STACKS)
def test_key_vault_and_workspace_security(name: str) -> None:
    synthesis = stack(name)
    vault = by_type(synthesis, "keyvault:Vault")[0].inputs["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True
    assert vault["enablePurgeProtection"] is True
    workspace = by_type(synthesis, "machinelearningservices:Workspace")[0].inputs
    assert workspace["keyVault"].endswith(f"/vaults/{by_type(synthesis, 'keyvault:Vault')[0].azure_name}")
    assert workspace["systemDatastoresAuthMode"] == "identity"
    insights = by_type(synthesis, "applicationinsights:Component")[0].inputs
    assert insights["workspaceResourceId"].endswith(
        by_type(synthesis, "operationalinsights:Workspace")[0].azure_name
    )


@pytest.mark.parametrize("name", STACKS)
def test_the_retrain_identity_is_attached_granted_and_named_to_the_app(name: str) -> None:
    """Serverless jobs run as a user-assigned identity attached to the workspace
    (how-to-use-serverless-compute): the workspace keeps its own identity and adds the job's (no
    primary), the job's two grants name that identity's object id, and the monitor learns the
    identity from its app settings."""
    synthesis = stack(name)
    (identity,) = by_type(synthesis, "managedidentity:UserAssignedIdentity")
    group = synthesis.outputs["resourceGroup"]
    identity_id = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/"
        f"Microsoft.ManagedIdentity/userAssignedIdentities/{identity.azure_name}"
    )
    short = {"dev": "dev", "preprod": "pre", "prod": "prd"}[name]
    assert identity.azure_name == f"id-mlops-retrain-{short}"
    assert identity.inputs["resourceGroupName"] == group
    (workspace,) = by_type(synthesis, "machinelearningservices:Workspace")
    assert workspace.inputs["identity"]["type"] == "SystemAssigned,UserAssigned"
    assert workspace.inputs["identity"]["userAssignedIdentities"] == [identity_id]
    assert "primaryUserAssignedIdentity" not in workspace.inputs

    principal = synthesis.outputs["retrainJobPrincipalId"]  # the identity's principalId output
    assert principal == str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{identity.azure_name}.principal"))
    assert principal != synthesis.outputs["functionPrincipalId"]
    mine = [
        a.inputs
        for a in by_type(synthesis, "authorization:RoleAssignment")
        if a.inputs["principalId"] == principal
    ]
    lake = next(
        a.azure_name
        for a in by_type(synthesis, "storage:StorageAccount")
        if a.inputs["tags"]["purpose"] == "data-lake"
    )
    containers = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/"
        f"Microsoft.Storage/storageAccounts/{lake}/blobServices/default/containers"
    )
    ml_storage = next(
        a.azure_name
        for a in by_type(synthesis, "storage:StorageAccount")
        if a.inputs["tags"]["purpose"] == "ml-workspace"
    )
    code = containers.replace(f"/storageAccounts/{lake}/", f"/storageAccounts/{ml_storage}/")
    assert sorted((ROLE[a["roleDefinitionId"].rsplit("/", 1)[-1]], a["scope"]) for a in mine) == [
        ("Storage Blob Data Contributor", f"{containers}/{MODELS_CONTAINER}"),
        ("Storage Blob Data Reader", f"{containers}/{EXPORTS_CONTAINER}"),
        ("Storage Blob Data Reader", f"{code}/{CODE_CONTAINER}"),
    ]
    assert {a["principalType"] for a in mine} == {"ServicePrincipal"}

    settings = {
        s["name"]: s["value"] for s in by_type(synthesis, "web:WebApp")[0].inputs["siteConfig"]["appSettings"]
    }
    assert settings["RETRAIN_JOB_IDENTITY"] == identity_id
    assert settings["RETRAIN_JOB_CLIENT_ID"] == str(
        uuid.uuid5(uuid.NAMESPACE_DNS, f"{identity.azure_name}.client")
    )
    assert settings["RETRAIN_WORKSPACE"] == (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/"
        f"Microsoft.MachineLearningServices/workspaces/{workspace.azure_name}"
    )
    loaded = load_settings(settings).retraining
    assert (loaded.job_identity, loaded.job_client_id) == (identity_id, settings["RETRAIN_JOB_CLIENT_ID"])
    assert loaded.runner == "azureml"  # every Azure stack submits Azure ML jobs
    # how far a retrain climbs by itself, per stack (Pulumi.<stack>.yaml); prod still needs an approval
    assert loaded.promote_to == {"dev": ("dev",), "preprod": ("dev", "preprod"),
                                 "prod": ("dev", "preprod", "prod")}[name]  # fmt: skip


@pytest.mark.parametrize("name", STACKS)
def test_blob_trigger_events_reach_score_blob(name: str) -> None:
    synthesis = stack(name)
    topic = by_type(synthesis, "eventgrid:SystemTopic")[0].inputs
    lake = next(
        a for a in by_type(synthesis, "storage:StorageAccount") if a.inputs["tags"]["purpose"] == "data-lake"
    )
    assert topic["source"].endswith(f"/storageAccounts/{lake.azure_name}")
    assert topic["topicType"] == "Microsoft.Storage.StorageAccounts"
    subscription = by_type(synthesis, "eventgrid:SystemTopicEventSubscription")[0].inputs
    assert subscription["filter"]["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert (
        subscription["filter"]["subjectBeginsWith"] == "/blobServices/default/containers/scoring-input/blobs/"
    )
    assert subscription["filter"]["subjectEndsWith"] == ".csv"
    url = subscription["destination"]["endpointUrl"]
    host = synthesis.outputs["functionAppHostName"]
    assert (
        url
        == f"https://{host}/runtime/webhooks/blobs?functionName=Host.Functions.score_blob&code=mock-blob-key"
    )
    assert '@app.function_name("score_blob")' in (REPO_ROOT / "functions" / "function_app.py").read_text()


@pytest.mark.parametrize("name", STACKS)
def test_alerts_watch_failures_late_exports_and_rejections(name: str) -> None:
    synthesis = stack(name)
    group = by_type(synthesis, "monitor:ActionGroup")[0].inputs
    expected_emails = {
        "dev": ["mlops-dev@example.com"],
        "preprod": ["mlops-oncall@example.com"],
        "prod": ["mlops-oncall@example.com", "data-platform@example.com"],
    }[name]
    assert [r["emailAddress"] for r in group["emailReceivers"]] == expected_emails
    rules = {
        r.azure_name.split("-mlops-")[0]: r.inputs for r in by_type(synthesis, "monitor:ScheduledQueryRule")
    }
    assert set(rules) == {
        "alert-function-failures",
        "alert-export-late",
        "alert-rejected-files",
        # the model's monitoring (tests/test_infra_alerts.py)
        "alert-drift-streak",
        "alert-quality-below-baseline",
        "alert-estimate-gap",
        "alert-quality-stale",
        "alert-rollback",  # the real-time endpoint's automatic rollback
    }
    insights_name = by_type(synthesis, "applicationinsights:Component")[0].azure_name
    for rule in rules.values():
        assert rule["scopes"][0].endswith(f"/components/{insights_name}")
        assert rule["actions"]["actionGroups"][0].endswith(f"/actionGroups/{group['actionGroupName']}")
    assert "+ 4h" in rules["alert-export-late"]["criteria"]["allOf"][0]["query"]
    # The rejected-files query matches the lines function_app.py logs for a rejected file.
    source = (REPO_ROOT / "functions" / "function_app.py").read_text()
    needle = re.search(r'message has "([^"]+)"', REJECTED_FILES)
    assert needle is not None
    for function in ("score_blob", "score_shard"):
        template = re.search(rf'log\.info\("({function} %s: %s \(%s\))"', source)
        assert template is not None, function
        logged = template.group(1) % ("clients.csv", "rejected", "binary: not a text file")
        assert needle.group(1) in logged, (needle.group(1), logged)
        assert needle.group(1) not in template.group(1) % ("clients.csv", "scored", "10 rows")


def test_each_stack_reads_its_own_stack_file() -> None:
    assert stack("dev").outputs["resourceGroup"] == "rg-mlops-dev"
    assert stack("prod").outputs["resourceGroup"] == "rg-mlops-prod"
    assert "mlops-azure-functions:dbConnectionString" not in stack_config("prod")  # secrets never in the file
    names = [stack(n).outputs["dataLakeAccount"] for n in STACKS]
    assert len(set(names)) == 3


def test_missing_secret_stops_the_program_with_the_command_to_fix_it() -> None:
    pulumi.runtime.set_mocks(RecordingMocks(), project=config.PROJECT, stack="dev", preview=False)
    pulumi.runtime.set_all_config(stack_config("dev"))
    with pytest.raises(config.ConfigError, match="pulumi config set --secret dbConnectionString"):
        build(config.load())


def _app_settings(synthesis) -> dict[str, str]:
    site = by_type(synthesis, "web:WebApp")[0]
    return {s["name"]: s["value"] for s in site.inputs["siteConfig"]["appSettings"]}


def _submitted_environment_id(settings: dict[str, str]) -> str:
    return _submitted_job(settings)["environmentId"]


def _submitted_job(settings: dict[str, str]) -> dict:
    """The job properties the monitor PUTs (functions/retrain/request.py submit_azureml), sent to
    a loopback server instead of ARM."""
    import datetime as dt
    import json
    from http.server import BaseHTTPRequestHandler

    from functions.retrain.request import submit_azureml
    from tests.support import loopback_server

    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(201)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    loaded = load_settings({**settings, "DB_CONNECTION_STRING": "-", "RETRAIN_RUNNER": "azureml"})
    with loopback_server(Handler) as base:
        day, evaluated = dt.date(2024, 5, 1), dt.date(2024, 5, 2)
        submit_azureml(loaded, {"fired": ["schedule"]}, day, evaluated, lambda: "t", base)
    return seen[0]["properties"]


@pytest.mark.parametrize("name", STACKS)
def test_the_training_environment_is_in_the_workspace_and_is_the_one_the_job_names(name: str) -> None:
    """The environment exists in the stack's workspace, on Microsoft's training base image, with a
    conda file pinning the training packages as requirements.txt pins them; the monitor's job
    names exactly that environment id (same name, same version)."""
    synthesis = stack(name)
    (environment,) = by_type(synthesis, "machinelearningservices:EnvironmentVersion")
    (workspace,) = by_type(synthesis, "machinelearningservices:Workspace")
    assert environment.inputs["workspaceName"] == workspace.azure_name
    assert environment.inputs["resourceGroupName"] == synthesis.outputs["resourceGroup"]
    properties = environment.inputs["properties"]
    assert properties["image"] == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
    assert properties["osType"] == "Linux"
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^(scikit-learn|skl2onnx|onnxruntime|onnx)(\S*)", line)
        if match:
            pins[match.group(1)] = line.split("#", 1)[0].strip()
    for line in (REPO_ROOT / "functions" / "requirements.txt").read_text().splitlines():
        if line.startswith("onnxruntime"):
            pins["onnxruntime"] = line.strip()
    assert set(pins) == {"scikit-learn", "skl2onnx", "onnx", "onnxruntime"}
    for pin in pins.values():
        assert f'      - "{pin}"\n' in properties["condaFile"]
    settings = _app_settings(synthesis)
    assert settings["RETRAIN_ENVIRONMENT"] == f"{environment.inputs['name']}:{environment.inputs['version']}"
    assert _submitted_environment_id(settings) == synthesis.outputs["trainingEnvironment"]


def test_the_environment_follows_the_stacks_retrain_environment_setting() -> None:
    """One home for the name and version: a stack's `retrainEnvironment` moves both the resource
    and the app setting."""
    synthesis = synthesize("dev", overrides={"retrainEnvironment": "bank-marketing-train:7"})
    (environment,) = by_type(synthesis, "machinelearningservices:EnvironmentVersion")
    assert (environment.inputs["name"], environment.inputs["version"]) == ("bank-marketing-train", "7")
    assert _submitted_environment_id(_app_settings(synthesis)).endswith(
        "/environments/bank-marketing-train/versions/7"
    )


@pytest.mark.parametrize("name", STACKS)
def test_the_code_asset_is_the_uploaded_folder_and_the_one_the_job_names(name: str) -> None:
    """The code version exists in the stack's workspace, named by a 16-hex content hash, pointing
    at that folder of the workspace storage's code container; the app is told its id and the
    monitor's job sends it as `codeId`."""
    from infra.archive import code_bundle

    synthesis = stack(name)
    (code,) = by_type(synthesis, "machinelearningservices:CodeVersion")
    (workspace,) = by_type(synthesis, "machinelearningservices:Workspace")
    ml_storage = next(
        a.azure_name
        for a in by_type(synthesis, "storage:StorageAccount")
        if a.inputs["tags"]["purpose"] == "ml-workspace"
    )
    group = synthesis.outputs["resourceGroup"]
    assert code.inputs["workspaceName"] == workspace.azure_name
    assert code.inputs["resourceGroupName"] == group
    assert code.inputs["name"] == "bank-marketing-code"
    version = code.inputs["version"]
    assert re.fullmatch(r"[0-9a-f]{16}", version)
    assert version == code_bundle().digest  # the hash of model/ and lake/ as they are now
    uri = f"https://{ml_storage}.blob.core.windows.net/{CODE_CONTAINER}/{version}/"
    assert code.inputs["properties"]["codeUri"] == uri
    code_id = synthesis.outputs["trainingCode"]
    assert code_id == (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/"
        f"Microsoft.MachineLearningServices/workspaces/{workspace.azure_name}"
        f"/codes/bank-marketing-code/versions/{version}"
    )
    settings = _app_settings(synthesis)
    assert settings["RETRAIN_CODE_ID"] == code_id
    assert load_settings({**settings, "DB_CONNECTION_STRING": "-"}).retraining.code_id == code_id
    job = _submitted_job(settings)
    assert job["codeId"] == code_id
    assert job["environmentId"] == synthesis.outputs["trainingEnvironment"]


def test_the_code_is_uploaded_during_up_after_its_grants_and_named_by_the_code_version() -> None:
    """`pulumi up` uploads the folder once the code container's two grants are declared; the code
    version names the folder the uploader answered."""
    from infra.cloud import offline_ops
    from infra.components.release import package_url
    from infra.synth import code_archive

    uploads: list[tuple] = []

    def upload_code(endpoint: str, container: str, bundle) -> str:
        granted = [
            r for r in mocks.resources if r.type == "azure-native:authorization:RoleAssignment"
            and r.inputs["scope"].endswith(f"/containers/{CODE_CONTAINER}")
        ]  # fmt: skip
        uploads.append((endpoint, container, bundle.digest, len(granted)))
        return f"{endpoint}{container}/{bundle.digest}/"

    mocks = mock_stack("dev")
    ops = offline_ops(package_url, code_uploader=upload_code)
    pulumi.runtime.test(
        lambda: pulumi.Output.all(**build(config.load(), code_archive(), ops=ops)).apply(lambda _: None)
    )()
    ((endpoint, container, digest, granted),) = uploads
    assert container == CODE_CONTAINER and endpoint.endswith(".blob.core.windows.net/")
    assert granted == 2  # the deployer's write and the job's read exist before the upload
    (code,) = [r for r in mocks.resources if r.type == "azure-native:machinelearningservices:CodeVersion"]
    assert code.inputs["properties"]["codeUri"] == f"{endpoint}{container}/{digest}/"
