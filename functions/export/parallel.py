"""Export big tables faster than one ODBC stream can: key ranges read by worker processes, in order.

One pyodbc stream is bound by one core (the driver's row conversion holds the GIL). Workers each
hold their own connection and turn one key range at a time into CSV bytes; the parent consumes
the ranges strictly in key order, hashing and staging them, with at most `workers + 1` ranges in
flight, so memory stays bounded and the file is byte-identical to a single-stream export.

Each range is its own query, so unlike a single query the ranges are not one snapshot: rows that
change while the export runs may show either state (Azure Data Factory's partitioned copy has
the same property).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import pyodbc

from functions.export.csv_format import CsvEncoder
from functions.export.fidelity import ReadPlan
from functions.export.source import Query, fetch_chunks
from functions.retry import TransientError


class DriverCrashedError(TransientError):
    """A process reading from the database died (a driver crash, or killed) before its last row."""


@dataclass(frozen=True)
class EncodedChunk:
    """CSV bytes of some rows, their count, and the highest watermark value among them."""

    data: bytes
    rows: int
    highest: Any = None


def highest_value(rows: Sequence[Sequence[Any]], index: int | None, read: ReadPlan | None = None) -> Any:
    """The highest watermark value among `rows` (decoded, where the select list rewrote the column)."""
    if index is None:
        return None
    values = [v for row in rows if (v := row[index]) is not None]
    decoder = read.decoder(index) if read is not None else None
    if decoder is not None:
        values = [decoder(v) for v in values]
    return max(values) if values else None


def merge_highest(current: Any, candidate: Any) -> Any:
    if candidate is None:
        return current
    return candidate if current is None or candidate > current else current


def encode_cursor(
    cursor: pyodbc.Cursor,
    encoder: CsvEncoder,
    chunk_rows: int,
    watermark_index: int | None,
    read: ReadPlan | None = None,
) -> Iterator[EncodedChunk]:
    """The single-stream path: fetch chunks from one cursor and encode them."""
    for rows in fetch_chunks(cursor, chunk_rows):
        yield EncodedChunk(encoder.encode(rows), len(rows), highest_value(rows, watermark_index, read))


# --- worker side ------------------------------------------------------------------------------

_connection: pyodbc.Connection | None = None


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """End this process when `parent_pid` ends, however it ends (SIGKILL included).

    On Linux the kernel does it (prctl PR_SET_PDEATHSIG); elsewhere a daemon thread polls the
    parent. A parent that is already gone by the time this runs is caught by the pid check.
    """
    armed = False
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        armed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    if os.getppid() != parent_pid:
        os._exit(1)
    if not armed:

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _open_worker_connection(connection_string: str, parent_pid: int) -> None:
    global _connection
    die_with_parent(parent_pid)
    from functions.export.drivers import connect  # imported in the worker, not at module import

    _connection = connect(connection_string)


def _encode_range(
    query: Query, chunk_rows: int, watermark_index: int | None, read: ReadPlan, formula_guard: bool
) -> EncodedChunk:
    assert _connection is not None, "worker connection not initialised"
    cursor = _connection.cursor()
    try:
        cursor.execute(query.sql, *query.params)
        encoder = read.encoder(formula_guard)
        parts, rows, highest = [], 0, None
        for chunk in encode_cursor(cursor, encoder, chunk_rows, watermark_index, read):
            parts.append(chunk.data)
            rows += chunk.rows
            highest = merge_highest(highest, chunk.highest)
        return EncodedChunk(b"".join(parts), rows, highest)
    finally:
        cursor.close()


# --- parent side ------------------------------------------------------------------------------


def encode_ranges(
    connection_string: str,
    ranges: Sequence[Query],
    workers: int,
    chunk_rows: int,
    watermark_index: int | None,
    read: ReadPlan,
    formula_guard: bool,
) -> Iterator[EncodedChunk]:
    """Yield each range's CSV bytes in range order while up to `workers + 1` ranges are in flight.

    Each finished range exists twice in this process for a moment (pickled, then unpickled), so
    the window is what bounds memory: every worker busy plus one range ready to write.
    """
    context = multiprocessing.get_context("spawn")  # no fork: the parent has SDK threads and sockets
    initargs = (connection_string, os.getpid())
    with ProcessPoolExecutor(workers, context, _open_worker_connection, initargs) as pool:
        pending: deque[Future[EncodedChunk]] = deque()
        queued = iter(ranges)

        def submit(query: Query) -> Future[EncodedChunk]:
            return pool.submit(_encode_range, query, chunk_rows, watermark_index, read, formula_guard)

        try:
            for query in queued:
                pending.append(submit(query))
                if len(pending) >= workers + 1:
                    break
            while pending:
                try:
                    chunk = pending.popleft().result()
                except BrokenProcessPool as error:
                    raise DriverCrashedError(f"a worker process reading key ranges died: {error}") from None
                next_query = next(queued, None)
                if next_query is not None:
                    pending.append(submit(next_query))
                yield chunk
        finally:
            for future in pending:
                future.cancel()
