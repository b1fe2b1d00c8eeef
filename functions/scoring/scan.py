"""Checks on the raw bytes of an input, and record boundaries, computed chunk by chunk.

A CSV record ends at a line feed outside a quoted field, so boundaries need the quote state
(RFC 4180: a quote inside a field is doubled, so quote parity tells inside from outside). Every
check here is vectorised (numpy over the chunk) or done by C code (`bytes.find`, the UTF-8
decoder), so scanning costs a small fraction of parsing.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

import numpy as np

from functions.scoring.errors import FileRejected

_LF, _QUOTE = 10, 34
UTF8_BOM = codecs.BOM_UTF8


@dataclass
class Cut:
    """A record boundary where a shard starts: byte offset, and the 1-based data row that starts there."""

    offset: int
    first_row: int


@dataclass
class RecordScanner:
    """Feed the input's bytes in order; it counts records, bounds their length, finds shard cuts.

    Record 0 is the header; data row N is record N (blank lines included, as the parser counts).
    With `cut_every`, a cut is placed at the first record boundary at least that many bytes after
    the previous cut (the first one after the header).
    """

    max_record_bytes: int
    cut_every: int | None = None
    check_content: bool = True
    offset: int = 0
    records: int = 0
    header_end: int | None = None
    cuts: list[Cut] = field(default_factory=list)
    _in_quotes: int = 0
    _open_bytes: int = 0
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")()
    )

    def feed(self, chunk: bytes) -> None:
        if self.check_content:
            self._check_text(chunk)
        data = np.frombuffer(chunk, dtype=np.uint8)
        if self._in_quotes or chunk.find(b'"') >= 0:
            parity = np.bitwise_xor.accumulate((data == _QUOTE).view(np.uint8)) ^ self._in_quotes
            ends = np.flatnonzero((data == _LF) & (parity == 0))
            self._in_quotes = int(parity[-1]) if len(parity) else self._in_quotes
        else:
            ends = np.flatnonzero(data == _LF)
        self._check_lengths(chunk, ends)
        if self.header_end is None and len(ends):
            self.header_end = self.offset + int(ends[0]) + 1
        if self.cut_every is not None and self.header_end is not None:
            self._place_cuts(ends)
        self.records += len(ends)
        self.offset += len(chunk)

    def finish(self) -> int:
        """Check the end of the input; return the number of data rows (records after the header)."""
        if self.check_content:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise FileRejected(
                    "not_utf8",
                    f"the file is not UTF-8 text: it ends inside a multi-byte character (byte {self.offset})",
                    byte_offset=self.offset,
                ) from None
        if self._in_quotes:
            raise FileRejected(
                "unterminated_quote",
                f"a quoted field opened in row {self.records} is never closed (a missing '\"')",
                row=self.records,
            )
        if self._open_bytes:
            self.records += 1  # a last line without a line end is a record too
            self._open_bytes = 0
            if self.header_end is None:
                self.header_end = self.offset
        return max(0, self.records - 1)

    def _check_text(self, chunk: bytes) -> None:
        nul = chunk.find(b"\x00")
        if nul >= 0:
            raise FileRejected(
                "binary",
                f"byte {self.offset + nul} is a NUL byte: this is a binary file, not CSV text",
                byte_offset=self.offset + nul,
            )
        try:
            self._decoder.decode(chunk)
        except UnicodeDecodeError as error:
            at = self.offset + error.start
            raise FileRejected(
                "not_utf8",
                f"the file is not UTF-8 text: invalid byte 0x{chunk[error.start]:02x} at byte {at} "
                f"(in or after row {self.records}); save it as UTF-8",
                byte_offset=at,
            ) from None

    def _check_lengths(self, chunk: bytes, ends: np.ndarray) -> None:
        if len(ends) == 0:
            self._open_bytes += len(chunk)
            if self._open_bytes > self.max_record_bytes:
                self._too_long(self.records)
            return
        lengths = np.diff(ends, prepend=-1)
        lengths[0] += self._open_bytes
        longest = int(np.argmax(lengths))
        if lengths[longest] > self.max_record_bytes:
            self._too_long(self.records + longest)
        self._open_bytes = len(chunk) - int(ends[-1]) - 1
        if self._open_bytes > self.max_record_bytes:
            self._too_long(self.records + len(ends))

    def _too_long(self, record: int) -> None:
        what = "the header" if record == 0 else f"row {record}"
        raise FileRejected(
            "record_too_long",
            f"{what} is longer than {self.max_record_bytes:,} bytes: a quote that is never closed, "
            "or not a one-row-per-line CSV",
            row=record,
            limit_bytes=self.max_record_bytes,
        )

    def _place_cuts(self, ends: np.ndarray) -> None:
        assert self.cut_every is not None and self.header_end is not None
        absolute = ends + (self.offset + 1)  # offset just after each line feed
        records_after = np.arange(self.records + 1, self.records + len(ends) + 1)
        previous = self.cuts[-1].offset if self.cuts else self.header_end
        while True:
            at = int(np.searchsorted(absolute, previous + self.cut_every))
            if at >= len(absolute):
                return
            previous = int(absolute[at])
            self.cuts.append(Cut(previous, int(records_after[at])))
