"""Atomic blob writes: stage blocks while streaming, make the blob visible with one commit.

Until `commit()`, readers see nothing new (or the previous version, intact): a crash half-way
leaves only uncommitted blocks, which Azure discards by itself.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import queue
import threading
import uuid

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobClient, ContainerClient, ContentSettings

DEFAULT_BLOCK_BYTES = 4 * 1024 * 1024


class StagedBlobWriter:
    """Buffers up to one block and stages full blocks while the caller produces the next ones.

    Staging runs on one background thread with at most `max_pending` blocks queued, so network
    waits overlap with fetching and encoding while memory stays bounded. The first staging error
    is raised to the caller at its next `write`, `stage_rest` or `commit`.
    """

    def __init__(
        self, blob: BlobClient, block_bytes: int = DEFAULT_BLOCK_BYTES, max_pending: int = 2
    ) -> None:
        self.blob = blob
        self._block_bytes = block_bytes
        self._run = uuid.uuid4().hex[:16]  # unique per writer: never mixes with a crashed run's blocks
        self._blocks: list[BlobBlock] = []
        self._buffer = bytearray()
        self._sha256 = hashlib.sha256()
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(max_pending)
        self._uploader: threading.Thread | None = None
        self._error: BaseException | None = None
        self.bytes_written = 0
        self.committed = False

    def write(self, data: bytes) -> None:
        self._sha256.update(data)
        self.bytes_written += len(data)
        self._buffer += data
        if len(self._buffer) >= self._block_bytes:
            self._stage(bytes(self._buffer))
            self._buffer.clear()

    def _stage(self, data: bytes) -> None:
        self._raise_if_failed()
        if self._uploader is None:
            self._uploader = threading.Thread(target=self._upload_loop, name="stage-blocks", daemon=True)
            self._uploader.start()
        block_id = base64.b64encode(f"{self._run}-{len(self._blocks):08d}".encode()).decode()
        self._blocks.append(BlobBlock(block_id=block_id))
        self._queue.put((block_id, data))

    def _upload_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:  # after a failure, drain the queue without uploading
                try:
                    self.blob.stage_block(item[0], item[1], length=len(item[1]))
                except BaseException as error:  # noqa: BLE001 - handed to the producing thread
                    self._error = error

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _finish_uploads(self) -> None:
        if self._uploader is not None:
            self._queue.put(None)
            self._uploader.join()
            self._uploader = None
        self._raise_if_failed()

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def stage_rest(self) -> None:
        """Stage what is buffered and wait for every block; after this `commit()` is one request."""
        if self._buffer or not self._blocks:
            self._stage(bytes(self._buffer))
            self._buffer.clear()
        self._finish_uploads()

    def commit(self, content_type: str, metadata: dict[str, str] | None = None) -> None:
        self.stage_rest()
        self.blob.commit_block_list(
            self._blocks, content_settings=ContentSettings(content_type=content_type), metadata=metadata or {}
        )
        self.committed = True

    def abort(self) -> None:
        """Stop the uploader after a failure; staged blocks stay uncommitted (Azure discards them)."""
        self._error = self._error or RuntimeError("aborted")
        if self._uploader is not None:
            self._queue.put(None)
            self._uploader.join(timeout=60)
            self._uploader = None


def read_text(container: ContainerClient, path: str) -> str | None:
    """The blob's text, or None if it does not exist."""
    try:
        return container.download_blob(path, encoding="utf-8").readall()
    except ResourceNotFoundError:
        return None


def delete_if_exists(container: ContainerClient, path: str) -> bool:
    try:
        container.delete_blob(path, delete_snapshots="include")
        return True
    except ResourceNotFoundError:
        return False


def ensure_container(container: ContainerClient) -> None:
    with contextlib.suppress(ResourceExistsError):
        container.create_container()
