"""Failures at every step leave nothing half-written; re-runs complete and never duplicate."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from functions.export.spec import ExportSpec, parse_export_tables
from functions.retry import RetryPolicy
from lake import paths as lake_paths
from tests.conftest import sqlite_odbc
from tests.support import (
    DAY1,
    DAY2,
    DAY3,
    Faults,
    FaultyContainerClient,
    blob_names,
    engine_options,
    export_one,
    read_export,
    server_error,
)

pytestmark = pytest.mark.integration
ROWS = 3000
SPEC = ExportSpec("clients", table="clients")


@pytest.fixture
def source(sqlite_db: Path) -> str:
    with sqlite3.connect(sqlite_db) as db:
        db.execute("CREATE TABLE clients (client_id INTEGER PRIMARY KEY, job TEXT, balance INTEGER)")
        db.executemany(
            "INSERT INTO clients VALUES (?, ?, ?)", [(i, f"job {i % 7}", i * 3) for i in range(ROWS)]
        )
    return sqlite_odbc(sqlite_db)


class InjectedError(RuntimeError):
    pass


def test_failure_during_fetch_leaves_nothing_and_rerun_completes(source, exports_container):
    def fail_after_first_chunk(_name: str, rows: int) -> None:
        if rows >= 1000:
            raise InjectedError("database went away")

    result = export_one(
        source, exports_container, SPEC, on_progress=fail_after_first_chunk, chunk_rows=500, block_bytes=1024
    )
    assert not result.ok and "database went away" in (result.error or "")
    assert blob_names(exports_container) == []  # blocks were staged, but nothing is visible

    rerun = export_one(source, exports_container, SPEC, chunk_rows=500, block_bytes=1024)
    assert rerun.ok and rerun.rows == ROWS
    assert blob_names(exports_container) == [
        "clients/2026-11-01/_manifest.json",
        "clients/2026-11-01/clients.csv",
    ]


def test_failure_during_upload_leaves_nothing(source, exports_container, azurite):
    faults = Faults(stage_block=(3, InjectedError("disk full")))
    faulty = FaultyContainerClient.wrap(exports_container, azurite.connection_string, faults)
    result = export_one(source, faulty, SPEC, chunk_rows=200, block_bytes=2048)
    assert not result.ok and "disk full" in (result.error or "")
    assert faults.calls["stage_block"] == 3
    assert blob_names(exports_container) == []


def test_failure_at_commit_leaves_nothing(source, exports_container, azurite):
    faults = Faults(commit_block_list=(1, InjectedError("commit refused")))
    faulty = FaultyContainerClient.wrap(exports_container, azurite.connection_string, faults)
    assert not export_one(source, faulty, SPEC).ok
    assert blob_names(exports_container) == []


def test_failure_before_manifest_removes_the_csv_again(source, exports_container, azurite):
    faults = Faults(upload_manifest=(1, InjectedError("manifest write failed")))
    faulty = FaultyContainerClient.wrap(exports_container, azurite.connection_string, faults)
    result = export_one(source, faulty, SPEC)
    assert not result.ok and "manifest write failed" in (result.error or "")
    assert blob_names(exports_container) == []  # the committed CSV was rolled back

    assert export_one(source, exports_container, SPEC).ok
    manifest, records = read_export(exports_container, "clients")
    assert manifest.rows == ROWS == len(records) - 1


def test_failed_rerun_keeps_the_previous_complete_export(source, exports_container, azurite):
    assert export_one(source, exports_container, SPEC).ok
    before = {b.name: b.etag for b in exports_container.list_blobs()}
    faults = Faults(stage_block=(1, InjectedError("storage hiccup")))
    faulty = FaultyContainerClient.wrap(exports_container, azurite.connection_string, faults)
    assert not export_one(source, faulty, SPEC).ok
    assert {b.name: b.etag for b in exports_container.list_blobs()} == before


def test_transient_storage_error_is_retried_and_permanent_fails_fast(source, exports_container, azurite):
    faults = Faults(stage_block=(1, server_error()))
    faulty = FaultyContainerClient.wrap(exports_container, azurite.connection_string, faults)
    result = export_one(source, faulty, SPEC, retry=RetryPolicy(attempts=3, first_delay_s=0))
    assert result.ok and result.attempts == 2 and result.rows == ROWS

    missing = export_one(
        source,
        exports_container,
        ExportSpec("nope", table="nope"),
        retry=RetryPolicy(attempts=4, first_delay_s=0),
    )
    assert not missing.ok and missing.attempts == 1
    assert "table nope does not exist in the source database" in (missing.error or "")


def test_rerun_same_day_is_idempotent(source, exports_container):
    first = export_one(source, exports_container, SPEC)
    second = export_one(source, exports_container, SPEC)
    assert first.ok and second.ok
    assert first.sha256 == second.sha256 and first.rows == second.rows == ROWS
    assert blob_names(exports_container) == [
        "clients/2026-11-01/_manifest.json",
        "clients/2026-11-01/clients.csv",
    ]


def test_incremental_exports_only_rows_past_the_previous_watermark(sqlite_db, exports_container):
    with sqlite3.connect(sqlite_db) as db:
        db.execute(
            "CREATE TABLE outcomes (client_id INTEGER PRIMARY KEY, contact_date DATE, subscribed INTEGER)"
        )
        db.executemany(
            "INSERT INTO outcomes VALUES (?, ?, ?)",
            [(i, f"2008-05-{1 + i % 20:02d}", i % 2) for i in range(100)],
        )
    source = sqlite_odbc(sqlite_db)
    spec = parse_export_tables("outcomes:contact_date")[0]

    day1 = export_one(source, exports_container, spec, DAY1)
    assert day1.ok and day1.rows == 100
    m1, _ = read_export(exports_container, "outcomes", DAY1)
    assert m1.watermark is not None and m1.watermark.value == "2008-05-20" and m1.watermark.previous is None

    with sqlite3.connect(sqlite_db) as db:
        db.executemany(
            "INSERT INTO outcomes VALUES (?, ?, ?)", [(100 + i, "2008-06-02", 1) for i in range(7)]
        )
    day2 = export_one(source, exports_container, spec, DAY2)
    m2, records = read_export(exports_container, "outcomes", DAY2)
    assert day2.rows == 7 == len(records) - 1
    assert {r[1] for r in records[1:]} == {"2008-06-02"}
    assert m2.watermark is not None and (m2.watermark.previous, m2.watermark.value) == (
        "2008-05-20",
        "2008-06-02",
    )

    again = export_one(source, exports_container, spec, DAY2)  # re-run of day 2: same rows, same bytes
    assert again.rows == 7 and again.sha256 == day2.sha256

    day3 = export_one(source, exports_container, spec, DAY3)  # nothing new: empty export, mark kept
    m3, records = read_export(exports_container, "outcomes", DAY3)
    assert day3.ok and day3.rows == 0 and len(records) == 1
    assert m3.watermark is not None and m3.watermark.value == "2008-06-02"


def test_bad_and_malicious_names_fail_alone(source, sqlite_db, exports_container):
    from functions.export.engine import Exporter

    specs = parse_export_tables('clients, clients; DROP TABLE clients --, "clients", ../etc/passwd, ghost')
    settings, tuning = engine_options(retry=RetryPolicy(1))
    exporter = Exporter(source, exports_container, settings, tuning=tuning)
    report = exporter.export_all(specs, DAY1)
    assert not report.ok
    assert [r.name for r in report.results if r.ok] == ["clients"]
    errors = {r.name: r.error or "" for r in report.failed}
    assert "is not allowed" in errors["clients; DROP TABLE clients --"]
    assert "is not allowed" in errors['"clients"'] and "is not allowed" in errors["../etc/passwd"]
    assert "table ghost does not exist" in errors["ghost"]
    assert all(n.startswith("clients/") for n in blob_names(exports_container))
    with sqlite3.connect(sqlite_db) as db:  # the injection attempt did not run
        assert db.execute("SELECT count(*) FROM clients").fetchone()[0] == ROWS


def test_named_query_with_parameters_only_in_values(source, exports_container):
    spec = parse_export_tables(
        "rich_clients", {"rich_clients": "SELECT client_id, balance FROM clients WHERE balance > 8000"}
    )[0]
    result = export_one(source, exports_container, spec)
    _, records = read_export(exports_container, "rich_clients")
    assert result.ok and records[0] == ["client_id", "balance"]
    assert len(records) - 1 == sum(1 for i in range(ROWS) if i * 3 > 8000)


def test_lost_postgres_connection_mid_export_is_retried(postgres, exports_container):
    """A real server-side kill of the exporting session: transient, so the export starts again."""
    psql = postgres.psql_args()
    subprocess.run(  # noqa: S603 - psql of the throwaway cluster with fixed SQL
        [
            *psql,
            "-q",
            "-c",
            "DROP TABLE IF EXISTS big; CREATE TABLE big AS "
            "SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 50000) g; "
            "ALTER TABLE big ADD PRIMARY KEY (id)",
        ],
        check=True,
    )
    killed = []

    def kill_once(_name: str, rows: int) -> None:
        if not killed and rows >= 2000:
            killed.append(rows)
            subprocess.run(  # noqa: S603 - psql of the throwaway cluster with fixed SQL
                [
                    *psql,
                    "-qAt",
                    "-c",
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()",
                ],
                check=True,
            )

    spec = ExportSpec("big", table="big")
    no_retry = export_one(
        postgres.odbc_connection_string, exports_container, spec, on_progress=kill_once, chunk_rows=1000
    )
    assert not no_retry.ok and blob_names(exports_container) == []

    killed.clear()
    result = export_one(
        postgres.odbc_connection_string,
        exports_container,
        spec,
        on_progress=kill_once,
        chunk_rows=1000,
        retry=RetryPolicy(attempts=3, first_delay_s=0),
    )
    assert killed and result.ok and result.attempts == 2 and result.rows == 50000
    manifest, records = read_export(exports_container, "big")
    assert manifest.rows == 50000 == len(records) - 1
    assert lake_paths.export_csv_path("big", DAY1) in blob_names(exports_container)


@pytest.mark.parametrize("workers", [1, 2])
def test_failed_attempt_closes_its_connections_before_the_retry_waits(
    postgres, exports_container, azurite, workers
):
    """While the retry backs off, the failed attempt holds no database session (one stream or workers)."""
    from functions.export.engine import Exporter

    psql = postgres.psql_args()
    subprocess.run(  # noqa: S603 - psql of the throwaway cluster with fixed SQL
        [
            *psql,
            "-q",
            "-c",
            "DROP TABLE IF EXISTS wide; CREATE TABLE wide AS "
            "SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 20000) g; "
            "ALTER TABLE wide ADD PRIMARY KEY (id)",
        ],
        check=True,
    )
    sessions_during_backoff: list[int] = []

    def sleep(_seconds: float) -> None:
        count = subprocess.run(  # noqa: S603 - psql of the throwaway cluster with fixed SQL
            [
                *psql,
                "-qAt",
                "-c",
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        sessions_during_backoff.append(int(count))

    faults = Faults(stage_block=(2, server_error()))
    faulty = FaultyContainerClient.wrap(exports_container, azurite.connection_string, faults)
    settings, tuning = engine_options(
        retry=RetryPolicy(attempts=2, first_delay_s=0),
        block_bytes=64 * 1024,
        chunk_rows=1000,
        workers=workers,
        parallel_min_rows=1000,
        range_rows=5000,
    )
    result = Exporter(postgres.odbc_connection_string, faulty, settings, sleep=sleep, tuning=tuning).export(
        ExportSpec("wide", table="wide"), DAY1
    )
    assert result.ok and result.attempts == 2 and result.rows == 20000
    assert sessions_during_backoff == [0]


ROWS_TO_KILL = 240_000


def test_a_crashed_reading_process_is_a_retried_attempt(sqlite_db: Path, exports_container):
    """The driver runs in a child (functions/export/isolated.py): when it dies mid-table (here: SIGKILL,
    as a driver segfault would end it), the attempt is retried and the export completes exactly once."""
    with sqlite3.connect(sqlite_db) as db:
        db.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, label TEXT)")
        # enough rows that the reader outlives the killer's pause on a fast machine (60,000 once did not)
        db.executemany("INSERT INTO big VALUES (?, ?)", [(i, f"label {i}") for i in range(ROWS_TO_KILL)])
    spec = ExportSpec("big", table="big")
    clean = export_one(sqlite_odbc(sqlite_db), exports_container, spec, workers=1)
    assert clean.ok, clean.error
    killed: list[int] = []

    def kill_first_reader() -> None:
        deadline = time.monotonic() + 30
        while not killed and time.monotonic() < deadline:
            for child in multiprocessing.active_children():
                if child.name == "export-reader":
                    time.sleep(0.1)  # let it start fetching
                    os.kill(child.pid, signal.SIGKILL)
                    killed.append(child.pid)
                    return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_first_reader)
    killer.start()
    result = export_one(
        sqlite_odbc(sqlite_db), exports_container, spec, DAY2, retry=RetryPolicy(attempts=3, first_delay_s=0),
        workers=1, chunk_rows=50,
    )  # fmt: skip
    killer.join()
    assert killed, "no reading child was seen"
    assert result.ok and result.attempts == 2, result
    assert result.sha256 == clean.sha256 and result.rows == ROWS_TO_KILL
    assert blob_names(exports_container) == sorted(
        [lake_paths.export_csv_path("big", d) for d in (DAY1, DAY2)]
        + [lake_paths.export_manifest_path("big", d) for d in (DAY1, DAY2)]
    )


@pytest.mark.parametrize("failures", [1, 99])
def test_publishing_is_retried_and_a_failure_fails_the_table(source, azurite, monkeypatch, failures):
    """Found by the fault suite: the copy into scoring-input/ was not retried, and a failure escaped
    as a traceback. Now it is retried like an export; if it keeps failing, that table fails."""
    from functions.export import job
    from functions.settings import load_settings

    settings = load_settings(
        {
            "DataLake": azurite.connection_string,
            "DB_CONNECTION_STRING": source,
            "EXPORT_TABLES": "clients",
            "EXPORT_PUBLISH_TABLES": "clients",
        }
    )
    real, calls = job.publish_for_scoring, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) <= failures:
            raise server_error("injected 503 while publishing")
        return real(*args, **kwargs)

    monkeypatch.setattr(job, "publish_for_scoring", flaky)
    fast = job.ExportTuning(retry=RetryPolicy(attempts=3, first_delay_s=0))
    report = job.run_export(settings, DAY3, tuning=fast)
    (result,) = report.results
    if failures == 1:
        assert report.ok and len(calls) == 2
    else:
        assert not report.ok and len(calls) == 3
        assert "publishing to scoring-input/clients-2026-11-03.csv failed" in result.error
