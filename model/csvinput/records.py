"""Parse an input stream into frames of rows, each row knowing its 1-based row number in the file.

pandas' C parser does the work. Rows it cannot split into the header's columns (too many fields)
are skipped and reported as ParserWarnings that name their record; those become rejected rows,
and the row numbers of the rows around them stay right. Blank lines are kept by the parser (so
numbering matches the file) and dropped here.

One guard: when the first data row has exactly one field more than the header, pandas takes
the first column as the index ("implicit index") and shifts every column of every row. A row of
empty fields, exactly as many as the header has, is put in front of the data so the parser
never sees that case; it is dropped again before numbering.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import pandas as pd

from model.csvinput.errors import FileRejected
from model.csvinput.header import Header
from model.schema import InputSchema

_SKIPPED = re.compile(r"Skipping line (\d+): (.*)")
_GUARD_LINES = 1  # lines the guard adds before the first data row


@dataclass
class Chunk:
    frame: pd.DataFrame  # the rows that parsed, blank lines removed
    row_numbers: np.ndarray  # the 1-based row number of each row of `frame`
    malformed: list[tuple[int, str]] = field(default_factory=list)  # rows the parser could not split
    blank: int = 0  # blank lines dropped


class _Guarded:
    """The stream with a row of empty fields right after the header record (`header_bytes` long).

    It also keeps the exception the stream raised, if any: pandas' C parser may report it as a
    ParserError ("Calling read(nbytes) on source failed"), or, while it handles a bad line, leave
    it set and fail later with a SystemError; either would turn a rejection of the checks, or a
    storage error that deserves a retry, into something else.
    """

    def __init__(self, stream: IO[bytes], header: Header) -> None:
        self.error: BaseException | None = None
        self._stream = stream
        self._left = len(header.raw)  # header bytes still to pass before the guard goes in
        guard = '""' + header.delimiter * (len(header.columns) - 1) + "\n"
        self._guard: bytes | None = (b"" if header.raw.endswith(b"\n") else b"\n") + guard.encode()

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._stream.read(size)
        except BaseException as error:
            self.error = error
            raise
        if self._guard is None:
            return data
        if len(data) < self._left and data:
            self._left -= len(data)
            return data
        guard, self._guard = self._guard, None
        return data[: self._left] + guard + data[self._left :]


def _dtypes(header: Header, schema: InputSchema) -> dict[str, str]:
    """Categories as pandas categoricals (no str object per cell), the id as text (kept verbatim)."""
    dtypes = {c: "category" for c in schema.categorical if c in header.columns}
    if schema.id_column in header.columns:
        dtypes[schema.id_column] = "str"
    return dtypes


def read_chunks(
    stream: IO[bytes], header: Header, schema: InputSchema, chunk_rows: int, first_row: int = 1
) -> Iterator[Chunk]:
    """Frames of at most `chunk_rows` rows; the stream starts with the header record."""
    source = _Guarded(stream, header)
    try:
        reader = pd.read_csv(
            source,
            sep=header.delimiter,
            chunksize=chunk_rows,
            dtype=_dtypes(header, schema),
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
            on_bad_lines="warn",
            encoding="utf-8",
            engine="c",
        )
    except Exception as error:  # noqa: BLE001 - reading the header line: re-raised as what it was
        raise _parser_error(source, error) from None
    skipped: dict[int, str] = {}  # row number -> why the parser skipped it
    next_row = first_row
    guard = True
    with reader:
        while True:
            frame = _next_frame(reader, skipped, first_row, source)
            if frame is None:
                break
            if guard:  # the first row of the first frame is the guard row
                frame, guard = frame.iloc[1:], False
            rows, malformed, next_row = _number(len(frame), next_row, skipped)
            blank = _blank_lines(frame)
            if blank.any():
                frame, rows = frame[~blank], rows[~blank]
            yield Chunk(frame, rows, malformed, int(blank.sum()))
    if source.error is not None:  # the parser swallowed the stream's error and stopped: it stands
        raise source.error
    if skipped:  # malformed rows after the last good one
        yield Chunk(pd.DataFrame(columns=list(header.columns)), np.empty(0, dtype=np.int64),
                    sorted(skipped.items()))  # fmt: skip


def _parser_error(source: _Guarded, error: Exception) -> BaseException:
    """What the parser's error really was: the stream's own exception, malformed CSV, or itself."""
    if source.error is not None:
        return source.error
    if isinstance(error, pd.errors.ParserError | pd.errors.EmptyDataError):
        return FileRejected("malformed_csv", f"the file is not valid CSV: {error}")
    if isinstance(error, UnicodeDecodeError):  # the scanner refuses these first
        return FileRejected("not_utf8", f"the file is not UTF-8 text: {error}")
    return error


def _next_frame(
    reader: Any, skipped: dict[int, str], first_row: int, source: _Guarded
) -> pd.DataFrame | None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            frame = next(reader)
        except StopIteration:
            frame = None
        except Exception as error:
            raised = _parser_error(source, error)
            if raised is error:
                raise
            raise raised from None
    for warning in caught:  # one warning may list several lines
        for match in _SKIPPED.finditer(str(warning.message)):
            # The parser counts the header as line 1 and the guard as line 2: line N is row N - 2
            # of this stream.
            row = first_row + int(match.group(1)) - 2 - _GUARD_LINES
            skipped[row] = f"malformed row: {match.group(2).strip()}"
    return frame


def _number(count: int, next_row: int, skipped: dict[int, str]) -> tuple[np.ndarray, list, int]:
    """Row numbers of `count` parsed rows starting at `next_row`, stepping over skipped rows."""
    if not skipped or min(skipped) >= next_row + count:
        return np.arange(next_row, next_row + count), [], next_row + count
    candidates = np.arange(next_row, next_row + count + len(skipped))
    is_skipped = np.isin(candidates, np.fromiter(skipped, dtype=np.int64))
    rows = candidates[~is_skipped][:count]
    last = int(rows[-1]) if count else next_row - 1
    malformed = sorted((row, skipped.pop(row)) for row in [r for r in skipped if r <= last])
    return rows, malformed, last + 1


def _blank_lines(frame: pd.DataFrame) -> np.ndarray:
    """Rows without a single value: blank lines (or only delimiters); cheap when the first column is full."""
    if frame.empty:
        return np.zeros(0, dtype=bool)
    first_missing = frame.iloc[:, 0].isna().to_numpy()
    if not first_missing.any():
        return first_missing
    return frame.isna().all(axis=1).to_numpy()
