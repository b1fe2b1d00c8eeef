"""FunctionApp: Flex Consumption plan, the app with its identity and settings, its host storage.

Every connection is identity-based: `AzureWebJobsStorage__*` and `DataLake__*` name service
URIs, the database connection string is a Key Vault reference, and no storage key exists to leak
(shared keys are off on every account).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.keyvault as keyvault
import pulumi_azure_native.web as web

from infra.components.storage import private_container, secure_account
from infra.config import AppSettings
from lake.contract import DATA_LAKE, PACKAGE_CONTAINER

PYTHON_VERSION = "3.11"
DB_SECRET_NAME = "db-connection-string"  # noqa: S105 (the name, not the value)
# The real-time endpoint (functions/function_app.py): POST /api/score at auth level FUNCTION, so a
# caller sends a function key (`x-functions-key` header or `?code=`).
SCORE_FUNCTION = "score"
SCORE_ROUTE = "api/score"
DEFAULT_KEY = "default"  # the key the platform generates for every function; we create none
KEY_NOT_LISTED = "not-listed: az functionapp function keys list --function-name score"


@dataclass(frozen=True)
class FunctionAppArgs:
    app_name: str
    plan_name: str
    host_storage_name: str
    resource_group_name: pulumi.Input[str]
    location: str
    data_lake_blob_endpoint: pulumi.Input[str]
    data_lake_queue_endpoint: pulumi.Input[str]
    app_insights_connection_string: pulumi.Input[str]
    vault_name: pulumi.Input[str]
    vault_uri: pulumi.Input[str]
    db_connection_string: pulumi.Input[str]
    ml_workspace_id: pulumi.Input[str]  # where the monitor submits retraining jobs (RETRAIN_WORKSPACE)
    # The user-assigned identity the retraining job runs as: its resource id (RETRAIN_JOB_IDENTITY)
    # and client id (RETRAIN_JOB_CLIENT_ID), from MlWorkspace.retrain_identity.
    retrain_identity_id: pulumi.Input[str]
    retrain_identity_client_id: pulumi.Input[str]
    retrain_code_id: pulumi.Input[str]  # the job's code asset (TrainingCode's code version id)
    settings: AppSettings
    max_instances: int
    instance_memory_mb: int
    tags: dict[str, str]
    subnet_id: pulumi.Input[str] | None = None


def app_settings(
    args: FunctionAppArgs,
    host_blob: pulumi.Input[str],
    host_queue: pulumi.Input[str],
    host_table: pulumi.Input[str],
) -> dict:
    """The settings contract (functions/settings/catalog.py) as the cloud sets it.

    The `Cloud.RESOURCE` entries come from the stack's resources here; the `Cloud.VALUE` entries
    from the stack's config (`args.settings`); the rest keep the app's defaults.

    The host's identity-based connection names all three services, as Microsoft's Flex samples
    do (blob, queue and table service URIs with their three data roles): "Connecting to host
    storage with an identity", learn.microsoft.com/azure/azure-functions/functions-reference
    (#connecting-to-host-storage-with-an-identity).
    """
    return {
        "AzureWebJobsStorage__blobServiceUri": host_blob,
        "AzureWebJobsStorage__queueServiceUri": host_queue,
        "AzureWebJobsStorage__tableServiceUri": host_table,
        "AzureWebJobsStorage__credential": "managedidentity",
        f"{DATA_LAKE}__blobServiceUri": args.data_lake_blob_endpoint,
        f"{DATA_LAKE}__queueServiceUri": args.data_lake_queue_endpoint,
        f"{DATA_LAKE}__credential": "managedidentity",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": args.app_insights_connection_string,
        "DB_CONNECTION_STRING": pulumi.Output.concat(
            "@Microsoft.KeyVault(SecretUri=", args.vault_uri, "secrets/", DB_SECRET_NAME, "/)"
        ),
        "RETRAIN_WORKSPACE": args.ml_workspace_id,
        "RETRAIN_JOB_IDENTITY": args.retrain_identity_id,
        "RETRAIN_JOB_CLIENT_ID": args.retrain_identity_client_id,
        "RETRAIN_CODE_ID": args.retrain_code_id,
        **args.settings.values,  # the stack's values of the settings catalog (infra/config.py)
    }


class FunctionApp(pulumi.ComponentResource):
    site: web.WebApp
    principal_id: pulumi.Output[str]

    def __init__(self, name: str, args: FunctionAppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:FunctionApp", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.host_storage = secure_account(
            f"{name}-host-storage",
            account_name=args.host_storage_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku="Standard_LRS",
            purpose="function-host",
            tags=args.tags,
            parent=self,
        )
        self.package_container = private_container(
            f"{name}-package-container",
            account=self.host_storage,
            container_name=PACKAGE_CONTAINER,
            resource_group_name=args.resource_group_name,
            parent=self,
        )
        self.db_secret = keyvault.Secret(
            f"{name}-db-connection-string",
            secret_name=DB_SECRET_NAME,
            vault_name=args.vault_name,
            resource_group_name=args.resource_group_name,
            properties=keyvault.SecretPropertiesArgs(
                value=pulumi.Output.secret(args.db_connection_string), content_type="text/plain"
            ),
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["properties"]),
        )
        plan = web.AppServicePlan(
            f"{name}-plan",
            name=args.plan_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="functionapp",
            reserved=True,  # Linux
            sku=web.SkuDescriptionArgs(name="FC1", tier="FlexConsumption"),
            tags=args.tags,
            opts=child,
        )
        endpoints = self.host_storage.primary_endpoints
        settings = app_settings(args, endpoints.blob, endpoints.queue, endpoints.table)
        self.site = web.WebApp(
            f"{name}-site",
            name=args.app_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="functionapp,linux",
            server_farm_id=plan.id,
            https_only=True,
            client_cert_enabled=False,
            public_network_access="Enabled",  # Event Grid delivers blob events over HTTPS
            identity=web.ManagedServiceIdentityArgs(type="SystemAssigned"),
            key_vault_reference_identity="SystemAssigned",
            virtual_network_subnet_id=args.subnet_id,
            function_app_config=web.FunctionAppConfigArgs(
                deployment=web.FunctionsDeploymentArgs(
                    storage=web.FunctionsDeploymentStorageArgs(
                        type="blobContainer",
                        # The container resource's own name output: the site depends on the
                        # container existing, as the deployment storage docs require.
                        value=pulumi.Output.concat(endpoints.blob, self.package_container.name),
                        authentication=web.FunctionsDeploymentStorageAuthenticationArgs(
                            type="SystemAssignedIdentity"
                        ),
                    )
                ),
                runtime=web.FunctionsRuntimeArgs(name="python", version=PYTHON_VERSION),
                scale_and_concurrency=web.FunctionsScaleAndConcurrencyArgs(
                    maximum_instance_count=args.max_instances,
                    instance_memory_mb=args.instance_memory_mb,
                ),
            ),
            # Only what Microsoft's Flex samples set (IaC/bicep/core/host/function.bicep: app
            # settings), plus minTlsVersion at the platform default: ftpsState is refused on Flex
            # (ARM 51021) and FTP/SCM-era properties are deprecated there (FLEX_DEPRECATED in
            # infra/policies.py).
            # A plain dict, not web.SiteConfigArgs: the Args class fills in http20Enabled=true,
            # netFrameworkVersion=v4.6 and localMySqlEnabled=false on its own, which ARM would then
            # receive for a Flex site.
            site_config=web.SiteConfigArgsDict(
                min_tls_version="1.2",
                app_settings=[web.NameValuePairArgs(name=k, value=v) for k, v in settings.items()],
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.db_secret]),
        )
        self.principal_id = self.site.identity.apply(
            lambda identity: identity.principal_id if identity else ""
        )
        self.register_outputs({"app_name": self.site.name, "principal_id": self.principal_id})


def score_url(host_name: pulumi.Input[str]) -> pulumi.Output[str]:
    """`https://{defaultHostName}/api/score`: where callers POST rows to be scored."""
    return pulumi.Output.concat("https://", host_name, "/", SCORE_ROUTE)


def score_key(
    app_name: pulumi.Input[str], resource_group_name: pulumi.Input[str], indexed: pulumi.Input[str]
) -> pulumi.Output[str]:
    """The `score` function's platform-generated `default` key, as a secret, read after deployment.

    Read with the documented list operation (Web Apps - List Function Keys, `POST
    .../sites/{name}/functions/{function}/listkeys`; pulumi-azure-native `web.listWebAppFunctionKeys`),
    never created by us: no key value lives in the program or its config. Keys cannot be created
    as resources (pulumi/pulumi-azure-native#844: no GET endpoint), and the function exists only
    once the deployed host has indexed it, so the call waits on `indexed` (the host's
    `blobs_extension` key, which the same indexing creates: infra/cloud.py) and is skipped by
    `preview`. If the platform lists no `default` key the output says how to list it.
    """

    def listed(values: list[str]) -> pulumi.Input[str]:
        if pulumi.runtime.is_dry_run():
            return KEY_NOT_LISTED
        keys = web.list_web_app_function_keys_output(
            function_name=SCORE_FUNCTION, name=values[0], resource_group_name=values[1]
        )
        return keys.properties.apply(lambda found: (found or {}).get(DEFAULT_KEY) or KEY_NOT_LISTED)

    return pulumi.Output.secret(pulumi.Output.all(app_name, resource_group_name, indexed).apply(listed))
