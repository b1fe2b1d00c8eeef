"""Generated tables of every supported type, through SQLite and PostgreSQL into Azurite, cell by cell.

The oracle is each database's own reading of the table: SQLite's values through Python's stdlib
driver (no ODBC), PostgreSQL's own `COPY ... TO STDOUT (FORMAT csv)`. Hypothesis picks column
names (any Unicode), types and values, including the extremes of each type.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import sqlite3
import subprocess
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.export.csv_format import read_records
from functions.export.spec import ExportSpec
from tests.conftest import sqlite_odbc
from tests.support import export_one, read_export
from tests.test_export_fidelity import sqlite_expected
from tests.test_export_roundtrip import _pg

pytestmark = pytest.mark.integration
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30)
# The SQLite ODBC driver cannot deliver plane-16 characters in values (the export refuses them:
# tests/test_export_fidelity.py); PostgreSQL can.
_SQLITE_TEXT = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00", max_codepoint=0xFFFFF), max_size=30
)
_INT64 = st.integers(-(2**63), 2**63 - 1)
_FLOAT = st.floats(allow_nan=False)
_TIMESTAMP = st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999))


def _names(max_bytes: int) -> st.SearchStrategy[str]:
    name = st.text(
        st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=12
    )
    return name.filter(lambda n: len(n.encode()) <= max_bytes and n.strip() and n.casefold() != "id")


def _unique_names(count: int, max_bytes: int) -> st.SearchStrategy[list[str]]:
    return st.lists(_names(max_bytes), min_size=count, max_size=count, unique_by=lambda n: n.casefold())


# --- SQLite ----------------------------------------------------------------------------------

SQLITE_TYPES: dict[str, st.SearchStrategy[Any]] = {
    "INTEGER": _INT64,
    "REAL": _FLOAT,
    "TEXT": _SQLITE_TEXT,
    "BLOB": st.binary(max_size=20),
    "NUMERIC": st.one_of(_INT64, _FLOAT.filter(math.isfinite)),
    "": st.one_of(_INT64, _FLOAT, _SQLITE_TEXT.filter(lambda t: not t.startswith("\x01"))),  # untyped
    "DATE": st.dates().map(dt.date.isoformat),
    "TIMESTAMP": _TIMESTAMP.map(lambda t: t.isoformat(sep=" ")),
    "BOOLEAN": st.sampled_from([0, 1]),
}


@st.composite
def sqlite_tables(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[tuple]]:
    declared = draw(st.lists(st.sampled_from(sorted(SQLITE_TYPES)), min_size=1, max_size=6))
    names = draw(_unique_names(len(declared), 60))
    row = st.tuples(*[st.one_of(st.none(), SQLITE_TYPES[d]) for d in declared])
    return list(zip(names, declared, strict=True)), draw(st.lists(row, max_size=8))


@PROPERTY
@given(table=sqlite_tables())
def test_generated_sqlite_tables_arrive_exactly(table, tmp_path_factory, exports_container):
    columns, rows = table
    path = tmp_path_factory.mktemp("gen") / "source.db"
    with sqlite3.connect(path) as db:
        spec = ", ".join(f'"{n.replace(chr(34), chr(34) * 2)}" {d}' for n, d in columns)
        db.execute(f"CREATE TABLE t (id INTEGER PRIMARY KEY, {spec})")
        marks = ", ".join("?" * (len(columns) + 1))
        db.executemany(f"INSERT INTO t VALUES ({marks})", [(i, *r) for i, r in enumerate(rows, 1)])  # noqa: S608 - marks only
    sqlite3.connect(path).close()
    name = f"t{uuid.uuid4().hex[:8]}"
    result = export_one(sqlite_odbc(path), exports_container, ExportSpec(name=name, table="t"))
    assert result.ok, result.error
    manifest, records = read_export(exports_container, name)
    assert records[0] == ["id", *[n for n, _ in columns]]
    with sqlite3.connect(path) as db:
        truth = db.execute("SELECT * FROM t ORDER BY id").fetchall()
    assert manifest.rows == len(truth) == len(records) - 1
    declared = ["INTEGER", *[d for _, d in columns]]
    for got, source_row in zip(records[1:], truth, strict=True):
        assert got == [sqlite_expected(v, d) for v, d in zip(source_row, declared, strict=True)]


# --- PostgreSQL ------------------------------------------------------------------------------

PG_TYPES: dict[str, st.SearchStrategy[Any]] = {
    "bigint": _INT64,
    "double precision": st.floats(),
    "text": _TEXT,
    "bytea": st.binary(max_size=20),
    "date": st.dates(),
    "timestamp": _TIMESTAMP,
    "boolean": st.booleans(),
    "numeric": st.decimals(allow_infinity=False, places=None).filter(lambda d: d.is_finite() or d.is_nan()),
}


def _pg_literal(value: Any) -> str | None:
    """The COPY ... FROM CSV spelling of a generated value."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return "NaN" if value.is_nan() else format(value, "f")
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _copy_out(cluster: Any, sql: str) -> str:
    """PostgreSQL's own CSV, byte for byte (text mode would turn a CR inside a value into LF)."""
    done = subprocess.run(  # noqa: S603 - psql with arguments built here
        [*cluster.psql_args(), "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql], capture_output=True, check=True
    )
    return done.stdout.decode("utf-8")


def _csv_line(fields: list[str | None]) -> str:
    return ",".join("" if f is None else '"' + f.replace('"', '""') + '"' for f in fields) + "\n"


def _same(pg_type: str, ours: str | None, theirs: str | None) -> bool:
    if ours is None or theirs is None:
        return ours is theirs
    if pg_type == "double precision":
        a, b = float(ours), float(theirs)
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if pg_type == "bytea":
        return ours == theirs.removeprefix("\\x")
    if pg_type == "boolean":
        return ours == {"t": "1", "f": "0"}[theirs]
    if pg_type == "timestamp":
        return dt.datetime.fromisoformat(ours) == dt.datetime.fromisoformat(theirs)
    return ours == theirs


@st.composite
def pg_tables(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[tuple]]:
    types = draw(st.lists(st.sampled_from(sorted(PG_TYPES)), min_size=1, max_size=6))
    names = draw(_unique_names(len(types), 63))  # NAMEDATALEN: longer names are cut by the server
    row = st.tuples(*[st.one_of(st.none(), PG_TYPES[t]) for t in types])
    return list(zip(names, types, strict=True)), draw(st.lists(row, max_size=8))


@settings(PROPERTY, max_examples=15)
@given(table=pg_tables())
def test_generated_postgres_tables_arrive_exactly(table, postgres, exports_container):
    columns, rows = table
    quoted = [f'"{n.replace(chr(34), chr(34) * 2)}"' for n, _ in columns]
    _pg(postgres, "DROP TABLE IF EXISTS gen")
    defined = ", ".join(f"{q} {t}" for q, (_, t) in zip(quoted, columns, strict=True))
    _pg(postgres, f"CREATE TABLE gen (id int PRIMARY KEY, {defined})")
    data = "".join(_csv_line([str(i), *[_pg_literal(v) for v in r]]) for i, r in enumerate(rows, 1))
    _pg(postgres, "COPY gen FROM STDIN WITH (FORMAT csv)", stdin=data)
    truth = read_records(
        _copy_out(postgres, "COPY (SELECT * FROM gen ORDER BY id) TO STDOUT WITH (FORMAT csv)")
    )
    name = f"g{uuid.uuid4().hex[:8]}"
    result = export_one(
        postgres.odbc_connection_string, exports_container, ExportSpec(name=name, table="gen")
    )
    assert result.ok, result.error
    _, records = read_export(exports_container, name)
    assert records[0] == ["id", *[n for n, _ in columns]]
    assert len(records) - 1 == len(truth) == len(rows)
    types = ["bigint", *[t for _, t in columns]]
    for got, theirs in zip(records[1:], truth, strict=True):
        mismatches = [(t, a, b) for t, a, b in zip(types, got, theirs, strict=True) if not _same(t, a, b)]
        assert mismatches == [], mismatches


def test_the_comparison_can_fail():
    """The PostgreSQL comparison is not vacuous: near misses are told apart."""
    assert not _same("double precision", "0.1", "0.10000000000000002")
    assert not _same("double precision", "0.0", "-0")
    assert not _same("bytea", "", "\\x00")
    assert not _same("timestamp", "2020-01-02T03:04:05.000001", "2020-01-02 03:04:05")
    assert not _same("text", None, "")
    assert _same("bytea", "", "\\x") and _same("boolean", "1", "t")
