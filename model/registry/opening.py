"""Open a registry by location: the data lake's `models` container, or a local folder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from model.registry.registry import Registry
from model.registry.stores import BlobStore, FolderStore


def open_registry(location: str, *, ensure: bool = False, env: Mapping[str, str] | None = None) -> Registry:
    """`blob`: the `models` container of the DataLake connection (identity in Azure, Azurite locally).

    Anything else is a local folder, for offline work and experiments.
    """
    if location == "blob":
        from lake.clients import blob_service
        from lake.connection import storage_connection
        from lake.contract import DATA_LAKE, MODELS_CONTAINER

        connection = storage_connection(os.environ if env is None else env, DATA_LAKE)
        container = blob_service(connection).get_container_client(MODELS_CONTAINER)
        return Registry(BlobStore(container, ensure=ensure))
    return Registry(FolderStore(Path(location)))
