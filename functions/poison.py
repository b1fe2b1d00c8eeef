"""The poison queues: what the Functions host parked after its last attempt, and how to re-drive it.

Two queues of the data lake hold messages the host gave up on (lake/contract.py):
- `webjobs-blobtrigger-poison`: a scoring input whose invocation failed 5 times; the message names
  the container and blob. Re-driving scores the blob now, exactly as the trigger would (what is
  already complete is not redone); the message is removed once the blob was judged.
- `{SCORING_QUEUE}-poison`: a fan-out shard that failed 5 times. Re-driving puts the same message
  back on the shard queue for the app's workers (finished shards are reused).

Bodies are read in either encoding the host may have used (Base64, its default, or plain JSON).
Nothing is removed without being re-driven, except by `clear`, which names what it removes.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueMessage

from functions.settings import Settings
from lake import clients
from lake.contract import BLOB_TRIGGER_POISON_QUEUE, SCORING_INPUT_CONTAINER, poison_queue

if TYPE_CHECKING:
    from functions.scoring.context import ScoringContext

PEEK_LIMIT = 32  # what the queue service returns per peek


@dataclass(frozen=True)
class Parked:
    """One poisoned message: where it is, what it says, how many times the host tried it."""

    queue: str
    message_id: str
    inserted_on: str | None
    dequeue_count: int | None
    body: dict[str, Any] | None  # None: not JSON in either encoding (shown raw)
    raw: str

    def describe(self) -> str:
        if self.body and "BlobName" in self.body:
            what = f"{self.body.get('ContainerName')}/{self.body['BlobName']} (etag {self.body.get('ETag')})"
        elif self.body:
            what = ", ".join(f"{k}={v}" for k, v in sorted(self.body.items()))[:200]
        else:
            what = self.raw[:200]
        return (
            f"{self.queue} {self.message_id} tried {self.dequeue_count}x, parked {self.inserted_on}: {what}"
        )


def decode(raw: str) -> dict[str, Any] | None:
    """A poison message body as JSON, whether the host Base64-encoded it or not."""
    for text in (raw, _unbase64(raw)):
        if text is None:
            continue
        try:
            document = json.loads(text)
        except ValueError:
            continue
        if isinstance(document, dict):
            return document
    return None


def _unbase64(raw: str) -> str | None:
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def poison_queues(settings: Settings) -> tuple[str, ...]:
    return (BLOB_TRIGGER_POISON_QUEUE, poison_queue(settings.scoring.queue))


def _queue(settings: Settings, name: str) -> QueueClient:
    return clients.queue_service(settings.data_lake).get_queue_client(name)


def _parked(name: str, message: QueueMessage) -> Parked:
    raw = str(message.content)
    inserted = message.inserted_on.isoformat() if message.inserted_on else None
    return Parked(name, message.id, inserted, message.dequeue_count, decode(raw), raw)


def peek(settings: Settings, queue: str | None = None) -> list[Parked]:
    """Up to PEEK_LIMIT parked messages of each poison queue (or of `queue`), oldest first."""
    found = []
    for name in (queue,) if queue else poison_queues(settings):
        try:
            messages = _queue(settings, name).peek_messages(max_messages=PEEK_LIMIT)
        except ResourceNotFoundError:
            continue  # never created: nothing was ever poisoned
        found.extend(_parked(name, m) for m in messages)
    return found


def redrive(settings: Settings, queue: str | None = None, limit: int = 100) -> list[str]:
    """Re-drive up to `limit` parked messages; one line per message saying what happened."""
    lines = []
    context = _Context(settings)
    for name in (queue,) if queue else poison_queues(settings):
        client = _queue(settings, name)
        try:
            messages = list(client.receive_messages(max_messages=PEEK_LIMIT, visibility_timeout=300))
        except ResourceNotFoundError:
            continue
        for message in messages[: max(0, limit - len(lines))]:
            parked = _parked(name, message)
            done, line = _redrive_one(context, parked)
            if done:
                client.delete_message(message)
            lines.append(("re-driven: " if done else "kept: ") + line)
    return lines


class _Context:
    """The scoring context, made once per re-drive and only when a message needs it: its shard queue
    is the one place that knows how shard messages are encoded (Base64, as the host expects)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._scoring: ScoringContext | None = None

    @property
    def scoring(self) -> ScoringContext:
        if self._scoring is None:
            from functions.scoring.context import ScoringContext

            self._scoring = ScoringContext(self.settings)
        return self._scoring


def _redrive_one(context: _Context, parked: Parked) -> tuple[bool, str]:
    body = parked.body or {}
    if parked.queue == BLOB_TRIGGER_POISON_QUEUE:
        if body.get("ContainerName") != SCORING_INPUT_CONTAINER or not body.get("BlobName"):
            return False, f"{parked.describe()}: not a scoring input; left for a person"
        from functions.scoring.job import score_input
        from functions.scoring.outcome import Status

        scoring = context.scoring
        outcome = score_input(scoring, scoring.input_client(str(body["BlobName"])))
        judged = outcome.ok or outcome.status is Status.REJECTED  # rejected/ holds it with error.json
        return judged, f"{parked.describe()} -> {outcome.status}: {outcome.detail}"
    context.scoring.queue.send_message(json.dumps(body) if parked.body is not None else parked.raw)
    return True, f"{parked.describe()} -> back on {context.settings.scoring.queue}"


def clear(settings: Settings, queue: str) -> int:
    """Delete every message of one poison queue (after they were read and dealt with); how many."""
    if queue not in poison_queues(settings):
        raise ValueError(f"{queue!r} is not a poison queue: {', '.join(poison_queues(settings))}")
    client = _queue(settings, queue)
    removed = 0
    try:
        while batch := list(client.receive_messages(max_messages=PEEK_LIMIT, visibility_timeout=60)):
            for message in batch:
                client.delete_message(message)
                removed += 1
    except ResourceNotFoundError:
        return 0
    return removed
