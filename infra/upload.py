"""Upload the code archive to the Functions host storage with Entra ID, never with account keys.

pulumi-azure-native's `storage.Blob` signs its requests with the account key (its PR 3719), which
a keyless account refuses, so the program uploads the package itself, during `pulumi up` only,
with the deploying identity (Azure CLI login or the pipeline's OIDC federation). Uploads are
create-only: the same name must hold the same bytes, so a re-run is a no-op and a name clash is
an error instead of a silent overwrite.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob import ContainerClient, ContentSettings

from infra.archive import CodeArchive

log = logging.getLogger(__name__)
ROLE_PROPAGATION_SECONDS = 300  # a new role assignment can take minutes to reach the storage service


class PackageConflictError(RuntimeError):
    """A different archive already has this name (sha256 prefix collision or tampering)."""


def upload_archive(
    container: ContainerClient,
    archive: CodeArchive,
    wait_seconds: float = ROLE_PROPAGATION_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Put `archive` in `container` under its content name; return the blob URL."""
    blob = container.get_blob_client(archive.blob_name)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            _create(blob, archive.path, archive.sha256)
            log.info("uploaded %s (%d bytes)", archive.blob_name, archive.path.stat().st_size)
            return blob.url
        except ResourceExistsError:
            existing = (blob.get_blob_properties().metadata or {}).get("sha256")
            if existing != archive.sha256:
                raise PackageConflictError(
                    f"{archive.blob_name} already exists with sha256 {existing}, not {archive.sha256}"
                ) from None
            log.info("%s is already uploaded", archive.blob_name)
            return blob.url
        except HttpResponseError as exc:
            if exc.status_code != 403 or time.monotonic() >= deadline:
                raise
            log.warning("no write access to %s yet (role assignment propagating); retrying", container.url)
            sleep(10)


def _create(blob, path: Path, sha256: str) -> None:
    with path.open("rb") as data:
        blob.upload_blob(
            data,
            overwrite=False,
            metadata={"sha256": sha256},
            content_settings=ContentSettings(content_type="application/zip"),
        )


def upload_with_identity(account_blob_endpoint: str, container_name: str, archive: CodeArchive) -> str:
    """The cloud path: DefaultAzureCredential (az login, workload identity, managed identity)."""
    from azure.identity import DefaultAzureCredential

    container = ContainerClient(account_blob_endpoint, container_name, credential=DefaultAzureCredential())
    return upload_archive(container, archive)
