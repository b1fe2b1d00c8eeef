"""How to reach a storage account, parsed from Functions-style settings (identity or connection string).

Mirrors the Functions host's rules for a connection named, say, `DataLake`: either the setting
`DataLake` holds a connection string (Azurite, locally), or `DataLake__blobServiceUri` /
`DataLake__queueServiceUri` (optionally `DataLake__credential=managedidentity` and
`DataLake__clientId`) name the endpoints and the app's managed identity signs in (Azure).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The `{name}__{key}` settings of an identity-based storage connection ("Configure an
# identity-based connection", learn.microsoft.com/azure/azure-functions/functions-reference);
# the app reads all but tableServiceUri, which only the host's own storage needs.
IDENTITY_KEYS = (
    "blobServiceUri",
    "queueServiceUri",
    "tableServiceUri",
    "serviceUri",
    "accountName",
    "credential",
    "clientId",
)


class ConnectionSettingError(ValueError):
    """A connection's settings are missing or malformed; the message names the setting."""


@dataclass(frozen=True)
class StorageConnection:
    """A storage account: a connection string, or service URIs reached with an identity."""

    name: str
    connection_string: str | None = None
    blob_service_uri: str | None = None
    queue_service_uri: str | None = None
    client_id: str | None = None

    @property
    def identity_based(self) -> bool:
        return self.connection_string is None


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value and value.strip() else None


def storage_connection(env: Mapping[str, str], name: str) -> StorageConnection:
    """Resolve a Functions-style connection prefix into a StorageConnection."""
    connection_string = _get(env, name)
    if connection_string is not None:
        if "=" not in connection_string:
            raise ConnectionSettingError(
                f"setting {name} is not a storage connection string (expected key=value;...)"
            )
        return StorageConnection(name, connection_string=connection_string)
    blob_uri = _get(env, f"{name}__blobServiceUri") or _get(env, f"{name}__serviceUri")
    if blob_uri is None:
        account = _get(env, f"{name}__accountName")
        blob_uri = f"https://{account}.blob.core.windows.net" if account else None
    if blob_uri is None:
        raise ConnectionSettingError(
            f"setting {name} is missing: set {name}__blobServiceUri (identity-based, in Azure) "
            f"or {name} to a connection string (Azurite, locally)"
        )
    if not blob_uri.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ConnectionSettingError(f"setting {name}__blobServiceUri={blob_uri!r} must be an https:// URI")
    queue_uri = _get(env, f"{name}__queueServiceUri") or blob_uri.replace(".blob.", ".queue.")
    credential = (_get(env, f"{name}__credential") or "managedidentity").lower()
    if credential != "managedidentity":
        raise ConnectionSettingError(
            f"setting {name}__credential={credential!r}: only 'managedidentity' is supported"
        )
    return StorageConnection(
        name, blob_service_uri=blob_uri, queue_service_uri=queue_uri, client_id=_get(env, f"{name}__clientId")
    )
