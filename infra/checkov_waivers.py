"""Checkov's findings on the stacks' ARM rendering (infra/arm.py) that stay, each with its reason.

This is the one place: tests/test_infra_checkov.py scans dev, preprod and prod with Checkov's
ARM framework and fails on a failed check that is not waived here, and on a waiver here that no
longer matches a failure (the finding is fixed: delete the waiver). `python -m infra.plan STACK
--arm FILE` writes the waivers into the template as Checkov's own suppressions
(`metadata.checkov` of each resource), so Checkov run on that file lists them as skipped, with
the reason.

A waiver names resources by their Pulumi logical name (the same in every stack; Azure names
carry the stack and a hash). What each check reads: the check's source in Checkov,
checkov/arm/checks/resource/*.py and checkov/arm/checks/graph_checks/*.json.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import ENVIRONMENTS

ALL = ENVIRONMENTS
OPEN = tuple(stack for stack in ENVIRONMENTS if stack != "prod")  # networkIsolation off (decision 22)
PROD = ("prod",)

HOST = "functions-host-storage"
LAKE = "datalake-account"
ML_STORAGE = "ml-storage"
SITE = "functions-site"
PLAN = "functions-plan"
VAULT = "ml-vault"
VAULT_ENTRY = "functions-db-connection-string"  # the Key Vault secret resource
WORKSPACE = "ml-workspace"


@dataclass(frozen=True)
class Waiver:
    check: str
    resources: tuple[str, ...]  # Pulumi logical names
    stacks: tuple[str, ...]
    reason: str


_NOT_ISOLATED = (
    "dev and preprod are not network-isolated by design (networkIsolation false, decision 22): "
    "people and CI reach them from their own networks with Entra ID sign-in, keys are off"
)
_HOST_PUBLIC = (
    "the Functions host account keeps its public endpoint, keyless (decision 22): Flex deploys "
    "its package through the platform, which a storage firewall blocks"
)
_PRIVATE_ENDPOINTS = (
    "prod denies every network but the function subnet's service endpoints and allowedIpRanges; "
    "service endpoints and IP rules work only while public network access is Enabled ('Disabled' "
    "also denies requests matching IP or virtual network rules: Azure Policy built-in 'Storage "
    "accounts should disable public network access'). Decision 35 keeps the data lake and the "
    "workspace storage on service endpoints: private endpoints bill per endpoint by the hour and "
    "need a network path for every person and pipeline"
)
_FLEX_SITE_CONFIG = (
    "Flex Consumption site: siteConfig carries only what Microsoft's Flex samples set "
    "(infra/flex.py, issue 11's Flex finding); ftpsState is refused on Flex (ARM error 51021)"
)

WAIVERS: tuple[Waiver, ...] = (
    # --- storage accounts --------------------------------------------------------------------
    Waiver("CKV_AZURE_35", (LAKE, ML_STORAGE), OPEN, _NOT_ISOLATED),
    Waiver("CKV_AZURE_35", (HOST,), ALL, _HOST_PUBLIC),
    Waiver("CKV_AZURE_59", (LAKE, ML_STORAGE), OPEN, _NOT_ISOLATED),
    Waiver("CKV_AZURE_59", (HOST,), ALL, _HOST_PUBLIC),
    Waiver("CKV_AZURE_59", (LAKE, ML_STORAGE), PROD, _PRIVATE_ENDPOINTS),
    Waiver(
        "CKV_AZURE_206",
        (LAKE,),
        OPEN,
        "dev and preprod hold copies for development and rehearsal (exports can be re-run, models "
        "re-trained); LRS by cost. prod's data lake is GZRS",
    ),
    Waiver(
        "CKV_AZURE_206",
        (HOST,),
        ALL,
        "host state only: the code packages are rebuilt by `pulumi up`, blob receipts and leases "
        "are re-created, and a re-delivered input is scored exactly once (decision 17)",
    ),
    Waiver(
        "CKV_AZURE_206",
        (ML_STORAGE,),
        ALL,
        "the workspace's own artifacts (runs, snapshots) are reproducible by re-training; the record "
        "of models is the registry in the data lake",
    ),
    # --- Key Vault ---------------------------------------------------------------------------
    Waiver("CKV_AZURE_109", (VAULT,), OPEN, _NOT_ISOLATED),
    Waiver("CKV_AZURE_189", (VAULT,), OPEN, _NOT_ISOLATED),
    Waiver(
        "CKV_AZURE_41",
        (VAULT_ENTRY,),
        ALL,
        "an expired secret is refused ('Operation get is not allowed on a expired secret', "
        "Azure/AzureKeyVault issue 19), so a fixed expiry would stop the daily export on that "
        "date; the documented connection string (Authentication=ActiveDirectoryMsi) holds no "
        "password to rotate. Rotation of a password-based source is the owner's, with "
        "`pulumi config set --secret dbConnectionString`",
    ),
    # --- ML workspace ------------------------------------------------------------------------
    Waiver("CKV2_AZURE_49", (WORKSPACE,), OPEN, _NOT_ISOLATED),
    Waiver(
        "CKV_AZURE_243",
        (WORKSPACE,),
        ALL,
        "the check reads the outbound rules of the workspace's managed network (its compute's "
        "network); the workspace has no compute yet (retraining is a later issue). prod's workspace "
        "has public access off and an inbound private endpoint (decision 35), which the check does "
        "not read",
    ),
    # --- Function App ------------------------------------------------------------------------
    Waiver(
        "CKV_AZURE_222",
        (SITE,),
        ALL,
        "Event Grid delivers the blob trigger's events to the app's webhook over its public HTTPS "
        "endpoint (TLS 1.2, the blobs_extension key); public network access off stops scoring",
    ),
    Waiver(
        "CKV_AZURE_17",
        (SITE,),
        ALL,
        "Event Grid's webhook delivery presents no client certificate: required certificates "
        "would refuse every blob event; the endpoint is authenticated by the system key",
    ),
    Waiver(
        "CKV_AZURE_212",
        (SITE,),
        ALL,
        "siteConfig.numberOfWorkers is an App Service plan setting; Flex Consumption scales "
        "instances per function from zero (functionAppConfig.scaleAndConcurrency)",
    ),
    Waiver(
        "CKV_AZURE_213",
        (SITE,),
        ALL,
        "the app has no HTTP route to probe (timer, Event Grid blob trigger, queue), and App "
        "Service health check is offered for Dedicated and Premium plans, not Flex Consumption "
        "(Microsoft Q&A 762554); failures are watched by the failed-invocation and export-late alerts",
    ),
    Waiver("CKV_AZURE_78", (SITE,), ALL, _FLEX_SITE_CONFIG),
    Waiver("CKV_AZURE_18", (SITE,), ALL, _FLEX_SITE_CONFIG + "; the app serves no HTTP functions"),
    Waiver("CKV_AZURE_67", (SITE,), ALL, _FLEX_SITE_CONFIG + "; the app serves no HTTP functions"),
    Waiver(
        "CKV_AZURE_225",
        (PLAN,),
        ALL,
        "zone redundancy on Flex Consumption keeps at least two always-ready instances per function "
        "group, billed around the clock ('Reliability in Azure Functions'); the batch chain "
        "tolerates a zone outage (Event Grid retries deliveries for 24 h, the export re-runs "
        "idempotently) and so stays scale-to-zero",
    ),
)


def waived(stack: str, resource: str, check: str) -> Waiver | None:
    """The waiver of `check` on the resource with Pulumi logical name `resource` in `stack`."""
    for waiver in WAIVERS:
        if waiver.check == check and stack in waiver.stacks and resource in waiver.resources:
            return waiver
    return None


def expected(stack: str) -> set[tuple[str, str]]:
    """Every (Pulumi logical name, check) this file waives in `stack`."""
    return {(r, w.check) for w in WAIVERS if stack in w.stacks for r in w.resources}
