"""App settings for running the function app on this machine, without any Azure account.

Order of precedence: the process environment, then these embedded defaults. The defaults point
at the demo Azurite on 127.0.0.1:10000/10001 and the SQLite demo database in `.local/`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from devstack import azurite
from devstack.demo_data import sqlite_connection_string
from functions.settings.catalog import CATALOG
from lake.contract import DATA_LAKE

if TYPE_CHECKING:
    from devstack.triggers import TriggerHost

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = REPO_ROOT / ".local"
DEMO_DB = LOCAL_DIR / "shop.db"


def catalog_values() -> dict[str, str]:
    """Every setting's local value from the settings catalog (its local override, else its default)."""
    return {setting.name: value for setting in CATALOG if (value := setting.local_value()) is not None}


def defaults(
    blob_port: int = azurite.LOCAL_BLOB_PORT, queue_port: int = azurite.LOCAL_QUEUE_PORT
) -> dict[str, str]:
    """The catalog's local values, with storage and the database pointing at this machine."""
    storage = azurite.connection_string(blob_port, queue_port)
    return catalog_values() | {
        "AzureWebJobsStorage": storage,
        DATA_LAKE: storage,
        "DB_CONNECTION_STRING": sqlite_connection_string(DEMO_DB),
    }


def example_document() -> str:
    """`functions/local.settings.example.json` as the catalog makes it (for `func start`; tested)."""
    return json.dumps({"IsEncrypted": False, "Values": catalog_values()}, indent=2) + "\n"


def resolve(environ: Mapping[str, str] | None = None, **ports: int) -> dict[str, str]:
    """Defaults overlaid with whatever the environment already sets."""
    environ = os.environ if environ is None else environ
    merged = defaults(**ports)
    merged.update(
        {k: v for k, v in environ.items() if k in merged or k.startswith(("EXPORT_", "SCORING_", "DataLake"))}
    )
    return merged


def apply(**ports: int) -> dict[str, str]:
    """Put the resolved settings into this process's environment (before importing the app)."""
    settings = resolve(**ports)
    os.environ.update(settings)
    return settings


def trigger_host(settings: Mapping[str, str] | None = None) -> TriggerHost:
    """A TriggerHost on the local Azurite (the DataLake and host storage are the same account)."""
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    from devstack.triggers import TriggerHost

    connection = (settings or resolve())[DATA_LAKE]
    return TriggerHost(
        BlobServiceClient.from_connection_string(connection),
        QueueServiceClient.from_connection_string(connection),
    )


EXAMPLE = REPO_ROOT / "functions" / "local.settings.example.json"

if __name__ == "__main__":  # python -m devstack.local_settings: regenerate the example file
    EXAMPLE.write_text(example_document())
    print(f"wrote {EXAMPLE.relative_to(REPO_ROOT)}")
