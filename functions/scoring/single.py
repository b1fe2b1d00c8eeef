"""Score a whole input in one invocation: one streaming pass from input blob to staged outputs."""

from __future__ import annotations

import time
from typing import Any

from functions.blob_io import StagedBlobWriter
from functions.scoring.context import Outcome, ScoringContext, manifest_draft, now_iso
from functions.scoring.encode import prediction_header, rejected_header
from functions.scoring.errors import FileRejected
from functions.scoring.header import Header, parse_header
from functions.scoring.models import ServedModel
from functions.scoring.outputs import CSV_CONTENT_TYPE, finalize, publish
from functions.scoring.paths import OutputPaths
from functions.scoring.scan import RecordScanner
from functions.scoring.scorer import Batch, LazySink, Tally, score_stream
from functions.scoring.source import CheckedStream, InputBlob, download_chunks
from model.drift import DriftCounts


def output_id_column(header: Header, served: ServedModel) -> str:
    """The input's id column, or `row` (the 1-based row number) when the input has none."""
    id_column = served.model.schema.id_column
    return id_column if id_column in header.columns else "row"


def check_rows(tally: Tally) -> None:
    """A file with nothing to score is refused whole, with its first row problems."""
    if tally.rows_in == tally.blank_lines:
        raise FileRejected("header_only", "the file has a header but no rows")
    if tally.rows_scored == 0:
        raise FileRejected(
            "no_valid_rows",
            f"none of the {tally.rows_in - tally.blank_lines:,} rows could be scored; first problems: "
            + "; ".join(f"row {row}: {reason}" for row, reason in tally.first_rejections[:3]),
            rows_rejected=tally.rows_rejected,
            first_rejections=[list(r) for r in tally.first_rejections],
        )


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
        header = parse_header(stream.peek_header(), served.model.schema)
        id_column = output_id_column(header, served)
        predictions.write(prediction_header(id_column))
        drift = DriftCounts(served.reference)
        tally = score_stream(
            stream,
            header,
            Batch(served.model, scored_at, id_column),
            predictions,
            rejected,
            drift,
            ctx.options.chunk_rows,
        )
        stream.drain()  # the parser stops at the last row; the checks must see the very end
        check_rows(tally)
        source.check_current()  # a stale version writes no drift report either
        drift_at = ctx.write_drift(name, served, source, drift, scored_at)
        started_publish = time.perf_counter()
        predictions.stage_rest()
        tally.seconds["publish"] += time.perf_counter() - started_publish
        draft = manifest_draft(
            source=source,
            input_sha256=stream.sha256.hexdigest(),
            served=served,
            paths=paths,
            tally=tally,
            ignored=header.ignored,
            drift=drift_at,
            scored_at=scored_at,
            started=started,
            shards=1,
        )

        def commit_predictions(metadata: dict[str, str], conditions: dict[str, Any]) -> None:
            predictions.commit(CSV_CONTENT_TYPE, metadata, **conditions)

        def commit_rejected(metadata: dict[str, str], conditions: dict[str, Any]) -> None:
            rejected.writer.commit(CSV_CONTENT_TYPE, metadata, **conditions)

        committed = publish(
            container,
            paths,
            source.etag,
            draft,
            commit_predictions,
            commit_rejected if rejected.writer is not None else None,
            predictions.sha256,
            source.check_current,
        )
        manifest = finalize(container, paths, source.etag)
    except BaseException:
        predictions.abort()
        if rejected.writer is not None:
            rejected.writer.abort()
        raise
    finally:
        stream.close()
    status = "scored" if committed else "duplicate"
    detail = (
        f"{manifest['rows']['scored']:,} rows scored, {manifest['rows']['rejected']:,} rejected "
        f"with {served.model.name} v{served.model.version}"
    )
    return Outcome(status, source.path, detail, manifest)
