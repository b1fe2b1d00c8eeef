"""What every scoring step shares: settings, the storage clients, the model source, and the
pieces of output common to a whole file and a fanned-out one (manifest draft, drift report)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient

from functions.blob_io import ensure_container
from functions.scoring.models import ModelSource, ServedModel
from functions.scoring.outputs import MANIFEST_FORMAT, write_json
from functions.scoring.source import InputBlob
from functions.settings import Settings
from lake import clients
from lake.contract import (
    MODELS_CONTAINER,
    MONITORING_CONTAINER,
    PREDICTIONS_CONTAINER,
    SCORING_INPUT_CONTAINER,
    SCORING_OUTPUT_CONTAINERS,
)
from lake.paths import OutputPaths, drift_path
from model.csvinput.run import ReadOptions
from model.csvinput.scorer import Tally
from model.drift import DriftCounts
from model.registry import BlobStore, Registry

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

log = logging.getLogger(__name__)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class ScoringContext:
    """One per process (the Function App keeps it between invocations: clients and models stay warm)."""

    def __init__(
        self,
        settings: Settings,
        service: BlobServiceClient | None = None,
        queue: QueueClient | None = None,
    ) -> None:
        self.settings = settings
        self.options = settings.scoring
        self.service = service or clients.blob_service(settings.data_lake)
        self._queue = queue
        registry = Registry(BlobStore(self.service.get_container_client(MODELS_CONTAINER)))
        self.models = ModelSource(registry, settings.model_name, settings.model_stage, self.options.threads)
        if not settings.data_lake.identity_based:
            # Locally (Azurite) create what Pulumi provisions in Azure; the cloud identity may not.
            for name in (SCORING_INPUT_CONTAINER, *SCORING_OUTPUT_CONTAINERS):
                ensure_container(self.service.get_container_client(name))

    @property
    def read_options(self) -> ReadOptions:
        """How inputs are read: comma-separated, chunks of SCORING_CHUNK_ROWS, SCORING_DUPLICATE_IDS."""
        return ReadOptions(chunk_rows=self.options.chunk_rows, duplicate_ids=self.options.duplicate_ids)

    @property
    def predictions(self) -> ContainerClient:
        return self.service.get_container_client(PREDICTIONS_CONTAINER)

    def input_client(self, blob_name: str) -> BlobClient:
        return self.service.get_blob_client(SCORING_INPUT_CONTAINER, blob_name)

    @cached_property
    def queue(self) -> QueueClient:
        """The shard queue; messages Base64-encoded, as the Functions host expects them by default."""
        if self._queue is None:
            from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy

            self._queue = clients.queue_service(self.settings.data_lake).get_queue_client(
                self.options.queue,
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy(),
            )
            if not self.settings.data_lake.identity_based:
                with contextlib.suppress(ResourceExistsError):
                    self._queue.create_queue()
        return self._queue

    def write_drift(
        self, name: str, served: ServedModel, source: InputBlob, drift: DriftCounts, scored_at: str
    ) -> str:
        """The batch's drift report in monitoring/; returns its path in the container.

        Raises InputChanged first if the input was replaced: a stale version writes no drift report.
        """
        source.check_current()
        path = drift_path(served.model.name, scored_at[:10], name)
        report = {
            "input": {"blob": source.path, "etag": source.etag},
            "model": served.describe(),
            "scored_at": scored_at,
            **drift.summary(),
        }
        write_json(self.service.get_container_client(MONITORING_CONTAINER), path, report)
        if report["status"] in ("warn", "alert"):
            drifted = ", ".join(report["drifted_features"]) or "the scores only"
            log.warning(
                "drift %s for %s: dataset drifted %s (drift share %s); drifted: %s",
                report["status"],
                source.path,
                report["drifted"],
                report["drift_share"],
                drifted,
            )
        return path


def manifest_draft(
    *,
    source: InputBlob,
    input_sha256: str,
    served: ServedModel,
    paths: OutputPaths,
    tally: Tally,
    ignored: tuple[str, ...],
    drift: str,
    scored_at: str,
    started: float,
    shards: int,
    id_column: str,
    duplicate_ids: str,
) -> dict[str, Any]:
    """Everything `_manifest.json` says except the output's bytes and sha256 (added when it is final).

    `duplicate_ids` is the SCORING_DUPLICATE_IDS policy the input was scored with; the manifest
    names it only when the input has an id column (`id_column` is "row" when it has none).
    """
    duplicate_policy = duplicate_ids if id_column != "row" else None
    return {
        "format_version": MANIFEST_FORMAT,
        "input": {
            "blob": source.path,
            "etag": source.etag,
            "bytes": source.size,
            "last_modified": source.last_modified,
            "sha256": input_sha256,
        },
        "model": served.describe(),
        "output": {
            "predictions": f"{PREDICTIONS_CONTAINER}/{paths.predictions}",
            "rejected_rows": f"{PREDICTIONS_CONTAINER}/{paths.rejected_rows}"
            if tally.rows_rejected
            else None,
            "drift": f"{MONITORING_CONTAINER}/{drift}",
        },
        "rows": {
            "in": tally.rows_in,
            "scored": tally.rows_scored,
            "rejected": tally.rows_rejected,
            "blank_lines": tally.blank_lines,
        },
        "expected_positives": round(tally.expected_positives, 3),
        "to_call": tally.to_call,
        "unseen_categories": dict(tally.unseen),
        "ignored_columns": list(ignored[:40]),
        "first_rejections": [list(r) for r in tally.first_rejections[:5]],
        "duplicate_ids": duplicate_summary(tally, duplicate_policy),
        "mode": "fanout" if shards > 1 else "single",
        "shards": shards,
        "scored_at": scored_at,
        "finished_at": now_iso(),
        "durations_s": {
            **{k: round(v, 3) for k, v in sorted(tally.seconds.items())},
            "total": round(time.time() - started, 3),
        },
    }


def duplicate_summary(tally: Tally, policy: str | None) -> dict[str, Any]:
    """`duplicate_ids` of the manifest: the policy (None without an id column), count, first examples."""
    examples = [{"row": row, "first_row": first} for row, first in tally.first_duplicates[:5]]
    return {"policy": policy, "count": tally.duplicate_ids, "examples": examples}
