"""Batch scoring as the functions run it: one input blob, or one shard message, in; an Outcome out.

What is permanent ends the invocation cleanly, recorded where an operator looks: a file that
cannot be scored goes to `rejected/` with its reason; a malformed message or file name is logged
as an error. What may pass (storage or network errors, no model at the stage yet) raises, so
the host retries and finally parks the trigger in its poison queue.
"""

from __future__ import annotations

import logging
import time

from azure.storage.blob import BlobClient

from functions.scoring.context import ScoringContext
from functions.scoring.errors import InputChanged
from functions.scoring.fanout import score_shard
from functions.scoring.outcome import Outcome, Status
from functions.scoring.outputs import OutputState, finalize, output_state
from functions.scoring.plan import plan_fanout
from functions.scoring.rejection import already_rejected, reject_file
from functions.scoring.shards import BadMessageError, ShardTask
from functions.scoring.single import score_whole
from functions.scoring.source import InputBlob
from functions.telemetry.emit import emit
from functions.telemetry.events import BATCH_SCORED
from lake.contract import REJECTED_CONTAINER
from lake.paths import InvalidNameError, OutputPaths, input_name
from model.csvinput.errors import FileRejected
from model.csvinput.scorer import check_size

log = logging.getLogger(__name__)


def record(outcome: Outcome) -> Outcome:
    """Emit `batch_scored` for an output this invocation published (one event per input version)."""
    if outcome.status is not Status.SCORED or outcome.manifest is None:
        return outcome
    manifest, rows = outcome.manifest, outcome.manifest["rows"]
    model = manifest["model"]
    emit(
        log,
        BATCH_SCORED,
        "scored %s: %d rows, %d rejected, with %s v%s",
        outcome.input,
        rows["scored"],
        rows["rejected"],
        model["name"],
        model["version"],
        input=outcome.input,
        model_name=model["name"],
        model_version=model["version"],
        model_stage=model["stage"],
        status=outcome.status,
        rows_in=rows["in"],
        rows_scored=rows["scored"],
        rows_rejected=rows["rejected"],
        seconds=manifest["durations_s"]["total"],
        to_call=manifest["to_call"],
        **(outcome.monitoring or {}),
    )
    return outcome


def score_input(ctx: ScoringContext, client: BlobClient) -> Outcome:
    """Score one input blob with the model at MODEL_STAGE, exactly once per input version."""
    started = time.time()
    path = f"{client.container_name}/{client.blob_name}"
    try:
        name = input_name(client.blob_name)
    except InvalidNameError as error:
        log.error("not scoring %s: %s (rename the file; it was left where it is)", path, error)
        return Outcome(Status.IGNORED, path, str(error))
    try:
        source = InputBlob.current(client)
        served = ctx.models.current()
        if already_rejected(ctx.service, name, source.etag):
            return Outcome(Status.DUPLICATE, path, "this version of the file was rejected before")
        paths = OutputPaths(name, served.model.version)
        state = output_state(ctx.predictions, paths, source.etag)
        if state == OutputState.COMPLETE:
            return Outcome(Status.DUPLICATE, path, f"already scored with version {served.model.version}")
        if state == OutputState.COMMITTED:  # a crash between committing the output and writing the manifest
            manifest = finalize(ctx.predictions, paths, source.etag)
            return Outcome(Status.RECOVERED, path, "the manifest of a committed output was written", manifest)
        try:
            check_size(source.size, ctx.options.max_bytes)
            if source.size > ctx.options.fanout_bytes:
                return plan_fanout(ctx, source, name, served, started)
            return record(score_whole(ctx, source, name, served, started))
        except FileRejected as rejection:
            where = reject_file(ctx.service, source, name, rejection, served.describe())
            detail = f"{rejection.code}: {rejection.message} -> {REJECTED_CONTAINER}/{where.folder}"
            return Outcome(Status.REJECTED, path, detail)
    except InputChanged as change:
        log.info("not scoring %s: %s", path, change)
        return Outcome(Status.SUPERSEDED, path, str(change))


def score_shard_message(ctx: ScoringContext, body: str | bytes) -> Outcome:
    """Score the shard a queue message describes; assemble the output if it was the last one."""
    try:
        task = ShardTask.from_json(body)
    except (BadMessageError, InvalidNameError) as error:
        log.error("dropping a message from the shard queue: %s", error)
        return Outcome(Status.IGNORED, "?", str(error))
    try:
        return record(score_shard(ctx, task))
    except InputChanged as change:
        return Outcome(Status.SUPERSEDED, task.input, str(change))
