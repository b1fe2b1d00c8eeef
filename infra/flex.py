"""What a Flex Consumption site must not carry: deprecated site properties and app settings.

Read by the policy rule `app-flex-no-deprecated-properties` (infra/policies.py) and kept beside
the FunctionApp component's choices (infra/components/functionapp.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Flex Consumption: site properties and app settings that are deprecated or moved to
# `functionAppConfig` ("Flex Consumption plan deprecations",
# learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations).
# `ftpsState` is refused outright (ARM error 51021 "...FtpsState... for Flex Consumption sites is
# invalid"); the SCM/FTP-era switches below are never set by Microsoft's Flex samples
# (Azure-Samples/azure-functions-flex-consumption-samples IaC/bicep, IaC/armtemplate) and stay out
# until a Flex sample or doc shows them.
FLEX_DEPRECATED_SITE_CONFIG = (
    "ftpsState",
    "http20Enabled",
    "scmMinTlsVersion",
    "remoteDebuggingEnabled",
    "alwaysOn",
    "functionAppScaleLimit",
    "javaVersion",
    "linuxFxVersion",
    "netFrameworkVersion",
    "powerShellVersion",
    "preWarmedInstanceCount",
    "use32BitWorkerProcess",
)
FLEX_DEPRECATED_SETTINGS = (
    "ENABLE_ORYX_BUILD",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTOVERVNET",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_TIME_ZONE",
    "WEBSITE_VNET_ROUTE_ALL",
    "TZ",
)


def is_flex(props: Mapping[str, Any]) -> bool:
    """A Flex Consumption site: it carries `functionAppConfig` (Microsoft.Web/sites 2023-12-01+)."""
    return isinstance(props.get("functionAppConfig"), Mapping)
