"""Reading an input blob: pinned to one version, in ranged chunks (model.csvinput.stream.CheckedStream
downloads them ahead on a thread and checks them).

Never whole in memory: at most `prefetch + 1` chunks are held, whatever the size of the blob.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient

from functions.scoring.errors import InputChanged
from model.csvinput.options import READ_CHUNK_BYTES


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
    source: InputBlob, start: int = 0, end: int | None = None, chunk_bytes: int = READ_CHUNK_BYTES
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
