"""The recorded resources of a stack as an ARM deployment template, for scanners that read ARM.

    python -m infra.plan prod --arm prod.json     # or --arm - for stdout

pulumi-azure-native speaks ARM: each resource is one ARM resource type at one API version, and
its inputs are ARM's request body with the `properties` envelope flattened away (the SDK lifts
the `x-ms-client-flatten` objects of the REST specs) and a few properties renamed (the specs'
`x-ms-client-name`). This module undoes both for the types the program uses, so an independent
rule set (Checkov's ARM framework, tests/test_infra_arm.py) sees what Azure will be sent:

- `type` is the resource's ARM type (`ARM_TYPES` below), `apiVersion` the one the installed
  pulumi-azure-native resource uses (its docstring: "Uses Azure REST API version ...").
- `name` is ARM's name of the resource, parents included (`account/default/container`); the path
  parameters it is made of, and `resourceGroupName`, leave the body.
- The inputs ARM keeps at the top of a resource (`TOP`: location, tags, sku, kind, identity, ...)
  stay there, every other input goes into `properties`, renamed where the REST spec names it
  differently (`RENAMES`), with the nested objects the SDK also flattened wrapped again (`WRAPS`).
- `metadata.pulumi` keeps the Pulumi type, logical name and resource group, which ARM ignores
  (a resource's `metadata` is free-form), so `inputs_from_arm` gives the recorded inputs back.

The template is for reading and scanning, not for `az deployment`: a role assignment's `scope`
is the full resource id, and the resource group sits beside the resources it contains.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from infra import checkov_waivers
from infra.synth import Resource, Synthesis

SCHEMA = "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#"
CONTENT_VERSION = "1.0.0.0"
_API_VERSION = re.compile(r"Uses Azure REST API version (\d{4}-\d{2}-\d{2}(?:-preview)?)\.")


@dataclass(frozen=True)
class ArmType:
    type: str
    name: str  # ARM's name, from the inputs: "{accountName}/default/{containerName}"
    top: tuple[str, ...] = ("location", "tags")  # inputs that stay at the top of the ARM resource
    # Engine input paths ("a.b", "a[].b") whose ARM name differs: the last segment's ARM name.
    renames: Mapping[str, str] = field(default_factory=dict)
    # Engine paths of objects the SDK flattened too: the keys that stay, the rest go into `properties`.
    wraps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    scope: bool = False  # an extension resource: `scope` is at the top (role assignments)


# Sources: the REST specs (azure-rest-api-specs, via pulumi-azure-native's own metadata) for
# `x-ms-client-name` and `x-ms-client-flatten`; each rename below is the spec's ARM name.
_STORAGE_TOP = ("location", "tags", "sku", "kind", "identity", "extendedLocation")
ARM_TYPES: dict[str, ArmType] = {
    "azure-native:resources:ResourceGroup": ArmType(
        "Microsoft.Resources/resourceGroups", "{resourceGroupName}", ("location", "tags", "managedBy")
    ),
    "azure-native:storage:StorageAccount": ArmType(
        "Microsoft.Storage/storageAccounts",
        "{accountName}",
        _STORAGE_TOP,
        renames={
            "enableHttpsTrafficOnly": "supportsHttpsTrafficOnly",
            "networkRuleSet": "networkAcls",
            "networkRuleSet.ipRules[].iPAddressOrRange": "value",
            "networkRuleSet.virtualNetworkRules[].virtualNetworkResourceId": "id",
            "encryption.keyVaultProperties": "keyvaultproperties",
            "encryption.keyVaultProperties.keyName": "keyname",
            "encryption.keyVaultProperties.keyVersion": "keyversion",
            "encryption.keyVaultProperties.keyVaultUri": "keyvaulturi",
        },
    ),
    "azure-native:storage:BlobServiceProperties": ArmType(
        "Microsoft.Storage/storageAccounts/blobServices", "{accountName}/{blobServicesName}", ()
    ),
    "azure-native:storage:BlobContainer": ArmType(
        "Microsoft.Storage/storageAccounts/blobServices/containers",
        "{accountName}/default/{containerName}",
        (),
    ),
    "azure-native:storage:Queue": ArmType(
        "Microsoft.Storage/storageAccounts/queueServices/queues", "{accountName}/default/{queueName}", ()
    ),
    "azure-native:keyvault:Vault": ArmType(
        "Microsoft.KeyVault/vaults", "{vaultName}", ("location", "tags", "properties")
    ),
    "azure-native:keyvault:Secret": ArmType(
        "Microsoft.KeyVault/vaults/secrets", "{vaultName}/{secretName}", ("tags", "properties")
    ),
    "azure-native:operationalinsights:Workspace": ArmType(
        "Microsoft.OperationalInsights/workspaces",
        "{workspaceName}",
        ("location", "tags", "identity", "etag"),
    ),
    "azure-native:applicationinsights:Component": ArmType(
        "Microsoft.Insights/components",
        "{resourceName}",
        ("location", "tags", "kind", "etag"),
        renames={
            "applicationType": "Application_Type",
            "flowType": "Flow_Type",
            "requestSource": "Request_Source",
            "ingestionMode": "IngestionMode",
            "workspaceResourceId": "WorkspaceResourceId",
            "retentionInDays": "RetentionInDays",
            "samplingPercentage": "SamplingPercentage",
            "disableIpMasking": "DisableIpMasking",
            "disableLocalAuth": "DisableLocalAuth",
            "immediatePurgeDataOn30Days": "ImmediatePurgeDataOn30Days",
            "forceCustomerStorageForProfiler": "ForceCustomerStorageForProfiler",
            "hockeyAppId": "HockeyAppId",
        },
    ),
    "azure-native:machinelearningservices:Workspace": ArmType(
        "Microsoft.MachineLearningServices/workspaces",
        "{workspaceName}",
        ("location", "tags", "sku", "kind", "identity"),
    ),
    # The environment retraining jobs run in (infra/components/training.py): the SDK keeps ARM's
    # `properties` body as it is (EnvironmentVersionPropertiesArgs), so it stays whole.
    "azure-native:machinelearningservices:EnvironmentVersion": ArmType(
        "Microsoft.MachineLearningServices/workspaces/environments/versions",
        "{workspaceName}/{name}/{version}",
        ("properties",),
    ),
    # The retrain job's code asset (infra/components/training.py TrainingCode): `properties` whole
    # as well (CodeVersionPropertiesArgs: codeUri, description, tags).
    "azure-native:machinelearningservices:CodeVersion": ArmType(
        "Microsoft.MachineLearningServices/workspaces/codes/versions",
        "{workspaceName}/{name}/{version}",
        ("properties",),
    ),
    # The identity retraining jobs run as (infra/components/workspace.py): name, location, tags only.
    "azure-native:managedidentity:UserAssignedIdentity": ArmType(
        "Microsoft.ManagedIdentity/userAssignedIdentities", "{resourceName}"
    ),
    "azure-native:web:AppServicePlan": ArmType(
        "Microsoft.Web/serverfarms", "{name}", ("location", "tags", "sku", "kind", "extendedLocation")
    ),
    "azure-native:web:WebApp": ArmType(
        "Microsoft.Web/sites", "{name}", ("location", "tags", "kind", "identity", "extendedLocation")
    ),
    "azure-native:network:VirtualNetwork": ArmType(
        "Microsoft.Network/virtualNetworks", "{virtualNetworkName}", ("location", "tags", "extendedLocation")
    ),
    "azure-native:network:Subnet": ArmType(
        "Microsoft.Network/virtualNetworks/subnets",
        "{virtualNetworkName}/{subnetName}",
        (),
        wraps={"delegations[]": ("name", "id", "type")},
    ),
    "azure-native:eventgrid:SystemTopic": ArmType(
        "Microsoft.EventGrid/systemTopics", "{systemTopicName}", ("location", "tags", "identity")
    ),
    "azure-native:eventgrid:SystemTopicEventSubscription": ArmType(
        "Microsoft.EventGrid/systemTopics/eventSubscriptions",
        "{systemTopicName}/{eventSubscriptionName}",
        (),
        wraps={"destination": ("endpointType",), "deadLetterDestination": ("endpointType",)},
    ),
    "azure-native:monitor:ActionGroup": ArmType(
        "Microsoft.Insights/actionGroups", "{actionGroupName}", ("location", "tags", "identity")
    ),
    "azure-native:monitor:ScheduledQueryRule": ArmType(
        "Microsoft.Insights/scheduledQueryRules", "{ruleName}", ("location", "tags", "kind", "identity")
    ),
    "azure-native:authorization:RoleAssignment": ArmType(
        "Microsoft.Authorization/roleAssignments", "{roleAssignmentName}", (), scope=True
    ),
    "azure-native:resources:Deployment": ArmType(
        "Microsoft.Resources/deployments", "{deploymentName}", ("location", "tags", "properties")
    ),
    # The workspace's private endpoint in isolated stacks (infra/components/privatelink.py).
    "azure-native:network:PrivateEndpoint": ArmType(
        "Microsoft.Network/privateEndpoints",
        "{privateEndpointName}",
        ("location", "tags", "extendedLocation"),
        wraps={"privateLinkServiceConnections[]": ("name", "id")},
    ),
    "azure-native:network:PrivateDnsZoneGroup": ArmType(
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
        "{privateEndpointName}/{privateDnsZoneGroupName}",
        (),
        wraps={"privateDnsZoneConfigs[]": ("name",)},
    ),
    "azure-native:privatedns:PrivateZone": ArmType(
        "Microsoft.Network/privateDnsZones", "{privateZoneName}", ("location", "tags", "etag")
    ),
    "azure-native:privatedns:VirtualNetworkLink": ArmType(
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
        "{privateZoneName}/{virtualNetworkLinkName}",
        ("location", "tags", "etag"),
    ),
}


@cache
def api_version(token: str) -> str:
    """The API version the installed pulumi-azure-native resource calls, from its docstring."""
    _, module, name = token.split(":")
    cls = getattr(importlib.import_module(f"pulumi_azure_native.{module}"), name)
    found = set(_API_VERSION.findall(inspect.getsource(cls)))
    if len(found) != 1:
        raise LookupError(f"{token}: expected one 'Uses Azure REST API version', found {sorted(found)}")
    return found.pop()


def _name_pattern(spec: ArmType) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", spec.name)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(f"^{regex}$")


def _name_inputs(spec: ArmType) -> list[str]:
    return re.findall(r"\{(\w+)\}", spec.name)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _to_arm(value: Any, path: str, spec: ArmType) -> Any:
    if isinstance(value, list):
        return [_to_arm(item, path + "[]", spec) for item in value]
    if not isinstance(value, dict):
        return value
    out = {spec.renames.get(_join(path, k), k): _to_arm(v, _join(path, k), spec) for k, v in value.items()}
    if path in spec.wraps:
        kept = {k: v for k, v in out.items() if k in spec.wraps[path]}
        rest = {k: v for k, v in out.items() if k not in spec.wraps[path]}
        out = kept | ({"properties": rest} if rest else {})
    return out


def _from_arm(value: Any, path: str, spec: ArmType) -> Any:
    if isinstance(value, list):
        return [_from_arm(item, path + "[]", spec) for item in value]
    if not isinstance(value, dict):
        return value
    if path in spec.wraps:
        value = {k: v for k, v in value.items() if k != "properties"} | dict(value.get("properties") or {})
    back = {
        arm: engine.rsplit(".", 1)[-1]
        for engine, arm in spec.renames.items()
        if (engine.rsplit(".", 1)[0] if "." in engine else "") == path
    }
    out = {}
    for key, item in value.items():
        engine = back.get(key, key)
        out[engine] = _from_arm(item, _join(path, engine), spec)
    return out


def _identities_to_arm(identity: Any) -> Any:
    """The SDK takes user-assigned identities as a list of ids; ARM's `userAssignedIdentities` is
    a map by id (common-types managedidentity.json, UserAssignedIdentities), values `{}` on PUT."""
    if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
        return {**identity, "userAssignedIdentities": {i: {} for i in identity["userAssignedIdentities"]}}
    return identity


def _identities_from_arm(identity: Any) -> Any:
    if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), dict):
        return {**identity, "userAssignedIdentities": list(identity["userAssignedIdentities"])}
    return identity


def to_arm(resource: Resource) -> dict[str, Any]:
    """One recorded resource as an ARM template resource."""
    spec = ARM_TYPES.get(resource.type)
    if spec is None:
        raise LookupError(f"no ARM type for {resource.type}: add it to infra/arm.py ARM_TYPES")
    inputs = dict(resource.inputs)
    names = _name_inputs(spec)
    arm: dict[str, Any] = {
        "type": spec.type,
        "apiVersion": api_version(resource.type),
        "name": spec.name.format_map({k: inputs[k] for k in names}),
    }
    pulumi = {"type": resource.type, "name": resource.name}
    if "resourceGroupName" in inputs and "resourceGroupName" not in names:
        pulumi["resourceGroupName"] = inputs.pop("resourceGroupName")
    for key in names:
        inputs.pop(key)
    if spec.scope:
        arm["scope"] = inputs.pop("scope")
    for key in spec.top:
        if key in inputs:
            arm[key] = _to_arm(inputs.pop(key), key if key == "properties" else f"<{key}>", spec)
    if "identity" in arm:
        arm["identity"] = _identities_to_arm(arm["identity"])
    if inputs:
        if "properties" in arm:
            raise ValueError(f"{resource.type} {resource.name}: inputs beside `properties`: {sorted(inputs)}")
        arm["properties"] = _to_arm(inputs, "", spec)
    arm["metadata"] = {"pulumi": pulumi}
    return arm


def inputs_from_arm(arm: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The Pulumi type, logical name and engine-shaped inputs an ARM resource of `to_arm` came from."""
    pulumi = arm["metadata"]["pulumi"]
    spec = ARM_TYPES[pulumi["type"]]
    if arm["type"] != spec.type:
        raise ValueError(f"{pulumi['type']} is {spec.type}, not {arm['type']}")
    match = _name_pattern(spec).match(arm["name"])
    if match is None:
        raise ValueError(f"{arm['name']!r} is not a name of the form {spec.name!r}")
    inputs: dict[str, Any] = dict(match.groupdict())
    if "resourceGroupName" in pulumi:
        inputs["resourceGroupName"] = pulumi["resourceGroupName"]
    if spec.scope:
        inputs["scope"] = arm["scope"]
    for key in spec.top:
        if key in arm:
            inputs[key] = _from_arm(arm[key], key if key == "properties" else f"<{key}>", spec)
    if "identity" in inputs:
        inputs["identity"] = _identities_from_arm(inputs["identity"])
    if "properties" in arm and "properties" not in spec.top:
        inputs |= _from_arm(arm["properties"], "", spec)
    return pulumi["type"], pulumi["name"], inputs


def azure_resources(synthesis: Synthesis) -> list[Resource]:
    """What Azure creates: every recorded resource but the program's own components (`mlops:`)."""
    return [r for r in synthesis.resources if not r.type.startswith("mlops:")]


def template(synthesis: Synthesis, *, waivers: bool = True) -> dict[str, Any]:
    """A stack as one ARM deployment template, its resources in the order the program declared them.

    With `waivers`, each resource carries its waivers of infra/checkov_waivers.py as Checkov's
    suppressions (`metadata.checkov`: "CHECK_ID: reason"), so Checkov reports them as skipped.
    """
    resources = []
    for resource in azure_resources(synthesis):
        arm = to_arm(resource)
        skips = [
            f"{w.check}: {w.reason}"
            for w in checkov_waivers.WAIVERS
            if synthesis.stack in w.stacks and resource.name in w.resources
        ]
        if waivers and skips:
            arm["metadata"]["checkov"] = skips
        resources.append(arm)
    return {
        "$schema": SCHEMA,
        "contentVersion": CONTENT_VERSION,
        "metadata": {"stack": synthesis.stack, "generator": "python -m infra.plan STACK --arm FILE"},
        "resources": resources,
    }
