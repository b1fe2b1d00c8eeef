"""Export tables to `exports/{table}/{YYYY-MM-DD}/{table}.csv` + `_manifest.json`, atomically.

Order of visible effects for one table, which is what makes failures harmless:
1. stream rows -> CSV -> staged blocks (invisible);
2. delete the day's old manifest, if a re-run replaces it (the pair is now "incomplete");
3. commit the block list (the CSV appears whole, in one step);
4. write the manifest (the pair is complete).
A failure before 3 leaves the previous state untouched; a failure between 3 and 4 removes the new
CSV again, so no CSV without a manifest is left behind by a handled error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from azure.storage.blob import ContainerClient

from functions.blob_io import DEFAULT_BLOCK_BYTES, StagedBlobWriter, delete_if_exists, read_text
from functions.export import drivers, isolated, parallel, source
from functions.export import manifest as mf
from functions.export.csv_format import encode_header
from functions.export.parallel import merge_highest
from functions.export.spec import ExportSettings, ExportSpec, InvalidSpec
from functions.retry import PermanentError, RetryPolicy, call_with_retry, is_transient
from lake import paths as lake_paths
from lake.contract import CSV_CONTENT_TYPE

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int], None]  # (export name, rows written so far)


@dataclass(frozen=True)
class ExportTuning:
    """The engine's internals, not app settings (no setting sets them): tests shrink them."""

    block_bytes: int = DEFAULT_BLOCK_BYTES
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    parallel_min_rows: int = 200_000  # smaller exports are not worth starting worker processes
    range_rows: int = 25_000  # rows per key range handed to a worker (~3.5 MB of CSV for bank-like rows)


@dataclass(frozen=True)
class TableResult:
    name: str
    ok: bool
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    attempts: int = 0
    csv_path: str | None = None
    sha256: str | None = None
    error: str | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class RunReport:
    export_date: dt.date
    results: tuple[TableResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> tuple[TableResult, ...]:
        return tuple(r for r in self.results if not r.ok)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Exporter:
    """Exports specs from one database into one `exports` container."""

    def __init__(
        self,
        connection_string: str,
        container: ContainerClient,
        settings: ExportSettings,
        on_progress: ProgressCallback | None = None,
        sleep: Callable[[float], None] = time.sleep,
        tuning: ExportTuning | None = None,
    ) -> None:
        self._connection_string = connection_string
        self._container = container
        self._settings = settings
        self._tuning = tuning or ExportTuning()
        self._on_progress = on_progress
        self._sleep = sleep

    def export_all(self, specs: Iterable[ExportSpec], export_date: dt.date) -> RunReport:
        """Export every spec; one table's failure does not stop the others."""
        return RunReport(export_date, tuple(self.export(spec, export_date) for spec in specs))

    def export(self, spec: ExportSpec, export_date: dt.date) -> TableResult:
        started = time.perf_counter()
        attempts = 0

        def attempt(number: int) -> TableResult:
            nonlocal attempts
            attempts = number
            return self._export_once(spec, export_date, started, number)

        try:
            return call_with_retry(attempt, self._tuning.retry, f"export {spec.name}", self._sleep)
        except Exception as error:  # noqa: BLE001 - recorded per table; the run reports failure
            kind = "transient, gave up" if is_transient(error) else "permanent"
            message = f"{type(error).__name__}: {error}"
            log.error("export %s failed (%s) after %d attempt(s): %s", spec.name, kind, attempts, message)
            return TableResult(
                spec.name, ok=False, seconds=time.perf_counter() - started, attempts=attempts, error=message
            )

    # -- one attempt ---------------------------------------------------------------------------

    def _previous_watermark(self, spec: ExportSpec, export_date: dt.date) -> mf.Watermark | None:
        """The watermark of the newest complete export strictly before `export_date`.

        Strictly before, so that re-running a day repeats that day's export instead of finding
        nothing new.
        """
        earlier = [
            blob.name
            for blob in self._container.list_blobs(name_starts_with=f"{spec.name}/")
            if (parts := blob.name.split("/"))[-1] == "_manifest.json"
            and len(parts) == 3
            and parts[1] < export_date.isoformat()
        ]
        if not earlier:
            return None
        text = read_text(self._container, max(earlier, key=lambda name: name.split("/")[1]))
        return mf.Manifest.from_json(text).watermark if text else None

    def _export_once(
        self, spec: ExportSpec, export_date: dt.date, started: float, attempt: int
    ) -> TableResult:
        if isinstance(spec, InvalidSpec):
            raise PermanentError(spec.reason)
        started_at = _utc_now()
        previous = self._previous_watermark(spec, export_date) if spec.watermark else None
        after = previous.parameter() if previous else None
        csv_path = lake_paths.export_csv_path(spec.name, export_date)
        manifest_path = lake_paths.export_manifest_path(spec.name, export_date)

        writer = StagedBlobWriter(self._container.get_blob_client(csv_path), self._tuning.block_bytes)
        try:
            columns, driver, chunks = self._open_rows(spec, after)
            # Closed explicitly: on a failure the connection (or the worker pool) must not outlive
            # this attempt while the retry waits.
            with contextlib.closing(chunks):
                writer.write(encode_header([c.name for c in columns]))
                rows, highest = 0, None
                for chunk in chunks:
                    writer.write(chunk.data)
                    rows += chunk.rows
                    highest = merge_highest(highest, chunk.highest)
                    if self._on_progress:
                        self._on_progress(spec.name, rows)
            writer.stage_rest()
        except BaseException:
            writer.abort()
            raise

        watermark = None
        if spec.watermark:
            kind, value = mf.Watermark.encode(highest) if highest is not None else ("none", None)
            if value is None and previous is not None:  # nothing new: keep the previous high mark
                kind, value = previous.type, previous.value
            watermark = mf.Watermark(spec.watermark, kind, value, previous.value if previous else None)

        manifest = mf.Manifest(
            table=spec.name,
            source=spec.source_label,
            export_date=export_date.isoformat(),
            blob=csv_path,
            rows=rows,
            bytes=writer.bytes_written,
            sha256=writer.sha256,
            columns=columns,
            started_at=started_at.isoformat(),
            finished_at="",
            source_driver=driver,
            watermark=watermark,
        )
        delete_if_exists(self._container, manifest_path)  # from here on the day's pair is incomplete
        try:
            writer.commit(CSV_CONTENT_TYPE, {"sha256": writer.sha256, "rows": str(rows)})
            finished = replace(manifest, finished_at=_utc_now().isoformat())
            self._container.upload_blob(manifest_path, finished.to_json().encode(), overwrite=True)
        except BaseException:
            delete_if_exists(self._container, csv_path)  # never leave a CSV that has no manifest
            raise
        seconds = time.perf_counter() - started
        log.info(
            "export %s: %d rows, %.1f MB in %.1fs -> %s",
            spec.name,
            rows,
            writer.bytes_written / 1e6,
            seconds,
            csv_path,
        )
        return TableResult(
            spec.name, True, rows, writer.bytes_written, seconds, attempt, csv_path, writer.sha256
        )

    def _open_rows(
        self, spec: ExportSpec, after: Any
    ) -> tuple[list[mf.Column], str, Generator[parallel.EncodedChunk, None, None] | isolated.ChildRows]:
        """Columns, source description, and the encoded rows: one stream, or key ranges in parallel."""
        settings, tuning = self._settings, self._tuning
        connection = drivers.connect(self._connection_string)
        try:
            plan = source.plan_query(connection, self._connection_string, spec, after)
            driver = drivers.describe(connection)
            columns = list(plan.read.columns)
            index = source.column_index(columns, spec.watermark) if spec.watermark else None
            ranges = None
            if settings.workers > 1:
                ranges = source.key_ranges(
                    connection, spec, plan, after, tuning.range_rows, tuning.parallel_min_rows
                )
            connection.close()  # the rows are read by worker processes or by a child, never here
            if ranges is not None:
                log.info(
                    "export %s: %d key ranges of %s on %d workers",
                    spec.name,
                    len(ranges),
                    plan.key,
                    settings.workers,
                )
                chunks = parallel.encode_ranges(
                    self._connection_string,
                    ranges,
                    settings.workers,
                    settings.chunk_rows,
                    index,
                    plan.read,
                    settings.formula_guard,
                )
                return columns, driver, chunks
            log.info(
                "export %s: %s%s",
                spec.name,
                plan.query.sql,
                f" (watermark > {after!r})" if after is not None else "",
            )
            job = isolated.ReadJob(
                self._connection_string,
                plan.query,
                spec.source_label,
                settings.chunk_rows,
                index,
                plan.read,
                settings.formula_guard,
            )
            rows = isolated.ChildRows(job)
            return columns, driver, rows
        except BaseException:
            connection.close()
            raise
