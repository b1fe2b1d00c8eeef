"""The one place that builds clients for storage (the source database: functions/export/drivers.py).

Identity-based in Azure (managed identity, no keys), connection strings only for Azurite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the SDKs load on first use: export worker processes only need ODBC
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    from lake.connection import StorageConnection

# The SDK's own retry policy handles single storage requests (5xx, timeouts): 4 retries about 3, 5,
# 9 and 17 s apart (+-1 s jitter). The storage SDK ignores azure-core's `retry_backoff_*` keywords
# (its ExponentialRetry defaults then wait 15, 18, 24, 42 s: over 3 minutes before the caller's
# own retry sees the error, measured by the fault suite), so the policy is built explicitly.
_STORAGE_TIMEOUTS = {"connection_timeout": 20, "read_timeout": 120}


def _storage_retry(policy: type) -> dict[str, object]:
    """Blob and queue clients each take their own SDK's ExponentialRetry class."""
    return {"retry_policy": policy(initial_backoff=1, increment_base=2, retry_total=4, random_jitter_range=1)}


def _credential(connection: StorageConnection):  # type: ignore[no-untyped-def]
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if connection.client_id:
        return ManagedIdentityCredential(client_id=connection.client_id)
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def blob_service(connection: StorageConnection) -> BlobServiceClient:
    from azure.storage.blob import BlobServiceClient, ExponentialRetry

    if connection.connection_string:
        return BlobServiceClient.from_connection_string(
            connection.connection_string, **_storage_retry(ExponentialRetry), **_STORAGE_TIMEOUTS
        )
    assert connection.blob_service_uri is not None
    return BlobServiceClient(
        connection.blob_service_uri,
        credential=_credential(connection),
        **_storage_retry(ExponentialRetry),
        **_STORAGE_TIMEOUTS,
    )


def queue_service(connection: StorageConnection) -> QueueServiceClient:
    from azure.storage.queue import ExponentialRetry, QueueServiceClient

    if connection.connection_string:
        return QueueServiceClient.from_connection_string(
            connection.connection_string, **_storage_retry(ExponentialRetry)
        )
    assert connection.queue_service_uri is not None
    return QueueServiceClient(
        connection.queue_service_uri, credential=_credential(connection), **_storage_retry(ExponentialRetry)
    )
