"""Every setting of the system: name, type, default, and how each environment gets its value.

The one home of the settings contract. The app parses each setting from here
(`functions.settings`), the Pulumi program writes the ones a stack sets
(`infra/components/functionapp.py`, per-stack values from `Pulumi.<stack>.yaml` through
`stack_key`), the local stack and `functions/local.settings.example.json` are generated from it
(`devstack/local_settings.py`), and `tests/test_settings_contract.py` keeps all of them in step.
Adding a setting is one entry here plus the code that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lake.contract import DATA_LAKE, SCORING_INPUT_CONTAINER, SCORING_SHARDS_QUEUE
from model import DEFAULT_MODEL_NAME
from model.csvinput.options import DEFAULT_DUPLICATE_IDS, DUPLICATE_POLICIES, MAX_RECORD_BYTES
from model.drift_config import DEFAULT_CONFIG as DRIFT_DEFAULTS
from model.monitoring.periods import PERIODS
from model.registry import SERVING_STAGE, STAGES


class Kind(StrEnum):
    """How a setting's text is read (functions/settings/values.py parses each kind)."""

    TEXT = "text"
    LIST = "list"  # comma-separated names; empty means none
    JSON = "json"
    INT = "int"
    NUMBER = "number"  # a decimal number: 0.1, 5e-2
    WORKERS = "workers"  # a whole number, or `auto`: one per core, at most 4
    SIZE = "size"  # bytes: 1048576, 512KiB, 64MB, 10GiB
    BOOL = "bool"
    CHOICE = "choice"
    NCRONTAB = "ncrontab"  # six fields, seconds first, or a TimeSpan hh:mm:ss
    QUEUE = "queue"  # a storage queue name
    CONNECTION = "connection"  # a Functions connection prefix: a connection string or `{name}__*` URIs


class Reader(StrEnum):
    APP = "app"  # parsed by functions.settings at start
    HOST = "host"  # read by the Functions host itself (connections, telemetry, the worker)


class Cloud(StrEnum):
    """How the Pulumi program provides a setting in Azure."""

    DEFAULT = "default"  # not written: the app's default applies in every stack
    VALUE = "value"  # written: the stack's config (`stack_key`) if set, else `cloud_value`, else the default
    RESOURCE = "resource"  # written from the stack's resources (endpoints, Key Vault reference, telemetry)
    PLATFORM = "platform"  # never an app setting in Azure (Flex Consumption sets it from the site config)


STACK_NAME = "{stack}"  # a cloud value that stands for the stack's own name (dev, preprod, prod)
AUTO = "auto"


@dataclass(frozen=True)
class Setting:
    name: str
    kind: Kind
    meaning: str
    default: str | None = None  # as an app setting's text; None: required, or not read by the app
    minimum: float | None = None  # inclusive bounds of INT, WORKERS and NUMBER
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    reader: Reader = Reader.APP
    cloud: Cloud = Cloud.DEFAULT
    stack_key: str | None = None  # the Pulumi config key that sets it per stack
    cloud_value: str | None = None  # what stacks write when their config is silent (else the default)
    local: str | None = None  # the local stack's value when it differs from the default
    hint: str | None = None  # added to the error when a value is refused

    @property
    def required(self) -> bool:
        return self.reader is Reader.APP and self.default is None

    def local_value(self) -> str | None:
        return self.local if self.local is not None else self.default


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
    # -- monitoring -------------------------------------------------------------------------------
    Setting(
        "MONITOR_SCHEDULE",
        Kind.NCRONTAB,
        "when the monitor timer joins outcomes with predictions and redraws the dashboard (UTC); "
        "after the export and its scoring",
        default="0 30 3 * * *",
        cloud=Cloud.VALUE,
        stack_key="monitorSchedule",
    ),
    Setting(
        "MONITOR_PERIOD",
        Kind.CHOICE,
        "the period realised quality is computed per: `week` (ISO weeks), `day` or `month`",
        default="week",
        choices=PERIODS,
        cloud=Cloud.VALUE,
        stack_key="monitorPeriod",
    ),
    Setting(
        "MONITOR_OUTCOMES_TABLE",
        Kind.TEXT,
        "the exported table of call outcomes (`client_id`, `contact_date`, `subscribed`) joined with "
        "the predictions (normally one that EXPORT_TABLES exports; the monitor says when none is found)",
        default="campaign_outcomes",
        cloud=Cloud.VALUE,
        stack_key="monitorOutcomesTable",
    ),
    Setting(
        "MONITOR_LOOKBACK_DAYS",
        Kind.INT,
        "how far back each run recomputes quality (whole periods; older periods keep their last "
        "record): longer than the outcomes' usual delay",
        default="42",
        minimum=1,
        maximum=400,
    ),
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
    Setting(
        "DRIFT_WASSERSTEIN_THRESHOLD",
        Kind.NUMBER,
        "normalised Wasserstein distance from which a numeric feature drifted (batches over "
        "DRIFT_SMALL_BATCH_ROWS)",
        default=str(DRIFT_DEFAULTS.wasserstein),
        minimum=0.001,
        maximum=10,
    ),
    Setting(
        "DRIFT_JENSEN_SHANNON_THRESHOLD",
        Kind.NUMBER,
        "Jensen-Shannon distance (base 2) from which a categorical feature drifted",
        default=str(DRIFT_DEFAULTS.jensen_shannon),
        minimum=0.001,
        maximum=1,
    ),
    Setting(
        "DRIFT_SMALL_BATCH_ROWS",
        Kind.INT,
        "batches of at most this many rows are judged by KS and chi-squared tests with "
        "false-discovery-rate control instead of distances",
        default=str(DRIFT_DEFAULTS.small_batch_rows),
        minimum=0,
        maximum=10_000,
    ),
    Setting(
        "DRIFT_ALPHA",
        Kind.NUMBER,
        "the false discovery rate of the small-batch tests",
        default=str(DRIFT_DEFAULTS.alpha),
        minimum=0.0001,
        maximum=0.5,
    ),
    Setting(
        "DRIFT_SHARE",
        Kind.NUMBER,
        "share of drifted features (weighted by importance) from which the dataset drifted",
        default=str(DRIFT_DEFAULTS.drift_share),
        minimum=0.01,
        maximum=1,
    ),
    Setting(
        "DRIFT_WEIGHT_BY_IMPORTANCE",
        Kind.BOOL,
        "weigh the drift share by the model's permutation importance (reference.json)",
        default=str(DRIFT_DEFAULTS.weight_by_importance).lower(),
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

BY_NAME = {setting.name: setting for setting in CATALOG}


def setting(name: str) -> Setting:
    """The catalog entry of `name` (KeyError names the unknown setting)."""
    return BY_NAME[name]
