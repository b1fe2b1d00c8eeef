"""One whole input, from checked bytes to sinks: what a blob trigger and the offline CLI both run."""

from __future__ import annotations

from dataclasses import dataclass

from model.csvinput.duplicates import IdIndex
from model.csvinput.encode import prediction_header, rejected_header
from model.csvinput.header import Header, parse_header
from model.csvinput.options import DEFAULT_DUPLICATE_IDS, MAX_RECORD_BYTES, READ_CHUNK_BYTES
from model.csvinput.scan import RecordScanner
from model.csvinput.scorer import (
    Batch,
    LazySink,
    RowCounts,
    Sink,
    Tally,
    check_rows,
    check_size,
    id_column_for,
    score_stream,
)
from model.csvinput.stream import CheckedStream
from model.drift import DriftCounts
from model.serving import LoadedModel


@dataclass(frozen=True)
class ReadOptions:
    """How an input is read and judged (the trigger fills it from ScoringSettings, the CLI from flags)."""

    chunk_rows: int
    duplicate_ids: str = DEFAULT_DUPLICATE_IDS
    delimiter: str = ","


@dataclass(frozen=True)
class ScoredInput:
    header: Header
    id_column: str
    tally: Tally
    sha256: str  # of every byte read
    ids: IdIndex


def score_checked(
    stream: CheckedStream,
    model: LoadedModel,
    scored_at: str,
    predictions: Sink,
    rejected: Sink,
    drift: RowCounts,
    options: ReadOptions,
) -> ScoredInput:
    """Header checks, every row, and the end-of-file checks; raises FileRejected for a bad file.

    `stream` starts at the first byte of the input and checks every byte (a RecordScanner).
    `predictions` gets the header line first; `rejected` only rows (give it a LazySink with a header).
    """
    header = parse_header(stream.peek_header(), model.schema, options.delimiter)
    id_column = id_column_for(header, model.schema)
    predictions.write(prediction_header(id_column))
    ids = IdIndex()
    batch = Batch(model, scored_at, id_column, options.duplicate_ids)
    tally = score_stream(stream, header, batch, predictions, rejected, drift, options.chunk_rows, ids=ids)
    stream.drain()  # the parser stops at the last row; the checks must see the very end
    check_rows(tally)
    return ScoredInput(header, id_column, tally, stream.sha256.hexdigest(), ids)


class _Buffer:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data


def score_bytes(
    data: bytes,
    model: LoadedModel,
    options: ReadOptions,
    max_record_bytes: int = MAX_RECORD_BYTES,
    chunk_bytes: int = READ_CHUNK_BYTES,
    scored_at: str = "2026-11-22T02:00:00+00:00",
    drift: RowCounts | None = None,
) -> tuple[bytes, bytes, ScoredInput]:
    """Score an input held in memory (tests, tools): predictions, rejected rows (with headers), result.

    The same path as a blob or a file, chunked as given; raises FileRejected for a bad file.
    """
    check_size(len(data), max_bytes=1 << 62)
    chunks = (data[i : i + chunk_bytes] for i in range(0, len(data), chunk_bytes))
    scanner = RecordScanner(max_record_bytes, delimiter=options.delimiter.encode())
    stream = CheckedStream(chunks, scanner)
    predictions, rejected = _Buffer(), _Buffer()
    try:
        scored = score_checked(
            stream,
            model,
            scored_at,
            predictions,
            LazySink(lambda: rejected, rejected_header()),
            drift if drift is not None else DriftCounts({}),
            options,
        )
    finally:
        stream.close()
    return bytes(predictions.data), bytes(rejected.data), scored
