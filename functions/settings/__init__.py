"""The one place that reads the app's environment (app settings in Azure, local.settings.json locally).

Every setting is declared once in `catalog.py` (name, kind, default) and parsed here up front, so a
missing or malformed setting stops the app at start with a message that names it, instead of
failing at 02:00 in the middle of an export.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from functions.export.spec import ExportSettings, ExportSpec, SpecError, parse_export_tables
from functions.settings.catalog import BY_NAME, CATALOG
from functions.settings.values import MIB, SettingsError, default_workers, text, value
from lake.connection import StorageConnection
from lake.contract import DATA_LAKE
from model.drift_config import DriftConfig
from model.monitoring.triggers import RetrainPolicy
from model.realtime.policy import RollbackPolicy
from model.registry import STAGES

__all__ = [
    "CATALOG",
    "MIB",
    "ExportSettings",
    "MonitoringSettings",
    "RealtimeSettings",
    "RetrainingSettings",
    "ScoringSettings",
    "Settings",
    "SettingsError",
    "default_workers",
    "export_defaults",
    "get_settings",
    "load_settings",
    "monitoring_defaults",
    "realtime_defaults",
    "scoring_defaults",
]


@dataclass(frozen=True)
class ScoringSettings:
    """How the blob-triggered batch scoring reads, splits and scores its inputs (no defaults: catalog)."""

    blob_source: str
    chunk_rows: int
    max_bytes: int
    max_record_bytes: int
    fanout_bytes: int
    shard_bytes: int
    queue: str
    threads: int
    duplicate_ids: str  # keep | reject_rows | reject_file (docs/scoring.md)


@dataclass(frozen=True)
class MonitoringSettings:
    """When the monitor runs, the period quality is cut by, the drift thresholds, the retrain rules."""

    schedule: str
    period: str  # day | week | month (model.monitoring.join.PERIODS)
    outcomes_table: str
    lookback_days: int
    drift: DriftConfig
    retrain: RetrainPolicy


@dataclass(frozen=True)
class RetrainingSettings:
    """What happens once a retraining rule fired (functions/retrain/request.py)."""

    schedule: str
    runner: str  # azureml | local | off
    promote_to: tuple[str, ...]
    workspace: str  # the Azure ML workspace's resource id ("" unless RETRAIN_RUNNER=azureml)
    environment: str  # name:version
    instance_type: str
    job_identity: str = ""  # the job's user-assigned identity: resource id ("" names none)
    job_client_id: str = ""  # and its client id (AZURE_CLIENT_ID in the job)
    code_id: str = ""  # the code asset's resource id (the job's `codeId`; "" names none)


@dataclass(frozen=True)
class RealtimeSettings:
    """The HTTP scoring function: request limits, deployment refresh, request log, automatic rollback."""

    max_body_bytes: int
    max_rows: int
    refresh_seconds: float
    log_inputs: bool
    flush_seconds: float
    rollback_schedule: str
    rollback: RollbackPolicy


@dataclass(frozen=True)
class Settings:
    data_lake: StorageConnection
    db_connection_string: str
    app_insights_connection_string: str  # empty: plain logging (functions.telemetry)
    export: ExportSettings
    model_name: str
    model_stage: str
    scoring: ScoringSettings
    monitoring: MonitoringSettings
    retraining: RetrainingSettings
    realtime: RealtimeSettings


def _read(env: Mapping[str, str], name: str) -> Any:
    return value(env, BY_NAME[name])


def _export_tables(env: Mapping[str, str]) -> tuple[ExportSpec, ...]:
    unset = not text(env, BY_NAME["EXPORT_QUERIES"])  # unset or blank: no named queries
    queries = {} if unset else _read(env, "EXPORT_QUERIES")  # any JSON value, checked below
    if not isinstance(queries, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in queries.items()
    ):
        raise SettingsError('setting EXPORT_QUERIES must be a JSON object {"name": "SELECT ..."}')
    try:
        return parse_export_tables(_read(env, "EXPORT_TABLES"), queries)
    except SpecError as exc:
        raise SettingsError(f"setting EXPORT_TABLES: {exc}") from None


def _export(env: Mapping[str, str]) -> ExportSettings:
    tables = _export_tables(env)
    publish = _read(env, "EXPORT_PUBLISH_TABLES")
    unknown = sorted(set(publish) - {spec.name for spec in tables})
    if unknown:
        raise SettingsError(
            f"setting EXPORT_PUBLISH_TABLES names {unknown} which EXPORT_TABLES does not export"
        )
    return ExportSettings(
        tables=tables,
        schedule=_read(env, "EXPORT_SCHEDULE"),
        publish_tables=publish,
        chunk_rows=_read(env, "EXPORT_CHUNK_ROWS"),
        formula_guard=_read(env, "EXPORT_FORMULA_GUARD"),
        workers=_read(env, "EXPORT_WORKERS"),
    )


def _scoring(env: Mapping[str, str]) -> ScoringSettings:
    return ScoringSettings(
        blob_source=_read(env, "SCORING_BLOB_SOURCE"),
        chunk_rows=_read(env, "SCORING_CHUNK_ROWS"),
        max_bytes=_read(env, "SCORING_MAX_BYTES"),
        max_record_bytes=_read(env, "SCORING_MAX_RECORD_BYTES"),
        fanout_bytes=_read(env, "SCORING_FANOUT_BYTES"),
        shard_bytes=_read(env, "SCORING_SHARD_BYTES"),
        queue=_read(env, "SCORING_QUEUE"),
        threads=_read(env, "SCORING_THREADS"),
        duplicate_ids=_read(env, "SCORING_DUPLICATE_IDS"),
    )


def _monitoring(env: Mapping[str, str]) -> MonitoringSettings:
    drift = DriftConfig(
        wasserstein=_read(env, "DRIFT_WASSERSTEIN_THRESHOLD"),
        jensen_shannon=_read(env, "DRIFT_JENSEN_SHANNON_THRESHOLD"),
        small_batch_rows=_read(env, "DRIFT_SMALL_BATCH_ROWS"),
        alpha=_read(env, "DRIFT_ALPHA"),
        drift_share=_read(env, "DRIFT_SHARE"),
        weight_by_importance=_read(env, "DRIFT_WEIGHT_BY_IMPORTANCE"),
    )
    return MonitoringSettings(
        schedule=_read(env, "MONITOR_SCHEDULE"),
        period=_read(env, "MONITOR_PERIOD"),
        outcomes_table=_read(env, "MONITOR_OUTCOMES_TABLE"),
        lookback_days=_read(env, "MONITOR_LOOKBACK_DAYS"),
        drift=drift,
        retrain=RetrainPolicy(
            quality_tolerance=_read(env, "RETRAIN_QUALITY_TOLERANCE"),
            min_outcomes=_read(env, "RETRAIN_MIN_OUTCOMES"),
            gap_periods=_read(env, "RETRAIN_GAP_PERIODS"),
            drift_batches=_read(env, "RETRAIN_DRIFT_BATCHES"),
        ),
    )


def _retraining(env: Mapping[str, str]) -> RetrainingSettings:
    promote_to = _read(env, "RETRAIN_PROMOTE")
    unknown = sorted(set(promote_to) - set(STAGES))
    if unknown:
        raise SettingsError(f"setting RETRAIN_PROMOTE names {unknown}: stages are {', '.join(STAGES)}")
    retraining = RetrainingSettings(
        schedule=_read(env, "RETRAIN_SCHEDULE"),
        runner=_read(env, "RETRAIN_RUNNER"),
        promote_to=tuple(s for s in STAGES if s in promote_to),  # the stage order, whatever the order given
        workspace=_read(env, "RETRAIN_WORKSPACE"),
        environment=_read(env, "RETRAIN_ENVIRONMENT"),
        instance_type=_read(env, "RETRAIN_INSTANCE_TYPE"),
        job_identity=_read(env, "RETRAIN_JOB_IDENTITY"),
        job_client_id=_read(env, "RETRAIN_JOB_CLIENT_ID"),
        code_id=_read(env, "RETRAIN_CODE_ID"),
    )
    if retraining.runner == "azureml" and not retraining.workspace:
        raise SettingsError("setting RETRAIN_WORKSPACE is required when RETRAIN_RUNNER=azureml")
    if ":" not in retraining.environment:
        raise SettingsError(f"setting RETRAIN_ENVIRONMENT={retraining.environment!r} must be name:version")
    return retraining


def _realtime(env: Mapping[str, str]) -> RealtimeSettings:
    return RealtimeSettings(
        max_body_bytes=_read(env, "HTTP_MAX_BODY_BYTES"),
        max_rows=_read(env, "HTTP_MAX_ROWS"),
        refresh_seconds=_read(env, "DEPLOYMENTS_REFRESH_SECONDS"),
        log_inputs=_read(env, "REQUEST_LOG_INPUTS"),
        flush_seconds=_read(env, "REQUEST_LOG_FLUSH_SECONDS"),
        rollback_schedule=_read(env, "ROLLBACK_SCHEDULE"),
        rollback=RollbackPolicy(
            window_minutes=_read(env, "ROLLBACK_WINDOW_MINUTES"),
            min_requests=_read(env, "ROLLBACK_MIN_REQUESTS"),
            min_success=_read(env, "ROLLBACK_MIN_SUCCESS"),
            max_p99_ms=_read(env, "ROLLBACK_MAX_P99_MS"),
            max_prediction_drift=_read(env, "ROLLBACK_MAX_PREDICTION_DRIFT"),
            failed_checks=_read(env, "ROLLBACK_FAILED_CHECKS"),
        ),
    )


def realtime_defaults(**changes: Any) -> RealtimeSettings:
    """The real-time settings with every catalog default."""
    return replace(_realtime({}), **changes)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Parse and validate every setting the app reads; raise SettingsError naming the first bad one."""
    env = os.environ if env is None else env
    export = _export(env)
    monitoring = _monitoring(env)
    return Settings(
        data_lake=_read(env, DATA_LAKE),
        db_connection_string=_read(env, "DB_CONNECTION_STRING"),
        app_insights_connection_string=_read(env, "APPLICATIONINSIGHTS_CONNECTION_STRING"),
        export=export,
        model_name=_read(env, "MODEL_NAME"),
        model_stage=_read(env, "MODEL_STAGE"),
        scoring=_scoring(env),
        monitoring=monitoring,
        retraining=_retraining(env),
        realtime=_realtime(env),
    )


def export_defaults(**changes: Any) -> ExportSettings:
    """The export settings with every catalog default (tests and benchmarks change a few)."""
    return replace(_export({}), **changes)


def monitoring_defaults() -> MonitoringSettings:
    """The monitoring settings with every catalog default."""
    return _monitoring({})


def scoring_defaults(**changes: Any) -> ScoringSettings:
    """The scoring settings with every catalog default."""
    return replace(_scoring({}), **changes)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once (call `get_settings.cache_clear()` after changing env)."""
    return load_settings()
