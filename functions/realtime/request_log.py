"""The request log: one JSON line per answered request, written in batches off the request's path.

    monitoring/{model}/requests/{deployment}/{YYYY}/{MM}/{DD}/{HH}/{worker}-{sequence}.jsonl

A request only appends a dict to an in-memory queue; one background thread per worker turns the
queue into blobs every REQUEST_LOG_FLUSH_SECONDS (or sooner once MAX_BATCH lines wait), one blob per
deployment and hour, created once and never appended to, so a reader never sees half a batch. The
same thread runs the shadow scoring of the requests that drew it, after their answer has gone.
A write that fails keeps its lines for the next round; past MAX_BUFFERED lines the oldest are
dropped and counted (a logging outage must not grow a worker's memory without bound).

A line: request_id, at (UTC, ms), model, deployment, version, route (forced | sticky | weighted),
bucket, status, code, latency_ms (the handler's own time), rows, shadow (true for the shadow
copy, with shadow_of), outputs [{id, probability, decision}], ids_sent (the ids are the caller's
client_id, not row numbers: only those join with outcomes), inputs {column: [values]} when
REQUEST_LOG_INPUTS is on.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import os
import queue
import threading
import uuid
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import AzureError
from azure.storage.blob import ContainerClient, ContentSettings

from lake.contract import JSON_LINES_CONTENT_TYPE
from lake.paths import REQUESTS_DIR, request_log_path

log = logging.getLogger(__name__)

MAX_BATCH = 500  # lines that make the writer flush before its interval
MAX_BUFFERED = 50_000  # lines kept while writes fail; beyond, the oldest are dropped
Job = Callable[[], dict[str, Any] | None]  # a shadow scoring: runs later, returns a line (or None)


class RequestLog:
    """Per worker: queue lines and shadow jobs now, write them to the lake in the background."""

    def __init__(self, container: ContainerClient, model_name: str, flush_seconds: float,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:  # fmt: skip
        self.container = container
        self.model_name = model_name
        self.flush_seconds = flush_seconds
        self.clock = clock
        self.worker = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._queue: queue.SimpleQueue[dict[str, Any] | Job] = queue.SimpleQueue()
        self._pending: list[dict[str, Any]] = []
        self._sequence = 0
        self.dropped = 0
        self.written = 0
        self._wake = threading.Event()
        self._closed = False
        self._flushing = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()
        atexit.register(self.flush)

    def record(self, line: dict[str, Any]) -> None:
        """Queue one line (cheap: no I/O, no serialisation on the caller's thread)."""
        self._queue.put(line)
        if self._queue.qsize() >= MAX_BATCH:
            self._wake.set()

    def later(self, job: Job) -> None:
        """Run `job` on the writer's thread (shadow scoring) and log the line it returns."""
        self._queue.put(job)

    def close(self) -> None:
        """Write what waits and stop the writer (the process's exit does the same)."""
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=30)
        atexit.unregister(self.flush)
        self.flush()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # never let the writer die: the next round tries again
                log.exception("request log: flush failed")

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if callable(item):
                try:
                    item = item()
                except Exception:
                    log.exception("request log: a shadow scoring failed")
                    continue
                if item is None:
                    continue
            self._pending.append(item)

    def flush(self) -> int:
        """Write every queued line now; returns how many were written (tests call it directly)."""
        with self._flushing:
            self._drain()
            if not self._pending:
                return 0
            groups: dict[tuple[str, dt.datetime], list[dict[str, Any]]] = {}
            for line in self._pending:
                at = dt.datetime.fromisoformat(line["at"])
                hour = at.replace(minute=0, second=0, microsecond=0)
                groups.setdefault((str(line.get("deployment") or "none"), hour), []).append(line)
            kept: list[dict[str, Any]] = []
            written = 0
            for (deployment, hour), lines in groups.items():
                self._sequence += 1
                name = f"{self.clock():%Y%m%dT%H%M%S}-{self.worker}-{self._sequence:06d}"
                path = request_log_path(self.model_name, deployment, hour, name)
                body = "".join(json.dumps(line, separators=(",", ":"), default=str) + "\n" for line in lines)
                settings = ContentSettings(content_type=JSON_LINES_CONTENT_TYPE)
                try:
                    self.container.upload_blob(
                        path, body.encode(), overwrite=False, content_settings=settings
                    )
                    written += len(lines)
                except AzureError as error:
                    log.warning("request log: %d lines not written yet (%s)", len(lines), error)
                    kept.extend(lines)
            if len(kept) > MAX_BUFFERED:
                self.dropped += len(kept) - MAX_BUFFERED
                log.error("request log: dropped %d lines while writes failed", len(kept) - MAX_BUFFERED)
                kept = kept[-MAX_BUFFERED:]
            self._pending = kept
            self.written += written
            return written


def read_lines(
    container: ContainerClient, prefix: str, keep: Callable[[str], bool] = lambda _name: True
) -> list[dict[str, Any]]:
    """Every line of the batches under `prefix` whose blob name `keep` accepts, in blob-name order."""
    lines: list[dict[str, Any]] = []
    for blob in sorted(container.list_blobs(name_starts_with=prefix), key=lambda b: b.name):
        if not keep(blob.name):
            continue
        body = container.download_blob(blob.name).readall().decode()
        lines.extend(json.loads(line) for line in body.splitlines() if line.strip())
    return lines


def _hour_of(blob_name: str) -> dt.datetime | None:
    """The UTC hour folder of a batch (`{model}/requests/{deployment}/YYYY/MM/DD/HH/...`), if it is one."""
    try:
        return dt.datetime(*map(int, blob_name.split("/")[3:7]), tzinfo=dt.UTC)
    except (TypeError, ValueError):
        return None


def read_since(container: ContainerClient, model_name: str, since: dt.datetime) -> list[dict[str, Any]]:
    """Every line of every deployment written in an hour folder at or after `since`'s hour."""
    first = since.replace(minute=0, second=0, microsecond=0)

    def recent(name: str) -> bool:
        hour = _hour_of(name)
        return hour is not None and hour >= first

    return read_lines(container, f"{model_name}/{REQUESTS_DIR}/", recent)
