"""Upload the code archive to the Functions host storage with Entra ID, and sign a read-only URL;
upload the retrain job's code folder (model/, lake/) to the workspace storage the same way.

pulumi-azure-native's `storage.Blob` signs its requests with the account key (its PR 3719), which
a keyless account refuses, so the program uploads the package itself, during `pulumi up` only,
with the deploying identity (infra/credentials.py: az login, or the pipeline's OIDC federation).
Uploads are create-only: the same name must hold the same bytes, so a re-run is a no-op and a
name clash is an error instead of a silent overwrite.

One Deploy fetches `packageUri` itself, and the account has no keys and no public blobs, so the
URL carries a user-delegation SAS: signed with a key Entra ID issues to the deployer, read-only,
on that one blob, for an hour (decision 34; "Create a user delegation SAS",
learn.microsoft.com/rest/api/storageservices/create-user-delegation-sas). It is never stored in
an app setting; the deployment template that carries it is a Pulumi secret.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ContentSettings,
    UserDelegationKey,
    generate_blob_sas,
)

from infra.archive import CodeArchive, CodeBundle
from infra.waiting import ROLE_PROPAGATION_SECONDS, NotYetError, Waiter
from lake.contract import CODE_CONTAINER, PACKAGE_CONTAINER

log = logging.getLogger(__name__)
SAS_LIFETIME = dt.timedelta(hours=1)  # One Deploy reads the package when the deployment starts
CLOCK_SKEW = dt.timedelta(minutes=5)  # start a little in the past, as the SAS docs recommend
NEXT_STEP = (
    f"The deployer's grants on the host storage (Storage Blob Data Contributor on {PACKAGE_CONTAINER}, "
    "Storage Blob Delegator on the account) exist but have not reached the storage service yet: "
    "run `pulumi up` again in a few minutes."
)

CODE_NEXT_STEP = (
    f"The deployer's grant on the workspace storage (Storage Blob Data Contributor on {CODE_CONTAINER}) "
    "exists but has not reached the storage service yet: run `pulumi up` again in a few minutes."
)


class PackageConflictError(RuntimeError):
    """A different archive already has this name (sha256 prefix collision or tampering)."""


def _forbidden(exc: HttpResponseError) -> bool:
    return exc.status_code == 403


def upload_archive(
    container: ContainerClient,
    archive: CodeArchive,
    wait_seconds: float = ROLE_PROPAGATION_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] = log.warning,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Put `archive` in `container` under its content name; return the blob URL (unsigned).

    403 means the deployer's new role assignment has not propagated yet: retried for as long as
    propagation is documented to take, with progress, then WaitTimeoutError naming the next step.
    """
    blob = container.get_blob_client(archive.blob_name)

    def attempt() -> str:
        try:
            _create(blob, archive.path, archive.sha256)
            log.info("uploaded %s (%d bytes)", archive.blob_name, archive.path.stat().st_size)
        except ResourceExistsError:
            existing = (blob.get_blob_properties().metadata or {}).get("sha256")
            if existing != archive.sha256:
                raise PackageConflictError(
                    f"{archive.blob_name} already exists with sha256 {existing}, not {archive.sha256}"
                ) from None
            log.info("%s is already uploaded", archive.blob_name)
        except HttpResponseError as exc:
            if not _forbidden(exc):
                raise
            raise NotYetError(f"403 from {container.url}: role assignment propagating") from None
        return blob.url

    waiter = Waiter(seconds=wait_seconds, interval=10, progress=progress, clock=clock, sleep=sleep)
    return waiter.until(f"upload of {archive.blob_name}", attempt, NEXT_STEP)


def _create(blob, path: Path, sha256: str) -> None:
    with path.open("rb") as data:
        blob.upload_blob(
            data,
            overwrite=False,
            metadata={"sha256": sha256},
            content_settings=ContentSettings(content_type="application/zip"),
        )


def read_only_url(blob_url: str, key: UserDelegationKey, now: dt.datetime) -> str:
    """`blob_url` with a user-delegation SAS: read only, this blob only, valid for SAS_LIFETIME."""
    parsed = urlparse(blob_url)
    account = parsed.hostname.split(".", 1)[0] if parsed.hostname else ""
    container, blob_name = parsed.path.lstrip("/").split("/", 1)
    sas = generate_blob_sas(
        account_name=account,
        container_name=container,
        blob_name=blob_name,
        user_delegation_key=key,
        permission=BlobSasPermissions(read=True),
        start=now - CLOCK_SKEW,
        expiry=now + SAS_LIFETIME,
        protocol="https",
    )
    return f"{blob_url}?{sas}"


def sign_package_url(
    service: BlobServiceClient,
    blob_url: str,
    wait_seconds: float = ROLE_PROPAGATION_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] = log.warning,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Ask Entra ID (through the Blob service) for a delegation key and sign `blob_url` with it."""

    def attempt() -> str:
        start = now()
        try:
            key = service.get_user_delegation_key(start - CLOCK_SKEW, start + SAS_LIFETIME)
        except HttpResponseError as exc:
            if not _forbidden(exc):
                raise
            raise NotYetError("403 on Get User Delegation Key: Storage Blob Delegator propagating") from None
        return read_only_url(blob_url, key, start)

    waiter = Waiter(seconds=wait_seconds, interval=10, progress=progress, clock=clock, sleep=sleep)
    return waiter.until("user-delegation SAS for the code package", attempt, NEXT_STEP)


def upload_with_identity(account_blob_endpoint: str, container_name: str, archive: CodeArchive) -> str:
    """The cloud path: upload with the deployer's identity, return the SAS-signed package URL."""
    from infra.credentials import deployer_credential
    from infra.waiting import _pulumi_log

    credential = deployer_credential()
    container = ContainerClient(account_blob_endpoint, container_name, credential=credential)
    url = upload_archive(container, archive, progress=_pulumi_log)
    return sign_package_url(
        BlobServiceClient(account_blob_endpoint, credential=credential), url, progress=_pulumi_log
    )


def code_url(blob_endpoint: str, container: str, bundle: CodeBundle) -> str:
    """The folder the code asset names (`codeUri`): `<endpoint><container>/<sha16>/`."""
    return f"{blob_endpoint}{container}/{bundle.digest}/"


def upload_folder(
    container: ContainerClient,
    bundle: CodeBundle,
    wait_seconds: float = ROLE_PROPAGATION_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] = log.warning,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Put every file of `bundle` under `<sha16>/` in `container`, create-only; return the folder URL.

    The same rules as `upload_archive`: a blob already there must carry the same sha256 (a re-run
    is a no-op, a clash is PackageConflictError), and 403 is retried while the grant propagates.
    Files already uploaded by an earlier try are kept, so a retry continues where it stopped.
    """
    done: set[str] = set()

    def attempt() -> str:
        for name in bundle.files:
            if name in done:
                continue
            blob_name = f"{bundle.digest}/{name}"
            blob = container.get_blob_client(blob_name)
            data = (bundle.root / name).read_bytes()
            sha256 = hashlib.sha256(data).hexdigest()
            try:
                blob.upload_blob(
                    data,
                    overwrite=False,
                    metadata={"sha256": sha256},
                    content_settings=ContentSettings(content_type="text/x-python"),
                )
            except ResourceExistsError:
                existing = (blob.get_blob_properties().metadata or {}).get("sha256")
                if existing != sha256:
                    raise PackageConflictError(
                        f"{blob_name} already exists with sha256 {existing}, not {sha256}"
                    ) from None
            except HttpResponseError as exc:
                if not _forbidden(exc):
                    raise
                raise NotYetError(f"403 from {container.url}: role assignment propagating") from None
            done.add(name)
        log.info("code %s: %d files in %s", bundle.digest, len(bundle.files), container.url)
        return f"{container.url.rstrip('/')}/{bundle.digest}/"

    waiter = Waiter(seconds=wait_seconds, interval=10, progress=progress, clock=clock, sleep=sleep)
    return waiter.until(f"upload of code {bundle.digest}", attempt, CODE_NEXT_STEP)


def upload_code_with_identity(account_blob_endpoint: str, container_name: str, bundle: CodeBundle) -> str:
    """The cloud path: upload the retrain job's code with the deployer's identity (no SAS: Azure ML
    reads it with its own identity)."""
    from infra.credentials import deployer_credential
    from infra.waiting import _pulumi_log

    container = ContainerClient(account_blob_endpoint, container_name, credential=deployer_credential())
    return upload_folder(container, bundle, progress=_pulumi_log)
