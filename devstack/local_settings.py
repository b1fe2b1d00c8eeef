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
from functions.settings.catalog import CATALOG, STACK_NAME, Cloud, Kind, Setting
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
        {k: v for k, v in environ.items() if k in merged or k.startswith(("EXPORT_", "SCORING_", DATA_LAKE))}
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
SETTINGS_DOC = REPO_ROOT / "docs" / "settings.md"
_IN_AZURE = {
    Cloud.RESOURCE: "from the stack's resources",
    Cloud.DEFAULT: "the default",
    Cloud.PLATFORM: "not an app setting (the site's runtime)",
}


def _kind(setting: Setting) -> str:
    if setting.choices:
        return " \\| ".join(f"`{choice}`" for choice in setting.choices)
    if setting.minimum is not None:
        auto = "`auto` or " if setting.kind is Kind.WORKERS else ""
        highest = "" if setting.maximum is None else f"{setting.maximum:,}"
        return f"{auto}{setting.minimum:g}..{highest}"
    return setting.kind.value


def _in_azure(setting: Setting) -> str:
    if setting.cloud is not Cloud.VALUE:
        return _IN_AZURE[setting.cloud]
    value = setting.cloud_value if setting.cloud_value is not None else setting.default
    shown = "the stack's name" if value == STACK_NAME else f"`{value}`"
    return f"config `{setting.stack_key}`, else {shown}" if setting.stack_key else shown


def settings_document() -> str:
    """`docs/settings.md`: every setting of the catalog, as a table (generated; a test checks it)."""
    lines = [
        "# Settings",
        "",
        "Generated from `functions/settings/catalog.py` by `python -m devstack.local_settings`; do not",
        "edit by hand. The app reads the `app` settings at start and stops, naming the setting, when one",
        "is missing or malformed; the Functions host reads the `host` ones. In Azure each stack writes",
        "its values from `Pulumi.<stack>.yaml` (the config keys below, [deploy.md](deploy.md)); locally,",
        "`python -m devstack` uses the local column, and anything set in the environment wins. `auto`",
        "means one per core, at most 4.",
        "",
        "| setting | read by | type | meaning | default | in Azure | locally |",
        "|---|---|---|---|---|---|---|",
    ]
    for setting in CATALOG:
        shown_default = {None: "", "": "none"}.get(setting.default, f"`{setting.default}`")
        default = "required" if setting.required else shown_default
        local = setting.local_value()
        shown_local = {"AzureWebJobsStorage": "Azurite", DATA_LAKE: "Azurite"}.get(setting.name) or (
            "`.local/shop.db` (SQLite)"
            if setting.name == "DB_CONNECTION_STRING"
            else (f"`{local}`" if local else "")
        )
        cells = [
            f"`{setting.name}`",
            setting.reader.value,
            _kind(setting),
            setting.meaning.replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join([*cells, default, _in_azure(setting), shown_local]) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m devstack.local_settings: regenerate the two generated files
    EXAMPLE.write_text(example_document())
    SETTINGS_DOC.write_text(settings_document())
    print(f"wrote {EXAMPLE.relative_to(REPO_ROOT)} and {SETTINGS_DOC.relative_to(REPO_ROOT)}")
