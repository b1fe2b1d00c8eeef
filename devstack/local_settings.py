"""App settings for running the function app on this machine, without any Azure account.

Order of precedence: the process environment, then these embedded defaults. The defaults point
at the demo Azurite on 127.0.0.1:10000/10001 and the SQLite demo database in `.local/`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from devstack import azurite
from devstack.demo_data import sqlite_connection_string
from functions.settings import ScoringSettings

if TYPE_CHECKING:
    from devstack.triggers import TriggerHost

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = REPO_ROOT / ".local"
DEMO_DB = LOCAL_DIR / "shop.db"


def defaults(
    blob_port: int = azurite.LOCAL_BLOB_PORT, queue_port: int = azurite.LOCAL_QUEUE_PORT
) -> dict[str, str]:
    storage = azurite.connection_string(blob_port, queue_port)
    return {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": storage,
        "DataLake": storage,
        "DB_CONNECTION_STRING": sqlite_connection_string(DEMO_DB),
        "EXPORT_TABLES": "clients,campaign_outcomes:contact_date",
        "EXPORT_PUBLISH_TABLES": "clients",
        "EXPORT_SCHEDULE": "0 0 2 * * *",
        "MODEL_NAME": "bank-marketing",
        "MODEL_STAGE": "dev",
        "SCORING_BLOB_SOURCE": "LogsAndContainerScan",  # Event Grid does not reach this machine
        "SCORING_QUEUE": "scoring-shards",
        "SCORING_DUPLICATE_IDS": ScoringSettings.duplicate_ids,
    }


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

    connection = (settings or resolve())["DataLake"]
    return TriggerHost(
        BlobServiceClient.from_connection_string(connection),
        QueueServiceClient.from_connection_string(connection),
    )
