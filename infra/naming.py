"""Azure resource names: valid for each service's rules, unique per prefix and stack, stable.

Storage accounts and Key Vaults have tight, global name spaces (3-24 characters), so long
prefixes are shortened; a short hash of the full `prefix/environment/purpose` keeps two
shortened names from colliding. Names never depend on anything known only after deployment,
so the offline plan shows the real names.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

SHORT_ENVIRONMENT = {"dev": "dev", "preprod": "pre", "prod": "prd"}

# (pattern, min, max) per kind, from Azure's naming rules.
RULES: dict[str, tuple[re.Pattern[str], int, int]] = {
    "resource_group": (re.compile(r"^[A-Za-z0-9._()-]*[A-Za-z0-9_()-]$"), 1, 90),
    "storage_account": (re.compile(r"^[a-z0-9]+$"), 3, 24),
    "key_vault": (re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]*[A-Za-z0-9]$"), 3, 24),
    "function_app": (re.compile(r"^[A-Za-z0-9](?!.*--)[A-Za-z0-9-]*[A-Za-z0-9]$"), 2, 60),
    "ml_workspace": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$"), 3, 33),
    "log_analytics": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]$"), 4, 63),
    "generic": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]$"), 1, 64),
    "action_group_short": (re.compile(r"^[A-Za-z0-9-]+$"), 1, 12),
    # Microsoft.ManagedIdentity/userAssignedIdentities: 3-128, alphanumerics, hyphens and
    # underscores, starting with a letter or digit (the template reference's `name`,
    # learn.microsoft.com/azure/templates/microsoft.managedidentity/userassignedidentities). No
    # underscores here: Microsoft's own guide supports only alphanumerics and hyphens when it
    # creates one ("Manage user-assigned managed identities using Azure Resource Manager").
    "user_assigned_identity": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$"), 3, 128),
}


class InvalidNameError(ValueError):
    """A generated name breaks its service's rules (a bug in this module, caught by the tests)."""


def check(kind: str, name: str) -> str:
    pattern, low, high = RULES[kind]
    if not (low <= len(name) <= high and pattern.match(name)):
        raise InvalidNameError(
            f"{kind} name {name!r} breaks Azure's rules ({low}-{high} chars, {pattern.pattern})"
        )
    return name


def _digest(*parts: str, length: int = 5) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class Names:
    prefix: str
    environment: str

    @property
    def _env(self) -> str:
        return SHORT_ENVIRONMENT[self.environment]

    def _hyphenated(self, kind: str, abbreviation: str, limit: int, unique: bool = False) -> str:
        suffix = f"-{_digest(self.prefix, self.environment, abbreviation)}" if unique else ""
        fixed = len(abbreviation) + len(self._env) + len(suffix) + 2
        prefix = self.prefix[: max(1, limit - fixed)].rstrip("-")
        return check(kind, f"{abbreviation}-{prefix}-{self._env}{suffix}")

    def storage_account(self, purpose: str) -> str:
        """`st` + prefix + env + purpose + hash, lowercase letters and digits, at most 24."""
        digest = _digest(self.prefix, self.environment, purpose, length=4)
        fixed = 2 + len(self._env) + len(purpose) + len(digest)
        prefix = re.sub(r"[^a-z0-9]", "", self.prefix)[: 24 - fixed]
        return check("storage_account", f"st{prefix}{self._env}{purpose}{digest}")

    @property
    def resource_group(self) -> str:
        return check("resource_group", f"rg-{self.prefix}-{self.environment}")

    @property
    def key_vault(self) -> str:
        return self._hyphenated("key_vault", "kv", 24, unique=True)

    @property
    def function_app(self) -> str:
        """Also the public host name `<name>.azurewebsites.net`, so it carries the hash too."""
        return self._hyphenated("function_app", "func", 60, unique=True)

    @property
    def plan(self) -> str:
        return self._hyphenated("generic", "plan", 60)

    @property
    def ml_workspace(self) -> str:
        return self._hyphenated("ml_workspace", "mlw", 33)

    @property
    def log_analytics(self) -> str:
        return self._hyphenated("log_analytics", "log", 63)

    @property
    def app_insights(self) -> str:
        return self._hyphenated("generic", "appi", 64)

    @property
    def virtual_network(self) -> str:
        return self._hyphenated("generic", "vnet", 64)

    @property
    def event_grid_topic(self) -> str:
        return self._hyphenated("generic", "evgt", 64)

    @property
    def action_group(self) -> str:
        return self._hyphenated("generic", "ag", 64)

    @property
    def action_group_short(self) -> str:
        return check("action_group_short", f"{self.prefix[:7].rstrip('-')}-{self._env}")

    @property
    def retrain_identity(self) -> str:
        """The user-assigned identity retraining jobs run as: `id-{prefix}-retrain-{env}`."""
        fixed = len("id--retrain-") + len(self._env)
        prefix = self.prefix[: 128 - fixed].rstrip("-")
        return check("user_assigned_identity", f"id-{prefix}-retrain-{self._env}")

    def alert(self, what: str) -> str:
        return self._hyphenated("generic", f"alert-{what}", 64)
