"""Every setting of the system: name, type, default, and how each environment gets its value.

The one home of the settings contract. The app parses each setting from here
(`functions.settings`), the Pulumi program writes the ones a stack sets
(`infra/components/functionapp.py`, per-stack values from `Pulumi.<stack>.yaml` through
`stack_key`), the local stack and `functions/local.settings.example.json` are generated from it
(`devstack/local_settings.py`), and `tests/test_settings_contract.py` keeps all of them in step.
Adding a setting is one entry here (or in `monitoring.py`, the monitoring and retraining group)
plus the code that uses it. What a setting is (its kinds, who reads it, how Azure gets it):
`kinds.py`.
"""

from __future__ import annotations

from functions.settings.kinds import AUTO, STACK_NAME, Cloud, Kind, Reader, Setting
from functions.settings.monitoring import MONITORING
from functions.settings.realtime import REALTIME
from functions.settings.retraining import RETRAINING
from lake.contract import DATA_LAKE, SCORING_INPUT_CONTAINER, SCORING_SHARDS_QUEUE
from model import DEFAULT_MODEL_NAME
from model.csvinput.options import DEFAULT_DUPLICATE_IDS, DUPLICATE_POLICIES, MAX_RECORD_BYTES
from model.registry import SERVING_STAGE, STAGES

CATALOG: tuple[Setting, ...] = (
    # -- how the app reaches storage and the database (identity-based in Azure) ------------------
    Setting(
        "AzureWebJobsStorage",
        Kind.CONNECTION,
        "the Functions host's own storage (timers' locks, blob receipts)",
        reader=Reader.HOST,
        cloud=Cloud.RESOURCE,
        local="UseDevelopmentStorage=true",
    ),
    Setting(
        DATA_LAKE,
        Kind.CONNECTION,
        "the data lake account: exports, scoring input and outputs, the model registry",
        cloud=Cloud.RESOURCE,
        local="UseDevelopmentStorage=true",
    ),
    Setting(
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        Kind.TEXT,
        "where the host and the app's structured events go (Application Insights); empty: plain logging only",
        default="",
        cloud=Cloud.RESOURCE,
    ),
    Setting(
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL",
        Kind.BOOL,
        "the Azure Monitor exporter sends no statsbeat (its own usage counts) to Microsoft (decision 40)",
        reader=Reader.HOST,
        cloud=Cloud.VALUE,
        cloud_value="true",
        local="true",
    ),
    Setting(
        "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED",
        Kind.BOOL,
        "the Azure Monitor exporter fetches no remote configuration (decision 40)",
        reader=Reader.HOST,
        cloud=Cloud.VALUE,
        cloud_value="true",
        local="true",
    ),
    Setting(
        "DB_CONNECTION_STRING",
        Kind.TEXT,
        "the ODBC connection string of the source database",
        cloud=Cloud.RESOURCE,  # a Key Vault reference to the `db-connection-string` secret
        local="Driver=SQLite3;Database=../../.local/shop.db;StepAPI=1;",
    ),
    # -- the daily export -------------------------------------------------------------------------
    Setting(
        "EXPORT_TABLES",
        Kind.TEXT,
        "`table`, `schema.table` or a named query, comma-separated; "
        "`name:column` makes it incremental on that watermark column",
        default="clients,campaign_outcomes:contact_date",
        cloud=Cloud.VALUE,
        stack_key="exportTables",
    ),
    Setting(
        "EXPORT_PUBLISH_TABLES",
        Kind.LIST,
        f"tables whose daily export is also copied to `{SCORING_INPUT_CONTAINER}/{{table}}-{{date}}.csv` "
        "for scoring",
        default="",
        cloud=Cloud.VALUE,
        stack_key="exportPublishTables",
        cloud_value="clients",
        local="clients",
    ),
    Setting(
        "EXPORT_SCHEDULE",
        Kind.NCRONTAB,
        "when the export timer fires: NCRONTAB with seconds (UTC)",
        default="0 0 2 * * *",
        cloud=Cloud.VALUE,
        stack_key="exportSchedule",
    ),
    Setting(
        "MODEL_NAME",
        Kind.TEXT,
        "the registered model that scores",
        default=DEFAULT_MODEL_NAME,
        cloud=Cloud.VALUE,
        stack_key="modelName",
    ),
    Setting(
        "MODEL_STAGE",
        Kind.CHOICE,
        "which stage of the registered model scores; re-read for every input",
        default=SERVING_STAGE,
        choices=STAGES,
        cloud=Cloud.VALUE,
        stack_key="modelStage",
        cloud_value=STACK_NAME,
        local="dev",
    ),
    *MONITORING,
    *RETRAINING,
    *REALTIME,
    # -- batch scoring ----------------------------------------------------------------------------
    Setting(
        "SCORING_BLOB_SOURCE",
        Kind.CHOICE,
        "`EventGrid` (Azure; Flex Consumption needs it) or `LogsAndContainerScan` (polling)",
        default="EventGrid",
        choices=("EventGrid", "LogsAndContainerScan"),
        hint="EventGrid in Azure, required on Flex Consumption; LogsAndContainerScan polls, for local use",
        cloud=Cloud.VALUE,
        local="LogsAndContainerScan",  # Event Grid does not reach this machine
    ),
    Setting(
        "SCORING_QUEUE",
        Kind.QUEUE,
        "the queue of the shards of a fanned-out scoring file",
        default=SCORING_SHARDS_QUEUE,
        cloud=Cloud.VALUE,
    ),
    Setting(
        "SCORING_DUPLICATE_IDS",
        Kind.CHOICE,
        "a `client_id` that repeats: `keep` (scored, counted in the manifest), "
        "`reject_rows` (later ones rejected), `reject_file`",
        default=DEFAULT_DUPLICATE_IDS,
        choices=DUPLICATE_POLICIES,
        cloud=Cloud.VALUE,
        stack_key="scoringDuplicateIds",
    ),
    # -- app defaults that no stack changes (set them as app settings to tune one) ---------------
    Setting(
        "EXPORT_QUERIES",
        Kind.JSON,
        'named queries for EXPORT_TABLES, a JSON object {"active_clients": "SELECT ... WHERE ..."}',
        default="",
    ),
    Setting(
        "EXPORT_CHUNK_ROWS",
        Kind.INT,
        "rows fetched per round trip",
        default="10000",
        minimum=100,
        maximum=1_000_000,
    ),
    Setting(
        "EXPORT_FORMULA_GUARD",
        Kind.BOOL,
        "prefix string cells starting with `= + - @` with `'` (spreadsheet formula injection)",
        default="false",
    ),
    Setting(
        "EXPORT_WORKERS",
        Kind.WORKERS,
        "worker processes for big tables (key ranges read in parallel, output identical); `1` = one stream",
        default=AUTO,
        minimum=1,
        maximum=32,
    ),
    Setting(
        "SCORING_CHUNK_ROWS",
        Kind.INT,
        "rows parsed and scored at a time (~120 MB of transient memory per 50,000 bank rows)",
        default="50000",
        minimum=10,
        maximum=1_000_000,
    ),
    Setting("SCORING_MAX_BYTES", Kind.SIZE, "bigger scoring files are refused", default="10GiB"),
    Setting(
        "SCORING_MAX_RECORD_BYTES",
        Kind.SIZE,
        "longer rows are refused",
        default=f"{MAX_RECORD_BYTES // 1024**2}MiB",
    ),
    Setting(
        "SCORING_FANOUT_BYTES",
        Kind.SIZE,
        "bigger files are split into shards, scored in parallel from SCORING_QUEUE",
        default="256MiB",
    ),
    Setting("SCORING_SHARD_BYTES", Kind.SIZE, "the size of a shard, about", default="64MiB"),
    Setting(
        "SCORING_THREADS",
        Kind.WORKERS,
        "ONNX Runtime threads per invocation",
        default=AUTO,
        minimum=1,
        maximum=32,
    ),
    # -- the Functions host, locally --------------------------------------------------------------
    Setting(
        "FUNCTIONS_WORKER_RUNTIME",
        Kind.TEXT,
        "the language worker (on Flex Consumption it comes from the site's runtime, not a setting)",
        reader=Reader.HOST,
        cloud=Cloud.PLATFORM,
        local="python",
    ),
    Setting(
        "AzureWebJobsFeatureFlags",
        Kind.TEXT,
        "host feature flags for `func start` (worker indexing of the v2 programming model)",
        reader=Reader.HOST,
        cloud=Cloud.PLATFORM,
        local="EnableWorkerIndexing",
    ),
)

__all__ = ["AUTO", "BY_NAME", "CATALOG", "STACK_NAME", "Cloud", "Kind", "Reader", "Setting", "setting"]

BY_NAME = {setting.name: setting for setting in CATALOG}


def setting(name: str) -> Setting:
    """The catalog entry of `name` (KeyError names the unknown setting)."""
    return BY_NAME[name]
