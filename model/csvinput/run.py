"""One whole input, from checked bytes to sinks: what a blob trigger and the offline CLI both run."""

from __future__ import annotations

from dataclasses import dataclass

from model.csvinput.duplicates import IdIndex
from model.csvinput.encode import prediction_header
from model.csvinput.header import Header, parse_header
from model.csvinput.options import DEFAULT_DUPLICATE_IDS
from model.csvinput.scorer import Batch, Sink, Tally, check_rows, id_column_for, score_stream
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
    drift: DriftCounts,
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
