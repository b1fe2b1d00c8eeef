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

import multiprocessing
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyodbc

from functions.export.csv_format import CsvEncoder
from functions.export.source import Query, column_index, columns_of, fetch_chunks


@dataclass(frozen=True)
class EncodedChunk:
    """CSV bytes of some rows, their count, and the highest watermark value among them."""

    data: bytes
    rows: int
    highest: Any = None


def highest_value(rows: Sequence[Sequence[Any]], index: int | None) -> Any:
    if index is None:
        return None
    values = [v for row in rows if (v := row[index]) is not None]
    return max(values) if values else None


def merge_highest(current: Any, candidate: Any) -> Any:
    if candidate is None:
        return current
    return candidate if current is None or candidate > current else current


def encode_cursor(
    cursor: pyodbc.Cursor, encoder: CsvEncoder, chunk_rows: int, watermark_index: int | None
) -> Iterator[EncodedChunk]:
    """The single-stream path: fetch chunks from one cursor and encode them."""
    for rows in fetch_chunks(cursor, chunk_rows):
        yield EncodedChunk(encoder.encode(rows), len(rows), highest_value(rows, watermark_index))


# --- worker side ------------------------------------------------------------------------------

_connection: pyodbc.Connection | None = None


def _open_worker_connection(connection_string: str) -> None:
    global _connection
    from functions.clients import database  # imported in the worker, not at module import

    _connection = database(connection_string)


def _encode_range(query: Query, chunk_rows: int, watermark: str | None, formula_guard: bool) -> EncodedChunk:
    assert _connection is not None, "worker connection not initialised"
    cursor = _connection.cursor()
    try:
        cursor.execute(query.sql, *query.params)
        columns, types = columns_of(cursor)
        index = column_index(columns, watermark) if watermark else None
        encoder = CsvEncoder(types, formula_guard)
        parts, rows, highest = [], 0, None
        for chunk in encode_cursor(cursor, encoder, chunk_rows, index):
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
    watermark: str | None,
    formula_guard: bool,
) -> Iterator[EncodedChunk]:
    """Yield each range's CSV bytes in range order while up to `workers + 1` ranges are in flight.

    Each finished range exists twice in this process for a moment (pickled, then unpickled), so
    the window is what bounds memory: every worker busy plus one range ready to write.
    """
    context = multiprocessing.get_context("spawn")  # no fork: the parent has SDK threads and sockets
    with ProcessPoolExecutor(workers, context, _open_worker_connection, (connection_string,)) as pool:
        pending: deque[Future[EncodedChunk]] = deque()
        queued = iter(ranges)
        try:
            for query in queued:
                pending.append(pool.submit(_encode_range, query, chunk_rows, watermark, formula_guard))
                if len(pending) >= workers + 1:
                    break
            while pending:
                chunk = pending.popleft().result()
                next_query = next(queued, None)
                if next_query is not None:
                    pending.append(
                        pool.submit(_encode_range, next_query, chunk_rows, watermark, formula_guard)
                    )
                yield chunk
        finally:
            for future in pending:
                future.cancel()
