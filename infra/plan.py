"""Offline plan: what `pulumi up -s STACK` would create, without Azure, a login or the Pulumi CLI.

    python -m infra.plan dev            # resources, key security settings, role matrix, policy result
    python -m infra.plan prod --json    # the same as JSON, for diffs and scripts
    python -m infra.plan prod --arm prod.json   # the stack as an ARM template (infra/arm.py), `-` for stdout

It runs the real program under Pulumi's mock runtime (infra/synth.py) with `Pulumi.<stack>.yaml`.
Values only Azure knows (ids, principal ids, keys) are mock values; names and settings are real.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from infra.arm import template
from infra.config import ENVIRONMENTS, ConfigError
from infra.policies import Subject, lookup, violations
from infra.providers import namespaces_for, register_commands
from infra.roles import DATA_SCIENTISTS, DEPLOYER, FORBIDDEN_ROLE_IDS, ML_ENGINEERS, RETRAIN_JOB, ROLE_IDS
from infra.synth import Synthesis, synthesize

ROLE_NAMES = {role_id: name for name, role_id in ROLE_IDS.items()} | FORBIDDEN_ROLE_IDS
ASSIGNMENT = "azure-native:authorization:RoleAssignment"
PERSONAS = {
    DATA_SCIENTISTS: "data-scientists (group)",
    ML_ENGINEERS: "ml-engineers (group)",
    DEPLOYER: "deployer (runs pulumi up)",
    RETRAIN_JOB: "retrain job (the workspace's user-assigned identity)",
}

# The settings worth a reviewer's eye, per resource type (engine property paths).
KEY_SETTINGS: dict[str, tuple[str, ...]] = {
    "azure-native:storage:StorageAccount": (
        "sku.name",
        "minimumTlsVersion",
        "enableHttpsTrafficOnly",
        "allowBlobPublicAccess",
        "allowSharedKeyAccess",
        "encryption.requireInfrastructureEncryption",
        "networkRuleSet.defaultAction",
        "tags.purpose",
    ),
    "azure-native:storage:BlobServiceProperties": (
        "isVersioningEnabled",
        "deleteRetentionPolicy.days",
        "containerDeleteRetentionPolicy.days",
    ),
    "azure-native:storage:BlobContainer": ("publicAccess",),
    "azure-native:keyvault:Vault": (
        "properties.enableRbacAuthorization",
        "properties.enablePurgeProtection",
        "properties.softDeleteRetentionInDays",
        "properties.networkAcls.defaultAction",
    ),
    "azure-native:keyvault:Secret": ("properties.contentType",),
    "azure-native:machinelearningservices:Workspace": ("publicNetworkAccess", "systemDatastoresAuthMode"),
    "azure-native:web:AppServicePlan": ("sku.name", "sku.tier"),
    "azure-native:web:WebApp": (
        "httpsOnly",
        "identity.type",
        "siteConfig.minTlsVersion",
        "functionAppConfig.runtime.version",
        "functionAppConfig.scaleAndConcurrency.maximumInstanceCount",
        "functionAppConfig.deployment.storage.authentication.type",
        "virtualNetworkSubnetId",
    ),
    "azure-native:applicationinsights:Component": ("ingestionMode",),
    "azure-native:operationalinsights:Workspace": ("retentionInDays",),
    "azure-native:eventgrid:SystemTopicEventSubscription": (
        "filter.subjectBeginsWith",
        "filter.subjectEndsWith",
        "destination.minimumTlsVersionAllowed",
    ),
    "azure-native:monitor:ScheduledQueryRule": ("severity", "evaluationFrequency"),
    "azure-native:resources:Deployment": ("tags.package-sha256",),
}


def _short_scope(scope: str) -> str:
    """The tail of a resource id that names the scope: `storageAccounts/x/.../containers/models`."""
    if "/providers/" not in scope:
        return "resourceGroup/" + scope.rsplit("/", 1)[-1]
    tail = scope.split("/providers/", 1)[1].split("/", 1)[1]
    return tail.replace("/blobServices/default", "").replace("/queueServices/default", "")


def role_rows(synthesis: Synthesis, principal_names: dict[str, str]) -> list[dict[str, str]]:
    rows = []
    for assignment in synthesis.of_type(ASSIGNMENT):
        inputs = assignment.inputs
        role_id = str(inputs["roleDefinitionId"]).rsplit("/", 1)[-1]
        principal = str(inputs["principalId"])
        rows.append(
            {
                "principal": principal_names.get(principal, principal),
                "principalType": str(inputs.get("principalType")),
                "role": ROLE_NAMES.get(role_id, role_id),
                "scope": _short_scope(str(inputs["scope"])),
            }
        )
    return sorted(rows, key=lambda row: (row["principal"], row["role"], row["scope"]))


def plan(stack: str) -> dict[str, Any]:
    synthesis = synthesize(stack)
    web_app = synthesis.one("azure-native:web:WebApp")
    principals = {str(synthesis.outputs["functionPrincipalId"]): f"function app ({web_app.azure_name})"}
    for assignment in synthesis.of_type(ASSIGNMENT):
        description = str(assignment.inputs.get("description", ""))
        who = description.split(":", 1)[0]
        if who in PERSONAS:
            principals[str(assignment.inputs["principalId"])] = PERSONAS[who]
    resources = [
        {
            "type": r.type.removeprefix("azure-native:"),
            "name": r.azure_name,
            "settings": {
                path: value
                for path in KEY_SETTINGS.get(r.type, ())
                if (value := lookup(r.inputs, path)) is not None
            },
        }
        for r in sorted(synthesis.resources, key=lambda r: (r.type, r.azure_name))
        if r.type.startswith("azure-native:") and r.type != ASSIGNMENT
    ]
    found = violations([Subject(r.type, r.azure_name, r.inputs) for r in synthesis.resources])
    return {
        "stack": stack,
        "resources": resources,
        "roles": role_rows(synthesis, principals),
        # secret outputs as `pulumi stack output` shows them without --show-secrets
        "outputs": {
            k: "[secret]" if k in synthesis.secret_outputs else v
            for k, v in synthesis.outputs.items()
            if isinstance(v, str)
        },
        # Registered once per subscription before the first `up` (docs/deploy.md, checklist).
        "providers": namespaces_for(r.type for r in synthesis.resources),
        "policy": {"violations": [v.__dict__ for v in found]},
    }


def render(result: dict[str, Any]) -> str:
    lines = [
        f"Stack {result['stack']}: {len(result['resources'])} resources, "
        f"{len(result['roles'])} role assignments"
    ]
    lines.append("")
    for resource in result["resources"]:
        lines.append(f"  {resource['type']:<46} {resource['name']}")
        for path, value in resource["settings"].items():
            lines.append(f"      {path} = {json.dumps(value)}")
    lines += ["", "Role matrix (principal | role | scope):"]
    for row in result["roles"]:
        lines.append(f"  {row['principal']:<42} | {row['role']:<31} | {row['scope']}")
    lines += [
        "",
        "Resource providers the subscription must have registered (checked before `up` creates anything):",
    ]
    lines += [f"  {command}" for command in register_commands(result["providers"])]
    lines += ["", "Outputs:"]
    lines += [f"  {k} = {v}" for k, v in result["outputs"].items()]
    found = result["policy"]["violations"]
    lines.append("")
    if found:
        lines.append(f"Security policy: {len(found)} violation(s)")
        lines += [f"  {v['rule']}: {v['resource']}: {v['message']}" for v in found]
    else:
        lines.append("Security policy: all rules pass")
    return "\n".join(lines)


def write_arm(stack: str, destination: str) -> int:
    try:
        rendered = json.dumps(template(synthesize(stack)), indent=2) + "\n"
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if destination == "-":
        sys.stdout.write(rendered)
    else:
        Path(destination).write_text(rendered)
        print(f"wrote {destination}: the {stack} stack as an ARM template", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.plan", description=__doc__.splitlines()[0])
    parser.add_argument("stack", choices=ENVIRONMENTS)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--arm",
        metavar="FILE",
        help="write the stack as an ARM template with its Checkov waivers (infra/arm.py); - for stdout",
    )
    args = parser.parse_args(argv)
    if args.arm:
        return write_arm(args.stack, args.arm)
    try:
        result = plan(args.stack)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 1 if result["policy"]["violations"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
