"""Atomic blob writes: stage blocks while streaming, make the blob visible with one commit.

Until `commit()`, readers see nothing new (or the previous version, intact): a crash half-way
leaves only uncommitted blocks, which Azure discards by itself.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import queue
import threading
import uuid
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobClient, ContainerClient, ContentSettings

from lake.contract import HTML_CONTENT_TYPE, JSON_CONTENT_TYPE

DEFAULT_BLOCK_BYTES = 4 * 1024 * 1024


class StagedBlobWriter:
    """Buffers up to one block and stages full blocks while the caller produces the next ones.

    Staging runs on one background thread with at most `max_pending` blocks queued, so network
    waits overlap with fetching and encoding while memory stays bounded. The first staging error
    is raised to the caller at its next `write`, `stage_rest` or `commit`.
    """

    def __init__(
        self,
        blob: BlobClient,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        max_pending: int = 2,
        block_prefix: str | None = None,
    ) -> None:
        self.blob = blob
        self._block_bytes = block_bytes
        # Unique per writer by default: never mixes with a crashed run's blocks. A fixed prefix makes
        # the ids deterministic, for several writers (shards) staging parts of one blob.
        self._run = block_prefix if block_prefix is not None else uuid.uuid4().hex[:16] + "-"
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
        block_id = base64.b64encode(f"{self._run}{len(self._blocks):08d}".encode()).decode()
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

    @property
    def block_ids(self) -> list[str]:
        return [block.id for block in self._blocks]

    def commit(self, content_type: str, metadata: dict[str, str] | None = None, **conditions: Any) -> None:
        """Make the blob visible; `conditions` (etag / match_condition) make the commit conditional."""
        self.stage_rest()
        commit_blocks(self.blob, self.block_ids, content_type, metadata, **conditions)
        self.committed = True

    def abort(self) -> None:
        """Stop the uploader after a failure; staged blocks stay uncommitted (Azure discards them)."""
        self._error = self._error or RuntimeError("aborted")
        if self._uploader is not None:
            self._queue.put(None)
            self._uploader.join(timeout=60)
            self._uploader = None


class ContentMismatchError(RuntimeError):
    """The bytes read are not the bytes expected (the source changed while being read)."""


def commit_blocks(
    blob: BlobClient,
    block_ids: list[str],
    content_type: str,
    metadata: dict[str, str] | None = None,
    **conditions: Any,
) -> None:
    """Commit staged blocks, in this order, as the blob's content (one request: all or nothing)."""
    blob.commit_block_list(
        [BlobBlock(block_id=block_id) for block_id in block_ids],
        content_settings=ContentSettings(content_type=content_type),
        metadata=metadata or {},
        **conditions,
    )


def copy_blob(
    source: BlobClient,
    target: BlobClient,
    content_type: str,
    metadata: dict[str, str] | None = None,
    source_etag: str | None = None,
    expect_sha256: str | None = None,
    create_only: bool = False,
) -> str:
    """Stream `source` into `target` through staged blocks (bounded memory, atomic); return the sha256.

    `source_etag` pins the version read: if the source changes meanwhile the copy fails instead of
    mixing two versions. With `expect_sha256`, other bytes are never committed (ContentMismatchError).
    `create_only` commits only if the target does not exist yet (else ResourceExistsError).
    Works with identity-based clients, where a server-side copy may need a SAS.
    """
    writer = StagedBlobWriter(target)
    conditions: dict[str, Any] = {}
    if source_etag is not None:
        conditions = {"etag": source_etag, "match_condition": MatchConditions.IfNotModified}
    try:
        for chunk in source.download_blob(**conditions).chunks():
            writer.write(chunk)
        if expect_sha256 is not None and writer.sha256 != expect_sha256:
            raise ContentMismatchError(
                f"{source.container_name}/{source.blob_name} has sha256 {writer.sha256[:16]}…, "
                f"expected {expect_sha256[:16]}… (it changed while being copied)"
            )
        only_new = {"match_condition": MatchConditions.IfMissing} if create_only else {}
        writer.commit(content_type, metadata, **only_new)
    except BaseException:
        writer.abort()
        raise
    return writer.sha256


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


def write_json(container: ContainerClient, path: str, document: dict[str, Any]) -> None:
    """A small JSON document, replaced whole (its content is the same for the same input version)."""
    container.upload_blob(
        path,
        (json.dumps(document, indent=2, default=str) + "\n").encode(),
        overwrite=True,
        content_settings=ContentSettings(content_type=JSON_CONTENT_TYPE),
    )


def write_html(container: ContainerClient, path: str, page: str) -> None:
    """A small HTML page, replaced whole in one upload (readers see the old page or the new one)."""
    container.upload_blob(
        path, page.encode(), overwrite=True, content_settings=ContentSettings(content_type=HTML_CONTENT_TYPE)
    )
