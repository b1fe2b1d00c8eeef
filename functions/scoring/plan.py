"""Fan-out, step 1 (the blob-triggered invocation): check the whole file, cut it into shards, and
send one queue message per shard (see functions/scoring/fanout.py for steps 2 and 3).

One streaming pass checks every byte and finds record boundaries (line feeds outside quoted
fields, so a quoted line break never splits a row); a bad file is refused before any message
goes out. Each message carries its byte range and the row number it starts at.
"""

from __future__ import annotations

import logging

from functions.blob_io import read_text, write_json
from functions.scoring.context import ScoringContext, now_iso
from functions.scoring.models import ServedModel
from functions.scoring.outcome import Outcome, Status
from functions.scoring.shards import MARKER, ShardTask, run_key
from functions.scoring.source import InputBlob, download_chunks
from lake.paths import OutputPaths
from model.csvinput.errors import FileRejected
from model.csvinput.header import parse_header
from model.csvinput.scan import RecordScanner
from model.csvinput.stream import CheckedStream

log = logging.getLogger(__name__)


def plan_fanout(
    ctx: ScoringContext, source: InputBlob, name: str, served: ServedModel, started: float
) -> Outcome:
    paths = OutputPaths(name, served.model.version)
    run = run_key(source.etag, served.model.version)
    marker = paths.shards(run) + MARKER
    if read_text(ctx.predictions, marker) is not None:
        return Outcome(Status.DUPLICATE, source.path, f"fan-out {run} is already planned")
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
            duplicate_ids=ctx.options.duplicate_ids,
        )
        for index, (start, end, first_row) in enumerate(zip(starts, ends, first_rows, strict=True))
    ]
    for task in tasks:
        ctx.queue.send_message(task.to_json())
    write_json(ctx.predictions, marker, {"run": run, "shards": len(tasks), "planned_at": scored_at,
                                         "input": source.path, "etag": source.etag})  # fmt: skip
    detail = f"{rows:,} rows in {len(tasks)} shards of ~{ctx.options.shard_bytes:,} bytes (run {run})"
    log.info("fanned out %s: %s", source.path, detail)
    return Outcome(Status.FANNED_OUT, source.path, detail)
