"""The header of an input, checked against the model's schema before a single row is parsed."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass

from lake.contract import SCORING_INPUT_CONTAINER
from model.csvinput.errors import FileRejected
from model.csvinput.scan import UTF8_BOM
from model.schema import InputSchema

DELIMITERS = (",", ";", "\t", "|")  # what a header may be split by; scoring-input files use ","


@dataclass(frozen=True)
class Header:
    """The columns of an input and the header record's bytes, as `parse_header` checked them."""

    columns: tuple[str, ...]
    raw: bytes  # the first record as read (its line end too, if any): the parser guard goes after it
    ignored: tuple[str, ...]  # in the file, not used by the model: extra columns are allowed, and skipped
    delimiter: str = ","


def sniff_delimiter(first_bytes: bytes) -> str:
    """`;` (the bank file) or `,` (our exports): whichever the first line holds more of."""
    line = first_bytes.split(b"\n", 1)[0]
    return ";" if line.count(b";") > line.count(b",") else ","


def _hint(found: str, delimiter: str) -> str:
    if delimiter == ",":
        return (
            f"the header is separated by {found!r}, not ',': {SCORING_INPUT_CONTAINER} files are "
            "comma-separated (RFC 4180); export with ',' as the delimiter"
        )
    return (
        f"the header is separated by {found!r}, not {delimiter!r}: save it with {delimiter!r} between fields"
    )


def parse_header(raw: bytes, schema: InputSchema, delimiter: str = ",") -> Header:
    """Split the header record and check it: delimiter, duplicates, the columns the model needs.

    `raw` is the first record as the scanner found it (its bytes already checked: UTF-8, no NUL,
    no bare CR, quotes only where fields start).
    """
    try:
        text = raw.removeprefix(UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as error:  # the scanner refuses these first; a direct caller may not
        raise FileRejected(
            "not_utf8", f"the header is not UTF-8 text: {error}; save it as UTF-8", byte_offset=error.start
        ) from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text.strip():
        raise FileRejected("empty_header", "the first line is empty: a CSV file starts with its header")
    try:
        columns = tuple(next(csv.reader([text], delimiter=delimiter)))
    except csv.Error as error:
        raise FileRejected("malformed_csv", f"the header is not valid CSV: {error}") from None
    if len(columns) == 1:
        for other in DELIMITERS:
            if other != delimiter and text.count(other) >= 2:
                raise FileRejected("wrong_delimiter", _hint(other, delimiter), delimiter=other)
    duplicates = sorted(name for name, count in Counter(columns).items() if count > 1)
    if duplicates:
        raise FileRejected(
            "duplicate_columns", f"the header names {duplicates} more than once", columns=duplicates
        )
    wanted = (*schema.raw_columns, schema.id_column)
    missing = [c for c in schema.raw_columns if c not in columns]
    if missing:
        folded = {c.strip().lower(): c for c in columns}
        hints = [f"{folded[m.lower()]!r} for {m!r}" for m in missing if m.lower() in folded]
        hint = f" (found {', '.join(hints)}: names are case- and space-sensitive)" if hints else ""
        raise FileRejected(
            "missing_columns",
            f"missing required column(s) {missing}{hint}; the header has {list(columns)[:50]}",
            missing=missing,
            columns=list(columns)[:200],
        )
    ignored = tuple(c for c in columns if c not in wanted)
    return Header(columns, raw, ignored, delimiter)
