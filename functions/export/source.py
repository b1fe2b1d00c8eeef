"""Reading one export's rows from the database: the SELECT, its parameters, its columns.

Identifiers are validated and quoted (spec.py); values such as the watermark are always bound
as parameters, never formatted into SQL text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyodbc

from functions.export.csv_format import logical_type
from functions.export.manifest import Column
from functions.export.spec import ExportSpec, quote_identifier
from functions.retry import PermanentError


@dataclass(frozen=True)
class Query:
    sql: str
    params: tuple[Any, ...]


def _relation(spec: ExportSpec) -> str:
    if spec.query is not None:
        return f"({spec.query}) AS q"
    assert spec.table is not None
    table = quote_identifier(spec.table)
    return f"{quote_identifier(spec.schema)}.{table}" if spec.schema else table


def table_exists(connection: pyodbc.Connection, spec: ExportSpec) -> bool:
    assert spec.table is not None
    with connection.cursor() as cursor:
        found = cursor.tables(table=spec.table, schema=spec.schema).fetchall()
    return any(row.table_name == spec.table for row in found)


def primary_key(connection: pyodbc.Connection, spec: ExportSpec) -> list[str]:
    """Key columns in key order, or [] where the driver cannot tell (then rows keep natural order)."""
    assert spec.table is not None
    try:
        with connection.cursor() as cursor:
            rows = cursor.primaryKeys(spec.table, schema=spec.schema).fetchall()
    except pyodbc.Error:
        return []
    return [row.column_name for row in sorted(rows, key=lambda r: r.key_seq)]


def build_query(spec: ExportSpec, order_by: Sequence[str], after_watermark: Any = None) -> Query:
    """SELECT for one export. A stable ORDER BY makes a re-run byte-identical (same sha256)."""
    sql = f"SELECT * FROM {_relation(spec)}"
    params: tuple[Any, ...] = ()
    if spec.watermark and after_watermark is not None:
        sql += f" WHERE {quote_identifier(spec.watermark)} > ?"
        params = (after_watermark,)
    if order_by:
        sql += " ORDER BY " + ", ".join(quote_identifier(c) for c in order_by)
    return Query(sql, params)


def plan_query(connection: pyodbc.Connection, spec: ExportSpec, after_watermark: Any) -> Query:
    """Check the table exists, choose a deterministic order, and build the query."""
    if spec.query is not None:
        order: list[str] = [spec.watermark] if spec.watermark else []
        return build_query(spec, order, after_watermark)
    if not table_exists(connection, spec):
        raise PermanentError(f"table {spec.source_label} does not exist in the source database")
    key = primary_key(connection, spec)
    order = ([spec.watermark] if spec.watermark else []) + [c for c in key if c != spec.watermark]
    return build_query(spec, order, after_watermark)


def columns_of(cursor: pyodbc.Cursor) -> tuple[list[Column], list[type]]:
    description = cursor.description or ()
    columns = [Column(name=d[0], type=logical_type(d[1]), nullable=bool(d[6])) for d in description]
    return columns, [d[1] for d in description]


def fetch_chunks(cursor: pyodbc.Cursor, chunk_rows: int) -> Iterator[list[pyodbc.Row]]:
    while rows := cursor.fetchmany(chunk_rows):
        yield rows


def column_index(columns: Sequence[Column], name: str) -> int:
    for index, column in enumerate(columns):
        if column.name.lower() == name.lower():
            return index
    raise PermanentError(
        f"watermark column {name!r} is not in the result (columns: {[c.name for c in columns]})"
    )
