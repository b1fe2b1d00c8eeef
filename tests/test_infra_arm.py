"""The ARM rendering of each stack (infra/arm.py): every recorded resource once, with its ARM type,
the API version pulumi-azure-native calls, and properties that map back to the recorded inputs."""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections import Counter

import pytest

from infra import arm, plan
from infra.synth import PROVIDER_PATHS, Resource
from tests.infra_support import STACKS, stack

# ARM's template resource element
# (learn.microsoft.com/azure/azure-resource-manager/templates/syntax#resources).
RESOURCE_ELEMENTS = {
    "type",
    "apiVersion",
    "name",
    "location",
    "tags",
    "sku",
    "kind",
    "identity",
    "extendedLocation",
    "etag",
    "managedBy",
    "scope",
    "properties",
    "metadata",
}


def _resources(name: str) -> list[tuple[Resource, dict]]:
    synthesis = stack(name)
    rendered = arm.template(synthesis)["resources"]
    recorded = arm.azure_resources(synthesis)
    assert len(rendered) == len(recorded)
    return list(zip(recorded, rendered, strict=True))


def _type_and_name_from_mock_id(resource: Resource) -> tuple[str, str]:
    """ARM type and name from the resource id the mocks give it (infra/synth.py PROVIDER_PATHS)."""
    values = {k: v for k, v in resource.inputs.items() if isinstance(v, str)}
    segments = PROVIDER_PATHS[resource.type].format_map(values).split("/")
    return "/".join([segments[0], *segments[1::2]]), "/".join(segments[2::2])


@pytest.mark.parametrize("name", STACKS)
def test_every_resource_appears_once_with_its_type_and_api_version(name: str) -> None:
    synthesis = stack(name)
    rendered = arm.template(synthesis)
    assert rendered["$schema"].startswith("https://schema.management.azure.com/schemas/")
    assert rendered["contentVersion"] == "1.0.0.0"
    keys = Counter(
        (r["metadata"]["pulumi"]["type"], r["metadata"]["pulumi"]["name"]) for r in rendered["resources"]
    )
    recorded = Counter((r.type, r.name) for r in arm.azure_resources(synthesis))
    assert keys == recorded and set(keys.values()) == {1}
    # Only the program's own component resources stay out: they are not Azure resources.
    assert {r.type.split(":")[0] for r in synthesis.resources} - {"azure-native"} == {"mlops"}
    for resource, template in _resources(name):
        assert set(template) <= RESOURCE_ELEMENTS, resource.name
        if resource.type in PROVIDER_PATHS:
            assert (template["type"], template["name"]) == _type_and_name_from_mock_id(resource)
        _, module, cls = resource.type.split(":")
        source = inspect.getsource(getattr(importlib.import_module(f"pulumi_azure_native.{module}"), cls))
        assert f"Uses Azure REST API version {template['apiVersion']}." in source
    role = next(r for r in rendered["resources"] if r["type"] == "Microsoft.Authorization/roleAssignments")
    assert re.fullmatch(r"[0-9a-f-]{36}", role["name"]) and role["scope"].startswith("/subscriptions/")
    group = next(r for r in rendered["resources"] if r["type"] == "Microsoft.Resources/resourceGroups")
    assert group["name"] == synthesis.outputs["resourceGroup"]


@pytest.mark.parametrize("name", STACKS)
def test_the_rendering_maps_back_to_the_recorded_inputs(name: str) -> None:
    """No property lost or invented: ARM -> engine inputs gives exactly what the mocks recorded."""
    for resource, template in _resources(name):
        assert arm.inputs_from_arm(template) == (resource.type, resource.name, resource.inputs)


def test_properties_carry_their_arm_names() -> None:
    """Spot checks against the ARM template references (learn.microsoft.com/azure/templates/...)."""
    by_name = {r["metadata"]["pulumi"]["name"]: r for r in arm.template(stack("prod"))["resources"]}
    lake = by_name["datalake-account"]["properties"]
    assert lake["supportsHttpsTrafficOnly"] is True and "enableHttpsTrafficOnly" not in lake
    assert lake["networkAcls"]["defaultAction"] == "Deny" and "networkRuleSet" not in lake
    assert lake["networkAcls"]["ipRules"] == [{"value": "203.0.113.0/24", "action": "Allow"}]
    assert lake["networkAcls"]["virtualNetworkRules"][0]["id"].endswith("/subnets/functions")
    assert by_name["datalake-account"]["sku"] == {"name": "Standard_GZRS"}
    insights = by_name["ml-insights"]
    assert insights["kind"] == "web"
    assert insights["properties"]["Application_Type"] == "web"
    assert insights["properties"]["IngestionMode"] == "LogAnalytics"
    assert insights["properties"]["WorkspaceResourceId"].endswith("/workspaces/log-mlops-prd")
    logs = by_name["ml-logs"]
    assert "sku" not in logs and logs["properties"]["sku"] == {"name": "PerGB2018"}
    subnet = by_name["network-functions"]["properties"]
    assert subnet["delegations"] == [
        {"name": "flex", "properties": {"serviceName": "Microsoft.App/environments"}}
    ]
    events = by_name["blob-events-score-blob"]["properties"]["destination"]
    assert events["endpointType"] == "WebHook"
    assert events["properties"]["endpointUrl"].startswith("https://")
    assert events["properties"]["minimumTlsVersionAllowed"] == "1.2"
    site = by_name["functions-site"]
    assert site["kind"] == "functionapp,linux" and site["identity"] == {"type": "SystemAssigned"}
    assert site["properties"]["httpsOnly"] is True and "name" not in site["properties"]
    assert by_name["ml-vault"]["properties"]["enableRbacAuthorization"] is True
    # The SDK's list of user-assigned identity ids is ARM's map by id (workspaces template
    # reference: identity.userAssignedIdentities, {customized property}: {}).
    workspace = by_name["ml-workspace"]
    (attached,) = workspace["identity"]["userAssignedIdentities"]
    assert workspace["identity"] == {
        "type": "SystemAssigned,UserAssigned",
        "userAssignedIdentities": {attached: {}},
    }
    assert attached.endswith(
        "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-mlops-retrain-prd"
    )
    identity = by_name["ml-retrain-identity"]
    assert identity["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities"
    assert identity["name"] == "id-mlops-retrain-prd" and "properties" not in identity
    assert by_name["datalake-models"]["name"].endswith("/default/models")


def test_a_resource_type_without_a_mapping_is_refused() -> None:
    with pytest.raises(LookupError, match=r"infra/arm\.py"):
        arm.to_arm(Resource("azure-native:cdn:Profile", "cdn", {"profileName": "p"}))


def test_plan_writes_the_template(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(plan, "synthesize", stack)
    assert plan.main(["preprod", "--arm", "-"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written == arm.template(stack("preprod"))
    waived = [r for r in written["resources"] if r["metadata"].get("checkov")]
    assert waived and all(
        re.match(r"CKV2?_AZURE_\d+: \S", s) for r in waived for s in r["metadata"]["checkov"]
    )
