"""Score a stream of CSV rows chunk by chunk: parse, validate, check ids, predict, encode, write.

Memory holds one chunk of rows (plus the writers' few blocks, and 12 bytes per distinct id for
the duplicate check), whatever the size of the input. The same loop serves a whole blob, one
shard of a fanned-out blob, and a local file (`python -m model score`): sinks are anything with
`write(bytes)`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import numpy as np

from model.csvinput.duplicates import IdIndex
from model.csvinput.encode import encode_predictions, encode_rejected
from model.csvinput.errors import FileRejected
from model.csvinput.header import Header
from model.csvinput.options import DEFAULT_DUPLICATE_IDS
from model.csvinput.records import read_chunks
from model.schema import InputSchema, Validated
from model.serving import LoadedModel

SAMPLE_REJECTIONS = 20


class RowCounts(Protocol):
    """What counts the scored rows for monitoring (model.drift.DriftCounts, model.monitoring.batch)."""

    def add(self, features: Any, scores: np.ndarray) -> None: ...


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...


class LazySink:
    """Creates its writer on the first write (a file of rejected rows only when a row is rejected)."""

    def __init__(self, open_writer: Callable[[], Any], header: bytes = b"") -> None:
        self._open = open_writer
        self._header = header
        self.writer: Any = None

    def write(self, data: bytes) -> None:
        if self.writer is None:
            self.writer = self._open()
            if self._header:
                self.writer.write(self._header)
        self.writer.write(data)


@dataclass
class Tally:
    """What scoring saw; tallies of shards add up to the tally of the whole file."""

    rows_in: int = 0  # data records read: scored + rejected + blank lines
    rows_scored: int = 0
    rows_rejected: int = 0
    blank_lines: int = 0
    to_call: int = 0  # rows at or above the decision threshold
    expected_positives: float = 0.0  # sum of probabilities: expected subscribers
    unseen: Counter[str] = field(default_factory=Counter)
    first_rejections: list[tuple[int, str]] = field(default_factory=list)
    seconds: Counter[str] = field(default_factory=Counter)
    duplicate_ids: int = 0  # rows whose id an earlier scored row had (scored or rejected, by policy)
    first_duplicates: list[tuple[int, int]] = field(default_factory=list)  # (row, row it repeats)

    def merge(self, other: Tally) -> None:
        self.rows_in += other.rows_in
        self.rows_scored += other.rows_scored
        self.rows_rejected += other.rows_rejected
        self.blank_lines += other.blank_lines
        self.to_call += other.to_call
        self.expected_positives += other.expected_positives
        self.unseen.update(other.unseen)
        self.first_rejections = sorted(self.first_rejections + other.first_rejections)[:SAMPLE_REJECTIONS]
        self.seconds.update(other.seconds)
        self.add_duplicates(other.duplicate_ids, other.first_duplicates)

    def add_duplicates(self, count: int, examples: list[tuple[int, int]]) -> None:
        self.duplicate_ids += count
        self.first_duplicates = sorted(self.first_duplicates + examples)[:SAMPLE_REJECTIONS]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_scored": self.rows_scored,
            "rows_rejected": self.rows_rejected,
            "blank_lines": self.blank_lines,
            "to_call": self.to_call,
            "expected_positives": self.expected_positives,
            "unseen": dict(self.unseen),
            "first_rejections": [list(r) for r in self.first_rejections],
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            "duplicate_ids": self.duplicate_ids,
            "first_duplicates": [list(d) for d in self.first_duplicates],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tally:
        return cls(
            rows_in=data["rows_in"],
            rows_scored=data["rows_scored"],
            rows_rejected=data["rows_rejected"],
            blank_lines=data["blank_lines"],
            to_call=data["to_call"],
            expected_positives=data["expected_positives"],
            unseen=Counter(data["unseen"]),
            first_rejections=[(int(r), str(reason)) for r, reason in data["first_rejections"]],
            seconds=Counter(data["seconds"]),
            duplicate_ids=data.get("duplicate_ids", 0),
            first_duplicates=[(int(r), int(f)) for r, f in data.get("first_duplicates", [])],
        )


@dataclass(frozen=True)
class Batch:
    """The constant parts of every output row, and what to do with a repeated id."""

    model: LoadedModel
    scored_at: str
    id_column: str
    duplicate_ids: str = DEFAULT_DUPLICATE_IDS  # keep | reject_rows | reject_file

    @property
    def tracks_ids(self) -> bool:
        """Whether rows carry an id that may repeat (without one they are keyed by their row number)."""
        return self.id_column == self.model.schema.id_column


def id_column_for(header: Header, schema: InputSchema) -> str:
    """The input's id column, or `row` (the 1-based row number) when the input has none."""
    return schema.id_column if schema.id_column in header.columns else "row"


def duplicate_rejection(column: str, row: int, first_row: int) -> FileRejected:
    return FileRejected(
        "duplicate_ids",
        f"row {row} has the same {column} as row {first_row}: ids must be unique "
        "(SCORING_DUPLICATE_IDS=reject_file); remove the repeated rows, or choose keep or reject_rows",
        row=row,
        first_row=first_row,
    )


def duplicate_reason(column: str, first_row: int) -> str:
    return f"{column}: duplicate of row {first_row}"


def _check_ids(
    checked: Validated, index: IdIndex, batch: Batch, tally: Tally
) -> tuple[np.ndarray | None, list[tuple[int, str]]]:
    """Apply the duplicate policy to a chunk's valid rows: the rows to keep (None: all), new rejections."""
    assert checked.rows is not None
    first = index.record(checked.ids, checked.rows)
    repeat = first >= 0
    if not repeat.any():
        return None, []
    rows, firsts = checked.rows[repeat], first[repeat]
    if batch.duplicate_ids == "reject_file":
        raise duplicate_rejection(batch.id_column, int(rows[0]), int(firsts[0]))
    sample = list(zip(rows[:SAMPLE_REJECTIONS].tolist(), firsts[:SAMPLE_REJECTIONS].tolist(), strict=True))
    tally.add_duplicates(int(repeat.sum()), sample)
    if batch.duplicate_ids == "keep":
        return None, []
    reasons = [(int(r), duplicate_reason(batch.id_column, int(f))) for r, f in zip(rows, firsts, strict=True)]
    return ~repeat, reasons


def score_stream(
    stream: IO[bytes],
    header: Header,
    batch: Batch,
    predictions: Sink,
    rejected: Sink,
    drift: RowCounts,
    chunk_rows: int,
    first_row: int = 1,
    ids: IdIndex | None = None,
) -> Tally:
    """Score every row of `stream` (which starts with the header record); return the tally.

    `ids` collects the first occurrence of every scored id (a shard hands it to the assembler).
    """
    tally = Tally()
    model = batch.model
    index = ids if ids is not None else IdIndex()
    chunks = read_chunks(stream, header, model.schema, chunk_rows, first_row)
    while True:
        started = time.perf_counter()
        chunk = next(chunks, None)
        parsed = time.perf_counter()
        tally.seconds["read_parse"] += parsed - started
        if chunk is None:
            return tally
        problems = list(chunk.malformed)
        if len(chunk.frame):
            probabilities, checked = model.score(chunk.frame, row_numbers=chunk.row_numbers)
            if batch.tracks_ids and len(checked.ids):
                keep, repeated = _check_ids(checked, index, batch, tally)
                if keep is not None:
                    probabilities, checked = probabilities[keep], checked.subset(keep, model.schema)
                    problems += repeated
            scored = time.perf_counter()
            tally.seconds["validate_score"] += scored - parsed
            predictions.write(
                encode_predictions(
                    checked.ids,
                    probabilities,
                    model.threshold,
                    model.name,
                    model.version,
                    batch.scored_at,
                    batch.id_column,
                )
            )
            drift.add(checked.frame, probabilities)
            problems = sorted(problems + checked.rejected) if problems else checked.rejected
            tally.rows_scored += len(probabilities)
            tally.to_call += int((probabilities >= model.threshold).sum())
            tally.expected_positives += float(probabilities.sum(dtype="float64"))
            tally.unseen.update(checked.unseen)
            tally.seconds["encode_write"] += time.perf_counter() - scored
        if problems:
            rejected.write(encode_rejected(problems))
            tally.rows_rejected += len(problems)
            if len(tally.first_rejections) < SAMPLE_REJECTIONS:
                tally.first_rejections += problems[: SAMPLE_REJECTIONS - len(tally.first_rejections)]
        tally.blank_lines += chunk.blank
        tally.rows_in += len(chunk.frame) + len(chunk.malformed) + chunk.blank


def check_size(size: int, max_bytes: int, setting: str = "SCORING_MAX_BYTES") -> None:
    if size == 0:
        raise FileRejected("empty_file", "the file is empty (0 bytes)")
    if size > max_bytes:
        raise FileRejected(
            "too_large",
            f"the file has {size:,} bytes, over the limit of {max_bytes:,} ({setting})",
            bytes=size,
            limit_bytes=max_bytes,
        )


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
