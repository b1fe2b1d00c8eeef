"""Security rules, written once: pytest runs them over the mocked stacks, the CrossGuard pack
(policy/) runs them in `pulumi preview --policy-pack policy/`.

Each rule reads a resource's inputs in the engine's camelCase shape (what the mocks record and
what a policy pack receives as `props`) and returns a message when the resource breaks it.
Sources: the architecture guide, and Checkov's CKV_AZURE checks where one matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from infra.flex import FLEX_DEPRECATED_SETTINGS, FLEX_DEPRECATED_SITE_CONFIG, is_flex
from infra.policies_alerts import ALERT_RULES
from infra.policy_base import (
    APP_INSIGHTS,
    BLOB_SERVICE,
    CONTAINER,
    EVENT_SUBSCRIPTION,
    LOG_ANALYTICS,
    ML_WORKSPACE,
    ROLE_ASSIGNMENT,
    RULES,
    SECRET,
    STORAGE,
    VAULT,
    VNET,
    WEB_APP,
    Props,
    Rule,
    Subject,
    Violation,
    _require,
    _settings,
    lookup,
    rule,
)
from infra.roles import FORBIDDEN_ROLE_IDS
from lake.contract import DATA_LAKE

__all__ = [
    "ALERT_RULES",
    "RULES",
    "Rule",
    "Subject",
    "Violation",
    "lookup",
    "resource_violations",
    "violations",
]

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_KEY_MATERIAL = re.compile(r"AccountKey=|SharedAccessSignature=|[?&]sig=|DefaultEndpointsProtocol=", re.I)
_SECRET_NAME = re.compile(r"(PASSWORD|SECRET|CONNECTION_?STRING|_KEY$|TOKEN)", re.I)
# Settings that look secret by name but are not: App Insights' ingestion string carries no credential.
_NOT_SECRET = {"APPLICATIONINSIGHTS_CONNECTION_STRING"}


# --- storage accounts ------------------------------------------------------------------------
@rule("storage-https-only", STORAGE, "Storage accepts HTTPS only", "CKV_AZURE_3")
def _storage_https(props: Props) -> str | None:
    return _require(props, "enableHttpsTrafficOnly", True)


@rule("storage-tls-1-2", STORAGE, "Storage requires TLS 1.2", "CKV_AZURE_44")
def _storage_tls(props: Props) -> str | None:
    return _require(props, "minimumTlsVersion", "TLS1_2")


@rule("storage-no-public-blobs", STORAGE, "No anonymous blob access on the account", "CKV_AZURE_190")
def _storage_public_blobs(props: Props) -> str | None:
    return _require(props, "allowBlobPublicAccess", False)


@rule("storage-no-shared-keys", STORAGE, "Shared keys off: identity-based access only", "CKV2_AZURE_40")
def _storage_shared_keys(props: Props) -> str | None:
    return _require(props, "allowSharedKeyAccess", False)


@rule("storage-oauth-default", STORAGE, "The portal and tools default to Entra ID auth")
def _storage_oauth(props: Props) -> str | None:
    return _require(props, "defaultToOAuthAuthentication", True)


@rule("storage-infrastructure-encryption", STORAGE, "Double encryption at rest", "Azure Policy built-in")
def _storage_double_encryption(props: Props) -> str | None:
    return _require(props, "encryption.requireInfrastructureEncryption", True)


@rule(
    "storage-no-cross-tenant-replication",
    STORAGE,
    "Objects never replicate to another tenant",
    "Azure Policy built-in",
)
def _storage_cross_tenant(props: Props) -> str | None:
    return _require(props, "allowCrossTenantReplication", False)


@rule("storage-trusted-services-bypass", STORAGE, "Network rules let trusted Azure services through")
def _storage_bypass(props: Props) -> str | None:
    bypass = str(lookup(props, "networkRuleSet.bypass") or "")
    return (
        None
        if "AzureServices" in bypass
        else f"networkRuleSet.bypass must include AzureServices, is {bypass!r}"
    )


@rule("container-private", CONTAINER, "Containers are never public", "CKV_AZURE_34")
def _container_private(props: Props) -> str | None:
    access = props.get("publicAccess", "None")
    return None if access == "None" else f"publicAccess must be 'None', is {access!r}"


@rule("blob-versioning", BLOB_SERVICE, "Blob versioning keeps overwritten data recoverable")
def _blob_versioning(props: Props) -> str | None:
    return _require(props, "isVersioningEnabled", True)


@rule("blob-soft-delete", BLOB_SERVICE, "Deleted blobs are kept at least 7 days", "CKV2_AZURE_38")
def _blob_soft_delete(props: Props) -> str | None:
    days = lookup(props, "deleteRetentionPolicy.days") or 0
    if lookup(props, "deleteRetentionPolicy.enabled") is not True or days < 7:
        return (
            f"deleteRetentionPolicy must be enabled for >= 7 days, is {props.get('deleteRetentionPolicy')!r}"
        )
    return None


@rule("container-soft-delete", BLOB_SERVICE, "Deleted containers are recoverable")
def _container_soft_delete(props: Props) -> str | None:
    return _require(props, "containerDeleteRetentionPolicy.enabled", True)


# --- function app ----------------------------------------------------------------------------
@rule("app-https-only", WEB_APP, "The app redirects HTTP to HTTPS", "CKV_AZURE_70")
def _app_https(props: Props) -> str | None:
    return _require(props, "httpsOnly", True)


@rule(
    "app-flex-no-deprecated-properties",
    WEB_APP,
    "Flex sites set no deprecated property (no FTP/FTPS state, no SCM-era switches)",
    "Flex Consumption plan deprecations; ARM error 51021",
)
def _app_flex_deprecated(props: Props) -> str | None:
    if not is_flex(props):
        return None
    site_config = props.get("siteConfig") or {}
    found = [f"siteConfig.{key}" for key in FLEX_DEPRECATED_SITE_CONFIG if key in site_config]
    found += [f"app setting {name}" for name in FLEX_DEPRECATED_SETTINGS if name in _settings(props)]
    return f"not allowed on Flex Consumption: {', '.join(found)}" if found else None


@rule("app-tls-1-2", WEB_APP, "The app requires TLS 1.2", "CKV_AZURE_145")
def _app_tls(props: Props) -> str | None:
    return _require(props, "siteConfig.minTlsVersion", "1.2")


@rule("app-managed-identity", WEB_APP, "The app has a system-assigned identity", "CKV_AZURE_71")
def _app_identity(props: Props) -> str | None:
    kind = str(lookup(props, "identity.type") or "")
    return None if "SystemAssigned" in kind else f"identity.type must include SystemAssigned, is {kind!r}"


@rule("app-identity-connections", WEB_APP, "Storage connections are identity-based: no keys, SAS or strings")
def _app_connections(props: Props) -> str | None:
    settings = _settings(props)
    if "AzureWebJobsStorage" in settings:
        return "AzureWebJobsStorage must not be a connection string: use AzureWebJobsStorage__blobServiceUri"
    keyed = sorted(name for name, value in settings.items() if _KEY_MATERIAL.search(value))
    if keyed:
        return f"app settings carry storage keys or SAS tokens: {', '.join(keyed)}"
    for connection in ("AzureWebJobsStorage", DATA_LAKE):
        if settings.get(f"{connection}__credential") != "managedidentity":
            return f"{connection}__credential must be 'managedidentity'"
    return None


@rule("app-secrets-in-key-vault", WEB_APP, "Secret-looking settings are Key Vault references")
def _app_secrets(props: Props) -> str | None:
    plain = sorted(
        name
        for name, value in _settings(props).items()
        if _SECRET_NAME.search(name)
        and name not in _NOT_SECRET
        and not value.startswith("@Microsoft.KeyVault(")
    )
    return f"settings must be Key Vault references: {', '.join(plain)}" if plain else None


@rule("app-deployment-storage-identity", WEB_APP, "Flex deployment storage is reached with the app identity")
def _app_deployment_identity(props: Props) -> str | None:
    kind = lookup(props, "functionAppConfig.deployment.storage.authentication.type")
    if kind in ("SystemAssignedIdentity", "UserAssignedIdentity"):
        return None
    return f"functionAppConfig.deployment.storage.authentication.type must be an identity, is {kind!r}"


# --- Key Vault -------------------------------------------------------------------------------
@rule("vault-rbac", VAULT, "Key Vault uses Azure RBAC, not access policies")
def _vault_rbac(props: Props) -> str | None:
    return _require(props, "properties.enableRbacAuthorization", True)


@rule("vault-soft-delete", VAULT, "Deleted secrets are kept at least 7 days")
def _vault_soft_delete(props: Props) -> str | None:
    days = lookup(props, "properties.softDeleteRetentionInDays") or 90  # Azure's default when unset
    if lookup(props, "properties.enableSoftDelete") is False or days < 7:
        return "properties.enableSoftDelete must be true with softDeleteRetentionInDays >= 7"
    return None


@rule(
    "vault-purge-protection",
    VAULT,
    "Purge protection: nobody can destroy a deleted vault early",
    "CKV_AZURE_110",
)
def _vault_purge(props: Props) -> str | None:
    return _require(props, "properties.enablePurgeProtection", True)


@rule("secret-content-type", SECRET, "Secrets say what they hold", "CKV_AZURE_114")
def _secret_content_type(props: Props) -> str | None:
    return None if lookup(props, "properties.contentType") else "properties.contentType must be set"


# --- ML workspace, telemetry, events ---------------------------------------------------------
@rule("workspace-managed-identity", ML_WORKSPACE, "The workspace acts with its own identity")
def _workspace_identity(props: Props) -> str | None:
    kind = str(lookup(props, "identity.type") or "")
    return None if "SystemAssigned" in kind else f"identity.type must include SystemAssigned, is {kind!r}"


@rule("workspace-identity-datastores", ML_WORKSPACE, "Workspace datastores use identities (keys are off)")
def _workspace_datastores(props: Props) -> str | None:
    return _require(props, "systemDatastoresAuthMode", "identity")


@rule("insights-workspace-based", APP_INSIGHTS, "App Insights stores telemetry in Log Analytics")
def _insights_workspace(props: Props) -> str | None:
    if not props.get("workspaceResourceId") or props.get("ingestionMode") != "LogAnalytics":
        return "workspaceResourceId must be set and ingestionMode must be 'LogAnalytics'"
    return None


@rule("logs-retention", LOG_ANALYTICS, "Logs are kept at least 30 days")
def _logs_retention(props: Props) -> str | None:
    days = props.get("retentionInDays") or 0
    return None if days >= 30 else f"retentionInDays must be >= 30, is {days!r}"


@rule("events-https-webhook", EVENT_SUBSCRIPTION, "Event Grid delivers over HTTPS with TLS 1.2")
def _events_https(props: Props) -> str | None:
    url = str(lookup(props, "destination.endpointUrl") or "")
    if lookup(props, "destination.endpointType") == "WebHook" and not url.startswith("https://"):
        return "destination.endpointUrl must be https://"
    return _require(props, "destination.minimumTlsVersionAllowed", "1.2")


# --- role assignments ------------------------------------------------------------------------
@rule("rbac-no-privileged-roles", ROLE_ASSIGNMENT, "No Owner, Contributor or User Access Administrator")
def _rbac_privileged(props: Props) -> str | None:
    role_id = str(props.get("roleDefinitionId") or "").rsplit("/", 1)[-1].lower()
    name = FORBIDDEN_ROLE_IDS.get(role_id)
    return f"grants {name}: use a data-plane role at the narrowest scope" if name else None


@rule("rbac-principal-type", ROLE_ASSIGNMENT, "principalType is set (no replication-delay failures)")
def _rbac_principal_type(props: Props) -> str | None:
    kind = props.get("principalType")
    return (
        None if kind in ("Group", "ServicePrincipal", "User") else f"principalType must be set, is {kind!r}"
    )


@rule(
    "rbac-deterministic-name", ROLE_ASSIGNMENT, "Assignment names are fixed GUIDs (re-runs never duplicate)"
)
def _rbac_name(props: Props) -> str | None:
    name = str(props.get("roleAssignmentName") or "")
    return None if _GUID.match(name) else f"roleAssignmentName must be a GUID, is {name!r}"


@rule("rbac-not-subscription-wide", ROLE_ASSIGNMENT, "Nothing is granted on a whole subscription")
def _rbac_scope(props: Props) -> str | None:
    scope = str(props.get("scope") or "")
    return None if "/resourceGroups/" in scope else f"scope must be inside a resource group, is {scope!r}"


@rule("rbac-condition-version", ROLE_ASSIGNMENT, "A role assignment condition is ABAC syntax version 2.0")
def _rbac_condition(props: Props) -> str | None:
    """ "ConditionVersion ... Must be set to 2.0. If Condition is specified, ConditionVersion must
    also be specified" ("Add or edit Azure role assignment conditions", conditions-role-assignments-*):
    a version without a condition, or another version, is refused or means something else."""
    condition, version = props.get("condition"), props.get("conditionVersion")
    if condition and version != "2.0":
        return f"conditionVersion must be '2.0' with a condition, is {version!r}"
    if version is not None and not condition:
        return f"conditionVersion {version!r} is set without a condition"
    return None


# --- whole stack -----------------------------------------------------------------------------
def isolation_violations(subjects: Sequence[Subject]) -> list[Violation]:
    """With a virtual network in the stack, data stores deny every other network.

    The Functions host account stays reachable (keyless) because Flex deployments upload
    through the platform, which a storage firewall blocks (docs/decisions.md, decision 22).
    """
    if not any(s.type == VNET for s in subjects):
        return []
    found: list[Violation] = []

    def expect(subject: Subject, path: str, value: str) -> None:
        if lookup(subject.props, path) != value:
            found.append(
                Violation("network-isolation", subject.name, f"{path} must be {value!r} in an isolated stack")
            )

    for subject in subjects:
        if subject.type == STORAGE and lookup(subject.props, "tags.purpose") != "function-host":
            expect(subject, "networkRuleSet.defaultAction", "Deny")
        elif subject.type == VAULT:
            expect(subject, "properties.networkAcls.defaultAction", "Deny")
        elif subject.type == ML_WORKSPACE:
            expect(subject, "publicNetworkAccess", "Disabled")
        elif subject.type == WEB_APP and not subject.props.get("virtualNetworkSubnetId"):
            found.append(Violation("network-isolation", subject.name, "virtualNetworkSubnetId must be set"))
    return found


def resource_violations(subject: Subject, rules: Iterable[Rule] = RULES) -> list[Violation]:
    found = []
    for item in rules:
        if item.resource_type == subject.type and (message := item.check(subject.props)):
            found.append(Violation(item.id, subject.name, message))
    return found


def violations(subjects: Sequence[Subject]) -> list[Violation]:
    found = [v for subject in subjects for v in resource_violations(subject)]
    return found + isolation_violations(subjects)
