"""Blob and queue triggers for the local host, with the Functions host's delivery rules.

- **Blob trigger** (polling, as `LogsAndContainerScan` does): every blob matching the trigger's
  path is delivered once per version. The host remembers a delivery with a *receipt* blob in
  `azure-webjobs-hosts/blobreceipts/{host}/{function}/{etag}/{container}/{blob}`; so does this
  runner, in the same place of the host storage account. A failing invocation is retried up to 5
  times; then the blob is parked in the `webjobs-blobtrigger-poison` queue and receipted.
- **Names the path does not match** are treated as the deployed app (Event Grid) treats them; see
  `unmatched_reason`. Each is logged once per version and counted in the round's Deliveries.
- **Queue trigger**: messages are received with a visibility timeout and deleted when the
  invocation succeeds; a failed one becomes visible again, and after 5 deliveries it moves to
  `{queue}-poison`. Bodies are Base64, as the host expects by default.

The blob argument is built by the real SDK-type converter of
`azurefunctions-extensions-bindings-blob` from the same model-binding data the host sends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import (
    QueueClient,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from devstack.runner import HostedFunction
from lake.contract import BLOB_TRIGGER_POISON_QUEUE, DATA_LAKE, HOSTS_CONTAINER, poison_queue

log = logging.getLogger(__name__)

MAX_DEQUEUE_COUNT = 5  # the host's default for both triggers
HOST_ID = "local-host"


@dataclass(frozen=True)
class ModelBindingData:
    """What the host sends for an SDK-type blob binding: a reference to the blob, not its bytes."""

    content: str
    version: str = "1.0"
    source: str = "AzureStorageBlobs"
    content_type: str = "application/json"


def blob_client_argument(connection: str, container: str, blob_name: str) -> Any:
    """The `blob.BlobClient` argument, exactly as the Python worker builds it from the host's data."""
    from azurefunctions.extensions.base import Datum
    from azurefunctions.extensions.bindings.blob import BlobClient
    from azurefunctions.extensions.bindings.blob.blobClientConverter import BlobClientConverter

    content = json.dumps({"Connection": connection, "ContainerName": container, "BlobName": blob_name})
    datum = Datum(ModelBindingData(content), "model_binding_data")
    return BlobClientConverter.decode(datum, trigger_metadata=None, pytype=BlobClient)


def path_pattern(path: str) -> tuple[str, re.Pattern[str]]:
    """`container/{name}.csv` -> (container, a regex for the blob names it matches)."""
    container, _, blob_pattern = path.partition("/")
    parts = re.split(r"(\{[^}]+\})", blob_pattern)
    regex = "".join(".+" if part.startswith("{") else re.escape(part) for part in parts)
    return container, re.compile(f"^{regex}$")


def literal_suffix(path: str) -> str:
    """The fixed text after the last `{...}` of a trigger path (`.csv`): what Event Grid filters on."""
    return re.split(r"\{[^}]+\}", path.partition("/")[2])[-1]


def unmatched_reason(blob_name: str, suffix: str) -> str:
    """Why a blob that the trigger path does not match is delivered anyway, or why it is not.

    In Azure (source EventGrid, as deployed): the subscription filters subjects with
    `subjectEndsWith: .csv`, which Event Grid compares case-insensitively unless
    `isSubjectCaseSensitive` is set (azure-mgmt-eventgrid `EventSubscriptionFilter`: default False).
    The blob extension then enqueues every event it receives without matching the path
    (azure-sdk-for-net, Microsoft.Azure.WebJobs.Extensions.Storage.Blobs,
    `BlobsExtensionConfigProvider.ProcessEventsAsync`), and binding ignores a path that does not
    match (`BlobTriggerBinding.CreateBindingData`): so `Upper.CSV` *is* delivered and the function
    runs (it logs and leaves the blob: `lake.paths.input_name`), while `notes.txt`
    never produces an event. (Under LogsAndContainerScan polling the extension matches the path
    case-sensitively and skips both: `BlobTriggerExecutor`, `BindingTemplateSource.FromString`.)
    """
    if not blob_name.lower().endswith(suffix.lower()):
        return "different extension"  # never delivered
    return "extension case" if not blob_name.endswith(suffix) else "nothing before the extension"


def queue_client(service: QueueServiceClient, name: str) -> QueueClient:
    queue = service.get_queue_client(
        name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
    )
    with contextlib.suppress(ResourceExistsError):
        queue.create_queue()
    return queue


@dataclass
class Deliveries:
    """Counts of what a delivery round did, per function and outcome."""

    counts: Counter[str] = field(default_factory=Counter)

    def __bool__(self) -> bool:
        return bool(self.counts)

    def add(self, function: str, outcome: str) -> None:
        self.counts[f"{function}: {outcome}"] += 1


class TriggerHost:
    """Delivers new blobs and queue messages to the app's blob- and queue-triggered functions."""

    def __init__(
        self, blob_service: BlobServiceClient, queue_service: QueueServiceClient, connection: str = DATA_LAKE
    ) -> None:
        self.blob_service = blob_service
        self.queue_service = queue_service
        self.connection = connection
        self._failures: Counter[tuple[str, str, str]] = Counter()
        self._unmatched_seen: set[tuple[str, str, str]] = set()  # (function, blob, etag) logged once
        self.receipts: ContainerClient = blob_service.get_container_client(HOSTS_CONTAINER)
        with contextlib.suppress(ResourceExistsError):
            self.receipts.create_container()

    # ------------------------------------------------------------------------------ blobs

    def _receipt(self, function: str, etag: str, container: str, blob: str) -> str:
        return f"blobreceipts/{HOST_ID}/{function}/{etag.strip(chr(34))}/{container}/{blob}"

    def _unmatched(self, function: HostedFunction, blob: Any, suffix: str, deliveries: Deliveries) -> bool:
        """Log (once per version) a blob the path does not match; whether Azure would deliver it."""
        reason = unmatched_reason(blob.name, suffix)
        key = (function.name, blob.name, blob.etag)
        if key not in self._unmatched_seen:
            self._unmatched_seen.add(key)
            path = function.binding["path"]
            if reason != "different extension":
                log.warning(
                    "%s: %s does not match %s (%s); Azure delivers it anyway (Event Grid filters on the "
                    "end of the name, ignoring case) and the function leaves it",
                    function.name, blob.name, path, reason,
                )  # fmt: skip
                deliveries.add(function.name, f"delivered, name does not match the path ({reason})")
            else:
                log.warning(
                    "%s: %s does not match %s (different extension): never delivered, in Azure too; "
                    "rename it to end with %s",
                    function.name, blob.name, path, suffix,
                )  # fmt: skip
                deliveries.add(function.name, "not delivered (different extension)")
        return reason != "different extension"

    def deliver_blobs(self, function: HostedFunction, deliveries: Deliveries) -> None:
        container, pattern = path_pattern(function.binding["path"])
        suffix = literal_suffix(function.binding["path"])
        client = self.blob_service.get_container_client(container)
        try:
            listed = list(client.list_blobs())
        except ResourceNotFoundError:
            return
        blobs = [
            b for b in listed if pattern.match(b.name) or self._unmatched(function, b, suffix, deliveries)
        ]
        for blob in blobs:
            receipt = self.receipts.get_blob_client(
                self._receipt(function.name, blob.etag, container, blob.name)
            )
            if receipt.exists():
                continue
            key = (function.name, blob.etag, blob.name)
            try:
                function.user_function(blob_client_argument(self.connection, container, blob.name))
                outcome = "ok"
            except Exception:
                self._failures[key] += 1
                log.exception("%s failed for %s/%s (attempt %d)", function.name, container, blob.name,
                              self._failures[key])  # fmt: skip
                if self._failures[key] < MAX_DEQUEUE_COUNT:
                    deliveries.add(function.name, "failed, will retry")
                    continue
                poison = {"FunctionId": function.name, "BlobType": "BlockBlob", "ContainerName": container,
                          "BlobName": blob.name, "ETag": blob.etag}  # fmt: skip
                queue_client(self.queue_service, BLOB_TRIGGER_POISON_QUEUE).send_message(json.dumps(poison))
                outcome = "poisoned"
            with contextlib.suppress(ResourceExistsError):
                receipt.upload_blob(b"", overwrite=False)
            deliveries.add(function.name, outcome)

    # ------------------------------------------------------------------------------ queues

    def drain_queue(self, function: HostedFunction, deliveries: Deliveries, visibility_s: int = 300) -> None:
        queue = queue_client(self.queue_service, function.binding["queueName"])
        while True:
            messages = list(queue.receive_messages(max_messages=16, visibility_timeout=visibility_s))
            if not messages:
                return
            for message in messages:
                argument = QueueMessage(
                    id=message.id,
                    body=message.content.encode(),
                    dequeue_count=message.dequeue_count,
                    pop_receipt=message.pop_receipt,
                )
                try:
                    function.user_function(argument)
                    deliveries.add(function.name, "ok")
                except Exception:
                    log.exception("%s failed for message %s (delivery %d)", function.name, message.id,
                                  message.dequeue_count)  # fmt: skip
                    if (message.dequeue_count or 0) < MAX_DEQUEUE_COUNT:
                        queue.update_message(message, visibility_timeout=0)  # visible again: retried
                        deliveries.add(function.name, "failed, will retry")
                        continue
                    queue_client(
                        self.queue_service, poison_queue(function.binding["queueName"])
                    ).send_message(message.content)
                    deliveries.add(function.name, "poisoned")
                queue.delete_message(message)

    # ------------------------------------------------------------------------------ both

    def run_until_idle(self, functions: list[HostedFunction], max_rounds: int = 100) -> Deliveries:
        """Deliver new blobs and queue messages until a round finds nothing to do."""
        total = Deliveries()
        for _ in range(max_rounds):
            round_ = Deliveries()
            for function in functions:
                if function.trigger_type == "blobTrigger":
                    self.deliver_blobs(function, round_)
                elif function.trigger_type == "queueTrigger":
                    self.drain_queue(function, round_)
            if not round_:
                return total
            total.counts.update(round_.counts)
        return total
