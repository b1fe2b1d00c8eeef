"""Publishing the outputs of one input version exactly once, whatever the platform delivers.

At-least-once delivery means two invocations may score the same input at once, or one may crash
half-way and run again. The protocol:

1. Everything is staged as uncommitted blocks first (invisible).
2. `predictions.csv` is committed **conditionally**: create-only (`If-None-Match: *`), or, when it
   holds the output of an older version of the same input name, only if it is still that blob
   (`If-Match`), after deleting the old manifest. The commit carries the manifest draft in the
   blob's metadata, so the committed blob alone is enough to finish the job.
3. `_manifest.json` is written create-only from that metadata, by whoever gets there: the
   invocation that committed, a duplicate that lost the race, or a re-run after a crash between
   steps 2 and 3. Its presence means the folder is complete.

A loser of the race in step 2 finds the winner's blob and goes straight to step 3.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobProperties, ContainerClient, ContentSettings

from functions.blob_io import commit_blocks, delete_if_exists, read_text
from functions.retry import TransientError
from lake.contract import CSV_CONTENT_TYPE, JSON_CONTENT_TYPE
from lake.paths import OutputPaths

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
_ETAG_KEY = "input_etag"
_DRAFT_KEY = "manifest"
_SHA_KEY = "sha256"


class Staged(Protocol):
    """A CSV output staged as uncommitted blocks (step 1), made visible by one `commit` (step 2).

    `functions.blob_io.StagedBlobWriter` is one (a whole file's outputs); `StagedBlocks` is the
    other (a fanned-out output, assembled from the blocks its shards staged).
    """

    @property
    def sha256(self) -> str | None:
        """The content's sha256 if known before the commit (else `finalize` streams the blob)."""
        ...

    def commit(
        self, content_type: str, metadata: dict[str, str] | None = None, **conditions: Any
    ) -> None: ...


@dataclass(frozen=True)
class StagedBlocks:
    """Blocks already staged on `blob` (by several writers), committed in this order."""

    blob: BlobClient
    block_ids: list[str]
    sha256: str | None = None

    def commit(self, content_type: str, metadata: dict[str, str] | None = None, **conditions: Any) -> None:
        commit_blocks(self.blob, self.block_ids, content_type, metadata, **conditions)


def read_manifest(container: ContainerClient, paths: OutputPaths) -> dict[str, Any] | None:
    text = read_text(container, paths.manifest)
    return None if text is None else json.loads(text)


def _predictions_properties(container: ContainerClient, paths: OutputPaths) -> BlobProperties | None:
    try:
        return container.get_blob_client(paths.predictions).get_blob_properties()
    except ResourceNotFoundError:
        return None


def _holds(properties: BlobProperties | None, etag: str) -> bool:
    """Whether a predictions.csv (its properties) holds the output of this input version."""
    return properties is not None and (properties.metadata or {}).get(_ETAG_KEY) == etag


def committed_for(container: ContainerClient, paths: OutputPaths, etag: str) -> bool:
    """Whether predictions.csv holds the output of this input version."""
    return _holds(_predictions_properties(container, paths), etag)


class OutputState(StrEnum):
    """How far the protocol got for one input version (None from `output_state`: not at step 2)."""

    COMMITTED = "committed"  # step 2 done: predictions.csv holds it, `_manifest.json` is missing
    COMPLETE = "complete"  # step 3 done: the manifest is there for this input version


def output_state(container: ContainerClient, paths: OutputPaths, etag: str) -> OutputState | None:
    manifest = read_manifest(container, paths)
    if manifest is not None and manifest["input"]["etag"] == etag:
        return OutputState.COMPLETE
    return OutputState.COMMITTED if committed_for(container, paths, etag) else None


def _encode_draft(draft: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(draft, separators=(",", ":")).encode()).decode()


def publish(
    container: ContainerClient,
    paths: OutputPaths,
    etag: str,
    draft: dict[str, Any],
    predictions: Staged,
    rejected: Staged | None,
    still_current: Callable[[], None] | None = None,
) -> bool:
    """Commit staged outputs (steps 1-2); True if this call committed, False if another one had.

    `rejected` is None when no row was rejected: an older version's rejected rows are deleted.
    `still_current` raises if the input has been replaced meanwhile: it runs before anything is
    replaced, so a stale version never overwrites the output of a newer one.
    """
    existing = _predictions_properties(container, paths)
    if _holds(existing, etag):
        return False
    previous = existing.etag if existing is not None else None
    if still_current is not None:
        still_current()
    if previous is not None:  # another version of this input: its manifest goes first
        delete_if_exists(container, paths.manifest)
    metadata = {_ETAG_KEY: etag, _DRAFT_KEY: _encode_draft(draft)}
    if rejected is not None:
        rejected.commit(CSV_CONTENT_TYPE, {_ETAG_KEY: etag})
    else:
        delete_if_exists(container, paths.rejected_rows)  # the older version's, if any
    if predictions.sha256 is not None:
        metadata[_SHA_KEY] = predictions.sha256
    conditions: dict[str, Any] = (
        {"match_condition": MatchConditions.IfMissing}
        if previous is None
        else {"etag": previous, "match_condition": MatchConditions.IfNotModified}
    )
    try:
        predictions.commit(CSV_CONTENT_TYPE, metadata, **conditions)
    except (ResourceExistsError, ResourceNotFoundError, HttpResponseError) as error:
        if isinstance(error, HttpResponseError) and error.status_code not in (409, 412):
            raise
        if committed_for(container, paths, etag):
            log.info("%s was committed by a concurrent invocation", paths.predictions)
            return False
        raise TransientError(f"{paths.predictions} changed while being published; retry") from None
    return True


def finalize(container: ContainerClient, paths: OutputPaths, etag: str) -> dict[str, Any]:
    """Write `_manifest.json` (step 3) from the committed blob; idempotent; return the manifest."""
    existing = read_manifest(container, paths)
    if existing is not None and existing["input"]["etag"] == etag:
        return existing
    blob = container.get_blob_client(paths.predictions)
    properties = blob.get_blob_properties()
    metadata = properties.metadata or {}
    if metadata.get(_ETAG_KEY) != etag:
        raise TransientError(f"{paths.predictions} no longer holds the output of input etag {etag}")
    manifest = json.loads(base64.b64decode(metadata[_DRAFT_KEY]))
    sha256 = metadata.get(_SHA_KEY) or _sha256_of(blob, properties.etag)
    manifest["output"] |= {"bytes": properties.size, "sha256": sha256}
    text = json.dumps(manifest, indent=2) + "\n"
    try:
        container.upload_blob(
            paths.manifest,
            text.encode(),
            overwrite=False,
            content_settings=ContentSettings(content_type=JSON_CONTENT_TYPE),
        )
    except ResourceExistsError:
        winner = read_manifest(container, paths)
        if winner is None or winner["input"]["etag"] != etag:
            raise TransientError(f"{paths.manifest} was written for another input version; retry") from None
        return winner
    return manifest


def _sha256_of(blob: Any, etag: str) -> str:
    """sha256 of a committed blob, streamed (fan-out outputs are assembled from shards' blocks)."""
    digest = hashlib.sha256()
    for chunk in blob.download_blob(etag=etag, match_condition=MatchConditions.IfNotModified).chunks():
        digest.update(chunk)
    return digest.hexdigest()
