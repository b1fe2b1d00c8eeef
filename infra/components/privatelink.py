"""PrivateLink: a private endpoint with its private DNS zones, for a service whose public access is off.

The isolated stacks turn the ML workspace's public network access off, so the function (for the
retraining it submits) and anything else in the virtual network reach it only through a private
endpoint: group `amlworkspace`, DNS zones `privatelink.api.azureml.ms` and
`privatelink.notebooks.azure.net` linked to the network ("Configure a private endpoint for an
Azure Machine Learning workspace", learn.microsoft.com/azure/machine-learning/
how-to-configure-private-link; "Azure Private Endpoint private DNS zone values",
learn.microsoft.com/azure/private-link/private-endpoint-dns).
The vault and the storage accounts stay on service endpoints from the function subnet (decision 35).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_azure_native.network as network
import pulumi_azure_native.privatedns as privatedns

WORKSPACE_GROUP = "amlworkspace"
WORKSPACE_ZONES = ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net")


@dataclass(frozen=True)
class PrivateLinkArgs:
    endpoint_name: str
    target_id: pulumi.Input[str]
    group_id: str
    zones: Sequence[str]
    subnet_id: pulumi.Input[str]
    vnet_id: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    location: str
    tags: dict[str, str]


class PrivateLink(pulumi.ComponentResource):
    endpoint: network.PrivateEndpoint

    def __init__(self, name: str, args: PrivateLinkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:PrivateLink", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        zones = []
        for zone_name in args.zones:
            slug = zone_name.replace(".", "-")
            zone = privatedns.PrivateZone(
                f"{name}-{slug}",
                private_zone_name=zone_name,
                resource_group_name=args.resource_group_name,
                location="global",  # private DNS zones are global resources
                tags=args.tags,
                opts=child,
            )
            privatedns.VirtualNetworkLink(
                f"{name}-{slug}-link",
                virtual_network_link_name=f"{slug}-link",
                private_zone_name=zone.name,
                resource_group_name=args.resource_group_name,
                location="global",
                registration_enabled=False,
                virtual_network=privatedns.SubResourceArgs(id=args.vnet_id),
                tags=args.tags,
                opts=child,
            )
            zones.append((slug, zone))
        self.endpoint = network.PrivateEndpoint(
            f"{name}-endpoint",
            private_endpoint_name=args.endpoint_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            subnet=network.SubnetArgsDict(id=args.subnet_id),  # a reference: no Args defaults
            private_link_service_connections=[
                network.PrivateLinkServiceConnectionArgs(
                    name=args.endpoint_name, private_link_service_id=args.target_id, group_ids=[args.group_id]
                )
            ],
            tags=args.tags,
            opts=child,
        )
        network.PrivateDnsZoneGroup(
            f"{name}-dns",
            private_dns_zone_group_name="default",
            private_endpoint_name=self.endpoint.name,
            resource_group_name=args.resource_group_name,
            private_dns_zone_configs=[
                network.PrivateDnsZoneConfigArgs(name=slug, private_dns_zone_id=zone.id)
                for slug, zone in zones
            ],
            opts=child,
        )
        self.register_outputs({"endpoint": self.endpoint.id})
