"""Score a stream of CSV rows chunk by chunk: parse, validate, predict, encode, write.

Memory holds one chunk of rows (plus the writers' few blocks), whatever the size of the input.
The same loop serves a whole file and one shard of a fanned-out file.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from functions.scoring.encode import encode_predictions, encode_rejected
from functions.scoring.header import Header
from functions.scoring.records import read_chunks
from model.drift import DriftCounts
from model.serving import LoadedModel

SAMPLE_REJECTIONS = 20


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
        )


@dataclass(frozen=True)
class Batch:
    """The constant parts of every output row."""

    model: LoadedModel
    scored_at: str
    id_column: str


def score_stream(
    stream: IO[bytes],
    header: Header,
    batch: Batch,
    predictions: Sink,
    rejected: Sink,
    drift: DriftCounts,
    chunk_rows: int,
    first_row: int = 1,
) -> Tally:
    """Score every row of `stream` (which starts with the header record); return the tally."""
    tally = Tally()
    model = batch.model
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
