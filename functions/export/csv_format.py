"""Rows from pyodbc -> RFC 4180 CSV text, fast and exact.

The CSV dialect (documented in docs/export-format.md):
- UTF-8, header row, comma separator, CRLF line ends, fields quoted only when needed and quotes
  doubled (RFC 4180).
- NULL is an empty unquoted field; an empty string is `""`. This is PostgreSQL's CSV convention,
  so `COPY ... FROM ... CSV` and most loaders read the values back exactly.
- Dates, times and timestamps in ISO 8601 (`2008-05-05`, `2008-05-05T09:30:00`), decimals in
  plain positional notation with their full scale (never `1E-7`), floats as Python's shortest
  round-trip repr, booleans `true`/`false`, binary as hex (empty binary `""`).
- Optional formula-injection guard (OWASP "CSV injection"): string cells starting with
  `= + - @ TAB CR` get a leading `'`. Off by default because it changes the data.
- Empty binary is `""` like the empty string, so it stays apart from NULL.

Speed: the per-row work is one generated function that touches only the columns that need a
conversion; everything else goes straight into the C `csv.writer`.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
from collections.abc import Callable, Sequence
from typing import Any

# The C csv writer cannot tell None from "" (both become an empty field). Empty strings are
# therefore swapped for a lone surrogate, which can never occur in text decoded from a database
# (it is invalid UTF-8 and UTF-16), and the marker is replaced by `""` before encoding.
_EMPTY_MARKER = "\udfff"
_QUOTED_EMPTY = '""'
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
LINE_TERMINATOR = "\r\n"


def _decimal(value: decimal.Decimal) -> str:
    return format(value, "f")


def _datetime(value: dt.datetime) -> str:
    return value.isoformat()


def _time(value: dt.time) -> str:
    return value.isoformat()


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _bytes(value: bytes) -> str:
    return value.hex() or _EMPTY_MARKER  # empty binary is `""`, like the empty string: NULL stays apart


def _guarded_string(value: str) -> str:
    if not value:
        return _EMPTY_MARKER
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


def _finish(value: Any) -> Any:
    """A decoded value of any type: strings get the empty-string rule, the rest passes."""
    return _EMPTY_MARKER if value == "" else value


def _finish_guarded(value: Any) -> Any:
    return _guarded_string(value) if isinstance(value, str) else value


_CONVERTERS: dict[type, Callable[[Any], str]] = {
    decimal.Decimal: _decimal,
    dt.datetime: _datetime,
    dt.time: _time,
    bool: _bool,
    bytes: _bytes,
    bytearray: _bytes,
}


def logical_type(python_type: type) -> str:
    """The column type recorded in the manifest, from the type pyodbc reports."""
    return {
        int: "integer",
        float: "float",
        decimal.Decimal: "decimal",
        str: "string",
        dt.date: "date",
        dt.datetime: "timestamp",
        dt.time: "time",
        bool: "boolean",
        bytes: "binary",
        bytearray: "binary",
    }.get(python_type, python_type.__name__)


def row_converter(
    column_types: Sequence[type],
    formula_guard: bool = False,
    decoders: Sequence[Callable[[Any], Any] | None] = (),
    extra_columns: int = 0,
) -> Callable[[Sequence[Any]], Any] | None:
    """Build `row -> tuple` converting only the columns that need it; None if no column does.

    `decoders` turn a column's wire value (an expression the select list rewrote, see
    fidelity.py) back into its value first; `extra_columns` trailing values (the fidelity guard)
    are left out of the output. The function is generated from a fixed template whose only
    inputs are column indexes and converter names from the table above (never data or
    identifiers), because a generated tuple expression is about 3x faster than a Python loop
    over converters at 10^7 cells.
    """
    namespace: dict[str, Any] = {
        "__builtins__": {},
        "_guarded": _guarded_string,
        "_EMPTY": _EMPTY_MARKER,
        "_finish": _finish_guarded if formula_guard else _finish,
    }
    parts: list[str] = []
    needs_work = extra_columns > 0
    for index, python_type in enumerate(column_types):
        decoder = decoders[index] if index < len(decoders) else None
        if decoder is not None:
            namespace[f"_d{index}"] = decoder
            parts.append(f"_finish(_d{index}(r[{index}]))")
            needs_work = True
        elif python_type is str:
            value = f"r[{index}]"
            # Non-empty strings pass through untouched: the common case costs one truth test.
            guarded = f"_guarded({value})" if formula_guard else value
            parts.append(f"({guarded} if {value} else (None if {value} is None else _EMPTY))")
            needs_work = True
        elif python_type in _CONVERTERS:
            name = f"_c{index}"
            namespace[name] = _CONVERTERS[python_type]
            parts.append(f"(None if r[{index}] is None else {name}(r[{index}]))")
            needs_work = True
        else:
            parts.append(f"r[{index}]")
    if not needs_work:
        return None
    source = f"lambda r: ({', '.join(parts)},)"
    return eval(source, namespace)  # noqa: S307 - template above, no data


def encode_header(names: Sequence[str]) -> bytes:
    return CsvEncoder([]).header(names)


class CsvEncoder:
    """Turns chunks of rows into UTF-8 CSV bytes; keeps no rows between calls.

    `check_rows`, when given, sees every chunk before it is encoded (the fidelity guard).
    """

    def __init__(
        self,
        column_types: Sequence[type],
        formula_guard: bool = False,
        decoders: Sequence[Callable[[Any], Any] | None] = (),
        extra_columns: int = 0,
        check_rows: Callable[[Sequence[Sequence[Any]]], None] | None = None,
    ) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator=LINE_TERMINATOR)
        self._convert = row_converter(column_types, formula_guard, decoders, extra_columns)
        self._check_rows = check_rows

    def header(self, names: Sequence[str]) -> bytes:
        self._writer.writerow(names)
        return self._drain()

    def encode(self, rows: Sequence[Sequence[Any]]) -> bytes:
        if self._check_rows is not None:
            self._check_rows(rows)
        self._writer.writerows(rows if self._convert is None else map(self._convert, rows))
        return self._drain()

    def _drain(self) -> bytes:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        if _EMPTY_MARKER in text:
            text = text.replace(_EMPTY_MARKER, _QUOTED_EMPTY)
        return text.encode("utf-8")


def read_records(text: str) -> list[list[str | None]]:
    """Parse CSV written by `CsvEncoder`, keeping NULL (None) apart from the empty string.

    The stdlib reader cannot make that distinction, which is the whole point of the dialect.
    Meant for checks and small files; the scoring path streams with its own reader.
    """
    records: list[list[str | None]] = []
    record: list[str | None] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == '"':
            j, parts = i + 1, []
            while True:
                k = text.index('"', j)
                parts.append(text[j:k])
                if k + 1 < n and text[k + 1] == '"':
                    parts.append('"')
                    j = k + 2
                    continue
                i = k + 1
                break
            record.append("".join(parts))
        else:
            k = i
            while k < n and text[k] not in ",\r\n":
                k += 1
            record.append(text[i:k] if k > i else None)
            i = k
        if i >= n or text[i] in "\r\n":
            records.append(record)
            record = []
            i += 2 if text.startswith("\r\n", i) else 1
        else:  # a comma: the next field starts after it (an empty one if a line end follows)
            i += 1
            if i >= n:
                record.append(None)
    return records
