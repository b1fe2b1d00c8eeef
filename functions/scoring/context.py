"""What every scoring step shares: settings, the storage clients, the model source, and the
pieces of output common to a whole file and a fanned-out one (manifest draft, monitoring documents)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient

from functions.blob_io import ensure_container, write_html, write_json
from functions.scoring.models import ModelSource, ServedModel
from functions.scoring.outputs import MANIFEST_FORMAT
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
from lake.paths import OutputPaths, drift_page_path, drift_path, estimate_path
from model.csvinput.run import ReadOptions
from model.csvinput.scorer import Tally
from model.monitoring.batch import BatchCounts
from model.monitoring.batch_page import render_batch_page
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

    def write_monitoring(
        self,
        name: str,
        served: ServedModel,
        source: InputBlob,
        counts: BatchCounts,
        tally: Tally,
        scored_at: str,
    ) -> BatchMonitoring:
        """The batch's drift report and label-free estimate in monitoring/, before its output is published.

        Raises InputChanged first if the input was replaced: a stale version writes no report.
        The estimate is recorded now, before any outcome exists, so that it can later be set
        beside the realised figures (model.monitoring.compare).
        """
        source.check_current()
        monitoring = self.service.get_container_client(MONITORING_CONTAINER)
        model, day = served.model.name, scored_at[:10]
        context = {
            "input": {"blob": source.path, "etag": source.etag},
            "model": served.describe(),
            "scored_at": scored_at,
        }
        report = context | counts.drift_report(self.settings.monitoring.drift)
        drift_at = drift_path(model, day, name)
        write_json(monitoring, drift_at, report)
        # the page beside it draws reference vs batch from the counts (never the rows)
        write_html(
            monitoring,
            drift_page_path(model, day, name),
            render_batch_page(served.reference, counts.drift, report),
        )
        batch = {
            "rows_in": tally.rows_in,
            "rows_scored": tally.rows_scored,
            "rows_rejected": tally.rows_rejected,
        }
        estimate = counts.estimate_record(context | {"batch": batch})
        estimate_at = None
        if estimate is not None:
            estimate_at = estimate_path(model, day, name)
            write_json(monitoring, estimate_at, estimate)
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
        return BatchMonitoring(drift_at, estimate_at, batch_summary(report, estimate))


@dataclass(frozen=True)
class BatchMonitoring:
    """Where a batch's monitoring documents went, and the figures its telemetry event carries."""

    drift: str
    estimate: str | None
    summary: dict[str, Any]


def batch_summary(report: dict[str, Any], estimate: dict[str, Any] | None) -> dict[str, Any]:
    """The drift verdict and the label-free estimate in the dimensions of the batch_scored event."""
    expected = estimate or {}
    return {
        "drift_status": report["status"],
        "dataset_drifted": report["drifted"],
        "drift_share": report["drift_share"],
        "drifted_features": report["drifted_features"],
        "scores_drifted": bool(report.get("scores", {}).get("drifted")),
        "expected_subscribers": (expected.get("subscribers") or {}).get("expected"),
        "expected_roc_auc": (expected.get("roc_auc") or {}).get("expected"),
    }


def manifest_draft(
    *,
    source: InputBlob,
    input_sha256: str,
    served: ServedModel,
    paths: OutputPaths,
    tally: Tally,
    ignored: tuple[str, ...],
    monitoring: BatchMonitoring,
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
            "drift": f"{MONITORING_CONTAINER}/{monitoring.drift}",
            "estimate": f"{MONITORING_CONTAINER}/{monitoring.estimate}" if monitoring.estimate else None,
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
