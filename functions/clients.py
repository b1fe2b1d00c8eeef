"""The one place that builds clients for storage (the source database: functions/export/drivers.py).

Identity-based in Azure (managed identity, no keys), connection strings only for Azurite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the SDKs load on first use: export worker processes only need ODBC
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    from functions.settings import StorageConnection

# The SDK's own retry policy handles single storage requests (5xx, timeouts): exponential, 5 tries.
_STORAGE_RETRY = {"retry_total": 5, "retry_backoff_factor": 0.8, "retry_backoff_max": 30}
_STORAGE_TIMEOUTS = {"connection_timeout": 20, "read_timeout": 120}


def _credential(connection: StorageConnection):  # type: ignore[no-untyped-def]
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if connection.client_id:
        return ManagedIdentityCredential(client_id=connection.client_id)
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def blob_service(connection: StorageConnection) -> BlobServiceClient:
    from azure.storage.blob import BlobServiceClient

    if connection.connection_string:
        return BlobServiceClient.from_connection_string(
            connection.connection_string, **_STORAGE_RETRY, **_STORAGE_TIMEOUTS
        )
    assert connection.blob_service_uri is not None
    return BlobServiceClient(
        connection.blob_service_uri, credential=_credential(connection), **_STORAGE_RETRY, **_STORAGE_TIMEOUTS
    )


def queue_service(connection: StorageConnection) -> QueueServiceClient:
    from azure.storage.queue import QueueServiceClient

    if connection.connection_string:
        return QueueServiceClient.from_connection_string(connection.connection_string, **_STORAGE_RETRY)
    assert connection.queue_service_uri is not None
    return QueueServiceClient(
        connection.queue_service_uri, credential=_credential(connection), **_STORAGE_RETRY
    )
