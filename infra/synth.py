"""Run the program under Pulumi's mock runtime and record every resource it declares.

No cloud, no Pulumi CLI: `pulumi.runtime.set_mocks` replaces the engine, the mocks answer with
the values Azure would compute (ids, endpoints, the app's identity), and what we record is each
resource's type, name and inputs, in the same camelCase shape `pulumi preview` sends to a policy
pack. The offline plan (infra/plan.py) and the infra tests both stand on this.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import yaml

from infra import config
from infra.archive import CodeArchive, build_archive
from infra.components.release import package_url
from infra.package import REPO_ROOT

SUBSCRIPTION = "00000000-0000-4000-8000-00000000aaaa"
TENANT = "00000000-0000-4000-8000-00000000bbbb"
DEPLOYER_ID = "00000000-0000-4000-8000-00000000cccc"
SECRET_PLACEHOLDER = "<set with: pulumi config set --secret dbConnectionString ...>"  # noqa: S105
MOCK_FUNCTION_KEY = "mock-function-key"  # what the mocks list as the default key of `score`
_SECRET_SIG = "4dabf18193072939515e22adb298388d"  # noqa: S105 (Pulumi's secret marker)

# The input that holds each type's Azure name (the `name` output Azure reports back).
NAME_INPUTS = {
    "azure-native:resources:ResourceGroup": "resourceGroupName",
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:storage:BlobContainer": "containerName",
    "azure-native:storage:Queue": "queueName",
    "azure-native:storage:Blob": "blobName",
    "azure-native:keyvault:Vault": "vaultName",
    "azure-native:keyvault:Secret": "secretName",
    "azure-native:operationalinsights:Workspace": "workspaceName",
    "azure-native:applicationinsights:Component": "resourceName",
    "azure-native:machinelearningservices:Workspace": "workspaceName",
    "azure-native:machinelearningservices:EnvironmentVersion": "name",
    "azure-native:machinelearningservices:CodeVersion": "name",
    "azure-native:managedidentity:UserAssignedIdentity": "resourceName",
    "azure-native:web:AppServicePlan": "name",
    "azure-native:web:WebApp": "name",
    "azure-native:network:VirtualNetwork": "virtualNetworkName",
    "azure-native:network:Subnet": "subnetName",
    "azure-native:eventgrid:SystemTopic": "systemTopicName",
    "azure-native:eventgrid:SystemTopicEventSubscription": "eventSubscriptionName",
    "azure-native:monitor:ActionGroup": "actionGroupName",
    "azure-native:monitor:ScheduledQueryRule": "ruleName",
    "azure-native:authorization:RoleAssignment": "roleAssignmentName",
    "azure-native:resources:Deployment": "deploymentName",
    "azure-native:network:PrivateEndpoint": "privateEndpointName",
    "azure-native:network:PrivateDnsZoneGroup": "privateDnsZoneGroupName",
    "azure-native:privatedns:PrivateZone": "privateZoneName",
    "azure-native:privatedns:VirtualNetworkLink": "virtualNetworkLinkName",
}
_ACCOUNT = "Microsoft.Storage/storageAccounts/{accountName}"
PROVIDER_PATHS = {
    "azure-native:storage:StorageAccount": _ACCOUNT,
    "azure-native:storage:BlobServiceProperties": _ACCOUNT + "/blobServices/default",
    "azure-native:storage:BlobContainer": _ACCOUNT + "/blobServices/default/containers/{containerName}",
    "azure-native:storage:Queue": _ACCOUNT + "/queueServices/default/queues/{queueName}",
    "azure-native:keyvault:Vault": "Microsoft.KeyVault/vaults/{vaultName}",
    "azure-native:keyvault:Secret": "Microsoft.KeyVault/vaults/{vaultName}/secrets/{secretName}",
    "azure-native:operationalinsights:Workspace": "Microsoft.OperationalInsights/workspaces/{workspaceName}",
    "azure-native:applicationinsights:Component": "Microsoft.Insights/components/{resourceName}",
    "azure-native:machinelearningservices:Workspace": (
        "Microsoft.MachineLearningServices/workspaces/{workspaceName}"
    ),
    "azure-native:machinelearningservices:EnvironmentVersion": (
        "Microsoft.MachineLearningServices/workspaces/{workspaceName}/environments/{name}/versions/{version}"
    ),
    "azure-native:machinelearningservices:CodeVersion": (
        "Microsoft.MachineLearningServices/workspaces/{workspaceName}/codes/{name}/versions/{version}"
    ),
    "azure-native:managedidentity:UserAssignedIdentity": (
        "Microsoft.ManagedIdentity/userAssignedIdentities/{resourceName}"
    ),
    "azure-native:web:AppServicePlan": "Microsoft.Web/serverfarms/{name}",
    "azure-native:web:WebApp": "Microsoft.Web/sites/{name}",
    "azure-native:network:VirtualNetwork": "Microsoft.Network/virtualNetworks/{virtualNetworkName}",
    "azure-native:network:Subnet": (
        "Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets/{subnetName}"
    ),
    "azure-native:eventgrid:SystemTopic": "Microsoft.EventGrid/systemTopics/{systemTopicName}",
    "azure-native:eventgrid:SystemTopicEventSubscription": (
        "Microsoft.EventGrid/systemTopics/{systemTopicName}/eventSubscriptions/{eventSubscriptionName}"
    ),
    "azure-native:monitor:ActionGroup": "Microsoft.Insights/actionGroups/{actionGroupName}",
    "azure-native:monitor:ScheduledQueryRule": "Microsoft.Insights/scheduledQueryRules/{ruleName}",
    "azure-native:resources:Deployment": "Microsoft.Resources/deployments/{deploymentName}",
    "azure-native:network:PrivateEndpoint": "Microsoft.Network/privateEndpoints/{privateEndpointName}",
    "azure-native:network:PrivateDnsZoneGroup": (
        "Microsoft.Network/privateEndpoints/{privateEndpointName}/privateDnsZoneGroups/{privateDnsZoneGroupName}"
    ),
    "azure-native:privatedns:PrivateZone": "Microsoft.Network/privateDnsZones/{privateZoneName}",
    "azure-native:privatedns:VirtualNetworkLink": (
        "Microsoft.Network/privateDnsZones/{privateZoneName}/virtualNetworkLinks/{virtualNetworkLinkName}"
    ),
}


@dataclass(frozen=True)
class Resource:
    type: str
    name: str  # Pulumi's logical name
    inputs: dict[str, Any]

    @property
    def azure_name(self) -> str:
        return str(self.inputs.get(NAME_INPUTS.get(self.type, ""), self.name))


@dataclass
class Synthesis:
    stack: str
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)  # the outputs Pulumi keeps encrypted
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # invokes: (token, args)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, azure_name: str | None = None) -> Resource:
        found = [r for r in self.of_type(type_) if azure_name is None or r.azure_name == azure_name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_} {azure_name or ''}, found {len(found)}")
        return found[0]


def plain(value: Any) -> Any:
    """Inputs as a reader expects them: secrets unwrapped, whole numbers back from protobuf doubles."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) is not None and "value" in value:
            return plain(value["value"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _resource_id(type_: str, name: str, inputs: dict[str, Any]) -> str:
    group = inputs.get("resourceGroupName", "rg")
    base = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}"
    if type_ == "azure-native:resources:ResourceGroup":
        return base
    if type_ == "azure-native:authorization:RoleAssignment":
        assignment = inputs.get("roleAssignmentName")
        return f"{inputs.get('scope')}/providers/Microsoft.Authorization/roleAssignments/{assignment}"
    path = PROVIDER_PATHS.get(type_)
    if path is None:
        return f"{base}/providers/mock/{type_.split(':')[-1]}/{name}"
    return f"{base}/providers/" + path.format_map({k: v for k, v in inputs.items() if isinstance(v, str)})


def _computed(type_: str, azure_name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The outputs Azure computes that the program reads."""
    if type_ == "azure-native:storage:StorageAccount":
        services = ("blob", "queue", "table", "file", "dfs", "web")
        return {"primaryEndpoints": {s: f"https://{azure_name}.{s}.core.windows.net/" for s in services}}
    if type_ == "azure-native:web:WebApp":
        principal = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{azure_name}.identity"))
        return {
            "identity": {"type": "SystemAssigned", "principalId": principal, "tenantId": TENANT},
            "defaultHostName": f"{azure_name}.azurewebsites.net",
        }
    if type_ == "azure-native:machinelearningservices:Workspace":
        # The SDK takes user-assigned identities as a list of ids; Azure reports a map by id.
        identity = dict(inputs.get("identity") or {})
        attached = identity.get("userAssignedIdentities") or []
        principal = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{azure_name}.identity"))
        return {
            "identity": {
                **identity,
                "principalId": principal,
                "tenantId": TENANT,
                "userAssignedIdentities": {i: {} for i in attached},
            }
        }
    if type_ == "azure-native:managedidentity:UserAssignedIdentity":
        return {
            "principalId": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{azure_name}.principal")),
            "clientId": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{azure_name}.client")),
            "tenantId": TENANT,
        }
    if type_ == "azure-native:keyvault:Vault":
        properties = dict(inputs.get("properties") or {})
        return {"properties": {**properties, "vaultUri": f"https://{azure_name}.vault.azure.net/"}}
    if type_ == "azure-native:applicationinsights:Component":
        key = uuid.uuid5(uuid.NAMESPACE_DNS, azure_name)
        return {
            "connectionString": f"InstrumentationKey={key};IngestionEndpoint=https://example.in.ai.azure.com/"
        }
    return {}


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[Resource] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        resource = Resource(args.typ, args.name, plain(inputs))
        self.resources.append(resource)
        outputs = {**inputs, "name": resource.azure_name, **_computed(args.typ, resource.azure_name, inputs)}
        return _resource_id(args.typ, args.name, resource.inputs), outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        self.calls.append((args.token, plain(dict(args.args))))
        if args.token == "azure-native:authorization:getClientConfig":  # noqa: S105
            return {
                "clientId": "mock",
                "objectId": DEPLOYER_ID,
                "subscriptionId": SUBSCRIPTION,
                "tenantId": TENANT,
            }
        if args.token == "azure-native:web:listWebAppHostKeys":  # noqa: S105
            return {
                "masterKey": "mock",
                "functionKeys": {},
                "systemKeys": {"blobs_extension": "mock-blob-key"},
            }
        if args.token == "azure-native:web:listWebAppFunctionKeys":  # noqa: S105
            # Web Apps - List Function Keys: a string dictionary of key name -> value.
            site, function = args.args.get("name"), args.args.get("functionName")
            return {
                "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{args.args.get('resourceGroupName')}"
                f"/providers/Microsoft.Web/sites/{site}/functions/{function}/keys",
                "name": "keys",
                "type": "Microsoft.Web/sites/functions/keys",
                "properties": {"default": MOCK_FUNCTION_KEY},
            }
        raise NotImplementedError(f"no mock for the call {args.token}")


def stack_file(stack: str) -> Path:
    return REPO_ROOT / f"Pulumi.{stack}.yaml"


def stack_config(stack: str) -> dict[str, str]:
    """`Pulumi.<stack>.yaml` as the engine hands it to the program: `project:key` -> string."""
    path = stack_file(stack)
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path.name}: stacks are {', '.join(config.ENVIRONMENTS)}")
    document = yaml.safe_load(path.read_text()) or {}
    values: dict[str, str] = {}
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, dict) and "secure" in value:
            continue  # encrypted with the stack's key: only the Pulumi CLI can read it
        values[key] = value if isinstance(value, str) else json.dumps(value)
    return values


@cache
def code_archive() -> CodeArchive:
    return build_archive()


def mock_stack(
    stack: str, overrides: dict[str, str] | None = None, *, preview: bool = False
) -> RecordingMocks:
    """Point Pulumi's mock runtime at `stack`: its stack file, a placeholder for the encrypted
    database connection string (marked secret, as the CLI would), then `overrides` (keys without
    the project prefix); `preview` as `pulumi preview` runs it. Returns the mocks, which record
    every resource the program registers."""
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=config.PROJECT, stack=stack, preview=preview)
    values = stack_config(stack)
    secret_key = f"{config.PROJECT}:dbConnectionString"
    values.setdefault(secret_key, SECRET_PLACEHOLDER)
    values |= {f"{config.PROJECT}:{k}": v for k, v in (overrides or {}).items()}
    pulumi.runtime.set_all_config(values, secret_keys=[secret_key])
    return mocks


def synthesize(
    stack: str,
    overrides: dict[str, str] | None = None,
    archive: CodeArchive | None = None,
) -> Synthesis:
    """Build `stack` under mocks with its stack file (plus `overrides`, keys without the project prefix)."""
    mocks = mock_stack(stack, overrides)
    result = Synthesis(stack)

    from infra.cloud import offline_ops
    from infra.program import build  # after set_mocks: the program reads config when called

    def program() -> pulumi.Output:
        outputs = build(config.load(), archive or code_archive(), ops=offline_ops(package_url))
        secret = {name: pulumi.Output.from_input(output.is_secret()) for name, output in outputs.items()}
        return pulumi.Output.all(
            pulumi.Output.all(**outputs).apply(result.outputs.update),
            pulumi.Output.all(**secret).apply(
                lambda flags: result.secret_outputs.update(n for n, s in flags.items() if s)
            ),
        )

    pulumi.runtime.test(program)()
    result.resources = mocks.resources
    result.calls = mocks.calls
    return result
