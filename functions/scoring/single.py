"""Score a whole input in one invocation: one streaming pass from input blob to staged outputs."""

from __future__ import annotations

import time

from functions.blob_io import StagedBlobWriter
from functions.scoring.context import ScoringContext, manifest_draft, now_iso
from functions.scoring.models import ServedModel
from functions.scoring.outcome import Outcome, Status
from functions.scoring.outputs import finalize, publish
from functions.scoring.source import InputBlob, download_chunks
from lake.paths import OutputPaths
from model.csvinput.encode import rejected_header
from model.csvinput.run import score_checked
from model.csvinput.scan import RecordScanner
from model.csvinput.scorer import LazySink
from model.csvinput.stream import CheckedStream
from model.monitoring.batch import BatchCounts


def score_whole(
    ctx: ScoringContext, source: InputBlob, name: str, served: ServedModel, started: float
) -> Outcome:
    paths = OutputPaths(name, served.model.version)
    container = ctx.predictions
    scored_at = now_iso()
    stream = CheckedStream(download_chunks(source), RecordScanner(ctx.options.max_record_bytes))
    predictions = StagedBlobWriter(container.get_blob_client(paths.predictions))
    rejected = LazySink(
        lambda: StagedBlobWriter(container.get_blob_client(paths.rejected_rows)), rejected_header()
    )
    try:
        counts = BatchCounts(served.reference, served.model.threshold)
        scored = score_checked(
            stream, served.model, scored_at, predictions, rejected, counts, ctx.read_options
        )
        tally = scored.tally
        monitoring = ctx.write_monitoring(name, served, source, counts, tally, scored_at)
        started_publish = time.perf_counter()
        predictions.stage_rest()
        tally.seconds["publish"] += time.perf_counter() - started_publish
        draft = manifest_draft(
            source=source,
            input_sha256=scored.sha256,
            served=served,
            paths=paths,
            tally=tally,
            ignored=scored.header.ignored,
            monitoring=monitoring,
            scored_at=scored_at,
            started=started,
            shards=1,
            id_column=scored.id_column,
            duplicate_ids=ctx.options.duplicate_ids,
        )
        committed = publish(
            container, paths, source.etag, draft, predictions, rejected.writer, source.check_current
        )
        manifest = finalize(container, paths, source.etag)
    except BaseException:
        predictions.abort()
        if rejected.writer is not None:
            rejected.writer.abort()
        raise
    finally:
        stream.close()
    detail = (
        f"{manifest['rows']['scored']:,} rows scored, {manifest['rows']['rejected']:,} rejected "
        f"with {served.model.name} v{served.model.version}"
    )
    return Outcome(Status.published(committed), source.path, detail, manifest, monitoring.summary)
