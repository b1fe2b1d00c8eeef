"""Scale-out: split a big input into shards, score them in parallel from a queue, assemble once.

1. **Plan** (the blob-triggered invocation, `functions/scoring/plan.py`): one streaming pass finds
   record boundaries (quote aware, so a line break inside a quoted field never splits a row),
   checks the whole file, and sends one queue message per shard: its byte range and first row.
2. **Score** (queue-triggered, one shard per invocation, in parallel across instances): the
   shard's range is scored like a whole file; its predictions are staged as uncommitted blocks
   *on the final blob* under deterministic block ids, and a small result file records them.
3. **Assemble** (whichever shard finishes last): when every result is there, commit the blocks
   in input order (header first), then the manifest, through the same exactly-once protocol as
   a whole file. Duplicate messages re-stage identical blocks; two assemblers race harmlessly.

Repeated ids across shards (SCORING_DUPLICATE_IDS): every shard writes the first occurrence of
each id it scored to an ids file; the assembler merges them. `keep` counts what it finds,
`reject_file` refuses the file, and `reject_rows` has the shards that hold later occurrences
scored again (a second message each), their index seeded with the ids of earlier shards, so the
rows rejected are exactly those a whole-file run rejects (docs/scoring.md, "Duplicate ids").
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import time
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobClient, ContainerClient

from functions.blob_io import StagedBlobWriter, read_text, write_json
from functions.scoring.context import ScoringContext, manifest_draft
from functions.scoring.errors import InputChanged
from functions.scoring.models import ServedModel
from functions.scoring.outcome import Outcome, Status
from functions.scoring.outputs import OutputState, StagedBlocks, finalize, output_state, publish
from functions.scoring.rejection import reject_file
from functions.scoring.shards import (
    MAX_CROSS_DUPLICATES,
    RESCORE,
    CrossShard,
    ShardStatus,
    ShardTask,
    block_prefix,
    cross_shard,
    read_seed,
    write_ids,
    write_seed,
)
from functions.scoring.source import download_chunks
from model.csvinput.duplicates import IdIndex
from model.csvinput.encode import prediction_header, rejected_header
from model.csvinput.errors import FileRejected
from model.csvinput.header import parse_header
from model.csvinput.scorer import (
    SAMPLE_REJECTIONS,
    Batch,
    LazySink,
    Tally,
    check_rows,
    duplicate_rejection,
    id_column_for,
    score_stream,
)
from model.csvinput.stream import CheckedStream
from model.monitoring.batch import BatchCounts

log = logging.getLogger(__name__)
_RESULT = re.compile(r"^\d{5}\.json$")
_RESCORED = re.compile(r"^(\d{5})\.rescored\.json$")


# --------------------------------------------------------------------------------------------- score


def score_shard(ctx: ScoringContext, task: ShardTask) -> Outcome:
    """Score one shard (unless a duplicate delivery already did), then assemble if it was the last."""
    paths = task.paths
    if output_state(ctx.predictions, paths, task.etag) == OutputState.COMPLETE:
        return Outcome(Status.DUPLICATE, task.input, f"shard {task.shard}: the output is already complete")
    result_path = task.result_path()
    if read_text(ctx.predictions, result_path) is None:
        write_json(ctx.predictions, result_path, _score_range(ctx, task))
    return assemble_if_complete(ctx, task)


def _score_range(ctx: ScoringContext, task: ShardTask) -> dict[str, Any]:
    served = ctx.models.version(task.version, task.stage)
    source = task.source(ctx)
    container = ctx.predictions
    predictions = StagedBlobWriter(
        container.get_blob_client(task.paths.predictions), block_prefix=block_prefix(task.run, task.part)
    )
    rejected = LazySink(
        lambda: StagedBlobWriter(
            container.get_blob_client(task.paths.rejected_rows),
            block_prefix=block_prefix(task.run, task.part),
        )
    )
    stream = None
    ids = IdIndex()
    try:
        header_raw = b"".join(download_chunks(source, 0, task.header_end))
        header = parse_header(header_raw, served.model.schema)
        id_column = id_column_for(header, served.model.schema)
        if task.rescore:  # ids of earlier shards that repeat here: rejected as a whole file rejects them
            seed = read_seed(container, task.work_file(task.shard, "seed"))
            ids.add(seed["h"], seed["r"])
        stream = CheckedStream(download_chunks(source, task.start, task.end), None, prefix=header_raw)
        counts = BatchCounts(served.reference, served.model.threshold)
        # reject_file is decided by the assembler, over all shards: a shard only counts.
        policy = "keep" if task.duplicate_ids == "reject_file" else task.duplicate_ids
        batch = Batch(served.model, task.scored_at, id_column, policy)
        tally = score_stream(
            stream,
            header,
            batch,
            predictions,
            rejected,
            counts,
            ctx.options.chunk_rows,
            task.first_row,
            ids=ids,
        )
        if predictions.bytes_written:  # a shard of rejected rows only stages nothing (no empty block)
            predictions.stage_rest()
        if rejected.writer is not None:
            rejected.writer.stage_rest()
    except FileRejected as rejection:
        _abort(predictions, rejected.writer)
        return {"status": ShardStatus.REJECTED, "code": rejection.code, "message": rejection.message,
                "details": rejection.details}  # fmt: skip
    except InputChanged as change:
        _abort(predictions, rejected.writer)
        return {"status": ShardStatus.SUPERSEDED, "message": str(change)}
    finally:
        if stream is not None:
            stream.close()
    ids_file = None
    if batch.tracks_ids and not task.rescore and task.shards > 1:
        ids_file = write_ids(container, task.work_file(task.shard, "ids"), ids.to_array())
    return {
        "status": ShardStatus.OK,
        "id_column": id_column,
        "ignored": list(header.ignored),
        "blocks": predictions.block_ids,
        "rejected_blocks": rejected.writer.block_ids if rejected.writer is not None else [],
        "tally": tally.to_dict(),
        "counts": counts.to_dict(),
        "first_row": task.first_row,
        "start": task.start,
        "end": task.end,
        "ids": ids_file,
    }


def _abort(*writers: StagedBlobWriter | None) -> None:
    """Stop every writer of a shard that will not be committed (their staging threads too)."""
    for writer in writers:
        if writer is not None:
            writer.abort()


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
        text = read_text(container, task.paths.shard_file(task.run, index))
        if text is None:  # another assembler finished and tidied up meanwhile
            return None
        results.append(json.loads(text))
    return results


def _tidy(container: ContainerClient, task: ShardTask) -> None:
    for blob in list(container.list_blobs(name_starts_with=task.paths.shards(task.run))):
        with contextlib.suppress(ResourceNotFoundError):
            container.delete_blob(blob.name)


def _rescore_task(task: ShardTask, shard: int, result: dict[str, Any]) -> ShardTask:
    return dataclasses.replace(
        task,
        shard=shard,
        start=result["start"],
        end=result["end"],
        first_row=result["first_row"],
        rescore=True,
    )


def _second_pass(
    ctx: ScoringContext, task: ShardTask, results: list[dict[str, Any]]
) -> tuple[dict[int, dict[str, Any]], CrossShard | None, Outcome | None]:
    """Ids repeated across shards: (re-scored results by shard, what the merge found, or an Outcome to stop).

    With reject_rows, the shards that hold later occurrences are scored again with those ids
    seeded as already seen; the last of them assembles. Everything here is idempotent: a crash
    anywhere is finished by the redelivered message.
    """
    container = ctx.predictions
    marker = read_text(container, task.paths.shards(task.run) + RESCORE)
    if marker is None:
        wanted = {first for r in results for _, first in r["tally"].get("first_duplicates", [])}
        cross = cross_shard(container, results, SAMPLE_REJECTIONS, wanted)
        if task.duplicate_ids != "reject_rows" or not cross.count:
            return {}, cross, None
        if cross.count > MAX_CROSS_DUPLICATES:
            row, first = cross.examples[0]
            raise FileRejected(
                "duplicate_ids",
                f"{cross.count:,} rows repeat an id of an earlier shard (first: row {row} repeats row "
                f"{first}), more than the {MAX_CROSS_DUPLICATES:,} that SCORING_DUPLICATE_IDS=reject_rows "
                "re-scores in a fanned-out file: remove the repeated rows, or choose keep",
                row=row,
                first_row=first,
                rows=cross.count,
            )
        for shard, seed in cross.seeds.items():
            write_seed(container, task.work_file(shard, "seed"), seed)
        affected = sorted(cross.seeds)
        write_json(
            container, task.paths.shards(task.run) + RESCORE, {"shards": affected, "rows": cross.count}
        )
    else:
        affected = json.loads(marker)["shards"]
    rescored: dict[int, dict[str, Any]] = {}
    prefix = task.paths.shards(task.run)
    for blob in container.list_blobs(name_starts_with=prefix):
        match = _RESCORED.match(blob.name[len(prefix) :])
        if match and (text := read_text(container, blob.name)) is not None:
            rescored[int(match.group(1))] = json.loads(text)
    missing = [shard for shard in affected if shard not in rescored]
    if not missing:
        return rescored, None, None
    if marker is None or not task.rescore:  # first time here, or a redelivery after a crash: (re)send
        for shard in missing:
            ctx.queue.send_message(_rescore_task(task, shard, results[shard]).to_json())
    detail = (
        f"{len(missing)} of {len(affected)} shards to score again without ids repeated from earlier shards"
    )
    return rescored, None, Outcome(Status.SHARD_SCORED, task.input, detail)


def assemble_if_complete(ctx: ScoringContext, task: ShardTask) -> Outcome:
    container = ctx.predictions
    results = _results(container, task)
    if results is None:
        state = output_state(container, task.paths, task.etag)
        if state == OutputState.COMPLETE:
            return Outcome(Status.DUPLICATE, task.input, f"shard {task.shard}: assembled by another shard")
        if state == OutputState.COMMITTED:  # a crash between commit and manifest: finish the job
            return Outcome(
                Status.RECOVERED, task.input, "manifest written", finalize(container, task.paths, task.etag)
            )
        return Outcome(Status.SHARD_SCORED, task.input, f"shard {task.shard + 1} of {task.shards} scored")
    source = task.source(ctx)
    served = ctx.models.version(task.version, task.stage)
    try:
        failed = next((r for r in results if r["status"] != ShardStatus.OK), None)
        cross = None
        if failed is None and any(r.get("ids") for r in results):
            rescored, cross, waiting = _second_pass(ctx, task, results)
            if waiting is not None:
                return waiting
            results = [rescored.get(shard, result) for shard, result in enumerate(results)]
            failed = next((r for r in results if r["status"] != ShardStatus.OK), None)
        if failed is not None and failed["status"] == ShardStatus.SUPERSEDED:
            _tidy(container, task)
            return Outcome(Status.SUPERSEDED, task.input, failed["message"])
        if failed is not None:
            raise FileRejected(failed["code"], failed["message"], **failed["details"])
        tally, counts = _merged(results, served)
        if cross is not None:  # keep / reject_file: what the shards found, and what repeats across them
            tally.first_duplicates = cross.resolve(tally.first_duplicates)
            tally.add_duplicates(cross.count, cross.examples)
        if task.duplicate_ids == "reject_file" and tally.duplicate_ids:
            raise duplicate_rejection(results[0]["id_column"], *tally.first_duplicates[0])
        check_rows(tally)
    except FileRejected as rejection:
        reject_file(ctx.service, source, task.name, rejection, served.describe())
        _tidy(container, task)
        return Outcome(Status.REJECTED, task.input, f"{rejection.code}: {rejection.message}")
    if tally.rows_in != task.input_rows:
        log.warning(
            "%s: shards read %d rows, the plan counted %d", task.input, tally.rows_in, task.input_rows
        )
    try:
        outcome = _publish(ctx, task, served, results, tally, counts)
    except InputChanged as change:
        outcome = Outcome(Status.SUPERSEDED, task.input, str(change))
    _tidy(container, task)
    return outcome


def _merged(results: list[dict[str, Any]], served: ServedModel) -> tuple[Tally, BatchCounts]:
    tally = Tally()
    counts = BatchCounts(served.reference, served.model.threshold)
    for result in results:
        tally.merge(Tally.from_dict(result["tally"]))
        # a result of the version before the histogram holds its drift counts alone
        shard = result.get("counts") or {"drift": result["drift"]}
        counts.merge(BatchCounts.from_dict(served.reference, served.model.threshold, shard))
    return tally, counts


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
    counts: BatchCounts,
) -> Outcome:
    container = ctx.predictions
    paths = task.paths
    source = task.source(ctx)
    id_column = results[0]["id_column"]
    started = time.perf_counter()
    blob = container.get_blob_client(paths.predictions)
    blocks = _stage_header(blob, task.run, prediction_header(id_column))
    predictions = StagedBlocks(blob, blocks + [b for r in results for b in r["blocks"]])
    rejected = None
    if rejected_blocks := [b for r in results for b in r["rejected_blocks"]]:
        blob = container.get_blob_client(paths.rejected_rows)
        rejected = StagedBlocks(blob, _stage_header(blob, task.run, rejected_header()) + rejected_blocks)
    tally.seconds["publish"] += time.perf_counter() - started
    monitoring = ctx.write_monitoring(task.name, served, source, counts, tally, task.scored_at)
    draft = manifest_draft(
        source=source,
        input_sha256=task.input_sha256,
        served=served,
        paths=paths,
        tally=tally,
        ignored=tuple(results[0]["ignored"]),
        monitoring=monitoring,
        scored_at=task.scored_at,
        started=task.started,
        shards=task.shards,
        id_column=id_column,
        duplicate_ids=task.duplicate_ids,
    )
    committed = publish(container, paths, task.etag, draft, predictions, rejected, source.check_current)
    manifest = finalize(container, paths, task.etag)
    detail = f"assembled {task.shards} shards: {tally.rows_scored:,} rows scored"
    return Outcome(Status.published(committed), task.input, detail, manifest, monitoring.summary)
