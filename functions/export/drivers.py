"""What each ODBC driver we support needs in its connection string: to stream, and to be exact.

Options the caller already set are left alone (the fidelity checks then catch what they cost).
Measured on this machine (see docs/decisions.md):
- psqlODBC loads whole result sets unless `UseDeclareFetch=1` (817 MB vs 50 MB peak for 1M x 17);
  `timestamptz` values arrive in the session's time zone with the zone dropped, so the session
  is pinned to UTC (`ConnSettings`) and the CSV says UTC whatever the server's default.
- The SQLite3 driver (libsqliteodbc) needs `StepAPI=1` to stream (517 MB vs 75 MB for 2M rows),
  `BigInt=1` or integers beyond 32 bits arrive as 0 / -1, and `NoCreat=1` or a path to a
  missing file silently creates an empty database. Its wide-character (W) functions garble
  non-ASCII SQL text and column names, so SQL goes to it as UTF-8 and names are read as data.
- Microsoft's ODBC Driver 18 needs nothing here; its types that pyodbc cannot read exactly are
  handled by output converters (functions/export/fidelity.py).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pyodbc

from functions.retry import PermanentError

SQLITE, POSTGRESQL, MSSQL, OTHER = "sqlite", "postgresql", "mssql", "other"

_DRIVER = re.compile(r"(?:^|;)\s*driver\s*=\s*\{?([^;}]*)", re.I)
_OPTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    POSTGRESQL: (("UseDeclareFetch", "1"), ("Fetch", "10000"), ("ConnSettings", "SET TimeZone TO 'UTC'")),
    SQLITE: (("StepAPI", "1"), ("BigInt", "1"), ("NoCreat", "1")),
}


def kind(connection_string: str) -> str:
    """Which driver family a connection string names (by its `Driver=` keyword)."""
    match = _DRIVER.search(connection_string)
    name = match.group(1).strip().lower() if match else ""
    if name.startswith("sqlite"):
        return SQLITE
    if name.startswith("postgresql") or name.startswith("psqlodbc"):
        return POSTGRESQL
    if "sql server" in name or name.startswith("msodbcsql"):
        return MSSQL
    return OTHER


def option(connection_string: str, key: str) -> str | None:
    """The value of one `key=value` option (case-insensitive key), or None when it is not set."""
    for part in connection_string.split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip().lower() == key.lower():
            return value.strip().strip("{}")
    return None


def with_driver_options(connection_string: str) -> str:
    """The connection string plus the options its driver needs that the caller did not set."""
    missing = [
        f"{key}={value}"
        for key, value in _OPTIONS.get(kind(connection_string), ())
        if option(connection_string, key) is None
    ]
    if not missing:
        return connection_string
    return connection_string.rstrip("; ") + ";" + ";".join(missing) + ";"


def check_source(connection_string: str) -> None:
    """Refuse, before connecting, what a driver would otherwise turn into a misleading error.

    A SQLite path to a missing file would create an empty database (or, with NoCreat, fail with
    "connect failed (14)"); either way the operator should read that the file is not there.
    """
    if kind(connection_string) != SQLITE:
        return
    database = option(connection_string, "Database")
    if not database:
        raise PermanentError("DB_CONNECTION_STRING names the SQLite3 driver but no Database=<file>")
    if database == ":memory:" or database.startswith("file:"):
        return
    if not Path(database).is_file():
        raise PermanentError(
            f"the SQLite database file {database} does not exist (DB_CONNECTION_STRING Database=...); "
            "the export never creates one"
        )


def sqlite_bigint_off(connection_string: str) -> bool:
    """True when the caller switched BigInt off: integers then need a 32-bit range check."""
    value = option(connection_string, "BigInt")
    return value is not None and value.lower() in {"0", "false", "no", "off"}


def connect(connection_string: str, timeout_s: int = 30) -> pyodbc.Connection:
    """Open a read-only-intent ODBC connection that streams results and delivers values exactly."""
    check_source(connection_string)
    connection = pyodbc.connect(with_driver_options(connection_string), timeout=timeout_s, autocommit=True)
    family = kind(connection_string)
    if family == SQLITE:
        # Its wide-character entry points garble non-ASCII SQL text ("unrecognized token"):
        # send SQL and parameters as UTF-8 through the narrow ones, which SQLite reads natively.
        connection.setencoding(encoding="utf-8")
    elif family == MSSQL:
        add_mssql_converters(connection)
    return connection


def describe(connection: pyodbc.Connection) -> str:
    """Driver and server names for the manifest; never the connection string (it may hold secrets)."""
    info = []
    for key in (pyodbc.SQL_DBMS_NAME, pyodbc.SQL_DBMS_VER, pyodbc.SQL_DRIVER_NAME, pyodbc.SQL_DRIVER_VER):
        try:
            info.append(str(connection.getinfo(key)))
        except pyodbc.Error:
            info.append("?")
    return f"{info[0]} {info[1]} via {info[2]} {info[3]}"


# --- Microsoft ODBC Driver 18 for SQL Server ----------------------------------------------------
# pyodbc reads `datetime2` through a Python datetime (microseconds: the 7th digit of datetime2(7)
# is lost) and cannot read `datetimeoffset` (SQL type -155) at all. Output converters receive the
# driver's raw bytes instead: SQL_TIMESTAMP_STRUCT (year, month, day, hour, minute, second as
# 16-bit integers, fraction in nanoseconds as a 32-bit integer) and SQL_SS_TIMESTAMPOFFSET_STRUCT
# (the same plus the offset's hours and minutes), as Microsoft documents them for ODBC
# ("Data Type Support for ODBC Date and Time Improvements"; pyodbc's wiki uses the same layout).
SQL_TYPE_TIMESTAMP = 93
SQL_SS_TIMESTAMPOFFSET = -155
_TIMESTAMP = struct.Struct("<6hI")
_TIMESTAMP_OFFSET = struct.Struct("<6hI2h")


def _fraction(nanoseconds: int) -> str:
    """Python's isoformat digits where they suffice (none, or microseconds), else all that are set."""
    if nanoseconds == 0:
        return ""
    if nanoseconds % 1000 == 0:
        return f".{nanoseconds // 1000:06d}"
    return f".{nanoseconds:09d}".rstrip("0")


def mssql_timestamp(raw: bytes | None) -> str | None:
    """`datetime2` / `datetime` as ISO 8601 text with every fractional digit the server holds."""
    if raw is None:
        return None
    year, month, day, hour, minute, second, fraction = _TIMESTAMP.unpack(raw)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{_fraction(fraction)}"


def mssql_timestamp_offset(raw: bytes | None) -> str | None:
    """`datetimeoffset` as ISO 8601 text with its offset (`+05:30`), every fractional digit kept."""
    if raw is None:
        return None
    *parts, offset_hours, offset_minutes = _TIMESTAMP_OFFSET.unpack(raw)
    local = mssql_timestamp(_TIMESTAMP.pack(*parts))
    sign = "-" if offset_hours < 0 or offset_minutes < 0 else "+"
    return f"{local}{sign}{abs(offset_hours):02d}:{abs(offset_minutes):02d}"


def add_mssql_converters(connection: pyodbc.Connection) -> None:
    connection.add_output_converter(SQL_TYPE_TIMESTAMP, mssql_timestamp)
    connection.add_output_converter(SQL_SS_TIMESTAMPOFFSET, mssql_timestamp_offset)
