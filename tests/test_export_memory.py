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
PEAK_RSS_BOUND_MB = 150  # measured ~86 MB (VmHWM), flat from 0.5M to 2M rows; the CSV (~274 MiB) is larger

CHILD = """
import datetime as dt, json, resource, sys
from azure.storage.blob import ContainerClient
from functions.export.engine import Exporter, ExportTuning
from functions.settings import export_defaults
from functions.export.spec import ExportSpec
odbc, storage, container_name, workers = sys.argv[1:5]
container = ContainerClient.from_connection_string(storage, container_name)
tuning = ExportTuning(parallel_min_rows=100_000)
exporter = Exporter(odbc, container, export_defaults(workers=int(workers)), tuning=tuning)
result = exporter.export(ExportSpec("big", table="big"), dt.date(2026, 11, 1))
# VmHWM, not ru_maxrss: ru_maxrss survives exec, so it would include the spawning pytest process.
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"ok": result.ok, "error": result.error, "rows": result.rows, "bytes": result.bytes,
                  "sha256": result.sha256,
                  "peak_rss_mb": hwm_kb / 1024,
                  # workers: an upper bound (their ru_maxrss may carry this process's peak over exec)
                  "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


@pytest.fixture(scope="module")
def big_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE big (id INTEGER PRIMARY KEY, job TEXT, note TEXT, balance INTEGER, day DATE)"
        )
        db.execute(
            "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ?) "
            "INSERT INTO big SELECT i, 'technician', "
            'printf(\'client %d notes, with a comma and "quotes" and a longer remark '
            "about the last call they made to us', i), "
            "i * 7 % 100000, date('2008-05-05', '+' || (i % 900) || ' days') FROM g",
            (ROWS,),
        )
    return path


def _export_in_child(database: Path, azurite, container, workers: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    completed = subprocess.run(  # noqa: S603 - our interpreter running a fixed probe
        [
            sys.executable,
            "-c",
            CHILD,
            sqlite_odbc(database),
            azurite.connection_string,
            container.container_name,
            str(workers),
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
    return outcome


def test_two_million_rows_single_stream_and_key_ranges_bounded_and_identical(
    big_table: Path, azurite, blob_service, exports_container
):
    single = _export_in_child(big_table, azurite, exports_container, workers=1)
    csv_mb = single["bytes"] / 2**20
    assert csv_mb > 1.3 * PEAK_RSS_BOUND_MB, (
        f"the CSV ({csv_mb:.0f} MB) must dwarf the bound to prove streaming"
    )
    assert single["peak_rss_mb"] < PEAK_RSS_BOUND_MB, single
    # the reading child (functions/export/isolated.py) holds the driver's buffers: bounded too
    assert single["worker_peak_rss_mb"] < PEAK_RSS_BOUND_MB, single

    other = blob_service.get_container_client(exports_container.container_name + "-ranges")
    other.create_container()
    ranges = _export_in_child(big_table, azurite, other, workers=2)
    assert ranges["sha256"] == single["sha256"]  # same bytes, whichever way they were read
    assert ranges["peak_rss_mb"] < PEAK_RSS_BOUND_MB, ranges
    assert ranges["peak_rss_mb"] + 2 * ranges["worker_peak_rss_mb"] < 2 * PEAK_RSS_BOUND_MB, ranges
