"""Exact round trip of awkward values, from real databases through real ODBC drivers to Azurite."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from devstack.postgres import PostgresCluster
from functions.export.spec import ExportSpec
from lake import paths as lake_paths
from tests.conftest import sqlite_odbc
from tests.support import DAY1, blob_names, export_one, read_export

AWKWARD_STRINGS = [
    None,
    "",
    "plain",
    "Zoë 日本語 🚀 ñ",
    'she said "hi"',
    "a,b;c|d\te",
    "line1\nline2\r\nline3\rend",
    " leading and trailing ",
    "=1+2",
    '""',
    "NULL",
]


def _pg(cluster: PostgresCluster, sql: str, stdin: str | None = None) -> str:
    return subprocess.run(  # noqa: S603 - psql of the throwaway cluster with this test's SQL
        [*cluster.psql_args(), "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.integration
def test_postgres_round_trip_is_exact_through_copy_from(postgres, exports_container, blob_service):
    """The CSV loads back with PostgreSQL's own COPY FROM ... CSV and equals the source, row for row."""
    _pg(postgres, "DROP TABLE IF EXISTS awkward, awkward_back")
    _pg(
        postgres,
        """CREATE TABLE awkward (id integer PRIMARY KEY, label text, amount numeric(38,10),
        tiny numeric(20,18), day date, at timestamp, ratio double precision, big bigint, flag boolean)""",
    )
    values = []
    for i, label in enumerate(AWKWARD_STRINGS, start=1):
        literal = "NULL" if label is None else "'" + label.replace("'", "''") + "'"
        values.append(
            f"({i}, {literal}, {'NULL' if i == 2 else '12345678901234567890123456.1234567890'}, "
            f"{'0.000000000000000001' if i % 2 else '-0.5'}, "
            f"{'NULL' if i == 3 else repr(str(dt.date(1900 + i * 9, 2, 28)))}, "
            f"'2008-05-05 09:30:0{i % 10}.123456', {i / 3!r}, {-(2**62) + i}, "
            f"{'NULL' if i == 4 else i % 2 == 0})"
        )
    _pg(postgres, "INSERT INTO awkward VALUES " + ", ".join(values))  # noqa: S608 - literals this test builds from its own constants

    result = export_one(
        postgres.odbc_connection_string, exports_container, ExportSpec("awkward", table="awkward")
    )
    assert result.ok, result.error
    assert result.rows == len(AWKWARD_STRINGS)
    csv_text = (
        exports_container.download_blob(lake_paths.export_csv_path("awkward", DAY1)).readall().decode("utf-8")
    )

    _pg(postgres, "CREATE TABLE awkward_back (LIKE awkward)")
    _pg(postgres, "COPY awkward_back FROM STDIN WITH (FORMAT csv, HEADER true)", stdin=csv_text)
    differences = _pg(
        postgres,
        """SELECT count(*) FROM ((TABLE awkward EXCEPT ALL TABLE awkward_back)
                                   UNION ALL (TABLE awkward_back EXCEPT ALL TABLE awkward)) d""",
    )
    assert differences.strip() == "0"
    assert _pg(postgres, "SELECT count(*) FROM awkward_back WHERE label IS NULL").strip() == "1"
    assert _pg(postgres, "SELECT count(*) FROM awkward_back WHERE label = ''").strip() == "1"

    manifest, records = read_export(exports_container, "awkward")
    assert [c.name for c in manifest.columns] == [
        "id",
        "label",
        "amount",
        "tiny",
        "day",
        "at",
        "ratio",
        "big",
        "flag",
    ]
    assert manifest.columns[2].type == "decimal" and manifest.columns[4].type == "date"
    assert records[1][2] == "12345678901234567890123456.1234567890"  # exact, never scientific
    assert records[1][3] == "0.000000000000000001"
    assert records[1][5] == "2008-05-05T09:30:01.123456"
    assert "PostgreSQL" in manifest.source_driver and "Pwd" not in manifest.to_json()


@pytest.mark.integration
def test_sqlite_round_trip_is_exact(sqlite_db: Path, exports_container):
    with sqlite3.connect(sqlite_db) as db:
        db.execute(
            "CREATE TABLE awkward (id INTEGER PRIMARY KEY, label TEXT, amount DECIMAL(38,10), "
            "day DATE, n REAL)"
        )
        db.executemany(
            "INSERT INTO awkward VALUES (?, ?, ?, ?, ?)",
            [
                (i, s, "12345.6789" if i % 2 else None, "2008-05-05" if i % 3 else None, i / 4)
                for i, s in enumerate(AWKWARD_STRINGS, start=1)
            ],
        )
    result = export_one(sqlite_odbc(sqlite_db), exports_container, ExportSpec("awkward", table="awkward"))
    assert result.ok, result.error

    manifest, records = read_export(exports_container, "awkward")
    header, rows = records[0], records[1:]
    assert header == ["id", "label", "amount", "day", "n"]
    assert [r[1] for r in rows] == AWKWARD_STRINGS  # NULL and "" stay apart; everything else verbatim
    assert [r[0] for r in rows] == [str(i) for i in range(1, len(AWKWARD_STRINGS) + 1)]
    assert rows[0][3] == "2008-05-05" and rows[2][3] is None
    assert decimal.Decimal(rows[0][2]) == decimal.Decimal("12345.6789") and rows[1][2] is None
    assert [float(r[4]) for r in rows] == [i / 4 for i in range(1, len(AWKWARD_STRINGS) + 1)]
    assert manifest.rows == len(AWKWARD_STRINGS)
    assert blob_names(exports_container) == [
        "awkward/2026-11-01/_manifest.json",
        "awkward/2026-11-01/awkward.csv",
    ]


@pytest.mark.integration
def test_manifest_describes_the_csv_exactly(sqlite_db: Path, exports_container):
    import hashlib

    with sqlite3.connect(sqlite_db) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        db.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"name {i}") for i in range(2500)])
    result = export_one(
        sqlite_odbc(sqlite_db),
        exports_container,
        ExportSpec("t", table="t"),
        chunk_rows=700,
        block_bytes=4096,
    )
    assert result.ok, result.error
    data = exports_container.download_blob(lake_paths.export_csv_path("t", DAY1)).readall()
    manifest, records = read_export(exports_container, "t")
    assert manifest.sha256 == hashlib.sha256(data).hexdigest() == result.sha256
    assert manifest.bytes == len(data) and manifest.rows == 2500 == len(records) - 1
    assert manifest.export_date == "2026-11-01" and manifest.watermark is None
    assert dt.datetime.fromisoformat(manifest.started_at) <= dt.datetime.fromisoformat(manifest.finished_at)
    assert manifest.csv["null"].startswith("empty unquoted field")
    props = exports_container.get_blob_client(lake_paths.export_csv_path("t", DAY1)).get_blob_properties()
    assert props.content_settings.content_type == "text/csv; charset=utf-8"
    assert props.metadata["sha256"] == manifest.sha256


@pytest.mark.integration
def test_formula_guard_is_off_by_default_and_prefixes_when_on(sqlite_db: Path, exports_container):
    with sqlite3.connect(sqlite_db) as db:
        db.execute("CREATE TABLE f (id INTEGER PRIMARY KEY, cell TEXT)")
        db.executemany(
            "INSERT INTO f VALUES (?, ?)", enumerate(["=cmd|'/c calc'!A1", "+1", "-2", "@x", "safe"])
        )
    spec = ExportSpec("f", table="f")
    assert export_one(sqlite_odbc(sqlite_db), exports_container, spec).ok
    _, plain = read_export(exports_container, "f")
    assert [r[1] for r in plain[1:]] == ["=cmd|'/c calc'!A1", "+1", "-2", "@x", "safe"]
    assert export_one(
        sqlite_odbc(sqlite_db), exports_container, spec, export_date=DAY1, formula_guard=True
    ).ok
    _, guarded = read_export(exports_container, "f")
    assert [r[1] for r in guarded[1:]] == ["'=cmd|'/c calc'!A1", "'+1", "'-2", "'@x", "safe"]
