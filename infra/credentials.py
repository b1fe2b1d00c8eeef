"""The deploying identity as an azure-identity credential: the same one the Pulumi provider uses.

`pulumi up` authenticates the azure-native provider from `ARM_*` variables (ARM_CLIENT_ID,
ARM_TENANT_ID, ARM_USE_OIDC with ARM_OIDC_TOKEN or ARM_OIDC_REQUEST_URL/_TOKEN, ARM_CLIENT_SECRET,
ARM_USE_MSI; Pulumi's "Azure Native: Installation & Configuration" and its ESC azure-login page),
or from `az login`. azure-identity's DefaultAzureCredential reads none of the ARM_* variables and
not GitHub's OIDC request token, so the code upload and the other calls the program makes during
`up` (infra/cloud.py) use the credential chosen here:

- ARM_USE_OIDC / an OIDC token: ClientAssertionCredential with a fresh GitHub token on every
  exchange (GitHub's ID tokens are short-lived: "Configuring OpenID Connect in Azure", GitHub Docs;
  the token request is ACTIONS_ID_TOKEN_REQUEST_URL&audience=api://AzureADTokenExchange with
  ACTIONS_ID_TOKEN_REQUEST_TOKEN as bearer);
- ARM_CLIENT_SECRET: ClientSecretCredential; ARM_USE_MSI: ManagedIdentityCredential;
- otherwise DefaultAzureCredential (AZURE_* variables, workload identity, az login).
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from azure.core.credentials import TokenCredential

AUDIENCE = "api://AzureADTokenExchange"  # what Entra ID expects of a federated token
TIMEOUT = 30


class CredentialConfigError(RuntimeError):
    """The environment asks for OIDC but lacks what the exchange needs."""


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes"}


def github_token_fetcher(request_url: str, request_token: str) -> Callable[[], str]:
    """A function that asks the CI runner for a new ID token each time Entra ID needs one."""

    def fetch() -> str:
        separator = "&" if urllib.parse.urlparse(request_url).query else "?"
        url = f"{request_url}{separator}audience={urllib.parse.quote(AUDIENCE, safe='')}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {request_token}"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 (the runner's URL)
            value = json.load(response).get("value")
        if not value:
            raise CredentialConfigError("the OIDC token request answered without a token ('value')")
        return value

    return fetch


def oidc_assertion(environ: Mapping[str, str]) -> Callable[[], str] | None:
    """Where the federated token comes from, in the provider's order; None when there is none."""
    if token := environ.get("ARM_OIDC_TOKEN"):
        return lambda: token
    if path := environ.get("ARM_OIDC_TOKEN_FILE_PATH"):
        return lambda: Path(path).read_text(encoding="utf-8").strip()
    url = environ.get("ARM_OIDC_REQUEST_URL") or environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    bearer = environ.get("ARM_OIDC_REQUEST_TOKEN") or environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if url and bearer:
        return github_token_fetcher(url, bearer)
    return None


def deployer_credential(environ: Mapping[str, str] | None = None) -> TokenCredential:
    """The credential of whoever runs `pulumi up` here (see the module docstring for the order)."""
    from azure.identity import (
        ClientAssertionCredential,
        ClientSecretCredential,
        DefaultAzureCredential,
        ManagedIdentityCredential,
    )

    env = os.environ if environ is None else environ
    client_id, tenant_id = env.get("ARM_CLIENT_ID"), env.get("ARM_TENANT_ID")
    assertion = oidc_assertion(env)
    if _true(env.get("ARM_USE_OIDC")) or (assertion and client_id):
        if not (client_id and tenant_id and assertion):
            raise CredentialConfigError(
                "ARM_USE_OIDC is set but the OIDC exchange needs ARM_CLIENT_ID, ARM_TENANT_ID and a token: "
                "ARM_OIDC_TOKEN, or the runner's ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN "
                "(GitHub: permissions: id-token: write)"
            )
        return ClientAssertionCredential(tenant_id, client_id, assertion)
    if (secret := env.get("ARM_CLIENT_SECRET")) and client_id and tenant_id:
        return ClientSecretCredential(tenant_id, client_id, secret)
    if _true(env.get("ARM_USE_MSI")):
        return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
    return DefaultAzureCredential()
