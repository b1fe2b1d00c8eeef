"""What `pulumi up` does against Azure besides declaring resources, behind one seam (CloudOps).

- the resource providers a stack needs are checked before anything is created;
- the code package is uploaded and signed (infra/upload.py);
- the retrain job's code (model/, lake/) is uploaded to the workspace storage (infra/upload.py);
- the Event Grid subscription waits for the app's `blobs_extension` key, which exists only once
  the host has started with the blob trigger indexed (Microsoft's Flex blob sample creates the
  subscription after deployment for this reason: Azure-Samples/azure-functions-flex-consumption-
  samples E2E/BLOB-PDF/scripts/post-up.sh reads `az functionapp keys list ... systemKeys.blobs_extension`);
- the app's Key Vault references are refreshed once its identity holds Key Vault Secrets User
  ("To force resolution of your app's Key Vault references, make an authenticated POST request to
  .../config/configreferences/appsettings/refresh?api-version=2022-03-01": "Use Key Vault
  references as app settings", learn.microsoft.com/azure/app-service/app-service-key-vault-references).

The offline plan and the tests use `offline_ops()`, which touches nothing.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.archive import CodeArchive, CodeBundle
from infra.waiting import NotYetError, Waiter

ARM = "https://management.azure.com"
PROVIDERS_API = "2021-04-01"  # Providers - Get (Resource Manager REST)
WEB_API = "2024-04-01"  # Web Apps - List Host Keys
REFERENCES_API = "2022-03-01"  # the version the Key Vault references doc names
BLOB_KEY = "blobs_extension"
DB_SETTING = "DB_CONNECTION_STRING"
KEY_PENDING = "pending-until-pulumi-up"  # what a preview shows before the app has its key


class ProvidersNotRegisteredError(RuntimeError):
    """The subscription cannot create this stack's resources yet; the message has the commands."""


class Arm:
    """A minimal Resource Manager client: bearer token from the deployer's credential, JSON in and out."""

    def __init__(self, credential: Any, base: str = ARM, opener: Callable[..., Any] = urllib.request.urlopen):
        self.credential, self.base, self.opener = credential, base, opener

    def call(self, method: str, path: str, api_version: str, body: dict | None = None) -> tuple[int, dict]:
        token = self.credential.get_token(f"{ARM}/.default").token
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(  # noqa: S310 (Resource Manager URL)
            f"{self.base}{path}?api-version={api_version}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with self.opener(request, timeout=60) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _json(error.read())


def _json(raw: bytes) -> dict:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {"raw": raw[:200].decode(errors="replace")}
    return value if isinstance(value, dict) else {"value": value}


def unregistered_providers(arm: Arm, subscription_id: str, namespaces: Sequence[str]) -> list[str]:
    missing = []
    for namespace in namespaces:
        status, body = arm.call(
            "GET", f"/subscriptions/{subscription_id}/providers/{namespace}", PROVIDERS_API
        )
        if status != 200 or body.get("registrationState") != "Registered":
            missing.append(namespace)
    return missing


def check_providers(arm: Arm, subscription_id: str, namespaces: Sequence[str]) -> None:
    """Fail before anything is created when a provider the stack needs is not registered."""
    missing = unregistered_providers(arm, subscription_id, namespaces)
    if missing:
        commands = "\n".join(f"  az provider register --namespace {n} --wait" for n in missing)
        raise ProvidersNotRegisteredError(
            f"subscription {subscription_id} has not registered {', '.join(missing)}, which this stack "
            f"needs (docs/deploy.md, deploy-readiness checklist). Register them once, then run "
            f"`pulumi up` again:\n{commands}"
        )


def blob_extension_key(arm: Arm, waiter: Waiter, site_id: str, wait: bool) -> str:
    """The host's `blobs_extension` system key, waiting for the deployed host to create it."""

    def probe() -> str:
        status, body = arm.call("POST", f"{site_id}/host/default/listkeys", WEB_API)
        key = (body.get("systemKeys") or {}).get(BLOB_KEY) if status == 200 else None
        if key:
            return key
        raise NotYetError(
            f"listkeys answered {status} without {BLOB_KEY}: the host has not indexed score_blob yet"
        )

    if not wait:
        try:
            return probe()
        except NotYetError:
            return KEY_PENDING
    return waiter.until(
        f"{BLOB_KEY} key of {site_id.rsplit('/', 1)[-1]}",
        probe,
        "The code is deployed but the host has not created the key: check the deployment's log "
        "(az functionapp log deployment show -g <rg> -n <app>) and that `score_blob` is listed "
        "(az functionapp function list -g <rg> -n <app>), then run `pulumi up` again; the Event Grid "
        "subscription is created once the key exists.",
    )


def refresh_key_vault_references(arm: Arm, waiter: Waiter, site_id: str, setting: str = DB_SETTING) -> str:
    """Re-resolve the app's Key Vault references until `setting` is Resolved (the grant propagated)."""

    def probe() -> str:
        arm.call("POST", f"{site_id}/config/configreferences/appsettings/refresh", REFERENCES_API)
        status, body = arm.call(
            "GET", f"{site_id}/config/configreferences/appsettings/{setting}", REFERENCES_API
        )
        properties = body.get("properties") or {}
        if properties.get("status") == "Resolved":
            return "Resolved"
        raise NotYetError(
            f"{setting} is {properties.get('status') or status}: {properties.get('details') or body}"
        )

    return waiter.until(
        f"Key Vault reference {setting}",
        probe,
        "The app's identity has Key Vault Secrets User on the secret but the reference does not "
        f"resolve: see its status with `az rest --method get --url {ARM}{site_id}/config/configreferences/"
        f"appsettings?api-version={REFERENCES_API}`, fix what it names, then run `pulumi up` again. "
        "With networkIsolation, note that Flex Consumption documents no Key Vault references to a "
        "network-restricted vault (flex-consumption-plan, considerations; decision 35).",
    )


Uploader = Callable[[str, str, CodeArchive], str]
CodeUploader = Callable[[str, str, CodeBundle], str]  # (blob endpoint, container, bundle) -> folder URL


def offline_code_url(blob_endpoint: str, container: str, bundle: CodeBundle) -> str:
    """What the offline plan and the tests answer for the code upload: the folder URL, nothing sent."""
    from infra.upload import code_url

    return code_url(blob_endpoint, container, bundle)


@dataclass
class CloudOps:
    """The calls the program makes during `pulumi up`; tests and the offline plan swap them."""

    upload: Uploader
    check_providers: Callable[[str, Sequence[str]], None]
    blob_extension_key: Callable[[str, bool], str]  # (site id, wait) -> key
    refresh_references: Callable[[str], str]  # site id -> status
    upload_code: CodeUploader  # the retrain job's code to the workspace storage
    calls: list[tuple] = field(default_factory=list)


def azure_ops() -> CloudOps:
    """The real thing: the deployer's credential (infra/credentials.py) against Resource Manager."""
    from infra.credentials import deployer_credential
    from infra.upload import upload_code_with_identity, upload_with_identity

    state: dict[str, Arm] = {}

    def arm() -> Arm:
        if "arm" not in state:
            state["arm"] = Arm(deployer_credential())
        return state["arm"]

    return CloudOps(
        upload=upload_with_identity,
        check_providers=lambda subscription, namespaces: check_providers(arm(), subscription, namespaces),
        blob_extension_key=lambda site_id, wait: blob_extension_key(
            arm(), Waiter(interval=20), site_id, wait
        ),
        refresh_references=lambda site_id: refresh_key_vault_references(arm(), Waiter(interval=20), site_id),
        upload_code=upload_code_with_identity,
    )


def offline_ops(
    uploader: Uploader, blob_key: str = "mock-blob-key", code_uploader: CodeUploader = offline_code_url
) -> CloudOps:
    """No network: records what the program asked for (the plan and the tests read `calls`)."""
    ops = CloudOps(
        upload=uploader,
        upload_code=code_uploader,
        check_providers=lambda *_: None,
        blob_extension_key=lambda *_: blob_key,
        refresh_references=lambda *_: "Resolved",
    )

    def record(name: str, inner: Callable) -> Callable:
        def call(*args: Any) -> Any:
            ops.calls.append((name, *args))
            return inner(*args)

        return call

    ops.check_providers = record("check_providers", ops.check_providers)
    ops.blob_extension_key = record("blob_extension_key", ops.blob_extension_key)
    ops.refresh_references = record("refresh_references", ops.refresh_references)
    return ops
