"""How each export selects its columns so that every value arrives exactly, or the export fails.

Drivers lose values silently where their conversions are narrower than the database's types.
Each export therefore gets a `ReadPlan`: the select list (the plain column, or an expression
that hands the driver a form it cannot damage), the decoder for such expressions, and a guard
column, computed by the database for every row, that names the first column whose value the
driver could not deliver exactly. The encoder checks the guard chunk by chunk, so the export
fails that table with a message naming the column and what to change; it never writes a value
it could not read exactly. Measured on this machine (tests/test_export_fidelity.py):

SQLite3 ODBC driver (libsqliteodbc 0.9998). It converts every value to text internally, then
parses that text into the column's declared type:
- REAL values pass through "%.15g": 123456789.12345679 -> 123456789.123457, the largest double
  -> inf. Selected instead as `printf('%!.20e', x)` (21 significant digits, which the
  correctly-rounding float() parser maps back to the same double; no mismatch in 400,000
  random bit patterns, where `quote(x)` had 85) and decoded here.
- Column names come back garbled from SQLDescribeColW for anything beyond ASCII (UTF-8 byte
  lengths taken as character counts: NUL bytes and leftovers of other names). The names are
  read as data instead, from `pragma_table_info` of the table (or of a temporary view of a
  named query).
- Values whose storage class does not fit the declared type (SQLite is dynamically typed) are
  truncated or dropped by the driver: 1.5 in an INTEGER column -> 1, 'abc' in a REAL column
  -> NULL, 2 in a BOOLEAN column -> true, '03:04:05.123' in a TIME column -> 03:04:05, a text
  with a NUL character cut at the NUL, characters of plane 16 (U+100000..U+10FFFF) emptied
  or cut to U+FFFF, in values and in names alike. The guard refuses them (names: read as hex).
psqlODBC: date and timestamp 'infinity' arrive as 9999-12-31 23:59:59 and '-infinity' as
0001-01-01 (a date '-infinity' as today's date); BC dates do not fit. The guard refuses them.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pyodbc

from functions.export import drivers
from functions.export.csv_format import CsvEncoder, logical_type
from functions.export.manifest import Column
from functions.retry import PermanentError

_TAG = "\x01"  # marks a REAL rendered as text inside a column the driver reports as text


class FidelityError(PermanentError):
    """A value the driver cannot deliver exactly: the table fails, naming the column."""


def quote_name(name: str) -> str:
    """A column name the database reported, as an ANSI quoted identifier (quotes doubled)."""
    if "\x00" in name:
        raise FidelityError(f"column name {name!r} contains a NUL character")
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Check:
    """A SQL condition that is true where the column's value would not arrive exactly."""

    column: int
    condition: str
    problem: str


@dataclass(frozen=True)
class ReadPlan:
    """What to select for one export on one driver, and how to read it back."""

    columns: tuple[Column, ...]  # names and logical types for the manifest and the header
    wire_types: tuple[type, ...]  # the Python type of each selected value, as the encoder sees it
    decoders: tuple[str | None, ...]  # per column: a decoder name from DECODERS, or None
    expressions: tuple[str, ...]  # per column: what the SELECT lists ("*" when all are plain)
    checks: tuple[Check, ...] = ()
    # Name every selected column c0, c1, ... (the guard `guard`): for a driver whose column-name
    # metadata cannot be trusted (SQLite's), the names are taken from `columns`, never from it.
    ascii_aliases: bool = False

    @property
    def select_list(self) -> str:
        pairs = list(zip(self.expressions, self.columns, strict=True))
        plain = all(e == quote_name(c.name) for e, c in pairs)
        if plain and not self.checks and not self.ascii_aliases:
            return "*"
        if self.ascii_aliases:
            items = [f"{e} AS c{i}" for i, (e, _) in enumerate(pairs)]
        else:
            items = [f"{e} AS {quote_name(c.name)}" for e, c in pairs]
        if self.checks:
            cases = " ".join(f"WHEN {check.condition} THEN {n}" for n, check in enumerate(self.checks, 1))
            items.append(f"CASE {cases} END" + (" AS guard" if self.ascii_aliases else ""))
        return ", ".join(items)

    @property
    def guard_index(self) -> int | None:
        """Where the guard value sits in each fetched row (after the data columns)."""
        return len(self.columns) if self.checks else None

    def decoder(self, index: int) -> Callable[[Any], Any] | None:
        name = self.decoders[index]
        return DECODERS[name] if name else None

    def encoder(self, formula_guard: bool) -> CsvEncoder:
        """The encoder of this plan's rows: decoders applied, guard checked and left out."""
        return CsvEncoder(
            self.wire_types,
            formula_guard,
            [self.decoder(i) for i in range(len(self.columns))],
            extra_columns=1 if self.checks else 0,
            check_rows=self.check_rows if self.checks else None,
        )

    def check_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Raise for the first row whose guard names a column that cannot be delivered exactly."""
        index = self.guard_index
        if index is None or not any(map(operator.itemgetter(index), rows)):
            return
        flagged = next(row[index] for row in rows if row[index])
        check = self.checks[int(flagged) - 1]
        column = self.columns[check.column].name
        raise FidelityError(f"column {column!r}: {check.problem}")


# --- decoders of the rewritten expressions (module level: worker processes import them) -------


def decode_number(text: str | None) -> int | float | None:
    """An SQLite REAL or INTEGER rendered as text by the select list: the exact number back."""
    if text is None:
        return None
    if text[-1].isdigit() and not any(c in text for c in ".eE"):
        return int(text)
    return float(text)


def decode_tagged_text(text: str | None) -> str | float | None:
    """A text column that may hold REALs (no TEXT affinity): tagged ones are numbers."""
    if text is not None and text.startswith(_TAG):
        return float(text[1:])
    return text


DECODERS = {"number": decode_number, "tagged_text": decode_tagged_text}


# --- plans per driver ------------------------------------------------------------------------


def read_plan(
    connection: pyodbc.Connection,
    connection_string: str,
    relation: str,
    table: str | None,
    schema: str | None = None,
) -> ReadPlan:
    """Probe the result's columns (no rows read) and plan how to select them exactly."""
    kind = drivers.kind(connection_string)
    if kind == drivers.SQLITE:
        # Names first, as data; then the types, from a probe whose columns have ASCII names: the
        # driver's own names for non-ASCII columns are garbage, sometimes not even valid UTF-16,
        # and pyodbc then fails the execute itself (UnicodeDecodeError, 1 run in 3 or so).
        names, declared = _sqlite_names(connection, relation, table, schema)
        probe = ", ".join(f"{quote_name(name)} AS c{i}" for i, name in enumerate(names))
        description = _describe(connection, f"SELECT {probe} FROM {relation} WHERE 1 = 0")  # noqa: S608 - quoted
        return _sqlite_plan(description, names, declared, drivers.sqlite_bigint_off(connection_string))
    # the relation is a validated, quoted name or the operator's own named query (EXPORT_QUERIES)
    description = _describe(connection, f"SELECT * FROM {relation} WHERE 1 = 0")  # noqa: S608 - see above
    if kind == drivers.POSTGRESQL:
        return _postgres_plan(description)
    if kind == drivers.MSSQL:
        return _mssql_plan(description)
    return _plain_plan(description)


def _describe(connection: pyodbc.Connection, sql: str) -> Sequence[Any]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.description or ()


def _columns(description: Sequence[Any], names: Sequence[str] | None = None) -> tuple[Column, ...]:
    names = names or [d[0] for d in description]
    return tuple(
        Column(name=name, type=logical_type(d[1]), nullable=bool(d[6]))
        for name, d in zip(names, description, strict=True)
    )


def _plain_plan(description: Sequence[Any], checks: tuple[Check, ...] = ()) -> ReadPlan:
    columns = _columns(description)
    return ReadPlan(
        columns=columns,
        wire_types=tuple(d[1] for d in description),
        decoders=(None,) * len(columns),
        expressions=tuple(quote_name(c.name) for c in columns),
        checks=checks,
    )


def _postgres_plan(description: Sequence[Any]) -> ReadPlan:
    checks = []
    for index, d in enumerate(description):
        if d[1] in (dt.date, dt.datetime):
            name = quote_name(d[0])
            checks.append(
                Check(
                    index,
                    f"(NOT isfinite({name}) OR {name} < '0001-01-01' OR {name} >= '10000-01-01')",
                    "holds 'infinity', '-infinity' or a date outside years 1-9999, which psqlODBC "
                    "delivers as a different date; cast the column to text in a named query "
                    "(EXPORT_QUERIES) to export such values",
                )
            )
    return _plain_plan(description, tuple(checks))


def _mssql_plan(description: Sequence[Any]) -> ReadPlan:
    """Timestamps arrive as text from the output converters (drivers.add_mssql_converters)."""
    plan = _plain_plan(description)
    return replace(plan, wire_types=tuple(str if t is dt.datetime else t for t in plan.wire_types))


def _sqlite_names(
    connection: pyodbc.Connection, relation: str, table: str | None, schema: str | None
) -> tuple[list[str], list[str]]:
    """Column names and declared types as data, never through the driver's garbled metadata."""
    with connection.cursor() as cursor:
        if table is None:  # a named query: its columns through a temporary view (no file write)
            cursor.execute("DROP VIEW IF EXISTS temp.export_probe")
            cursor.execute(f"CREATE TEMP VIEW export_probe AS SELECT * FROM {relation}")  # noqa: S608 - as above
            target, in_schema = "export_probe", "temp"
        else:
            target, in_schema = table, schema or "main"
        try:
            # hex: the driver garbles even data text outside the BMP's reach (U+100000 and up)
            rows = cursor.execute(
                "SELECT hex(name), type FROM pragma_table_info(?, ?)", target, in_schema
            ).fetchall()
        finally:
            if table is None:
                cursor.execute("DROP VIEW IF EXISTS temp.export_probe")
    names = [bytes.fromhex(row[0]).decode("utf-8") for row in rows]
    return names, [(row[1] or "").upper() for row in rows]


def _sqlite_plan(
    description: Sequence[Any], names: Sequence[str], declared: Sequence[str], bigint_off: bool
) -> ReadPlan:
    columns = _columns(description, names)
    wire_types, decoders, expressions, checks = [], [], [], []
    for index, (d, name, decl) in enumerate(zip(description, names, declared, strict=True)):
        q, python_type = quote_name(name), d[1]
        wire, decoder, expression = python_type, None, q

        def check(allowed: str, problem: str, i: int = index) -> None:
            checks.append(Check(i, f"NOT ({allowed})", problem))

        def flag(bad: str, problem: str, i: int = index) -> None:  # cheaper where "bad" is simple
            checks.append(Check(i, bad, problem))

        def storage(*classes: str, q: str = q) -> str:
            return f"typeof({q}) IN ({', '.join(repr(c) for c in ('null', *classes))})"

        if python_type is int:
            check(storage("integer"), "holds non-integer values (a REAL or TEXT in an INTEGER column)")
            if bigint_off:
                check(
                    f"{q} IS NULL OR {q} BETWEEN -2147483648 AND 2147483647",
                    "holds integers beyond 32 bits, which the SQLite ODBC driver delivers as 0 or -1 "
                    "with BigInt=0: remove BigInt=0 from DB_CONNECTION_STRING",
                )
        elif python_type is float:
            wire, decoder = str, "number"
            expression = (
                f"CASE typeof({q}) WHEN 'real' THEN printf('%!.20e', {q}) "
                f"WHEN 'integer' THEN CAST({q} AS TEXT) END"
            )
            check(storage("real", "integer"), "holds TEXT or BLOB values in a REAL column")
        elif python_type is str:
            # NUL cuts the value; 0xF4 leads every UTF-8 character of plane 16, which the driver empties
            damaged = f"instr({q}, char(0)) OR instr(CAST({q} AS BLOB), x'F4')"
            if any(word in decl for word in ("CHAR", "CLOB", "TEXT")):  # TEXT affinity: text, NULL or BLOB
                flag(f"typeof({q}) = 'blob' OR {damaged}", _TEXT_PROBLEM)
            else:  # no TEXT affinity (NUMERIC, DECIMAL, untyped, an expression): REALs may be there
                decoder = "tagged_text"
                expression = (
                    f"CASE WHEN typeof({q}) = 'real' THEN char(1) || printf('%!.20e', {q}) ELSE {q} END"
                )
                tagged = f"substr({q}, 1, 1) = char(1)"
                flag(
                    f"typeof({q}) = 'blob' OR (typeof({q}) = 'text' AND ({damaged} OR {tagged}))",
                    _TEXT_PROBLEM,
                )
        elif python_type in (bytes, bytearray):
            check(storage("blob"), "holds TEXT or numbers in a BLOB column")
        elif python_type is bool:
            check(f"{q} IS NULL OR (typeof({q}) = 'integer' AND {q} IN (0, 1))", "holds values but 0, 1")
        elif python_type is dt.date:
            check(f"{q} IS NULL OR date({q}) IS {q}", "holds values that are not YYYY-MM-DD dates")
        elif python_type is dt.time:
            check(f"{q} IS NULL OR time({q}) IS {q}", "holds values that are not HH:MM:SS (no fraction)")
        elif python_type is dt.datetime:
            check(_SQLITE_TIMESTAMP.format(q=q), "holds values that are not 'YYYY-MM-DD HH:MM:SS[.ffffff]'")
        wire_types.append(wire)
        decoders.append(decoder)
        expressions.append(expression)
    return ReadPlan(
        columns, tuple(wire_types), tuple(decoders), tuple(expressions), tuple(checks), ascii_aliases=True
    )


_TEXT_PROBLEM = (
    "holds a BLOB, a text with a NUL character, a character of plane 16 (U+100000 and up) "
    "or a text starting with U+0001, which the SQLite ODBC driver cannot deliver as text"
)
# What the driver parses exactly: date, a space or T, time, and at most 6 fractional digits.
_SQLITE_TIMESTAMP = (
    "{q} IS NULL OR (typeof({q}) = 'text' AND datetime({q}) IS NOT NULL "
    "AND substr({q}, 1, 10) = date({q}) AND substr({q}, 11, 1) IN (' ', 'T') "
    "AND substr({q}, 12, 8) = time({q}) "
    "AND (length({q}) = 19 OR (length({q}) BETWEEN 21 AND 26 AND substr({q}, 20, 1) = '.' "
    "AND substr({q}, 21) NOT GLOB '*[^0-9]*')))"
)
