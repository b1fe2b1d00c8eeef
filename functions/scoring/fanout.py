"""Scale-out: split a big input into shards, score them in parallel from a queue, assemble once.

1. **Plan** (the blob-triggered invocation): one streaming pass finds record boundaries (quote
   aware, so a line break inside a quoted field never splits a row), checks the whole file, and
   sends one queue message per shard: its byte range and the row number it starts at.
2. **Score** (queue-triggered, one shard per invocation, in parallel across instances): the
   shard's range is scored like a whole file; its predictions are staged as uncommitted blocks
   *on the final blob* under deterministic block ids, and a small result file records them.
3. **Assemble** (whichever shard finishes last): when every result is there, commit the blocks
   in input order (header first), then the manifest, through the same exactly-once protocol as
   a whole file. Duplicate messages re-stage identical blocks; two assemblers race harmlessly.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobClient, ContainerClient

from functions.blob_io import StagedBlobWriter, commit_blocks, read_text
from functions.scoring.context import Outcome, ScoringContext, manifest_draft, now_iso
from functions.scoring.encode import prediction_header, rejected_header
from functions.scoring.errors import FileRejected, InputChanged
from functions.scoring.header import parse_header
from functions.scoring.models import ServedModel
from functions.scoring.outputs import CSV_CONTENT_TYPE, finalize, output_state, publish, write_json
from functions.scoring.paths import OutputPaths, input_name
from functions.scoring.rejection import reject_file
from functions.scoring.scan import RecordScanner
from functions.scoring.scorer import Batch, LazySink, Tally, score_stream
from functions.scoring.single import check_rows, output_id_column
from functions.scoring.source import CheckedStream, InputBlob, download_chunks
from model.drift import DriftCounts

log = logging.getLogger(__name__)
TASK_FORMAT = 1
_RESULT = re.compile(r"^\d{5}\.json$")
MARKER = "fanout.json"


class BadMessageError(ValueError):
    """A queue message that is not a shard task (permanent: logged and dropped)."""


@dataclass(frozen=True)
class ShardTask:
    """One queue message: everything a worker needs to score its shard, and to assemble if last."""

    input: str  # blob name in scoring-input
    etag: str
    size: int
    version: str
    stage: str | None
    run: str
    shard: int
    shards: int
    start: int
    end: int
    first_row: int
    header_end: int
    scored_at: str
    input_sha256: str
    input_rows: int
    last_modified: str
    started: float
    format: int = TASK_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, body: str | bytes) -> ShardTask:
        try:
            data = json.loads(body)
            task = cls(**data)
        except (ValueError, TypeError) as error:
            raise BadMessageError(f"not a shard task: {error}: {str(body)[:200]!r}") from None
        if task.format != TASK_FORMAT or not 0 <= task.shard < task.shards or not task.start < task.end:
            raise BadMessageError(f"inconsistent shard task: {str(body)[:200]!r}")
        input_name(task.input)  # the same name rules as the trigger
        return task

    @property
    def name(self) -> str:
        return input_name(self.input)

    @property
    def paths(self) -> OutputPaths:
        return OutputPaths(self.name, self.version)

    def source(self, ctx: ScoringContext) -> InputBlob:
        return InputBlob(ctx.input_client(self.input), self.etag, self.size, self.last_modified)


def run_key(etag: str, version: str) -> str:
    """12 hex characters naming one fan-out (input version x model version): block ids and work folder."""
    return hashlib.sha256(f"{etag}|{version}".encode()).hexdigest()[:12]


def block_prefix(run: str, part: int) -> str:
    """Block ids of one blob must all have the same length: run + 5-digit part (0 = header)."""
    return f"{run}{part:05d}"


# --------------------------------------------------------------------------------------------- plan


def plan_fanout(
    ctx: ScoringContext, source: InputBlob, name: str, served: ServedModel, started: float
) -> Outcome:
    paths = OutputPaths(name, served.model.version)
    run = run_key(source.etag, served.model.version)
    marker = paths.shards(run) + MARKER
    if read_text(ctx.predictions, marker) is not None:
        return Outcome("duplicate", source.path, f"fan-out {run} is already planned")
    scanner = RecordScanner(ctx.options.max_record_bytes, cut_every=ctx.options.shard_bytes)
    stream = CheckedStream(download_chunks(source), scanner)
    try:
        header_raw = stream.peek_header()
        parse_header(header_raw, served.model.schema)  # refuse a bad header before any message goes out
        stream.drain()
    finally:
        stream.close()
    rows = scanner.records - 1
    assert scanner.header_end is not None
    if rows <= 0:
        raise FileRejected("header_only", "the file has a header but no rows")
    cuts = [cut for cut in scanner.cuts if cut.offset < source.size]
    starts = [scanner.header_end, *(cut.offset for cut in cuts)]
    first_rows = [1, *(cut.first_row for cut in cuts)]
    ends = [*starts[1:], source.size]
    scored_at = now_iso()
    tasks = [
        ShardTask(
            input=source.client.blob_name,
            etag=source.etag,
            size=source.size,
            version=served.model.version,
            stage=served.stage,
            run=run,
            shard=index,
            shards=len(starts),
            start=start,
            end=end,
            first_row=first_row,
            header_end=scanner.header_end,
            scored_at=scored_at,
            input_sha256=stream.sha256.hexdigest(),
            input_rows=rows,
            last_modified=source.last_modified,
            started=started,
        )
        for index, (start, end, first_row) in enumerate(zip(starts, ends, first_rows, strict=True))
    ]
    for task in tasks:
        ctx.queue.send_message(task.to_json())
    write_json(ctx.predictions, marker, {"run": run, "shards": len(tasks), "planned_at": scored_at,
                                         "input": source.path, "etag": source.etag})  # fmt: skip
    detail = f"{rows:,} rows in {len(tasks)} shards of ~{ctx.options.shard_bytes:,} bytes (run {run})"
    log.info("fanned out %s: %s", source.path, detail)
    return Outcome("fanned_out", source.path, detail)


# --------------------------------------------------------------------------------------------- score


def score_shard(ctx: ScoringContext, task: ShardTask) -> Outcome:
    """Score one shard (unless a duplicate delivery already did), then assemble if it was the last."""
    paths = task.paths
    if output_state(ctx.predictions, paths, task.etag) == "complete":
        return Outcome("duplicate", task.input, f"shard {task.shard}: the output is already complete")
    result_path = paths.shard_result(task.run, task.shard)
    if read_text(ctx.predictions, result_path) is None:
        write_json(ctx.predictions, result_path, _score_range(ctx, task))
    return assemble_if_complete(ctx, task)


def _score_range(ctx: ScoringContext, task: ShardTask) -> dict[str, Any]:
    served = ctx.models.version(task.version, task.stage)
    source = task.source(ctx)
    container = ctx.predictions
    predictions = StagedBlobWriter(
        container.get_blob_client(task.paths.predictions), block_prefix=block_prefix(task.run, task.shard + 1)
    )
    rejected = LazySink(
        lambda: StagedBlobWriter(
            container.get_blob_client(task.paths.rejected_rows),
            block_prefix=block_prefix(task.run, task.shard + 1),
        )
    )
    stream = None
    try:
        header_raw = b"".join(download_chunks(source, 0, task.header_end))
        header = parse_header(header_raw, served.model.schema)
        id_column = output_id_column(header, served)
        stream = CheckedStream(download_chunks(source, task.start, task.end), None, prefix=header_raw)
        drift = DriftCounts(served.reference)
        batch = Batch(served.model, task.scored_at, id_column)
        tally = score_stream(
            stream, header, batch, predictions, rejected, drift, ctx.options.chunk_rows, task.first_row
        )
        if predictions.bytes_written:  # a shard of rejected rows only stages nothing (no empty block)
            predictions.stage_rest()
        if rejected.writer is not None:
            rejected.writer.stage_rest()
    except FileRejected as rejection:
        predictions.abort()
        return {"status": "rejected", "code": rejection.code, "message": rejection.message,
                "details": rejection.details}  # fmt: skip
    except InputChanged as change:
        predictions.abort()
        return {"status": "superseded", "message": str(change)}
    finally:
        if stream is not None:
            stream.close()
    return {
        "status": "ok",
        "id_column": id_column,
        "ignored": list(header.ignored),
        "blocks": predictions.block_ids,
        "rejected_blocks": rejected.writer.block_ids if rejected.writer is not None else [],
        "tally": tally.to_dict(),
        "drift": drift.to_dict(),
    }


# --------------------------------------------------------------------------------------------- assemble


def _results(container: ContainerClient, task: ShardTask) -> list[dict[str, Any]] | None:
    """Every shard's result in order, or None while some are missing."""
    prefix = task.paths.shards(task.run)
    done = [
        b.name for b in container.list_blobs(name_starts_with=prefix) if _RESULT.match(b.name[len(prefix) :])
    ]
    if len(done) < task.shards:
        return None
    results = []
    for index in range(task.shards):
        text = read_text(container, task.paths.shard_result(task.run, index))
        if text is None:  # another assembler finished and tidied up meanwhile
            return None
        results.append(json.loads(text))
    return results


def _tidy(container: ContainerClient, task: ShardTask) -> None:
    for blob in list(container.list_blobs(name_starts_with=task.paths.shards(task.run))):
        with contextlib.suppress(ResourceNotFoundError):
            container.delete_blob(blob.name)


def assemble_if_complete(ctx: ScoringContext, task: ShardTask) -> Outcome:
    container = ctx.predictions
    results = _results(container, task)
    if results is None:
        state = output_state(container, task.paths, task.etag)
        if state == "complete":
            return Outcome("duplicate", task.input, f"shard {task.shard}: assembled by another shard")
        if state == "committed":  # a crash between commit and manifest: finish the job
            return Outcome(
                "recovered", task.input, "manifest written", finalize(container, task.paths, task.etag)
            )
        return Outcome("shard_scored", task.input, f"shard {task.shard + 1} of {task.shards} scored")
    source = task.source(ctx)
    served = ctx.models.version(task.version, task.stage)
    failed = next((r for r in results if r["status"] != "ok"), None)
    if failed is not None and failed["status"] == "superseded":
        _tidy(container, task)
        return Outcome("superseded", task.input, failed["message"])
    tally = Tally()
    drift = DriftCounts(served.reference)
    for result in results:
        if result["status"] == "ok":
            tally.merge(Tally.from_dict(result["tally"]))
            drift.merge(DriftCounts.from_dict(served.reference, result["drift"]))
    try:
        if failed is not None:
            raise FileRejected(failed["code"], failed["message"], **failed["details"])
        check_rows(tally)
    except FileRejected as rejection:
        reject_file(ctx.service, source, task.name, rejection, served.describe())
        _tidy(container, task)
        return Outcome("rejected", task.input, f"{rejection.code}: {rejection.message}")
    if tally.rows_in != task.input_rows:
        log.warning(
            "%s: shards read %d rows, the plan counted %d", task.input, tally.rows_in, task.input_rows
        )
    try:
        outcome = _publish(ctx, task, served, results, tally, drift)
    except InputChanged as change:
        outcome = Outcome("superseded", task.input, str(change))
    _tidy(container, task)
    return outcome


def _stage_header(blob: BlobClient, run: str, header: bytes) -> list[str]:
    """Stage a CSV header as part 0 of a fanned-out blob; its block ids (the shards' come after)."""
    writer = StagedBlobWriter(blob, block_prefix=block_prefix(run, 0))
    writer.write(header)
    writer.stage_rest()
    return writer.block_ids


def _publish(
    ctx: ScoringContext,
    task: ShardTask,
    served: ServedModel,
    results: list[dict[str, Any]],
    tally: Tally,
    drift: DriftCounts,
) -> Outcome:
    container = ctx.predictions
    paths = task.paths
    source = task.source(ctx)
    id_column = results[0]["id_column"]
    started = time.perf_counter()
    blocks = _stage_header(
        container.get_blob_client(paths.predictions), task.run, prediction_header(id_column)
    )
    blocks += [b for r in results for b in r["blocks"]]
    rejected_blocks = [b for r in results for b in r["rejected_blocks"]]
    if rejected_blocks:
        header = _stage_header(container.get_blob_client(paths.rejected_rows), task.run, rejected_header())
        rejected_blocks = header + rejected_blocks
    tally.seconds["publish"] += time.perf_counter() - started
    source.check_current()  # a stale version writes no drift report either
    drift_at = ctx.write_drift(task.name, served, source, drift, task.scored_at)
    draft = manifest_draft(
        source=source,
        input_sha256=task.input_sha256,
        served=served,
        paths=paths,
        tally=tally,
        ignored=tuple(results[0]["ignored"]),
        drift=drift_at,
        scored_at=task.scored_at,
        started=task.started,
        shards=task.shards,
    )

    def commit_predictions(metadata: dict[str, str], conditions: dict[str, Any]) -> None:
        commit_blocks(
            container.get_blob_client(paths.predictions), blocks, CSV_CONTENT_TYPE, metadata, **conditions
        )

    def commit_rejected(metadata: dict[str, str], conditions: dict[str, Any]) -> None:
        commit_blocks(container.get_blob_client(paths.rejected_rows), rejected_blocks, CSV_CONTENT_TYPE,
                      metadata, **conditions)  # fmt: skip

    committed = publish(
        container,
        paths,
        task.etag,
        draft,
        commit_predictions,
        commit_rejected if rejected_blocks else None,
        still_current=source.check_current,
    )
    manifest = finalize(container, paths, task.etag)
    status = "scored" if committed else "duplicate"
    return Outcome(
        status, task.input, f"assembled {task.shards} shards: {tally.rows_scored:,} rows scored", manifest
    )
