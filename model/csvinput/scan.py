"""Checks on the raw bytes of an input, and record boundaries, computed chunk by chunk.

A CSV record ends at a line feed outside a quoted field, so boundaries need the quote state.
The scanner follows the states of pandas' C tokenizer, which reads the rows: a quote opens a
quoted field only where a field starts (after the delimiter or a line end); inside one, `""` is
a quote; anywhere else a quote is an ordinary character (`27" screen`). When every quote is
where RFC 4180 puts it, quote parity gives that state with one vectorised pass; a chunk with a
quote elsewhere is followed quote by quote from there. pandas also ends a record at a bare
carriage return: files with one outside quotes are refused (`cr_line_endings`), so the records
counted here, the shard cuts placed here and the rows the parser reads are the same ones.

Every other check is vectorised (numpy over the chunk) or done by C code (`bytes.find`, the
UTF-8 decoder), so scanning costs a small fraction of parsing.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

import numpy as np

from model.csvinput.errors import FileRejected

_LF, _CR, _QUOTE = 10, 13, 34
UTF8_BOM = codecs.BOM_UTF8


@dataclass
class Cut:
    """A record boundary where a shard starts: byte offset, and the 1-based data row that starts there."""

    offset: int
    first_row: int


def where(record: int) -> str:
    """How messages name a record: record 0 is the header, record N is data row N."""
    return "the header" if record == 0 else f"row {record}"


@dataclass
class RecordScanner:
    """Feed the input's bytes in order; it counts records, bounds their length, finds shard cuts.

    Record 0 is the header; data row N is record N (blank lines included, as the parser counts).
    With `cut_every`, a cut is placed at the first record boundary at least that many bytes after
    the previous cut (the first one after the header). `delimiter` is the field separator (a quote
    may open a field after it).
    """

    max_record_bytes: int
    cut_every: int | None = None
    check_content: bool = True
    delimiter: bytes = b","
    offset: int = 0
    records: int = 0
    header_end: int | None = None
    cuts: list[Cut] = field(default_factory=list)
    _in_quotes: int = 0
    _open_bytes: int = 0
    _previous: int = _LF  # the byte before the chunk: the start of the file starts a field
    _cr_at_end: bool = False  # the previous chunk ended with a CR outside quotes
    _after_closing: bool = False  # the previous chunk ended with the quote that closed a quoted field
    _head: bytes = b""  # the first bytes of the file (a byte order mark is not part of a field)
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")()
    )

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if len(self._head) < len(UTF8_BOM):
            self._head += chunk[: len(UTF8_BOM) - len(self._head)]
        data = np.frombuffer(chunk, dtype=np.uint8)
        parity = None
        if self._in_quotes or chunk.find(b'"') >= 0:
            significant = self._significant_quotes(data)
            parity = np.bitwise_xor.accumulate(significant.view(np.uint8)) ^ self._in_quotes
            ends = np.flatnonzero((data == _LF) & (parity == 0))
        else:
            ends = np.flatnonzero(data == _LF)
        if self.check_content:
            self._check_text(chunk, ends)
            self._check_line_ends(chunk, data, parity, ends)
        self._check_lengths(chunk, ends)
        if parity is not None:
            self._in_quotes = int(parity[-1])
            self._after_closing = bool(significant[-1]) and not self._in_quotes
        else:
            self._after_closing = False
        self._previous = int(data[-1])
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
                    f"the file is not UTF-8 text: it ends inside a multi-byte character (byte {self.offset}, "
                    f"in {where(self.records)}); save it as UTF-8",
                    byte_offset=self.offset,
                    row=self.records,
                ) from None
            if self._cr_at_end:
                self._bare_cr(self.offset - 1, self.records)
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

    def _record_of(self, ends: np.ndarray, index: int) -> int:
        """The record holding byte `index` of the chunk: records before the chunk + line ends before it."""
        return self.records + int(np.searchsorted(ends, index))

    def _check_text(self, chunk: bytes, ends: np.ndarray) -> None:
        nul = chunk.find(b"\x00")
        if nul >= 0:
            record = self._record_of(ends, nul)
            raise FileRejected(
                "binary",
                f"byte {self.offset + nul} is a NUL byte (in {where(record)}): this is a binary file, "
                "not CSV text",
                byte_offset=self.offset + nul,
                row=record,
            )
        pending = self._decoder.getstate()[0]  # the start of a character split by the previous chunk
        try:
            self._decoder.decode(chunk)
        except UnicodeDecodeError as error:
            at = self.offset - len(pending) + error.start
            record = self._record_of(ends, max(0, at - self.offset))
            bad = (pending + chunk)[error.start]
            raise FileRejected(
                "not_utf8",
                f"the file is not UTF-8 text: invalid byte 0x{bad:02x} at byte {at} "
                f"(in {where(record)}); save it as UTF-8",
                byte_offset=at,
                row=record,
            ) from None

    def _significant_quotes(self, data: np.ndarray) -> np.ndarray:
        """Which bytes are quotes that open, close or escape in a quoted field (as pandas reads them)."""
        is_quote = data == _QUOTE
        quotes = np.flatnonzero(is_quote)
        if not len(quotes):
            return is_quote
        delimiter = self.delimiter[0]
        bom_at = len(UTF8_BOM) - self.offset if self._head == UTF8_BOM else -1  # pandas skips a BOM
        # Fast path: take every quote as significant (quote parity), and check that each quote that
        # would open a quoted field stands where a field starts.
        opening = quotes[(np.arange(1, len(quotes) + 1) + self._in_quotes) % 2 == 1]
        before = data[np.maximum(opening - 1, 0)]
        starts = (before == _LF) | (before == _CR) | (before == delimiter) | (opening == bom_at)
        starts |= (before == _QUOTE) & (opening > 0)  # `""`: the quote that closed it came right before
        if len(opening) and opening[0] == 0:
            starts[0] = self._previous in (_LF, _CR, delimiter) or self._after_closing
        if starts.all():
            return is_quote
        # From the first quote that is an ordinary character, follow the tokenizer quote by quote.
        first = int(np.searchsorted(quotes, opening[np.argmin(starts)]))
        significant = is_quote.copy()
        significant[quotes[first]] = False
        positions = quotes[first + 1 :].tolist()
        previous = data[np.maximum(quotes[first + 1 :] - 1, 0)].tolist()
        state = "out"
        for at, byte in zip(positions, previous, strict=True):
            if state == "in":
                state = "closed"
            elif state == "closed" and byte == _QUOTE:
                state = "in"  # `""` inside a quoted field
            elif byte in (_LF, _CR, delimiter) or at == bom_at:
                state = "in"
            else:  # inside an unquoted field (or after text that followed a closing quote): a character
                significant[at] = False
                state = "out"
        return significant

    def _check_line_ends(
        self, chunk: bytes, data: np.ndarray, parity: np.ndarray | None, ends: np.ndarray
    ) -> None:
        """A CR outside quotes must be followed by LF (pandas would end a record there)."""
        if self._cr_at_end and data[0] != _LF:
            self._bare_cr(self.offset - 1, self.records)
        self._cr_at_end = False
        if chunk.find(b"\r") < 0:
            return
        crs = (
            np.flatnonzero((data == _CR) & (parity == 0))
            if parity is not None
            else np.flatnonzero(data == _CR)
        )
        if len(crs) and crs[-1] == len(data) - 1:  # its line feed, if any, comes with the next chunk
            self._cr_at_end = True
            crs = crs[:-1]
        bare = crs[data[crs + 1] != _LF]
        if len(bare):
            self._bare_cr(self.offset + int(bare[0]), self._record_of(ends, int(bare[0])))

    def _bare_cr(self, at: int, record: int) -> None:
        raise FileRejected(
            "cr_line_endings",
            f"{where(record)} has a carriage return (CR) at byte {at} that is not followed by a line "
            "feed: the file uses CR-only (old Mac) or mixed line ends; save it with LF or CRLF line "
            "ends (a CR inside a value must be in a quoted field)",
            byte_offset=at,
            row=record,
        )

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
        raise FileRejected(
            "record_too_long",
            f"{where(record)} is longer than {self.max_record_bytes:,} bytes: a quote that is never closed, "
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
