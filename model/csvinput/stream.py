"""A file-like object over checked chunks of bytes: what the CSV parser reads, from a blob or a file.

Reading and the byte checks run on a background thread, `prefetch` chunks ahead of the parser,
so waits for the source overlap with parsing and scoring. An error of either (a FileRejected from
the checks, a storage or file error) is raised to the reader at its next `read`.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

from model.csvinput.options import READ_CHUNK_BYTES
from model.csvinput.scan import RecordScanner

_DONE = object()


def file_chunks(
    path: Path, start: int = 0, end: int | None = None, chunk_bytes: int = READ_CHUNK_BYTES
) -> Iterator[bytes]:
    """Bytes [start, end) of a local file, in chunks of `chunk_bytes` (the same size blobs are read in)."""
    with path.open("rb") as handle:
        handle.seek(start)
        left = None if end is None else end - start
        while left is None or left > 0:
            data = handle.read(chunk_bytes if left is None else min(chunk_bytes, left))
            if not data:
                return
            if left is not None:
                left -= len(data)
            yield data


class CheckedStream:
    """Chunks, each checked by a RecordScanner (or not, with None), read as one stream."""

    def __init__(
        self, chunks: Iterator[bytes], scanner: RecordScanner | None, prefix: bytes = b"", prefetch: int = 2
    ) -> None:
        self.scanner = scanner
        self.sha256 = hashlib.sha256()  # of the chunks (not the prefix): the input's digest when read whole
        self._chunks = chunks
        self._pending: list[bytes] = [prefix] if prefix else []
        self._queue: queue.Queue[object] = queue.Queue(prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="read-input", daemon=True)
        self._thread.start()
        self.finished = False
        self.error: BaseException | None = None  # raised again by every later read: it sticks

    def _produce(self) -> None:
        try:
            for chunk in self._chunks:
                self.sha256.update(chunk)
                if self.scanner is not None:
                    self.scanner.feed(chunk)
                if not self._put(chunk):
                    return
            if self.scanner is not None:
                self.scanner.finish()
            self._put(_DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the reading thread
            self._put(error)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _next(self) -> bytes:
        item = self._queue.get()
        if item is _DONE:
            self.finished = True
            return b""
        if isinstance(item, BaseException):
            self.finished = True
            self.error = item
            raise item
        assert isinstance(item, bytes)
        return item

    def read(self, size: int = -1) -> bytes:
        """Up to one chunk (the parser asks again until it gets b"")."""
        if self._pending:
            return self._pending.pop(0)
        if self.error is not None:  # a reader that swallowed it (pandas can, at the end) meets it again
            raise self.error
        if self.finished:
            return b""
        return self._next()

    def peek_header(self) -> bytes:
        """The first record (the header), read ahead without consuming anything."""
        assert self.scanner is not None, "the header is found by the scanner"
        buffered = b"".join(self._pending)
        # The scanner (on the reading thread) may be chunks ahead: read until the header's end is
        # known *and* buffered here.
        while not self.finished and (
            self.scanner.header_end is None or len(buffered) < self.scanner.header_end
        ):
            chunk = self._next()
            if not chunk:
                break
            self._pending.append(chunk)
            buffered += chunk
        end = self.scanner.header_end
        return buffered if end is None else buffered[:end]

    def drain(self) -> None:
        """Read to the end (so the checks see every byte), discarding the bytes."""
        self._pending.clear()
        while self.read():
            pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
