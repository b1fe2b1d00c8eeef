"""One way to make a storage account: keyless, TLS 1.2, HTTPS only, private blobs, double encryption.

The data lake, the Functions host storage and the ML workspace storage all come from here, so
the security baseline is written once and the policy pack checks the same properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native.storage as storage


@dataclass(frozen=True)
class Firewall:
    """Network rules for an isolated stack: deny by default, allow the function subnet and listed IPs."""

    subnet_ids: list[pulumi.Input[str]] = field(default_factory=list)
    ip_ranges: tuple[str, ...] = ()


def _encryption() -> storage.EncryptionArgs:
    service = storage.EncryptionServiceArgs(enabled=True, key_type="Account")
    return storage.EncryptionArgs(
        key_source="Microsoft.Storage",
        require_infrastructure_encryption=True,
        services=storage.EncryptionServicesArgs(blob=service, file=service, queue=service, table=service),
    )


def _network_rules(firewall: Firewall | None) -> storage.NetworkRuleSetArgs:
    if firewall is None:
        return storage.NetworkRuleSetArgs(default_action="Allow", bypass="AzureServices")
    return storage.NetworkRuleSetArgs(
        default_action="Deny",
        bypass="AzureServices",
        ip_rules=[
            storage.IPRuleArgs(i_p_address_or_range=cidr, action="Allow") for cidr in firewall.ip_ranges
        ],
        virtual_network_rules=[
            storage.VirtualNetworkRuleArgs(virtual_network_resource_id=subnet, action="Allow")
            for subnet in firewall.subnet_ids
        ],
    )


def secure_account(
    logical_name: str,
    *,
    account_name: str,
    resource_group_name: pulumi.Input[str],
    location: str,
    sku: str,
    purpose: str,
    tags: dict[str, str],
    parent: pulumi.Resource,
    firewall: Firewall | None = None,
) -> storage.StorageAccount:
    """`purpose` (data-lake, function-host, ml-workspace) is a tag the isolation policy reads."""
    return storage.StorageAccount(
        logical_name,
        account_name=account_name,
        resource_group_name=resource_group_name,
        location=location,
        kind="StorageV2",
        sku=storage.SkuArgs(name=sku),
        access_tier="Hot",
        minimum_tls_version="TLS1_2",
        enable_https_traffic_only=True,
        allow_blob_public_access=False,
        allow_shared_key_access=False,
        default_to_o_auth_authentication=True,
        allow_cross_tenant_replication=False,
        allowed_copy_scope="AAD",
        public_network_access="Enabled",
        network_rule_set=_network_rules(firewall),
        encryption=_encryption(),
        tags={**tags, "purpose": purpose},
        opts=pulumi.ResourceOptions(parent=parent),
    )


def blob_protection(
    logical_name: str,
    *,
    account: storage.StorageAccount,
    resource_group_name: pulumi.Input[str],
    retention_days: int,
    parent: pulumi.Resource,
) -> storage.BlobServiceProperties:
    """Versioning plus soft delete of blobs and containers: an overwrite or delete can be undone."""
    retention = storage.DeleteRetentionPolicyArgs(enabled=True, days=retention_days)
    return storage.BlobServiceProperties(
        logical_name,
        account_name=account.name,
        resource_group_name=resource_group_name,
        blob_services_name="default",
        is_versioning_enabled=True,
        delete_retention_policy=retention,
        container_delete_retention_policy=retention,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def private_container(
    logical_name: str,
    *,
    account: storage.StorageAccount,
    container_name: str,
    resource_group_name: pulumi.Input[str],
    parent: pulumi.Resource,
) -> storage.BlobContainer:
    return storage.BlobContainer(
        logical_name,
        account_name=account.name,
        resource_group_name=resource_group_name,
        container_name=container_name,
        public_access="None",
        opts=pulumi.ResourceOptions(parent=parent),
    )
