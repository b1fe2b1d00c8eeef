"""The security rules: every stack passes them, and every rule catches a weakened resource, both
as a plain predicate (pytest) and through the CrossGuard policy objects the pack serves."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from pulumi_policy import (
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra import policies
from infra.package import REPO_ROOT
from infra.policy_pack import build_policies
from tests.infra_support import STACKS, stack, subjects

OWNER = (
    "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
)
CONTRIBUTOR = (
    "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"
)


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def weaken(props: dict) -> None:
        *parents, last = path.split(".")
        target = props
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value

    return weaken


def _add_setting(name: str, value: str) -> Callable[[dict], None]:
    def weaken(props: dict) -> None:
        props["siteConfig"]["appSettings"].append({"name": name, "value": value})

    return weaken


def _set_query(query: str) -> Callable[[dict], None]:
    def weaken(props: dict) -> None:
        props["criteria"]["allOf"][0]["query"] = query

    return weaken


# One deliberate weakening per rule: each must be caught by exactly that rule.
WEAKENINGS: dict[str, Callable[[dict], None]] = {
    "storage-https-only": _set("enableHttpsTrafficOnly", False),
    "storage-tls-1-2": _set("minimumTlsVersion", "TLS1_0"),
    "storage-no-public-blobs": _set("allowBlobPublicAccess", True),
    "storage-no-shared-keys": _set("allowSharedKeyAccess", True),
    "storage-oauth-default": _set("defaultToOAuthAuthentication", False),
    "storage-infrastructure-encryption": _set("encryption.requireInfrastructureEncryption", False),
    "storage-no-cross-tenant-replication": _set("allowCrossTenantReplication", True),
    "storage-trusted-services-bypass": _set("networkRuleSet.bypass", "None"),
    "container-private": _set("publicAccess", "Blob"),
    "blob-versioning": _set("isVersioningEnabled", False),
    "blob-soft-delete": _set("deleteRetentionPolicy.days", 1),
    "container-soft-delete": _set("containerDeleteRetentionPolicy.enabled", False),
    "app-https-only": _set("httpsOnly", False),
    # ARM error 51021: "...FtpsState... for Flex Consumption sites is invalid" (issue 11); any
    # value is refused on a Flex site, even the safe-looking one.
    "app-flex-no-deprecated-properties": _set("siteConfig.ftpsState", "Disabled"),
    "app-tls-1-2": _set("siteConfig.minTlsVersion", "1.0"),
    "app-managed-identity": _set("identity.type", "None"),
    "app-identity-connections": _add_setting(
        "AzureWebJobsStorage", "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=c2VjcmV0"
    ),
    "app-secrets-in-key-vault": _add_setting("ADMIN_PASSWORD", "hunter2"),
    "app-deployment-storage-identity": _set(
        "functionAppConfig.deployment.storage.authentication.type", "StorageAccountConnectionString"
    ),
    "vault-rbac": _set("properties.enableRbacAuthorization", False),
    "vault-soft-delete": _set("properties.softDeleteRetentionInDays", 3),
    "vault-purge-protection": _set("properties.enablePurgeProtection", False),
    "secret-content-type": _set("properties.contentType", ""),
    "workspace-managed-identity": _set("identity.type", "None"),
    "workspace-identity-datastores": _set("systemDatastoresAuthMode", "accessKey"),
    "insights-workspace-based": _set("ingestionMode", "ApplicationInsights"),
    "logs-retention": _set("retentionInDays", 7),
    "events-https-webhook": _set("destination.endpointUrl", "http://example.net/runtime/webhooks/blobs"),
    "alert-has-action": _set("actions.actionGroups", []),
    # Azure's supported granularities end at 2880 minutes (P2D): issue 21258 of azure-rest-api-specs.
    "alert-schedule-allowed": _set("windowSize", "P3D"),
    # Azure reads at most the rule's window, whatever ago() asks for (alerts-create-log-alert-rule).
    "alert-query-supported": _set_query("requests | where timestamp > ago(7d) | where success == false"),
    "rbac-no-privileged-roles": _set("roleDefinitionId", OWNER),
    "rbac-principal-type": _set("principalType", None),
    "rbac-deterministic-name": _set("roleAssignmentName", "readers"),
    "rbac-not-subscription-wide": _set("scope", "/subscriptions/00000000-0000-4000-8000-00000000aaaa"),
    # "ConditionVersion ... Must be set to 2.0" (conditions-role-assignments-powershell / -rest).
    "rbac-condition-version": _set("conditionVersion", "1.0"),
}
RULES = {rule.id: rule for rule in policies.RULES}
PACK = {policy.name: policy for policy in build_policies()}


def _target(rule: policies.Rule) -> policies.Subject:
    """A real resource of the rule's type, from whichever stack has one."""
    for name in STACKS:
        for subject in subjects(stack(name)):
            if subject.type == rule.resource_type:
                return subject
    raise LookupError(rule.resource_type)


def _crossguard(policy: ResourceValidationPolicy, subject: policies.Subject) -> list[str]:
    reported: list[str] = []
    options = PolicyResourceOptions(False, [], None, [], None, [], None)  # type: ignore[arg-type]
    args = ResourceValidationArgs(
        subject.type, subject.props, f"urn:{subject.name}", subject.name, options, None
    )
    policy.validate(args, lambda message, urn=None: reported.append(message))
    return reported


def test_about_25_rules_each_with_its_negative_test() -> None:
    assert len(RULES) >= 25
    assert set(WEAKENINGS) == set(RULES), "every rule needs a weakening here, and every weakening a rule"
    assert set(PACK) == set(RULES) | {"network-isolation"}


@pytest.mark.parametrize("name", STACKS)
def test_every_stack_passes_every_rule(name: str) -> None:
    assert policies.violations(subjects(stack(name))) == []


def test_every_rule_applies_to_something() -> None:
    present = {s.type for name in STACKS for s in subjects(stack(name))}
    assert {rule.resource_type for rule in policies.RULES} <= present


@pytest.mark.parametrize("rule_id", sorted(WEAKENINGS))
def test_weakened_resource_is_caught(rule_id: str) -> None:
    rule = RULES[rule_id]
    subject = _target(rule)
    assert rule.check(subject.props) is None
    assert _crossguard(PACK[rule_id], subject) == []

    props = copy.deepcopy(dict(subject.props))
    WEAKENINGS[rule_id](props)
    weakened = policies.Subject(subject.type, subject.name, props)
    found = policies.resource_violations(weakened)
    assert [v.rule for v in found] == [rule_id], found
    reported = _crossguard(PACK[rule_id], weakened)
    assert len(reported) == 1 and rule.description in reported[0]


def test_privileged_role_message_names_the_role() -> None:
    assert "Contributor" in (RULES["rbac-no-privileged-roles"].check({"roleDefinitionId": CONTRIBUTOR}) or "")


def test_rules_ignore_other_resource_types() -> None:
    storage = _target(RULES["storage-https-only"])
    assert _crossguard(PACK["vault-rbac"], storage) == []


@pytest.mark.parametrize(
    ("type_", "path", "value"),
    [
        (policies.STORAGE, "networkRuleSet.defaultAction", "Allow"),
        (policies.VAULT, "properties.networkAcls.defaultAction", "Allow"),
        (policies.ML_WORKSPACE, "publicNetworkAccess", "Enabled"),
        (policies.WEB_APP, "virtualNetworkSubnetId", None),
    ],
)
def test_isolation_rule_catches_an_open_data_store(type_: str, path: str, value: Any) -> None:
    prod = subjects(stack("prod"))
    assert policies.isolation_violations(prod) == []
    target = next(
        s for s in prod if s.type == type_ and (s.props.get("tags") or {}).get("purpose") != "function-host"
    )
    props = copy.deepcopy(dict(target.props))
    _set(path, value)(props)
    opened = [policies.Subject(s.type, s.name, props) if s is target else s for s in prod]
    found = policies.isolation_violations(opened)
    assert [(v.rule, v.resource) for v in found] == [("network-isolation", target.name)]

    reported: list[str] = []
    resources = [
        PolicyResource(s.type, s.props, f"urn:{s.name}", s.name, None, None, None, [], {}) for s in opened
    ]  # type: ignore[arg-type]
    policy = PACK["network-isolation"]
    assert isinstance(policy, StackValidationPolicy)
    policy.validate(StackValidationArgs(resources), lambda message, urn=None: reported.append(message))
    assert len(reported) == 1 and target.name in reported[0]


def test_isolation_rule_does_not_apply_without_a_network() -> None:
    assert policies.isolation_violations(subjects(stack("dev"))) == []
    assert not [s for s in subjects(stack("dev")) if s.type == policies.VNET]


def test_policy_pack_starts_and_serves() -> None:
    """`pulumi preview --policy-pack policy/` runs policy/__main__.py, which prints its gRPC port."""
    process = subprocess.Popen(  # noqa: S603 - our interpreter running the policy pack
        [sys.executable, str(REPO_ROOT / "policy" / "__main__.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO_ROOT / "policy",
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().decode().strip()
        assert port.isdigit() and int(port) > 0, process.stderr.read().decode() if process.stderr else port
    finally:
        process.kill()
        process.wait(timeout=10)
