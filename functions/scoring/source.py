"""Reading an input blob: pinned to one version, in ranged chunks, downloaded ahead on a thread.

Never whole in memory: at most `prefetch + 1` chunks are held, whatever the size of the blob.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient

from functions.scoring.errors import InputChanged
from functions.scoring.scan import RecordScanner

CHUNK_BYTES = 4 * 1024 * 1024
_DONE = object()


@dataclass(frozen=True)
class InputBlob:
    """One version of an input: the client, and the etag every read is pinned to."""

    client: BlobClient
    etag: str
    size: int
    last_modified: str

    @classmethod
    def current(cls, client: BlobClient) -> InputBlob:
        try:
            properties = client.get_blob_properties()
        except ResourceNotFoundError:
            raise InputChanged(
                f"{client.container_name}/{client.blob_name} does not exist (deleted?)"
            ) from None
        return cls(client, properties.etag, properties.size, properties.last_modified.isoformat())

    @property
    def path(self) -> str:
        return f"{self.client.container_name}/{self.client.blob_name}"

    def check_current(self) -> None:
        """Raise InputChanged if a newer version replaced this one (its output must not win)."""
        if InputBlob.current(self.client).etag != self.etag:
            raise InputChanged(f"{self.path} was replaced by a newer version (etag {self.etag} is stale)")


def download_chunks(
    source: InputBlob, start: int = 0, end: int | None = None, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """Bytes [start, end) of the pinned version, one ranged GET per chunk (each retried by the SDK)."""
    end = source.size if end is None else end
    position = start
    while position < end:
        length = min(chunk_bytes, end - position)
        try:
            data = source.client.download_blob(
                offset=position,
                length=length,
                etag=source.etag,
                match_condition=MatchConditions.IfNotModified,
            ).readall()
        except (ResourceModifiedError, ResourceNotFoundError):
            raise InputChanged(f"{source.path} changed while being read (etag {source.etag})") from None
        except HttpResponseError as error:
            if error.status_code == 412:
                raise InputChanged(f"{source.path} changed while being read (etag {source.etag})") from None
            raise
        if len(data) != length:
            raise InputChanged(f"{source.path} returned {len(data)} bytes for a range of {length}")
        yield data
        position += length


class CheckedStream:
    """A file-like object for the CSV parser over downloaded chunks, each checked by a RecordScanner.

    Download and checks run on a background thread, `prefetch` chunks ahead of the parser, so
    network waits overlap with parsing and scoring. An error of either (a FileRejected from the
    checks, a storage error) is raised to the reader at its next `read`.
    """

    def __init__(
        self, chunks: Iterator[bytes], scanner: RecordScanner | None, prefix: bytes = b"", prefetch: int = 2
    ) -> None:
        self.scanner = scanner
        self.sha256 = hashlib.sha256()  # of the chunks (not the prefix): the input's digest when read whole
        self._chunks = chunks
        self._pending: list[bytes] = [prefix] if prefix else []
        self._queue: queue.Queue[object] = queue.Queue(prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="download-input", daemon=True)
        self._thread.start()
        self.finished = False

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
            raise item
        assert isinstance(item, bytes)
        return item

    def read(self, size: int = -1) -> bytes:
        """Up to one chunk (the parser asks again until it gets b"")."""
        if self._pending:
            return self._pending.pop(0)
        if self.finished:
            return b""
        return self._next()

    def peek_header(self) -> bytes:
        """The first record (the header), read ahead without consuming anything."""
        assert self.scanner is not None, "the header is found by the scanner"
        buffered = b"".join(self._pending)
        # The scanner (on the download thread) may be chunks ahead: read until the header's end is
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
