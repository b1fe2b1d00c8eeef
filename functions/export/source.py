"""Reading one export's rows from the database: the SELECT, its parameters, its columns.

Identifiers are validated and quoted (spec.py); values such as the watermark are always bound
as parameters, never formatted into SQL text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyodbc

from functions.export.fidelity import ReadPlan, quote_name, read_plan
from functions.export.manifest import Column
from functions.export.spec import ExportSpec, quote_identifier
from functions.retry import PermanentError


@dataclass(frozen=True)
class Query:
    sql: str
    params: tuple[Any, ...]


def relation(spec: ExportSpec) -> str:
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


@dataclass(frozen=True)
class Plan:
    """How one export reads its rows: the query, the key that can split it, how to read values."""

    query: Query
    key: str | None  # single-column primary key, when there is one
    read: ReadPlan


def _filters(spec: ExportSpec, after_watermark: Any) -> tuple[list[str], list[Any]]:
    if spec.watermark and after_watermark is not None:
        return [f"{quote_identifier(spec.watermark)} > ?"], [after_watermark]
    return [], []


def build_query(
    spec: ExportSpec,
    order_by: Sequence[str],
    after_watermark: Any = None,
    key_range: tuple[str, int, int] | None = None,
    select: str = "*",
) -> Query:
    """SELECT for one export (or one key range of it). A stable ORDER BY makes re-runs byte-identical.

    Key and order columns are names the database reported (quoted, not validated: they may be
    any Unicode); the watermark is a configured name (validated by the spec).
    """
    conditions, params = _filters(spec, after_watermark)
    if key_range is not None:
        key, low, high = key_range
        conditions.append(f"{quote_name(key)} >= ? AND {quote_name(key)} < ?")
        params += [low, high]
    sql = f"SELECT {select} FROM {relation(spec)}"  # noqa: S608 - quoted names; values are parameters
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    if order_by:
        sql += " ORDER BY " + ", ".join(quote_name(c) for c in order_by)
    return Query(sql, tuple(params))


def plan_query(
    connection: pyodbc.Connection, connection_string: str, spec: ExportSpec, after_watermark: Any
) -> Plan:
    """Check the table exists, plan how to read its values exactly, choose a deterministic order.

    Tables are read in primary-key order (whether or not they are incremental), so the single-stream
    and the key-range exports of the same data produce the same bytes.
    """
    if spec.query is not None:
        read = read_plan(connection, connection_string, relation(spec), None)
        order: list[str] = [spec.watermark] if spec.watermark else []
        return Plan(build_query(spec, order, after_watermark, select=read.select_list), None, read)
    if not table_exists(connection, spec):
        raise PermanentError(f"table {spec.source_label} does not exist in the source database")
    read = read_plan(connection, connection_string, relation(spec), spec.table, spec.schema)
    key = primary_key(connection, spec)
    order = key or ([spec.watermark] if spec.watermark else [])
    query = build_query(spec, order, after_watermark, select=read.select_list)
    return Plan(query, key[0] if len(key) == 1 else None, read)


def key_ranges(
    connection: pyodbc.Connection,
    spec: ExportSpec,
    plan: Plan,
    after_watermark: Any,
    range_rows: int,
    min_rows: int,
) -> list[Query] | None:
    """Split an export into half-open key ranges of about `range_rows` rows, in key order.

    None when the key is not an integer or the export has fewer than `min_rows` rows (then
    starting worker processes costs more than it saves).
    """
    if plan.key is None:
        return None
    conditions, params = _filters(spec, after_watermark)
    key = quote_name(plan.key)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    with connection.cursor() as cursor:
        row = cursor.execute(
            f"SELECT COUNT(*), MIN({key}), MAX({key}) FROM {relation(spec)}{where}",  # noqa: S608 - quoted names
            *params,
        ).fetchone()
    count, low, high = int(row[0]), _as_int(row[1]), _as_int(row[2])
    if count < max(min_rows, range_rows + 1) or low is None or high is None:
        return None
    pieces = -(-count // range_rows)
    width = -(-(high - low + 1) // pieces)
    select = plan.read.select_list  # the same for every range: built once
    return [
        build_query(
            spec,
            [plan.key],
            after_watermark,
            (plan.key, start, min(start + width, high + 1)),
            select=select,
        )
        for start in range(low, high + 1, width)
    ]


def _as_int(value: Any) -> int | None:
    """Key bounds as integers; the SQLite driver returns computed values as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


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
