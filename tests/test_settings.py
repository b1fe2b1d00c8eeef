"""The settings contract: everything validated at start, errors name the setting."""

from __future__ import annotations

import pytest

from functions.export.spec import InvalidSpec
from functions.settings import SettingsError, load_settings

AZURITE = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/d;"
MINIMAL = {"DataLake": AZURITE, "DB_CONNECTION_STRING": "Driver=SQLite3;Database=/tmp/x.db"}


def test_defaults_follow_the_contract():
    settings = load_settings(MINIMAL)
    assert settings.export.schedule == "0 0 2 * * *"
    assert [(s.name, s.watermark) for s in settings.export.tables] == [
        ("clients", None),
        ("campaign_outcomes", "contact_date"),
    ]
    assert settings.export.chunk_rows == 10_000 and settings.export.formula_guard is False
    assert (settings.model_name, settings.model_stage) == ("bank-marketing", "prod")
    assert not settings.data_lake.identity_based


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DB_CONNECTION_STRING": "x"}, "DataLake"),
        ({"DataLake": AZURITE}, "DB_CONNECTION_STRING"),
        ({**MINIMAL, "DB_CONNECTION_STRING": "   "}, "DB_CONNECTION_STRING"),
        ({**MINIMAL, "DataLake": "not a connection string"}, "DataLake"),
        ({**MINIMAL, "EXPORT_CHUNK_ROWS": "lots"}, "EXPORT_CHUNK_ROWS"),
        ({**MINIMAL, "EXPORT_CHUNK_ROWS": "5"}, "EXPORT_CHUNK_ROWS"),
        ({**MINIMAL, "EXPORT_FORMULA_GUARD": "maybe"}, "EXPORT_FORMULA_GUARD"),
        ({**MINIMAL, "EXPORT_SCHEDULE": "daily at two"}, "EXPORT_SCHEDULE"),
        ({**MINIMAL, "EXPORT_TABLES": " , "}, "EXPORT_TABLES"),
        ({**MINIMAL, "EXPORT_TABLES": "a,a"}, "EXPORT_TABLES"),
        ({**MINIMAL, "EXPORT_QUERIES": "{not json"}, "EXPORT_QUERIES"),
        ({**MINIMAL, "EXPORT_QUERIES": '["SELECT 1"]'}, "EXPORT_QUERIES"),
        ({**MINIMAL, "EXPORT_QUERIES": "null"}, "EXPORT_QUERIES"),
        ({**MINIMAL, "EXPORT_QUERIES": "0"}, "EXPORT_QUERIES"),
        ({**MINIMAL, "EXPORT_QUERIES": "[]"}, "EXPORT_QUERIES"),
        ({**MINIMAL, "EXPORT_QUERIES": '{"q": 1}'}, "EXPORT_QUERIES"),
        ({**MINIMAL, "EXPORT_WORKERS": "automatic"}, "EXPORT_WORKERS"),
        ({**MINIMAL, "SCORING_THREADS": "0"}, "SCORING_THREADS"),
        ({**MINIMAL, "MODEL_STAGE": "staging"}, "MODEL_STAGE"),
        ({**MINIMAL, "EXPORT_PUBLISH_TABLES": "orders"}, "EXPORT_PUBLISH_TABLES"),
        ({**MINIMAL, "DataLake": None, "DataLake__blobServiceUri": "ftp://x"}, "DataLake__blobServiceUri"),
        (
            {
                **MINIMAL,
                "DataLake": None,
                "DataLake__blobServiceUri": "https://a.blob.core.windows.net",
                "DataLake__credential": "secret",
            },
            "DataLake__credential",
        ),
    ],
)
def test_missing_or_malformed_setting_is_named(env, named):
    env = {k: v for k, v in env.items() if v is not None}
    with pytest.raises(SettingsError, match=named):
        load_settings(env)


def test_identity_based_connection_has_no_secret():
    env = {
        **MINIMAL,
        "DataLake__blobServiceUri": "https://lake.blob.core.windows.net",
        "DataLake__clientId": "abc",
    }
    del env["DataLake"]
    lake = load_settings(env).data_lake
    assert lake.identity_based and lake.connection_string is None
    assert lake.queue_service_uri == "https://lake.queue.core.windows.net" and lake.client_id == "abc"


def test_bad_table_entries_do_not_stop_the_app_but_fail_alone():
    settings = load_settings({**MINIMAL, "EXPORT_TABLES": "clients, x;drop table y, sales.orders:updated_at"})
    specs = {s.name: s for s in settings.export.tables}
    assert (
        isinstance(specs["x;drop table y"], InvalidSpec) and "not allowed" in specs["x;drop table y"].reason
    )
    orders = specs["sales.orders"]
    assert (orders.schema, orders.table, orders.watermark) == ("sales", "orders", "updated_at")


def test_named_queries_and_publish_list():
    settings = load_settings(
        {
            **MINIMAL,
            "EXPORT_TABLES": "clients,active",
            "EXPORT_PUBLISH_TABLES": "clients",
            "EXPORT_QUERIES": '{"active": "SELECT * FROM clients WHERE balance > 0"}',
        }
    )
    active = settings.export.tables[1]
    assert active.query == "SELECT * FROM clients WHERE balance > 0" and active.table is None
    assert settings.export.publish_tables == ("clients",)


def test_reading_the_settings_loads_no_scientific_stack():
    """Every process reads the settings, the export's reading children too: pandas and numpy there
    cost ~40 MB and half a second each (the export's memory bound caught it once)."""
    import subprocess
    import sys

    code = "import sys, functions.settings; print(sorted({'pandas', 'numpy', 'scipy'} & set(sys.modules)))"
    completed = subprocess.run(  # noqa: S603 - this interpreter, a fixed snippet
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "[]"
