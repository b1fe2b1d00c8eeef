"""A file that cannot be scored goes to `rejected/`, untouched, with an error.json saying why.

The original stays in `scoring-input/` too: nothing is deleted. Fix the file and upload it again
under the same name (a new version, a new etag): it is scored as a new input.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError
from azure.storage.blob import BlobServiceClient, ContentSettings

from functions.blob_io import copy_blob, read_text
from functions.scoring.source import InputBlob
from functions.telemetry.emit import emit
from functions.telemetry.events import INPUT_REJECTED
from lake.contract import CSV_CONTENT_TYPE, JSON_CONTENT_TYPE, REJECTED_CONTAINER
from lake.paths import RejectedPaths
from model.csvinput.errors import FileRejected, error_document

log = logging.getLogger(__name__)


def already_rejected(service: BlobServiceClient, name: str, etag: str) -> bool:
    paths = RejectedPaths(name, etag)
    return read_text(service.get_container_client(REJECTED_CONTAINER), paths.error) is not None


def reject_file(
    service: BlobServiceClient,
    source: InputBlob,
    name: str,
    rejection: FileRejected,
    model: dict[str, Any] | None,
) -> RejectedPaths:
    """Copy the input (pinned to its etag) and write error.json last, create-only; idempotent."""
    paths = RejectedPaths(name, source.etag)
    container = service.get_container_client(REJECTED_CONTAINER)
    if read_text(container, paths.error) is not None:
        return paths
    copy = container.get_blob_client(paths.copy)
    try:
        copy_blob(
            source.client,
            copy,
            CSV_CONTENT_TYPE,
            {"source": source.path, "source_etag": paths.folder.rsplit("/", 1)[-1]},
            source_etag=source.etag,
            create_only=True,
        )
    except (ResourceExistsError, ResourceModifiedError):
        pass  # a racing (or crashed) delivery copied the same pinned version first: its copy stands
    except HttpResponseError as error:
        # A racing delivery committed first, discarding this one's staged blocks (found by the soak).
        if error.error_code != "InvalidBlockList" or not copy.exists():
            raise
    blob = {"blob": source.path, "etag": source.etag, "bytes": source.size}
    error = error_document(rejection, blob, model, f"{REJECTED_CONTAINER}/{paths.copy}")
    with contextlib.suppress(ResourceExistsError):  # a duplicate invocation recorded the verdict first
        container.upload_blob(
            paths.error,
            (json.dumps(error, indent=2, default=str) + "\n").encode(),
            overwrite=False,
            content_settings=ContentSettings(content_type=JSON_CONTENT_TYPE),
        )
    emit(log, INPUT_REJECTED, "rejected %s (%s): %s -> %s/%s", source.path, rejection.code, rejection.message,
         REJECTED_CONTAINER, paths.folder, level=logging.WARNING,
         input=source.path, code=rejection.code, reason=rejection.message)  # fmt: skip
    return paths
