"""Issue 11: what `pulumi up` does against Azure besides declaring resources (infra/cloud.py,
infra/upload.py, infra/credentials.py), against simulated Azure answers and delays."""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pulumi
import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientAssertionCredential, DefaultAzureCredential
from azure.storage.blob import UserDelegationKey

from infra import cloud, config, credentials, providers
from infra.package import REPO_ROOT
from infra.program import build
from infra.synth import (
    SECRET_PLACEHOLDER,
    SUBSCRIPTION,
    code_archive,
    mock_stack,
    synthesize,
)
from infra.upload import SAS_LIFETIME, read_only_url, sign_package_url
from infra.waiting import Waiter, WaitTimeoutError
from tests.infra_support import STACKS, stack
from tests.support import loopback_server

SITE = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Web/sites/func-x"


class FakeArm:
    """Answers Resource Manager calls from a script: (method, path suffix) -> list of answers."""

    def __init__(self, script: dict[tuple[str, str], list[tuple[int, dict]]]) -> None:
        self.script, self.calls = script, []

    def call(self, method: str, path: str, api_version: str, body: dict | None = None) -> tuple[int, dict]:
        self.calls.append((method, path, api_version))
        for (verb, suffix), answers in self.script.items():
            if verb == method and path.endswith(suffix):
                return answers.pop(0) if len(answers) > 1 else answers[0]
        raise AssertionError(f"unexpected {method} {path}")


def _waiter() -> tuple[Waiter, list[float], list[str]]:
    naps: list[float] = []
    said: list[str] = []
    return Waiter(interval=20, progress=said.append, clock=lambda: sum(naps), sleep=naps.append), naps, said


# --- 3. Resource providers --------------------------------------------------------------------
@pytest.mark.parametrize("name", STACKS)
def test_the_plan_lists_the_providers_each_stack_needs(name: str) -> None:
    """Flex VNet integration needs Microsoft.App registered ("Flex Consumption plan hosting,
    considerations": "Ensure that the Microsoft.App Azure resource provider is enabled")."""
    synthesis = stack(name)
    declared = providers.namespaces_for(r.type for r in synthesis.resources)
    assert synthesis.outputs["resourceProviders"] == ", ".join(declared)
    assert declared == providers.required_namespaces(name == "prod")  # what `up` checks is what it needs
    assert ("Microsoft.App" in declared) is (name == "prod")
    assert {"Microsoft.Web", "Microsoft.Storage", "Microsoft.EventGrid"} <= set(declared)


def test_up_checks_the_providers_before_it_creates_anything() -> None:
    arm = FakeArm(
        {
            ("GET", "/providers/Microsoft.App"): [(200, {"registrationState": "NotRegistered"})],
            ("GET", ""): [(200, {"registrationState": "Registered"})],
        }
    )
    with pytest.raises(cloud.ProvidersNotRegisteredError) as raised:
        cloud.check_providers(arm, SUBSCRIPTION, providers.required_namespaces(True))
    assert "az provider register --namespace Microsoft.App --wait" in str(raised.value)
    assert "Microsoft.Web" not in str(raised.value).split("needs")[0]
    cloud.check_providers(
        FakeArm({("GET", ""): [(200, {"registrationState": "Registered"})]}), SUBSCRIPTION, ["X"]
    )

    def refuse(subscription: str, namespaces: list[str]) -> None:
        raise cloud.ProvidersNotRegisteredError("Microsoft.App")

    ops = cloud.offline_ops(lambda *a: "url")
    ops.check_providers = refuse

    mocks = mock_stack("prod")
    with pytest.raises(Exception, match=r"Microsoft\.App"):
        pulumi.runtime.test(lambda: pulumi.Output.all(**build(config.load(), code_archive(), ops=ops)))()
    assert not [r for r in mocks.resources if r.type.startswith("azure-native:")]  # nothing was created


# --- 4. The blobs_extension key ---------------------------------------------------------------
def test_the_subscription_waits_for_the_key_with_progress() -> None:
    """Microsoft's Flex blob sample creates the subscription only after deployment, reading
    systemKeys.blobs_extension (E2E/BLOB-PDF/scripts/post-up.sh)."""
    arm = FakeArm(
        {
            ("POST", "/host/default/listkeys"): [
                (404, {}),  # the host has not started yet
                (200, {"systemKeys": {}}),  # started, trigger not indexed yet
                (200, {"systemKeys": {}}),
                (200, {"systemKeys": {"blobs_extension": "k3y"}}),
            ]
        }
    )
    waiter, naps, said = _waiter()
    assert cloud.blob_extension_key(arm, waiter, SITE, wait=True) == "k3y"
    assert naps == [20, 20, 20] and len(said) == 4  # three "not yet" lines and one "done"
    assert "404" in said[0] and "done after 60 s" in said[-1]


def test_a_key_that_never_comes_ends_with_the_next_step() -> None:
    arm = FakeArm({("POST", "/host/default/listkeys"): [(200, {"systemKeys": {}})]})
    waiter, naps, _ = _waiter()
    with pytest.raises(WaitTimeoutError, match="az functionapp function list") as raised:
        cloud.blob_extension_key(arm, waiter, SITE, wait=True)
    assert "run `pulumi up` again" in str(raised.value)
    assert 600 <= sum(naps) <= 660  # as long as role propagation is documented to take


def test_a_preview_looks_once_and_never_waits() -> None:
    waiter, naps, _ = _waiter()
    arm = FakeArm({("POST", "/host/default/listkeys"): [(404, {})]})
    assert cloud.blob_extension_key(arm, waiter, SITE, wait=False) == cloud.KEY_PENDING
    assert naps == [] and len(arm.calls) == 1


# --- 5. Key Vault references after the grant --------------------------------------------------
def test_key_vault_references_are_refreshed_until_resolved() -> None:
    """POST .../config/configreferences/appsettings/refresh?api-version=2022-03-01 ("Use Key Vault
    references as app settings", rotation); the status reads Resolved once the grant arrived."""
    denied = (200, {"properties": {"status": "AccessToKeyVaultDenied", "details": "403 from vault"}})
    arm = FakeArm(
        {
            ("POST", "/config/configreferences/appsettings/refresh"): [(200, {})],
            ("GET", "/config/configreferences/appsettings/DB_CONNECTION_STRING"): [
                denied,
                denied,
                (200, {"properties": {"status": "Resolved"}}),
            ],
        }
    )
    waiter, naps, said = _waiter()
    assert cloud.refresh_key_vault_references(arm, waiter, SITE) == "Resolved"
    refreshes = [c for c in arm.calls if c[0] == "POST"]
    assert len(refreshes) == 3 and all(c[2] == "2022-03-01" for c in refreshes)
    assert naps == [20, 20] and "AccessToKeyVaultDenied" in said[0]


def test_an_unresolved_reference_ends_with_how_to_see_why() -> None:
    arm = FakeArm(
        {
            ("POST", "/refresh"): [(200, {})],
            ("GET", "/DB_CONNECTION_STRING"): [(200, {"properties": {"status": "SecretNotFound"}})],
        }
    )
    waiter, naps, _ = _waiter()
    with pytest.raises(WaitTimeoutError, match="configreferences/appsettings") as raised:
        cloud.refresh_key_vault_references(arm, waiter, SITE)
    assert "SecretNotFound" in str(raised.value) and sum(naps) >= 600


def test_up_refreshes_the_references_after_every_role_assignment() -> None:
    synthesis = stack("dev")
    assert synthesis.outputs["keyVaultReferences"] == "Resolved"  # what offline_ops answers


# --- 2. A short-lived, read-only user-delegation SAS on the package ---------------------------
def _key(now: dt.datetime) -> UserDelegationKey:
    key = UserDelegationKey()
    key.signed_oid, key.signed_tid = "00000000-0000-4000-8000-00000000cccc", "tenant"
    key.signed_start, key.signed_expiry = "2026-01-01T00:00:00Z", "2026-01-01T02:00:00Z"
    key.signed_service, key.signed_version = "b", "2025-01-05"
    key.value = base64.b64encode(b"k" * 32).decode()
    return key


def test_the_package_url_carries_a_read_only_user_delegation_sas() -> None:
    """A user delegation SAS is signed with a key Entra ID issues ("Create a user delegation SAS",
    learn.microsoft.com/rest/api/storageservices/create-user-delegation-sas): skoid names the
    signer, sp=r read only, sr=b this blob only, spr=https, one hour."""
    now = dt.datetime(2026, 1, 1, 0, 30, tzinfo=dt.UTC)
    url = read_only_url("https://st.blob.core.windows.net/app-package/functionapp-1.zip", _key(now), now)
    query = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
    assert url.startswith("https://st.blob.core.windows.net/app-package/functionapp-1.zip?")
    assert (query["sp"], query["sr"], query["spr"]) == ("r", "b", "https")
    assert query["skoid"] == "00000000-0000-4000-8000-00000000cccc" and "sig" in query
    expiry = dt.datetime.fromisoformat(query["se"].replace("Z", "+00:00"))
    assert expiry - now == SAS_LIFETIME == dt.timedelta(hours=1)


class _Service:
    def __init__(self, failures: int) -> None:
        self.failures = failures

    def get_user_delegation_key(self, start: dt.datetime, expiry: dt.datetime) -> UserDelegationKey:
        if self.failures:
            self.failures -= 1
            error = HttpResponseError(message="AuthorizationPermissionMismatch")
            error.status_code = 403
            raise error
        return _key(start)


def test_signing_waits_for_the_delegator_grant() -> None:
    naps: list[float] = []
    said: list[str] = []
    url = sign_package_url(
        _Service(failures=3),  # type: ignore[arg-type]
        "https://st.blob.core.windows.net/app-package/p.zip",
        sleep=naps.append,
        progress=said.append,
        clock=lambda: sum(naps),
    )
    assert "sig=" in url and naps == [10, 10, 10] and "Blob Delegator" in said[0]


# --- 8. Credentials that work in CI with OIDC -------------------------------------------------
@pytest.fixture
def oidc_runner() -> Iterator[tuple[str, list[dict]]]:
    """A stand-in for GitHub's token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL) on loopback."""
    seen: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, "auth": self.headers.get("Authorization")})
            body = json.dumps({"value": f"github-jwt-{len(seen)}"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with loopback_server(Handler) as base:
        yield f"{base}/token?api-version=2.0", seen


def test_github_oidc_becomes_a_client_assertion_with_fresh_tokens(oidc_runner) -> None:
    """The Pulumi provider logs in from ARM_USE_OIDC/ARM_CLIENT_ID/ARM_TENANT_ID and GitHub's
    request token; azure-identity's ClientAssertionCredential takes a callable that returns the
    federated token, audience api://AzureADTokenExchange (GitHub Docs, "Configuring OpenID Connect
    in Azure")."""
    url, seen = oidc_runner
    env = {
        "ARM_USE_OIDC": "true",
        "ARM_CLIENT_ID": "11111111-1111-4111-8111-111111111111",
        "ARM_TENANT_ID": "22222222-2222-4222-8222-222222222222",
        "ACTIONS_ID_TOKEN_REQUEST_URL": url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runner-secret",
    }
    assert isinstance(credentials.deployer_credential(env), ClientAssertionCredential)
    assertion = credentials.oidc_assertion(env)
    assert assertion is not None
    assert (assertion(), assertion()) == ("github-jwt-1", "github-jwt-2")  # a fresh token each time
    assert seen[0]["auth"] == "Bearer runner-secret"
    assert (
        "audience=api%3A%2F%2FAzureADTokenExchange" in seen[0]["path"]
        and "api-version=2.0" in seen[0]["path"]
    )


def test_arm_oidc_token_and_missing_pieces() -> None:
    env = {"ARM_USE_OIDC": "true", "ARM_CLIENT_ID": "c", "ARM_TENANT_ID": "t", "ARM_OIDC_TOKEN": "jwt"}
    assert isinstance(credentials.deployer_credential(env), ClientAssertionCredential)
    assert credentials.oidc_assertion(env)() == "jwt"  # type: ignore[misc]
    with pytest.raises(credentials.CredentialConfigError, match="ARM_TENANT_ID"):
        credentials.deployer_credential({"ARM_USE_OIDC": "true", "ARM_CLIENT_ID": "c"})
    assert isinstance(credentials.deployer_credential({}), DefaultAzureCredential)  # az login


def test_the_upload_uses_the_deployer_credential() -> None:
    """DefaultAzureCredential alone reads neither ARM_* nor GitHub's token (issue 11)."""
    import inspect

    from infra import upload

    source = inspect.getsource(upload.upload_with_identity)
    assert "deployer_credential()" in source and "DefaultAzureCredential" not in source


def test_synthesis_never_calls_azure() -> None:
    result = synthesize("preprod")
    assert result.outputs["keyVaultReferences"] == "Resolved"


def test_pulumi_entry_point_runs_the_program(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `pulumi preview` executes (Pulumi.yaml `main: infra/`), under the mocks: no upload,
    no provider check, no key wait (the Azure calls of infra/cloud.py run during `up` only)."""
    import runpy

    from infra import cloud

    def no_upload(*_: object) -> str:
        raise AssertionError("a preview must not upload")

    ops = cloud.offline_ops(no_upload)
    monkeypatch.setattr(cloud, "azure_ops", lambda: ops)
    mocks = mock_stack("preprod", preview=True)
    pulumi.runtime.test(lambda: runpy.run_path(str(REPO_ROOT / "infra"), run_name="__main__"))()
    apps = [r for r in mocks.resources if r.type == "azure-native:web:WebApp"]
    assert [a.azure_name for a in apps] == [stack("preprod").outputs["functionAppName"]]
    secrets = [r for r in mocks.resources if r.type == "azure-native:keyvault:Secret"]
    assert secrets[0].inputs["properties"]["value"] == SECRET_PLACEHOLDER
    assert [call[0] for call in ops.calls] == ["blob_extension_key"]  # one look, no wait
    assert ops.calls[0][2] is False
