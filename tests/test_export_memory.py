"""Memory stays bounded whatever the table size: 2 million rows exported in a child process."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import sqlite_odbc

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROWS = 2_000_000
PEAK_RSS_BOUND_MB = 120  # interpreter + SDK + driver ~70 MB; the CSV (~167 MB) is larger than the bound

CHILD = """
import datetime as dt, json, resource, sys
from azure.storage.blob import ContainerClient
from functions import clients
from functions.export.engine import Exporter, ExportOptions
from functions.export.spec import ExportSpec
odbc, storage, container_name = sys.argv[1:4]
container = ContainerClient.from_connection_string(storage, container_name)
result = Exporter(lambda: clients.database(odbc), container, ExportOptions()).export(
    ExportSpec("big", table="big"), dt.date(2026, 11, 1))
print(json.dumps({"ok": result.ok, "error": result.error, "rows": result.rows, "bytes": result.bytes,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def test_two_million_rows_export_with_bounded_memory(sqlite_db: Path, azurite, exports_container):
    with sqlite3.connect(sqlite_db) as db:
        db.execute(
            "CREATE TABLE big (id INTEGER PRIMARY KEY, job TEXT, note TEXT, balance INTEGER, day DATE)"
        )
        db.execute(
            "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ?) "
            "INSERT INTO big SELECT i, 'technician', "
            "printf('client %d notes, with a comma and \"quotes\"', i), "
            "i * 7 % 100000, date('2008-05-05', '+' || (i % 900) || ' days') FROM g",
            (ROWS,),
        )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            sqlite_odbc(sqlite_db),
            azurite.connection_string,
            exports_container.container_name,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    assert outcome["ok"], outcome["error"]
    assert outcome["rows"] == ROWS
    csv_mb = outcome["bytes"] / 2**20
    assert csv_mb > 1.3 * PEAK_RSS_BOUND_MB, (
        f"the CSV ({csv_mb:.0f} MB) must dwarf the bound to prove streaming"
    )
    assert outcome["peak_rss_mb"] < PEAK_RSS_BOUND_MB, outcome
