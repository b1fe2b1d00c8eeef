"""The header of an input, checked against the model's schema before a single row is parsed."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass

from functions.scoring.errors import FileRejected
from functions.scoring.scan import UTF8_BOM
from model.schema import InputSchema

_OTHER_DELIMITERS = (";", "\t", "|")


@dataclass(frozen=True)
class Header:
    """The columns of an input and the header record's bytes (shards re-send them to the parser)."""

    columns: tuple[str, ...]
    raw: bytes
    ignored: tuple[str, ...]  # in the file, not used by the model: extra columns are allowed, and skipped


def parse_header(raw: bytes, schema: InputSchema) -> Header:
    """Split the header record and check it: delimiter, duplicates, the columns the model needs."""
    text = raw.removeprefix(UTF8_BOM).decode("utf-8").rstrip("\r\n")
    if not text.strip():
        raise FileRejected("empty_header", "the first line is empty: a CSV file starts with its header")
    columns = tuple(next(csv.reader([text])))
    if len(columns) == 1:
        for delimiter in _OTHER_DELIMITERS:
            if text.count(delimiter) >= 2:
                raise FileRejected(
                    "wrong_delimiter",
                    f"the header is separated by {delimiter!r}, not ',': scoring-input files are "
                    "comma-separated (RFC 4180); export with ',' as the delimiter",
                    delimiter=delimiter,
                )
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
            f"missing required column(s) {missing}{hint}; the header has {list(columns)}",
            missing=missing,
            columns=list(columns),
        )
    ignored = tuple(c for c in columns if c not in wanted)
    return Header(columns, raw, ignored)
