"""One export's rows read by a child process, so that a crashing ODBC driver ends an attempt, not the app.

Found by the fault suite (tests/test_faults_export.py): psqlODBC 13.02 with `UseDeclareFetch=1`
segfaults in SQLFetch when the connection drops after the first batch of a cursor. In the
function's own process that would kill the worker and every invocation it runs. Here the driver
runs in a child (spawned, dies with its parent) that fetches and encodes exactly as a key-range
worker does and hands the CSV chunks over a queue of two: memory stays bounded, and the parent
hashes and stages one chunk while the child fetches the next. A child that dies before it is
done becomes a `DriverCrashedError`, transient, so the attempt is retried like a lost connection.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from functions.export.fidelity import ReadPlan
from functions.export.parallel import DriverCrashedError, EncodedChunk, die_with_parent, encode_cursor
from functions.export.source import Query
from functions.retry import PermanentError

_DONE = "done"
_POLL_S = 0.5
_DRAIN_S = 5.0  # after the child ended, what it put is already in the pipe: this only bounds a crash


def _portable(error: BaseException) -> BaseException:
    """The error itself when it survives pickling (so retry rules see its SQLSTATE), else its text."""
    try:
        pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object, round-tripped in-process
    except Exception:  # noqa: BLE001 - any pickling failure: fall back to the message
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


@dataclass(frozen=True)
class ReadJob:
    """Everything the child needs to read one query (picklable: it crosses the process boundary)."""

    connection_string: str
    query: Query
    label: str  # the export's source, for messages
    chunk_rows: int
    watermark_index: int | None
    read: ReadPlan
    formula_guard: bool


def _read(chunks: Any, job: ReadJob, parent_pid: int) -> None:
    """The child: connect, run the query, put encoded chunks, then `_DONE` (or the error)."""
    die_with_parent(parent_pid)
    import pyodbc

    from functions.export.drivers import connect

    try:
        connection = connect(job.connection_string)
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(job.query.sql, *job.query.params)
            except pyodbc.ProgrammingError as error:
                raise PermanentError(f"query for {job.label} failed: {error}") from error
            encoder = job.read.encoder(job.formula_guard)
            for chunk in encode_cursor(cursor, encoder, job.chunk_rows, job.watermark_index, job.read):
                chunks.put(chunk)
        finally:
            connection.close()
    except BaseException as error:  # noqa: BLE001 - every failure is the parent's to classify
        chunks.put(_portable(error))
        return
    chunks.put(_DONE)


class ChildRows:
    """The encoded chunks of one query, read in a child; `close()` ends the child at any point."""

    def __init__(self, job: ReadJob) -> None:
        self._label = job.label
        context = multiprocessing.get_context("spawn")  # no fork: the parent has SDK threads
        self._chunks = context.Queue(maxsize=2)
        self._child = context.Process(
            target=_read, args=(self._chunks, job, os.getpid()), name="export-reader", daemon=True
        )
        self._child.start()

    def __iter__(self) -> Iterator[EncodedChunk]:
        while True:
            item = self._next()
            if item == _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _next(self) -> Any:
        while True:
            try:
                return self._chunks.get(timeout=_POLL_S)
            except queue.Empty:
                if self._child.is_alive():
                    continue
            try:  # it may have put its last items just before it ended (a busy machine is slow to read)
                return self._chunks.get(timeout=_DRAIN_S)
            except queue.Empty:
                raise DriverCrashedError(self._ended()) from None

    def _ended(self) -> str:
        code = self._child.exitcode
        how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        return f"the process reading {self._label} from the database ended with {how} before the last row"

    def close(self) -> None:
        if self._child.is_alive():
            self._child.kill()
        self._child.join()
        self._chunks.close()
        self._chunks.cancel_join_thread()
