"""The resource providers a stack needs registered in its subscription, from what it declares.

A subscription can only create a resource type once its provider namespace is registered
("Azure resource providers and types", learn.microsoft.com/azure/azure-resource-manager/
management/resource-providers-and-types). Beyond the namespaces of the declared types, Flex
Consumption's virtual network integration needs `Microsoft.App` (its subnet is delegated to
`Microsoft.App/environments`: "Flex Consumption plan hosting, considerations",
learn.microsoft.com/azure/azure-functions/flex-consumption-plan#considerations).
"""

from __future__ import annotations

from collections.abc import Iterable

# pulumi-azure-native module -> provider namespace
MODULE_NAMESPACES = {
    "resources": "Microsoft.Resources",
    "authorization": "Microsoft.Authorization",
    "storage": "Microsoft.Storage",
    "keyvault": "Microsoft.KeyVault",
    "web": "Microsoft.Web",
    "machinelearningservices": "Microsoft.MachineLearningServices",
    "managedidentity": "Microsoft.ManagedIdentity",
    "operationalinsights": "Microsoft.OperationalInsights",
    "applicationinsights": "Microsoft.Insights",
    "monitor": "Microsoft.Insights",
    "eventgrid": "Microsoft.EventGrid",
    "network": "Microsoft.Network",
    "privatedns": "Microsoft.Network",
}
# Registered in every subscription by Azure itself: nothing to check.
ALWAYS_REGISTERED = {"Microsoft.Resources", "Microsoft.Authorization"}
FLEX_VNET_PROVIDER = "Microsoft.App"


def namespaces_for(types: Iterable[str]) -> list[str]:
    """Provider namespaces for `azure-native:<module>:<Type>` tokens (+ Microsoft.App with a VNet)."""
    tokens = list(types)
    found = set()
    for token in tokens:
        parts = token.split(":")
        if len(parts) == 3 and parts[0] == "azure-native":
            namespace = MODULE_NAMESPACES.get(parts[1])
            if namespace is None:
                raise KeyError(f"no provider namespace known for {token}: add it to MODULE_NAMESPACES")
            found.add(namespace)
    if "azure-native:network:Subnet" in tokens:
        found.add(FLEX_VNET_PROVIDER)
    return sorted(found - ALWAYS_REGISTERED)


def required_namespaces(network_isolation: bool) -> list[str]:
    """What the program checks before `up` creates anything (the offline plan cross-checks it)."""
    types = [
        f"azure-native:{module}:X" for module in MODULE_NAMESPACES if module not in ("network", "privatedns")
    ]
    if network_isolation:
        types += ["azure-native:network:Subnet", "azure-native:privatedns:PrivateZone"]
    return namespaces_for(types)


def register_commands(namespaces: Iterable[str]) -> list[str]:
    return [f"az provider register --namespace {n} --wait" for n in namespaces]
