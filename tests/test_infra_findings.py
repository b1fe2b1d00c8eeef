"""Issue 11: the program against Azure's documented rules, one test (or more) per finding, each
naming its source. Under Pulumi's mocks, like the other infra tests."""

from __future__ import annotations

import json

import pulumi
import pulumi_azure_native.web as web
import pytest

from infra import config, policies
from infra.components.functionapp import FunctionApp, FunctionAppArgs
from infra.config import default_app_settings
from infra.roles import ROLE_IDS, assignment_name
from infra.synth import RecordingMocks, synthesize
from tests.infra_support import GOOD_CONFIG, STACKS, by_type, stack

GOOD = GOOD_CONFIG
OTHER_GROUP = "33333333-3333-4333-8333-333333333333"


# --- 1. Flex Consumption: no FTP/FTPS or other deprecated site property -----------------------
@pytest.mark.parametrize("name", STACKS)
def test_flex_site_sets_no_deprecated_property(name: str) -> None:
    """ARM error 51021 refuses siteConfig.ftpsState on Flex sites; "Flex Consumption plan
    deprecations" (learn.microsoft.com/azure/azure-functions/functions-app-settings) lists the
    rest. Microsoft's Flex samples set only appSettings in siteConfig
    (Azure-Samples/azure-functions-flex-consumption-samples, IaC/bicep/core/host/function.bicep)."""
    app = by_type(stack(name), "web:WebApp")[0].inputs
    assert policies.is_flex(app)
    assert not {"ftpsState", "http20Enabled", "scmMinTlsVersion", "remoteDebuggingEnabled"} & set(
        app["siteConfig"]
    )
    assert not set(app["siteConfig"]) & set(policies.FLEX_DEPRECATED_SITE_CONFIG)
    rule = next(r for r in policies.RULES if r.id == "app-flex-no-deprecated-properties")
    assert rule.check(app) is None
    assert "app-ftps-disabled" not in {r.id for r in policies.RULES}  # replaced for Flex sites


def test_flex_rule_catches_what_site_config_args_adds_by_itself() -> None:
    """pulumi-azure-native's SiteConfigArgs fills in http20Enabled and netFrameworkVersion when
    they are not given, so the program must not use it for a Flex site (it sends a plain dict)."""
    rule = next(r for r in policies.RULES if r.id == "app-flex-no-deprecated-properties")
    defaults = web.SiteConfigArgs()
    site_config = {
        "http20Enabled": defaults.http20_enabled,
        "netFrameworkVersion": defaults.net_framework_version,
    }
    message = rule.check({"functionAppConfig": {}, "siteConfig": site_config}) or ""
    assert "siteConfig.http20Enabled" in message and "siteConfig.netFrameworkVersion" in message
    settings = [{"name": "FUNCTIONS_WORKER_RUNTIME", "value": "python"}]
    assert "FUNCTIONS_WORKER_RUNTIME" in (
        rule.check({"functionAppConfig": {}, "siteConfig": {"appSettings": settings}}) or ""
    )
    assert rule.check({"siteConfig": {"ftpsState": "Disabled"}}) is None  # not a Flex site


# --- 6. Role assignment names: scope id, principal object id, role id -------------------------
def test_assignment_name_changes_with_principal_or_scope_only() -> None:
    """Like Bicep's guid(scope.id, principalId, roleId) in Microsoft's samples: a replaced principal
    or scope gets a new name (no RoleAssignmentExists on replace), the same three the same name."""
    scope = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a"
    principal, role = "11111111-1111-4111-8111-111111111111", ROLE_IDS["Reader"]
    name = assignment_name(scope, principal, role)
    assert name == assignment_name(scope.upper(), principal.upper(), role)  # ARM ids are case-blind
    assert name != assignment_name(scope + "2", principal, role)
    assert name != assignment_name(scope, OTHER_GROUP, role)
    assert name != assignment_name(scope, principal, ROLE_IDS["Storage Blob Data Reader"])


def test_a_new_group_renames_only_its_assignments_and_a_new_subscription_renames_all() -> None:
    before = {
        a.name: a.inputs["roleAssignmentName"] for a in by_type(stack("dev"), "authorization:RoleAssignment")
    }
    after_synthesis = synthesize("dev", overrides={"dataScientistsGroupId": OTHER_GROUP})
    after = {
        a.name: a.inputs["roleAssignmentName"]
        for a in by_type(after_synthesis, "authorization:RoleAssignment")
    }
    changed = {logical for logical in before if before[logical] != after[logical]}
    assert changed and all("data-scientists" in logical for logical in changed)
    assert {logical for logical in before if "data-scientists" in logical} == changed
    # Same prefix and stack, other subscription: every scope id differs, so every name does.
    import infra.synth as synth

    original = synth.SUBSCRIPTION
    try:
        synth.SUBSCRIPTION = "00000000-0000-4000-8000-00000000dddd"
        elsewhere = synthesize("dev")
    finally:
        synth.SUBSCRIPTION = original
    names = {
        a.name: a.inputs["roleAssignmentName"] for a in by_type(elsewhere, "authorization:RoleAssignment")
    }
    assert not set(names.values()) & set(before.values())


# --- 7. The site depends on the real deployment container -------------------------------------
class _RenamingMocks(RecordingMocks):
    """Azure reports the container under a name the program did not type (as if it normalised it):
    a site that depends on the container resource uses that output, a constant would not."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        resource_id, outputs = super().new_resource(args)
        if args.typ == "azure-native:storage:BlobContainer":
            outputs = {**outputs, "name": "from-the-container-resource"}
        return resource_id, outputs


def test_deployment_storage_names_the_container_resource_output() -> None:
    """Flex deployment storage must point at an existing container ("Flex Consumption plan:
    deployment", learn.microsoft.com/azure/azure-functions/flex-consumption-plan#deployment)."""
    mocks = _RenamingMocks()
    pulumi.runtime.set_mocks(mocks, project=config.PROJECT, stack="dev", preview=False)

    @pulumi.runtime.test
    def build() -> pulumi.Output:
        app = FunctionApp(
            "fn",
            FunctionAppArgs(
                app_name="func-unit",
                plan_name="plan-unit",
                host_storage_name="stunitfn0000",
                resource_group_name="rg-unit",
                location="westeurope",
                data_lake_blob_endpoint="https://dl.blob.core.windows.net/",
                data_lake_queue_endpoint="https://dl.queue.core.windows.net/",
                app_insights_connection_string="InstrumentationKey=x",
                vault_name="kv-unit",
                vault_uri="https://kv-unit.vault.azure.net/",
                db_connection_string="Driver=x",
                ml_workspace_id="/subscriptions/s/resourceGroups/rg-unit/providers/"
                "Microsoft.MachineLearningServices/workspaces/mlw-unit",
                retrain_identity_id="/subscriptions/s/resourceGroups/rg-unit/providers/"
                "Microsoft.ManagedIdentity/userAssignedIdentities/id-unit-retrain-dev",
                retrain_identity_client_id="00000000-0000-4000-8000-00000000dddd",
                retrain_code_id="/subscriptions/s/resourceGroups/rg-unit/providers/"
                "Microsoft.MachineLearningServices/workspaces/mlw-unit/codes/bank-marketing-code/versions/0",
                settings=default_app_settings(),
                max_instances=40,
                instance_memory_mb=2048,
                tags={},
            ),
        )
        return app.site.id

    build()
    site = next(r for r in mocks.resources if r.type == "azure-native:web:WebApp")
    storage = site.inputs["functionAppConfig"]["deployment"]["storage"]["value"]
    assert storage == "https://stunitfn0000.blob.core.windows.net/from-the-container-resource"


# --- 10. Host storage: the Table role and its service URI -------------------------------------
@pytest.mark.parametrize("name", STACKS)
def test_host_storage_connection_names_blob_queue_and_table(name: str) -> None:
    """Microsoft's Flex samples give the host identity blob, queue and table (IaC/bicep/rbac.bicep,
    enableTable); the identity-based AzureWebJobsStorage connection then names the table URI too
    ("Connecting to host storage with an identity", functions-reference)."""
    synthesis = stack(name)
    settings = {
        s["name"]: s["value"] for s in by_type(synthesis, "web:WebApp")[0].inputs["siteConfig"]["appSettings"]
    }
    host = next(
        a.azure_name
        for a in by_type(synthesis, "storage:StorageAccount")
        if a.inputs["tags"]["purpose"] == "function-host"
    )
    assert settings["AzureWebJobsStorage__tableServiceUri"] == f"https://{host}.table.core.windows.net/"
    table_role = ROLE_IDS["Storage Table Data Contributor"]
    assert [
        a
        for a in by_type(synthesis, "authorization:RoleAssignment")
        if a.inputs["roleDefinitionId"].endswith(table_role)
        and a.inputs["scope"].endswith(f"/storageAccounts/{host}")
    ]


# --- 11. IP ranges storage network rules accept -----------------------------------------------
@pytest.mark.parametrize(
    ("cidr", "problem"),
    [
        ("203.0.113.7/32", "/32"),
        ("203.0.113.6/31", "/31"),
        ("10.20.0.0/16", "RFC 1918"),
        ("172.16.5.0/24", "RFC 1918"),
        ("192.168.1.10", "RFC 1918"),
        ("0.0.0.0/0", "RFC 1918"),
        ("127.0.0.1", "not a public"),
        ("203.0.113.1/24", "host bits"),
        ("300.1.1.1", "not a valid"),
    ],
)
def test_ip_ranges_storage_rules_refuse_are_refused(cidr: str, problem: str) -> None:
    """ "Small address ranges using /31 or /32 prefix sizes aren't supported ... configure them as
    individual IP address rules without prefix"; "private address ranges (RFC 1918) aren't allowed"
    (Azure Storage firewall restrictions, learn.microsoft.com/azure/storage/common/
    storage-network-security-limitations)."""
    with pytest.raises(config.ConfigError, match=rf"'allowedIpRanges'.*{problem}"):
        config.parse("prod", GOOD | {"allowedIpRanges": f'["{cidr}"]'})


def test_public_ranges_and_single_addresses_are_accepted() -> None:
    parsed = config.parse("prod", GOOD | {"allowedIpRanges": '["203.0.113.0/24", "198.51.100.7"]'})
    assert parsed.allowed_ip_ranges == ("203.0.113.0/24", "198.51.100.7")


# --- 10. Prod's workspace reachable from the virtual network ----------------------------------
def test_the_isolated_workspace_has_a_private_endpoint_with_its_dns_zones() -> None:
    """Public access off needs a private endpoint: group amlworkspace, zones privatelink.api.azureml.ms
    and privatelink.notebooks.azure.net linked to the network ("Configure a private endpoint for an
    Azure Machine Learning workspace", how-to-configure-private-link; "Azure Private Endpoint private
    DNS zone values", private-endpoint-dns)."""
    synthesis = stack("prod")
    workspace = by_type(synthesis, "machinelearningservices:Workspace")[0]
    assert workspace.inputs["publicNetworkAccess"] == "Disabled"
    endpoint = by_type(synthesis, "network:PrivateEndpoint")[0].inputs
    connection = endpoint["privateLinkServiceConnections"][0]
    assert connection["privateLinkServiceId"].endswith(f"/workspaces/{workspace.azure_name}")
    assert connection["groupIds"] == ["amlworkspace"]
    subnets = {s.azure_name: s.inputs for s in by_type(synthesis, "network:Subnet")}
    assert endpoint["subnet"] == {"id": endpoint["subnet"]["id"]} and endpoint["subnet"]["id"].endswith(
        "/subnets/private-endpoints"
    )
    assert not subnets["private-endpoints"].get("delegations")  # a delegated subnet cannot hold endpoints
    zones = {z.azure_name for z in by_type(synthesis, "privatedns:PrivateZone")}
    assert zones == {"privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"}
    vnet = by_type(synthesis, "network:VirtualNetwork")[0].azure_name
    links = by_type(synthesis, "privatedns:VirtualNetworkLink")
    assert {link.inputs["privateZoneName"] for link in links} == zones
    assert all(link.inputs["virtualNetwork"]["id"].endswith(f"/virtualNetworks/{vnet}") for link in links)
    assert all(link.inputs["registrationEnabled"] is False for link in links)
    group = by_type(synthesis, "network:PrivateDnsZoneGroup")[0].inputs
    assert group["privateEndpointName"] == endpoint["privateEndpointName"]
    assert {c["privateDnsZoneId"].rsplit("/", 1)[-1] for c in group["privateDnsZoneConfigs"]} == zones
    for name in ("dev", "preprod"):
        assert not by_type(stack(name), "network:PrivateEndpoint")


# --- 3. The offline plan names the providers to register, with the command --------------------
@pytest.mark.parametrize("name", STACKS)
def test_the_plan_prints_the_provider_commands(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """ "Azure resource providers and types": a subscription must register a namespace before it
    creates its types; Flex VNet integration needs Microsoft.App (flex-consumption-plan, considerations)."""
    from infra import plan

    assert plan.main([name]) == 0
    text = capsys.readouterr().out
    assert "az provider register --namespace Microsoft.Web --wait" in text
    assert ("az provider register --namespace Microsoft.App --wait" in text) is (name == "prod")
    assert plan.main([name, "--json"]) == 0
    assert "Microsoft.EventGrid" in json.loads(capsys.readouterr().out)["providers"]
