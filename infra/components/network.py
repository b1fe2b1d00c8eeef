"""Network: the virtual network the Function App joins when a stack is isolated (prod by default).

Flex Consumption integrates with a subnet delegated to `Microsoft.App/environments`; service
endpoints for Storage and Key Vault let the data lake, the vault and the workspace storage deny
every other network while the function still reaches them (decision 22).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.network as network


@dataclass(frozen=True)
class NetworkArgs:
    vnet_name: str
    resource_group_name: pulumi.Input[str]
    location: str
    tags: dict[str, str]
    address_space: str = "10.40.0.0/16"
    function_subnet: str = "10.40.1.0/24"
    endpoint_subnet: str = "10.40.2.0/24"  # private endpoints (a delegated subnet cannot hold them)


class Network(pulumi.ComponentResource):
    function_subnet_id: pulumi.Output[str]
    endpoint_subnet_id: pulumi.Output[str]
    vnet_id: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        vnet = network.VirtualNetwork(
            f"{name}-vnet",
            virtual_network_name=args.vnet_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[args.address_space]),
            tags=args.tags,
            opts=child,
        )
        subnet = network.Subnet(
            f"{name}-functions",
            subnet_name="functions",
            virtual_network_name=vnet.name,
            resource_group_name=args.resource_group_name,
            address_prefix=args.function_subnet,
            delegations=[network.DelegationArgs(name="flex", service_name="Microsoft.App/environments")],
            service_endpoints=[
                network.ServiceEndpointPropertiesFormatArgs(service="Microsoft.Storage"),
                network.ServiceEndpointPropertiesFormatArgs(service="Microsoft.KeyVault"),
            ],
            opts=child,
        )
        # One subnet operation at a time on a virtual network: this one waits for the first.
        endpoints = network.Subnet(
            f"{name}-private-endpoints",
            subnet_name="private-endpoints",
            virtual_network_name=vnet.name,
            resource_group_name=args.resource_group_name,
            address_prefix=args.endpoint_subnet,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[subnet]),
        )
        self.function_subnet_id = subnet.id
        self.endpoint_subnet_id = endpoints.id
        self.vnet_id = vnet.id
        self.register_outputs({"function_subnet_id": subnet.id, "endpoint_subnet_id": endpoints.id})
