"""MlWorkspace: the Azure ML workspace with its Key Vault, telemetry, storage and the retrain identity.

Retraining runs as a command job on serverless compute, which does not support the workspace's
system-assigned identity: with `identity: managed` a serverless job runs as a user-assigned
managed identity attached to the workspace ("Model training on serverless compute", identity
support, learn.microsoft.com/azure/machine-learning/how-to-use-serverless-compute). The workspace
keeps its system-assigned identity for itself ("SystemAssigned,UserAssigned") and names no
primary user-assigned identity, so the workspace itself keeps acting as its system identity.

The workspace storage also holds the `code` container: the retrain job's code asset (model/ and
lake/, uploaded by `pulumi up`, infra/upload.py; registered by TrainingCode, training.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.applicationinsights as insights
import pulumi_azure_native.keyvault as keyvault
import pulumi_azure_native.machinelearningservices as ml
import pulumi_azure_native.managedidentity as managedidentity
import pulumi_azure_native.operationalinsights as logs

from infra.components.storage import Firewall, private_container, secure_account
from lake.contract import CODE_CONTAINER


@dataclass(frozen=True)
class RetrainIdentity:
    """The user-assigned identity a retraining job names (functions/retrain/azureml.py)."""

    resource_id: pulumi.Output[str]
    principal_id: pulumi.Output[str]  # the object id role assignments name (infra/roles.py RETRAIN_JOB)
    client_id: pulumi.Output[str]  # what the job's credential asks for (AZURE_CLIENT_ID)


@dataclass(frozen=True)
class MlWorkspaceArgs:
    workspace_name: str
    key_vault_name: str
    storage_account_name: str
    log_analytics_name: str
    app_insights_name: str
    retrain_identity_name: str  # the user-assigned identity retraining jobs run as
    resource_group_name: pulumi.Input[str]
    location: str
    tenant_id: pulumi.Input[str]
    log_retention_days: int
    tags: dict[str, str]
    isolated: bool = False
    firewall: Firewall | None = None


class MlWorkspace(pulumi.ComponentResource):
    vault: keyvault.Vault
    app_insights: insights.Component
    workspace: ml.Workspace
    retrain_identity: RetrainIdentity

    def __init__(self, name: str, args: MlWorkspaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:MlWorkspace", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.log_analytics = logs.Workspace(
            f"{name}-logs",
            workspace_name=args.log_analytics_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=logs.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=args.log_retention_days,
            tags=args.tags,
            opts=child,
        )
        self.app_insights = insights.Component(
            f"{name}-insights",
            resource_name_=args.app_insights_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="web",
            application_type="web",
            ingestion_mode="LogAnalytics",
            workspace_resource_id=self.log_analytics.id,
            retention_in_days=args.log_retention_days,
            tags=args.tags,
            opts=child,
        )
        self.vault = keyvault.Vault(
            f"{name}-vault",
            vault_name=args.key_vault_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family="A", name="standard"),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=90,
                enable_purge_protection=True,
                enabled_for_deployment=False,
                enabled_for_template_deployment=False,
                enabled_for_disk_encryption=False,
                public_network_access="Enabled",
                network_acls=_vault_network(args.firewall),
            ),
            tags=args.tags,
            opts=child,
        )
        self.storage = secure_account(
            f"{name}-storage",
            account_name=args.storage_account_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku="Standard_LRS",
            purpose="ml-workspace",
            tags=args.tags,
            firewall=args.firewall,
            parent=self,
        )
        self.code_container = private_container(
            f"{name}-code-container",
            account=self.storage,
            container_name=CODE_CONTAINER,
            resource_group_name=args.resource_group_name,
            parent=self,
        )
        identity = managedidentity.UserAssignedIdentity(
            f"{name}-retrain-identity",
            resource_name_=args.retrain_identity_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=args.tags,
            opts=child,
        )
        self.retrain_identity = RetrainIdentity(
            resource_id=identity.id, principal_id=identity.principal_id, client_id=identity.client_id
        )
        self.workspace = ml.Workspace(
            f"{name}-workspace",
            workspace_name=args.workspace_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="Default",
            sku=ml.SkuArgs(name="Basic", tier="Basic"),
            identity=ml.ManagedServiceIdentityArgs(
                type="SystemAssigned,UserAssigned", user_assigned_identities=[identity.id]
            ),
            key_vault=self.vault.id,
            application_insights=self.app_insights.id,
            storage_account=self.storage.id,
            # The storage account has no shared keys: the workspace's datastores use identities.
            system_datastores_auth_mode="identity",
            public_network_access="Disabled" if args.isolated else "Enabled",
            friendly_name=args.workspace_name,
            tags=args.tags,
            opts=child,
        )
        self.register_outputs(
            {
                "workspace_id": self.workspace.id,
                "vault_uri": self.vault.properties.vault_uri,
                "retrain_identity_id": identity.id,
            }
        )


def _vault_network(firewall: Firewall | None) -> keyvault.NetworkRuleSetArgs:
    if firewall is None:
        return keyvault.NetworkRuleSetArgs(default_action="Allow", bypass="AzureServices")
    return keyvault.NetworkRuleSetArgs(
        default_action="Deny",
        bypass="AzureServices",
        ip_rules=[keyvault.IPRuleArgs(value=cidr) for cidr in firewall.ip_ranges],
        virtual_network_rules=[keyvault.VirtualNetworkRuleArgs(id=subnet) for subnet in firewall.subnet_ids],
    )
