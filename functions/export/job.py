"""The daily export job as the timer function and the operator CLI run it: settings in, report out."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import pyodbc
from azure.core.exceptions import ServiceRequestError
from azure.storage.blob import BlobServiceClient, ContainerClient

from functions.blob_io import copy_blob, ensure_container
from functions.export import drivers
from functions.export.engine import Exporter, ExportTuning, ProgressCallback, RunReport, TableResult
from functions.export.spec import ExportSpec
from functions.retry import PermanentError, RetryPolicy, call_with_retry, is_transient
from functions.settings import Settings
from functions.telemetry.emit import emit
from functions.telemetry.events import EXPORT_TABLE
from lake import clients
from lake.contract import CSV_CONTENT_TYPE, EXPORTS_CONTAINER, SCORING_INPUT_CONTAINER
from lake.paths import published_name

log = logging.getLogger(__name__)


class UnknownTableError(ValueError):
    """The operator asked for a table that the settings do not export."""


class SourceUnavailableError(RuntimeError):
    """The data lake or the database cannot be reached (or refused us): nothing was exported."""


# How long the start of a run keeps trying an unreachable data lake or database before it gives
# up the whole run: the first failure is logged at once, in one line; the run ends within about
# 20 s (3 tries, 5 s connect timeout each) instead of every table retrying for minutes.
PREFLIGHT_TRIES = 3
PREFLIGHT_PAUSE_S = 2.0
PREFLIGHT_CONNECT_TIMEOUT_S = 5


def _short(error: BaseException) -> str:
    """The gist of a driver or HTTP error: `Connection refused`, not 80 lines of traceback."""
    text = str(error.args[1]) if isinstance(error, pyodbc.Error) and len(error.args) > 1 else str(error)
    text = re.sub(r"^(\[[^\]]*\]\s*)+", "", text.strip())  # the driver manager's [SQLSTATE][driver] tags
    text = text.split("\n", 1)[0].strip()
    return text.rsplit("Failed to establish a new connection: ", 1)[-1][:300]


def _preflight(what: str, probe: Callable[[], None], sleep: Callable[[float], None]) -> None:
    for attempt in range(1, PREFLIGHT_TRIES + 1):
        try:
            probe()
            return
        except PermanentError as error:
            raise SourceUnavailableError(f"{what}: {error}") from None
        except (ServiceRequestError, pyodbc.Error) as error:
            reason = _short(error)
            if not is_transient(error):  # e.g. a login refused: trying again cannot help
                raise SourceUnavailableError(f"{what}: {reason}") from None
            if attempt == PREFLIGHT_TRIES:
                raise SourceUnavailableError(f"{what} unreachable after {attempt} tries: {reason}") from None
            if attempt == 1:
                log.warning("%s unreachable (%s); trying %d more time(s)", what, reason, PREFLIGHT_TRIES - 1)
            sleep(PREFLIGHT_PAUSE_S * attempt)


def check_sources(
    settings: Settings, service: BlobServiceClient, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Reach the data lake and the database once, quickly, before any table is exported.

    Raise SourceUnavailableError with one line that says which one and why. An HTTP answer of
    any kind (even 403) means the lake is reachable: only a request that got no answer counts.
    """
    exports = service.get_container_client(EXPORTS_CONTAINER)

    def lake() -> None:
        exports.exists(retry_total=0, connection_timeout=PREFLIGHT_CONNECT_TIMEOUT_S)

    def database() -> None:
        drivers.connect(settings.db_connection_string, timeout_s=PREFLIGHT_CONNECT_TIMEOUT_S).close()

    _preflight(f"data lake {service.url}", lake, sleep)
    _preflight("database", database, sleep)


def select_specs(settings: Settings, only: Sequence[str] | None) -> tuple[ExportSpec, ...]:
    if not only:
        return settings.export.tables
    known = {spec.name: spec for spec in settings.export.tables}
    missing = [name for name in only if name not in known]
    if missing:
        raise UnknownTableError(f"not configured in EXPORT_TABLES: {missing}; configured: {sorted(known)}")
    return tuple(known[name] for name in only)


def publish_for_scoring(service: BlobServiceClient, csv_path: str, sha256: str, target_name: str) -> bool:
    """Copy an export into scoring-input (streamed, atomic); skip when the same bytes are there already.

    Skipping matters: a re-run that re-published the same file would fire the blob trigger again.
    """
    target = service.get_blob_client(SCORING_INPUT_CONTAINER, target_name)
    if target.exists() and (target.get_blob_properties().metadata or {}).get("sha256") == sha256:
        log.info("%s/%s is already published with the same content", SCORING_INPUT_CONTAINER, target_name)
        return False
    source = service.get_blob_client(EXPORTS_CONTAINER, csv_path)
    metadata = {"sha256": sha256, "source": f"{EXPORTS_CONTAINER}/{csv_path}"}
    copy_blob(source, target, CSV_CONTENT_TYPE, metadata, expect_sha256=sha256)
    log.info("published %s/%s -> %s/%s", EXPORTS_CONTAINER, csv_path, SCORING_INPUT_CONTAINER, target_name)
    return True


def run_export(
    settings: Settings,
    export_date: dt.date,
    only: Sequence[str] | None = None,
    on_progress: ProgressCallback | None = None,
    tuning: ExportTuning | None = None,
) -> RunReport:
    """Export the configured tables (or `only` those) for `export_date`; publish where configured."""
    specs = select_specs(settings, only)
    service = clients.blob_service(settings.data_lake)
    check_sources(settings, service)
    exports: ContainerClient = service.get_container_client(EXPORTS_CONTAINER)
    if not settings.data_lake.identity_based:
        # Locally (Azurite) we create what Pulumi provisions in Azure; the cloud identity may not.
        for name in (EXPORTS_CONTAINER, SCORING_INPUT_CONTAINER):
            ensure_container(service.get_container_client(name))
    tuning = tuning or ExportTuning()
    exporter = Exporter(settings.db_connection_string, exports, settings.export, on_progress, tuning=tuning)
    report = exporter.export_all(specs, export_date)
    results = [
        _published(service, result, export_date, tuning.retry)
        if result.ok and result.name in settings.export.publish_tables
        else result
        for result in report.results
    ]
    for result in results:
        emit(
            log,
            EXPORT_TABLE,
            "export %s %s: %d rows, %d bytes in %.1fs",
            result.name,
            "ok" if result.ok else "failed",
            result.rows,
            result.bytes,
            result.seconds,
            level=logging.INFO if result.ok else logging.ERROR,
            table=result.name,
            status="ok" if result.ok else "failed",
            rows=result.rows,
            bytes=result.bytes,
            seconds=round(result.seconds, 3),
            error=result.error,
        )
    return RunReport(report.export_date, tuple(results))


def _published(
    service: BlobServiceClient, result: TableResult, export_date: dt.date, retry: RetryPolicy
) -> TableResult:
    """Publish one export for scoring, retried like an export; a failure fails that table's result."""
    assert result.csv_path is not None and result.sha256 is not None
    target = published_name(result.name, export_date)
    try:
        call_with_retry(
            lambda _attempt: publish_for_scoring(service, result.csv_path, result.sha256, target),
            retry,
            f"publish {result.name}",
        )
    except Exception as error:  # noqa: BLE001 - recorded on the table; the run reports failure
        where = f"{SCORING_INPUT_CONTAINER}/{target}"
        message = f"exported, but publishing to {where} failed: {type(error).__name__}: {error}"
        log.error("export %s: %s", result.name, message)
        return replace(result, ok=False, error=message)
    return result
