"""Build the demo "company database" from the UCI Bank Marketing file, loaded through pyodbc.

The exporter under development reads a customer database over ODBC, so the demo data is written
through the very same drivers (SQLite3 and PostgreSQL Unicode) rather than through sqlite3 or
psycopg: whatever the drivers do to types (dates, small integers, strings) on the way in is then
what the exporter sees on the way out.

Two tables come out of `data/bank_marketing/bank_marketing.csv` (CC BY 4.0, see its README):

- `clients`: the client attributes, with the SAME column names as the bank CSV, so that an export
  of this table can be scored directly by a model trained on that CSV;
- `campaign_outcomes`: what happened on the call (`contact_date`, `duration`, `subscribed`),
  kept apart because `y` and `duration` are outcomes, known only after the call, and must never
  reach a model that decides whom to call.

Usage: `python -m devstack.demo_data --sqlite demo.db` or `--odbc "Driver=...;..." [--limit N]`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import pyodbc

from devstack.bank_rows import (
    BANK_CSV,
    CLIENT_COLUMNS,
    CLIENTS_TABLE,
    OUTCOME_COLUMNS,
    OUTCOMES_TABLE,
    BankRow,
    read_bank_rows,
)
from functions.export.spec import quote_identifier

log = logging.getLogger(__name__)

_INTEGER_COLUMNS = frozenset({"client_id", "age", "balance", "day", "campaign", "pdays", "previous"})
# The longest value in the file is 13 characters ("self-employed"). A bounded VARCHAR rather than
# TEXT because psqlodbc reports TEXT as SQL_LONGVARCHAR, which ODBC clients fetch piecewise.
_VARCHAR = "VARCHAR(32)"


def sqlite_connection_string(db_path: Path) -> str:
    """ODBC connection string for a SQLite file through the SQLite3 driver, with bounded reads.

    By default the SQLite3 ODBC driver (libsqliteodbc 0.9998) runs a SELECT get_table-style,
    i.e. it loads the WHOLE result into memory at execute time, whatever pyodbc fetches. It only
    steps through rows (sqlite3_step) when `StepAPI=1` AND the connection is not inside a driver
    transaction AND the statement has no parameters AND no other statement on the connection is
    mid-step. pyodbc connects with autocommit off, so the driver has opened a transaction before
    the first SELECT and StepAPI alone changes nothing; `NoTXN=1` stops the driver from opening
    transactions (commit/rollback become no-ops), which makes a plain pyodbc connection stream.

    Measured (peak RSS of a subprocess, `execute("select id, a, b, d from big")` then
    `fetchmany(10000)` until empty, 2,000,000 rows, 93 MB file, ~3-4 s each):
      no options / StepAPI=0 / NoWCHAR=1 / LongNames=1 / NoTXN=1 alone ......... 360 MB
      StepAPI=1 (pyodbc default autocommit=False) .............................. 360 MB
      StepAPI=1 with pyodbc.connect(..., autocommit=True) ....................... 25 MB
      StepAPI=1;NoTXN=1 (either autocommit) ..................................... 25 MB
      StepAPI=1;NoTXN=1 but `where id > ?` with a parameter ..................... 360 MB
      StepAPI=1;NoTXN=1 with a second cursor still open on a SELECT ............. 360 MB
    (baseline after connect: 18 MB.) So memory is bounded only for parameterless SELECTs, one
    open result at a time per connection. The price of NoTXN=1: a connection that WRITES must
    run its own BEGIN/COMMIT, or every INSERT is its own fsync'd transaction (5,000 inserts took
    3.4 s instead of 0.03 s); `load_demo_database` does exactly that.

    The driver's key/value parser knows nothing of ODBC's {braces}, so a path containing ';'
    cannot be expressed and is refused rather than silently opening another file.
    """
    absolute = Path(db_path).expanduser().resolve()
    if ";" in str(absolute):
        raise ValueError(f"the SQLite3 ODBC driver cannot open a path containing ';': {absolute}")
    return f"Driver=SQLite3;Database={absolute};StepAPI=1;NoTXN=1;"


@dataclass(frozen=True)
class _Dialect:
    """The few things that differ between the two supported databases."""

    name: str
    #: SQLite: we keep the driver in autocommit and run BEGIN/COMMIT ourselves, because with
    #: NoTXN=1 (see sqlite_connection_string) the driver's own commit is a no-op.
    explicit_transaction: bool
    #: pyodbc's fast_executemany sends ODBC parameter arrays. psqlodbc 13 handles them correctly
    #: (row 1 and row 36,000 read back identical) and faster: full 36,000-row load into a loopback
    #: cluster 6.6-7.3 s with it vs 10.0-10.5 s without; 12,000 rows 2.7-2.8 s vs 3.9-4.1 s. (With
    #: `UseServerSidePrepare=0;` in the caller's connection string the 12,000 rows took 1.5 s.)
    #: NEVER with the SQLite3 driver: fast_executemany there crashed the process (segfault,
    #: libsqliteodbc 0.9998); its plain executemany loads 36,000 rows in ~1.3-1.8 s anyway.
    try_fast_executemany: bool


_SQLITE = _Dialect("SQLite", explicit_transaction=True, try_fast_executemany=False)
_POSTGRES = _Dialect("PostgreSQL", explicit_transaction=False, try_fast_executemany=True)


def _detect_dialect(connection: pyodbc.Connection) -> _Dialect:
    """Pick the dialect from what the driver says the DBMS is, not from the connection string."""
    dbms = str(connection.getinfo(pyodbc.SQL_DBMS_NAME))
    lowered = dbms.lower()
    if lowered.startswith("sqlite"):
        return _SQLITE
    if lowered.startswith("postgresql"):
        return _POSTGRES
    raise ValueError(f"unsupported DBMS {dbms!r}: the demo database loads into SQLite or PostgreSQL only")


def _ddl() -> list[str]:
    """DROP then CREATE both tables, so a load can be re-run and always ends with exactly one copy.

    Both dialects accept the same DDL. DATE is a real date type in PostgreSQL. In SQLite it is only
    a declared type; what the SQLite3 ODBC driver does with it (checked, libsqliteodbc 0.9998):
    a `datetime.date` parameter is stored as the ISO text '2008-05-05' (`typeof()` = 'text', so
    it sorts and compares correctly), and a plain column read comes back through pyodbc as a
    `datetime.date`, because the driver maps the declared type DATE to SQL_TYPE_DATE. Expressions
    have no declared type and come back as VARCHAR: `MAX("contact_date")` is the str '2009-05-08'
    and even `COUNT(*)` is the str '36000'.
    """
    client_columns = ",\n  ".join(
        f"{quote_identifier(name)} INTEGER PRIMARY KEY"
        if name == "client_id"
        else f"{quote_identifier(name)} {'INTEGER' if name in _INTEGER_COLUMNS else _VARCHAR}"
        for name in CLIENT_COLUMNS
    )
    return [
        f"DROP TABLE IF EXISTS {quote_identifier(OUTCOMES_TABLE)}",
        f"DROP TABLE IF EXISTS {quote_identifier(CLIENTS_TABLE)}",
        f"CREATE TABLE {quote_identifier(CLIENTS_TABLE)} (\n  {client_columns}\n)",
        f"CREATE TABLE {quote_identifier(OUTCOMES_TABLE)} (\n"
        f"  {quote_identifier('client_id')} INTEGER PRIMARY KEY"
        f" REFERENCES {quote_identifier(CLIENTS_TABLE)} ({quote_identifier('client_id')}),\n"
        f"  {quote_identifier('contact_date')} DATE NOT NULL,\n"
        f"  {quote_identifier('duration')} INTEGER,\n"
        f"  {quote_identifier('subscribed')} SMALLINT NOT NULL"
        f" CHECK ({quote_identifier('subscribed')} IN (0, 1))\n"
        ")",
    ]


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(quote_identifier(column) for column in columns)
    return f"INSERT INTO {quote_identifier(table)} ({names}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608 - identifiers pass quote_identifier; values are ? parameters


def _batches(rows: Iterable[BankRow], size: int) -> Iterator[list[BankRow]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _insert_all(cursor: pyodbc.Cursor, dialect: _Dialect, rows: Iterable[BankRow], batch_rows: int) -> int:
    """executemany both tables batch by batch; clients first so the foreign key always holds."""
    clients_sql = _insert_sql(CLIENTS_TABLE, CLIENT_COLUMNS)
    outcomes_sql = _insert_sql(OUTCOMES_TABLE, OUTCOME_COLUMNS)
    if dialect.try_fast_executemany:
        cursor.fast_executemany = True
    loaded = 0
    for batch in _batches(rows, batch_rows):
        cursor.executemany(clients_sql, [row.client_values() for row in batch])
        cursor.executemany(outcomes_sql, [row.outcome_values() for row in batch])
        loaded += len(batch)
        log.debug("inserted %d rows so far", loaded)
    return loaded


def load_demo_database(
    connection_string: str,
    *,
    csv_path: Path = BANK_CSV,
    limit: int | None = None,
    batch_rows: int = 5000,
) -> dict[str, int]:
    """(Re)create `clients` and `campaign_outcomes` from the bank CSV in one transaction.

    The load goes through pyodbc and the real ODBC driver so the demo database holds exactly what
    those drivers produce. Existing tables are dropped first, so running it twice gives one copy;
    if anything fails the transaction is rolled back and the previous tables survive. `limit`
    loads only the first N rows (fast tests); `batch_rows` bounds the memory per executemany.
    Returns the row counts read back from the database: {"clients": n, "campaign_outcomes": n}.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, not {batch_rows}")
    started = time.perf_counter()
    # autocommit=True first: the dialect decides below who runs the transaction.
    connection = pyodbc.connect(connection_string, autocommit=True)
    try:
        dialect = _detect_dialect(connection)
        log.info("loading %s into %s (limit=%s, batch_rows=%d)", csv_path, dialect.name, limit, batch_rows)
        if not dialect.explicit_transaction:
            connection.autocommit = False
        cursor = connection.cursor()
        try:
            if dialect.explicit_transaction:
                cursor.execute("BEGIN")
            for statement in _ddl():
                cursor.execute(statement)
            rows: Iterable[BankRow] = read_bank_rows(csv_path)
            if limit is not None:
                rows = islice(rows, limit)
            loaded = _insert_all(cursor, dialect, rows, batch_rows)
            if dialect.explicit_transaction:
                cursor.execute("COMMIT")
            else:
                connection.commit()
        except BaseException as exc:
            log.error("demo data load failed, rolling back: %r", exc)
            try:
                if dialect.explicit_transaction:
                    cursor.execute("ROLLBACK")
                else:
                    connection.rollback()
            except pyodbc.Error:
                log.warning("rollback failed as well", exc_info=True)
            raise
        counts = {
            table: int(cursor.execute(f"SELECT COUNT(*) FROM {quote_identifier(table)}").fetchone()[0])  # noqa: S608 - table names are this module's constants, quoted
            for table in (CLIENTS_TABLE, OUTCOMES_TABLE)
        }
        if not dialect.explicit_transaction:
            connection.commit()  # end the read transaction the counts opened
        cursor.close()
    finally:
        connection.close()
    log.info("loaded %d rows in %.2f s: %s", loaded, time.perf_counter() - started, counts)
    return counts


def main(argv: list[str] | None = None) -> int:
    """CLI: load the demo database into a SQLite file or any ODBC connection string."""
    parser = argparse.ArgumentParser(
        prog="python -m devstack.demo_data",
        description="Load the Bank Marketing demo data into clients + campaign_outcomes via pyodbc.",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--sqlite", type=Path, metavar="PATH", help="SQLite file (created if missing)")
    target.add_argument("--odbc", metavar="CONNSTR", help="ODBC connection string (SQLite3 or PostgreSQL)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="load only the first N rows")
    parser.add_argument("--csv", type=Path, default=BANK_CSV, help=f"bank CSV (default: {BANK_CSV})")
    parser.add_argument("--batch-rows", type=int, default=5000, metavar="N", help="rows per executemany")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every batch")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    if args.sqlite is not None:
        args.sqlite.parent.mkdir(parents=True, exist_ok=True)
        connection_string = sqlite_connection_string(args.sqlite)
    else:
        connection_string = args.odbc
    started = time.perf_counter()
    try:
        counts = load_demo_database(
            connection_string, csv_path=args.csv, limit=args.limit, batch_rows=args.batch_rows
        )
    except (ValueError, OSError, pyodbc.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    for table, count in counts.items():
        print(f"{table}: {count} rows")
    print(f"took {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
