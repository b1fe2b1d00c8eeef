"""Component resources on their own, in Pulumi's unit-test style: `@pulumi.runtime.test` functions
that return the Output whose `apply` holds the assertions, so the test waits for them to run."""

from __future__ import annotations

import pulumi
import pytest

from infra.components.datalake import DataLake, DataLakeArgs
from infra.components.rbac import Rbac, RbacArgs
from infra.components.storage import Firewall
from infra.config import PROJECT
from infra.roles import DATA_SCIENTISTS, PRINCIPAL_TYPES, Grant
from infra.synth import RecordingMocks

SUBNET = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/functions"


@pytest.fixture
def mocks() -> RecordingMocks:
    recorder = RecordingMocks()
    pulumi.runtime.set_mocks(recorder, project=PROJECT, stack="dev", preview=False)
    return recorder


def _lake(firewall: Firewall | None = None) -> DataLake:
    return DataLake(
        "lake",
        DataLakeArgs(
            account_name="stunitdevdl0000",
            resource_group_name="rg-unit",
            location="westeurope",
            sku="Standard_LRS",
            retention_days=7,
            tags={"environment": "dev"},
            firewall=firewall,
        ),
    )


def test_data_lake_exposes_its_endpoints_and_containers(mocks: RecordingMocks) -> None:
    @pulumi.runtime.test
    def check() -> pulumi.Output:
        lake = _lake()

        def verify(values: list) -> None:
            blob, queue, models_id = values
            assert blob == "https://stunitdevdl0000.blob.core.windows.net/"
            assert queue == "https://stunitdevdl0000.queue.core.windows.net/"
            assert models_id.endswith(
                "/storageAccounts/stunitdevdl0000/blobServices/default/containers/models"
            )

        return pulumi.Output.all(lake.blob_endpoint, lake.queue_endpoint, lake.containers["models"].id).apply(
            verify
        )

    check()
    children = [r for r in mocks.resources if r.type.startswith("azure-native:")]
    assert len(children) == 1 + 1 + 6 + 3  # account, blob protection, containers, queues


def test_data_lake_firewall_denies_all_but_the_subnet_and_listed_ranges(mocks: RecordingMocks) -> None:
    @pulumi.runtime.test
    def check() -> None:
        _lake(Firewall(subnet_ids=[SUBNET], ip_ranges=("203.0.113.0/24",)))

    check()
    account = next(r for r in mocks.resources if r.type == "azure-native:storage:StorageAccount")
    rules = account.inputs["networkRuleSet"]
    assert rules["defaultAction"] == "Deny" and rules["bypass"] == "AzureServices"
    assert rules["virtualNetworkRules"] == [{"virtualNetworkResourceId": SUBNET, "action": "Allow"}]
    assert rules["ipRules"] == [{"iPAddressOrRange": "203.0.113.0/24", "action": "Allow"}]


def test_an_assertion_inside_apply_fails_the_test(mocks: RecordingMocks) -> None:
    """The pattern above cannot pass silently: a failing check inside `apply` fails the test."""

    @pulumi.runtime.test
    def check() -> pulumi.Output:
        lake = _lake()
        return lake.blob_endpoint.apply(lambda url: _fail(f"saw {url}"))

    with pytest.raises(AssertionError, match="saw https://stunitdevdl0000"):
        check()


def _fail(message: str) -> None:
    raise AssertionError(message)


def test_rbac_refuses_a_grant_whose_scope_the_stack_lacks(mocks: RecordingMocks) -> None:
    @pulumi.runtime.test
    def check() -> None:
        Rbac(
            "rbac",
            RbacArgs(
                grants=[Grant(DATA_SCIENTISTS, "Reader", "container:nowhere")],
                principals={DATA_SCIENTISTS: "11111111-1111-4111-8111-111111111111"},
                principal_types=PRINCIPAL_TYPES,
                scopes={"resource-group": "/subscriptions/s/resourceGroups/rg"},
                subscription_id="s",
                environment="dev",
            ),
        )

    with pytest.raises(ValueError, match="container:nowhere"):
        check()
