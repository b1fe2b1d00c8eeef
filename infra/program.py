"""The Pulumi program: one stack (dev, preprod or prod) built from the components, in dependency order.

resource group -> [network] -> data lake, ML workspace (vault, telemetry, retrain identity), training
environment -> the code container's role assignments -> the retrain job's code (upload, code version)
-> function app -> role assignments -> code release (needs the app's storage roles) -> blob events (need the
deployed code's blob extension key) -> alerts
"""

from __future__ import annotations

from collections.abc import Callable

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.resources as resources

from infra.archive import CodeArchive, CodeBundle, build_archive, code_bundle
from infra.cloud import CloudOps
from infra.components.alerts import Alerts, AlertsArgs, alert_rules
from infra.components.datalake import DataLake, DataLakeArgs
from infra.components.events import BlobEvents, BlobEventsArgs
from infra.components.functionapp import FunctionApp, FunctionAppArgs, score_key, score_url
from infra.components.network import Network, NetworkArgs
from infra.components.privatelink import WORKSPACE_GROUP, WORKSPACE_ZONES, PrivateLink, PrivateLinkArgs
from infra.components.rbac import Rbac, RbacArgs
from infra.components.release import CodeRelease, CodeReleaseArgs
from infra.components.storage import Firewall
from infra.components.training import (
    TrainingCode,
    TrainingCodeArgs,
    TrainingEnvironment,
    TrainingEnvironmentArgs,
)
from infra.components.workspace import MlWorkspace, MlWorkspaceArgs
from infra.config import StackConfig
from infra.naming import Names
from infra.providers import required_namespaces
from infra.roles import (
    CODE_SCOPE,
    DATA_SCIENTISTS,
    DEPLOYER,
    FUNCTION,
    ML_ENGINEERS,
    PRINCIPAL_TYPES,
    RETRAIN_JOB,
    role_matrix,
)
from infra.upload import code_url
from lake.contract import PACKAGE_CONTAINER


def _during_up(step: Callable[[], str], preview: str) -> str:
    return preview if pulumi.runtime.is_dry_run() else step()


def build(
    cfg: StackConfig,
    archive: CodeArchive | None = None,
    ops: CloudOps | None = None,
    code: CodeBundle | None = None,
) -> dict[str, pulumi.Output]:
    """Declare every resource of the stack; return the stack outputs.

    `ops` is what `pulumi up` does against Azure besides declaring resources (infra/cloud.py:
    provider check, package upload, code upload, key wait, Key Vault reference refresh); the
    offline plan and the tests pass `offline_ops()`. `code` is the retrain job's code (model/,
    lake/; infra/archive.py code_bundle by default).
    """
    if ops is None:
        from infra.cloud import azure_ops

        ops = azure_ops()
    names = Names(cfg.prefix, cfg.environment)
    tags = cfg.tags
    client = authorization.get_client_config_output()
    namespaces = required_namespaces(cfg.network_isolation)
    # Every resource hangs off the group's name, so nothing is created before the check passes.
    group_name = client.subscription_id.apply(
        lambda subscription: _during_up(
            lambda: (ops.check_providers(subscription, namespaces), names.resource_group)[1],
            names.resource_group,
        )
    )
    group = resources.ResourceGroup(
        "resource-group", resource_group_name=group_name, location=cfg.location, tags=tags
    )
    rg = group.name

    firewall = None
    subnet_id = None
    network: Network | None = None
    if cfg.network_isolation:
        network = Network(
            "network",
            NetworkArgs(
                vnet_name=names.virtual_network, resource_group_name=rg, location=cfg.location, tags=tags
            ),
        )
        subnet_id = network.function_subnet_id
        firewall = Firewall(subnet_ids=[subnet_id], ip_ranges=cfg.allowed_ip_ranges)

    lake = DataLake(
        "datalake",
        DataLakeArgs(
            account_name=names.storage_account("dl"),
            resource_group_name=rg,
            location=cfg.location,
            # prod: zone- and geo-redundant (Checkov CKV_AZURE_206): the registry of record and the
            # predictions survive a region loss; dev and preprod hold copies (infra/checkov_waivers.py)
            sku="Standard_GZRS" if cfg.environment == "prod" else "Standard_LRS",
            retention_days=30 if cfg.environment == "prod" else 7,
            tags=tags,
            firewall=firewall,
        ),
    )
    ml = MlWorkspace(
        "ml",
        MlWorkspaceArgs(
            workspace_name=names.ml_workspace,
            key_vault_name=names.key_vault,
            storage_account_name=names.storage_account("ml"),
            log_analytics_name=names.log_analytics,
            app_insights_name=names.app_insights,
            retrain_identity_name=names.retrain_identity,
            resource_group_name=rg,
            location=cfg.location,
            tenant_id=client.tenant_id,
            log_retention_days=cfg.sizing.log_retention_days,
            tags=tags,
            isolated=cfg.network_isolation,
            firewall=firewall,
        ),
    )
    # The environment the retraining job names (RETRAIN_ENVIRONMENT, the same value the app reads).
    training = TrainingEnvironment(
        "ml-training",
        TrainingEnvironmentArgs(
            workspace_name=ml.workspace.name,
            resource_group_name=rg,
            environment=cfg.app["RETRAIN_ENVIRONMENT"],
            tags=tags,
        ),
    )
    if network is not None:
        # Public access to the workspace is off: the virtual network reaches it privately.
        PrivateLink(
            "ml-private-link",
            PrivateLinkArgs(
                endpoint_name=f"pe-{names.ml_workspace}",
                target_id=ml.workspace.id,
                group_id=WORKSPACE_GROUP,
                zones=WORKSPACE_ZONES,
                subnet_id=network.endpoint_subnet_id,
                vnet_id=network.vnet_id,
                resource_group_name=rg,
                location=cfg.location,
                tags=tags,
            ),
        )
    grants = role_matrix(
        cfg.environment,
        publishes_for_scoring=cfg.app.publishes_for_scoring,
        model_name=cfg.app["MODEL_NAME"],  # the rollback may write this model's two files only
    )
    principals: dict[str, pulumi.Input[str]] = {
        DATA_SCIENTISTS: cfg.data_scientists_group,
        ML_ENGINEERS: cfg.ml_engineers_group,
        DEPLOYER: client.object_id,
        RETRAIN_JOB: ml.retrain_identity.principal_id,  # the job's user-assigned identity
    }

    def assign(name: str, selected: list, scopes: dict[str, pulumi.Input[str]]) -> Rbac:
        return Rbac(
            name,
            RbacArgs(
                grants=selected,
                principals=dict(principals),
                principal_types=PRINCIPAL_TYPES | {DEPLOYER: cfg.deployer_principal_type},
                scopes=scopes,
                subscription_id=client.subscription_id,
                environment=cfg.environment,
            ),
        )

    # The retrain job's code: the code container's grants first (the deployer writes, the job
    # reads), then the upload during `up`, then the code version naming the uploaded folder. All
    # before the app, which is told the code version's id (RETRAIN_CODE_ID).
    bundle = code or code_bundle()
    code_rbac = assign(
        "rbac-code", [g for g in grants if g.scope == CODE_SCOPE], {CODE_SCOPE: ml.code_container.id}
    )
    code_uri = pulumi.Output.all(
        ml.storage.primary_endpoints.blob,
        ml.code_container.name,
        *[assignment.id for assignment in code_rbac.assignments],
    ).apply(lambda v: _during_up(lambda: ops.upload_code(v[0], v[1], bundle), code_url(v[0], v[1], bundle)))
    training_code = TrainingCode(
        "ml-training-code",
        TrainingCodeArgs(
            workspace_name=ml.workspace.name,
            resource_group_name=rg,
            version=bundle.digest,
            code_uri=code_uri,
            tags=tags,
        ),
    )
    app = FunctionApp(
        "functions",
        FunctionAppArgs(
            app_name=names.function_app,
            plan_name=names.plan,
            host_storage_name=names.storage_account("fn"),
            resource_group_name=rg,
            location=cfg.location,
            data_lake_blob_endpoint=lake.blob_endpoint,
            data_lake_queue_endpoint=lake.queue_endpoint,
            app_insights_connection_string=ml.app_insights.connection_string,
            vault_name=ml.vault.name,
            vault_uri=ml.vault.properties.vault_uri,
            db_connection_string=cfg.db_connection_string or "",
            ml_workspace_id=ml.workspace.id,
            retrain_identity_id=ml.retrain_identity.resource_id,
            retrain_identity_client_id=ml.retrain_identity.client_id,
            retrain_code_id=training_code.code.id,
            settings=cfg.app,
            max_instances=cfg.sizing.max_instances,
            instance_memory_mb=cfg.sizing.instance_memory_mb,
            tags=tags,
            subnet_id=subnet_id,
        ),
    )

    scopes: dict[str, pulumi.Input[str]] = {
        "resource-group": group.id,
        "datalake": lake.account.id,
        "workspace": ml.workspace.id,
        "ml-storage": ml.storage.id,
        "host-storage": app.host_storage.id,
        "secret:db-connection-string": app.db_secret.id,
        f"host-container:{PACKAGE_CONTAINER}": app.package_container.id,
    }
    scopes |= {f"container:{n}": c.id for n, c in lake.containers.items()}
    scopes |= {f"queue:{n}": q.id for n, q in lake.queues.items()}
    principals[FUNCTION] = app.principal_id
    rbac = assign("rbac", [g for g in grants if g.scope != CODE_SCOPE], scopes)

    release = CodeRelease(
        "release",
        CodeReleaseArgs(
            archive=archive or build_archive(),
            app_name=app.site.name,
            host_blob_endpoint=app.host_storage.primary_endpoints.blob,
            package_container=app.package_container.name,
            resource_group_name=rg,
            after=[assignment.id for assignment in rbac.assignments],
            uploader=ops.upload,
        ),
    )
    # Key Vault references set before the grant stay unresolved for up to 24 h: refresh them once
    # the identity holds Key Vault Secrets User (infra/cloud.py), and wait until resolved.
    references = pulumi.Output.all(app.site.id, *[assignment.id for assignment in rbac.assignments]).apply(
        lambda values: _during_up(lambda: ops.refresh_references(values[0]), "refreshed during pulumi up")
    )
    # The subscription's webhook needs the host's blobs_extension key, which exists once the
    # deployed host has indexed the blob trigger: wait for it during `up`.
    blob_key = pulumi.Output.all(app.site.id, release.deployment.id).apply(
        lambda values: ops.blob_extension_key(values[0], not pulumi.runtime.is_dry_run())
    )
    BlobEvents(
        "blob-events",
        BlobEventsArgs(
            topic_name=names.event_grid_topic,
            storage_account_id=lake.account.id,
            app_name=app.site.name,
            app_host_name=app.site.default_host_name,
            resource_group_name=rg,
            location=cfg.location,
            tags=tags,
            blob_key=blob_key,
        ),
    )
    Alerts(
        "alerts",
        AlertsArgs(
            action_group_name=names.action_group,
            action_group_short_name=names.action_group_short,
            rule_names={
                rule.key: names.alert(rule.key)
                for rule in alert_rules(cfg.export_deadline_hour, cfg.monitoring)
            },
            emails=cfg.alert_emails,
            app_insights_id=ml.app_insights.id,
            resource_group_name=rg,
            location=cfg.location,
            export_deadline_hour=cfg.export_deadline_hour,
            tags=tags,
            thresholds=cfg.monitoring,
        ),
    )
    return {
        "resourceGroup": group.name,
        "dataLakeAccount": lake.account.name,
        "dataLakeBlobEndpoint": lake.blob_endpoint,
        "functionAppName": app.site.name,
        "functionAppHostName": app.site.default_host_name,
        "functionPrincipalId": app.principal_id,
        "retrainJobPrincipalId": ml.retrain_identity.principal_id,
        "keyVaultUri": ml.vault.properties.vault_uri,
        "mlWorkspace": ml.workspace.name,
        "trainingEnvironment": training.environment.id,
        "trainingCode": training_code.code.id,
        "codePackage": release.package_uri,
        # The real-time endpoint and its function key (secret: `pulumi stack output scoreKey
        # --show-secrets`), read once the host has indexed the functions (docs/deploy.md).
        "scoreUrl": score_url(app.site.default_host_name),
        "scoreKey": score_key(app.site.name, rg, blob_key),
        "keyVaultReferences": references,
        "resourceProviders": pulumi.Output.from_input(", ".join(namespaces)),
    }
