"""Atomic blob writes: stage blocks while streaming, make the blob visible with one commit.

Until `commit()`, readers see nothing new (or the previous version, intact): a crash half-way
leaves only uncommitted blocks, which Azure discards by itself.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import uuid

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobClient, ContainerClient, ContentSettings

DEFAULT_BLOCK_BYTES = 4 * 1024 * 1024


class StagedBlobWriter:
    """Buffers up to one block, stages full blocks, counts bytes and hashes them as they pass."""

    def __init__(self, blob: BlobClient, block_bytes: int = DEFAULT_BLOCK_BYTES) -> None:
        self.blob = blob
        self._block_bytes = block_bytes
        self._run = uuid.uuid4().hex[:16]  # unique per writer: never mixes with a crashed run's blocks
        self._blocks: list[BlobBlock] = []
        self._buffer = bytearray()
        self._sha256 = hashlib.sha256()
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
        block_id = base64.b64encode(f"{self._run}-{len(self._blocks):08d}".encode()).decode()
        self.blob.stage_block(block_id, data, length=len(data))
        self._blocks.append(BlobBlock(block_id=block_id))

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def stage_rest(self) -> None:
        """Stage what is buffered; after this, `commit()` is a single small request."""
        if self._buffer or not self._blocks:
            self._stage(bytes(self._buffer))
            self._buffer.clear()

    def commit(self, content_type: str, metadata: dict[str, str] | None = None) -> None:
        self.stage_rest()
        self.blob.commit_block_list(
            self._blocks, content_settings=ContentSettings(content_type=content_type), metadata=metadata or {}
        )
        self.committed = True


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
