"""The demo database loader, against the real SQLite3 and PostgreSQL Unicode ODBC drivers.

No mocks: the point of loading through pyodbc is that the demo database holds exactly what the
drivers produce, so the tests read it back through the same drivers.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pyodbc
import pytest

from devstack.bank_rows import BANK_CSV, CLIENT_COLUMNS, CSV_HEADER, OUTCOME_COLUMNS, BankRow, read_bank_rows
from devstack.demo_data import load_demo_database, main, sqlite_connection_string
from devstack.postgres import PostgresCluster, PostgresUnavailableError, find_pg_bin, start_cluster

# fmt: off
ROW_1_CLIENT = (1, 58, "management", "married", "tertiary", "no", 2143, "yes", "no", "unknown", 5, "may",
                1, -1, 0, "unknown")
# fmt: on
ROW_1_OUTCOME = (1, dt.date(2008, 5, 5), 261, 0)


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PostgresCluster]:
    """One throwaway cluster for the module; missing binaries skip locally but fail on CI."""
    try:
        find_pg_bin()
    except PostgresUnavailableError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required on CI: {exc}")
        pytest.skip(str(exc))
    with start_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def connection_string(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests run against both dialects the loader supports."""
    if request.param == "sqlite":
        return sqlite_connection_string(tmp_path / "demo.db")
    return request.getfixturevalue("pg_cluster").odbc_connection_string


def _select(connection_string: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    connection = pyodbc.connect(connection_string, autocommit=True)
    try:
        return [tuple(row) for row in connection.cursor().execute(sql, *params).fetchall()]
    finally:
        connection.close()


def _columns(connection_string: str, table: str) -> list[str]:
    connection = pyodbc.connect(connection_string, autocommit=True)
    try:
        cursor = connection.cursor().execute(f'SELECT * FROM "{table}" WHERE 1 = 0')  # noqa: S608 - table names are this test's constants
        return [description[0] for description in cursor.description]
    finally:
        connection.close()


def _quoted(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{column}"' for column in columns)


def _write_csv(path: Path, months: list[str], days: list[int] | None = None) -> Path:
    days = days or [5] * len(months)
    lines = [";".join(f'"{name}"' for name in CSV_HEADER)]
    for month, day in zip(months, days, strict=True):
        lines.append(
            f'40;"admin.";"single";"secondary";"no";100;"yes";"no";"cellular";{day};"{month}";'
            f'120;2;-1;0;"unknown";"yes"'
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_year_rolls_over_when_the_month_goes_backwards(tmp_path: Path) -> None:
    rows = list(read_bank_rows(_write_csv(tmp_path / "tiny.csv", ["may", "dec", "jan"], [5, 31, 2])))
    assert [row.client_id for row in rows] == [1, 2, 3]
    assert [row.contact_date for row in rows] == [
        dt.date(2008, 5, 5),
        dt.date(2008, 12, 31),
        dt.date(2009, 1, 2),
    ]
    assert [row.contact_date.year for row in rows] == [2008, 2008, 2009]
    assert all(row.subscribed == 1 and row.y == "yes" for row in rows)


def test_same_month_twice_does_not_roll_over(tmp_path: Path) -> None:
    rows = list(read_bank_rows(_write_csv(tmp_path / "tiny.csv", ["may", "may", "jun", "may"])))
    assert [row.contact_date.year for row in rows] == [2008, 2008, 2008, 2009]


def test_first_real_row_is_typed() -> None:
    first = next(read_bank_rows())
    assert first == BankRow(
        client_id=1,
        age=58,
        job="management",
        marital="married",
        education="tertiary",
        default="no",
        balance=2143,
        housing="yes",
        loan="no",
        contact="unknown",
        day=5,
        month="may",
        duration=261,
        campaign=1,
        pdays=-1,
        previous=0,
        poutcome="unknown",
        y="no",
        contact_date=dt.date(2008, 5, 5),
    )
    assert first.subscribed == 0
    assert first.client_values() == ROW_1_CLIENT
    assert first.outcome_values() == ROW_1_OUTCOME


def test_bad_header_and_bad_rows_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("a;b\n1;2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unexpected header"):
        list(read_bank_rows(other))
    with pytest.raises(ValueError, match=r"tiny\.csv:3"):
        list(read_bank_rows(_write_csv(tmp_path / "tiny.csv", ["may", "foo"])))


def test_connection_string_streams_sqlite_results(tmp_path: Path) -> None:
    text = sqlite_connection_string(tmp_path / "x.db")
    assert text.startswith(f"Driver=SQLite3;Database={(tmp_path / 'x.db').resolve()};")
    assert "StepAPI=1;" in text and "NoTXN=1;" in text


def test_load_first_500_rows(connection_string: str) -> None:
    assert load_demo_database(connection_string, limit=500, batch_rows=128) == {
        "clients": 500,
        "campaign_outcomes": 500,
    }
    clients = _select(
        connection_string,
        f'SELECT {_quoted(CLIENT_COLUMNS)} FROM "clients" WHERE "client_id" = ?',  # noqa: S608 - column names are this test's constants
        1,
    )
    outcomes = _select(
        connection_string,
        f'SELECT {_quoted(OUTCOME_COLUMNS)} FROM "campaign_outcomes" WHERE "client_id" = ?',  # noqa: S608 - column names are this test's constants
        1,
    )
    assert clients == [ROW_1_CLIENT]
    assert [type(value) for value in clients[0]] == [type(value) for value in ROW_1_CLIENT]
    assert outcomes == [ROW_1_OUTCOME]
    assert type(outcomes[0][1]) is dt.date
    assert _select(connection_string, 'SELECT MIN("client_id"), MAX("client_id") FROM "clients"') in (
        [(1, 500)],
        [("1", "500")],  # the SQLite3 driver types expression columns as VARCHAR
    )


def test_clients_table_has_no_outcome_columns(connection_string: str) -> None:
    load_demo_database(connection_string, limit=5)
    clients = _columns(connection_string, "clients")
    assert clients == list(CLIENT_COLUMNS)
    assert not {"y", "duration", "subscribed", "contact_date"} & set(clients)
    assert _columns(connection_string, "campaign_outcomes") == list(OUTCOME_COLUMNS)


def test_reload_replaces_instead_of_duplicating(connection_string: str) -> None:
    load_demo_database(connection_string, limit=500)
    assert load_demo_database(connection_string, limit=500) == {"clients": 500, "campaign_outcomes": 500}
    assert load_demo_database(connection_string, limit=200) == {"clients": 200, "campaign_outcomes": 200}


def test_failed_load_rolls_back_to_previous_tables(connection_string: str, tmp_path: Path) -> None:
    load_demo_database(connection_string, limit=20)
    broken = _write_csv(tmp_path / "broken.csv", ["may", "jun"], [5, 31])  # 31 June does not exist
    with pytest.raises(ValueError, match="day is out of range"):
        load_demo_database(connection_string, csv_path=broken)
    assert _select(connection_string, 'SELECT "client_id" FROM "clients" ORDER BY "client_id"') == [
        (n,) for n in range(1, 21)
    ]


def test_full_file_loads_into_sqlite(tmp_path: Path) -> None:
    connection_string = sqlite_connection_string(tmp_path / "full.db")
    assert load_demo_database(connection_string) == {"clients": 36000, "campaign_outcomes": 36000}
    sql = 'SELECT "client_id", "contact_date" FROM "campaign_outcomes" WHERE "client_id" = ?'
    last = _select(connection_string, sql, 36000)
    assert last == [(36000, dt.date(2009, 5, 8))]  # may 2008 .. dec 2008, jan 2009 .. may 2009


def test_cli_loads_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db_path = tmp_path / "sub" / "cli.db"
    assert main(["--sqlite", str(db_path), "--limit", "50"]) == 0
    out = capsys.readouterr().out
    assert "clients: 50 rows" in out and "campaign_outcomes: 50 rows" in out and "took" in out
    assert db_path.exists()


def test_bank_csv_path_points_into_the_repo() -> None:
    assert BANK_CSV.is_file() and BANK_CSV.parts[-3:] == ("data", "bank_marketing", "bank_marketing.csv")
