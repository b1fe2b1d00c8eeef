"""What to export: validated table names, named queries, watermark columns.

Identifiers come from configuration, never from users, but they are still validated against a
strict pattern and always quoted, because they end up inside SQL text and inside blob paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class SpecError(ValueError):
    """An export entry is malformed or unsafe."""


def validate_identifier(name: str, what: str = "identifier") -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise SpecError(
            f"{what} {name!r} is not allowed: use letters, digits and underscores, starting with a letter "
            "or underscore (at most 128 characters)"
        )
    return name


def quote_identifier(name: str) -> str:
    """ANSI double-quoted identifier (SQLite, PostgreSQL, SQL Server with QUOTED_IDENTIFIER ON)."""
    return '"' + validate_identifier(name).replace('"', '""') + '"'


@dataclass(frozen=True)
class ExportSpec:
    """One export: a table (`schema.table` allowed) or a named query, optionally incremental."""

    name: str
    schema: str | None = None
    table: str | None = None
    query: str | None = None
    watermark: str | None = None

    @property
    def source_label(self) -> str:
        if self.query is not None:
            return f"query {self.name}"
        return f"{self.schema}.{self.table}" if self.schema else str(self.table)


def _parse_entry(entry: str, queries: dict[str, str]) -> ExportSpec:
    name, _, watermark = (part.strip() for part in entry.partition(":"))
    if watermark:
        validate_identifier(watermark, "watermark column")
    if name in queries:
        validate_identifier(name, "query name")
        return ExportSpec(name=name, query=queries[name], watermark=watermark or None)
    parts = name.split(".")
    if len(parts) > 2:
        raise SpecError(f"table {name!r} is not allowed: use table or schema.table")
    for part in parts:
        validate_identifier(part, "table name")
    schema, table = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    return ExportSpec(name=name, schema=schema, table=table, watermark=watermark or None)


def parse_export_tables(raw: str, queries: dict[str, str] | None = None) -> tuple[ExportSpec, ...]:
    """Parse `clients, campaign_outcomes:contact_date, my_query` (names of EXPORT_QUERIES allowed).

    Every entry is parsed even when one is bad: a bad entry becomes a spec that fails at export
    time, so the other tables still export (see `InvalidSpec`). Duplicate names are an error.
    """
    queries = queries or {}
    entries = [e.strip() for e in raw.split(",") if e.strip()]
    if not entries:
        raise SpecError("no tables configured")
    specs: list[ExportSpec] = []
    for entry in entries:
        try:
            specs.append(_parse_entry(entry, queries))
        except SpecError as exc:
            specs.append(InvalidSpec(name=entry, reason=str(exc)))
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SpecError(f"tables listed twice: {duplicates}")
    return tuple(specs)


@dataclass(frozen=True)
class InvalidSpec(ExportSpec):
    """A configured entry that failed validation; exporting it fails with `reason`, writing nothing."""

    reason: str = ""


@dataclass(frozen=True)
class ExportSettings:
    """How the daily export runs, as the settings contract parsed it (functions/settings).

    No defaults here: every value comes from the settings catalog, so the engine and the app can
    never disagree about one (tests and benchmarks start from `functions.settings.export_defaults()`).
    """

    tables: tuple[ExportSpec, ...]
    schedule: str
    publish_tables: tuple[str, ...]
    chunk_rows: int
    formula_guard: bool
    workers: int  # 1 = always a single stream
