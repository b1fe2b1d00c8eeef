"""What a policy rule is, the registry of rules, and the lookups they share (`infra/policies.py`).

Kept apart so the rule modules (`policies.py`, `policies_alerts.py`) import it and not each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Props = Mapping[str, Any]

STORAGE = "azure-native:storage:StorageAccount"
CONTAINER = "azure-native:storage:BlobContainer"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
WEB_APP = "azure-native:web:WebApp"
VAULT = "azure-native:keyvault:Vault"
SECRET = "azure-native:keyvault:Secret"  # noqa: S105 (a resource type)
ML_WORKSPACE = "azure-native:machinelearningservices:Workspace"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
APP_INSIGHTS = "azure-native:applicationinsights:Component"
LOG_ANALYTICS = "azure-native:operationalinsights:Workspace"
EVENT_SUBSCRIPTION = "azure-native:eventgrid:SystemTopicEventSubscription"
VNET = "azure-native:network:VirtualNetwork"
ALERT = "azure-native:monitor:ScheduledQueryRule"


@dataclass(frozen=True)
class Rule:
    id: str
    resource_type: str
    description: str
    source: str
    check: Callable[[Props], str | None]


@dataclass(frozen=True)
class Subject:
    """What a rule looks at: a mocked resource, or a resource in a CrossGuard analysis."""

    type: str
    name: str
    props: Props


@dataclass(frozen=True)
class Violation:
    rule: str
    resource: str
    message: str


RULES: list[Rule] = []


def rule(id_: str, resource_type: str, description: str, source: str = "architecture guide"):
    def register(check: Callable[[Props], str | None]) -> Callable[[Props], str | None]:
        RULES.append(Rule(id_, resource_type, description, source, check))
        return check

    return register


def lookup(props: Props, path: str) -> Any:
    """The value at a dotted property path (`siteConfig.minTlsVersion`), or None."""
    value: Any = props
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _require(props: Props, path: str, expected: Any) -> str | None:
    actual = lookup(props, path)
    return None if actual == expected else f"{path} must be {expected!r}, is {actual!r}"


def _settings(props: Props) -> dict[str, str]:
    pairs = lookup(props, "siteConfig.appSettings") or []
    return {p.get("name", ""): str(p.get("value", "")) for p in pairs if isinstance(p, Mapping)}
