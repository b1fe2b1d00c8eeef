"""The one place that reads the environment (app settings in Azure, local.settings.json locally).

Everything is parsed and validated up front, so a missing or malformed setting stops the app at
start with a message that names it, instead of failing at 02:00 in the middle of an export.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from functions.export.spec import ExportSpec, SpecError, parse_export_tables
from lake.connection import ConnectionSettingError, StorageConnection, storage_connection
from lake.contract import DATA_LAKE, SCORING_SHARDS_QUEUE
from model.csvinput.options import DEFAULT_DUPLICATE_IDS, DUPLICATE_POLICIES


def default_workers() -> int:
    """Worker processes for big exports: one per core, at most 4 (the database has limits too)."""
    return max(1, min(os.cpu_count() or 1, 4))


DEFAULT_EXPORT_SCHEDULE = "0 0 2 * * *"  # NCRONTAB with seconds: daily at 02:00 UTC
DEFAULT_EXPORT_TABLES = "clients,campaign_outcomes:contact_date"
DEFAULT_CHUNK_ROWS = 10_000
BLOB_SOURCES = ("EventGrid", "LogsAndContainerScan")
MIB = 1024 * 1024
_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class ScoringSettings:
    """How the blob-triggered batch scoring reads, splits and scores its inputs."""

    blob_source: str = "EventGrid"
    chunk_rows: int = 50_000  # ~120 MB of transient memory per chunk of bank rows: 400 MB peak holds
    max_bytes: int = 10 * 1024 * MIB
    max_record_bytes: int = MIB
    fanout_bytes: int = 256 * MIB
    shard_bytes: int = 64 * MIB
    queue: str = SCORING_SHARDS_QUEUE
    threads: int = 2
    duplicate_ids: str = DEFAULT_DUPLICATE_IDS  # keep | reject_rows | reject_file (docs/scoring.md)


@dataclass(frozen=True)
class Settings:
    data_lake: StorageConnection
    db_connection_string: str
    export_tables: tuple[ExportSpec, ...]
    export_schedule: str
    export_publish_tables: tuple[str, ...]
    export_chunk_rows: int
    export_formula_guard: bool
    export_workers: int
    model_name: str
    model_stage: str
    scoring: ScoringSettings = ScoringSettings()


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value and value.strip() else None


def _require(env: Mapping[str, str], name: str, meaning: str) -> str:
    value = _get(env, name)
    if value is None:
        raise SettingsError(f"setting {name} is missing: {meaning}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"setting {name}={raw!r} is not a whole number") from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"setting {name}={value} is outside {minimum}..{maximum}")
    return value


_SIZE = re.compile(r"^(\d+)\s*(|k|kb|kib|m|mb|mib|g|gb|gib)$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}


def _size(env: Mapping[str, str], name: str, default: int) -> int:
    """A byte size: `1048576`, `512KiB`, `64MB`, `10GiB` (binary units: 1 MB = 1 MiB = 1,048,576 bytes)."""
    raw = _get(env, name)
    if raw is None:
        return default
    match = _SIZE.fullmatch(raw)
    if match is None or int(match.group(1)) < 1:
        raise SettingsError(f"setting {name}={raw!r} is not a size such as 1048576, 512KiB, 64MB or 10GiB")
    return int(match.group(1)) * _UNITS[match.group(2)[:1].lower()]


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"setting {name}={raw!r} is not a boolean (use true or false)")


def _export_tables(env: Mapping[str, str]) -> tuple[ExportSpec, ...]:
    raw_queries = _get(env, "EXPORT_QUERIES")
    queries: dict[str, str] = {}
    if raw_queries is not None:
        try:
            queries = json.loads(raw_queries)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"setting EXPORT_QUERIES is not valid JSON: {exc}") from None
        if not isinstance(queries, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in queries.items()
        ):
            raise SettingsError('setting EXPORT_QUERIES must be a JSON object {"name": "SELECT ..."}')
    try:
        return parse_export_tables(_get(env, "EXPORT_TABLES") or DEFAULT_EXPORT_TABLES, queries)
    except SpecError as exc:
        raise SettingsError(f"setting EXPORT_TABLES: {exc}") from None


def _scoring(env: Mapping[str, str]) -> ScoringSettings:
    source = _get(env, "SCORING_BLOB_SOURCE") or "EventGrid"
    if source not in BLOB_SOURCES:
        raise SettingsError(
            f"setting SCORING_BLOB_SOURCE={source!r} is not one of {BLOB_SOURCES} "
            "(EventGrid in Azure, required on Flex Consumption; LogsAndContainerScan polls, for local use)"
        )
    queue = _get(env, "SCORING_QUEUE") or SCORING_SHARDS_QUEUE
    if not _QUEUE_NAME.fullmatch(queue):
        raise SettingsError(
            f"setting SCORING_QUEUE={queue!r} is not a storage queue name "
            "(3-63 lowercase letters, digits and single hyphens)"
        )
    duplicates = _get(env, "SCORING_DUPLICATE_IDS") or ScoringSettings.duplicate_ids
    if duplicates not in DUPLICATE_POLICIES:
        raise SettingsError(
            f"setting SCORING_DUPLICATE_IDS={duplicates!r} is not one of {', '.join(DUPLICATE_POLICIES)}"
        )
    return ScoringSettings(
        blob_source=source,
        chunk_rows=_int(env, "SCORING_CHUNK_ROWS", ScoringSettings.chunk_rows, 10, 1_000_000),
        max_bytes=_size(env, "SCORING_MAX_BYTES", 10 * 1024 * MIB),
        max_record_bytes=_size(env, "SCORING_MAX_RECORD_BYTES", MIB),
        fanout_bytes=_size(env, "SCORING_FANOUT_BYTES", 256 * MIB),
        shard_bytes=_size(env, "SCORING_SHARD_BYTES", 64 * MIB),
        queue=queue,
        threads=_int(env, "SCORING_THREADS", default_workers(), 1, 32),
        duplicate_ids=duplicates,
    )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Parse and validate every setting; raise SettingsError naming the first bad one."""
    env = os.environ if env is None else env
    tables = _export_tables(env)
    publish = tuple(n.strip() for n in (_get(env, "EXPORT_PUBLISH_TABLES") or "").split(",") if n.strip())
    unknown = sorted(set(publish) - {spec.name for spec in tables})
    if unknown:
        raise SettingsError(
            f"setting EXPORT_PUBLISH_TABLES names {unknown} which EXPORT_TABLES does not export"
        )
    schedule = _get(env, "EXPORT_SCHEDULE") or DEFAULT_EXPORT_SCHEDULE
    if len(schedule.split()) != 6 and schedule.count(":") != 2:
        raise SettingsError(
            f"setting EXPORT_SCHEDULE={schedule!r} is not an NCRONTAB expression with 6 fields "
            "(second minute hour day month day-of-week), e.g. '0 0 2 * * *'"
        )
    return Settings(
        data_lake=_data_lake(env),
        db_connection_string=_require(
            env, "DB_CONNECTION_STRING", "the ODBC connection string of the source database"
        ),
        export_tables=tables,
        export_schedule=schedule,
        export_publish_tables=publish,
        export_chunk_rows=_int(env, "EXPORT_CHUNK_ROWS", DEFAULT_CHUNK_ROWS, 100, 1_000_000),
        export_formula_guard=_bool(env, "EXPORT_FORMULA_GUARD", False),
        export_workers=_int(env, "EXPORT_WORKERS", default_workers(), 1, 32),
        model_name=_get(env, "MODEL_NAME") or "bank-marketing",
        model_stage=_stage(env),
        scoring=_scoring(env),
    )


def _data_lake(env: Mapping[str, str]) -> StorageConnection:
    try:
        return storage_connection(env, DATA_LAKE)
    except ConnectionSettingError as error:
        raise SettingsError(str(error)) from None


def _stage(env: Mapping[str, str]) -> str:
    stage = _get(env, "MODEL_STAGE") or "prod"
    if stage not in ("dev", "preprod", "prod"):
        raise SettingsError(f"setting MODEL_STAGE={stage!r} is not one of dev, preprod, prod")
    return stage


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once (call `get_settings.cache_clear()` after changing env)."""
    return load_settings()
